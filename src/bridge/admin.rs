//! Administrators' use cases: where a user or group stands in every target, the outbox's
//! jobs and each connector's queue, and retrying dead jobs.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{BridgeError, BridgeResult, Resources};
use crate::clock::{format_time, Clock};
use crate::connectors::ConnectorKind;
use crate::model::{JobState, MappingState};
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::list::ListQuery;
use crate::scim::path::AttrPath;
use crate::scim::resource::Projection;
use crate::scim::ScimError;
use crate::store::{
    BrakeStore, DryRunStore, HealthStore, JobRow, JobStore, MappingStore, NotificationStore,
};

/// What the admin use cases need of the store: jobs, mappings, notifications, health.
pub trait AdminStore:
    JobStore + MappingStore + NotificationStore + HealthStore + BrakeStore + DryRunStore
{
}
impl<T> AdminStore for T where
    T: JobStore + MappingStore + NotificationStore + HealthStore + BrakeStore + DryRunStore
{
}

/// The most jobs one listing returns.
pub const MAX_JOBS: i64 = 1000;

pub struct Admin {
    store: Arc<dyn AdminStore>,
    resources: Arc<Resources>,
    clock: Arc<dyn Clock>,
    /// Configured connectors: name and kind, in the order of the settings.
    connectors: Vec<(String, ConnectorKind)>,
}

impl Admin {
    pub fn new(
        store: Arc<dyn AdminStore>,
        resources: Arc<Resources>,
        clock: Arc<dyn Clock>,
        connectors: Vec<(String, ConnectorKind)>,
    ) -> Admin {
        Admin {
            store,
            resources,
            clock,
            connectors,
        }
    }

    pub fn connectors(&self) -> &[(String, ConnectorKind)] {
        &self.connectors
    }

    /// Finds a resource by SCIM id, then by each of `attrs` (equal, as a filter would
    /// match).
    fn find(&self, rt: &str, key: &str, attrs: &[&str]) -> BridgeResult<Value> {
        let proj = Projection::default();
        if let Ok(r) = self.resources.get(rt, key, "", &proj) {
            return Ok(r.body);
        }
        for attr in attrs {
            let query = ListQuery {
                filter: Some(Filter::Compare {
                    path: AttrPath {
                        urn: None,
                        attr: attr.to_string(),
                        sub: None,
                    },
                    op: CompareOp::Eq,
                    value: CompValue::String(key.to_string()),
                }),
                start_index: 1,
                count: 2,
                projection: proj.clone(),
                sort: None,
                cursor: None,
            };
            let found = self.resources.list(rt, &query, "")?;
            if let Some(r) = found["Resources"].get(0) {
                return Ok(r.clone());
            }
        }
        Err(ScimError::NotFound(format!("no {rt} with id, {} '{key}'", attrs.join(" or "))).into())
    }

    /// A user found by id, userName or externalId, and where it stands in every target.
    pub fn user_standing(&self, key: &str) -> BridgeResult<Value> {
        self.standing("User", key, &["userName", "externalId"])
    }

    /// A group found by id, displayName or externalId, and where it stands in every target.
    pub fn group_standing(&self, key: &str) -> BridgeResult<Value> {
        self.standing("Group", key, &["displayName", "externalId"])
    }

    fn standing(&self, rt: &str, key: &str, attrs: &[&str]) -> BridgeResult<Value> {
        if key.contains('\0') {
            // No id, name or principal holds U+0000, and PostgreSQL cannot compare one.
            return Err(ScimError::NotFound(format!(
                "no {rt} with id, {}: the key holds U+0000",
                attrs.join(" or ")
            ))
            .into());
        }
        let resource = match self.find(rt, key, attrs) {
            Ok(r) => r,
            // Deleted: still shown while its mappings are kept (the delete's fate in each
            // target), found by id or by the principal a target knew it by.
            Err(BridgeError::Scim(ScimError::NotFound(m))) => {
                match self.store.deleted_resource(rt, key)? {
                    Some(id) => json!({"id": id, "deleted": true}),
                    None => return Err(ScimError::NotFound(m).into()),
                }
            }
            Err(e) => return Err(e),
        };
        let id = resource["id"].as_str().unwrap_or_default().to_string();
        // Both from one snapshot: a completion commits its notification and its mapping
        // together.
        let (mappings, notes) = self.store.standing_of(&id)?;
        let dry = if mappings.iter().any(|m| m.state == MappingState::DryRun) {
            self.store.dry_run_jobs_of(&id)?
        } else {
            Vec::new()
        };
        let by_connector: Vec<Value> = self
            .connectors
            .iter()
            .map(|(name, kind)| {
                let m = mappings.iter().find(|m| &m.connector == name);
                let mut v = json!({
                    "connector": name, "kind": kind,
                    "state": m.map(|m| m.state.as_str()).unwrap_or("none"),
                    "targetId": m.and_then(|m| m.target_id.clone()),
                    "principal": m.and_then(|m| m.principal.clone()),
                    "lastVersion": m.and_then(|m| m.last_version),
                    "lastError": m.and_then(|m| m.last_error.clone()),
                    "note": m.and_then(|m| m.note.clone()),
                    "attempts": m.map(|m| m.attempts),
                    "updated": m.map(|m| m.updated.clone()),
                });
                // In dry run: what each change would have called in the target.
                let would: Vec<Value> = dry
                    .iter()
                    .filter(|j| &j.connector == name)
                    .map(|j| {
                        json!({"job": j.id, "event": j.event,
                               "calls": j.dry_run_calls.as_deref()
                                   .and_then(|c| serde_json::from_str::<Value>(c).ok())})
                    })
                    .collect();
                if !would.is_empty() {
                    v["dryRun"] = Value::from(would);
                }
                v
            })
            .collect();
        let mut summary = json!({"id": id, "resourceType": rt, "connectors": by_connector});
        if resource.get("deleted") == Some(&json!(true)) {
            summary["deleted"] = json!(true);
        }
        if !notes.is_empty() {
            summary["notifications"] = json!(notes);
        }
        for a in attrs {
            if let Some(v) = resource.get(*a) {
                summary[*a] = v.clone();
            }
        }
        Ok(summary)
    }

