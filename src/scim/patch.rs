//! PATCH (RFC 7644 section 3.5.2) on a resource document, with the forms Microsoft Entra
//! ID and Okta send: path-less value objects (dotted keys included), simple and
//! sub-attribute paths, value filters, URN-qualified extension paths, capitalised ops,
//! string booleans, and `replace` on a filter that matches nothing adding the value.
//!
//! Attributes kept outside the document (a Group's `members`, in its own table) are not
//! changed here: each operation on them becomes a [`MemberChange`] for the caller.

use serde_json::{Map, Value};

use super::error::{ScimError, ScimResult};
use super::filter::{CompValue, CompareOp, Evaluator, Filter};
use super::path::{resolve, AttrPath, Resolved};
use super::schema::{AttrDef, AttrType, Mutability, Registry, ResourceType};

pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Most operations one PATCH request may carry.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

/// A PATCH path: `attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub`, each optionally
/// URN-qualified, or a bare extension URN.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter (`emails[type eq "work"].value`).
    pub sub: Option<String>,
}

impl PatchPath {
    pub fn parse(text: &str) -> ScimResult<PatchPath> {
        let text = text.trim();
        let invalid =
            |why: &str| ScimError::InvalidPath(format!("'{text}' is not a valid path: {why}"));
        match text.find('[') {
            None => Ok(PatchPath {
                attr: AttrPath::parse(text).map_err(|_| invalid("not an attribute path"))?,
                filter: None,
                sub: None,
            }),
            Some(open) => {
                let close = text
                    .rfind(']')
                    .ok_or_else(|| invalid("'[' is not closed"))?;
                if close < open {
                    return Err(invalid("']' before '['"));
                }
                let attr =
                    AttrPath::parse(&text[..open]).map_err(|_| invalid("not an attribute path"))?;
                if attr.sub.is_some() {
                    return Err(invalid(
                        "a value filter applies to an attribute, not a sub-attribute",
                    ));
                }
                let filter =
                    Filter::parse(&text[open + 1..close]).map_err(|e| invalid(&e.to_string()))?;
                let rest = &text[close + 1..];
                let sub = match rest {
                    "" => None,
                    r => Some(
                        r.strip_prefix('.')
                            .filter(|s| !s.is_empty() && !s.contains('.'))
                            .ok_or_else(|| invalid("expected '.subAttribute' after ']'"))?
                            .to_string(),
                    ),
                };
                Ok(PatchPath {
                    attr,
                    filter: Some(filter),
                    sub,
                })
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct PatchOp {
    pub kind: OpKind,
    pub path: Option<String>,
    pub value: Option<Value>,
}

/// Reads a PatchOp request body.
pub fn parse_request(body: Value) -> ScimResult<Vec<PatchOp>> {
    let Value::Object(obj) = body else {
        return Err(ScimError::InvalidSyntax(
            "the body must be a JSON object".into(),
        ));
    };
    if let Some(schemas) = obj.get("schemas") {
        let ok = schemas.as_array().is_some_and(|l| {
            l.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
            })
        });
        if !ok {
            return Err(ScimError::InvalidSyntax(format!(
                "'schemas' must name {PATCH_OP_SCHEMA}"
            )));
        }
    }
    let ops = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
        .map(|(_, v)| v)
        .ok_or_else(|| ScimError::InvalidSyntax("'Operations' is missing".into()))?;
    let Value::Array(ops) = ops else {
        return Err(ScimError::InvalidSyntax(
            "'Operations' must be an array".into(),
        ));
    };
    if ops.is_empty() {
        return Err(ScimError::InvalidSyntax("'Operations' is empty".into()));
    }
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::TooMany(format!(
            "more than {MAX_OPERATIONS} operations"
        )));
    }
    ops.iter()
        .map(|op| {
            let get = |name: &str| {
                op.as_object().and_then(|o| {
                    o.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v)
                })
            };
            let kind = match get("op")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("add") => OpKind::Add,
                Some("remove") => OpKind::Remove,
                Some("replace") => OpKind::Replace,
                Some(other) => {
                    return Err(ScimError::InvalidSyntax(format!(
                        "'{other}' is not a PATCH op"
                    )))
                }
                None => {
                    return Err(ScimError::InvalidSyntax(
                        "every operation needs an 'op'".into(),
                    ))
                }
            };
            let path = match get("path") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(ScimError::InvalidPath("'path' must be a string".into())),
            };
            let value = get("value").filter(|v| !v.is_null()).cloned();
            Ok(PatchOp { kind, path, value })
        })
        .collect()
}

