//! The outbox table: jobs written in the transaction of the change that caused them,
//! claimed by workers (with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several bridges
//! share the work), and each delivery's outcome recorded with the job's removal.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::db::DbConn;
use super::error::StoreResult;
use super::notifications::add_notification_in;
use super::schema::{mappings, outbox_jobs, resources};
use super::sql::SqlStore;
use super::{JobStore, NotificationRow};
use crate::model::{Event, Failure, JobState, MappingState, ResourceKind};

#[derive(Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable, serde::Serialize)]
#[diesel(table_name = outbox_jobs)]
pub struct JobRow {
    pub id: i64,
    pub connector: String,
    pub resource_type: ResourceKind,
    pub resource_id: String,
    pub event: Event,
    pub payload: String,
    pub state: JobState,
    pub attempts: i32,
    pub next_attempt_at: String,
    pub locked_until: Option<String>,
    pub last_error: Option<String>,
    pub created: String,
    pub updated: String,
    /// A sealed password; never shown.
    #[serde(skip)]
    pub secret: Option<String>,
    #[serde(skip)]
    pub wait_token: Option<String>,
    /// Unique across databases and time; None for jobs queued before keys existed.
    pub idempotency_key: Option<String>,
    /// The claim this row was read under (who may record its outcome).
    #[serde(skip)]
    pub claimed_by: Option<String>,
    /// In dry run: the calls the connector would have made, as a JSON array.
    #[serde(skip)]
    pub dry_run_calls: Option<String>,
    /// [`LIVE`] for a change; [`SNAPSHOT`] for a backfill, sync or repair.
    #[serde(skip)]
    pub priority: i32,
    /// Why a dead job died.
    pub failure: Option<Failure>,
}

/// The priority of a live change's job.
pub const LIVE: i32 = 0;
/// The priority of a job that carries a snapshot read by a backfill, a sync or a reconcile
/// repair: claimed when no live change is due, and dropped at delivery when the resource
/// has moved on since it was read.
pub const SNAPSHOT: i32 = 1;

impl JobRow {
    /// The key a receiver can drop a repeated delivery by: the same for every delivery of
    /// this job, never the same for two jobs of two databases.
    pub fn key(&self) -> String {
        self.idempotency_key
            .clone()
            .unwrap_or_else(|| self.id.to_string())
    }

    /// A backfill, sync or repair job: the state of the resource when it was read.
    pub fn is_snapshot(&self) -> bool {
        self.priority == SNAPSHOT
    }
}

/// A job to write with a change.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub connector: String,
    pub resource_type: ResourceKind,
    pub resource_id: String,
    pub event: Event,
    /// The resource's version the payload carries.
    pub version: i64,
    pub payload: String,
    /// A password sealed with the outbox key.
    pub secret: Option<String>,
    /// Set when a request waits for this job (a connector in sync mode).
    pub wait_token: Option<String>,
    /// [`LIVE`] for a change; [`SNAPSHOT`] for a backfill, sync or repair, claimed only
    /// when no live change is due.
    pub priority: i32,
}

/// Where the jobs a request waits for stand.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitState {
    /// Every job was delivered.
    Delivered,
    /// Some are still pending.
    Pending,
    /// One is dead: its connector and error.
    Dead {
        connector: String,
        /// Why it died (None for a job buried before the kind was kept).
        failure: Option<Failure>,
        error: String,
    },
}

/// What a delivered job leaves in the mapping.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivered {
    pub target_id: Option<String>,
    pub principal: Option<String>,
    pub version: Option<i64>,
    /// What the delivery did besides succeeding: an event the connector does not support
    /// (recorded, not failed), a user adopted in the target, a user out of scope.
    pub note: Option<String>,
    /// The mapping's state when it is not plain `synced` (such as `accepted`).
    pub state: Option<MappingState>,
}

