//! The change model every layer shares: which kind of resource changed, which event a
//! change is, where a job, a mapping and a notification stand, and a change as connectors
//! receive it. Plain data: no database, no HTTP.

pub mod changes;

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};

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

/// One change as connectors receive it.
#[derive(Debug, Clone)]
pub struct Change {
    pub resource_type: ResourceKind,
    pub resource_id: String,
    pub event: Event,
    pub version: i64,
    pub changes: Value,
    /// The resource after the change (absent after a delete).
    pub resource: Option<Value>,
    /// Event-specific data: member ids added or removed.
    pub extra: Map<String, Value>,
    /// The password of a `user.password_set` change: sealed into the job, never in the
    /// payload.
    pub password: Option<String>,
}

impl Change {
    pub fn payload(&self) -> String {
        let mut p = json!({
            "event": self.event,
            "resourceType": self.resource_type,
            "id": self.resource_id,
            "version": self.version,
            "changes": self.changes,
            "resource": self.resource,
        });
        if let Some(o) = p.as_object_mut() {
            for (k, v) in &self.extra {
                o.insert(k.clone(), v.clone());
            }
        }
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
