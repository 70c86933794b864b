-- Who holds a job's claim: completing, rescheduling or burying it checks this, so a worker
-- whose lease passed cannot record a job another worker has taken over.
ALTER TABLE outbox_jobs ADD COLUMN claimed_by TEXT;