/// A delivered job with what travels with it, for [`SqlStore::complete_jobs`].
#[derive(Debug, Clone)]
pub struct Done {
    pub job: JobRow,
    pub delivered: Delivered,
    /// Later jobs delivered as part of this one.
    pub coalesced: Vec<i64>,
    pub notification: Option<NotificationRow>,
    /// Jobs the delivery caused, queued with its record (a user's leaving a connector's
    /// scope, so the deletion brake counts it).
    pub follow_ups: Vec<NewJob>,
}

/// A connector's queue, as the admin API shows it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct QueueHealth {
    pub pending: i64,
    pub dead: i64,
    pub held: i64,
    /// Pending jobs held back by an earlier dead job of their resource (counted in
    /// `pending` too).
    pub blocked: i64,
    pub oldest_pending: Option<String>,
    pub last_success: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

const PENDING: &str = JobState::Pending.as_str();
const DEAD: &str = JobState::Dead.as_str();

const KEEP_DEAD: &str = "CASE WHEN mappings.state = 'dead' THEN 'dead' ELSE 'pending' END";

/// Writes jobs and marks their mappings pending; runs inside the caller's transaction.
pub fn enqueue(conn: &mut DbConn, jobs: &[NewJob], now: &str) -> StoreResult<()> {
    for job in jobs {
        let values = (
            outbox_jobs::connector.eq(&job.connector),
            outbox_jobs::resource_type.eq(job.resource_type.as_str()),
            outbox_jobs::resource_id.eq(&job.resource_id),
            outbox_jobs::event.eq(job.event.as_str()),
            outbox_jobs::payload.eq(&job.payload),
            outbox_jobs::state.eq(PENDING),
            outbox_jobs::attempts.eq(0),
            outbox_jobs::next_attempt_at.eq(now),
            outbox_jobs::created.eq(now),
            outbox_jobs::updated.eq(now),
            outbox_jobs::secret.eq(&job.secret),
            outbox_jobs::wait_token.eq(&job.wait_token),
            outbox_jobs::idempotency_key.eq(uuid::Uuid::new_v4().to_string()),
            outbox_jobs::priority.eq(job.priority),
        );
        diesel::insert_into(outbox_jobs::table)
            .values(values)
            .execute(conn)?;
        let mapping = (
            mappings::resource_id.eq(&job.resource_id),
            mappings::connector.eq(&job.connector),
            mappings::resource_type.eq(job.resource_type.as_str()),
            mappings::state.eq(MappingState::Pending.as_str()),
            mappings::attempts.eq(0),
            mappings::created.eq(now),
            mappings::updated.eq(now),
        );
        // A mapping with a dead job stays `dead`: the new job waits behind that one.
        let on_conflict = (
            mappings::state.eq(diesel::dsl::sql::<Text>(KEEP_DEAD)),
            mappings::updated.eq(now),
        );
        match conn {
            DbConn::Sqlite(c) => diesel::insert_into(mappings::table)
                .values(mapping)
                .on_conflict((mappings::resource_id, mappings::connector))
                .do_update()
                .set(on_conflict)
                .execute(c)?,
            DbConn::Pg(c) => diesel::insert_into(mappings::table)
                .values(mapping)
                .on_conflict((mappings::resource_id, mappings::connector))
                .do_update()
                .set(on_conflict)
                .execute(c)?,
        };
    }
    Ok(())
}

/// Deletes a delivered job and records its outcome in the mapping.
/// The job's row while its claim is still this one's.
pub(super) type Held = diesel::dsl::Filter<
    diesel::dsl::Find<outbox_jobs::table, i64>,
    diesel::dsl::Eq<outbox_jobs::claimed_by, String>,
>;

pub(super) fn held(job: &JobRow) -> Held {
    outbox_jobs::table
        .find(job.id)
        .filter(outbox_jobs::claimed_by.eq(job.claimed_by.clone().unwrap_or_default()))
}

