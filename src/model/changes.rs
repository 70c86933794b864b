//! What changed: the attribute-level change set between two documents, and the events a
//! write becomes for connectors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Event;

/// Flattens a document to attribute paths: `title`, `name.givenName`,
/// `urn:...:User:employeeNumber`; multi-valued attributes stay whole at their path.
fn flatten(doc: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in doc {
        match v {
            Value::Object(inner) => {
                let sep = if k.contains(':') { ":" } else { "." };
                for (sk, sv) in inner {
                    out.insert(format!("{k}{sep}{sk}"), sv.clone());
                }
            }
            other => {
                out.insert(k.clone(), other.clone());
            }
        }
    }
    out
}

/// Splits a flattened path back into its attribute and sub-attribute (or extension URN
/// and attribute).
fn unflatten(path: &str) -> (&str, Option<&str>) {
    if path.starts_with("urn:") {
        match path.rfind(':') {
            Some(i) => (&path[..i], Some(&path[i + 1..])),
            None => (path, None),
        }
    } else {
        match path.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (path, None),
        }
    }
}

/// A replaced path's value before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replaced {
    pub old: Value,
    pub new: Value,
}

/// What a change did to a document, path by path: `{"added": {path: new}, "replaced":
/// {path: {"old", "new"}}, "removed": {path: old}}` on the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChangeSet {
    pub added: BTreeMap<String, Value>,
    pub replaced: BTreeMap<String, Replaced>,
    pub removed: BTreeMap<String, Value>,
}

impl ChangeSet {
    /// The change from `old` to `new`.
    pub fn between(old: &Map<String, Value>, new: &Map<String, Value>) -> ChangeSet {
        let (old, new) = (flatten(old), flatten(new));
        let mut set = ChangeSet::default();
        for (k, v) in &new {
            match old.get(k) {
                None => {
                    set.added.insert(k.clone(), v.clone());
                }
                Some(o) if o != v => {
                    set.replaced.insert(
                        k.clone(),
                        Replaced {
                            old: o.clone(),
                            new: v.clone(),
                        },
                    );
                }
                _ => {}
            }
        }
        for (k, v) in old {
            if !new.contains_key(&k) {
                set.removed.insert(k, v);
            }
        }
        set
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.replaced.is_empty() && self.removed.is_empty()
    }

    /// The document before the change, rebuilt from the document after it (`Null` after a
    /// delete): added paths taken out, replaced and removed ones restored.
    pub fn previous(&self, after: &Value) -> Value {
        let mut doc = after.as_object().cloned().unwrap_or_default();
        let mut set = |path: &str, value: Option<&Value>| {
            let (top, sub) = unflatten(path);
            match (sub, value) {
                (None, Some(v)) => {
                    doc.insert(top.to_string(), v.clone());
                }
                (None, None) => {
                    doc.remove(top);
                }
                (Some(sub), v) => {
                    let entry = doc
                        .entry(top.to_string())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Some(o) = entry.as_object_mut() {
                        match v {
                            Some(v) => {
                                o.insert(sub.to_string(), v.clone());
                            }
                            None => {
                                o.remove(sub);
                            }
                        }
                        if o.is_empty() {
                            doc.remove(top);
                        }
                    }
                }
            }
        };
        for k in self.added.keys() {
            set(k, None);
        }
        for (k, r) in &self.replaced {
            set(k, Some(&r.old));
        }
        for (k, v) in &self.removed {
            set(k, Some(v));
        }
        Value::Object(doc)
    }

    /// This change followed by `next`, as one: each path keeps its first old value and its
    /// last new value; a path that ends where it started drops out.
    pub fn then(&self, next: &ChangeSet) -> ChangeSet {
        // path -> (first old, last new); Null means absent.
        let mut paths: BTreeMap<String, (Value, Value)> = BTreeMap::new();
        for set in [self, next] {
            let steps = set
                .added
                .iter()
                .map(|(k, v)| (k, Value::Null, v.clone()))
                .chain(
                    set.replaced
                        .iter()
                        .map(|(k, r)| (k, r.old.clone(), r.new.clone())),
                )
                .chain(set.removed.iter().map(|(k, v)| (k, v.clone(), Value::Null)));
            for (k, old, new) in steps {
                paths
                    .entry(k.clone())
                    .and_modify(|e| e.1 = new.clone())
                    .or_insert((old, new));
            }
        }
        let mut out = ChangeSet::default();
        for (k, (old, new)) in paths {
            match (old.is_null(), new.is_null()) {
                (true, false) => {
                    out.added.insert(k, new);
                }
                (false, true) => {
                    out.removed.insert(k, old);
                }
                (false, false) if old != new => {
                    out.replaced.insert(k, Replaced { old, new });
                }
                _ => {}
            }
        }
        out
    }
}

