//! What changed: the attribute-level change set between two documents, and the events a
//! write becomes for connectors.

use serde_json::{json, Map, Value};

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

pub fn is_empty(changes: &Value) -> bool {
    ["added", "replaced", "removed"]
        .iter()
        .all(|k| changes[k].as_object().is_none_or(Map::is_empty))
}

/// The event a user write is: a flip of `active` names it; anything else is an update.
pub fn user_event(
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
) -> &'static str {
    let active =
        |d: Option<&Map<String, Value>>| d.and_then(|d| d.get("active")).and_then(Value::as_bool);
    match (old, new) {
        (None, Some(_)) => "user.created",
        (Some(_), None) => "user.deleted",
        _ => match (active(old), active(new)) {
            (Some(true) | None, Some(false)) => "user.deactivated",
            (Some(false), Some(true) | None) => "user.reactivated",
            _ => "user.updated",
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
    fn a_flip_of_active_names_the_event() {
        let on = json!({"active": true});
        let off = json!({"active": false});
        assert_eq!(
            user_event(on.as_object(), off.as_object()),
            "user.deactivated"
        );
        assert_eq!(
            user_event(off.as_object(), on.as_object()),
            "user.reactivated"
        );
        assert_eq!(user_event(on.as_object(), on.as_object()), "user.updated");
    }
}