fn complete_in(conn: &mut DbConn, job: &JobRow, d: &Delivered, now: &str) -> StoreResult<()> {
    if diesel::delete(held(job)).execute(conn)? == 0 {
        // Its lease passed and another worker took it over: that worker records it.
        log::warn!(
            "job {}: delivered after its claim was taken over; not recorded twice",
            job.id
        );
        return Ok(());
    }
    let target = mappings::table.find((&job.resource_id, &job.connector));
    // A mapping shows its worst unresolved job: while another job of this resource is dead
    // in this connector, a later success (or skip) does not hide it.
    let dead: Option<Option<String>> = outbox_jobs::table
        .filter(outbox_jobs::resource_id.eq(&job.resource_id))
        .filter(outbox_jobs::connector.eq(&job.connector))
        .filter(outbox_jobs::state.eq(DEAD))
        .select(outbox_jobs::last_error)
        .first(conn)
        .optional()?;
    let state = match (&dead, &d.state) {
        (Some(_), _) => MappingState::Dead,
        (None, Some(s)) => *s,
        (None, None) if job.event.is_delete() => MappingState::Deleted,
        (None, None) => MappingState::Synced,
    }
    .as_str();
    let common = (
        mappings::state.eq(state),
        mappings::last_error.eq(dead.flatten()),
        mappings::note.eq(d.note.as_deref()),
        mappings::attempts.eq(job.attempts),
        mappings::updated.eq(now),
    );
    if let (Some(t), Some(v), None) = (&d.target_id, d.version, &d.principal) {
        // The usual case, in one statement.
        diesel::update(target)
            .set((
                common,
                mappings::target_id.eq(t),
                mappings::last_version.eq(v),
            ))
            .execute(conn)?;
        return Ok(());
    }
    diesel::update(target).set(common).execute(conn)?;
    if let Some(t) = &d.target_id {
        diesel::update(target)
            .set(mappings::target_id.eq(t))
            .execute(conn)?;
    }
    if let Some(p) = &d.principal {
        diesel::update(target)
            .set(mappings::principal.eq(p))
            .execute(conn)?;
    }
    if let Some(v) = d.version {
        diesel::update(target)
            .set(mappings::last_version.eq(v))
            .execute(conn)?;
    }
    Ok(())
}

const CLAIM_SQLITE: &str = "UPDATE outbox_jobs SET locked_until = ?1, attempts = attempts + 1, updated = ?2, claimed_by = ?4 \
    WHERE id IN (SELECT j.id FROM outbox_jobs j WHERE j.state = 'pending' AND j.next_attempt_at <= ?2 \
      AND (j.locked_until IS NULL OR j.locked_until < ?2) \
      AND NOT EXISTS (SELECT 1 FROM outbox_jobs p WHERE p.connector = j.connector AND p.resource_id = j.resource_id \
                      AND p.state IN ('pending', 'held', 'dead') AND p.id < j.id) \
      ORDER BY j.priority, j.id LIMIT ?3) \
    RETURNING *";

const CLAIM_POSTGRES: &str = "UPDATE outbox_jobs SET locked_until = $1, attempts = attempts + 1, updated = $2, claimed_by = $4 \
    WHERE id IN (SELECT j.id FROM outbox_jobs j WHERE j.state = 'pending' AND j.next_attempt_at <= $2 \
      AND (j.locked_until IS NULL OR j.locked_until < $2) \
      AND NOT EXISTS (SELECT 1 FROM outbox_jobs p WHERE p.connector = j.connector AND p.resource_id = j.resource_id \
                      AND p.state IN ('pending', 'held', 'dead') AND p.id < j.id) \
      ORDER BY j.priority, j.id LIMIT $3 FOR UPDATE SKIP LOCKED) \
    RETURNING *";

/// Pending jobs whose resource has an earlier dead job for the same connector: the claim
/// does not take them until that one is retried or discarded (order per resource).
/// Driven from the dead jobs (few, by the (state, id) index) to the jobs behind each (by
/// the (connector, resource_id, state, id) index): asked on every /readyz and /metrics,
/// it never scans the pending queue, which a backfill can fill with a million jobs.
const BLOCKED: &str = "SELECT DISTINCT j.id AS id, j.connector AS connector FROM outbox_jobs d \
    JOIN outbox_jobs j ON j.connector = d.connector AND j.resource_id = d.resource_id \
                      AND j.state = 'pending' AND j.id > d.id \
    WHERE d.state = 'dead'";

