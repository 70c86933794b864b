//! What changed: the attribute-level change set between two documents, and the events a
//! write becomes for connectors.

use serde_json::{json, Map, Value};

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

/// `{"added": {path: new}, "replaced": {path: {"old", "new"}}, "removed": {path: old}}`.
pub fn change_set(old: &Map<String, Value>, new: &Map<String, Value>) -> Value {
    let (old, new) = (flatten(old), flatten(new));
    let mut added = Map::new();
    let mut replaced = Map::new();
    let mut removed = Map::new();
    for (k, v) in &new {
        match old.get(k) {
            None => {
                added.insert(k.clone(), v.clone());
            }
            Some(o) if o != v => {
                replaced.insert(k.clone(), json!({"old": o, "new": v}));
            }
            _ => {}
        }
    }
    for (k, v) in &old {
        if !new.contains_key(k) {
            removed.insert(k.clone(), v.clone());
        }
    }
    json!({"added": added, "replaced": replaced, "removed": removed})
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

/// The document before a change, rebuilt from the document after it (`Null` after a
/// delete) and the change set: added paths taken out, replaced and removed ones restored.
pub fn previous(after: &Value, changes: &Value) -> Value {
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
    if let Some(added) = changes["added"].as_object() {
        for k in added.keys() {
            set(k, None);
        }
    }
    if let Some(replaced) = changes["replaced"].as_object() {
        for (k, v) in replaced {
            set(k, v.get("old"));
        }
    }
    if let Some(removed) = changes["removed"].as_object() {
        for (k, v) in removed {
            set(k, Some(v));
        }
    }
    Value::Object(doc)
}

/// Two consecutive change sets as one: each path keeps its first old value and its last
/// new value; a path that ends where it started drops out.
pub fn compose(first: &Value, second: &Value) -> Value {
    // path -> (first old, last new); Null means absent.
    let mut paths: Vec<(String, Value, Value)> = Vec::new();
    for set in [first, second] {
        let entries = |k: &str| set[k].as_object().cloned().unwrap_or_default();
        let mut steps: Vec<(String, Value, Value)> = Vec::new();
        steps.extend(
            entries("added")
                .into_iter()
                .map(|(k, v)| (k, Value::Null, v)),
        );
        steps.extend(
            entries("replaced")
                .into_iter()
                .map(|(k, v)| (k, v["old"].clone(), v["new"].clone())),
        );
        steps.extend(
            entries("removed")
                .into_iter()
                .map(|(k, v)| (k, v, Value::Null)),
        );
        for (k, old, new) in steps {
            match paths.iter_mut().find(|(p, _, _)| *p == k) {
                Some(entry) => entry.2 = new,
                None => paths.push((k, old, new)),
            }
        }
    }
    let mut added = Map::new();
    let mut replaced = Map::new();
    let mut removed = Map::new();
    for (k, old, new) in paths {
        match (old.is_null(), new.is_null()) {
            (true, false) => {
                added.insert(k, new);
            }
            (false, true) => {
                removed.insert(k, old);
            }
            (false, false) if old != new => {
                replaced.insert(k, json!({"old": old, "new": new}));
            }
            _ => {}
        }
    }
    json!({"added": added, "replaced": replaced, "removed": removed})
}

pub fn is_empty(changes: &Value) -> bool {
    ["added", "replaced", "removed"]
        .iter()
        .all(|k| changes[k].as_object().is_none_or(Map::is_empty))
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

    #[test]
    fn a_change_set_names_added_replaced_and_removed_paths_with_old_and_new() {
        let old =
            json!({"title": "A", "name": {"givenName": "B", "familyName": "C"}, "nickName": "n"});
        let new = json!({"title": "Z", "name": {"givenName": "B"}, "urn:x:User": {"employeeNumber": "7"}});
        let c = change_set(old.as_object().expect("o"), new.as_object().expect("o"));
        assert_eq!(c["replaced"]["title"], json!({"old": "A", "new": "Z"}));
        assert_eq!(c["removed"]["name.familyName"], "C");
        assert_eq!(c["removed"]["nickName"], "n");
        assert_eq!(c["added"]["urn:x:User:employeeNumber"], "7");
    }

    #[test]
    fn the_previous_document_is_rebuilt_from_the_change_set() {
        let old = json!({"title": "A", "name": {"givenName": "B", "familyName": "C"}, "nickName": "n",
                         "emails": [{"value": "a@x"}]});
        let new = json!({"title": "Z", "name": {"givenName": "B"}, "emails": [{"value": "b@x"}],
                         "urn:x:User": {"employeeNumber": "7"}});
        let c = change_set(old.as_object().expect("o"), new.as_object().expect("o"));
        assert_eq!(previous(&new, &c), old);
        assert_eq!(
            previous(
                &Value::Null,
                &change_set(old.as_object().expect("o"), &Map::new())
            ),
            old
        );
    }

    #[test]
    fn two_change_sets_compose_into_one_from_the_first_old_to_the_last_new() {
        let a = json!({"title": "A", "nickName": "n"});
        let b = json!({"title": "B", "displayName": "d"});
        let c = json!({"title": "A", "displayName": "e", "nickName": "m"});
        let ab = change_set(a.as_object().expect("o"), b.as_object().expect("o"));
        let bc = change_set(b.as_object().expect("o"), c.as_object().expect("o"));
        let ac = change_set(a.as_object().expect("o"), c.as_object().expect("o"));
        assert_eq!(compose(&ab, &bc), ac);
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
