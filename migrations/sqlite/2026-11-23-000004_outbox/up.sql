-- The transactional outbox: one row per change and connector, written in the same
-- transaction as the change itself, deleted once delivered.
CREATE TABLE outbox_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connector       TEXT NOT NULL,
    resource_type   TEXT NOT NULL,
    resource_id     TEXT NOT NULL,
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    locked_until    TEXT,
    last_error      TEXT,
    created         TEXT NOT NULL,
    updated         TEXT NOT NULL
);
CREATE INDEX outbox_jobs_due ON outbox_jobs (state, next_attempt_at, id);
CREATE INDEX outbox_jobs_order ON outbox_jobs (connector, resource_id, state, id);

-- Where each resource stands in each target.
CREATE TABLE mappings (
    resource_id   TEXT NOT NULL,
    connector     TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    target_id     TEXT,
    principal     TEXT,
    last_version  BIGINT,
    state         TEXT NOT NULL,
    last_error    TEXT,
    attempts      INTEGER NOT NULL,
    created       TEXT NOT NULL,
    updated       TEXT NOT NULL,
    PRIMARY KEY (resource_id, connector)
);
CREATE INDEX mappings_connector_state ON mappings (connector, state);