/// The event a user write is: a flip of `active` names it; anything else is an update.
pub fn user_event(old: Option<&Map<String, Value>>, new: Option<&Map<String, Value>>) -> Event {
    let active =
        |d: Option<&Map<String, Value>>| d.and_then(|d| d.get("active")).and_then(Value::as_bool);
    match (old, new) {
        (None, Some(_)) => Event::UserCreated,
        (Some(_), None) => Event::UserDeleted,
        _ => match (active(old), active(new)) {
            (Some(true) | None, Some(false)) => Event::UserDeactivated,
            (Some(false), Some(true) | None) => Event::UserReactivated,
            _ => Event::UserUpdated,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_change_set_names_added_replaced_and_removed_paths_with_old_and_new() {
        let old =
            json!({"title": "A", "name": {"givenName": "B", "familyName": "C"}, "nickName": "n"});
        let new = json!({"title": "Z", "name": {"givenName": "B"}, "urn:x:User": {"employeeNumber": "7"}});
        let c = ChangeSet::between(old.as_object().expect("o"), new.as_object().expect("o"));
        let c = serde_json::to_value(&c).expect("serialises");
        assert_eq!(c["replaced"]["title"], json!({"old": "A", "new": "Z"}));
        assert_eq!(c["removed"]["name.familyName"], "C");
        assert_eq!(c["removed"]["nickName"], "n");
        assert_eq!(c["added"]["urn:x:User:employeeNumber"], "7");
        let back: ChangeSet = serde_json::from_value(c).expect("reads back");
        assert_eq!(
            back,
            ChangeSet::between(old.as_object().expect("o"), new.as_object().expect("o"))
        );
    }

    #[test]
    fn the_previous_document_is_rebuilt_from_the_change_set() {
        let old = json!({"title": "A", "name": {"givenName": "B", "familyName": "C"}, "nickName": "n",
                         "emails": [{"value": "a@x"}]});
        let new = json!({"title": "Z", "name": {"givenName": "B"}, "emails": [{"value": "b@x"}],
                         "urn:x:User": {"employeeNumber": "7"}});
        let c = ChangeSet::between(old.as_object().expect("o"), new.as_object().expect("o"));
        assert_eq!(c.previous(&new), old);
        assert_eq!(
            ChangeSet::between(old.as_object().expect("o"), &Map::new()).previous(&Value::Null),
            old
        );
    }

    #[test]
    fn two_change_sets_compose_into_one_from_the_first_old_to_the_last_new() {
        let a = json!({"title": "A", "nickName": "n"});
        let b = json!({"title": "B", "displayName": "d"});
        let c = json!({"title": "A", "displayName": "e", "nickName": "m"});
        let ab = ChangeSet::between(a.as_object().expect("o"), b.as_object().expect("o"));
        let bc = ChangeSet::between(b.as_object().expect("o"), c.as_object().expect("o"));
        let ac = ChangeSet::between(a.as_object().expect("o"), c.as_object().expect("o"));
        assert_eq!(ab.then(&bc), ac);
    }

    #[test]
    fn a_flip_of_active_names_the_event() {
        let on = json!({"active": true});
        let off = json!({"active": false});
        assert_eq!(
            user_event(on.as_object(), off.as_object()),
            Event::UserDeactivated
        );
        assert_eq!(
            user_event(off.as_object(), on.as_object()),
            Event::UserReactivated
        );
        assert_eq!(
            user_event(on.as_object(), on.as_object()),
            Event::UserUpdated
        );
    }
}
