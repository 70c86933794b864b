//! The one integration-test binary: the real app, over HTTP, against a fresh database per
//! test, on SQLite and (with TEST_POSTGRES_URL) PostgreSQL.

mod helpers;

mod auth;
mod backfill;
mod brake;
mod bulk;
mod crash;
mod credentials;
mod discovery;
mod dry_run;
mod errors;
mod filter_property;
mod groups;
mod health;
mod hostile;
mod idp_compat;
mod import_walk;
mod lifecycle;
mod membership_cost;
mod operations;
mod outbox;
mod patch;
mod paths;
mod query;
mod races;
mod reconcile;
mod secrets;
mod users;
mod vendors;
