//! The audit trail: who changed what, when and from where. Every SCIM write and every admin
//! action is recorded with the credential's name, the client's address, the request id and
//! the attribute paths the request named; never a value, so no secret reaches it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::error::BridgeResult;
use crate::clock::{format_time, Clock};
use crate::scim::ScimError;
use crate::store::{AuditQuery, AuditRow, AuditStore, NewAudit};

/// The most records one page holds.
pub const MAX_PAGE: i64 = 1000;

/// How often old records are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// One write, as the HTTP layer saw it.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub credential: String,
    pub client: String,
    pub request_id: String,
    pub method: String,
    pub route: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub paths: Vec<String>,
    pub status: u16,
}

pub struct Audit {
    store: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
    retention: Duration,
    pruned: Mutex<Option<Instant>>,
}

impl Audit {
    pub fn new(store: Arc<dyn AuditStore>, clock: Arc<dyn Clock>, retention: Duration) -> Audit {
        Audit {
            store,
            clock,
            retention,
            pruned: Mutex::new(None),
        }
    }

    /// Records one write; now and then forgets records past the retention period.
    pub fn record(&self, e: Entry) -> BridgeResult<()> {
        let now = self.clock.now();
        self.store.add_audit(&NewAudit {
            at: format_time(now),
            credential: e.credential,
            client: e.client,
            request_id: e.request_id,
            method: e.method,
            route: e.route,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            paths: Value::from(e.paths).to_string(),
            status: i32::from(e.status),
        })?;
        let due = {
            let mut last = self.pruned.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= PRUNE_EVERY);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            let cutoff = now - chrono::Duration::from_std(self.retention).unwrap_or_default();
            let n = self.store.prune_audit(&format_time(cutoff))?;
            if n > 0 {
                log::info!("audit: forgot {n} records older than the retention period");
            }
        }
        Ok(())
    }

    /// A page of records, newest first: `{"entries": [...], "next": cursor or null}`.
    pub fn list(
        &self,
        resource: Option<&str>,
        credential: Option<&str>,
        since: Option<&str>,
        cursor: Option<&str>,
        count: Option<i64>,
    ) -> BridgeResult<Value> {
        let since = since
            .map(|s| {
                chrono::DateTime::parse_from_rfc3339(s)
                    .map(|t| format_time(t.with_timezone(&chrono::Utc)))
                    .map_err(|_| {
                        ScimError::InvalidValue(format!(
                            "since: '{s}' is not a dateTime such as 2026-11-25T08:00:00Z"
                        ))
                    })
            })
            .transpose()?;
        let before = cursor
            .map(|c| {
                c.parse::<i64>()
                    .map_err(|_| ScimError::InvalidValue(format!("cursor: '{c}' is not one")))
            })
            .transpose()?;
        let limit = count.unwrap_or(100).clamp(1, MAX_PAGE);
        // No record names a resource or credential with U+0000 (PostgreSQL cannot even
        // compare one): nothing matches.
        if [resource, credential]
            .iter()
            .flatten()
            .any(|v| v.contains('\0'))
        {
            return Ok(json!({"entries": [], "next": null}));
        }
        let rows = self.store.audit(&AuditQuery {
            resource_id: resource.map(str::to_string),
            credential: credential.map(str::to_string),
            since,
            before,
            limit,
        })?;
        let next = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|r| r.id.to_string()))
            .flatten();
        Ok(json!({
            "entries": rows.into_iter().map(view).collect::<Vec<_>>(),
            "next": next,
        }))
    }
}

fn view(r: AuditRow) -> Value {
    json!({
        "id": r.id,
        "at": r.at,
        "credential": r.credential,
        "client": r.client,
        "requestId": r.request_id,
        "method": r.method,
        "route": r.route,
        "resourceType": r.resource_type,
        "resourceId": r.resource_id,
        "paths": serde_json::from_str::<Value>(&r.paths).unwrap_or(Value::Null),
        "status": r.status,
    })
}

/// The attribute paths a SCIM write names: a PATCH's operation paths (or, for an operation
/// without one, the attributes its value sets); a POST's or PUT's top-level attributes.
pub fn paths_named(body: &Value, is_patch: bool) -> Vec<String> {
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|o| {
                o.keys()
                    .filter(|k| !matches!(k.as_str(), "schemas" | "meta" | "id"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out: Vec<String> = if is_patch {
        body.get("Operations")
            .and_then(Value::as_array)
            .map(|ops| {
                ops.iter()
                    .flat_map(|op| match op.get("path").and_then(Value::as_str) {
                        Some(p) => vec![p.to_string()],
                        None => op.get("value").map(keys).unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        keys(body)
    };
    out.sort();
    out.dedup();
    out.truncate(200);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paths_of_a_write_are_named_never_their_values() {
        let patch = json!({"Operations": [
            {"op": "replace", "path": "active", "value": false},
            {"op": "replace", "value": {"password": "s3cret", "displayName": "x"}},
        ]});
        assert_eq!(
            paths_named(&patch, true),
            vec!["active", "displayName", "password"]
        );
        let put = json!({"schemas": [], "userName": "a", "password": "s3cret"});
        assert_eq!(paths_named(&put, false), vec!["password", "userName"]);
        assert!(!Value::from(paths_named(&put, false))
            .to_string()
            .contains("s3cret"));
    }
}
