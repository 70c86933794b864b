//! Backfill: the resources a connector never received, the connectors a database has seen,
//! and each sync run with the jobs it queued.

use diesel::prelude::*;

use super::error::StoreResult;
use super::jobs::{enqueue, NewJob};
use super::schema::{connectors_seen, mappings, outbox_jobs, resources, sync_runs};
use super::sql::SqlStore;
use super::{BackfillStore, ResourceRow};
use crate::model::JobState;

/// One sync run: what it queued and when.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = sync_runs)]
pub struct SyncRunRow {
    pub id: i64,
    pub connector: String,
    pub all_resources: i32,
    pub total: i64,
    pub started: String,
}

/// The backfill jobs of a connector still to go, and those that died.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackfillCounts {
    pub pending: i64,
    pub dead: i64,
}

impl BackfillStore for SqlStore {
    fn first_sighting(&self, connector: &str, now: &str) -> StoreResult<bool> {
        self.write(|conn| {
            let n = match conn {
                super::db::DbConn::Sqlite(c) => diesel::insert_into(connectors_seen::table)
                    .values((
                        connectors_seen::name.eq(connector),
                        connectors_seen::first_seen.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(c)?,
                super::db::DbConn::Pg(c) => diesel::insert_into(connectors_seen::table)
                    .values((
                        connectors_seen::name.eq(connector),
                        connectors_seen::first_seen.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(c)?,
            };
            Ok(n == 1)
        })
    }

    fn backfill_page(
        &self,
        connector: &str,
        resource_type: &str,
        all: bool,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ResourceRow>> {
        let mut conn = self.conn()?;
        let mut q = resources::table
            .filter(resources::resource_type.eq(resource_type))
            .into_boxed();
        if let Some(a) = after {
            q = q.filter(resources::id.gt(a.to_string()));
        }
        if !all {
            let mapped = mappings::table
                .filter(mappings::connector.eq(connector.to_string()))
                .select(mappings::resource_id);
            q = q.filter(resources::id.ne_all(mapped));
        }
        Ok(q.order(resources::id.asc())
            .limit(limit)
            .select(ResourceRow::as_select())
            .load(&mut *conn)?)
    }

    fn start_run(&self, connector: &str, all: bool, now: &str) -> StoreResult<i64> {
        self.write(|conn| {
            let id: i64 = diesel::insert_into(sync_runs::table)
                .values((
                    sync_runs::connector.eq(connector),
                    sync_runs::all_resources.eq(i32::from(all)),
                    sync_runs::total.eq(0i64),
                    sync_runs::started.eq(now),
                ))
                .returning(sync_runs::id)
                .get_result(conn)?;
            Ok(id)
        })
    }

    fn queue_backfill(&self, run: i64, jobs: &[NewJob], now: &str) -> StoreResult<()> {
        self.write(|conn| {
            enqueue(conn, jobs, now)?;
            diesel::update(sync_runs::table.find(run))
                .set(sync_runs::total.eq(sync_runs::total + jobs.len() as i64))
                .execute(conn)?;
            Ok(())
        })
    }

    fn queue_repair(&self, run: i64, jobs: &[NewJob], now: &str) -> StoreResult<usize> {
        self.write(|conn| {
            // A user changed or deleted since the reconcile read it has a newer job of its
            // own in the queue: repairing it from the older read would undo that change.
            let ids: Vec<&str> = jobs.iter().map(|j| j.resource_id.as_str()).collect();
            let current: std::collections::HashMap<String, i64> = resources::table
                .filter(resources::id.eq_any(&ids))
                .select((resources::id, resources::version))
                .load::<(String, i64)>(conn)?
                .into_iter()
                .collect();
            let jobs: Vec<NewJob> = jobs
                .iter()
                .filter(|j| current.get(&j.resource_id) == Some(&j.version))
                .cloned()
                .collect();
            for job in &jobs {
                diesel::update(
                    mappings::table
                        .filter(mappings::resource_id.eq(&job.resource_id))
                        .filter(mappings::connector.eq(&job.connector)),
                )
                .set(mappings::target_id.eq(None::<String>))
                .execute(conn)?;
            }
            enqueue(conn, &jobs, now)?;
            diesel::update(sync_runs::table.find(run))
                .set(sync_runs::total.eq(sync_runs::total + jobs.len() as i64))
                .execute(conn)?;
            Ok(jobs.len())
        })
    }

    fn count_resources(&self, resource_type: &str) -> StoreResult<i64> {
        let mut conn = self.conn()?;
        Ok(resources::table
            .filter(resources::resource_type.eq(resource_type))
            .count()
            .get_result(&mut *conn)?)
    }

    fn latest_run(&self, connector: &str) -> StoreResult<Option<SyncRunRow>> {
        let mut conn = self.conn()?;
        Ok(sync_runs::table
            .filter(sync_runs::connector.eq(connector))
            .order(sync_runs::id.desc())
            .select(SyncRunRow::as_select())
            .first(&mut *conn)
            .optional()?)
    }

    fn backfill_counts(&self, connector: &str) -> StoreResult<BackfillCounts> {
        let mut conn = self.conn()?;
        let count = |state: JobState, conn: &mut super::db::DbConn| -> StoreResult<i64> {
            Ok(outbox_jobs::table
                .filter(outbox_jobs::connector.eq(connector))
                .filter(outbox_jobs::priority.eq(super::jobs::SNAPSHOT))
                .filter(outbox_jobs::state.eq(state.as_str()))
                .count()
                .get_result(conn)?)
        };
        Ok(BackfillCounts {
            pending: count(JobState::Pending, &mut conn)?,
            dead: count(JobState::Dead, &mut conn)?,
        })
    }
}
