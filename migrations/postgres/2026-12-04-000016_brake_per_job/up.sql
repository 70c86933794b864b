-- The brake counts each job once: a deprovision delivered after a retry is the same
-- deprovision, not another one.
ALTER TABLE brake_log ADD COLUMN job_id BIGINT;
CREATE UNIQUE INDEX brake_log_job ON brake_log (connector, job_id);
