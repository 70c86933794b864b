//! The durable outbox: which jobs a committed change becomes, and the workers that deliver
//! them to connectors with retries, backoff and dead letters.

pub mod seal;
pub mod worker;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::model::Change;
use crate::store::NewJob;
use seal::{aad, Sealer};

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

/// One connector as the fanout sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    /// SCIM answers after this connector's delivery (or a timeout).
    pub sync: bool,
    /// The connector takes passwords: its password jobs carry the sealed password.
    pub passwords: bool,
    /// Passwords sent with a create are dropped (Okta sends a placeholder).
    pub ignore_password_on_create: bool,
}

impl Route {
    pub fn new(name: impl Into<String>) -> Route {
        Route {
            name: name.into(),
            sync: false,
            passwords: false,
            ignore_password_on_create: false,
        }
    }
}

/// Turns changes into one job per configured connector.
#[derive(Debug)]
pub struct Fanout {
    routes: Vec<Route>,
    wakeup: Arc<Wakeup>,
    sealer: Sealer,
}

impl Default for Fanout {
    fn default() -> Fanout {
        Fanout::new(vec![], Arc::default(), Sealer::ephemeral())
    }
}

impl Fanout {
    pub fn new(routes: Vec<Route>, wakeup: Arc<Wakeup>, sealer: Sealer) -> Fanout {
        Fanout {
            routes,
            wakeup,
            sealer,
        }
    }

    /// The jobs for `changes`: one per change and connector, `except` one connector (a
    /// sync connector that refused the change being undone). Jobs for sync connectors
    /// carry `wait_token`.
    pub fn jobs(
        &self,
        changes: &[Change],
        wait_token: Option<&str>,
        except: Option<&str>,
    ) -> Vec<NewJob> {
        let mut jobs = Vec::with_capacity(changes.len() * self.routes.len());
        for c in changes {
            let payload = c.payload();
            let on_create = c.on_create;
            for route in &self.routes {
                if Some(route.name.as_str()) == except {
                    continue;
                }
                if c.password.is_some() && on_create && route.ignore_password_on_create {
                    continue;
                }
                let secret = match (&c.password, route.passwords) {
                    (Some(p), true) => Some(self.sealer.seal(p, &aad(&route.name, &c.resource_id))),
                    _ => None,
                };
                jobs.push(NewJob {
                    connector: route.name.clone(),
                    resource_type: c.resource_type,
                    resource_id: c.resource_id.clone(),
                    event: c.event,
                    version: c.version.unwrap_or_default(),
                    payload: payload.clone(),
                    secret,
                    wait_token: if route.sync {
                        wait_token.map(str::to_string)
                    } else {
                        None
                    },
                    priority: crate::store::jobs::LIVE,
                });
            }
        }
        jobs
    }

    pub fn wake(&self) {
        if !self.routes.is_empty() {
            self.wakeup.wake();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Whether any connector is in sync mode.
    pub fn has_sync(&self) -> bool {
        self.routes.iter().any(|r| r.sync)
    }
}
