-- What the last delivery did that is not an error: an event the connector skipped, a user
-- adopted in the target, a user left out of scope. last_error keeps only failures.
ALTER TABLE mappings ADD COLUMN note TEXT;
