DROP TABLE mappings;
DROP TABLE outbox_jobs;