    /// Jobs by state and connector, oldest first, at most `limit` (1 to [`MAX_JOBS`]).
    pub fn jobs(
        &self,
        state: Option<&str>,
        connector: Option<&str>,
        limit: i64,
    ) -> BridgeResult<Vec<Value>> {
        let state = state
            .map(|s| {
                s.parse::<JobState>()
                    .map_err(|e| ScimError::InvalidValue(format!("state: {e}")))
            })
            .transpose()?;
        // No connector's name holds U+0000 (and PostgreSQL cannot compare one).
        if connector.is_some_and(|c| c.contains('\0')) {
            return Ok(Vec::new());
        }
        let rows = self
            .store
            .list_jobs(state, connector, limit.clamp(1, MAX_JOBS))?;
        let blocked: std::collections::HashSet<i64> =
            if rows.iter().any(|j| j.state == JobState::Pending) {
                self.store
                    .blocked_jobs()?
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect()
            } else {
                Default::default()
            };
        Ok(rows
            .into_iter()
            .map(|j| {
                let held_back = blocked.contains(&j.id);
                let mut v = job_view(j);
                if held_back {
                    // Its own state for people: pending, and waiting for an earlier dead job.
                    v["state"] = json!("blocked");
                }
                v
            })
            .collect())
    }

    /// Puts one dead job back in the queue, rebuilt from its resource's current state.
    pub fn retry_job(&self, id: i64) -> BridgeResult<usize> {
        match self.retry_dead(Some(id), None)? {
            0 => Err(ScimError::NotFound(format!("no dead job {id}")).into()),
            n => Ok(n),
        }
    }

    /// Drops one dead job: the later jobs of its resource, held back behind it, go on in
    /// order, and the target never gets the discarded change (a reconcile shows it).
    pub fn discard_job(&self, id: i64) -> BridgeResult<usize> {
        match self
            .store
            .discard_dead(id, &format_time(self.clock.now()))?
        {
            None => Err(ScimError::NotFound(format!("no dead job {id}")).into()),
            Some(job) => {
                log::warn!(
                    "an administrator discarded dead job {id} ({} {} to '{}')",
                    job.event,
                    job.resource_id,
                    job.connector
                );
                self.resources.wake_outbox();
                Ok(1)
            }
        }
    }

    /// Puts every dead job of a connector back in the queue.
    pub fn retry_connector(&self, name: &str) -> BridgeResult<usize> {
        self.known(name)?;
        self.retry_dead(None, Some(name))
    }

    fn known(&self, name: &str) -> BridgeResult<()> {
        if self.connectors.iter().any(|(n, _)| n == name) {
            Ok(())
        } else {
            Err(ScimError::NotFound(format!("no connector '{name}'")).into())
        }
    }

    /// Puts dead jobs back in the queue, one (`id`) or all of a connector, each rebuilt
    /// from the resource's current state (see [`Resources::resync`]) with its age started
    /// afresh.
    fn retry_dead(&self, id: Option<i64>, connector: Option<&str>) -> BridgeResult<usize> {
        let now = format_time(self.clock.now());
        let resync = |job: &JobRow| match self.resources.resync(job) {
            Ok(fresh) => fresh,
            Err(e) => {
                log::warn!(
                    "job {}: cannot rebuild it from the current state ({e}); retried as it was",
                    job.id
                );
                None
            }
        };
        let n = self.store.retry_dead(id, connector, &now, &resync)?;
        self.resources.wake_outbox();
        Ok(n)
    }

