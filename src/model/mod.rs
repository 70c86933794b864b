//! The change model every layer shares: which kind of resource changed, which event a
//! change is, where a job, a mapping and a notification stand, and a change as connectors
//! receive it. Plain data: no database, no HTTP.

pub mod changes;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use changes::ChangeSet;

/// A name that is not one of an enum's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("'{name}' is not a known {what}")]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
}

/// An enum stored and shown by name: `as_str`, `FromStr`, `Display` and `Serialize`
/// from one table of variants and names.
macro_rules! named {
    ($(#[$meta:meta])* $vis:vis enum $ty:ident ($what:literal) { $($(#[$vmeta:meta])* $var:ident = $name:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $ty { $($(#[$vmeta])* $var,)+ }

        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$var,)+];

            pub const fn as_str(self) -> &'static str {
                match self { $($ty::$var => $name,)+ }
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<$ty, UnknownName> {
                match s {
                    $($name => Ok($ty::$var),)+
                    _ => Err(UnknownName { what: $what, name: s.to_string() }),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
                name.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

named! {
    /// The kinds of resource that change.
    pub enum ResourceKind ("resource type") {
        User = "User",
        Group = "Group",
    }
}

named! {
    /// What a change is, as connectors and webhooks receive it.
    pub enum Event ("event") {
        UserCreated = "user.created",
        UserUpdated = "user.updated",
        UserDeactivated = "user.deactivated",
        UserReactivated = "user.reactivated",
        UserDeleted = "user.deleted",
        /// The user left the last of the connector's scope groups (removed from one, the
        /// group deleted or renamed): the target deactivates it. A job of the user's own,
        /// queued when the group's change is delivered, so the deletion brake counts it.
        UserLeftScope = "user.left_scope",
        /// A new password, sealed into the job (never in the payload).
        UserPasswordSet = "user.password_set",
        GroupCreated = "group.created",
        GroupUpdated = "group.updated",
        GroupRenamed = "group.renamed",
        GroupDeleted = "group.deleted",
        GroupMembersAdded = "group.members_added",
        GroupMembersRemoved = "group.members_removed",
        GroupMembersRemovedAll = "group.members_removed_all",
        GroupMembersReplaced = "group.members_replaced",
    }
}

impl Event {
    pub fn kind(self) -> ResourceKind {
        if self.as_str().starts_with("group.") {
            ResourceKind::Group
        } else {
            ResourceKind::User
        }
    }

    /// A deactivation or deletion of a user, or its leaving a connector's scope: what the
    /// deletion brake counts.
    pub fn is_deprovision(self) -> bool {
        matches!(
            self,
            Event::UserDeactivated | Event::UserDeleted | Event::UserLeftScope
        )
    }

    pub fn is_delete(self) -> bool {
        matches!(self, Event::UserDeleted | Event::GroupDeleted)
    }

    /// A change whose job carries the resource whole, as of its version: delivering it
    /// after a newer one would put an older state back in the target. (A password, a
    /// delete and a change of members carry only what changed.)
    pub fn carries_whole_state(self) -> bool {
        matches!(
            self,
            Event::UserCreated
                | Event::UserUpdated
                | Event::UserDeactivated
                | Event::UserReactivated
                | Event::GroupCreated
                | Event::GroupUpdated
                | Event::GroupRenamed
        )
    }

    /// A change to a group's members (not to the group itself).
    pub fn is_membership(self) -> bool {
        matches!(
            self,
            Event::GroupMembersAdded
                | Event::GroupMembersRemoved
                | Event::GroupMembersRemovedAll
                | Event::GroupMembersReplaced
        )
    }
}

named! {
    /// Why a job died: what the bridge acts on (a sync-mode answer), never its message.
    pub enum Failure ("failure") {
        /// The target refused the change; trying again will not help.
        Refused = "refused",
        /// The target already holds a conflicting value (a duplicate): a SCIM 409.
        Conflict = "conflict",
        /// The target holds no such thing.
        NotFound = "not_found",
        /// The target kept failing in a way a retry could help, past the attempts or age.
        GaveUp = "gave_up",
        /// The bridge could not deliver it (no such connector, a password it cannot open).
        Bridge = "bridge",
    }
}

named! {
    /// Where an outbox job stands. A delivered job is removed, so it has no state.
    pub enum JobState ("job state") {
        /// Waiting for (or in) delivery.
        Pending = "pending",
        /// Given up: kept for an administrator to retry.
        Dead = "dead",
        /// A deactivation or deletion past its connector's deletion brake: kept, not
        /// delivered, until an administrator releases or discards it.
        Held = "held",
        /// Handled by a connector in dry run: the calls it would have made are kept.
        DryRun = "dry_run",
    }
}

named! {
    /// Where a resource stands in one target.
    pub enum MappingState ("mapping state") {
        /// A change is queued for this target.
        Pending = "pending",
        /// The target holds the resource as of `last_version`.
        Synced = "synced",
        /// The target accepted a change it completes later (a notification).
        Accepted = "accepted",
        /// The last delivery failed and will be tried again.
        Failed = "failed",
        /// The last delivery gave up.
        Dead = "dead",
        /// The resource was deleted in the target.
        Deleted = "deleted",
        /// Not provisioned: the user is in none of the connector's scope groups.
        OutOfScope = "out_of_scope",
        /// A connector in dry run computed its calls and made none.
        DryRun = "dry_run",
    }
}

named! {
    /// Where a notification a target completes later stands.
    pub enum NotificationState ("notification state") {
        Accepted = "accepted",
        Completed = "completed",
        Failed = "failed",
    }
}

impl NotificationState {
    /// The state a completion leaves the resource's mapping in.
    pub fn mapping_state(self) -> MappingState {
        match self {
            NotificationState::Accepted => MappingState::Accepted,
            NotificationState::Completed => MappingState::Synced,
            NotificationState::Failed => MappingState::Failed,
        }
    }
}

/// Where a resource stands in one target, as a connector sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub target_id: Option<String>,
    pub principal: Option<String>,
    pub state: MappingState,
    pub last_version: Option<i64>,
}

/// The members a group change is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Members {
    /// Those added or removed; after a replace (and in a group's delete), the whole list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
    /// After a replace: who joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<Vec<String>>,
    /// After a replace: who left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Vec<String>>,
}

impl Members {
    pub fn members(&self) -> &[String] {
        self.members.as_deref().unwrap_or_default()
    }
    pub fn added(&self) -> &[String] {
        self.added.as_deref().unwrap_or_default()
    }
    pub fn removed(&self) -> &[String] {
        self.removed.as_deref().unwrap_or_default()
    }
}

/// One change as a job carries it from the bridge to a connector: written once (its
/// payload, which is also the webhook's body) when the change is made, read once when the
/// job is delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub event: Event,
    pub resource_type: ResourceKind,
    #[serde(rename = "id")]
    pub resource_id: String,
    /// The resource's version after the change; None for a change that states nothing
    /// about the document (a user leaving a connector's scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub changes: ChangeSet,
    /// The resource after the change (absent after a delete).
    #[serde(default)]
    pub resource: Option<Value>,
    /// The members of a group change.
    #[serde(flatten)]
    pub members: Members,
    /// A password sent with the user's create.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_create: bool,
    /// `user.left_scope`: the group whose change took the user out of scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The password of a `user.password_set` change: sealed into the job, never in the
    /// payload.
    #[serde(skip)]
    pub password: Option<String>,
}

fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Change {
    /// A change of `kind` `id` with nothing in it yet.
    pub fn new(event: Event, kind: ResourceKind, id: &str, version: Option<i64>) -> Change {
        Change {
            event,
            resource_type: kind,
            resource_id: id.to_string(),
            version,
            changes: ChangeSet::default(),
            resource: None,
            members: Members::default(),
            on_create: false,
            group: None,
            password: None,
        }
    }

    /// What the job stores and the webhook sends.
    pub fn payload(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a job's payload.
    pub fn from_payload(payload: &str) -> Result<Change, serde_json::Error> {
        serde_json::from_str(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_name_reads_back_as_its_variant() {
        for e in Event::ALL {
            assert_eq!(e.as_str().parse::<Event>(), Ok(*e));
        }
        for s in MappingState::ALL {
            assert_eq!(s.as_str().parse::<MappingState>(), Ok(*s));
        }
        assert!("user.exploded".parse::<Event>().is_err());
        assert_eq!(Event::GroupRenamed.kind(), ResourceKind::Group);
        assert_eq!(json!(Event::UserPasswordSet), json!("user.password_set"));
        assert_eq!(
            serde_json::from_value::<Event>(json!("group.renamed")).ok(),
            Some(Event::GroupRenamed)
        );
    }

    #[test]
    fn a_change_reads_back_from_its_payload_and_old_payloads_still_read() {
        let mut c = Change::new(
            Event::GroupMembersReplaced,
            ResourceKind::Group,
            "g1",
            Some(4),
        );
        c.resource = Some(json!({"displayName": "G"}));
        c.members.members = Some(vec!["a".into(), "b".into()]);
        c.members.added = Some(vec!["b".into()]);
        c.members.removed = Some(vec![]);
        let p: Value = serde_json::from_str(&c.payload()).expect("json");
        assert_eq!(p["members"], json!(["a", "b"]));
        assert_eq!(p["id"], "g1");
        assert_eq!(p["resourceType"], "Group");
        assert_eq!(Change::from_payload(&c.payload()).expect("reads"), c);
        let old = r#"{"event":"user.deleted","resourceType":"User","id":"u","version":3,"changes":null,"resource":null}"#;
        let read = Change::from_payload(old).expect("an old payload reads");
        assert!(read.changes.is_empty() && read.resource.is_none());
    }
}
