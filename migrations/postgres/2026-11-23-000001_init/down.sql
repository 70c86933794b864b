DROP TABLE tokens;
DROP TABLE group_members;
DROP TABLE resources;
