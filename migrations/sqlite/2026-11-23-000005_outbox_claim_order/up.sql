-- Workers claim the oldest pending jobs first: an index in that order lets a claim
-- read a few rows instead of sorting the whole backlog.
CREATE INDEX outbox_jobs_claim ON outbox_jobs (state, id);
