-- A password waiting in the outbox, sealed with the outbox key (never in the payload),
-- erased when its job is delivered or dead.
ALTER TABLE outbox_jobs ADD COLUMN secret TEXT;
-- Jobs a SCIM request waits for when their connector is in sync mode.
ALTER TABLE outbox_jobs ADD COLUMN wait_token TEXT;
CREATE INDEX outbox_jobs_wait_token ON outbox_jobs (wait_token);

-- Password-change notifications a target accepted and completes later (ENTSSO).
CREATE TABLE notifications (
    tracking_id  TEXT NOT NULL PRIMARY KEY,
    connector    TEXT NOT NULL,
    resource_id  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    state        TEXT NOT NULL,
    error        TEXT,
    created      TEXT NOT NULL,
    updated      TEXT NOT NULL
);
CREATE INDEX notifications_resource ON notifications (resource_id, created);