fn blocked_in(conn: &mut DbConn) -> StoreResult<Vec<(i64, String)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        connector: String,
    }
    let rows: Vec<Row> = match conn {
        DbConn::Sqlite(c) => diesel::sql_query(BLOCKED).load(c)?,
        DbConn::Pg(c) => diesel::sql_query(BLOCKED).load(c)?,
    };
    Ok(rows.into_iter().map(|r| (r.id, r.connector)).collect())
}

impl JobStore for SqlStore {
    fn blocked_jobs(&self) -> StoreResult<Vec<(i64, String)>> {
        let mut conn = self.conn()?;
        blocked_in(&mut conn)
    }

    fn claim_jobs(
        &self,
        now: &str,
        lease_until: &str,
        limit: i64,
        owner: &str,
    ) -> StoreResult<Vec<JobRow>> {
        self.write(|conn| {
            let mut rows: Vec<JobRow> = match conn {
                DbConn::Sqlite(c) => diesel::sql_query(CLAIM_SQLITE)
                    .bind::<Text, _>(lease_until)
                    .bind::<Text, _>(now)
                    .bind::<BigInt, _>(limit)
                    .bind::<Text, _>(owner)
                    .load(c)?,
                DbConn::Pg(c) => diesel::sql_query(CLAIM_POSTGRES)
                    .bind::<Text, _>(lease_until)
                    .bind::<Text, _>(now)
                    .bind::<BigInt, _>(limit)
                    .bind::<Text, _>(owner)
                    .load(c)?,
            };
            rows.sort_by_key(|r| r.id);
            Ok(rows)
        })
    }

    fn renew_claims(&self, owner: &str, ids: &[i64], until: &str) -> StoreResult<usize> {
        self.write(|conn| {
            Ok(diesel::update(
                outbox_jobs::table
                    .filter(outbox_jobs::id.eq_any(ids))
                    .filter(outbox_jobs::claimed_by.eq(owner))
                    .filter(outbox_jobs::state.eq(PENDING)),
            )
            .set(outbox_jobs::locked_until.eq(until))
            .execute(conn)?)
        })
    }

    fn next_claimable_at(&self) -> StoreResult<Option<String>> {
        #[derive(QueryableByName)]
        struct At {
            #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
            at: Option<String>,
        }
        const NEXT: &str = "SELECT MIN(CASE WHEN j.locked_until IS NOT NULL AND j.locked_until > j.next_attempt_at \
            THEN j.locked_until ELSE j.next_attempt_at END) AS at FROM outbox_jobs j WHERE j.state = 'pending' \
            AND NOT EXISTS (SELECT 1 FROM outbox_jobs p WHERE p.connector = j.connector AND p.resource_id = j.resource_id \
                            AND p.state IN ('pending', 'held', 'dead') AND p.id < j.id)";
        let mut conn = self.conn()?;
        let at: At = match &mut *conn {
            DbConn::Sqlite(c) => diesel::sql_query(NEXT).get_result(c)?,
            DbConn::Pg(c) => diesel::sql_query(NEXT).get_result(c)?,
        };
        Ok(at.at)
    }

    fn release_claims(&self) -> StoreResult<usize> {
        self.write(|conn| {
            Ok(
                diesel::update(outbox_jobs::table.filter(outbox_jobs::locked_until.is_not_null()))
                    .set(outbox_jobs::locked_until.eq(None::<String>))
                    .execute(conn)?,
            )
        })
    }

    fn complete_job(&self, job: &JobRow, d: &Delivered, now: &str) -> StoreResult<()> {
        self.write(|conn| complete_in(conn, job, d, now))
    }

