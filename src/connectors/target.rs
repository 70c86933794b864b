//! The adapter every user-centric vendor connector shares: it turns outbox events into a
//! target's operations (look up, create or adopt, update with field-level changes,
//! activate, delete, set a password, add and remove roles), applies the attribute mapping,
//! the group-to-role mapping and the scope, and keeps retries idempotent: a user with no
//! target id yet is looked up by its principal before it is created.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::attrs::{diff, text, AttrMap, FieldChange, Op};
use super::read::{compare, Inspection, Standing, Subject, TargetUser};
use super::{Connector, ConnectorError, Delivery, Outcome};
use crate::model::{Event, MappingState, ResourceKind};

/// A user as a target sees it: the mapped fields, its principal, state and roles.
#[derive(Debug, Clone)]
pub struct User<'a> {
    pub scim_id: &'a str,
    pub fields: BTreeMap<String, Value>,
    pub principal: String,
    pub active: bool,
    pub roles: Vec<String>,
    /// The displayNames of the user's groups (empty where unknown).
    pub groups: Vec<String>,
}

impl User<'_> {
    pub fn field(&self, name: &str) -> Option<String> {
        self.fields.get(name).map(text)
    }
}

/// What a create did.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub target_id: String,
    /// The target already had the user (a duplicate principal) and it was adopted.
    pub adopted: bool,
}

/// One target system's operations; each connector module implements it.
pub trait Target: Send + Sync {
    fn kind(&self) -> &'static str;
    /// The mapped field that is the user's principal in the target.
    fn principal_field(&self) -> &str;
    fn supports_passwords(&self) -> bool {
        false
    }
    fn supports_roles(&self) -> bool {
        false
    }
    /// Whether a create is preceded by a lookup; a target whose create answers a
    /// duplicate (and adopts the user then) can save the call.
    fn lookup_before_create(&self) -> bool {
        true
    }
    /// Finds a user by principal; None where the target cannot look up (then `create`
    /// must itself be safe to repeat).
    fn lookup(&self, principal: &str) -> Result<Option<String>, ConnectorError>;
    /// Why reconcile cannot read this target, or None where it can ([`Target::read`]).
    fn unreadable(&self) -> Option<String> {
        Some(format!(
            "{} offers no call that reads a user back",
            self.kind()
        ))
    }
    /// Reads the user with this principal as the target holds it: each of `fields` the
    /// target can tell, and its active state.
    fn read(
        &self,
        _principal: &str,
        _fields: &[&str],
    ) -> Result<Option<TargetUser>, ConnectorError> {
        Err(ConnectorError::Permanent(
            self.unreadable().unwrap_or_default(),
        ))
    }
    /// Every principal the target holds, where it can list its users.
    fn principals(&self) -> Result<Option<Vec<String>>, ConnectorError> {
        Ok(None)
    }
    /// Creates the user in its state (active or not) with its roles.
    fn create(&self, user: &User<'_>) -> Result<Created, ConnectorError>;
    /// What a rename does in this target that an administrator should know (shown with
    /// the user's standing), if anything.
    fn rename_note(&self) -> Option<&str> {
        None
    }
    /// Sends what changed; `changes` is never empty. `old_principal` is set on a rename.
    fn update(
        &self,
        target_id: &str,
        user: &User<'_>,
        changes: &[FieldChange],
        old_principal: Option<&str>,
    ) -> Result<(), ConnectorError>;
    fn set_active(
        &self,
        target_id: &str,
        user: &User<'_>,
        active: bool,
    ) -> Result<(), ConnectorError>;
    fn delete(&self, target_id: &str, user: &User<'_>) -> Result<(), ConnectorError>;
    fn set_password(
        &self,
        _target_id: &str,
        _user: &User<'_>,
        _password: &str,
    ) -> Result<(), ConnectorError> {
        Err(ConnectorError::Permanent(format!(
            "{} does not take passwords",
            self.kind()
        )))
    }
    fn change_roles(
        &self,
        _target_id: &str,
        _user: &User<'_>,
        _add: &[String],
        _remove: &[String],
    ) -> Result<(), ConnectorError> {
        Ok(())
    }
}

/// A target with its mappings: the [`Connector`] the outbox calls.
pub struct Adapter<T: Target> {
    pub target: T,
    pub map: AttrMap,
    /// Group displayName to the target's role.
    pub roles: BTreeMap<String, String>,
    /// Group displayNames whose members alone are provisioned; empty for everyone.
    pub scope: Vec<String>,
}

fn outcome(target_id: &str, principal: &str) -> Outcome {
    Outcome {
        target_id: Some(target_id.to_string()),
        principal: Some(principal.to_string()),
        ..Default::default()
    }
}

impl<T: Target> Adapter<T> {
    fn roles_for(&self, groups: &[String]) -> Vec<String> {
        let mut out: Vec<String> = groups
            .iter()
            .filter_map(|g| self.roles.get(g).cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    fn in_scope(&self, groups: &[String]) -> bool {
        self.scope.is_empty() || groups.iter().any(|g| self.scope.contains(g))
    }

    fn user<'a>(
        &self,
        scim_id: &'a str,
        doc: &Value,
        groups: &[String],
    ) -> Result<User<'a>, ConnectorError> {
        let roles = self.roles_for(groups);
        let fields = self.map.apply(doc);
        let principal = fields
            .get(self.target.principal_field())
            .map(text)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                ConnectorError::Permanent(format!(
                    "the user has no value for the target's principal field '{}'",
                    self.target.principal_field()
                ))
            })?;
        let active = doc.get("active").and_then(Value::as_bool).unwrap_or(true);
        Ok(User {
            scim_id,
            fields,
            principal,
            active,
            roles,
            groups: groups.to_vec(),
        })
    }

