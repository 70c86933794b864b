//! `scim-bridge connector test`: a short life of one made-up user (create, update,
//! deactivate, reactivate, read where the definition can, delete) through a definition,
//! against a target or an emulator, with every call, its answer and what the definition
//! made of it. The first tool someone writing a definition needs.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::definition::Verdict;
use super::{Declared, Exchange};
use crate::connectors::attrs::{diff, AttrMap};
use crate::connectors::read::compare;
use crate::connectors::target::{Target, User};

/// One step of the life, with the calls it made.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: &'static str,
    pub calls: Vec<Exchange>,
    /// What the step came to: what it found, or why it failed.
    pub result: Result<String, String>,
}

/// The whole life, step by step; it stops at the first step that failed.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub steps: Vec<Step>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.steps.iter().all(|s| s.result.is_ok())
    }

    /// The report as a person reads it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for s in &self.steps {
            let _ = writeln!(out, "== {}", s.name);
            for c in &s.calls {
                let _ = writeln!(out, "   {} {}  ({})", c.method, c.url, c.call);
                match &c.body {
                    Some(Value::String(xml)) => {
                        let _ = writeln!(out, "     sent: {xml}");
                    }
                    Some(b) => {
                        let _ = writeln!(out, "     sent: {b}");
                    }
                    None => {}
                }
                match c.status {
                    Some(st) => {
                        let answer: String = c.answer.chars().take(300).collect();
                        let _ = writeln!(out, "     answer: {st} {}", answer.trim());
                    }
                    None => {
                        let _ = writeln!(out, "     answer: none");
                    }
                }
                let verdict = match &c.verdict {
                    Ok(v) => verdict_name(*v).to_string(),
                    Err(e) => e.clone(),
                };
                let _ = writeln!(out, "     read as: {verdict}");
            }
            match &s.result {
                Ok(what) => {
                    let _ = writeln!(out, "   ok: {what}");
                }
                Err(why) => {
                    let _ = writeln!(out, "   FAILED: {why}");
                }
            }
        }
        let _ = writeln!(
            out,
            "{}",
            if self.passed() {
                "every step passed"
            } else {
                "a step failed"
            }
        );
        out
    }
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Success => "success",
        Verdict::NotFound => "not found",
        Verdict::Conflict => "conflict",
        Verdict::Retry => "retry later",
        Verdict::Refused => "refused",
        Verdict::Reauth => "sign in again",
    }
}

/// The made-up user's SCIM document.
pub fn test_user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "Test", "familyName": "User"},
        "displayName": "Test User",
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "active": true,
    })
}

/// A described target made from a definition file and what `connector test` was given
/// (`options` as `key=value`, each value read as TOML where it parses, else as text).
pub fn target(
    file: &str,
    url: &str,
    creds: super::Credentials,
    options: &[String],
    timeout: std::time::Duration,
) -> Result<(Declared, AttrMap), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
    let def = super::definition::Definition::parse(file, &text, &Default::default())
        .map_err(|e| e.to_string())?;
    let mut table = serde_json::Map::new();
    for o in options {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| format!("--option {o}: give key=value"))?;
        let value = toml::from_str::<toml::Table>(&format!("v = {v}"))
            .ok()
            .and_then(|t| t.get("v").cloned())
            .and_then(|v| serde_json::to_value(v).ok())
            .unwrap_or_else(|| Value::String(v.to_string()));
        table.insert(k.trim().to_string(), value);
    }
    let pairs: Vec<(&str, &str)> = def
        .attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let map = AttrMap::new(&pairs, &Default::default())?;
    let declared = Declared::new(def, url, creds, Value::Object(table), timeout).watched();
    Ok((declared, map))
}

