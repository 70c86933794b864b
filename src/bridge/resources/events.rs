//! What a write becomes for the outbox: its change set and events, one job per connector,
//! and a dead job rebuilt from the current state (a resync).

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::model::changes::ChangeSet;
use crate::model::Members;

/// One write as the outbox sees it: the document before and after, membership events,
/// a password set by it, and the group's members before (for events that remove them all).
#[derive(Default)]
pub(super) struct Write<'a> {
    pub(super) old: Option<&'a Map<String, Value>>,
    pub(super) new: Option<&'a Map<String, Value>>,
    pub(super) members: Vec<(Event, Members)>,
    pub(super) password: Option<&'a str>,
    pub(super) old_members: Vec<String>,
}

pub(super) fn ids_of(members: &[NewMember]) -> Vec<String> {
    members.iter().map(|m| m.id.clone()).collect()
}

/// The `group.members_replaced` event of a membership going from `before` to `now`: the
/// new list, and who joined and who left (by set, so a 100,000-member group costs a pass
/// over each list, not their product).
pub(super) fn members_replaced(before: &[String], now: Vec<String>) -> (Event, Members) {
    let was: std::collections::HashSet<&str> = before.iter().map(String::as_str).collect();
    let is: std::collections::HashSet<&str> = now.iter().map(String::as_str).collect();
    let added: Vec<String> = now
        .iter()
        .filter(|x| !was.contains(x.as_str()))
        .cloned()
        .collect();
    let removed: Vec<String> = before
        .iter()
        .filter(|x| !is.contains(x.as_str()))
        .cloned()
        .collect();
    let event = Members {
        members: Some(now),
        added: Some(added),
        removed: Some(removed),
    };
    (Event::GroupMembersReplaced, event)
}

/// The members an event names.
pub(super) fn named(members: &[String]) -> Members {
    Members {
        members: Some(members.to_vec()),
        ..Members::default()
    }
}

/// The event of a member change as the store applied it: only members that really joined
/// or left.
pub(super) fn member_event(a: &Applied) -> (Event, Members) {
    match a {
        Applied::Added(m) => (Event::GroupMembersAdded, named(m)),
        Applied::Removed(m) => (Event::GroupMembersRemoved, named(m)),
        Applied::RemovedAll(m) => (Event::GroupMembersRemovedAll, named(m)),
        Applied::Replaced {
            members,
            added,
            removed,
        } => (
            Event::GroupMembersReplaced,
            Members {
                members: Some(members.clone()),
                added: Some(added.clone()),
                removed: Some(removed.clone()),
            },
        ),
    }
}

impl Resources {
    pub(super) fn change(
        &self,
        rt: &ResourceType,
        id: &str,
        event: Event,
        version: i64,
        old: Option<&Map<String, Value>>,
        new: Option<&Map<String, Value>>,
    ) -> Change {
        let empty = Map::new();
        let mut c = Change::new(event, kind_of(rt), id, Some(version));
        c.changes = ChangeSet::between(old.unwrap_or(&empty), new.unwrap_or(&empty));
        c.resource = new.map(|d| {
            let mut doc = Map::new();
            doc.insert("schemas".into(), json!([rt.schema]));
            doc.insert("id".into(), Value::String(id.to_string()));
            doc.extend(d.clone());
            Value::Object(doc)
        });
        c
    }

    /// The jobs for a write of `rt` from `old` to `new` (either absent for create/delete),
    /// for every connector but `except`; jobs of sync connectors carry `token`.
    pub(super) fn jobs_for(
        &self,
        rt: &ResourceType,
        id: &str,
        version: i64,
        w: &Write<'_>,
        token: Option<&str>,
        except: Option<&str>,
    ) -> Vec<NewJob> {
        if self.fanout.is_empty() {
            return vec![];
        }
        let (old, new) = (w.old, w.new);
        let is_user = rt.schema == USER_SCHEMA;
        let mut list = Vec::new();
        let event = match (old, new, is_user) {
            (_, _, true) => changes::user_event(old, new),
            (None, _, false) => Event::GroupCreated,
            (_, None, false) => Event::GroupDeleted,
            (Some(o), Some(n), false) if o.get("displayName") != n.get("displayName") => {
                Event::GroupRenamed
            }
            _ => Event::GroupUpdated,
        };
        let mut c = self.change(rt, id, event, version, old, new);
        if event == Event::GroupDeleted {
            c.members = named(&w.old_members);
        }
        if old.is_none() || new.is_none() || !c.changes.is_empty() {
            list.push(c);
        }
        for (event, members) in &w.members {
            let mut c = self.change(rt, id, *event, version, new, new);
            c.members = members.clone();
            list.push(c);
        }
        if let (Some(password), true) = (w.password, is_user && new.is_some()) {
            let mut c = self.change(rt, id, Event::UserPasswordSet, version, new, new);
            if old.is_none() {
                c.on_create = true;
            }
            c.password = Some(password.to_string());
            list.push(c);
        }
        self.fanout.jobs(&list, token, except)
    }

