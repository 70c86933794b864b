//! What a write becomes for the outbox: its change set and events, one job per connector,
//! and a dead job rebuilt from the current state (a resync).

#[allow(clippy::wildcard_imports)]
use super::*;

/// One write as the outbox sees it: the document before and after, membership events,
/// a password set by it, and the group's members before (for events that remove them all).
#[derive(Default)]
pub(super) struct Write<'a> {
    pub(super) old: Option<&'a Map<String, Value>>,
    pub(super) new: Option<&'a Map<String, Value>>,
    pub(super) members: Vec<(Event, Value)>,
    pub(super) password: Option<&'a str>,
    pub(super) old_members: Vec<String>,
}

pub(super) fn ids_of(members: &[NewMember]) -> Vec<String> {
    members.iter().map(|m| m.id.clone()).collect()
}

/// The `group.members_replaced` event of a membership going from `before` to `now`: the
/// new list, and who joined and who left (by set, so a 100,000-member group costs a pass
/// over each list, not their product).
pub(super) fn members_replaced(before: &[String], now: Vec<String>) -> (Event, Value) {
    let was: std::collections::HashSet<&str> = before.iter().map(String::as_str).collect();
    let is: std::collections::HashSet<&str> = now.iter().map(String::as_str).collect();
    let added: Vec<&str> = now
        .iter()
        .map(String::as_str)
        .filter(|x| !was.contains(x))
        .collect();
    let removed: Vec<&str> = before
        .iter()
        .map(String::as_str)
        .filter(|x| !is.contains(x))
        .collect();
    let event = json!({"members": now, "added": added, "removed": removed});
    (Event::GroupMembersReplaced, event)
}

/// The event of a member change as the store applied it: only members that really joined
/// or left.
pub(super) fn member_event(a: &Applied) -> (Event, Value) {
    match a {
        Applied::Added(m) => (Event::GroupMembersAdded, json!({ "members": m })),
        Applied::Removed(m) => (Event::GroupMembersRemoved, json!({ "members": m })),
        Applied::RemovedAll(m) => (Event::GroupMembersRemovedAll, json!({ "members": m })),
        Applied::Replaced {
            members,
            added,
            removed,
        } => (
            Event::GroupMembersReplaced,
            json!({"members": members, "added": added, "removed": removed}),
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
        Change {
            resource_type: kind_of(rt),
            resource_id: id.to_string(),
            event,
            version,
            changes: changes::change_set(old.unwrap_or(&empty), new.unwrap_or(&empty)),
            resource: new.map(|d| {
                let mut doc = Map::new();
                doc.insert("schemas".into(), json!([rt.schema]));
                doc.insert("id".into(), Value::String(id.to_string()));
                doc.extend(d.clone());
                Value::Object(doc)
            }),
            extra: Map::new(),
            password: None,
        }
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
            c.extra.insert("members".into(), json!(w.old_members));
        }
        if old.is_none() || new.is_none() || !changes::is_empty(&c.changes) {
            list.push(c);
        }
        for (event, extra) in &w.members {
            let mut c = self.change(rt, id, *event, version, new, new);
            if let Some(o) = extra.as_object() {
                c.extra.extend(o.clone());
            }
            list.push(c);
        }
        if let (Some(password), true) = (w.password, is_user && new.is_some()) {
            let mut c = self.change(rt, id, Event::UserPasswordSet, version, new, new);
            if old.is_none() {
                c.extra.insert("onCreate".into(), Value::Bool(true));
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
        let old: Value = serde_json::from_str(&job.payload).unwrap_or(Value::Null);
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
                c.changes = old.get("changes").cloned().unwrap_or(Value::Null);
                for key in ["members", "added", "removed"] {
                    if let Some(v) = old.get(key) {
                        c.extra.insert(key.into(), v.clone());
                    }
                }
                c
            }
            (None, true) => {
                let mut last = old
                    .get("resource")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                last.remove("id");
                last.remove("schemas");
                let version = old.get("version").and_then(Value::as_i64).unwrap_or(0) + 1;
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
                let (event, extra) = members_replaced(&[], members);
                let mut c = self.change(rt, &row.id, event, row.version, Some(&doc), Some(&doc));
                if let Some(o) = extra.as_object() {
                    c.extra.extend(o.clone());
                }
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
                version: c.version,
                payload: c.payload(),
                secret: None,
                wait_token: None,
                priority: crate::store::jobs::SNAPSHOT,
            })
            .collect())
    }
}
