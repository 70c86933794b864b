DROP INDEX brake_log_job;
ALTER TABLE brake_log DROP COLUMN job_id;
