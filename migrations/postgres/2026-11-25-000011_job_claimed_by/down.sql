ALTER TABLE outbox_jobs DROP COLUMN claimed_by;