/// Runs the life of `user_name` through `target` (which must be [`Declared::watched`]).
pub fn run(target: &Declared, map: &AttrMap, user_name: &str) -> Report {
    let mut report = Report::default();
    let scim_id = uuid::Uuid::new_v4().to_string();
    let doc = test_user(user_name);
    let user = |doc: &Value, active: bool| -> Result<User<'_>, String> {
        let fields = map.apply(doc);
        let principal = fields
            .get(target.principal_field())
            .map(crate::connectors::attrs::text)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                format!(
                    "the test user has no value for the principal field '{}'",
                    target.principal_field()
                )
            })?;
        Ok(User {
            scim_id: &scim_id,
            fields,
            principal,
            active,
            roles: vec![],
            groups: vec![],
        })
    };
    let mut step = |name: &'static str, f: &mut dyn FnMut() -> Result<String, String>| {
        let result = f();
        let ok = result.is_ok();
        report.steps.push(Step {
            name,
            calls: target.exchanges(),
            result,
        });
        ok
    };
    let first = match user(&doc, true) {
        Ok(u) => u,
        Err(why) => {
            step("map the test user", &mut || Err(why.clone()));
            return report;
        }
    };
    let defs = &target.definition().operations;
    if defs.lookup.is_some()
        && !step(
            "lookup (before the create)",
            &mut || match target.lookup(&first.principal) {
                Ok(None) => Ok("not there yet, as expected".into()),
                Ok(Some(id)) => Err(format!(
                    "the target already holds {} (id {id}): choose another --user-name",
                    first.principal
                )),
                Err(e) => Err(e.to_string()),
            },
        )
    {
        return report;
    }
    let mut target_id = String::new();
    if !step("create", &mut || {
        let c = target.create(&first).map_err(|e| e.to_string())?;
        target_id = c.target_id.clone();
        Ok(format!("target id {}", c.target_id))
    }) {
        return report;
    }
    if defs.lookup.is_some()
        && !step(
            "lookup (after the create)",
            &mut || match target.lookup(&first.principal) {
                Ok(Some(id)) if id == target_id => Ok(format!("found as {id}")),
                Ok(Some(id)) => Err(format!("found as {id}, but the create gave {target_id}")),
                Ok(None) => Err("the lookup does not find the user just created".into()),
                Err(e) => Err(e.to_string()),
            },
        )
    {
        return report;
    }
    let mut changed = doc.clone();
    changed["name"]["familyName"] = json!("User-Changed");
    let Ok(second) = user(&changed, true) else {
        return report;
    };
    if !step("update (familyName)", &mut || {
        let changes = diff(&first.fields, &second.fields);
        if changes.is_empty() {
            return Ok("no mapped field takes name.familyName: nothing to send".into());
        }
        target
            .update(&target_id, &second, &changes, None)
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "sent {}",
            changes
                .iter()
                .map(|c| c.field.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }) {
        return report;
    }
    for (name, active) in [("deactivate", false), ("reactivate", true)] {
        if !step(name, &mut || {
            let mut u = second.clone();
            u.active = active;
            target
                .set_active(&target_id, &u, active)
                .map(|_| "done".into())
                .map_err(|e| e.to_string())
        }) {
            return report;
        }
    }
    if defs.read.is_some() {
        let names: Vec<&str> = map.fields().map(|(f, _)| f).collect();
        let ok = step("read", &mut || {
            let found = target
                .read(&second.principal, &names)
                .map_err(|e| e.to_string())?
                .ok_or("the read does not find the user")?;
            let drift = compare(&second.fields, true, target.principal_field(), &found);
            if !drift.is_empty() {
                return Err(format!(
                    "what the target holds differs from what was sent: {}",
                    serde_json::to_string(&drift).unwrap_or_default()
                ));
            }
            Ok(format!(
                "id {}, {} fields as sent, active {}",
                found.target_id,
                found.fields.len(),
                found
                    .active
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "not told".into())
            ))
        });
        if !ok {
            return report;
        }
    }
    let name = if defs.delete.is_some() {
        "delete"
    } else {
        "delete (no delete operation: deactivate)"
    };
    step(name, &mut || {
        target
            .delete(&target_id, &second)
            .map(|_| "done".into())
            .map_err(|e| e.to_string())
    });
    report
}