    /// Puts the user in the target: adopts one found by principal, else creates it.
    fn ensure(&self, user: &User<'_>) -> Result<Outcome, ConnectorError> {
        let found = if self.target.lookup_before_create() {
            self.target.lookup(&user.principal)?
        } else {
            None
        };
        let (target_id, adopted) = match found {
            Some(t) => (t, true),
            None => {
                let c = self.target.create(user)?;
                (c.target_id, c.adopted)
            }
        };
        if adopted {
            // Bring the adopted user to the state the bridge holds.
            let all: Vec<FieldChange> = user
                .fields
                .iter()
                .filter(|(k, _)| k.as_str() != self.target.principal_field())
                .map(|(k, v)| FieldChange {
                    field: k.clone(),
                    op: Op::Replace,
                    old: None,
                    new: Some(v.clone()),
                })
                .collect();
            if !all.is_empty() {
                self.target.update(&target_id, user, &all, None)?;
            }
            self.target.set_active(&target_id, user, user.active)?;
            if self.target.supports_roles() && !user.roles.is_empty() {
                self.target
                    .change_roles(&target_id, user, &user.roles, &[])?;
            }
        }
        let mut out = outcome(&target_id, &user.principal);
        if adopted {
            out.note = Some(format!("adopted the existing user {target_id}"));
        }
        Ok(out)
    }

    fn user_write(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        let after = d.change.resource.as_ref().unwrap_or(&Value::Null);
        let before = d.change.changes.previous(after);
        let groups = &d.known.groups;
        let target_id = d.mapping.and_then(|m| m.target_id.clone());
        let user = self.user(d.resource_id, after, groups)?;
        if !self.in_scope(groups) {
            // The user left the scope groups: its own `user.left_scope` job deactivated it,
            // or an administrator discarded that job at the deletion brake and the target
            // keeps the user as it was. Only a deactivation of the user itself goes on.
            return match target_id {
                Some(t) => {
                    let mut o = outcome(&t, &user.principal);
                    if d.event == Event::UserDeactivated {
                        self.target.set_active(&t, &user, false)?;
                        o.note = Some("out of scope: deactivated in the target".into());
                    } else {
                        o.note = Some("out of scope: not changed in the target".into());
                    }
                    Ok(o)
                }
                None => Ok(Outcome {
                    state: Some(MappingState::OutOfScope),
                    note: Some("not a member of a scope group: not provisioned".into()),
                    ..Default::default()
                }),
            };
        }
        let Some(target_id) = target_id else {
            return self.ensure(&user);
        };
        let old_fields = self.map.apply(&before);
        let mut changes = diff(&old_fields, &user.fields);
        // The target knows the user by the principal last delivered to it, whatever this
        // job's change set says (a retried job is rebuilt from the current state, and a
        // rename that died never reached the target).
        let delivered = d.mapping.and_then(|m| m.principal.clone());
        let old_principal = delivered
            .or_else(|| old_fields.get(self.target.principal_field()).map(text))
            .filter(|p| *p != user.principal);
        if old_principal.is_some()
            && !changes
                .iter()
                .any(|c| c.field == self.target.principal_field())
        {
            changes.push(FieldChange {
                field: self.target.principal_field().to_string(),
                op: Op::Replace,
                old: old_principal.clone().map(Value::String),
                new: Some(Value::String(user.principal.clone())),
            });
        }
        if !changes.is_empty() {
            self.target
                .update(&target_id, &user, &changes, old_principal.as_deref())?;
        }
        let was_active = before
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        if was_active != user.active || d.event == Event::UserCreated && !user.active {
            self.target.set_active(&target_id, &user, user.active)?;
        }
        let mut out = outcome(&target_id, &user.principal);
        if old_principal.is_some() && !changes.is_empty() {
            out.note = self.target.rename_note().map(str::to_string);
        }
        Ok(out)
    }

