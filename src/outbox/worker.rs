//! Workers: claim due jobs, hand each to its connector, and record the outcome: delivered,
//! retried later (exponential backoff with jitter, Retry-After honoured), or dead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rand::Rng;
use serde_json::Value;

use super::seal::{aad, Sealer};
use super::Wakeup;
use crate::clock::{format_time, Clock};
use crate::connectors::{Connector, ConnectorError, Context, Delivery, Known, Outcome};
use crate::metrics::{Metrics, Outcome as CallOutcome};
use crate::model::{Change, Event, Failure, Mapping, NotificationState, ResourceKind};
use crate::secret::Secret;
use crate::store::{BrakeStore, DryRunStore, ResourceStore, SqlStore, StoreResult, Verdict};
use crate::store::{
    Delivered, Done, JobRow, JobStore, MappingRow, MappingStore, NewJob, NotificationRow,
};

/// Most jobs delivered as one when they are consecutive updates of one resource.
const COALESCE_LIMIT: i64 = 50;

/// The document of `id` as stored now, with its id (None once deleted).
fn stored(store: &SqlStore, kind: ResourceKind, id: &str) -> StoreResult<Option<Value>> {
    let Some(row) = store.get(kind.as_str(), id)? else {
        return Ok(None);
    };
    let mut doc: Value = serde_json::from_str(&row.data).unwrap_or(Value::Null);
    if let Some(o) = doc.as_object_mut() {
        o.insert("id".into(), Value::String(row.id));
    }
    Ok(Some(doc))
}

/// What a connector may ask of the store while it delivers, on behalf of one connector.
struct StoreContext<'a> {
    store: &'a SqlStore,
    connector: &'a str,
    now: String,
}

fn store_err(e: crate::store::StoreError) -> ConnectorError {
    ConnectorError::retry(format!("the bridge's store: {e}"))
}

impl Context for StoreContext<'_> {
    fn resource(&self, kind: ResourceKind, id: &str) -> Result<Option<Value>, ConnectorError> {
        stored(self.store, kind, id).map_err(store_err)
    }

    fn record(&self, resource_id: &str, outcome: &Outcome) -> Result<(), ConnectorError> {
        self.store
            .record_mapping(
                resource_id,
                self.connector,
                "User",
                outcome.target_id.as_deref(),
                outcome.principal.as_deref(),
                &self.now,
            )
            .map_err(store_err)
    }
}

/// The job that deactivates `user` in the target of `group_job`, which `user` left the
/// scope of. It carries no version: it states nothing about the user's document.
fn left_scope_job(group_job: &JobRow, user: &str) -> NewJob {
    let mut change = Change::new(Event::UserLeftScope, ResourceKind::User, user, None);
    change.group = Some(group_job.resource_id.clone());
    NewJob {
        connector: group_job.connector.clone(),
        resource_type: ResourceKind::User,
        resource_id: user.to_string(),
        event: Event::UserLeftScope,
        version: 0,
        payload: change.payload(),
        secret: None,
        wait_token: None,
        priority: crate::store::jobs::LIVE,
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// At most this many attempts of a job that keeps failing in a way a retry can help;
    /// None: as many as fit in `max_age`.
    pub max_attempts: Option<i32>,
    /// A job that keeps failing that way is retried until it is this old.
    pub max_age: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How long a claimed job stays reserved before another worker may take it.
    pub lease: Duration,
    /// How long the mappings of a resource deleted from every target stay visible to
    /// administrators.
    pub deleted_retention: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: None,
            max_age: Duration::from_secs(24 * 3600),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
            lease: Duration::from_secs(120),
            deleted_retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// Whether a job that failed on its `attempts`-th attempt, `age` old, gets another.
    pub fn tries_again(&self, attempts: i32, age: Duration) -> bool {
        self.max_attempts.is_none_or(|max| attempts < max) && age < self.max_age
    }

    /// The delay before attempt `attempts + 1`: base * 2^(attempts-1), capped, ±20% jitter,
    /// and never less than the target's Retry-After.
    pub fn delay(&self, attempts: i32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempts.clamp(1, 20).saturating_sub(1) as u32);
        let capped = exp.min(self.max_delay);
        let jitter = rand::thread_rng().gen_range(0.8..1.2);
        let d = capped.mul_f64(jitter);
        match retry_after {
            Some(r) if r > d => r,
            _ => d,
        }
    }
}

