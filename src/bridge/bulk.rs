//! /Bulk (RFC 7644 section 3.7): operations run one by one through the same use cases as
//! single requests, `bulkId` references resolved in whatever order the operations make
//! possible, and circular references reported as such.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{json, Map, Value};

use super::error::{BridgeError, BridgeResult};
use super::etag::Precondition;
use super::resources::Resources;
use crate::scim::resource::Projection;
use crate::scim::ScimError;

pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

#[derive(Debug, Clone)]
struct Op {
    method: String,
    path: String,
    bulk_id: Option<String>,
    version: Option<String>,
    data: Option<Value>,
    refs: BTreeSet<String>,
}

fn collect_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:") {
                out.insert(id.to_string());
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        Value::Object(o) => o.values().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

fn substitute(v: &mut Value, ids: &HashMap<String, String>) {
    match v {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:").and_then(|b| ids.get(b)) {
                *s = id.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| substitute(i, ids)),
        Value::Object(o) => o.values_mut().for_each(|i| substitute(i, ids)),
        _ => {}
    }
}

fn parse_ops(body: &Value, max_operations: usize) -> BridgeResult<(Vec<Op>, Option<u64>)> {
    let Value::Object(obj) = body else {
        return Err(ScimError::InvalidSyntax("the body must be a JSON object".into()).into());
    };
    if let Some(schemas) = obj.get("schemas") {
        if !schemas
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s.as_str() == Some(BULK_REQUEST_SCHEMA)))
        {
            return Err(ScimError::InvalidSyntax(format!(
                "'schemas' must name {BULK_REQUEST_SCHEMA}"
            ))
            .into());
        }
    }
    let fail_on_errors = match obj.get("failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
            ScimError::InvalidValue("'failOnErrors' must be a positive integer".into())
        })?),
    };
    let Some(Value::Array(list)) = obj.get("Operations") else {
        return Err(ScimError::InvalidSyntax("'Operations' must be an array".into()).into());
    };
    if list.len() > max_operations {
        return Err(ScimError::PayloadTooLarge(format!(
            "{} operations: at most {max_operations} are accepted in one bulk request",
            list.len()
        ))
        .into());
    }
    let mut ops = Vec::with_capacity(list.len());
    let mut seen = HashSet::new();
    for (i, raw) in list.iter().enumerate() {
        let text = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_string);
        let method = text("method")
            .ok_or_else(|| {
                ScimError::InvalidSyntax(format!("operation {} has no 'method'", i + 1))
            })?
            .to_ascii_uppercase();
        if !["POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
            return Err(ScimError::InvalidSyntax(format!(
                "operation {}: '{method}' is not a bulk method",
                i + 1
            ))
            .into());
        }
        let path = text("path").ok_or_else(|| {
            ScimError::InvalidSyntax(format!("operation {} has no 'path'", i + 1))
        })?;
        let bulk_id = text("bulkId");
        if method == "POST" && bulk_id.is_none() {
            return Err(ScimError::InvalidSyntax(format!(
                "operation {}: a POST needs a 'bulkId'",
                i + 1
            ))
            .into());
        }
        if let Some(b) = &bulk_id {
            if !seen.insert(b.clone()) {
                return Err(ScimError::InvalidSyntax(format!("bulkId '{b}' is used twice")).into());
            }
        }
        let data = raw.get("data").filter(|d| !d.is_null()).cloned();
        if method != "DELETE" && data.is_none() {
            return Err(ScimError::InvalidSyntax(format!(
                "operation {}: {method} needs 'data'",
                i + 1
            ))
            .into());
        }
        let mut refs = BTreeSet::new();
        collect_refs(&Value::String(path.clone()), &mut refs);
        if let Some(path_ref) = path.split('/').find_map(|seg| seg.strip_prefix("bulkId:")) {
            refs.insert(path_ref.to_string());
        }
        if let Some(d) = &data {
            collect_refs(d, &mut refs);
        }
        ops.push(Op {
            method,
            path,
            bulk_id,
            version: text("version"),
            data,
            refs,
        });
    }
    Ok((ops, fail_on_errors))
}