    /// Each connector with its queue: depth, dead jobs, oldest pending, last success and
    /// last error.
    pub fn connector_health(&self) -> BridgeResult<Vec<Value>> {
        self.connectors
            .iter()
            .map(|(name, kind)| {
                let h = self.store.queue_health(name)?;
                Ok(
                    json!({"name": name, "kind": kind, "queueDepth": h.pending, "dead": h.dead, "held": h.held,
                          "blocked": h.blocked,
                          "oldestPending": h.oldest_pending, "lastSuccess": h.last_success,
                          "lastError": h.last_error, "lastErrorAt": h.last_error_at}),
                )
            })
            .collect()
    }
}

impl Admin {
    /// Delivers a connector's jobs held by the deletion brake; they are not held again.
    pub fn release(&self, connector: &str) -> BridgeResult<usize> {
        self.known(connector)?;
        let n = self
            .store
            .release_held(connector, &format_time(self.clock.now()))?;
        if n > 0 {
            log::warn!("connector '{connector}': an administrator released {n} held jobs");
            self.resources.wake_outbox();
        }
        Ok(n)
    }

    /// Drops a connector's held jobs: the target keeps those users as they are (a reconcile
    /// reports them as drift), and the jobs queued behind them follow (a mistaken mass
    /// deactivation undone in the identity provider sends its reactivations).
    pub fn discard(&self, connector: &str) -> BridgeResult<usize> {
        self.known(connector)?;
        let dropped = self
            .store
            .discard_held(connector, &format_time(self.clock.now()))?;
        if dropped > 0 {
            log::warn!("connector '{connector}': an administrator discarded {dropped} held jobs; the target keeps those users as they are");
            self.resources.wake_outbox();
        }
        Ok(dropped)
    }

    /// `/metrics` in the text format: what `metrics` counted, with each connector's queue
    /// and the database pool read now.
    pub fn metrics_text(&self, metrics: &crate::metrics::Metrics) -> BridgeResult<String> {
        let now = self.clock.now();
        let mut queues = Vec::new();
        for (name, _) in &self.connectors {
            let h = self.store.queue_health(name)?;
            let oldest_pending_age = h
                .oldest_pending
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .and_then(|t| now.signed_duration_since(t).to_std().ok());
            queues.push(crate::metrics::QueueGauges {
                connector: name.clone(),
                pending: h.pending - h.blocked,
                dead: h.dead,
                held: h.held,
                blocked: h.blocked,
                oldest_pending_age,
            });
        }
        let p = self.store.pool_state();
        let pool = crate::metrics::PoolGauges {
            in_use: p.in_use,
            idle: p.idle,
            max: p.max,
        };
        Ok(metrics.render(&queues, pool))
    }

    /// Readiness for a load balancer: the database answers and is migrated (else an
    /// error); connectors that are failing (dead jobs, or an error since their last
    /// success) are listed but do not make the bridge unready.
    ///
    /// It answers anyone, so it says how many connectors fail, never which or why (their
    /// names and errors, which carry target URLs, are the admin API's).
    pub fn readiness(&self) -> Result<Value, String> {
        self.store.check_ready().map_err(|e| e.to_string())?;
        let failing = self
            .connector_health()
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|c| {
                let dead = c["dead"].as_i64().unwrap_or(0) > 0;
                let erred = match (c["lastErrorAt"].as_str(), c["lastSuccess"].as_str()) {
                    (Some(e), Some(s)) => e > s,
                    (Some(_), None) => true,
                    _ => false,
                };
                dead || erred
            })
            .count();
        Ok(json!({"status": "ready", "database": "ok", "failingConnectors": failing}))
    }
}

/// A job as the admin API shows it: never its sealed password or wait token.
fn job_view(j: JobRow) -> Value {
    // A pending job that has failed is retrying: since its age began (its creation, or the
    // administrator's retry), until its next attempt.
    let retrying_since = (j.state == JobState::Pending && j.attempts > 0 && j.last_error.is_some())
        .then(|| j.created.clone());
    let mut v = json!({"id": j.id, "connector": j.connector, "resourceType": j.resource_type,
           "resourceId": j.resource_id, "event": j.event, "state": j.state,
           "attempts": j.attempts, "nextAttemptAt": j.next_attempt_at,
           "retryingSince": retrying_since, "failure": j.failure,
           "lastError": j.last_error, "created": j.created, "updated": j.updated});
    if let Some(calls) = j.dry_run_calls.as_deref() {
        v["calls"] = serde_json::from_str(calls).unwrap_or(Value::Null);
    }
    v
}