pub struct Dispatcher {
    store: Arc<SqlStore>,
    connectors: HashMap<String, Arc<dyn Connector>>,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    wakeup: Arc<Wakeup>,
    sealer: Sealer,
    stop: AtomicBool,
    metrics: Arc<Metrics>,
    /// Each braked connector's limit and window.
    brakes: HashMap<String, Brake>,
}

/// A connector's deletion brake: at most `limit` deactivations and deletions per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Brake {
    pub limit: u32,
    pub window: Duration,
}

impl Dispatcher {
    pub fn new(
        store: Arc<SqlStore>,
        connectors: HashMap<String, Arc<dyn Connector>>,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
        wakeup: Arc<Wakeup>,
        sealer: Sealer,
    ) -> Dispatcher {
        Dispatcher {
            store,
            connectors,
            clock,
            policy,
            wakeup,
            sealer,
            stop: AtomicBool::new(false),
            metrics: Arc::new(Metrics::new()),
            brakes: HashMap::new(),
        }
    }

    /// Holds deprovisions past each named connector's brake.
    pub fn with_brakes(mut self, brakes: HashMap<String, Brake>) -> Dispatcher {
        self.brakes = brakes;
        self
    }

    /// Counts deliveries in `metrics` (the application's), rather than a set of its own.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Dispatcher {
        self.metrics = metrics;
        self
    }

    /// Claims and delivers one batch; returns how many jobs it handled. The claim has an
    /// owner of its own, and while the batch is delivered its lease is renewed every third
    /// of the lease, so a slow delivery is never taken over by another worker; each success
    /// is recorded as soon as it happens, so a crash mid-batch loses no record of it.
    pub fn run_once(&self, batch: i64) -> StoreResult<usize> {
        let now = self.clock.now();
        let lease = chrono::Duration::from_std(self.policy.lease).unwrap_or_default();
        let owner = uuid::Uuid::new_v4().to_string();
        let jobs =
            self.store
                .claim_jobs(&format_time(now), &format_time(now + lease), batch, &owner)?;
        let n = jobs.len();
        if n == 0 {
            return Ok(0);
        }
        let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
        let finished = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let every = (self.policy.lease / 3).max(Duration::from_millis(50));
                let mut last = std::time::Instant::now();
                while !finished.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20).min(every));
                    if last.elapsed() >= every {
                        last = std::time::Instant::now();
                        let until = format_time(self.clock.now() + lease);
                        if let Err(e) = self.store.renew_claims(&owner, &ids, &until) {
                            log::warn!("outbox: cannot renew a lease: {e}");
                        }
                    }
                }
            });
            let result = (|| {
                for job in jobs {
                    // A store error about one job (a busy database, say) puts that job back
                    // a little later rather than stranding it and the rest of the batch
                    // under a claim until the lease runs out.
                    let (id, retry) = (job.id, job.clone());
                    let handled = match self.handle(job) {
                        Ok(h) => h,
                        Err(e) => {
                            log::warn!("outbox: job {id}: {e}; trying it again shortly");
                            let now = self.clock.now();
                            let next = now
                                + chrono::Duration::from_std(self.policy.base_delay)
                                    .unwrap_or_default();
                            if let Err(e2) = self.store.reschedule_job(
                                &retry,
                                &format_time(next),
                                &format!("the bridge's database: {e}"),
                                &format_time(now),
                            ) {
                                log::error!("outbox: job {id}: cannot put it back: {e2}");
                            }
                            continue;
                        }
                    };
                    if let Some(d) = handled {
                        self.store.complete_jobs(
                            std::slice::from_ref(&d),
                            &format_time(self.clock.now()),
                        )?;
                    }
                }
                Ok(n)
            })();
            finished.store(true, Ordering::SeqCst);
            result
        })
    }

    /// Delivers one job. A failure is recorded at once; a success is handed back to be
    /// recorded with the rest of its batch.
    fn handle(&self, job: JobRow) -> StoreResult<Option<Done>> {
        // Every line this delivery causes carries the job and its connector.
        let _span =
            tracing::info_span!("job", job_id = job.id, connector = %job.connector).entered();
        let now = format_time(self.clock.now());
        let Some(connector) = self.connectors.get(&job.connector) else {
            self.store.bury_job(
                &job,
                Failure::Bridge,
                &format!("no connector named '{}' is configured", job.connector),
                &now,
            )?;
            return Ok(None);
        };
        let mut change = match Change::from_payload(&job.payload) {
            Ok(c) => c,
            Err(e) => {
                let why = format!("the job's payload cannot be read: {e}");
                self.store.bury_job(&job, Failure::Bridge, &why, &now)?;
                return Ok(None);
            }
        };
        let mapping = self
            .store
            .mapping(&job.resource_id, &job.connector)?
            .as_ref()
            .map(MappingRow::to_model);
        if let Some(why) = self.superseded(&job, &change, mapping.as_ref())? {
            log::info!("job {} ({} {}): {why}", job.id, job.event, job.resource_id);
            self.store.drop_superseded(&job, &why, &now)?;
            return Ok(None);
        }
        if !connector.supports(job.event) {
            let skipped = format!(
                "{} does not support {}: skipped",
                connector.kind(),
                job.event
            );
            log::info!("job {}: {skipped}", job.id);
            self.metrics.call(
                &job.connector,
                job.event.as_str(),
                CallOutcome::Skipped,
                Duration::ZERO,
            );
            return Ok(Some(Done {
                job,
                delivered: Delivered {
                    version: change.version,
                    note: Some(skipped),
                    ..Default::default()
                },
                coalesced: vec![],
                notification: None,
                follow_ups: vec![],
            }));
        }
        if job.event.is_deprovision() {
            if let Some(brake) = self.brakes.get(&job.connector) {
                let since =
                    self.clock.now() - chrono::Duration::from_std(brake.window).unwrap_or_default();
                match self
                    .store
                    .brake(&job, i64::from(brake.limit), &format_time(since), &now)?
                {
                    Verdict::Go => {}
                    Verdict::Held { first } => {
                        if first {
                            log::error!(
                                "connector '{}': more than {} deactivations and deletions within {}s: the deletion brake holds job {} ({} {}) and every further one; `scim-bridge outbox release --connector {}` delivers them, `scim-bridge outbox discard --connector {}` drops them",
                                job.connector,
                                brake.limit,
                                brake.window.as_secs(),
                                job.id,
                                job.event,
                                job.resource_id,
                                job.connector,
                                job.connector
                            );
                        } else {
                            log::warn!(
                                "job {} ({} {}) held by the deletion brake",
                                job.id,
                                job.event,
                                job.resource_id
                            );
                        }
                        return Ok(None);
                    }
                }
            }
        }
        // Consecutive updates of one resource still queued behind this one travel as one
        // change: the target sees the latest document once, with the composed change set.
        let mut coalesced = Vec::new();
        if job.event == Event::UserUpdated && job.secret.is_none() {
            for next in self.store.following_jobs(&job, &now, COALESCE_LIMIT)? {
                if next.event != Event::UserUpdated || next.secret.is_some() {
                    break;
                }
                let Ok(later) = Change::from_payload(&next.payload) else {
                    break;
                };
                change.changes = change.changes.then(&later.changes);
                change.resource = later.resource;
                change.version = later.version;
                coalesced.push(next.id);
            }
        }
        let version = change.version;
        let password = match &job.secret {
            Some(sealed) => match self
                .sealer
                .open(sealed, &aad(&job.connector, &job.resource_id))
            {
                Ok(p) => Some(Secret::new(p)),
                Err(e) => {
                    self.store
                        .bury_job(&job, Failure::Bridge, &e.to_string(), &now)?;
                    return Ok(None);
                }
            },
            None => None,
        };
        let known = if connector.reads(job.event) {
            self.known(&job, &change)?
        } else {
            Known::default()
        };
        let ctx = StoreContext {
            store: &self.store,
            connector: &job.connector,
            now: now.clone(),
        };
        let key = job.key();
        let delivery = Delivery {
            job_id: job.id,
            idempotency_key: &key,
            event: job.event,
            resource_type: job.resource_type,
            resource_id: &job.resource_id,
            change: &change,
            known: &known,
            mapping: mapping.as_ref(),
            password: password.as_ref(),
            ctx: &ctx,
        };
        let started = std::time::Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            connector.deliver(&delivery)
        }))
        .unwrap_or_else(|_| Err(ConnectorError::Permanent("the connector panicked".into())));
        drop(password);
        let now_t = self.clock.now();
        let now = format_time(now_t);
        let age = chrono::DateTime::parse_from_rfc3339(&job.created)
            .map(|c| now_t.signed_duration_since(c).to_std().unwrap_or_default())
            .unwrap_or_default();
        let outcome = match &result {
            Ok(_) => {
                self.metrics.delivered(&job.connector, age, job.attempts);
                CallOutcome::Ok
            }
            Err(ConnectorError::Retryable { .. }) if self.policy.tries_again(job.attempts, age) => {
                CallOutcome::Retry
            }
            Err(_) => CallOutcome::Failed,
        };
        self.metrics.call(
            &job.connector,
            job.event.as_str(),
            outcome,
            started.elapsed(),
        );
        match result {
            Ok(outcome) if outcome.dry_run.is_some() => {
                let calls = Value::from(outcome.dry_run.unwrap_or_default()).to_string();
                self.store.record_dry_run(
                    &job,
                    &coalesced,
                    &calls,
                    outcome.target_id.as_deref(),
                    &now,
                )?;
                Ok(None)
            }
            Ok(outcome) => {
                if let Some(note) = &outcome.note {
                    log::info!("job {} to {}: {note}", job.id, job.connector);
                }
                let notification = outcome
                    .tracking_id
                    .as_ref()
                    .map(|tracking| NotificationRow {
                        tracking_id: tracking.clone(),
                        connector: job.connector.clone(),
                        resource_id: job.resource_id.clone(),
                        kind: job.event,
                        state: NotificationState::Accepted,
                        error: None,
                        created: now.clone(),
                        updated: now.clone(),
                    });
                let follow_ups = outcome
                    .left_scope
                    .iter()
                    .map(|user| left_scope_job(&job, user))
                    .collect();
                Ok(Some(Done {
                    job,
                    delivered: Delivered {
                        target_id: outcome.target_id,
                        principal: outcome.principal,
                        version,
                        note: outcome.note,
                        state: outcome.state,
                    },
                    coalesced,
                    notification,
                    follow_ups,
                }))
            }
            Err(ConnectorError::Conflict(msg)) => {
                let msg = format!("conflict: {msg}");
                log::warn!("job {} to {} is dead: {msg}", job.id, job.connector);
                self.store
                    .bury_job(&job, Failure::Conflict, &msg, &now)
                    .map(|()| None)
            }
            Err(ConnectorError::Permanent(msg)) => {
                log::warn!("job {} to {} is dead: {msg}", job.id, job.connector);
                self.store
                    .bury_job(&job, Failure::Refused, &msg, &now)
                    .map(|()| None)
            }
            Err(ConnectorError::NotFound(msg)) => {
                log::warn!("job {} to {} is dead: {msg}", job.id, job.connector);
                self.store
                    .bury_job(&job, Failure::NotFound, &msg, &now)
                    .map(|()| None)
            }
            Err(ConnectorError::Retryable {
                message,
                retry_after,
            }) => {
                if !self.policy.tries_again(job.attempts, age) {
                    let msg = format!("gave up after {} attempts: {message}", job.attempts);
                    log::warn!("job {} to {} is dead: {msg}", job.id, job.connector);
                    return self
                        .store
                        .bury_job(&job, Failure::GaveUp, &msg, &now)
                        .map(|()| None);
                }
                let delay = self.policy.delay(job.attempts, retry_after);
                let next = now_t + chrono::Duration::from_std(delay).unwrap_or_default();
                log::info!(
                    "job {} to {} failed ({message}); retrying in {:.1}s",
                    job.id,
                    job.connector,
                    delay.as_secs_f64()
                );
                self.store
                    .reschedule_job(&job, &format_time(next), &message, &now)
                    .map(|()| None)
            }
        }
    }

    /// What the bridge holds now about the resources `job` touches: a user's document and
    /// groups; a group's members (those the change names, or all after a rename) with
    /// their mappings in the job's connector and their groups.
    fn known(&self, job: &JobRow, change: &Change) -> StoreResult<Known> {
        // The stored document is read only for the events that use it (a password goes to
        // the user as it stands; a user leaving scope may be gone): every other job carries
        // its document already, and this runs for every vendor delivery.
        let needs_document = matches!(job.event, Event::UserPasswordSet | Event::UserLeftScope);
        let mut known = Known {
            resource: if needs_document {
                stored(&self.store, job.resource_type, &job.resource_id)?
            } else {
                None
            },
            ..Known::default()
        };
        let groups_by_member = |ids: &[String]| -> StoreResult<HashMap<String, Vec<String>>> {
            let mut out: HashMap<String, Vec<String>> = HashMap::new();
            for g in self.store.groups_of(ids)? {
                if let Some(name) = g.display {
                    out.entry(g.member_id).or_default().push(name);
                }
            }
            Ok(out)
        };
        match job.resource_type {
            ResourceKind::User => {
                known.groups = groups_by_member(std::slice::from_ref(&job.resource_id))?
                    .remove(&job.resource_id)
                    .unwrap_or_default();
            }
            ResourceKind::Group => {
                let mut members: Vec<String> = if job.event == Event::GroupRenamed {
                    self.store
                        .members(&job.resource_id)?
                        .into_iter()
                        .map(|m| m.id)
                        .collect()
                } else {
                    let m = &change.members;
                    [m.members(), m.added(), m.removed()].concat()
                };
                members.sort_unstable();
                members.dedup();
                known.member_mappings = self
                    .store
                    .mappings_in(&members, &job.connector)?
                    .into_iter()
                    .map(|r| (r.resource_id.clone(), r.to_model()))
                    .collect();
                known.member_groups = groups_by_member(&members)?;
                known.members = members;
            }
        }
        Ok(known)
    }

    /// Why a job must not reach its target, if it must not: it carries the resource whole
    /// at a version older than the one the target was last given (a snapshot read before
    /// a change that has been delivered since), or it is a snapshot of a resource deleted
    /// since it was read (the delete's own job tells the target).
    fn superseded(
        &self,
        job: &JobRow,
        change: &Change,
        mapping: Option<&Mapping>,
    ) -> StoreResult<Option<String>> {
        let version = change.version;
        let delivered = mapping.and_then(|m| m.last_version);
        if job.event.carries_whole_state() || job.is_snapshot() {
            if let (Some(v), Some(d)) = (version, delivered) {
                if v < d {
                    return Ok(Some(format!(
                        "dropped: it carries version {v}, and the target was given version {d}"
                    )));
                }
            }
        }
        if job.is_snapshot()
            && self
                .store
                .get(job.resource_type.as_str(), &job.resource_id)?
                .is_none()
        {
            return Ok(Some(
                "dropped: the resource was deleted after this copy of it was read".into(),
            ));
        }
        Ok(None)
    }

    /// Delivers every job that is due now, batch after batch, on this thread, until none
    /// is left to claim; returns how many it handled. What a delivery reschedules for
    /// later stays for a later call. The outbox without background workers (tests, and
    /// embedding) is delivered this way.
    pub fn deliver_due(&self) -> StoreResult<usize> {
        let mut handled = 0;
        loop {
            match self.run_once(16)? {
                0 => return Ok(handled),
                n => handled += n,
            }
        }
    }

    /// When the next pending job may be claimed; `None` when none is pending.
    pub fn next_due(&self) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(self
            .store
            .next_claimable_at()?
            .and_then(|t| crate::clock::parse_time(&t).ok()))
    }

    /// Starts `workers` threads that deliver until [`Dispatcher::stop`].
    pub fn spawn(self: &Arc<Self>, workers: usize) -> Vec<JoinHandle<()>> {
        // SQLite serves one process: jobs it still holds were claimed by a process that
        // died, and can be taken back at once. On PostgreSQL other live bridges may hold
        // theirs, so a dead process's jobs wait for their lease to pass.
        if self.store.backend() == crate::store::Backend::Sqlite {
            match self.store.release_claims() {
                Ok(0) => {}
                Ok(n) => log::info!("outbox: took back {n} jobs claimed before a restart"),
                Err(e) => log::error!("outbox: {e}"),
            }
        }
        (0..workers)
            .map(|i| {
                let me = self.clone();
                std::thread::Builder::new()
                    .name(format!("outbox-{i}"))
                    .spawn(move || me.work())
                    .unwrap_or_else(|e| panic!("cannot start an outbox worker thread: {e}"))
            })
            .collect()
    }

    /// Forgets the mappings of resources deleted longer ago than the retention.
    pub fn prune(&self) -> StoreResult<usize> {
        let before = self.clock.now()
            - chrono::Duration::from_std(self.policy.deleted_retention)
                .unwrap_or_else(|_| chrono::Duration::days(30));
        self.store.prune_deleted(&format_time(before))
    }

    fn work(&self) {
        let mut pruned = std::time::Instant::now() - Duration::from_secs(3600);
        while !self.stop.load(Ordering::SeqCst) {
            if pruned.elapsed() >= Duration::from_secs(3600) {
                pruned = std::time::Instant::now();
                match self.prune() {
                    Ok(0) => {}
                    Ok(n) => log::info!("outbox: forgot {n} mappings of long-deleted resources"),
                    Err(e) => log::error!("outbox: {e}"),
                }
            }
            match self.run_once(4) {
                Ok(0) => self.wakeup.wait(Duration::from_millis(250)),
                Ok(_) => {}
                Err(e) => {
                    log::error!("outbox: {e}");
                    self.wakeup.wait(Duration::from_secs(1));
                }
            }
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wakeup.wake();
    }
}
