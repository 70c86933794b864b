//! Reconcile: read each user back from a target through the connector's own lookup calls,
//! compare it with what the bridge would send, and report per user (in sync, missing,
//! different with the fields, out of scope, or the error the read met), plus the users
//! the target holds that the bridge does not know, where the target can list them.
//! `repair` queues the changes that bring the target back to the bridge's state. Reads go
//! out on a few threads at once and within the connector's request budget, so a reconcile
//! never floods a target; a password is never read or shown.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Serialize;
use serde_json::{json, Value};

use super::error::BridgeResult;
use super::Resources;
use crate::clock::{format_time, Clock};
use crate::connectors::read::{FieldDrift, Standing, Subject};
use crate::connectors::Connector;
use crate::scim::ScimError;
use crate::store::{BackfillStore, ResourceRow, ResourceStore};

/// What reconcile needs of the store.
pub trait ReconcileWork: BackfillStore + ResourceStore {}
impl<T: BackfillStore + ResourceStore> ReconcileWork for T {}

/// How hard a reconcile may press a target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Users read at once.
    pub concurrency: usize,
    /// Users read per second, at most.
    pub per_sec: f64,
}

/// A connector as reconcile sees it.
#[derive(Clone)]
pub struct Readable {
    pub connector: Arc<dyn Connector>,
    pub limits: Limits,
}

/// Where one user stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    InSync,
    Missing,
    Different,
    OutOfScope,
    /// The read failed (the target did not answer, or the user cannot be mapped).
    Error,
}

/// One user's line of the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserReport {
    pub id: String,
    pub user_name: Option<String>,
    pub principal: Option<String>,
    pub state: UserState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldDrift>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a reconcile found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub connector: String,
    /// False where the target cannot be read back; `reason` says why, and nothing is guessed.
    pub readable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub started: String,
    pub finished: String,
    pub users: usize,
    pub in_sync: usize,
    pub missing: usize,
    pub different: usize,
    pub out_of_scope: usize,
    pub errors: usize,
    /// Principals the target holds that no user of the bridge has; None where the target
    /// cannot list its users (or listing them failed: `list_error`).
    pub unknown_to_bridge: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_error: Option<String>,
    /// Users whose repair was queued (with `repair`); the sync run delivers them.
    pub repair_queued: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair_run: Option<i64>,
    pub results: Vec<UserReport>,
}

/// A run's progress, shared with whoever watches it.
#[derive(Debug, Default)]
pub struct Progress {
    pub total: AtomicUsize,
    pub done: AtomicUsize,
}

/// A run an administrator started through the admin API.
struct Run {
    repair: bool,
    started: chrono::DateTime<chrono::Utc>,
    progress: Arc<Progress>,
    finished: AtomicBool,
    outcome: Mutex<Option<Result<Report, String>>>,
    /// The run's thread, until someone waits for it.
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Users read and compared per page.
const PAGE: i64 = 200;

pub struct Reconcile {
    store: Arc<dyn ReconcileWork>,
    resources: Arc<Resources>,
    clock: Arc<dyn Clock>,
    connectors: BTreeMap<String, Readable>,
    runs: Mutex<HashMap<String, Arc<Run>>>,
}

fn blocking_limiter(per_sec: f64, concurrency: usize) -> Option<DefaultDirectRateLimiter> {
    if !(per_sec.is_finite() && per_sec > 0.0) {
        return None;
    }
    let period = Duration::from_secs_f64(1.0 / per_sec).max(Duration::from_nanos(1));
    let burst = NonZeroU32::new(concurrency.clamp(1, 64) as u32).unwrap_or(NonZeroU32::MIN);
    Some(RateLimiter::direct(
        Quota::with_period(period)?.allow_burst(burst),
    ))
}

/// Waits for the budget to allow one more read.
fn take(limiter: Option<&DefaultDirectRateLimiter>) {
    use governor::clock::{Clock as _, DefaultClock};
    let Some(l) = limiter else { return };
    let clock = DefaultClock::default();
    while let Err(not_until) = l.check() {
        std::thread::sleep(not_until.wait_time_from(clock.now()));
    }
}

impl Reconcile {
    pub fn new(
        store: Arc<dyn ReconcileWork>,
        resources: Arc<Resources>,
        clock: Arc<dyn Clock>,
        connectors: BTreeMap<String, Readable>,
    ) -> Reconcile {
        Reconcile {
            store,
            resources,
            clock,
            connectors,
            runs: Mutex::new(HashMap::new()),
        }
    }

    fn readable(&self, connector: &str) -> BridgeResult<&Readable> {
        self.connectors.get(connector).ok_or_else(|| {
            ScimError::NotFound(format!("no connector is named '{connector}'")).into()
        })
    }

