//! Reading a target back, for reconcile: what a target holds of one user (through the
//! connector's own lookup calls), and how that compares with what the bridge would send.
//! A password is never read or compared.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::attrs::text;

/// A user as a target holds it, read through the vendor's own calls.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetUser {
    pub target_id: String,
    /// The fields the target could tell, by the target's names; a field the target holds
    /// no value for is `Value::Null`. A field it cannot read at all is absent (not compared).
    pub fields: BTreeMap<String, Value>,
    /// Whether the user may sign in, where the target says so.
    pub active: Option<bool>,
}

/// One field that differs: the target's value and the bridge's (None: no value).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDrift {
    pub field: String,
    pub target: Option<Value>,
    pub bridge: Option<Value>,
}

/// How one user stands in a target against the bridge.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    /// The target holds what the bridge would send.
    InSync { target_id: String },
    /// The bridge would provision the user and the target does not have it.
    Missing,
    /// The target holds the user with other values.
    Different {
        target_id: String,
        fields: Vec<FieldDrift>,
    },
    /// The bridge does not provision this user in this target (scope), and the target
    /// does not hold it.
    OutOfScope,
}

/// One user read back: its principal in the target (what the bridge would send) and
/// how it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    pub principal: String,
    pub standing: Standing,
}

/// What reconcile shows to the bridge: one user, its groups, and where the bridge
/// thinks it stands.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub scim_id: &'a str,
    /// The user's SCIM document as stored now.
    pub doc: &'a Value,
    /// The displayNames of its groups.
    pub groups: &'a [String],
}

/// A value as compared: its text, with an empty text the same as no value.
fn norm(v: Option<&Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(v) => Some(text(v)).filter(|t| !t.trim().is_empty()),
    }
}

/// The fields on which the target differs from the bridge: each field the target could
/// read, with the principal compared without regard to case (every target here finds a
/// user by its principal that way); then the active state, where the target tells it.
pub fn compare(
    bridge: &BTreeMap<String, Value>,
    bridge_active: bool,
    principal_field: &str,
    target: &TargetUser,
) -> Vec<FieldDrift> {
    let mut out = Vec::new();
    let names: std::collections::BTreeSet<&String> =
        bridge.keys().chain(target.fields.keys()).collect();
    for name in names {
        let Some(got) = target.fields.get(name) else {
            continue;
        };
        let want = bridge.get(name);
        let (a, b) = (norm(Some(got)), norm(want));
        let same = if name == principal_field {
            a.as_deref().map(str::to_lowercase) == b.as_deref().map(str::to_lowercase)
        } else {
            a == b
        };
        if !same {
            out.push(FieldDrift {
                field: name.clone(),
                target: a.map(Value::String),
                bridge: b.map(Value::String),
            });
        }
    }
    if let Some(active) = target.active.filter(|a| *a != bridge_active) {
        out.push(FieldDrift {
            field: "active".into(),
            target: Some(Value::Bool(active)),
            bridge: Some(Value::Bool(bridge_active)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(fields: &[(&str, Value)], active: Option<bool>) -> TargetUser {
        TargetUser {
            target_id: "7".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            active,
        }
    }

    #[test]
    fn a_field_the_target_cannot_read_is_not_compared_and_empty_equals_absent() {
        let bridge: BTreeMap<String, Value> = [
            ("login".to_string(), json!("a@x")),
            ("dept".into(), json!("IT")),
        ]
        .into();
        let t = target(&[("login", json!("A@X")), ("title", json!(""))], Some(true));
        assert!(compare(&bridge, true, "login", &t).is_empty());
    }

    #[test]
    fn a_changed_field_and_a_changed_state_are_both_reported_with_both_values() {
        let bridge: BTreeMap<String, Value> = [("firstName".to_string(), json!("Ann"))].into();
        let t = target(&[("firstName", json!("Anne"))], Some(false));
        let d = compare(&bridge, true, "login", &t);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].field, "firstName");
        assert_eq!(d[0].target, Some(json!("Anne")));
        assert_eq!(d[0].bridge, Some(json!("Ann")));
        assert_eq!(d[1].field, "active");
    }
}