fn error_result(op: &Op, e: &ScimError) -> Value {
    let mut r =
        json!({"method": op.method, "status": e.status().to_string(), "response": e.to_body()});
    if let (Some(b), Some(o)) = (&op.bulk_id, r.as_object_mut()) {
        o.insert("bulkId".into(), Value::String(b.clone()));
    }
    r
}

/// Finds a cycle through `start` among pending operations, as bulkIds.
fn cycle_from(start: &str, deps: &HashMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn walk(
        node: &str,
        start: &str,
        deps: &HashMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        seen: &mut HashSet<String>,
    ) -> bool {
        for next in deps.get(node).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(next, start, deps, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = HashSet::new();
    walk(start, start, deps, &mut path, &mut seen).then_some(path)
}

/// One operation as it runs: its `bulkId` references replaced by the ids they stand for
/// (whole path segments and whole string values only, so `bulkId:u1` is not the start of
/// `bulkId:u10`).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved<'a> {
    pub method: &'a str,
    pub path: String,
    pub bulk_id: Option<&'a str>,
    pub version: Option<&'a str>,
    pub data: Option<Value>,
}

fn resolve<'a>(op: &'a Op, ids: &HashMap<String, String>) -> Resolved<'a> {
    let path = op
        .path
        .split('/')
        .map(|seg| {
            seg.strip_prefix("bulkId:")
                .and_then(|b| ids.get(b))
                .map_or(seg, String::as_str)
        })
        .collect::<Vec<_>>()
        .join("/");
    let mut data = op.data.clone();
    if let Some(d) = &mut data {
        substitute(d, ids);
    }
    Resolved {
        method: &op.method,
        path,
        bulk_id: op.bulk_id.as_deref(),
        version: op.version.as_deref(),
        data,
    }
}

