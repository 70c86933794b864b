//! Resources as JSON documents: input normalisation against the schemas (RFC 7643
//! sections 2 and 7), and projection of output (`attributes`, `excludedAttributes`).

use serde_json::{Map, Value};

use super::error::{ScimError, ScimResult};
use super::path::{resolve, AttrPath};
use super::schema::{AttrDef, AttrType, Mutability, Registry, ResourceType, Returned, Schema};

/// A client's resource body, checked and brought to canonical form.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// Core attributes at the top level, each extension's object under its URN;
    /// canonical attribute names; no readOnly or writeOnly attribute; no nulls.
    pub data: Map<String, Value>,
    /// The writeOnly `password`, taken out of the document so it is never stored with it.
    pub password: Option<String>,
}

/// Reads a JSON object body, checks its `schemas` and every attribute's type, drops what
/// is readOnly, extracts the writeOnly password, and checks required attributes.
///
/// Attributes no schema defines are dropped (RFC 7644 leaves this to the server; IdPs
/// send vendor attributes that a strict server would turn into failed provisioning).
pub fn normalize(reg: &Registry, rt: &ResourceType, input: Value) -> ScimResult<Normalized> {
    let Value::Object(obj) = input else {
        return Err(ScimError::InvalidSyntax(
            "the body must be a JSON object".into(),
        ));
    };
    let core = reg.core_schema(rt)?;
    if let Some(schemas) = obj.get("schemas") {
        check_schemas(reg, rt, schemas)?;
    }
    let mut data = Map::new();
    let mut password = None;
    for (key, value) in obj {
        if value.is_null()
            || key.eq_ignore_ascii_case("schemas")
            || key.eq_ignore_ascii_case("id")
            || key.eq_ignore_ascii_case("meta")
        {
            continue;
        }
        if key.contains(':') {
            let ext = reg.extension(rt, &key).ok_or_else(|| {
                ScimError::InvalidSyntax(format!(
                    "'{key}' is not a schema extension of {}",
                    rt.name
                ))
            })?;
            let Value::Object(inner) = value else {
                return Err(ScimError::InvalidValue(format!(
                    "'{key}' must be a JSON object"
                )));
            };
            let mut ext_data = Map::new();
            for (k, v) in inner {
                if let Some(def) = ext.attr(&k) {
                    if let Some(v) = check_attr(def, v, &format!("{}:{}", ext.id, def.name))? {
                        ext_data.insert(def.name.clone(), v);
                    }
                }
            }
            if !ext_data.is_empty() {
                data.insert(ext.id.clone(), Value::Object(ext_data));
            }
            continue;
        }
        let Some(def) = core.attr(&key) else {
            continue;
        };
        if def.mutability == Mutability::WriteOnly && def.name == "password" {
            match value {
                Value::String(s) => password = Some(s),
                _ => {
                    return Err(ScimError::InvalidValue(
                        "'password' must be a string".into(),
                    ))
                }
            }
            continue;
        }
        if let Some(v) = check_attr(def, value, &def.name)? {
            data.insert(def.name.clone(), v);
        }
    }
    check_required(core, &data, None)?;
    for ext in &rt.extensions {
        let Some(schema) = reg.schema(&ext.schema) else {
            continue;
        };
        match data.get(&schema.id) {
            Some(Value::Object(inner)) => check_required(schema, inner, Some(&schema.id))?,
            _ if ext.required => {
                return Err(ScimError::InvalidValue(format!(
                    "the extension {} is required",
                    schema.id
                )))
            }
            _ => {}
        }
    }
    Ok(Normalized { data, password })
}

fn check_schemas(reg: &Registry, rt: &ResourceType, schemas: &Value) -> ScimResult<()> {
    let Value::Array(list) = schemas else {
        return Err(ScimError::InvalidSyntax(
            "'schemas' must be an array of URNs".into(),
        ));
    };
    for urn in list {
        let Value::String(urn) = urn else {
            return Err(ScimError::InvalidSyntax(
                "'schemas' must be an array of URNs".into(),
            ));
        };
        if !urn.eq_ignore_ascii_case(&rt.schema) && reg.extension(rt, urn).is_none() {
            return Err(ScimError::InvalidSyntax(format!(
                "the schema '{urn}' is not a schema of {}",
                rt.name
            )));
        }
    }
    Ok(())
}

fn check_required(
    schema: &Schema,
    data: &Map<String, Value>,
    _ext: Option<&str>,
) -> ScimResult<()> {
    for def in &schema.attributes {
        if def.required && def.mutability != Mutability::ReadOnly && !data.contains_key(&def.name) {
            return Err(ScimError::InvalidValue(format!(
                "the attribute '{}' is required",
                def.name
            )));
        }
        if let (true, Some(Value::String(s))) = (def.required, data.get(&def.name)) {
            if !s.chars().any(visible) {
                return Err(ScimError::InvalidValue(format!(
                    "the attribute '{}' is required and has no visible character",
                    def.name
                )));
            }
        }
    }
    Ok(())
}