/// A change to an attribute kept outside the document.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberChange {
    Add(Vec<Value>),
    ReplaceAll(Vec<Value>),
    RemoveAll,
    /// Remove the members with these `value`s.
    Remove(Vec<String>),
    /// Remove the members an element filter matches.
    RemoveWhere(Filter),
}

/// The outcome of a PATCH: the new document, changes to external attributes, and a
/// password if one was set.
#[derive(Debug, Clone, Default)]
pub struct Patched {
    pub data: Map<String, Value>,
    pub members: Vec<MemberChange>,
    pub password: Option<String>,
}

pub struct Patcher<'a> {
    pub reg: &'a Registry,
    pub rt: &'a ResourceType,
    /// Top-level core attributes kept outside the document (`members` for groups).
    pub external: &'a [&'a str],
}

impl Patcher<'_> {
    /// Applies every operation to a copy of `data`; on any error nothing is applied.
    pub fn apply(&self, data: &Map<String, Value>, ops: &[PatchOp]) -> ScimResult<Patched> {
        let mut out = Patched {
            data: data.clone(),
            ..Default::default()
        };
        let mut i = 0;
        while i < ops.len() {
            // Consecutive adds to one multi-valued attribute are one add of all their
            // values (the same result: each value once, in order): a list is scanned once
            // for the run, not once per operation.
            let run = self.add_run(&ops[i..]);
            if run > 1 {
                let values: Vec<Value> = ops[i..i + run]
                    .iter()
                    .flat_map(|o| as_list(o.value.clone().unwrap_or(Value::Null)))
                    .collect();
                let merged = PatchOp {
                    kind: OpKind::Add,
                    path: ops[i].path.clone(),
                    value: Some(Value::Array(values)),
                };
                self.apply_op(&mut out, &merged)?;
                i += run;
                continue;
            }
            self.apply_op(&mut out, &ops[i])?;
            i += 1;
        }
        Ok(out)
    }

    /// How many operations from the first are adds to the same plain multi-valued
    /// attribute of the core schema (`emails`, not `emails[type eq "work"]`).
    fn add_run(&self, ops: &[PatchOp]) -> usize {
        let plain = |op: &PatchOp| -> Option<String> {
            let p = op.path.as_deref()?.trim();
            if op.kind != OpKind::Add || p.is_empty() || p.contains(['[', '.', ':']) {
                return None;
            }
            let attr = self.reg.core_schema(self.rt).ok()?.attr(p)?;
            (attr.multi_valued && attr.mutability != Mutability::ReadOnly)
                .then(|| attr.name.to_ascii_lowercase())
        };
        let Some(first) = ops.first().and_then(plain) else {
            return 0;
        };
        ops.iter()
            .take_while(|op| plain(op).as_deref() == Some(first.as_str()))
            .count()
    }

    fn apply_op(&self, out: &mut Patched, op: &PatchOp) -> ScimResult<()> {
        match &op.path {
            None => {
                if op.kind == OpKind::Remove {
                    return Err(ScimError::NoTarget("'remove' needs a 'path'".into()));
                }
                let Some(Value::Object(obj)) = &op.value else {
                    return Err(ScimError::InvalidValue(
                        "without a 'path' the 'value' must be an object of attributes".into(),
                    ));
                };
                for (key, v) in obj {
                    if key.eq_ignore_ascii_case("schemas") {
                        continue;
                    }
                    if let Some(ext) = self.reg.extension(self.rt, key) {
                        let Value::Object(inner) = v else {
                            return Err(ScimError::InvalidValue(format!(
                                "'{key}' must be an object"
                            )));
                        };
                        for (k, sv) in inner {
                            let path = format!("{}:{k}", ext.id);
                            self.apply_path(out, op.kind, &path, Some(sv.clone()), true)?;
                        }
                        continue;
                    }
                    self.apply_path(out, op.kind, key, Some(v.clone()), true)?;
                }
                Ok(())
            }
            Some(path) => {
                if op.kind != OpKind::Remove && op.value.is_none() {
                    return Err(ScimError::InvalidValue(format!(
                        "'{path}': add and replace need a 'value'"
                    )));
                }
                self.apply_path(out, op.kind, path, op.value.clone(), false)
            }
        }
    }

    fn apply_path(
        &self,
        out: &mut Patched,
        kind: OpKind,
        path_text: &str,
        value: Option<Value>,
        from_object: bool,
    ) -> ScimResult<()> {
        // A bare extension URN: the whole extension object.
        if let Some(ext) = self.reg.extension(self.rt, path_text) {
            return match (kind, value) {
                (OpKind::Remove, _) => {
                    out.data.remove(&ext.id);
                    Ok(())
                }
                (_, Some(Value::Object(inner))) => {
                    for (k, v) in inner {
                        self.apply_path(out, kind, &format!("{}:{k}", ext.id), Some(v), true)?;
                    }
                    Ok(())
                }
                _ => Err(ScimError::InvalidValue(format!(
                    "'{path_text}' takes an object"
                ))),
            };
        }
        let path = PatchPath::parse(path_text)?;
        // The common attributes the service provider keeps (RFC 7643 3.1): id is readOnly
        // and meta's sub-attributes too, so changing them is a mutability error.
        let common = path
            .attr
            .urn
            .as_deref()
            .is_none_or(|u| self.reg.schema(u).is_some())
            && ["id", "meta"]
                .iter()
                .any(|c| path.attr.attr.eq_ignore_ascii_case(c));
        if common && !from_object {
            return Err(ScimError::Mutability(format!(
                "'{path_text}' is set by the service provider and cannot be changed"
            )));
        }
        if path.attr.urn.is_none()
            && path.attr.attr.eq_ignore_ascii_case("password")
            && path.filter.is_none()
        {
            if kind == OpKind::Remove {
                return Err(ScimError::Mutability("'password' cannot be removed".into()));
            }
            match value {
                Some(Value::String(s)) => out.password = Some(s),
                _ => {
                    return Err(ScimError::InvalidValue(
                        "'password' must be a string".into(),
                    ))
                }
            }
            return Ok(());
        }
        let Some(resolved) = resolve(self.reg, self.rt, &path.attr) else {
            if from_object {
                // As on POST: attributes no schema defines are dropped.
                return Ok(());
            }
            return Err(ScimError::InvalidPath(format!(
                "'{path_text}' is not an attribute of {}",
                self.rt.name
            )));
        };
        let attr = resolved.attr;
        let target_def: &AttrDef = match (&path.sub, resolved.sub) {
            (Some(s), _) => attr.sub(s).ok_or_else(|| {
                ScimError::InvalidPath(format!("'{s}' is not a sub-attribute of '{}'", attr.name))
            })?,
            (None, Some(sub)) => sub,
            (None, None) => attr,
        };
        if attr.mutability == Mutability::ReadOnly || target_def.mutability == Mutability::ReadOnly
        {
            return Err(ScimError::Mutability(format!("'{path_text}' is read-only")));
        }
        if resolved.extension.is_none()
            && self
                .external
                .iter()
                .any(|e| e.eq_ignore_ascii_case(&attr.name))
        {
            return self.external_change(out, kind, &path, resolved.sub.is_some(), value);
        }
        let container = match &resolved.extension {
            Some(urn) => {
                let entry = out
                    .data
                    .entry(urn.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                match entry {
                    Value::Object(m) => m,
                    _ => {
                        return Err(ScimError::Internal(
                            "extension data is not an object".into(),
                        ))
                    }
                }
            }
            None => &mut out.data,
        };
        let result = Doc {
            reg: self.reg,
            rt: self.rt,
        }
        .apply(container, kind, &resolved, &path, value);
        if let Some(urn) = &resolved.extension {
            if out
                .data
                .get(urn)
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                out.data.remove(urn);
            }
        }
        result
    }

    fn external_change(
        &self,
        out: &mut Patched,
        kind: OpKind,
        path: &PatchPath,
        has_sub: bool,
        value: Option<Value>,
    ) -> ScimResult<()> {
        if has_sub || path.sub.is_some() {
            return Err(ScimError::Mutability(format!(
                "'{}' sub-attributes cannot be changed",
                path.attr
            )));
        }
        let values = |v: Option<Value>| -> ScimResult<Vec<Value>> {
            match v {
                Some(Value::Array(a)) => Ok(a),
                Some(v @ Value::Object(_)) => Ok(vec![v]),
                None => Ok(vec![]),
                Some(_) => Err(ScimError::InvalidValue(format!(
                    "'{}' takes an array of objects",
                    path.attr
                ))),
            }
        };
        let change = match (kind, &path.filter) {
            (OpKind::Add, None) => MemberChange::Add(values(value)?),
            (OpKind::Replace, None) => MemberChange::ReplaceAll(values(value)?),
            (OpKind::Remove, None) => match value {
                None => MemberChange::RemoveAll,
                v => {
                    let ids = values(v)?
                        .iter()
                        .map(|m| {
                            m.get("value")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                                .ok_or_else(|| {
                                    ScimError::InvalidValue(
                                        "every member to remove needs a 'value'".into(),
                                    )
                                })
                        })
                        .collect::<ScimResult<Vec<_>>>()?;
                    MemberChange::Remove(ids)
                }
            },
            (OpKind::Remove, Some(f)) => MemberChange::RemoveWhere(f.clone()),
            (_, Some(_)) => {
                return Err(ScimError::InvalidPath(format!(
                    "'{}' with a filter takes only 'remove'; add or replace members without one",
                    path.attr
                )))
            }
        };
        out.members.push(change);
        Ok(())
    }
}

