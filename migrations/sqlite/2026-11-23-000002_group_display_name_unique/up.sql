-- Entra ID and Okta find groups by displayName: two groups of one name would make that
-- lookup ambiguous, so a group's displayName is unique without regard to case.
CREATE UNIQUE INDEX resources_group_display_name ON resources (display_name_ci) WHERE resource_type = 'Group';