    fn user_delete(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        let before = d.change.changes.previous(&Value::Null);
        let user = self.user(d.resource_id, &before, &[])?;
        let target_id = match d.mapping.and_then(|m| m.target_id.clone()) {
            Some(t) => Some(t),
            None => self.target.lookup(&user.principal)?,
        };
        match target_id {
            Some(t) => {
                self.target.delete(&t, &user)?;
                Ok(outcome(&t, &user.principal))
            }
            None => Ok(Outcome {
                note: Some("the user was never in the target".into()),
                ..Default::default()
            }),
        }
    }

    fn password(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        let Some(password) = d.password else {
            return Err(ConnectorError::Permanent(
                "the password is no longer held (it is erased when its job dies); set it again through SCIM".into(),
            ));
        };
        let doc = match &d.known.resource {
            Some(doc) => doc.clone(),
            None => d.change.resource.clone().unwrap_or(Value::Null),
        };
        let mut user = self.user(d.resource_id, &doc, &[])?;
        // The target knows the user by the principal last delivered to it: a rename still
        // waiting in the queue (or dead) has not reached it, and a password sent to the new
        // name would go to nobody, or to someone else.
        if let Some(known) = d.mapping.and_then(|m| m.principal.clone()) {
            user.principal = known;
        }
        let unmapped = d.mapping.and_then(|m| m.target_id.as_ref()).is_none();
        if unmapped && !self.in_scope(&d.known.groups) {
            return Ok(Outcome {
                state: Some(MappingState::OutOfScope),
                note: Some("not provisioned (out of scope): the password is not sent".into()),
                ..Default::default()
            });
        }
        let target_id = match d.mapping.and_then(|m| m.target_id.clone()) {
            Some(t) => t,
            None => self
                .target
                .lookup(&user.principal)?
                .ok_or_else(|| ConnectorError::Permanent("the user is not in the target".into()))?,
        };
        self.target
            .set_password(&target_id, &user, password.expose())?;
        Ok(outcome(&target_id, &user.principal))
    }

    /// A member's target id, or why there is none: a member whose own create is still
    /// queued makes the group job wait; one that will never be there is passed over.
    fn member_target(
        &self,
        d: &Delivery<'_>,
        member: &str,
    ) -> Result<Option<(String, User<'static>)>, ConnectorError> {
        let Some(m) = d.known.member_mappings.get(member) else {
            return Ok(None);
        };
        match (&m.target_id, m.state) {
            (Some(t), _) => {
                let principal = m.principal.clone().unwrap_or_default();
                let user = User {
                    scim_id: "",
                    fields: BTreeMap::new(),
                    principal,
                    active: true,
                    roles: vec![],
                    groups: vec![],
                };
                Ok(Some((t.clone(), user)))
            }
            (None, MappingState::Pending | MappingState::Failed) => Err(ConnectorError::retry(
                format!("member {member} is not in the target yet"),
            )),
            _ => Ok(None),
        }
    }