/// A character that shows: not white space, and not an invisible format character (zero
/// width spaces and joiners, direction marks and overrides, the byte order mark, a soft
/// hyphen).
fn visible(c: char) -> bool {
    !c.is_whitespace()
        && !c.is_control()
        && !matches!(c,
            '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}')
}

/// Checks one attribute's value against its definition and returns it in canonical form;
/// `None` when it counts as absent (null, or an empty multi-valued list).
pub fn check_attr(def: &AttrDef, value: Value, path: &str) -> ScimResult<Option<Value>> {
    if value.is_null() || def.mutability == Mutability::ReadOnly {
        return Ok(None);
    }
    if def.multi_valued {
        let Value::Array(items) = value else {
            return Err(ScimError::InvalidValue(format!(
                "'{path}' is multi-valued and must be an array"
            )));
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = check_single(def, item, path)? {
                out.push(v);
            }
        }
        if out.iter().filter(|v| is_primary(v)).count() > 1 {
            return Err(ScimError::InvalidValue(format!(
                "'{path}' has more than one primary value; at most one may be (RFC 7643 2.4)"
            )));
        }
        return Ok(if out.is_empty() {
            None
        } else {
            Some(Value::Array(out))
        });
    }
    check_single(def, value, path)
}

fn is_primary(v: &Value) -> bool {
    v.get("primary") == Some(&Value::Bool(true))
}

/// After a PATCH: a value it made primary is the only primary one of its attribute (RFC
/// 7644 3.5.2: the others are set to `false`). `before` is the document the PATCH started
/// from; values primary there and still primary lose it to the new one (the last one the
/// PATCH made primary, when it made several).
pub fn settle_primary(before: &Map<String, Value>, after: &mut Map<String, Value>) {
    fn settle(before: Option<&Value>, after: &mut Value) {
        let Value::Array(items) = after else { return };
        if items.iter().filter(|v| is_primary(v)).count() < 2 {
            return;
        }
        let was_primary = |v: &Value| {
            before.and_then(Value::as_array).is_some_and(|old| {
                old.iter()
                    .any(|o| is_primary(o) && without_primary(o) == without_primary(v))
            })
        };
        let newest = items.iter().rposition(|v| is_primary(v) && !was_primary(v));
        if let Some(keep) = newest {
            for (i, v) in items.iter_mut().enumerate() {
                if i != keep && is_primary(v) {
                    if let Some(o) = v.as_object_mut() {
                        o.insert("primary".into(), Value::Bool(false));
                    }
                }
            }
        }
    }
    fn without_primary(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("primary");
        }
        v
    }
    for (key, value) in after.iter_mut() {
        match value {
            Value::Array(_) => settle(before.get(key), value),
            Value::Object(inner) if key.contains(':') => {
                let old = before.get(key).and_then(Value::as_object);
                for (k, v) in inner.iter_mut() {
                    settle(old.and_then(|o| o.get(k)), v);
                }
            }
            _ => {}
        }
    }
}

