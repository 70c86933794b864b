DROP TABLE sync_runs;
DROP TABLE connectors_seen;
DROP INDEX outbox_jobs_priority;
ALTER TABLE outbox_jobs DROP COLUMN priority;
