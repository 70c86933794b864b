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

/// At most this many paths are kept from one request, each at most [`MAX_PATH`] bytes: a
/// record's size does not grow with what a body carries.
pub const MAX_PATHS: usize = 64;
pub const MAX_PATH: usize = 128;

/// The attribute paths a write names: a PATCH's operation paths (or, for an operation
/// without one, its value's keys), a POST's or PUT's keys. Never a value: a value filter
/// keeps its attribute and loses what it compared with (`emails[value eq "a@b"].type` is
/// `emails[value eq …].type`), and a key that is not an attribute name (a JSON key may be
/// any text) is left out.
pub fn paths_named(body: &Value, is_patch: bool) -> Vec<String> {
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|o| {
                o.keys()
                    .filter(|k| !matches!(k.as_str(), "schemas" | "meta" | "id"))
                    .filter(|k| is_name(k))
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
                        Some(p) => vec![without_values(p)],
                        None => op.get("value").map(keys).unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        keys(body)
    };
    for p in &mut out {
        if p.len() > MAX_PATH {
            let mut end = MAX_PATH;
            while !p.is_char_boundary(end) {
                end -= 1;
            }
            p.truncate(end);
            p.push('…');
        }
    }
    out.sort();
    out.dedup();
    out.truncate(MAX_PATHS);
    out
}

/// Whether a key looks like an attribute name or a schema URN.
fn is_name(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= MAX_PATH
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$' | ':' | '.'))
}

/// A PATCH path with the values its filters compare with taken out: each token after a
/// comparison operator inside `[...]` becomes `…`.
fn without_values(path: &str) -> String {
    fn is_operator(t: &str) -> bool {
        matches!(
            t.to_ascii_lowercase().as_str(),
            "eq" | "ne" | "co" | "sw" | "ew" | "gt" | "ge" | "lt" | "le"
        )
    }
    let mut out = String::with_capacity(path.len());
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        if c != '[' {
            out.push(c);
            continue;
        }
        let mut tokens: Vec<String> = Vec::new();
        let mut word = String::new();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    let mut quoted = String::from('"');
                    let mut escaped = false;
                    for q in chars.by_ref() {
                        quoted.push(q);
                        match (escaped, q) {
                            (true, _) => escaped = false,
                            (false, '\\') => escaped = true,
                            (false, '"') => break,
                            _ => {}
                        }
                    }
                    tokens.extend((!word.is_empty()).then(|| std::mem::take(&mut word)));
                    tokens.push(quoted);
                }
                ']' => {
                    closed = true;
                    break;
                }
                '(' | ')' => {
                    tokens.extend((!word.is_empty()).then(|| std::mem::take(&mut word)));
                    tokens.push(c.to_string());
                }
                c if c.is_whitespace() => {
                    tokens.extend((!word.is_empty()).then(|| std::mem::take(&mut word)));
                }
                c => word.push(c),
            }
        }
        tokens.extend((!word.is_empty()).then_some(word));
        let mut after_operator = false;
        let shown: Vec<String> = tokens
            .into_iter()
            .map(|t| {
                let shown = if after_operator {
                    "…".to_string()
                } else {
                    t.clone()
                };
                after_operator = is_operator(&t);
                shown
            })
            .collect();
        out.push('[');
        out.push_str(&shown.join(" "));
        if closed {
            out.push(']');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_keeps_its_attributes_and_loses_its_values_and_a_record_stays_small() {
        let patch = json!({"Operations": [
            {"op": "replace", "path": "emails[value eq \"ann@example.com\" and type ne \"work\"].primary", "value": true},
            {"op": "remove", "path": "members[value eq \"u1\"]"},
            {"op": "remove", "path": "x509Certificates[primary eq true]"},
        ]});
        let paths = paths_named(&patch, true);
        assert_eq!(
            paths,
            vec![
                "emails[value eq … and type ne …].primary",
                "members[value eq …]",
                "x509Certificates[primary eq …]",
            ]
        );
        assert!(!paths.concat().contains("ann@"));
        let mut huge = serde_json::Map::new();
        for i in 0..10_000 {
            huge.insert(format!("key{i}"), json!(1));
        }
        huge.insert("x".repeat(5000), json!(1));
        huge.insert("has a space".into(), json!(1));
        let paths = paths_named(&Value::Object(huge), false);
        assert_eq!(paths.len(), MAX_PATHS);
        assert!(paths
            .iter()
            .all(|p| p.len() <= MAX_PATH && !p.contains(' ')));
    }

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