    fn roles_delta(
        &self,
        d: &Delivery<'_>,
        members: &[String],
        add: &[String],
        remove: &[String],
    ) -> Result<usize, ConnectorError> {
        if (add.is_empty() && remove.is_empty()) || !self.target.supports_roles() {
            return Ok(0);
        }
        let mut n = 0;
        for m in members {
            if let Some((t, user)) = self.member_target(d, m)? {
                self.target.change_roles(&t, &user, add, remove)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Provisions members that joined a scope group; returns the members the target holds
    /// that left the last one (each is deactivated by a job of its own).
    fn scope_change(
        &self,
        d: &Delivery<'_>,
        joined: &[String],
        left: &[String],
    ) -> Result<Vec<String>, ConnectorError> {
        for m in joined {
            let known = d
                .known
                .member_mappings
                .get(m)
                .and_then(|r| r.target_id.clone());
            let Some(doc) = d.ctx.resource(ResourceKind::User, m)? else {
                continue;
            };
            let no_groups = Vec::new();
            let groups = d.known.member_groups.get(m).unwrap_or(&no_groups);
            let user = self.user(m, &doc, groups)?;
            let out = match known {
                Some(t) => {
                    self.target.set_active(&t, &user, user.active)?;
                    outcome(&t, &user.principal)
                }
                None => self.ensure(&user)?,
            };
            d.ctx.record(m, &out)?;
        }
        let mut leaving = Vec::new();
        for m in left {
            if d.known
                .member_groups
                .get(m)
                .is_some_and(|g| self.in_scope(g))
            {
                continue;
            }
            if d.known
                .member_mappings
                .get(m)
                .is_some_and(|r| r.target_id.is_some())
            {
                leaving.push(m.clone());
            }
        }
        Ok(leaving)
    }

    /// A user that left the connector's scope groups: deactivated in the target, unless
    /// it is back in one (or was never provisioned).
    fn left_scope(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        let groups = &d.known.groups;
        let target_id = d.mapping.and_then(|m| m.target_id.clone());
        let Some(t) = target_id else {
            return Ok(Outcome {
                state: Some(MappingState::OutOfScope),
                note: Some("not a member of a scope group: not provisioned".into()),
                ..Default::default()
            });
        };
        let mut user = match &d.known.resource {
            Some(doc) => self.user(d.resource_id, doc, groups)?,
            None => {
                return Ok(Outcome {
                    note: Some("deleted since it left the scope groups".into()),
                    ..Default::default()
                })
            }
        };
        if let Some(known) = d.mapping.and_then(|m| m.principal.clone()) {
            user.principal = known;
        }
        let mut out = outcome(&t, &user.principal);
        if self.in_scope(groups) {
            out.note = Some("back in a scope group: left as it is".into());
        } else {
            self.target.set_active(&t, &user, false)?;
            out.note = Some("left the scope groups: deactivated in the target".into());
        }
        Ok(out)
    }

    fn group(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        let c = d.change;
        let name_now = c
            .resource
            .as_ref()
            .and_then(|r| r["displayName"].as_str())
            .map(str::to_string);
        let name_before = c
            .changes
            .replaced
            .get("displayName")
            .map(|r| &r.old)
            .or_else(|| c.changes.removed.get("displayName"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| name_now.clone());
        let role_now = name_now.as_ref().and_then(|n| self.roles.get(n)).cloned();
        let role_before = name_before
            .as_ref()
            .and_then(|n| self.roles.get(n))
            .cloned();
        let scoped = |n: &Option<String>| n.as_ref().is_some_and(|n| self.scope.contains(n));
        let (added, removed): (Vec<String>, Vec<String>) = match d.event {
            Event::GroupMembersAdded
            | Event::GroupMembersRemoved
            | Event::GroupMembersRemovedAll
            | Event::GroupDeleted
            | Event::GroupMembersReplaced => member_delta(d),
            Event::GroupRenamed => {
                let members = &d.known.members;
                let n = match (&role_before, &role_now) {
                    (a, b) if a == b => 0,
                    _ => self.roles_delta(
                        d,
                        members,
                        &role_now.iter().cloned().collect::<Vec<_>>(),
                        &role_before.iter().cloned().collect::<Vec<_>>(),
                    )?,
                };
                let mut left_scope = vec![];
                if scoped(&name_now) != scoped(&name_before) {
                    if scoped(&name_now) {
                        self.scope_change(d, members, &[])?;
                    } else {
                        left_scope = self.scope_change(d, &[], members)?;
                    }
                }
                return Ok(Outcome {
                    note: Some(format!("roles changed for {n} members")),
                    left_scope,
                    ..Default::default()
                });
            }
            _ => {
                return Ok(Outcome {
                    note: Some("nothing to do in the target".into()),
                    ..Default::default()
                })
            }
        };
        let role = if d.event == Event::GroupDeleted {
            role_before
        } else {
            role_now
        };
        let name = if d.event == Event::GroupDeleted {
            name_before
        } else {
            name_now
        };
        let left_scope = if scoped(&name) {
            self.scope_change(d, &added, &removed)?
        } else {
            vec![]
        };
        let mut n = 0;
        if let Some(role) = role {
            n += self.roles_delta(d, &added, std::slice::from_ref(&role), &[])?;
            n += self.roles_delta(d, &removed, &[], std::slice::from_ref(&role))?;
        }
        Ok(Outcome {
            note: Some(json!({"roleChanges": n}).to_string()),
            left_scope,
            ..Default::default()
        })
    }
}

impl<T: Target> Connector for Adapter<T> {
    fn kind(&self) -> &'static str {
        self.target.kind()
    }

    fn unreadable(&self) -> Option<String> {
        self.target.unreadable()
    }

    fn inspect(&self, s: &Subject<'_>) -> Result<Inspection, ConnectorError> {
        let user = self.user(s.scim_id, s.doc, s.groups)?;
        let names: Vec<&str> = self.map.fields().map(|(f, _)| f).collect();
        let read = self.target.read(&user.principal, &names)?;
        let in_scope = self.in_scope(s.groups);
        let standing = match read {
            None if in_scope => Standing::Missing,
            None => Standing::OutOfScope,
            Some(found) => {
                // Out of scope, a user the target holds is one the bridge deactivated.
                let active = user.active && in_scope;
                let fields = compare(&user.fields, active, self.target.principal_field(), &found);
                let TargetUser { target_id, .. } = found;
                if fields.is_empty() {
                    Standing::InSync { target_id }
                } else {
                    Standing::Different { target_id, fields }
                }
            }
        };
        Ok(Inspection {
            principal: user.principal,
            standing,
        })
    }

    fn principals(&self) -> Result<Option<Vec<String>>, ConnectorError> {
        self.target.principals()
    }

    fn reads(&self, _event: Event) -> bool {
        true
    }

    fn supports(&self, event: Event) -> bool {
        match event {
            Event::UserPasswordSet => self.target.supports_passwords(),
            e if e.kind() == ResourceKind::Group => {
                (self.target.supports_roles() && !self.roles.is_empty()) || !self.scope.is_empty()
            }
            _ => true,
        }
    }

    fn deliver(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        match d.event {
            Event::UserCreated
            | Event::UserUpdated
            | Event::UserDeactivated
            | Event::UserReactivated => self.user_write(d),
            Event::UserDeleted => self.user_delete(d),
            Event::UserLeftScope => self.left_scope(d),
            Event::UserPasswordSet => self.password(d),
            Event::GroupCreated
            | Event::GroupUpdated
            | Event::GroupRenamed
            | Event::GroupDeleted
            | Event::GroupMembersAdded
            | Event::GroupMembersRemoved
            | Event::GroupMembersRemovedAll
            | Event::GroupMembersReplaced => self.group(d),
        }
    }
}

/// The members a group job adds and removes (none for a rename or an update).
pub fn member_delta(d: &Delivery<'_>) -> (Vec<String>, Vec<String>) {
    let m = &d.change.members;
    match d.event {
        Event::GroupMembersAdded => (m.members().to_vec(), vec![]),
        Event::GroupMembersRemoved | Event::GroupMembersRemovedAll | Event::GroupDeleted => {
            (vec![], m.members().to_vec())
        }
        Event::GroupMembersReplaced => (m.added().to_vec(), m.removed().to_vec()),
        _ => (vec![], vec![]),
    }
}

/// The target ids of these members as the mapping holds them. With `wait`, a member
/// whose own create is still queued makes the job wait (it is retried); a member never
/// provisioned (out of scope, skipped) is left out.
pub fn member_target_ids(
    d: &Delivery<'_>,
    members: &[String],
    wait: bool,
) -> Result<Vec<String>, ConnectorError> {
    let mut out = Vec::new();
    for m in members {
        let Some(mapping) = d.known.member_mappings.get(m) else {
            continue;
        };
        match (&mapping.target_id, mapping.state) {
            (Some(t), _) => out.push(t.clone()),
            (None, MappingState::Pending | MappingState::Failed) if wait => {
                return Err(ConnectorError::retry(format!(
                    "member {m} is not in the target yet"
                )))
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A target whose users go through the [`Adapter`] and whose groups the connector
/// mirrors as groups of its own (a SCIM service, a directory).
pub trait MirrorsGroups: Send + Sync {
    fn kind(&self) -> &'static str;
    /// The users' connector: the Adapter over the target (over a Recorder in dry run).
    fn users(&self) -> &dyn Connector;
    /// Delivers a group job: the group created, renamed, its members changed, deleted.
    fn group(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError>;
}

/// The [`Connector`] of a [`MirrorsGroups`] target.
pub struct Mirrored<M: MirrorsGroups>(pub M);

impl<M: MirrorsGroups> Connector for Mirrored<M> {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }

    fn supports(&self, event: Event) -> bool {
        event.kind() == ResourceKind::Group || self.0.users().supports(event)
    }

    fn reads(&self, _event: Event) -> bool {
        true
    }

    fn deliver(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        if d.resource_type == ResourceKind::Group {
            return self.0.group(d);
        }
        self.0.users().deliver(d)
    }

    fn unreadable(&self) -> Option<String> {
        self.0.users().unreadable()
    }

    fn inspect(&self, s: &Subject<'_>) -> Result<Inspection, ConnectorError> {
        self.0.users().inspect(s)
    }

    fn principals(&self) -> Result<Option<Vec<String>>, ConnectorError> {
        self.0.users().principals()
    }
}
