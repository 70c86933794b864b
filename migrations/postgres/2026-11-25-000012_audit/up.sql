-- The audit trail: every SCIM write and admin action, who made it, from where, and which
-- attribute paths it named; never a value.
CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    at            TEXT NOT NULL,
    credential    TEXT NOT NULL,
    client        TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    method        TEXT NOT NULL,
    route         TEXT NOT NULL,
    resource_type TEXT,
    resource_id   TEXT,
    paths         TEXT NOT NULL,
    status        INTEGER NOT NULL
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_resource ON audit (resource_id, id);
CREATE INDEX audit_credential ON audit (credential, id);
