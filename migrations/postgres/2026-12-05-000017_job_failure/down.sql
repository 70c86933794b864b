ALTER TABLE outbox_jobs DROP COLUMN failure;