/// Operations on one container (the core document or an extension's object).
struct Doc<'a> {
    reg: &'a Registry,
    rt: &'a ResourceType,
}

fn key_of(map: &Map<String, Value>, name: &str) -> String {
    map.keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_string())
}

fn as_list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => vec![other],
    }
}

fn check_immutable(
    def: &AttrDef,
    current: Option<&Value>,
    new: &Value,
    name: &str,
) -> ScimResult<()> {
    if def.mutability == Mutability::Immutable {
        if let Some(cur) = current {
            if cur != new {
                return Err(ScimError::Mutability(format!("'{name}' is immutable")));
            }
        }
    }
    Ok(())
}

impl Doc<'_> {
    fn apply(
        &self,
        map: &mut Map<String, Value>,
        kind: OpKind,
        r: &Resolved<'_>,
        path: &PatchPath,
        value: Option<Value>,
    ) -> ScimResult<()> {
        let attr = r.attr;
        let key = key_of(map, &attr.name);
        // Sub-attribute named in the attribute path itself: `name.givenName`, `emails.type`.
        if let (Some(sub), None) = (r.sub, &path.filter) {
            return self.apply_sub_everywhere(map, &key, attr, sub, kind, value);
        }
        if let Some(filter) = &path.filter {
            if !attr.multi_valued {
                return Err(ScimError::InvalidPath(format!(
                    "'{}' is not multi-valued: it takes no filter",
                    attr.name
                )));
            }
            return self.apply_filtered(
                map,
                &key,
                attr,
                filter,
                &path.attr,
                path.sub.as_deref(),
                kind,
                value,
            );
        }
        match kind {
            OpKind::Remove => {
                match (value, attr.multi_valued) {
                    // Remove only the listed values (as Entra removes members).
                    (Some(v), true) => {
                        let gone = Gone::of(as_list(v));
                        if let Some(Value::Array(items)) = map.get_mut(&key) {
                            items.retain(|item| !gone.matches(item));
                            if items.is_empty() {
                                map.remove(&key);
                            }
                        }
                    }
                    _ => {
                        if attr.required {
                            return Err(ScimError::Mutability(format!(
                                "'{}' is required and cannot be removed",
                                attr.name
                            )));
                        }
                        map.remove(&key);
                    }
                }
                Ok(())
            }
            OpKind::Add | OpKind::Replace => {
                let v = value.unwrap_or(Value::Null);
                if attr.multi_valued {
                    let new_items = as_list(v);
                    if kind == OpKind::Replace {
                        map.remove(&key);
                        if !new_items.is_empty() {
                            map.insert(attr.name.clone(), Value::Array(new_items));
                        }
                    } else {
                        let entry = map.entry(key).or_insert_with(|| Value::Array(vec![]));
                        if let Value::Array(items) = entry {
                            // A set of what the list holds: N values added cost N, not N².
                            let mut held: std::collections::HashSet<String> =
                                items.iter().map(canonical).collect();
                            for item in new_items {
                                if held.insert(canonical(&item)) {
                                    items.push(item);
                                }
                            }
                        }
                    }
                    return Ok(());
                }
                if attr.kind == AttrType::Complex {
                    // Entra sends the manager as a bare id: a scalar for a complex attribute
                    // with a `value` sub-attribute means that sub-attribute.
                    let v = match v {
                        Value::String(_) | Value::Number(_) | Value::Bool(_)
                            if attr.sub("value").is_some() =>
                        {
                            let mut m = Map::new();
                            m.insert("value".into(), v);
                            Value::Object(m)
                        }
                        other => other,
                    };
                    let Value::Object(subs) = v else {
                        return Err(ScimError::InvalidValue(format!(
                            "'{}' takes an object",
                            attr.name
                        )));
                    };
                    let entry = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
                    if !entry.is_object() {
                        *entry = Value::Object(Map::new());
                    }
                    if let Value::Object(existing) = entry {
                        for (k, sv) in subs {
                            if let Some(sd) = attr.sub(&k) {
                                if sd.mutability == Mutability::ReadOnly {
                                    continue;
                                }
                                let sk = key_of(existing, &sd.name);
                                check_immutable(sd, existing.get(&sk), &sv, &sd.name)?;
                                existing.remove(&sk);
                                existing.insert(sd.name.clone(), sv);
                            }
                        }
                    }
                    return Ok(());
                }
                check_immutable(attr, map.get(&key), &v, &attr.name)?;
                map.remove(&key);
                map.insert(attr.name.clone(), v);
                Ok(())
            }
        }
    }

    fn apply_sub_everywhere(
        &self,
        map: &mut Map<String, Value>,
        key: &str,
        attr: &AttrDef,
        sub: &AttrDef,
        kind: OpKind,
        value: Option<Value>,
    ) -> ScimResult<()> {
        if attr.multi_valued {
            // `emails.type` with no filter: every element.
            if let Some(Value::Array(items)) = map.get_mut(key) {
                for item in items.iter_mut() {
                    set_sub(item, sub, kind, value.clone())?;
                }
            } else if kind != OpKind::Remove {
                return Err(ScimError::NoTarget(format!(
                    "'{}' has no values to set '{}' on",
                    attr.name, sub.name
                )));
            }
            return Ok(());
        }
        match kind {
            OpKind::Remove => {
                if let Some(obj) = map.get_mut(key) {
                    set_sub(obj, sub, kind, None)?;
                    if obj.as_object().is_some_and(Map::is_empty) {
                        map.remove(key);
                    }
                }
                Ok(())
            }
            _ => {
                let entry = map
                    .entry(key.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                set_sub(entry, sub, kind, value)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_filtered(
        &self,
        map: &mut Map<String, Value>,
        key: &str,
        attr: &AttrDef,
        filter: &Filter,
        parent: &AttrPath,
        sub: Option<&str>,
        kind: OpKind,
        value: Option<Value>,
    ) -> ScimResult<()> {
        let eval = Evaluator {
            reg: self.reg,
            rt: self.rt,
        };
        let sub_def = match sub {
            Some(s) => Some(attr.sub(s).ok_or_else(|| {
                ScimError::InvalidPath(format!("'{s}' is not a sub-attribute of '{}'", attr.name))
            })?),
            None => None,
        };
        if let Some(sd) = sub_def {
            if sd.mutability == Mutability::ReadOnly {
                return Err(ScimError::Mutability(format!(
                    "'{}.{}' is read-only",
                    attr.name, sd.name
                )));
            }
        }
        let items = match map.get_mut(key) {
            Some(Value::Array(items)) => std::mem::take(items),
            _ => vec![],
        };
        let mut kept = Vec::with_capacity(items.len());
        let mut matched = 0usize;
        for mut item in items {
            if !eval.matches_element(parent, filter, &item)? {
                kept.push(item);
                continue;
            }
            matched += 1;
            match (kind, sub_def) {
                (OpKind::Remove, None) => {}
                (OpKind::Remove, Some(sd)) => {
                    set_sub(&mut item, sd, kind, None)?;
                    if item.as_object().is_some_and(|o| !o.is_empty()) {
                        kept.push(item);
                    }
                }
                (_, Some(sd)) => {
                    set_sub(&mut item, sd, kind, value.clone())?;
                    kept.push(item);
                }
                (_, None) => {
                    let v = value.clone().unwrap_or(Value::Null);
                    if let (OpKind::Add, Value::Object(new), Value::Object(old)) =
                        (kind, &v, &mut item)
                    {
                        for (k, sv) in new {
                            old.insert(k.clone(), sv.clone());
                        }
                        kept.push(item);
                    } else {
                        kept.push(v);
                    }
                }
            }
        }
        if matched == 0 && kind != OpKind::Remove {
            // Entra sends `replace` on `emails[type eq "work"].value` when there is no work
            // email yet and expects it added: build the element from the filter's equalities.
            let mut element = Map::new();
            equalities(filter, &mut element).ok_or_else(|| {
                ScimError::NoTarget(format!(
                    "the filter '{filter}' matches no value and does not say what to add"
                ))
            })?;
            match (sub_def, value) {
                (Some(sd), Some(v)) => {
                    element.insert(sd.name.clone(), v);
                }
                (None, Some(Value::Object(o))) => {
                    for (k, v) in o {
                        element.insert(k, v);
                    }
                }
                _ => {
                    return Err(ScimError::InvalidValue(
                        "the value to add must be an object".into(),
                    ))
                }
            }
            kept.push(Value::Object(element));
        }
        map.remove(key);
        if !kept.is_empty() {
            map.insert(attr.name.clone(), Value::Array(kept));
        }
        Ok(())
    }
}

/// Whether a value to remove names this element: equal, or the same `value` sub-attribute.
/// A value in one textual form whatever the order of its keys, so that two values `==`
/// calls equal have the same form (a set of them stands in for a linear search).
fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&m[k], out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for x in a {
                    write(x, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// The values a remove names: an item goes when it equals one, or has the `value` of one.
struct Gone {
    whole: std::collections::HashSet<String>,
    values: std::collections::HashSet<String>,
}

impl Gone {
    fn of(list: Vec<Value>) -> Gone {
        Gone {
            whole: list.iter().map(canonical).collect(),
            values: list
                .iter()
                .filter_map(|g| g.get("value"))
                .map(canonical)
                .collect(),
        }
    }

    fn matches(&self, item: &Value) -> bool {
        self.whole.contains(&canonical(item))
            || item
                .get("value")
                .is_some_and(|v| self.values.contains(&canonical(v)))
    }
}

#[cfg(test)]
#[test]
fn canonical_forms_agree_with_equality_whatever_the_key_order() {
    let a: Value = serde_json::from_str(r#"{"value":"x","type":"work"}"#).expect("a");
    let b: Value = serde_json::from_str(r#"{"type":"work","value":"x"}"#).expect("b");
    assert_eq!(a, b);
    assert_eq!(canonical(&a), canonical(&b));
    let gone = Gone::of(vec![serde_json::json!({"value": "x"})]);
    assert!(gone.matches(&a), "same value");
    assert!(!gone.matches(&serde_json::json!({"value": "y"})));
}

fn set_sub(item: &mut Value, sub: &AttrDef, kind: OpKind, value: Option<Value>) -> ScimResult<()> {
    if !item.is_object() {
        *item = Value::Object(Map::new());
    }
    let Value::Object(obj) = item else {
        return Ok(());
    };
    let k = key_of(obj, &sub.name);
    match kind {
        OpKind::Remove => {
            obj.remove(&k);
        }
        _ => {
            let v = value.unwrap_or(Value::Null);
            check_immutable(sub, obj.get(&k), &v, &sub.name)?;
            obj.remove(&k);
            obj.insert(sub.name.clone(), v);
        }
    }
    Ok(())
}

/// The `attr eq value` terms of a conjunction, as an element to add; `None` when the filter
/// is anything else.
fn equalities(f: &Filter, into: &mut Map<String, Value>) -> Option<()> {
    match f {
        Filter::And(a, b) => {
            equalities(a, into)?;
            equalities(b, into)
        }
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.urn.is_none() && path.sub.is_none() => {
            let v = match value {
                CompValue::String(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return None,
            };
            into.insert(path.attr.clone(), v);
            Some(())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_paths_parse_in_every_form() {
        let p = PatchPath::parse("emails[type eq \"work\"].value").expect("parses");
        assert_eq!(p.attr.attr, "emails");
        assert_eq!(p.sub.as_deref(), Some("value"));
        assert!(p.filter.is_some());
        let p = PatchPath::parse("members[value eq \"2819c223\"]").expect("parses");
        assert!(p.sub.is_none());
        let p =
            PatchPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager")
                .expect("parses");
        assert_eq!(p.attr.attr, "manager");
        assert!(PatchPath::parse("emails[type eq \"work\"").is_err());
        assert!(PatchPath::parse("emails[type eq \"work\"]value").is_err());
    }

    #[test]
    fn op_names_are_read_without_regard_to_case() {
        let ops = parse_request(serde_json::json!({
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}, {"op": "ADD", "value": {"title": "x"}}]
        }))
        .expect("parses");
        assert_eq!(ops[0].kind, OpKind::Replace);
        assert_eq!(ops[1].kind, OpKind::Add);
    }

    #[test]
    fn an_unknown_op_is_invalid_syntax() {
        let r = parse_request(serde_json::json!({"Operations": [{"op": "merge", "path": "x"}]}));
        assert!(matches!(r, Err(ScimError::InvalidSyntax(_))));
    }
}
