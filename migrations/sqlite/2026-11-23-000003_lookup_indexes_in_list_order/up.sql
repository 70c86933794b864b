-- Lookups by externalId or displayName come back in list order (created, id). With those
-- columns in the index, the database reads the few matching rows already sorted instead
-- of walking the whole list in order and testing each row (what SQLite chose without
-- statistics, at every externalId filter).
DROP INDEX resources_external_id;
DROP INDEX resources_display_name_ci;
CREATE INDEX resources_external_id ON resources (resource_type, external_id, created, id);
CREATE INDEX resources_display_name_ci ON resources (resource_type, display_name_ci, created, id);
