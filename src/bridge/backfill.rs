//! Backfill and sync: a connector receives what it never had. A new connector gets every
//! user and group when it first appears (once per database, whichever instance sees it
//! first); `sync` queues what a connector never received, or with `all` a fresh copy of
//! everything. The jobs wait behind live changes, and their progress can be watched.

use std::sync::Arc;

use serde_json::{json, Value};

use super::error::BridgeResult;
use super::Resources;
use crate::clock::{format_time, Clock};
use crate::connectors::spec::ConnectorKind;
use crate::connectors::spec::Mode;
use crate::scim::ScimError;
use crate::store::{BackfillStore, DryRunStore};

/// What backfill needs of the store.
pub trait BackfillWork: BackfillStore + DryRunStore {}
impl<T: BackfillStore + DryRunStore> BackfillWork for T {}

/// A configured connector as backfill sees it at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Starting {
    pub name: String,
    /// Backfilled when it first appears (`backfill`, on by default).
    pub backfill: bool,
    pub mode: Mode,
}

/// Resources read and queued per transaction.
const PAGE: i64 = 500;

pub struct Backfill {
    store: Arc<dyn BackfillWork>,
    resources: Arc<Resources>,
    clock: Arc<dyn Clock>,
    connectors: Vec<(String, ConnectorKind)>,
}

impl Backfill {
    pub fn new(
        store: Arc<dyn BackfillWork>,
        resources: Arc<Resources>,
        clock: Arc<dyn Clock>,
        connectors: Vec<(String, ConnectorKind)>,
    ) -> Backfill {
        Backfill {
            store,
            resources,
            clock,
            connectors,
        }
    }

    fn known(&self, connector: &str) -> BridgeResult<()> {
        if self.connectors.iter().any(|(n, _)| n == connector) {
            Ok(())
        } else {
            Err(ScimError::NotFound(format!("no connector is named '{connector}'")).into())
        }
    }

    /// At start: backfills each connector this database has never seen (when its
    /// `backfill` is on), and each one that has just left dry run (its recorded calls are
    /// forgotten and it receives everything from the current state, and the deletes made
    /// meanwhile). Returns the jobs each got and why.
    pub fn on_start(
        &self,
        connectors: &[Starting],
    ) -> BridgeResult<Vec<(String, i64, &'static str)>> {
        let now = format_time(self.clock.now());
        let mut out = Vec::new();
        for c in connectors {
            let first = self.store.first_sighting(&c.name, &now)?;
            let mode = mode_name(c.mode);
            let before = self.store.note_mode(&c.name, mode, &now)?;
            let left_dry_run =
                before.as_deref() == Some(mode_name(Mode::DryRun)) && c.mode != Mode::DryRun;
            if left_dry_run {
                let deletes = self.store.clear_dry_run(&c.name, &now)? as i64;
                let n = self.queue(&c.name, false)?["total"].as_i64().unwrap_or(0) + deletes;
                out.push((c.name.clone(), n, "left dry run"));
            } else if first && c.backfill {
                let n = self.queue(&c.name, false)?["total"].as_i64().unwrap_or(0);
                out.push((c.name.clone(), n, "is new"));
            }
        }
        Ok(out)
    }

    /// Queues, as low-priority jobs, the users and groups `connector` never received (or
    /// every one, with `all`); returns the run's progress.
    pub fn queue(&self, connector: &str, all: bool) -> BridgeResult<Value> {
        self.known(connector)?;
        let now = format_time(self.clock.now());
        let run = self.store.start_run(connector, all, &now)?;
        let types: Vec<String> = self
            .resources
            .registry()
            .resource_types()
            .iter()
            .map(|rt| rt.name.clone())
            .collect();
        for rt in types {
            let mut after: Option<String> = None;
            loop {
                let rows = self
                    .store
                    .backfill_page(connector, &rt, all, after.as_deref(), PAGE)?;
                let Some(last) = rows.last() else { break };
                after = Some(last.id.clone());
                let jobs = self.resources.backfill_jobs(connector, &rt, &rows)?;
                self.store.queue_backfill(run, &jobs, &now)?;
                self.resources.wake_outbox();
                if (rows.len() as i64) < PAGE {
                    break;
                }
            }
        }
        self.progress(connector)
    }

    /// The latest run's progress: jobs queued, delivered, still to go, dead; the rate so
    /// far and the time left at that rate.
    pub fn progress(&self, connector: &str) -> BridgeResult<Value> {
        self.known(connector)?;
        let Some(run) = self.store.latest_run(connector)? else {
            return Ok(json!({"connector": connector, "state": "never", "total": 0,
                             "done": 0, "pending": 0, "dead": 0}));
        };
        let c = self.store.backfill_counts(connector)?;
        let done = (run.total - c.pending - c.dead).max(0);
        let elapsed = chrono::DateTime::parse_from_rfc3339(&run.started)
            .map(|t| {
                self.clock
                    .now()
                    .signed_duration_since(t)
                    .num_milliseconds()
                    .max(1) as f64
                    / 1000.0
            })
            .unwrap_or(1.0);
        let rate = done as f64 / elapsed;
        let eta = (c.pending > 0 && rate > 0.0).then(|| (c.pending as f64 / rate).ceil() as i64);
        Ok(json!({
            "connector": connector,
            "run": run.id,
            "all": run.all_resources == 1,
            "started": run.started,
            "state": if c.pending > 0 { "running" } else { "finished" },
            "total": run.total,
            "done": done,
            "pending": c.pending,
            "dead": c.dead,
            "ratePerSec": (rate * 10.0).round() / 10.0,
            "etaSecs": eta,
        }))
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Async => "async",
        Mode::Sync => "sync",
        Mode::DryRun => "dry_run",
    }
}