    /// What a dead job becomes when an administrator retries it: the resource's current
    /// state for that connector (a resync), not the old payload, which newer changes may
    /// have overtaken. A user that exists is sent whole (`user.created` if that is what
    /// died, else `user.updated` with every attribute as added); one deleted since becomes
    /// `user.deleted`; a group's events carry its current document. None keeps the job as
    /// it is (a password, whose value is gone anyway, or a delete).
    pub fn resync(&self, job: &JobRow) -> BridgeResult<Option<(Event, String)>> {
        if job.event == Event::UserPasswordSet || job.event.is_delete() {
            return Ok(None);
        }
        let rt = self.rt(job.resource_type.as_str())?;
        let old = Change::from_payload(&job.payload).ok();
        let current = self.store.get(&rt.name, &job.resource_id)?;
        let is_user = rt.schema == USER_SCHEMA;
        let change = match (current, is_user) {
            (Some(row), true) => {
                let doc: Map<String, Value> = serde_json::from_str(&row.data).unwrap_or_default();
                let event = if job.event == Event::UserCreated {
                    Event::UserCreated
                } else {
                    Event::UserUpdated
                };
                self.change(rt, &row.id, event, row.version, None, Some(&doc))
            }
            (Some(row), false) => {
                let doc: Map<String, Value> = serde_json::from_str(&row.data).unwrap_or_default();
                let mut c =
                    self.change(rt, &row.id, job.event, row.version, Some(&doc), Some(&doc));
                if let Some(old) = old {
                    c.changes = old.changes;
                    c.members = old.members;
                }
                c
            }
            (None, true) => {
                let mut last = old
                    .as_ref()
                    .and_then(|o| o.resource.as_ref())
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                last.remove("id");
                last.remove("schemas");
                let version = old.and_then(|o| o.version).unwrap_or(0) + 1;
                self.change(
                    rt,
                    &job.resource_id,
                    Event::UserDeleted,
                    version,
                    Some(&last),
                    None,
                )
            }
            (None, false) => return Ok(None),
        };
        Ok(Some((change.event, change.payload())))
    }
}

impl Resources {
    /// The jobs that bring `connector` up to date with `rows` (one resource type): each
    /// user whole as `user.created` (a vendor connector looks it up first and adopts it
    /// when the target has it); each group as `group.created` and its whole membership as
    /// `group.members_replaced`. Low priority: live changes go first.
    pub fn backfill_jobs(
        &self,
        connector: &str,
        rt_name: &str,
        rows: &[ResourceRow],
    ) -> BridgeResult<Vec<NewJob>> {
        let rt = self.rt(rt_name)?;
        let is_user = rt.schema == USER_SCHEMA;
        let mut changes = Vec::new();
        for row in rows {
            let doc: Map<String, Value> = serde_json::from_str(&row.data).unwrap_or_default();
            if is_user {
                changes.push(self.change(
                    rt,
                    &row.id,
                    Event::UserCreated,
                    row.version,
                    None,
                    Some(&doc),
                ));
                continue;
            }
            changes.push(self.change(
                rt,
                &row.id,
                Event::GroupCreated,
                row.version,
                None,
                Some(&doc),
            ));
            let members: Vec<String> = self
                .store
                .members(&row.id)?
                .into_iter()
                .map(|m| m.id)
                .collect();
            if !members.is_empty() {
                let (event, members) = members_replaced(&[], members);
                let mut c = self.change(rt, &row.id, event, row.version, Some(&doc), Some(&doc));
                c.members = members;
                changes.push(c);
            }
        }
        Ok(changes
            .into_iter()
            .map(|c| NewJob {
                connector: connector.to_string(),
                resource_type: c.resource_type,
                resource_id: c.resource_id.clone(),
                event: c.event,
                version: c.version.unwrap_or_default(),
                payload: c.payload(),
                secret: None,
                wait_token: None,
                priority: crate::store::jobs::SNAPSHOT,
            })
            .collect())
    }
}
