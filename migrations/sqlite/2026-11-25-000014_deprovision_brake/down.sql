DROP INDEX outbox_jobs_connector_state;
ALTER TABLE connectors_seen DROP COLUMN released_through;
DROP TABLE brake_log;
