DROP INDEX outbox_jobs_claim;
