-- A key unique across databases and time, stable across redeliveries of the job: what the
-- webhook sends as Idempotency-Key (the row id starts again at 1 in every database).
ALTER TABLE outbox_jobs ADD COLUMN idempotency_key TEXT;
