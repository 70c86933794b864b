//! Workers: claim due jobs, hand each to its connector, and record the outcome: delivered,
//! retried later (exponential backoff with jitter, Retry-After honoured), or dead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rand::Rng;
use serde_json::Value;

use super::Wakeup;
use crate::clock::{format_time, Clock};
use crate::connectors::{Connector, ConnectorError, Delivery};
use crate::store::outbox::{Delivered, JobRow};
use crate::store::{SqlStore, StoreResult};

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: i32,
    pub max_age: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How long a claimed job stays reserved before another worker may take it.
    pub lease: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            max_age: Duration::from_secs(24 * 3600),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(600),
            lease: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
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
    stop: AtomicBool,
}

impl Dispatcher {
    pub fn new(
        store: Arc<SqlStore>,
        connectors: HashMap<String, Arc<dyn Connector>>,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
        wakeup: Arc<Wakeup>,
    ) -> Dispatcher {
        Dispatcher {
            store,
            connectors,
            clock,
            policy,
            wakeup,
            stop: AtomicBool::new(false),
        }
    }

    /// Claims and delivers one batch; returns how many jobs it handled.
    pub fn run_once(&self, batch: i64) -> StoreResult<usize> {
        let now = self.clock.now();
        let lease = now + chrono::Duration::from_std(self.policy.lease).unwrap_or_default();
        let jobs = self
            .store
            .claim_jobs(&format_time(now), &format_time(lease), batch)?;
        let n = jobs.len();
        for job in jobs {
            self.handle(job)?;
        }
        Ok(n)
    }

    fn handle(&self, job: JobRow) -> StoreResult<()> {
        let now = format_time(self.clock.now());
        let Some(connector) = self.connectors.get(&job.connector) else {
            return self.store.bury_job(
                &job,
                &format!("no connector named '{}' is configured", job.connector),
                &now,
            );
        };
        let payload: Value = serde_json::from_str(&job.payload).unwrap_or(Value::Null);
        let version = payload.get("version").and_then(Value::as_i64);
        if !connector.supports(&job.event) {
            let skipped = format!(
                "{} does not support {}: skipped",
                connector.kind(),
                job.event
            );
            log::info!("job {}: {skipped}", job.id);
            return self.store.complete_job(
                &job,
                &Delivered {
                    version,
                    skipped: Some(skipped),
                    ..Default::default()
                },
                &now,
            );
        }
        let mapping = self.store.mapping(&job.resource_id, &job.connector)?;
        let delivery = Delivery {
            job_id: job.id,
            event: &job.event,
            resource_type: &job.resource_type,
            resource_id: &job.resource_id,
            payload: &payload,
            mapping: mapping.as_ref(),
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            connector.deliver(&delivery)
        }))
        .unwrap_or_else(|_| Err(ConnectorError::Permanent("the connector panicked".into())));
        let now_t = self.clock.now();
        let now = format_time(now_t);
        match result {
            Ok(outcome) => self.store.complete_job(
                &job,
                &Delivered {
                    target_id: outcome.target_id,
                    principal: outcome.principal,
                    version,
                    skipped: None,
                },
                &now,
            ),
            Err(ConnectorError::Permanent(msg)) => {
                log::warn!("job {} to {} is dead: {msg}", job.id, job.connector);
                self.store.bury_job(&job, &msg, &now)
            }
            Err(ConnectorError::Retryable {
                message,
                retry_after,
            }) => {
                let age = chrono::DateTime::parse_from_rfc3339(&job.created)
                    .map(|c| now_t.signed_duration_since(c).to_std().unwrap_or_default())
                    .unwrap_or_default();
                if job.attempts >= self.policy.max_attempts || age >= self.policy.max_age {
                    let msg = format!("gave up after {} attempts: {message}", job.attempts);
                    log::warn!("job {} to {} is dead: {msg}", job.id, job.connector);
                    return self.store.bury_job(&job, &msg, &now);
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
            }
        }
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

    fn work(&self) {
        while !self.stop.load(Ordering::SeqCst) {
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
