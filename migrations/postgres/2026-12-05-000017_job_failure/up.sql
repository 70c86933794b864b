-- Why a dead job died, as a kind the bridge acts on (a conflict answers 409 in sync mode),
-- beside last_error's words for people.
ALTER TABLE outbox_jobs ADD COLUMN failure TEXT;