    fn complete_jobs(&self, done: &[Done], now: &str) -> StoreResult<()> {
        if done.is_empty() {
            return Ok(());
        }
        self.write(|conn| {
            for d in done {
                if !d.coalesced.is_empty() {
                    diesel::delete(
                        outbox_jobs::table
                            .filter(outbox_jobs::id.eq_any(&d.coalesced))
                            .filter(outbox_jobs::state.eq(PENDING)),
                    )
                    .execute(conn)?;
                }
                complete_in(conn, &d.job, &d.delivered, now)?;
                enqueue(conn, &d.follow_ups, now)?;
                // After the delivery's own record: a completion that raced ahead of it
                // (the target called back first) then has the last word on the mapping.
                if let Some(n) = &d.notification {
                    add_notification_in(conn, n)?;
                }
            }
            Ok(())
        })
    }

    fn discard_dead(&self, id: i64, now: &str) -> StoreResult<Option<JobRow>> {
        self.write(|conn| {
            let Some(job) = outbox_jobs::table
                .find(id)
                .filter(outbox_jobs::state.eq(DEAD))
                .select(JobRow::as_select())
                .first(conn)
                .optional()?
            else {
                return Ok(None);
            };
            // Only while it is still dead: a retry or another discard racing this one (on
            // PostgreSQL both can read it dead) takes it once, never twice.
            let taken = diesel::delete(
                outbox_jobs::table
                    .find(id)
                    .filter(outbox_jobs::state.eq(DEAD)),
            )
            .execute(conn)?;
            if taken == 0 {
                return Ok(None);
            }
            let others: Vec<String> = outbox_jobs::table
                .filter(outbox_jobs::resource_id.eq(&job.resource_id))
                .filter(outbox_jobs::connector.eq(&job.connector))
                .select(outbox_jobs::state)
                .load(conn)?;
            let state = if others.iter().any(|s| s == DEAD) {
                MappingState::Dead
            } else if !others.is_empty() {
                MappingState::Pending
            } else {
                MappingState::Synced
            };
            diesel::update(mappings::table.find((&job.resource_id, &job.connector)))
                .set((
                    mappings::state.eq(state.as_str()),
                    mappings::last_error.eq(None::<String>),
                    mappings::note.eq(format!(
                        "an administrator discarded dead job {} ({}): the target never got it",
                        job.id, job.event
                    )),
                    mappings::updated.eq(now),
                ))
                .execute(conn)?;
            Ok(Some(job))
        })
    }

