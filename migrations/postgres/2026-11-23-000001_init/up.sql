-- SCIM resources: the JSON document plus the columns lookups and uniqueness need.
CREATE TABLE resources (
    id              TEXT PRIMARY KEY NOT NULL,
    resource_type   TEXT NOT NULL,
    user_name       TEXT,
    user_name_ci    TEXT,
    external_id     TEXT,
    display_name    TEXT,
    display_name_ci TEXT,
    active          BOOLEAN,
    data            TEXT NOT NULL,
    version         BIGINT NOT NULL,
    created         TEXT NOT NULL,
    last_modified   TEXT NOT NULL
);
CREATE UNIQUE INDEX resources_user_name_ci ON resources (resource_type, user_name_ci);
CREATE INDEX resources_external_id ON resources (resource_type, external_id);
CREATE INDEX resources_display_name_ci ON resources (resource_type, display_name_ci);
CREATE INDEX resources_created ON resources (resource_type, created, id);

-- Group membership, one row a member, so a change costs one row.
CREATE TABLE group_members (
    group_id    TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    member_id   TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    member_type TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX group_members_member ON group_members (member_id);

-- Bearer tokens: only a SHA-256 hash is kept.
CREATE TABLE tokens (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    created    TEXT NOT NULL
);
