//! Attribute mappings: which SCIM attribute feeds each target field. A connector has its
//! defaults; `[connector.attributes]` overrides them (`field = "SCIM path"`, or `""` to
//! leave a field out). Paths: `userName`, `name.givenName`, `emails[type eq "work"].value`,
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`. A
//! multi-valued attribute without a filter gives its primary value, else its first.

use std::collections::BTreeMap;

use serde_json::Value;

/// One SCIM attribute path, ready to read from a resource document.
#[derive(Debug, Clone, PartialEq)]
pub struct Pointer {
    text: String,
    urn: Option<String>,
    attr: String,
    filter: Option<(String, Value)>,
    sub: Option<String>,
}

fn get_ci<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    let o = v.as_object()?;
    o.get(key).or_else(|| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Pointer {
    pub fn parse(text: &str) -> Result<Pointer, String> {
        let bad = || format!("'{text}' is not an attribute path");
        let t = text.trim();
        let bracket = t.find('[').unwrap_or(t.len());
        let (urn, rest) = match t[..bracket].rfind(':') {
            Some(i) => (Some(t[..i].to_string()), &t[i + 1..]),
            None => (None, t),
        };
        let (head, filter, tail) = match rest.find('[') {
            Some(open) => {
                // The `]` that closes this `[`, not one before it.
                let close = rest[open..].find(']').map(|c| open + c).ok_or_else(bad)?;
                let inner = &rest[open + 1..close];
                let mut parts = inner.splitn(3, ' ');
                let (Some(a), Some(op), Some(v)) = (parts.next(), parts.next(), parts.next())
                else {
                    return Err(bad());
                };
                if !op.eq_ignore_ascii_case("eq") || !name_ok(a) {
                    return Err(format!(
                        "'{text}': only [attribute eq value] filters are allowed"
                    ));
                }
                let value: Value = serde_json::from_str(v.trim()).map_err(|_| bad())?;
                let tail = &rest[close + 1..];
                (
                    &rest[..open],
                    Some((a.to_string(), value)),
                    tail.strip_prefix('.'),
                )
            }
            None => match rest.split_once('.') {
                Some((a, s)) => (a, None, Some(s)),
                None => (rest, None, None),
            },
        };
        if !name_ok(head) || !tail.is_none_or(name_ok) || urn.as_deref() == Some("") {
            return Err(bad());
        }
        Ok(Pointer {
            text: t.to_string(),
            urn,
            attr: head.to_string(),
            filter,
            sub: tail.map(str::to_string),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The schema URN (when given), the attribute and the sub-attribute it names.
    pub fn parts(&self) -> (Option<&str>, &str, Option<&str>) {
        (self.urn.as_deref(), &self.attr, self.sub.as_deref())
    }

    /// The value at this path in a resource document, if any (null counts as none).
    pub fn get(&self, doc: &Value) -> Option<Value> {
        let holder = match &self.urn {
            Some(urn) => get_ci(doc, urn)?,
            None => doc,
        };
        let v = get_ci(holder, &self.attr)?;
        let element = match v {
            Value::Array(items) => {
                let chosen = match &self.filter {
                    Some((a, want)) => items.iter().find(|i| {
                        get_ci(i, a).is_some_and(|got| match (got, want) {
                            (Value::String(g), Value::String(w)) => g.eq_ignore_ascii_case(w),
                            (g, w) => g == w,
                        })
                    }),
                    None if self.sub.is_none() && !items.iter().any(Value::is_object) => {
                        return Some(v.clone());
                    }
                    None => items
                        .iter()
                        .find(|i| get_ci(i, "primary") == Some(&Value::Bool(true)))
                        .or_else(|| items.first()),
                };
                chosen?
            }
            other => other,
        };
        let out = match &self.sub {
            Some(s) => get_ci(element, s)?,
            None => match element.as_object() {
                // A multi-valued element without a sub-attribute: its value.
                Some(_) if self.filter.is_some() || v.is_array() => get_ci(element, "value")?,
                _ => element,
            },
        };
        (!out.is_null()).then(|| out.clone())
    }
}

/// The target fields a connector fills, each from one SCIM path, in a stable order.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrMap {
    fields: Vec<(String, Pointer)>,
}

impl AttrMap {
    /// The connector's defaults with the configuration's overrides applied; a field may be
    /// added, repointed, or left out with an empty path.
    pub fn new(
        defaults: &[(&str, &str)],
        overrides: &BTreeMap<String, String>,
    ) -> Result<AttrMap, String> {
        let mut fields: Vec<(String, Pointer)> = Vec::new();
        for (field, path) in defaults {
            if overrides.contains_key(*field) {
                continue;
            }
            fields.push((field.to_string(), Pointer::parse(path)?));
        }
        for (field, path) in overrides {
            if path.trim().is_empty() {
                continue;
            }
            fields.push((
                field.clone(),
                Pointer::parse(path).map_err(|e| format!("{field}: {e}"))?,
            ));
        }
        Ok(AttrMap { fields })
    }

    /// Target field name to value, for the fields the document has.
    pub fn apply(&self, doc: &Value) -> BTreeMap<String, Value> {
        self.fields
            .iter()
            .filter_map(|(f, p)| p.get(doc).map(|v| (f.clone(), v)))
            .collect()
    }

    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(f, p)| (f.as_str(), p.as_str()))
    }
}

/// What happened to one target field between two versions of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Replace,
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Replace => "replace",
            Op::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub field: String,
    pub op: Op,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// The field-level changes from `old` to `new`.
pub fn diff(old: &BTreeMap<String, Value>, new: &BTreeMap<String, Value>) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (k, v) in new {
        match old.get(k) {
            None => out.push(FieldChange {
                field: k.clone(),
                op: Op::Add,
                old: None,
                new: Some(v.clone()),
            }),
            Some(o) if o != v => out.push(FieldChange {
                field: k.clone(),
                op: Op::Replace,
                old: Some(o.clone()),
                new: Some(v.clone()),
            }),
            _ => {}
        }
    }
    for (k, v) in old {
        if !new.contains_key(k) {
            out.push(FieldChange {
                field: k.clone(),
                op: Op::Delete,
                old: Some(v.clone()),
                new: None,
            });
        }
    }
    out
}

/// A value as the text a target field takes.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "userName": "bjensen", "name": {"givenName": "Barbara"},
            "emails": [{"value": "home@x", "type": "home"}, {"value": "work@x", "type": "work", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701"},
            "urn:example:accounts": {"accountIds": ["A1", "A2"]}
        })
    }

    #[test]
    fn a_pointer_reads_simple_complex_filtered_primary_and_extension_values() {
        let d = doc();
        let get = |p: &str| Pointer::parse(p).expect(p).get(&d);
        assert_eq!(get("userName"), Some(json!("bjensen")));
        assert_eq!(get("name.givenName"), Some(json!("Barbara")));
        assert_eq!(get("name.familyName"), None);
        assert_eq!(get("emails[type eq \"home\"].value"), Some(json!("home@x")));
        assert_eq!(get("emails.value"), Some(json!("work@x")));
        assert_eq!(get("emails"), Some(json!("work@x")));
        assert_eq!(
            get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"),
            Some(json!("701"))
        );
        assert_eq!(
            get("urn:example:accounts:accountIds"),
            Some(json!(["A1", "A2"]))
        );
    }

    #[test]
    fn overrides_repoint_add_and_remove_fields_and_diff_names_each_operation() {
        let mut o = BTreeMap::new();
        o.insert(
            "email".to_string(),
            "emails[type eq \"home\"].value".to_string(),
        );
        o.insert("first".to_string(), String::new());
        o.insert("dept".to_string(), "name.givenName".to_string());
        let m = AttrMap::new(
            &[("first", "name.givenName"), ("email", "emails.value")],
            &o,
        )
        .expect("map");
        let a = m.apply(&doc());
        assert_eq!(a.get("email"), Some(&json!("home@x")));
        assert!(!a.contains_key("first"));
        let mut b = a.clone();
        b.remove("dept");
        b.insert("email".into(), json!("new@x"));
        b.insert("title".into(), json!("Boss"));
        let ops: Vec<(String, Op)> = diff(&a, &b).into_iter().map(|c| (c.field, c.op)).collect();
        assert!(ops.contains(&("email".into(), Op::Replace)));
        assert!(ops.contains(&("dept".into(), Op::Delete)));
        assert!(ops.contains(&("title".into(), Op::Add)));
        assert!(AttrMap::new(&[("x", "emails[type co \"w\"]")], &BTreeMap::new()).is_err());
    }

    #[test]
    fn a_malformed_path_in_configuration_is_an_error_not_a_panic() {
        for bad in [
            "emails]x[type eq 1]",
            "emails[type eq",
            "]",
            "[",
            "a.b.c",
            "emails[type eq \"w\"].",
            ":x",
        ] {
            assert!(Pointer::parse(bad).is_err(), "{bad}");
        }
    }
}