/// Checks one value of an attribute (one element of a multi-valued one).
pub fn check_single(def: &AttrDef, value: Value, path: &str) -> ScimResult<Option<Value>> {
    let wrong = |what: &str| Err(ScimError::InvalidValue(format!("'{path}' must be {what}")));
    match (def.kind, value) {
        (_, Value::Null) => Ok(None),
        // PostgreSQL's jsonb cannot hold U+0000: refused everywhere, on both databases.
        (AttrType::String | AttrType::Reference | AttrType::Binary, Value::String(s))
            if s.contains('\0') =>
        {
            Err(ScimError::InvalidValue(format!(
                "'{path}' contains U+0000, which no attribute may hold"
            )))
        }
        (AttrType::String | AttrType::Reference | AttrType::Binary, Value::String(s)) => {
            Ok(Some(Value::String(s)))
        }
        (AttrType::String | AttrType::Reference | AttrType::Binary, _) => wrong("a string"),
        (AttrType::Boolean, Value::Bool(b)) => Ok(Some(Value::Bool(b))),
        (AttrType::Boolean, Value::String(s)) => match coerce_bool(&s) {
            Some(b) => Ok(Some(Value::Bool(b))),
            None => wrong("a boolean"),
        },
        (AttrType::Boolean, _) => wrong("a boolean"),
        (AttrType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => {
            Ok(Some(Value::Number(n)))
        }
        (AttrType::Integer, _) => wrong("an integer"),
        (AttrType::Decimal, Value::Number(n)) => Ok(Some(Value::Number(n))),
        (AttrType::Decimal, _) => wrong("a number"),
        (AttrType::DateTime, Value::String(s)) => match chrono::DateTime::parse_from_rfc3339(&s) {
            // Kept in one form (UTC, milliseconds) so that text order is time order.
            Ok(t) => Ok(Some(Value::String(canonical_time(t)))),
            Err(_) => wrong("an xsd:dateTime such as 2008-01-23T04:56:22Z"),
        },
        (AttrType::DateTime, _) => wrong("an xsd:dateTime string"),
        (AttrType::Complex, Value::Object(obj)) => {
            let mut out = Map::new();
            for (k, v) in obj {
                let Some(sub) = def.sub(&k) else { continue };
                if sub.mutability == Mutability::ReadOnly {
                    continue;
                }
                let sub_path = format!("{path}.{}", sub.name);
                if let Some(v) = check_attr(sub, v, &sub_path)? {
                    out.insert(sub.name.clone(), v);
                }
            }
            Ok(if out.is_empty() {
                None
            } else {
                Some(Value::Object(out))
            })
        }
        // A bare id for a complex attribute with a `value` (Entra's manager).
        (AttrType::Complex, v @ (Value::String(_) | Value::Number(_)))
            if !def.multi_valued && def.sub("value").is_some() =>
        {
            let mut obj = Map::new();
            obj.insert("value".into(), v);
            check_single(def, Value::Object(obj), path)
        }
        (AttrType::Complex, _) => wrong("a JSON object"),
    }
}

/// The one form dateTime values are kept in: UTC with milliseconds, `2008-01-23T04:56:22.000Z`.
pub fn canonical_time(t: chrono::DateTime<chrono::FixedOffset>) -> String {
    t.with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// "True"/"False" in any case, as Microsoft Entra ID sends booleans.
pub fn coerce_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Which attributes a response carries (RFC 7644 section 3.9).
#[derive(Debug, Clone, Default)]
pub struct Projection {
    pub attributes: Vec<String>,
    pub excluded: Vec<String>,
}

impl Projection {
    /// Parses the comma-separated `attributes` and `excludedAttributes` parameters.
    pub fn from_params(attributes: Option<&str>, excluded: Option<&str>) -> Projection {
        let split = |s: Option<&str>| {
            s.map(|s| {
                s.split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default()
        };
        Projection {
            attributes: split(attributes),
            excluded: split(excluded),
        }
    }

    /// Whether the projection asks for the top-level attribute `name` (in the core schema
    /// when `ext` is `None`), so callers can avoid computing an attribute nobody wants.
    pub fn wants(&self, reg: &Registry, rt: &ResourceType, name: &str) -> bool {
        let names = |list: &[String]| {
            list.iter().any(|p| {
                AttrPath::parse(p)
                    .ok()
                    .and_then(|ap| resolve(reg, rt, &ap))
                    .is_some_and(|r| {
                        r.extension.is_none() && r.attr.name.eq_ignore_ascii_case(name)
                    })
            })
        };
        if !self.attributes.is_empty() {
            return names(&self.attributes);
        }
        !names(&self.excluded)
    }

    /// Applies the projection to a full resource document.
    pub fn apply(&self, reg: &Registry, rt: &ResourceType, resource: Value) -> Value {
        let Value::Object(mut obj) = resource else {
            return resource;
        };
        let Ok(core) = reg.core_schema(rt) else {
            return Value::Object(obj);
        };
        let requested: Vec<Selector> = self
            .attributes
            .iter()
            .filter_map(|p| Selector::parse(reg, rt, p))
            .collect();
        let excluded: Vec<Selector> = self
            .excluded
            .iter()
            .filter_map(|p| Selector::parse(reg, rt, p))
            .collect();
        let mut out = Map::new();
        for (key, value) in std::mem::take(&mut obj) {
            if key == "schemas" || key == "id" {
                out.insert(key, value);
                continue;
            }
            if key == "meta" {
                let asked = requested.is_empty() || requested.iter().any(|s| s.is_meta);
                if asked && !excluded.iter().any(|s| s.is_meta && s.attr.is_none()) {
                    out.insert(key, value);
                }
                continue;
            }
            let (schema, ext_urn) = if key.contains(':') {
                match reg.extension(rt, &key) {
                    Some(s) => (s, Some(s.id.clone())),
                    None => continue,
                }
            } else {
                (core, None)
            };
            if ext_urn.is_some() {
                let Value::Object(inner) = value else {
                    continue;
                };
                let mut kept = Map::new();
                for (k, v) in inner {
                    if let Some(def) = schema.attr(&k) {
                        if let Some(v) = select(def, v, ext_urn.as_deref(), &requested, &excluded) {
                            kept.insert(k, v);
                        }
                    }
                }
                if !kept.is_empty() {
                    out.insert(key, Value::Object(kept));
                }
            } else if let Some(def) = schema.attr(&key) {
                if let Some(v) = select(def, value, None, &requested, &excluded) {
                    out.insert(key, v);
                }
            }
        }
        // Keep `schemas` true to what is left: an extension removed by the projection
        // is no longer named.
        if let Some(Value::Array(list)) = out.get("schemas").cloned() {
            let kept: Vec<Value> = list
                .into_iter()
                .filter(|u| {
                    u.as_str()
                        .is_some_and(|u| u.eq_ignore_ascii_case(&rt.schema) || out.contains_key(u))
                })
                .collect();
            out.insert("schemas".into(), Value::Array(kept));
        }
        Value::Object(out)
    }
}

/// One entry of `attributes`/`excludedAttributes`, resolved.
#[derive(Debug)]
struct Selector {
    is_meta: bool,
    ext: Option<String>,
    /// `None`: the whole extension (a bare extension URN).
    attr: Option<String>,
    sub: Option<String>,
}

impl Selector {
    fn parse(reg: &Registry, rt: &ResourceType, text: &str) -> Option<Selector> {
        if let Some(ext) = reg.extension(rt, text) {
            return Some(Selector {
                is_meta: false,
                ext: Some(ext.id.clone()),
                attr: None,
                sub: None,
            });
        }
        let path = AttrPath::parse(text).ok()?;
        if path.urn.is_none() && path.attr.eq_ignore_ascii_case("meta") {
            return Some(Selector {
                is_meta: true,
                ext: None,
                attr: path.sub.clone(),
                sub: None,
            });
        }
        let r = resolve(reg, rt, &path)?;
        Some(Selector {
            is_meta: false,
            ext: r.extension.clone(),
            attr: Some(r.attr.name.clone()),
            sub: r.sub.map(|s| s.name.clone()),
        })
    }

    fn matches(&self, ext: Option<&str>, attr: &str) -> bool {
        !self.is_meta
            && self.ext.as_deref().map(str::to_ascii_lowercase) == ext.map(str::to_ascii_lowercase)
            && self
                .attr
                .as_deref()
                .is_none_or(|a| a.eq_ignore_ascii_case(attr))
    }
}

fn select(
    def: &AttrDef,
    value: Value,
    ext: Option<&str>,
    requested: &[Selector],
    excluded: &[Selector],
) -> Option<Value> {
    match def.returned {
        Returned::Never => return None,
        Returned::Always => return Some(value),
        _ => {}
    }
    if !requested.is_empty() {
        let hits: Vec<&Selector> = requested
            .iter()
            .filter(|s| s.matches(ext, &def.name))
            .collect();
        if hits.is_empty() {
            return None;
        }
        if hits.iter().any(|s| s.sub.is_none()) {
            return Some(value);
        }
        let subs: Vec<&str> = hits.iter().filter_map(|s| s.sub.as_deref()).collect();
        return keep_subs(def, value, |name| {
            subs.iter().any(|s| s.eq_ignore_ascii_case(name))
        });
    }
    if def.returned == Returned::Request {
        return None;
    }
    let hits: Vec<&Selector> = excluded
        .iter()
        .filter(|s| s.matches(ext, &def.name))
        .collect();
    if hits.iter().any(|s| s.sub.is_none()) {
        return None;
    }
    if hits.is_empty() {
        return Some(value);
    }
    let subs: Vec<&str> = hits.iter().filter_map(|s| s.sub.as_deref()).collect();
    keep_subs(def, value, |name| {
        !subs.iter().any(|s| s.eq_ignore_ascii_case(name))
    })
}

fn keep_subs(def: &AttrDef, value: Value, keep: impl Fn(&str) -> bool) -> Option<Value> {
    let filter_obj = |v: Value| -> Option<Value> {
        let Value::Object(o) = v else { return Some(v) };
        let kept: Map<String, Value> = o
            .into_iter()
            .filter(|(k, _)| keep(k) || def.sub(k).is_some_and(|s| s.returned == Returned::Always))
            .collect();
        if kept.is_empty() {
            None
        } else {
            Some(Value::Object(kept))
        }
    };
    match value {
        Value::Array(items) => {
            let items: Vec<Value> = items.into_iter().filter_map(filter_obj).collect();
            if items.is_empty() {
                None
            } else {
                Some(Value::Array(items))
            }
        }
        other => filter_obj(other),
    }
}
