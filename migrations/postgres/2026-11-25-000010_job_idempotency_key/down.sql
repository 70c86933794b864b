ALTER TABLE outbox_jobs DROP COLUMN idempotency_key;