/// Runs a BulkRequest: each operation through `exec` once its references can be resolved
/// (in whatever order that allows), until `failOnErrors` errors; what is left waits on
/// itself and is reported as a circular reference. `exec` answers an operation's result
/// and, for a create, the new resource's id. Returns the BulkResponse.
pub fn run(
    body: &Value,
    max_operations: usize,
    mut exec: impl FnMut(&Resolved<'_>) -> Result<(Value, Option<String>), ScimError>,
) -> BridgeResult<Value> {
    let (ops, fail_on_errors) = parse_ops(body, max_operations)?;
    let defined: HashSet<String> = ops.iter().filter_map(|o| o.bulk_id.clone()).collect();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut failed: HashSet<String> = HashSet::new();
    let mut results: Vec<Option<Value>> = vec![None; ops.len()];
    let mut pending: Vec<usize> = (0..ops.len()).collect();
    let mut errors = 0u64;
    let stop = |errors: u64| fail_on_errors.is_some_and(|n| errors >= n);
    'passes: loop {
        let mut progressed = false;
        let mut still = Vec::new();
        for &i in &pending {
            if stop(errors) {
                break 'passes;
            }
            let op = &ops[i];
            let outcome: Option<Result<(Value, Option<String>), ScimError>> =
                if let Some(r) = op.refs.iter().find(|r| !defined.contains(*r)) {
                    Some(Err(ScimError::InvalidValue(format!(
                        "bulkId '{r}' is not defined in this request"
                    ))))
                } else if let Some(r) = op.refs.iter().find(|r| failed.contains(*r)) {
                    Some(Err(ScimError::Conflict(format!(
                        "the operation with bulkId '{r}' failed, so this one cannot run"
                    ))))
                } else if op.refs.iter().all(|r| ids.contains_key(r)) {
                    Some(exec(&resolve(op, &ids)))
                } else {
                    None
                };
            match outcome {
                None => still.push(i),
                Some(Ok((v, new_id))) => {
                    progressed = true;
                    if let (Some(b), Some(id)) = (&op.bulk_id, new_id) {
                        ids.insert(b.clone(), id);
                    }
                    results[i] = Some(v);
                }
                Some(Err(e)) => {
                    progressed = true;
                    errors += 1;
                    if let Some(b) = &op.bulk_id {
                        failed.insert(b.clone());
                    }
                    results[i] = Some(error_result(op, &e));
                }
            }
        }
        pending = still;
        if pending.is_empty() || !progressed {
            break;
        }
    }
    // What is left waits on itself: report each cycle as one.
    if !stop(errors) && !pending.is_empty() {
        let deps: HashMap<String, BTreeSet<String>> = pending
            .iter()
            .filter_map(|&i| ops[i].bulk_id.clone().map(|b| (b, ops[i].refs.clone())))
            .collect();
        for &i in &pending {
            let op = &ops[i];
            let detail = match op.bulk_id.as_deref().and_then(|b| cycle_from(b, &deps)) {
                Some(cycle) => format!("circular bulkId reference: {}", cycle.join(" -> ")),
                None => format!(
                    "depends on bulkIds in a circular reference: {}",
                    op.refs
                        .iter()
                        .filter(|r| !ids.contains_key(*r))
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            results[i] = Some(error_result(op, &ScimError::Conflict(detail)));
        }
    }
    let operations: Vec<Value> = results.into_iter().flatten().collect();
    Ok(json!({"schemas": [BULK_RESPONSE_SCHEMA], "Operations": operations}))
}

impl Resources {
    /// Runs a BulkRequest through the same use cases as single requests; returns the
    /// BulkResponse.
    pub fn bulk(&self, body: Value, base: &str, max_operations: usize) -> BridgeResult<Value> {
        run(&body, max_operations, |op| self.run_op(op, base))
    }

    fn run_op(&self, op: &Resolved<'_>, base: &str) -> Result<(Value, Option<String>), ScimError> {
        let path = &op.path;
        let data = &op.data;
        let trimmed = path.trim_start_matches('/');
        let (endpoint, id) = match trimmed.split_once('/') {
            Some((e, id)) => (format!("/{e}"), Some(id.to_string())),
            None => (format!("/{trimmed}"), None),
        };
        let rt = self
            .registry()
            .resource_types()
            .iter()
            .find(|r| r.endpoint.eq_ignore_ascii_case(&endpoint))
            .map(|r| r.name.clone())
            .ok_or_else(|| {
                ScimError::InvalidPath(format!("'{}' is not a resource endpoint", op.path))
            })?;
        let pre = Precondition::from_if_match(op.version);
        let none = Projection::default();
        let map_err = |e: BridgeError| e.to_scim();
        let mut out = Map::new();
        out.insert("method".into(), Value::String(op.method.to_string()));
        if let Some(b) = op.bulk_id {
            out.insert("bulkId".into(), Value::String(b.to_string()));
        }
        let need_id =
            || ScimError::InvalidPath(format!("{} needs a resource id in its path", op.method));
        let body = || data.clone().unwrap_or(Value::Null);
        let (status, location, version, new_id) = match (op.method, id) {
            ("POST", None) => {
                let r = self.create(&rt, body(), base, &none).map_err(map_err)?;
                let id = r.body.get("id").and_then(Value::as_str).map(str::to_string);
                ("201", Some(r.location), Some(r.etag), id)
            }
            ("POST", Some(_)) => {
                return Err(ScimError::InvalidPath(
                    "POST goes to a resource endpoint, without an id".into(),
                ))
            }
            ("PUT", Some(id)) => {
                let r = self
                    .replace(&rt, &id, body(), &pre, base, &none)
                    .map_err(map_err)?;
                ("200", Some(r.location), Some(r.etag), None)
            }
            ("PATCH", Some(id)) => {
                let (etag, _) = self
                    .patch(&rt, &id, body(), &pre, base, &none, false)
                    .map_err(map_err)?;
                let location = self
                    .registry()
                    .resource_type(&rt)
                    .map(|t| super::resources::location(base, t, &id));
                ("200", location, Some(etag), None)
            }
            ("DELETE", Some(id)) => {
                self.delete(&rt, &id, &pre).map_err(map_err)?;
                ("204", None, None, None)
            }
            _ => return Err(need_id()),
        };
        out.insert("status".into(), Value::String(status.into()));
        if let Some(l) = location {
            out.insert("location".into(), Value::String(l));
        }
        if let Some(v) = version {
            out.insert("version".into(), Value::String(v));
        }
        Ok((Value::Object(out), new_id))
    }
}
