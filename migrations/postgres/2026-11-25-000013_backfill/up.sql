-- Backfill: jobs that bring a connector up to date with what it never received wait
-- behind live changes (priority 1 after 0), the connectors each database has seen (a new
-- one is backfilled once, by whichever instance sees it first), and each sync run.
ALTER TABLE outbox_jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_jobs_priority ON outbox_jobs (state, priority, id);
CREATE TABLE connectors_seen (
    name       TEXT PRIMARY KEY NOT NULL,
    first_seen TEXT NOT NULL
);
CREATE TABLE sync_runs (
    id BIGSERIAL PRIMARY KEY,
    connector     TEXT NOT NULL,
    all_resources INTEGER NOT NULL,
    total         BIGINT NOT NULL,
    started       TEXT NOT NULL
);
CREATE INDEX sync_runs_connector ON sync_runs (connector, id);
