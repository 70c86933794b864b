DROP TABLE notifications;
DROP INDEX outbox_jobs_wait_token;
ALTER TABLE outbox_jobs DROP COLUMN wait_token;
ALTER TABLE outbox_jobs DROP COLUMN secret;