    fn drop_superseded(&self, job: &JobRow, note: &str, now: &str) -> StoreResult<()> {
        self.write(|conn| {
            if diesel::delete(held(job)).execute(conn)? == 0 {
                return Ok(());
            }
            let others: Vec<String> = outbox_jobs::table
                .filter(outbox_jobs::resource_id.eq(&job.resource_id))
                .filter(outbox_jobs::connector.eq(&job.connector))
                .select(outbox_jobs::state)
                .load(conn)?;
            let exists = resources::table
                .find(&job.resource_id)
                .count()
                .get_result::<i64>(conn)?
                > 0;
            // What the mapping shows once this job is gone: its worst unresolved job, else
            // what the target holds (the newer state, or nothing since the delete).
            let state = if others.iter().any(|s| s == DEAD) {
                MappingState::Dead
            } else if !others.is_empty() {
                MappingState::Pending
            } else if exists {
                MappingState::Synced
            } else {
                MappingState::Deleted
            };
            diesel::update(mappings::table.find((&job.resource_id, &job.connector)))
                .filter(mappings::state.eq(MappingState::Pending.as_str()))
                .set((
                    mappings::state.eq(state.as_str()),
                    mappings::note.eq(note),
                    mappings::updated.eq(now),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    fn reschedule_job(
        &self,
        job: &JobRow,
        next_at: &str,
        error: &str,
        now: &str,
    ) -> StoreResult<()> {
        self.write(|conn| {
            let n = diesel::update(held(job))
                .set((
                    outbox_jobs::next_attempt_at.eq(next_at),
                    outbox_jobs::locked_until.eq(None::<String>),
                    outbox_jobs::last_error.eq(error),
                    outbox_jobs::updated.eq(now),
                ))
                .execute(conn)?;
            if n == 0 {
                return Ok(());
            }
            diesel::update(mappings::table.find((&job.resource_id, &job.connector)))
                .set((
                    mappings::state.eq(MappingState::Failed.as_str()),
                    mappings::last_error.eq(error),
                    mappings::attempts.eq(job.attempts),
                    mappings::updated.eq(now),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    fn bury_job(&self, job: &JobRow, failure: Failure, error: &str, now: &str) -> StoreResult<()> {
        self.write(|conn| {
            let n = diesel::update(held(job))
                .set((
                    outbox_jobs::state.eq(DEAD),
                    outbox_jobs::failure.eq(failure.as_str()),
                    outbox_jobs::secret.eq(None::<String>),
                    outbox_jobs::locked_until.eq(None::<String>),
                    outbox_jobs::last_error.eq(error),
                    outbox_jobs::updated.eq(now),
                ))
                .execute(conn)?;
            if n == 0 {
                return Ok(());
            }
            diesel::update(mappings::table.find((&job.resource_id, &job.connector)))
                .set((
                    mappings::state.eq(DEAD),
                    mappings::last_error.eq(error),
                    mappings::attempts.eq(job.attempts),
                    mappings::updated.eq(now),
                ))
                .execute(conn)?;
            Ok(())
        })
    }

    fn list_jobs(
        &self,
        state: Option<JobState>,
        connector: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<JobRow>> {
        let mut conn = self.conn()?;
        let mut q = outbox_jobs::table.into_boxed();
        if let Some(s) = state {
            q = q.filter(outbox_jobs::state.eq(s.as_str()));
        }
        if let Some(c) = connector {
            q = q.filter(outbox_jobs::connector.eq(c.to_string()));
        }
        Ok(q.order(outbox_jobs::id.asc())
            .limit(limit)
            .select(JobRow::as_select())
            .load(&mut *conn)?)
    }

    fn retry_dead(
        &self,
        id: Option<i64>,
        connector: Option<&str>,
        now: &str,
        resync: &dyn Fn(&JobRow) -> Option<(Event, String)>,
    ) -> StoreResult<usize> {
        let mut q = outbox_jobs::table
            .filter(outbox_jobs::state.eq(DEAD))
            .into_boxed();
        if let Some(id) = id {
            q = q.filter(outbox_jobs::id.eq(id));
        }
        if let Some(c) = connector {
            q = q.filter(outbox_jobs::connector.eq(c.to_string()));
        }
        let dead: Vec<JobRow> = {
            let mut conn = self.conn()?;
            q.select(JobRow::as_select()).load(&mut *conn)?
        };
        let rebuilt: Vec<(i64, Option<(Event, String)>)> =
            dead.iter().map(|j| (j.id, resync(j))).collect();
        self.write(|conn| {
            let mut n = 0;
            for (id, fresh) in &rebuilt {
                let target = outbox_jobs::table
                    .filter(outbox_jobs::id.eq(id))
                    .filter(outbox_jobs::state.eq(DEAD));
                let again = (
                    outbox_jobs::state.eq(PENDING),
                    outbox_jobs::attempts.eq(0),
                    outbox_jobs::next_attempt_at.eq(now),
                    outbox_jobs::created.eq(now),
                    outbox_jobs::updated.eq(now),
                );
                n += match fresh {
                    Some((event, payload)) => diesel::update(target)
                        .set((
                            again,
                            outbox_jobs::event.eq(event.as_str()),
                            outbox_jobs::payload.eq(payload),
                        ))
                        .execute(conn)?,
                    None => diesel::update(target).set(again).execute(conn)?,
                };
            }
            Ok(n)
        })
    }

    fn wait_state_of(&self, token: &str) -> StoreResult<WaitState> {
        let mut conn = self.conn()?;
        type Row = (String, String, Option<String>, Option<String>);
        let rows: Vec<Row> = outbox_jobs::table
            .filter(outbox_jobs::wait_token.eq(token))
            .select((
                outbox_jobs::connector,
                outbox_jobs::state,
                outbox_jobs::last_error,
                outbox_jobs::failure,
            ))
            .load(&mut *conn)?;
        if let Some((c, _, e, f)) = rows.iter().find(|(_, s, _, _)| s == DEAD) {
            return Ok(WaitState::Dead {
                connector: c.clone(),
                failure: f.as_deref().and_then(|f| f.parse().ok()),
                error: e.clone().unwrap_or_default(),
            });
        }
        Ok(if rows.is_empty() {
            WaitState::Delivered
        } else {
            WaitState::Pending
        })
    }

    fn drop_dead_jobs_of(&self, token: &str) -> StoreResult<usize> {
        self.write(|conn| {
            Ok(diesel::delete(
                outbox_jobs::table
                    .filter(outbox_jobs::wait_token.eq(token))
                    .filter(outbox_jobs::state.eq(DEAD)),
            )
            .execute(conn)?)
        })
    }

    fn following_jobs(&self, job: &JobRow, now: &str, limit: i64) -> StoreResult<Vec<JobRow>> {
        let mut conn = self.conn()?;
        Ok(outbox_jobs::table
            .filter(outbox_jobs::connector.eq(&job.connector))
            .filter(outbox_jobs::resource_id.eq(&job.resource_id))
            .filter(outbox_jobs::state.eq(PENDING))
            .filter(outbox_jobs::id.gt(job.id))
            .filter(
                outbox_jobs::locked_until
                    .is_null()
                    .or(outbox_jobs::locked_until.lt(now)),
            )
            .order(outbox_jobs::id.asc())
            .limit(limit)
            .select(JobRow::as_select())
            .load(&mut *conn)?)
    }

    fn queue_health(&self, connector: &str) -> StoreResult<QueueHealth> {
        let mut conn = self.conn()?;
        let conn = &mut *conn;
        let count = |state: &str, conn: &mut DbConn| -> StoreResult<i64> {
            Ok(outbox_jobs::table
                .filter(outbox_jobs::connector.eq(connector))
                .filter(outbox_jobs::state.eq(state))
                .count()
                .get_result(conn)?)
        };
        let pending = count(PENDING, conn)?;
        let dead = count(DEAD, conn)?;
        let held = count(JobState::Held.as_str(), conn)?;
        let oldest_pending: Option<String> = outbox_jobs::table
            .filter(outbox_jobs::connector.eq(connector))
            .filter(outbox_jobs::state.eq(PENDING))
            .order(outbox_jobs::id.asc())
            .select(outbox_jobs::created)
            .first(conn)
            .optional()?;
        let last_success: Option<String> = mappings::table
            .filter(mappings::connector.eq(connector))
            .filter(mappings::state.eq_any([
                MappingState::Synced.as_str(),
                MappingState::Deleted.as_str(),
            ]))
            .order(mappings::updated.desc())
            .select(mappings::updated)
            .first(conn)
            .optional()?;
        // An unresolved failure: a mapping that failed or died, or one a newer change has
        // marked pending again (enqueue keeps its last error; a success clears it).
        let last_error: Option<(Option<String>, String)> = mappings::table
            .filter(mappings::connector.eq(connector))
            .filter(mappings::state.eq_any([
                MappingState::Failed.as_str(),
                MappingState::Dead.as_str(),
                MappingState::Pending.as_str(),
            ]))
            .filter(mappings::last_error.is_not_null())
            .order(mappings::updated.desc())
            .select((mappings::last_error, mappings::updated))
            .first(conn)
            .optional()?;
        let blocked = blocked_in(conn)?
            .iter()
            .filter(|(_, c)| c == connector)
            .count() as i64;
        Ok(QueueHealth {
            pending,
            dead,
            held,
            blocked,
            oldest_pending,
            last_success,
            last_error: last_error.as_ref().and_then(|(e, _)| e.clone()),
            last_error_at: last_error.map(|(_, at)| at),
        })
    }
}
