//! The deletion brake's records: deprovisions delivered per connector over a window, jobs
//! held past the limit, and what an administrator releases or discards.

use diesel::prelude::*;

use super::db::DbConn;
use super::error::StoreResult;
use super::jobs::{held as claimed, JobRow};
use super::schema::{brake_log, connectors_seen, mappings, outbox_jobs};
use super::sql::SqlStore;
use super::BrakeStore;
use crate::model::{JobState, MappingState};

/// What the brake decides for one deprovisioning job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it (counted in the window).
    Go,
    /// Held; `first` when it is the one that tripped the brake.
    Held { first: bool },
}

const HELD: &str = JobState::Held.as_str();

/// One brake decision per connector at a time: on PostgreSQL, a transaction lock on the
/// connector's name (workers of several instances decide in turn); SQLite's writes are one
/// at a time already.
fn lock_connector(conn: &mut DbConn, connector: &str) -> StoreResult<()> {
    if let DbConn::Pg(c) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind::<diesel::sql_types::Text, _>(format!("brake:{connector}"))
            .execute(c)?;
    }
    Ok(())
}

fn released_through(conn: &mut DbConn, connector: &str) -> StoreResult<i64> {
    Ok(connectors_seen::table
        .find(connector)
        .select(connectors_seen::released_through)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

impl BrakeStore for SqlStore {
    fn brake(&self, job: &JobRow, limit: i64, since: &str, now: &str) -> StoreResult<Verdict> {
        self.write(|conn| {
            lock_connector(conn, &job.connector)?;
            if job.id <= released_through(conn, &job.connector)? {
                return Ok(Verdict::Go);
            }
            // A job the brake let through before (its delivery failed and is retried) goes
            // again without being counted twice.
            let counted: i64 = brake_log::table
                .filter(brake_log::connector.eq(&job.connector))
                .filter(brake_log::job_id.eq(job.id))
                .count()
                .get_result(conn)?;
            if counted > 0 {
                return Ok(Verdict::Go);
            }
            diesel::delete(
                brake_log::table
                    .filter(brake_log::connector.eq(&job.connector))
                    .filter(brake_log::at.le(since)),
            )
            .execute(conn)?;
            let holding: i64 = outbox_jobs::table
                .filter(outbox_jobs::connector.eq(&job.connector))
                .filter(outbox_jobs::state.eq(HELD))
                .count()
                .get_result(conn)?;
            let recent: i64 = brake_log::table
                .filter(brake_log::connector.eq(&job.connector))
                .count()
                .get_result(conn)?;
            if holding == 0 && recent < limit {
                diesel::insert_into(brake_log::table)
                    .values((
                        brake_log::connector.eq(&job.connector),
                        brake_log::at.eq(now),
                        brake_log::job_id.eq(job.id),
                    ))
                    .execute(conn)?;
                return Ok(Verdict::Go);
            }
            diesel::update(claimed(job))
                .set((
                    outbox_jobs::state.eq(HELD),
                    outbox_jobs::locked_until.eq(None::<String>),
                    outbox_jobs::claimed_by.eq(None::<String>),
                    outbox_jobs::last_error.eq("held by the deletion brake"),
                    outbox_jobs::updated.eq(now),
                ))
                .execute(conn)?;
            Ok(Verdict::Held {
                first: holding == 0,
            })
        })
    }

    fn release_held(&self, connector: &str, now: &str) -> StoreResult<usize> {
        self.write(|conn| {
            lock_connector(conn, connector)?;
            let top: Option<i64> = outbox_jobs::table
                .filter(outbox_jobs::connector.eq(connector))
                .filter(outbox_jobs::state.eq(HELD))
                .select(diesel::dsl::max(outbox_jobs::id))
                .first(conn)?;
            let Some(top) = top else { return Ok(0) };
            let n = diesel::update(
                outbox_jobs::table
                    .filter(outbox_jobs::connector.eq(connector))
                    .filter(outbox_jobs::state.eq(HELD)),
            )
            .set((
                outbox_jobs::state.eq(JobState::Pending.as_str()),
                outbox_jobs::next_attempt_at.eq(now),
                outbox_jobs::last_error.eq(None::<String>),
                outbox_jobs::updated.eq(now),
            ))
            .execute(conn)?;
            let seen = (
                connectors_seen::name.eq(connector),
                connectors_seen::first_seen.eq(now),
                connectors_seen::released_through.eq(top),
            );
            match conn {
                DbConn::Sqlite(c) => diesel::insert_into(connectors_seen::table)
                    .values(seen)
                    .on_conflict(connectors_seen::name)
                    .do_update()
                    .set(connectors_seen::released_through.eq(top))
                    .execute(c)?,
                DbConn::Pg(c) => diesel::insert_into(connectors_seen::table)
                    .values(seen)
                    .on_conflict(connectors_seen::name)
                    .do_update()
                    .set(connectors_seen::released_through.eq(top))
                    .execute(c)?,
            };
            Ok(n)
        })
    }

    fn discard_held(&self, connector: &str, now: &str) -> StoreResult<usize> {
        self.write(|conn| {
            lock_connector(conn, connector)?;
            let rows: Vec<JobRow> = outbox_jobs::table
                .filter(outbox_jobs::connector.eq(connector))
                .filter(outbox_jobs::state.eq(HELD))
                .order(outbox_jobs::id.asc())
                .select(JobRow::as_select())
                .load(conn)?;
            for r in &rows {
                diesel::delete(outbox_jobs::table.find(r.id)).execute(conn)?;
                diesel::update(mappings::table.find((&r.resource_id, connector)))
                    .set((
                        mappings::state.eq(MappingState::Synced.as_str()),
                        mappings::note.eq(format!(
                            "an administrator discarded its held {}: the target keeps the user as it was",
                            r.event
                        )),
                        mappings::updated.eq(now),
                    ))
                    .execute(conn)?;
            }
            Ok(rows.len())
        })
    }
}
