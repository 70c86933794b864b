-- Scoped, revocable credentials. Existing tokens keep full access.
ALTER TABLE tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'scim:read scim:write';
ALTER TABLE tokens ADD COLUMN last_used TEXT;
ALTER TABLE tokens ADD COLUMN revoked TEXT;

-- OAuth 2.0 clients (client credentials grant): only a hash of the secret is kept.
CREATE TABLE oauth_clients (
    client_id           TEXT PRIMARY KEY NOT NULL,
    name                TEXT NOT NULL UNIQUE,
    secret_hash         TEXT NOT NULL,
    scopes              TEXT NOT NULL,
    token_lifetime_mins INTEGER NOT NULL,
    created             TEXT NOT NULL,
    last_used           TEXT,
    revoked             TEXT
);

-- The keys the bridge signs its access tokens with, where every instance reads them. A
-- retired key still verifies the tokens it signed until they expire.
CREATE TABLE signing_keys (
    kid     TEXT PRIMARY KEY NOT NULL,
    secret  TEXT NOT NULL,
    created TEXT NOT NULL,
    retired TEXT
);
