ALTER TABLE connectors_seen DROP COLUMN mode;
ALTER TABLE outbox_jobs DROP COLUMN dry_run_calls;
