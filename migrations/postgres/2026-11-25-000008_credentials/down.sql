DROP TABLE signing_keys;
DROP TABLE oauth_clients;
ALTER TABLE tokens DROP COLUMN revoked;
ALTER TABLE tokens DROP COLUMN last_used;
ALTER TABLE tokens DROP COLUMN scopes;
