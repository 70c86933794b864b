DROP INDEX resources_external_id;
DROP INDEX resources_display_name_ci;
CREATE INDEX resources_external_id ON resources (resource_type, external_id);
CREATE INDEX resources_display_name_ci ON resources (resource_type, display_name_ci);