    /// Reconciles one connector now, on this thread (and a few of its own).
    pub fn run(&self, connector: &str, repair: bool, progress: &Progress) -> BridgeResult<Report> {
        let readable = self.readable(connector)?;
        let c = readable.connector.clone();
        let started = format_time(self.clock.now());
        let mut report = Report {
            connector: connector.to_string(),
            readable: true,
            reason: None,
            started: started.clone(),
            finished: started,
            users: 0,
            in_sync: 0,
            missing: 0,
            different: 0,
            out_of_scope: 0,
            errors: 0,
            unknown_to_bridge: None,
            list_error: None,
            repair_queued: 0,
            repair_run: None,
            results: Vec::new(),
        };
        if let Some(why) = c.unreadable() {
            report.readable = false;
            report.reason = Some(why);
            return Ok(report);
        }
        let total = self.store.count_resources("User")?;
        progress
            .total
            .store(usize::try_from(total).unwrap_or(0), Ordering::Relaxed);
        let limiter = blocking_limiter(readable.limits.per_sec, readable.limits.concurrency);
        let threads = readable.limits.concurrency.clamp(1, 64);
        let mut to_repair: Vec<ResourceRow> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let rows = self
                .store
                .backfill_page(connector, "User", true, after.as_deref(), PAGE)?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id.clone());
            let lines = self.page(&*c, &rows, threads, limiter.as_ref(), progress)?;
            for (row, line) in rows.iter().zip(lines) {
                match line.state {
                    UserState::InSync => report.in_sync += 1,
                    UserState::Missing => report.missing += 1,
                    UserState::Different => report.different += 1,
                    UserState::OutOfScope => report.out_of_scope += 1,
                    UserState::Error => report.errors += 1,
                }
                if repair && matches!(line.state, UserState::Missing | UserState::Different) {
                    to_repair.push(row.clone());
                }
                report.results.push(line);
            }
            if (rows.len() as i64) < PAGE {
                break;
            }
        }
        report.users = report.results.len();
        take(limiter.as_ref());
        // A listing that fails costs the report its unknown users, not the users read.
        match c.principals() {
            Ok(Some(held)) => {
                let known: HashSet<String> = report
                    .results
                    .iter()
                    .filter_map(|r| r.principal.as_deref())
                    .map(str::to_lowercase)
                    .collect();
                let mut unknown: Vec<String> = held
                    .into_iter()
                    .filter(|p| !known.contains(&p.to_lowercase()))
                    .collect();
                unknown.sort();
                unknown.dedup();
                report.unknown_to_bridge = Some(unknown);
            }
            Ok(None) => {}
            Err(e) => report.list_error = Some(e.to_string()),
        }
        if !to_repair.is_empty() {
            let now = format_time(self.clock.now());
            let run = self.store.start_run(connector, false, &now)?;
            let mut queued = 0;
            for chunk in to_repair.chunks(PAGE as usize) {
                let jobs = self.resources.backfill_jobs(connector, "User", chunk)?;
                queued += self.store.queue_repair(run, &jobs, &now)?;
            }
            self.resources.wake_outbox();
            report.repair_queued = queued;
            report.repair_run = Some(run);
        }
        report.finished = format_time(self.clock.now());
        Ok(report)
    }

    /// Reads one page of users on `threads` threads; the lines in the rows' order.
    fn page(
        &self,
        c: &dyn Connector,
        rows: &[ResourceRow],
        threads: usize,
        limiter: Option<&DefaultDirectRateLimiter>,
        progress: &Progress,
    ) -> BridgeResult<Vec<UserReport>> {
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut groups: HashMap<String, Vec<String>> = HashMap::new();
        for g in self.store.groups_of(&ids)? {
            if let Some(d) = g.display {
                groups.entry(g.member_id).or_default().push(d);
            }
        }
        let next = AtomicUsize::new(0);
        let lines: Mutex<Vec<Option<UserReport>>> = Mutex::new(vec![None; rows.len()]);
        std::thread::scope(|s| {
            for _ in 0..threads.min(rows.len()) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(row) = rows.get(i) else { break };
                    take(limiter);
                    let no_groups = Vec::new();
                    let g = groups.get(&row.id).unwrap_or(&no_groups);
                    let line = inspect(c, row, g);
                    progress.done.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut l) = lines.lock() {
                        l[i] = Some(line);
                    }
                });
            }
        });
        let lines = lines.into_inner().unwrap_or_else(|p| p.into_inner());
        Ok(lines.into_iter().flatten().collect())
    }

    /// Starts a reconcile on a thread of its own (the admin API); 409 while one runs.
    pub fn start(self: &Arc<Self>, connector: &str, repair: bool) -> BridgeResult<Value> {
        self.readable(connector)?;
        let run = {
            let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(r) = runs.get(connector) {
                if !r.finished.load(Ordering::Acquire) {
                    return Err(ScimError::Conflict(format!(
                        "a reconcile of '{connector}' is running; watch it at GET .../reconcile"
                    ))
                    .into());
                }
            }
            let run = Arc::new(Run {
                repair,
                started: self.clock.now(),
                progress: Arc::new(Progress::default()),
                finished: AtomicBool::new(false),
                outcome: Mutex::new(None),
                thread: Mutex::new(None),
            });
            runs.insert(connector.to_string(), run.clone());
            run
        };
        let (me, name, r) = (self.clone(), connector.to_string(), run.clone());
        let thread = std::thread::Builder::new()
            .name(format!("reconcile-{name}"))
            .spawn(move || {
                let out = me.run(&name, r.repair, &r.progress);
                if let Err(e) = &out {
                    log::warn!("reconcile of '{name}' failed: {e}");
                }
                *r.outcome.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(out.map_err(|e| e.to_scim().detail()));
                r.finished.store(true, Ordering::Release);
            })
            .map_err(|e| ScimError::Internal(format!("cannot start a reconcile: {e}")))?;
        *run.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        self.status(connector)
    }

    fn latest(&self, connector: &str) -> Option<Arc<Run>> {
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(connector)
            .cloned()
    }

    /// Waits until the latest run of `connector` (if any) has finished; returns its status.
    pub fn wait(&self, connector: &str) -> BridgeResult<Value> {
        let run = self.latest(connector);
        let thread = run.and_then(|r| r.thread.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(t) = thread {
            // A run that panicked has no outcome; its status says it failed.
            let _ = t.join();
        }
        self.status(connector)
    }

    /// The latest run's progress (done, total, rate, time left) and, once it finished,
    /// its report.
    pub fn status(&self, connector: &str) -> BridgeResult<Value> {
        self.readable(connector)?;
        let run = self.latest(connector);
        let Some(run) = run else {
            return Ok(json!({"connector": connector, "state": "never", "total": 0, "done": 0}));
        };
        let total = run.progress.total.load(Ordering::Relaxed);
        let done = run.progress.done.load(Ordering::Relaxed);
        let elapsed = (self
            .clock
            .now()
            .signed_duration_since(run.started)
            .num_milliseconds()
            .max(1) as f64)
            / 1000.0;
        let rate = done as f64 / elapsed;
        let left = total.saturating_sub(done);
        let eta = (left > 0 && rate > 0.0).then(|| (left as f64 / rate).ceil() as i64);
        let mut out = json!({
            "connector": connector,
            "repair": run.repair,
            "started": format_time(run.started),
            "state": "running",
            "total": total,
            "done": done,
            "ratePerSec": (rate * 10.0).round() / 10.0,
            "etaSecs": eta,
        });
        if run.finished.load(Ordering::Acquire) {
            match &*run.outcome.lock().unwrap_or_else(|p| p.into_inner()) {
                Some(Ok(report)) => {
                    out["state"] = json!("finished");
                    out["report"] = serde_json::to_value(report).unwrap_or(Value::Null);
                }
                Some(Err(e)) => {
                    out["state"] = json!("failed");
                    out["error"] = json!(e);
                }
                None => {}
            }
        }
        Ok(out)
    }
}

/// One user's line: the connector reads it back and compares.
fn inspect(c: &dyn Connector, row: &ResourceRow, groups: &[String]) -> UserReport {
    let doc: Value = serde_json::from_str(&row.data).unwrap_or(Value::Null);
    let user_name = doc
        .get("userName")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut line = UserReport {
        id: row.id.clone(),
        user_name,
        principal: None,
        state: UserState::Error,
        target_id: None,
        fields: Vec::new(),
        error: None,
    };
    let subject = Subject {
        scim_id: &row.id,
        doc: &doc,
        groups,
    };
    match c.inspect(&subject) {
        Ok(found) => {
            line.principal = Some(found.principal);
            match found.standing {
                Standing::InSync { target_id } => {
                    line.state = UserState::InSync;
                    line.target_id = Some(target_id);
                }
                Standing::Missing => line.state = UserState::Missing,
                Standing::Different { target_id, fields } => {
                    line.state = UserState::Different;
                    line.target_id = Some(target_id);
                    line.fields = fields;
                }
                Standing::OutOfScope => line.state = UserState::OutOfScope,
            }
        }
        Err(e) => line.error = Some(e.to_string()),
    }
    line
}
