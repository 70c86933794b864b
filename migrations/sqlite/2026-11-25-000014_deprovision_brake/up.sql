-- The deletion brake: each deactivation or deletion delivered to a connector with a limit,
-- counted over its window; jobs held past the limit (state 'held') wait for an
-- administrator. A release lets the held jobs through: jobs up to released_through are not
-- held again.
CREATE TABLE brake_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connector TEXT NOT NULL,
    at        TEXT NOT NULL
);
CREATE INDEX brake_log_connector_at ON brake_log (connector, at);
ALTER TABLE connectors_seen ADD COLUMN released_through BIGINT NOT NULL DEFAULT 0;
CREATE INDEX outbox_jobs_connector_state ON outbox_jobs (connector, state, id);
