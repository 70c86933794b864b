//! The durable outbox: which jobs a committed change becomes, and the workers that deliver
//! them to connectors with retries, backoff and dead letters.

pub mod changes;
pub mod worker;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::store::NewJob;

/// Wakes idle workers when a write has queued jobs.
#[derive(Debug, Default)]
pub struct Wakeup {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Wakeup {
    pub fn wake(&self) {
        *self.flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Waits until woken or `timeout` passes.
    pub fn wait(&self, timeout: Duration) {
        let guard = self.flag.lock().unwrap_or_else(|p| p.into_inner());
        let (mut guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |woken| !*woken)
            .unwrap_or_else(|p| p.into_inner());
        *guard = false;
    }
}

/// One change as connectors receive it.
#[derive(Debug, Clone)]
pub struct Change {
    pub resource_type: String,
    pub resource_id: String,
    pub event: String,
    pub version: i64,
    pub changes: Value,
    /// The resource after the change (absent after a delete).
    pub resource: Option<Value>,
    /// Event-specific data: member ids added or removed.
    pub extra: Map<String, Value>,
}

impl Change {
    pub fn payload(&self) -> String {
        let mut p = json!({
            "event": self.event,
            "resourceType": self.resource_type,
            "id": self.resource_id,
            "version": self.version,
            "changes": self.changes,
            "resource": self.resource,
        });
        if let Some(o) = p.as_object_mut() {
            for (k, v) in &self.extra {
                o.insert(k.clone(), v.clone());
            }
        }
        p.to_string()
    }
}

/// Turns changes into one job per configured connector.
#[derive(Debug, Default)]
pub struct Fanout {
    connectors: Vec<String>,
    wakeup: Arc<Wakeup>,
}

impl Fanout {
    pub fn new(connectors: Vec<String>, wakeup: Arc<Wakeup>) -> Fanout {
        Fanout { connectors, wakeup }
    }

    pub fn jobs(&self, changes: &[Change]) -> Vec<NewJob> {
        let mut jobs = Vec::with_capacity(changes.len() * self.connectors.len());
        for c in changes {
            let payload = c.payload();
            for name in &self.connectors {
                jobs.push(NewJob {
                    connector: name.clone(),
                    resource_type: c.resource_type.clone(),
                    resource_id: c.resource_id.clone(),
                    event: c.event.clone(),
                    payload: payload.clone(),
                });
            }
        }
        jobs
    }

    pub fn wake(&self) {
        if !self.connectors.is_empty() {
            self.wakeup.wake();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.connectors.is_empty()
    }
}
