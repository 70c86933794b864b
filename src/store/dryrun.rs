//! Dry run's records: the jobs a connector in dry run handled, with the calls it would have
//! made, and the mode each connector last ran in.

use diesel::prelude::*;

use super::db::DbConn;
use super::error::StoreResult;
use super::jobs::{held as claimed, JobRow};
use super::schema::{connectors_seen, mappings, outbox_jobs, resources};
use super::sql::SqlStore;
use super::DryRunStore;
use crate::model::{Event, JobState, MappingState};

const DRY_RUN: &str = JobState::DryRun.as_str();

impl DryRunStore for SqlStore {
    fn record_dry_run(
        &self,
        job: &JobRow,
        coalesced: &[i64],
        calls: &str,
        target_id: Option<&str>,
        now: &str,
    ) -> StoreResult<()> {
        self.write(|conn| {
            let n = diesel::update(claimed(job))
                .set((
                    outbox_jobs::state.eq(DRY_RUN),
                    outbox_jobs::dry_run_calls.eq(calls),
                    outbox_jobs::secret.eq(None::<String>),
                    outbox_jobs::locked_until.eq(None::<String>),
                    outbox_jobs::claimed_by.eq(None::<String>),
                    outbox_jobs::updated.eq(now),
                ))
                .execute(conn)?;
            if n == 0 {
                return Ok(());
            }
            diesel::delete(outbox_jobs::table.filter(outbox_jobs::id.eq_any(coalesced)))
                .execute(conn)?;
            diesel::update(mappings::table.find((&job.resource_id, &job.connector)))
                .set((
                    mappings::state.eq(MappingState::DryRun.as_str()),
                    mappings::target_id.eq(target_id),
                    mappings::last_error.eq(None::<String>),
                    mappings::note.eq("dry run: calls recorded, none made"),
                    mappings::updated.eq(now),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    fn note_mode(&self, connector: &str, mode: &str, now: &str) -> StoreResult<Option<String>> {
        self.write(|conn| {
            let before: Option<Option<String>> = connectors_seen::table
                .find(connector)
                .select(connectors_seen::mode)
                .first(conn)
                .optional()?;
            let row = (
                connectors_seen::name.eq(connector),
                connectors_seen::first_seen.eq(now),
                connectors_seen::mode.eq(mode),
            );
            match conn {
                DbConn::Sqlite(c) => diesel::insert_into(connectors_seen::table)
                    .values(row)
                    .on_conflict(connectors_seen::name)
                    .do_update()
                    .set(connectors_seen::mode.eq(mode))
                    .execute(c)?,
                DbConn::Pg(c) => diesel::insert_into(connectors_seen::table)
                    .values(row)
                    .on_conflict(connectors_seen::name)
                    .do_update()
                    .set(connectors_seen::mode.eq(mode))
                    .execute(c)?,
            };
            Ok(before.flatten())
        })
    }

    fn clear_dry_run(&self, connector: &str, now: &str) -> StoreResult<usize> {
        self.write(|conn| {
            let deletes = [Event::UserDeleted.as_str(), Event::GroupDeleted.as_str()];
            let existing = resources::table.select(resources::id);
            let gone: Vec<(i64, String)> = outbox_jobs::table
                .filter(outbox_jobs::connector.eq(connector))
                .filter(outbox_jobs::state.eq(DRY_RUN))
                .filter(outbox_jobs::event.eq_any(deletes))
                .filter(outbox_jobs::resource_id.ne_all(existing))
                .select((outbox_jobs::id, outbox_jobs::resource_id))
                .load(conn)?;
            let (ids, resources): (Vec<i64>, Vec<String>) = gone.into_iter().unzip();
            diesel::update(outbox_jobs::table.filter(outbox_jobs::id.eq_any(&ids)))
                .set((
                    outbox_jobs::state.eq(JobState::Pending.as_str()),
                    outbox_jobs::dry_run_calls.eq(None::<String>),
                    outbox_jobs::attempts.eq(0),
                    outbox_jobs::next_attempt_at.eq(now),
                    outbox_jobs::created.eq(now),
                    outbox_jobs::updated.eq(now),
                    outbox_jobs::priority.eq(super::jobs::LIVE),
                ))
                .execute(conn)?;
            diesel::update(
                mappings::table
                    .filter(mappings::connector.eq(connector))
                    .filter(mappings::resource_id.eq_any(&resources)),
            )
            .set((
                mappings::state.eq(MappingState::Pending.as_str()),
                mappings::target_id.eq(None::<String>),
                mappings::note.eq("left dry run: the delete is sent"),
                mappings::updated.eq(now),
            ))
            .execute(conn)?;
            diesel::delete(
                outbox_jobs::table
                    .filter(outbox_jobs::connector.eq(connector))
                    .filter(outbox_jobs::state.eq(DRY_RUN)),
            )
            .execute(conn)?;
            diesel::delete(
                mappings::table
                    .filter(mappings::connector.eq(connector))
                    .filter(mappings::state.eq(MappingState::DryRun.as_str())),
            )
            .execute(conn)?;
            Ok(ids.len())
        })
    }

    fn dry_run_jobs_of(&self, resource_id: &str) -> StoreResult<Vec<JobRow>> {
        let mut conn = self.conn()?;
        Ok(outbox_jobs::table
            .filter(outbox_jobs::resource_id.eq(resource_id))
            .filter(outbox_jobs::state.eq(DRY_RUN))
            .order(outbox_jobs::id.asc())
            .select(JobRow::as_select())
            .load(&mut *conn)?)
    }
}
