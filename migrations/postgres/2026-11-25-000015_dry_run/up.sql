-- Dry run: a job a connector in dry_run mode handled keeps the calls it would have made
-- (state 'dry_run'); the mode each connector last ran in, so that leaving dry run sends
-- the connector everything from its current state.
ALTER TABLE outbox_jobs ADD COLUMN dry_run_calls TEXT;
ALTER TABLE connectors_seen ADD COLUMN mode TEXT;
