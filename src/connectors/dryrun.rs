//! `mode = "dry_run"`: a connector that computes every call it would make and records it,
//! without calling its target. Vendor connectors run their whole adapter (mapping, diffs,
//! roles, scope) over a target that records each operation with the fields it would send;
//! lookups are not made (a dry run cannot know what the target holds), so a user shows as
//! created. The webhook and ENTSSO record the request they would send, never a password.

use std::cell::RefCell;

use serde_json::{json, Value};

use super::target::{Created, Target, User};
use super::{Connector, ConnectorError, Delivery, FieldChange, Outcome};
use crate::model::Event;

thread_local! {
    /// The calls of the delivery running on this thread (a delivery is one thread's work).
    static CALLS: RefCell<Vec<Value>> = const { RefCell::new(Vec::new()) };
}

fn record(call: Value) {
    CALLS.with(|c| c.borrow_mut().push(call));
}

/// Records a call a connector of its own would have made (the `scim` connector's groups).
pub fn record_call(call: Value) {
    record(call);
}

/// The target id a dry run gives a user it would create.
fn dry_id(user: &User<'_>) -> String {
    format!("dry-run:{}", user.scim_id)
}

/// A vendor target that records instead of calling.
pub struct Recorder<T: Target> {
    pub inner: T,
}

impl<T: Target> Target for Recorder<T> {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn principal_field(&self) -> &str {
        self.inner.principal_field()
    }
    fn supports_passwords(&self) -> bool {
        self.inner.supports_passwords()
    }
    fn supports_roles(&self) -> bool {
        self.inner.supports_roles()
    }
    fn lookup_before_create(&self) -> bool {
        false
    }
    fn lookup(&self, principal: &str) -> Result<Option<String>, ConnectorError> {
        record(json!({"call": "lookup", "principal": principal}));
        Ok(None)
    }
    fn create(&self, user: &User<'_>) -> Result<Created, ConnectorError> {
        record(
            json!({"call": "create", "principal": user.principal, "fields": user.fields,
                      "active": user.active, "roles": user.roles}),
        );
        Ok(Created {
            target_id: dry_id(user),
            adopted: false,
        })
    }
    fn update(
        &self,
        target_id: &str,
        user: &User<'_>,
        changes: &[FieldChange],
        old_principal: Option<&str>,
    ) -> Result<(), ConnectorError> {
        let changes: Vec<Value> = changes
            .iter()
            .map(|c| json!({"field": c.field, "op": c.op.as_str(), "value": c.new}))
            .collect();
        record(
            json!({"call": "update", "targetId": target_id, "principal": user.principal,
                      "renamedFrom": old_principal, "changes": changes}),
        );
        Ok(())
    }
    fn set_active(
        &self,
        target_id: &str,
        user: &User<'_>,
        active: bool,
    ) -> Result<(), ConnectorError> {
        let call = if active { "reactivate" } else { "deactivate" };
        record(json!({"call": call, "targetId": target_id, "principal": user.principal}));
        Ok(())
    }
    fn delete(&self, target_id: &str, user: &User<'_>) -> Result<(), ConnectorError> {
        record(json!({"call": "delete", "targetId": target_id, "principal": user.principal}));
        Ok(())
    }
    fn set_password(
        &self,
        target_id: &str,
        user: &User<'_>,
        _password: &str,
    ) -> Result<(), ConnectorError> {
        record(json!({"call": "set_password", "targetId": target_id, "principal": user.principal}));
        Ok(())
    }
    fn change_roles(
        &self,
        target_id: &str,
        user: &User<'_>,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ConnectorError> {
        record(
            json!({"call": "change_roles", "targetId": target_id, "principal": user.principal,
                      "add": add, "remove": remove}),
        );
        Ok(())
    }
}

/// A connector that is not a vendor target (the webhook, ENTSSO): the request it would
/// send, by name.
pub struct WholeRecorder {
    pub kind: &'static str,
    pub call: &'static str,
    pub supports: fn(Event) -> bool,
}

impl Connector for WholeRecorder {
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn supports(&self, event: Event) -> bool {
        (self.supports)(event)
    }
    fn deliver(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        let principal = d
            .change
            .resource
            .as_ref()
            .and_then(|r| r.get("userName").or_else(|| r.get("displayName")))
            .cloned()
            .unwrap_or(Value::Null);
        record(
            json!({"call": self.call, "event": d.event, "resourceId": d.resource_id,
                      "principal": principal}),
        );
        Ok(Outcome::default())
    }
}

/// Runs the recording connector and hands back the calls it recorded, in the outcome.
pub struct DryRun {
    pub inner: std::sync::Arc<dyn Connector>,
}

impl Connector for DryRun {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn unreadable(&self) -> Option<String> {
        Some("the connector is in dry run: it makes no call to its target, reads included".into())
    }
    fn supports(&self, event: Event) -> bool {
        self.inner.supports(event)
    }
    fn reads(&self, event: Event) -> bool {
        self.inner.reads(event)
    }
    fn deliver(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        CALLS.with(|c| c.borrow_mut().clear());
        let result = self.inner.deliver(d);
        let calls = CALLS.with(|c| std::mem::take(&mut *c.borrow_mut()));
        result.map(|mut o| {
            o.note = Some(format!(
                "dry run: {} calls recorded, none made",
                calls.len()
            ));
            o.dry_run = Some(calls);
            o
        })
    }
}
