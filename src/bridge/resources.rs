//! SCIM resource use cases: create, read, replace, delete and list, over the store.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::error::{BridgeError, BridgeResult};
use super::etag::{etag, Precondition};
use crate::clock::{format_time, Clock};
use crate::outbox::{changes, Change, Fanout};
use crate::scim::filter::{CompValue, CompareOp, Evaluator, Filter};
use crate::scim::list::{cursor_response, list_response, ListQuery};
use crate::scim::patch::{parse_request, MemberChange, Patcher};
use crate::scim::path::AttrPath;
use crate::scim::resource::{normalize, Projection};
use crate::scim::schema::{Registry, ResourceType, GROUP_SCHEMA, USER_SCHEMA};
use crate::scim::ScimError;
use crate::store::outbox::{JobRow, WaitState};
use crate::store::{
    Applied, ListSpec, MemberDelta, NewJob, NewMember, Page, ResourceRow, ResourceStore, StoreError,
};

/// How often a write without If-Match retries when another write changed the resource
/// under it (with a short random pause, so that racing writers spread out).
const WRITE_RETRIES: usize = 64;

/// What a write without If-Match does on a version conflict: wait a moment and try again,
/// or, past the retries, say the resource is too busy (503), never 412: the client set no
/// precondition.
fn conflict_retry(attempt: usize) -> BridgeResult<()> {
    if attempt >= WRITE_RETRIES {
        return Err(ScimError::Unavailable(
            "the resource is being changed by many requests at once; try again".into(),
        )
        .into());
    }
    use rand::Rng;
    let ceiling = 1 + (attempt as u64).min(10);
    std::thread::sleep(std::time::Duration::from_micros(
        rand::thread_rng().gen_range(0..ceiling * 500),
    ));
    Ok(())
}

/// A resource as the client sees it, and its version.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Value,
    pub etag: String,
    pub location: String,
}

/// One write as the outbox sees it: the document before and after, membership events,
/// a password set by it, and the group's members before (for events that remove them all).
#[derive(Default)]
struct Write<'a> {
    old: Option<&'a Map<String, Value>>,
    new: Option<&'a Map<String, Value>>,
    members: Vec<(&'static str, Value)>,
    password: Option<&'a str>,
    old_members: Vec<String>,
}

fn ids_of(members: &[NewMember]) -> Vec<String> {
    members.iter().map(|m| m.id.clone()).collect()
}

/// The `group.members_replaced` event of a membership going from `before` to `now`: the
/// new list, and who joined and who left (by set, so a 100,000-member group costs a pass
/// over each list, not their product).
fn members_replaced(before: &[String], now: Vec<String>) -> (&'static str, Value) {
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
    ("group.members_replaced", event)
}

/// The event of a member change as the store applied it: only members that really joined
/// or left.
fn member_event(a: &Applied) -> (&'static str, Value) {
    match a {
        Applied::Added(m) => ("group.members_added", json!({ "members": m })),
        Applied::Removed(m) => ("group.members_removed", json!({ "members": m })),
        Applied::RemovedAll(m) => ("group.members_removed_all", json!({ "members": m })),
        Applied::Replaced {
            members,
            added,
            removed,
        } => (
            "group.members_replaced",
            json!({"members": members, "added": added, "removed": removed}),
        ),
    }
}

/// The SCIM resource service.
pub struct Resources {
    reg: Arc<Registry>,
    store: Arc<dyn ResourceStore>,
    clock: Arc<dyn Clock>,
    fanout: Arc<Fanout>,
    /// How long a write waits for connectors in sync mode.
    sync_timeout: std::time::Duration,
}

impl Resources {
    pub fn new(
        reg: Arc<Registry>,
        store: Arc<dyn ResourceStore>,
        clock: Arc<dyn Clock>,
    ) -> Resources {
        Resources {
            reg,
            store,
            clock,
            fanout: Arc::new(Fanout::default()),
            sync_timeout: std::time::Duration::from_secs(10),
        }
    }

    /// How long a write waits for connectors in sync mode before it answers anyway.
    pub fn with_sync_timeout(mut self, timeout: std::time::Duration) -> Resources {
        self.sync_timeout = timeout;
        self
    }

    /// Wakes the outbox workers (after an administrator put jobs back in the queue).
    pub fn wake_outbox(&self) {
        self.fanout.wake();
    }

    /// Queues a job per connector for every change, in the transaction of the change.
    pub fn with_fanout(mut self, fanout: Arc<Fanout>) -> Resources {
        self.fanout = fanout;
        self
    }

    fn change(
        &self,
        rt: &ResourceType,
        id: &str,
        event: &str,
        version: i64,
        old: Option<&Map<String, Value>>,
        new: Option<&Map<String, Value>>,
    ) -> Change {
        let empty = Map::new();
        Change {
            resource_type: rt.name.clone(),
            resource_id: id.to_string(),
            event: event.to_string(),
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
    fn jobs_for(
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
            (_, _, true) => changes::user_event(old, new).to_string(),
            (None, _, false) => "group.created".into(),
            (_, None, false) => "group.deleted".into(),
            (Some(o), Some(n), false) if o.get("displayName") != n.get("displayName") => {
                "group.renamed".into()
            }
            _ => "group.updated".into(),
        };
        let mut c = self.change(rt, id, &event, version, old, new);
        if event == "group.deleted" {
            c.extra.insert("members".into(), json!(w.old_members));
        }
        if old.is_none() || new.is_none() || !changes::is_empty(&c.changes) {
            list.push(c);
        }
        for (event, extra) in &w.members {
            let mut c = self.change(rt, id, event, version, new, new);
            if let Some(o) = extra.as_object() {
                c.extra.extend(o.clone());
            }
            list.push(c);
        }
        if let (Some(password), true) = (w.password, is_user && new.is_some()) {
            let mut c = self.change(rt, id, "user.password_set", version, new, new);
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
    pub fn resync(&self, job: &JobRow) -> BridgeResult<Option<(String, String)>> {
        if job.event == "user.password_set" || job.event.ends_with(".deleted") {
            return Ok(None);
        }
        let rt = self.rt(&job.resource_type)?;
        let old: Value = serde_json::from_str(&job.payload).unwrap_or(Value::Null);
        let current = self.store.get(&rt.name, &job.resource_id)?;
        let is_user = rt.schema == USER_SCHEMA;
        let change = match (current, is_user) {
            (Some(row), true) => {
                let doc: Map<String, Value> = serde_json::from_str(&row.data).unwrap_or_default();
                let event = if job.event == "user.created" {
                    "user.created"
                } else {
                    "user.updated"
                };
                self.change(rt, &row.id, event, row.version, None, Some(&doc))
            }
            (Some(row), false) => {
                let doc: Map<String, Value> = serde_json::from_str(&row.data).unwrap_or_default();
                let mut c =
                    self.change(rt, &row.id, &job.event, row.version, Some(&doc), Some(&doc));
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
                    "user.deleted",
                    version,
                    Some(&last),
                    None,
                )
            }
            (None, false) => return Ok(None),
        };
        Ok(Some((change.event.clone(), change.payload())))
    }

    /// A token for the jobs a request waits for, when a connector is in sync mode.
    fn sync_token(&self) -> Option<String> {
        self.fanout
            .has_sync()
            .then(|| uuid::Uuid::new_v4().to_string())
    }

    /// In sync mode: waits until the sync connectors have the change, or the timeout. A
    /// connector that refused it has `undo` called with its name, and its refusal becomes
    /// the request's error; on timeout the change stays queued and the request succeeds.
    fn await_sync(
        &self,
        token: Option<&str>,
        undo: impl FnOnce(&str) -> BridgeResult<()>,
    ) -> BridgeResult<()> {
        let Some(token) = token else { return Ok(()) };
        let deadline = std::time::Instant::now() + self.sync_timeout;
        loop {
            match self.store.wait_state(token)? {
                WaitState::Delivered => return Ok(()),
                WaitState::Dead { connector, error } => {
                    self.store.drop_dead_jobs(token)?;
                    if let Err(e) = undo(&connector) {
                        log::error!("could not undo a change that {connector} refused: {e}");
                    }
                    return Err(BridgeError::Target { connector, error });
                }
                WaitState::Pending if std::time::Instant::now() >= deadline => {
                    log::info!("sync delivery still pending after the timeout; it stays queued");
                    return Ok(());
                }
                WaitState::Pending => {
                    self.fanout.wake();
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
    }

    /// Member ids of a group, read only when connectors need them (events that remove
    /// everyone or replace the list say who was there).
    fn old_member_ids(&self, rt: &ResourceType, id: &str) -> BridgeResult<Vec<String>> {
        if self.fanout.is_empty() || rt.schema != GROUP_SCHEMA {
            return Ok(vec![]);
        }
        Ok(self.store.members(id)?.into_iter().map(|m| m.id).collect())
    }

    /// Puts a resource back as it was before a write a sync connector refused.
    fn restore(
        &self,
        rt: &ResourceType,
        before: &ResourceRow,
        old_members: &[String],
        written_version: Option<i64>,
        except: &str,
    ) -> BridgeResult<()> {
        let now = format_time(self.clock.now());
        let old: Map<String, Value> = serde_json::from_str(&before.data).unwrap_or_default();
        let members: Vec<NewMember> = old_members
            .iter()
            .map(|m| NewMember {
                id: m.clone(),
                kind: None,
            })
            .collect();
        let is_group = rt.schema == GROUP_SCHEMA;
        match written_version {
            // The write deleted it: put it back.
            None => {
                let row = ResourceRow {
                    version: before.version + 1,
                    last_modified: now,
                    ..before.clone()
                };
                let w = Write {
                    new: Some(&old),
                    members: if old_members.is_empty() {
                        vec![]
                    } else {
                        vec![("group.members_added", json!({"members": old_members}))]
                    },
                    ..Write::default()
                };
                let jobs = self.jobs_for(rt, &row.id, row.version, &w, None, Some(except));
                self.store.insert(&row, &members, &jobs)?;
            }
            Some(v) => {
                let current = self.load(rt, &before.id)?;
                let now_doc: Map<String, Value> =
                    serde_json::from_str(&current.data).unwrap_or_default();
                let now_members = self.old_member_ids(rt, &before.id)?;
                let row = ResourceRow {
                    version: v + 1,
                    last_modified: now,
                    ..before.clone()
                };
                let w = Write {
                    old: Some(&now_doc),
                    new: Some(&old),
                    members: if is_group {
                        vec![members_replaced(&now_members, old_members.to_vec())]
                    } else {
                        vec![]
                    },
                    ..Write::default()
                };
                let jobs = self.jobs_for(rt, &row.id, row.version, &w, None, Some(except));
                self.store
                    .replace(&row, v, is_group.then_some(&members[..]), &jobs)?;
            }
        }
        self.fanout.wake();
        Ok(())
    }

    /// Undoes a create a sync connector refused.
    /// Puts a restored resource back in the groups it was in (those that still exist); the
    /// other connectors hear of it, the one that refused does not.
    fn rejoin(&self, id: &str, kind: &str, groups: &[String], except: &str) -> BridgeResult<()> {
        let grt = self.rt("Group")?;
        for gid in groups {
            let Some(group) = self.store.get(&grt.name, gid)? else {
                continue;
            };
            let group = ResourceRow {
                last_modified: format_time(self.clock.now()),
                ..group
            };
            let make_jobs = |version: i64, stored: &str, applied: &[Applied]| {
                let doc: Map<String, Value> = serde_json::from_str(stored).unwrap_or_default();
                let w = Write {
                    old: Some(&doc),
                    new: Some(&doc),
                    members: applied.iter().map(member_event).collect(),
                    ..Write::default()
                };
                self.jobs_for(grt, gid, version, &w, None, Some(except))
            };
            let member = NewMember {
                id: id.to_string(),
                kind: Some(kind.to_string()),
            };
            match self.store.change_group(
                &group,
                None,
                false,
                &[MemberDelta::Add(vec![member])],
                &make_jobs,
            ) {
                Ok(_) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.fanout.wake();
        Ok(())
    }

    fn unmake(&self, rt: &ResourceType, row: &ResourceRow, except: &str) -> BridgeResult<()> {
        let data: Map<String, Value> = serde_json::from_str(&row.data).unwrap_or_default();
        let w = Write {
            old: Some(&data),
            ..Write::default()
        };
        let jobs = self.jobs_for(rt, &row.id, row.version + 1, &w, None, Some(except));
        let now = format_time(self.clock.now());
        self.store
            .delete(&rt.name, &row.id, Some(row.version), &now, &jobs)?;
        self.fanout.wake();
        Ok(())
    }

    pub fn registry(&self) -> &Registry {
        &self.reg
    }

    /// Whether a resource type is the Group type (whose members live in their own table).
    pub fn is_group(&self, rt_name: &str) -> bool {
        self.reg
            .resource_type(rt_name)
            .is_some_and(|rt| rt.schema == GROUP_SCHEMA)
    }

    fn rt(&self, name: &str) -> BridgeResult<&ResourceType> {
        self.reg
            .resource_type(name)
            .ok_or_else(|| ScimError::NotFound(format!("no resource type {name}")).into())
    }

    /// POST: creates a resource from a client's body.
    pub fn create(
        &self,
        rt_name: &str,
        body: Value,
        base: &str,
        projection: &Projection,
    ) -> BridgeResult<Rendered> {
        let rt = self.rt(rt_name)?;
        let mut norm = normalize(&self.reg, rt, body)?;
        let members = take_members(rt, &mut norm.data)?;
        let now = format_time(self.clock.now());
        let row = to_row(
            rt,
            uuid::Uuid::new_v4().to_string(),
            norm.data,
            1,
            now.clone(),
            now,
        )?;
        let data: Map<String, Value> = serde_json::from_str(&row.data).unwrap_or_default();
        let token = self.sync_token();
        let w = Write {
            new: Some(&data),
            members: match &members {
                Some(m) if !m.is_empty() => {
                    vec![("group.members_added", json!({"members": ids_of(m)}))]
                }
                _ => vec![],
            },
            password: norm.password.as_deref(),
            ..Write::default()
        };
        let jobs = self.jobs_for(rt, &row.id, row.version, &w, token.as_deref(), None);
        self.store
            .insert(&row, members.as_deref().unwrap_or(&[]), &jobs)?;
        self.fanout.wake();
        self.await_sync(token.as_deref(), |failed| self.unmake(rt, &row, failed))?;
        self.render(rt, row, base, projection)
    }

    /// GET by id.
    pub fn get(
        &self,
        rt_name: &str,
        id: &str,
        base: &str,
        projection: &Projection,
    ) -> BridgeResult<Rendered> {
        let rt = self.rt(rt_name)?;
        let row = self.load(rt, id)?;
        self.render(rt, row, base, projection)
    }

    /// The current ETag of a resource, without rendering it.
    pub fn current_etag(&self, rt_name: &str, id: &str) -> BridgeResult<String> {
        let rt = self.rt(rt_name)?;
        Ok(etag(self.load(rt, id)?.version))
    }

    fn load(&self, rt: &ResourceType, id: &str) -> BridgeResult<ResourceRow> {
        // No stored id holds U+0000 (and PostgreSQL cannot even compare one).
        if id.contains('\0') {
            return Err(ScimError::NotFound(format!("{} does not exist", rt.name)).into());
        }
        self.store
            .get(&rt.name, id)?
            .ok_or_else(|| ScimError::NotFound(format!("{} '{id}' does not exist", rt.name)).into())
    }

    /// PUT: replaces a resource. `active` omitted keeps its value (as Okta expects).
    pub fn replace(
        &self,
        rt_name: &str,
        id: &str,
        body: Value,
        pre: &Precondition,
        base: &str,
        projection: &Projection,
    ) -> BridgeResult<Rendered> {
        let rt = self.rt(rt_name)?;
        let norm = normalize(&self.reg, rt, body)?;
        for attempt in 0.. {
            let current = self.load(rt, id)?;
            pre.check(current.version)?;
            let mut data = norm.data.clone();
            if !data.contains_key("active") {
                if let Some(active) = current.active {
                    if rt.schema == USER_SCHEMA {
                        data.insert("active".into(), Value::Bool(active));
                    }
                }
            }
            let members = take_members(rt, &mut data)?;
            if let Some(m) = &members {
                not_self(id, m)?;
            }
            let members = match (members, rt.schema == GROUP_SCHEMA) {
                (Some(m), _) => Some(m),
                (None, true) => Some(vec![]),
                (None, false) => None,
            };
            let row = to_row(
                rt,
                current.id.clone(),
                data,
                current.version + 1,
                current.created.clone(),
                format_time(self.clock.now()),
            )?;
            let old: Map<String, Value> = serde_json::from_str(&current.data).unwrap_or_default();
            let new: Map<String, Value> = serde_json::from_str(&row.data).unwrap_or_default();
            let old_members = self.old_member_ids(rt, id)?;
            let token = self.sync_token();
            let w = Write {
                old: Some(&old),
                new: Some(&new),
                members: match &members {
                    Some(m) => vec![members_replaced(&old_members, ids_of(m))],
                    None => vec![],
                },
                password: norm.password.as_deref(),
                ..Write::default()
            };
            let jobs = self.jobs_for(rt, &row.id, row.version, &w, token.as_deref(), None);
            match self
                .store
                .replace(&row, current.version, members.as_deref(), &jobs)
            {
                Ok(()) => {
                    self.fanout.wake();
                    self.await_sync(token.as_deref(), |failed| {
                        self.restore(rt, &current, &old_members, Some(row.version), failed)
                    })?;
                    return self.render(rt, row, base, projection);
                }
                Err(StoreError::VersionMismatch(_)) if pre.is_none() => {
                    conflict_retry(attempt)?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ScimError::Internal("unreachable retry loop".into()).into())
    }

    /// PATCH. Returns the new ETag, and the resource when `want_body` (a large group is
    /// never read in full for a one-member change otherwise).
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        rt_name: &str,
        id: &str,
        body: Value,
        pre: &Precondition,
        base: &str,
        projection: &Projection,
        want_body: bool,
    ) -> BridgeResult<(String, Option<Rendered>)> {
        let rt = self.rt(rt_name)?;
        let ops = parse_request(body)?;
        let is_group = rt.schema == GROUP_SCHEMA;
        let external: &[&str] = if is_group { &["members"] } else { &[] };
        let patcher = Patcher {
            reg: &self.reg,
            rt,
            external,
        };
        for attempt in 0.. {
            let current = self.load(rt, id)?;
            pre.check(current.version)?;
            let data: Map<String, Value> = serde_json::from_str(&current.data).map_err(|e| {
                BridgeError::Store(StoreError::Corrupt(format!("{}: {e}", current.id)))
            })?;
            let patched = patcher.apply(&data, &ops)?;
            // The result is checked as a whole, as a PUT body would be: types, required
            // attributes; so a PATCH can never store what a POST could not.
            let norm = normalize(&self.reg, rt, Value::Object(patched.data))?;
            let now = format_time(self.clock.now());
            let data_changed = norm.data != data;
            let token = self.sync_token();
            let result = if is_group {
                let deltas = self.member_deltas(id, patched.members)?;
                let row = to_row(
                    rt,
                    current.id.clone(),
                    norm.data,
                    0,
                    current.created.clone(),
                    now,
                )?;
                // A document built from the copy read is written only when it changed,
                // and then only if nobody wrote in between; a membership change alone
                // leaves the document as it is stored.
                let base_version = (data_changed || !pre.is_none()).then_some(current.version);
                // The members before are read only for the undo of a sync connector's
                // refusal; events name the members the store really added or removed.
                let old_members = if token.is_some() {
                    self.old_member_ids(rt, id)?
                } else {
                    vec![]
                };
                let make_jobs = |version: i64, stored: &str, applied: &[Applied]| {
                    let doc: Map<String, Value> = serde_json::from_str(stored).unwrap_or_default();
                    let members = applied.iter().map(member_event).collect();
                    let w = Write {
                        old: Some(if data_changed { &data } else { &doc }),
                        new: Some(&doc),
                        members,
                        ..Write::default()
                    };
                    self.jobs_for(rt, id, version, &w, token.as_deref(), None)
                };
                self.store
                    .change_group(&row, base_version, data_changed, &deltas, &make_jobs)
                    .map(|(v, _)| (ResourceRow { version: v, ..row }, old_members))
            } else {
                let row = to_row(
                    rt,
                    current.id.clone(),
                    norm.data,
                    current.version + 1,
                    current.created.clone(),
                    now,
                )?;
                let new_doc = norm_data_copy(&row);
                let w = Write {
                    old: Some(&data),
                    new: Some(&new_doc),
                    password: patched.password.as_deref(),
                    ..Write::default()
                };
                let jobs = self.jobs_for(rt, &row.id, row.version, &w, token.as_deref(), None);
                self.store
                    .replace(&row, current.version, None, &jobs)
                    .map(|()| (row, vec![]))
            };
            match result {
                Ok((row, old_members)) => {
                    self.fanout.wake();
                    self.await_sync(token.as_deref(), |failed| {
                        self.restore(rt, &current, &old_members, Some(row.version), failed)
                    })?;
                    let tag = etag(row.version);
                    let rendered = if want_body {
                        Some(self.render(rt, row, base, projection)?)
                    } else {
                        None
                    };
                    return Ok((tag, rendered));
                }
                Err(StoreError::VersionMismatch(_)) if pre.is_none() => {
                    conflict_retry(attempt)?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ScimError::Internal("unreachable retry loop".into()).into())
    }

    /// Turns PATCH member changes into store deltas. A filtered remove on `value eq` is
    /// resolved without reading the group; any other filter reads its members.
    fn member_deltas(
        &self,
        group_id: &str,
        changes: Vec<MemberChange>,
    ) -> BridgeResult<Vec<MemberDelta>> {
        let members_of = |list: Vec<Value>| {
            list.into_iter()
                .map(member_from_json)
                .collect::<BridgeResult<Vec<_>>>()
        };
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            out.push(match change {
                MemberChange::Add(list) => {
                    let m = members_of(list)?;
                    not_self(group_id, &m)?;
                    MemberDelta::Add(m)
                }
                MemberChange::ReplaceAll(list) => {
                    let m = members_of(list)?;
                    not_self(group_id, &m)?;
                    MemberDelta::ReplaceAll(m)
                }
                MemberChange::RemoveAll => MemberDelta::RemoveAll,
                MemberChange::Remove(ids) => MemberDelta::Remove(ids),
                MemberChange::RemoveWhere(filter) => match value_equalities(&filter) {
                    Some(ids) => MemberDelta::Remove(ids),
                    None => {
                        let rt = self.rt("Group")?;
                        let eval = Evaluator { reg: &self.reg, rt };
                        let parent = AttrPath {
                            urn: None,
                            attr: "members".into(),
                            sub: None,
                        };
                        let mut ids = Vec::new();
                        for m in self.store.members(group_id)? {
                            let el = json!({"value": m.id, "type": m.kind, "display": m.display});
                            if eval.matches_element(&parent, &filter, &el)? {
                                ids.push(m.id);
                            }
                        }
                        MemberDelta::Remove(ids)
                    }
                },
            });
        }
        Ok(out)
    }

    /// DELETE.
    pub fn delete(&self, rt_name: &str, id: &str, pre: &Precondition) -> BridgeResult<()> {
        let rt = self.rt(rt_name)?;
        let now = format_time(self.clock.now());
        let current = self.load(rt, id)?;
        pre.check(current.version)?;
        let old: Map<String, Value> = serde_json::from_str(&current.data).unwrap_or_default();
        let old_members = self.old_member_ids(rt, id)?;
        let token = self.sync_token();
        // The groups it is in, for the undo of a sync connector's refusal.
        let groups: Vec<String> = if token.is_some() {
            self.store
                .groups_of(&[id.to_string()])?
                .into_iter()
                .map(|g| g.group_id)
                .collect()
        } else {
            vec![]
        };
        let w = Write {
            old: Some(&old),
            old_members: old_members.clone(),
            ..Write::default()
        };
        let jobs = self.jobs_for(rt, id, current.version + 1, &w, token.as_deref(), None);
        let base = (!pre.is_none()).then_some(current.version);
        self.store
            .delete(&rt.name, id, base, &now, &jobs)
            .map_err(|e| not_found(rt, id, e))?;
        self.fanout.wake();
        self.await_sync(token.as_deref(), |failed| {
            self.restore(rt, &current, &old_members, None, failed)?;
            self.rejoin(id, &rt.name, &groups, failed)
        })?;
        Ok(())
    }

    /// GET on a collection (and POST .search).
    pub fn list(&self, rt_name: &str, query: &ListQuery, base: &str) -> BridgeResult<Value> {
        let rt = self.rt(rt_name)?;
        if let Some(f) = &query.filter {
            f.check(&self.reg, rt)?;
        }
        let sort = query.sort.as_ref().map(|(p, d)| (p, *d));
        if let Some(cursor) = &query.cursor {
            let after = if cursor.is_empty() {
                None
            } else {
                Some(decode_cursor(cursor)?)
            };
            let spec = ListSpec {
                resource_type: &rt.name,
                filter: query.filter.as_ref(),
                sort: None,
                page: Page::After {
                    after,
                    limit: query.count.saturating_add(1),
                },
                count_total: cursor.is_empty(),
            };
            let (total, mut rows) = self.store.list(&spec, &self.reg)?;
            let more = rows.len() as u64 > query.count;
            rows.truncate(query.count as usize);
            let next = match (more, rows.last()) {
                (true, Some(last)) => Some(encode_cursor(&last.created, &last.id)),
                _ => None,
            };
            let bodies = self.render_many(rt, rows, base, &query.projection)?;
            let total = cursor.is_empty().then_some(total);
            return Ok(cursor_response(total, bodies, next));
        }
        let spec = ListSpec {
            resource_type: &rt.name,
            filter: query.filter.as_ref(),
            sort,
            page: Page::Offset {
                offset: query.start_index - 1,
                limit: query.count,
            },
            count_total: true,
        };
        let (total, rows) = self.store.list(&spec, &self.reg)?;
        let bodies = self.render_many(rt, rows, base, &query.projection)?;
        Ok(list_response(total, query.start_index, bodies))
    }

    /// POST /.search at the root: every resource type, in resource-type order then creation
    /// order, paged across them. A filter on an attribute a type lacks matches none of it.
    pub fn search_all(&self, query: &ListQuery, base: &str) -> BridgeResult<Value> {
        if query.cursor.is_some() || query.sort.is_some() {
            return Err(ScimError::InvalidValue(
                "a search across resource types takes neither cursor nor sortBy".into(),
            )
            .into());
        }
        let mut total = 0u64;
        let mut bodies = Vec::new();
        let mut skip = query.start_index - 1;
        let mut room = query.count;
        let mut any_type = false;
        for rt in self.reg.resource_types() {
            if let Some(f) = &query.filter {
                if f.check(&self.reg, rt).is_err() {
                    continue;
                }
            }
            any_type = true;
            let spec = ListSpec {
                resource_type: &rt.name,
                filter: query.filter.as_ref(),
                sort: None,
                page: Page::Offset {
                    offset: skip,
                    limit: room,
                },
                count_total: true,
            };
            let (n, rows) = self.store.list(&spec, &self.reg)?;
            total += n;
            skip = skip.saturating_sub(n);
            room -= rows.len() as u64;
            bodies.extend(self.render_many(rt, rows, base, &query.projection)?);
        }
        if !any_type {
            if let Some(f) = &query.filter {
                return Err(ScimError::InvalidFilter(format!(
                    "'{f}' names attributes no resource type has"
                ))
                .into());
            }
        }
        Ok(list_response(total, query.start_index, bodies))
    }

    fn render(
        &self,
        rt: &ResourceType,
        row: ResourceRow,
        base: &str,
        projection: &Projection,
    ) -> BridgeResult<Rendered> {
        let tag = etag(row.version);
        let location = location(base, rt, &row.id);
        let mut bodies = self.render_many(rt, vec![row], base, projection)?;
        let body = bodies
            .pop()
            .ok_or_else(|| ScimError::Internal("nothing rendered".into()))?;
        Ok(Rendered {
            body,
            etag: tag,
            location,
        })
    }

    fn render_many(
        &self,
        rt: &ResourceType,
        rows: Vec<ResourceRow>,
        base: &str,
        projection: &Projection,
    ) -> BridgeResult<Vec<Value>> {
        let is_user = rt.schema == USER_SCHEMA;
        let is_group = rt.schema == GROUP_SCHEMA;
        let mut groups: HashMap<String, Vec<Value>> = HashMap::new();
        if is_user && projection.wants(&self.reg, rt, "groups") && !rows.is_empty() {
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            for g in self.store.groups_of(&ids)? {
                let mut v = json!({ "value": g.group_id, "$ref": format!("{base}/Groups/{}", g.group_id), "type": "direct" });
                if let (Some(d), Some(o)) = (g.display, v.as_object_mut()) {
                    o.insert("display".into(), Value::String(d));
                }
                groups.entry(g.member_id).or_default().push(v);
            }
        }
        let want_members = is_group && projection.wants(&self.reg, rt, "members");
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let data: Map<String, Value> = serde_json::from_str(&row.data)
                .map_err(|e| BridgeError::Store(StoreError::Corrupt(format!("{}: {e}", row.id))))?;
            let mut doc = Map::new();
            let mut schemas = vec![Value::String(rt.schema.clone())];
            for ext in &rt.extensions {
                if data.contains_key(&ext.schema) {
                    schemas.push(Value::String(ext.schema.clone()));
                }
            }
            doc.insert("schemas".into(), Value::Array(schemas));
            doc.insert("id".into(), Value::String(row.id.clone()));
            doc.extend(data);
            if let Some(gs) = groups.remove(&row.id) {
                doc.insert("groups".into(), Value::Array(gs));
            }
            if want_members {
                let members: Vec<Value> = self
                    .store
                    .members(&row.id)?
                    .into_iter()
                    .map(|m| {
                        let endpoint = if m.kind == "Group" { "Groups" } else { "Users" };
                        let mut v = json!({ "value": m.id, "$ref": format!("{base}/{endpoint}/{}", m.id), "type": m.kind });
                        if let (Some(d), Some(o)) = (m.display, v.as_object_mut()) {
                            o.insert("display".into(), Value::String(d));
                        }
                        v
                    })
                    .collect();
                if !members.is_empty() {
                    doc.insert("members".into(), Value::Array(members));
                }
            }
            doc.insert(
                "meta".into(),
                json!({
                    "resourceType": rt.name,
                    "created": row.created,
                    "lastModified": row.last_modified,
                    "location": location(base, rt, &row.id),
                    "version": etag(row.version),
                }),
            );
            out.push(projection.apply(&self.reg, rt, Value::Object(doc)));
        }
        Ok(out)
    }
}

fn encode_cursor(created: &str, id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{created}\n{id}"))
}

fn decode_cursor(cursor: &str) -> BridgeResult<(String, String)> {
    use base64::Engine;
    let invalid =
        || ScimError::InvalidCursor(format!("'{cursor}' is not a cursor this server issued"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    if text.contains('\0') {
        return Err(invalid().into());
    }
    let (created, id) = text.split_once('\n').ok_or_else(invalid)?;
    Ok((created.to_string(), id.to_string()))
}

fn norm_data_copy(row: &ResourceRow) -> Map<String, Value> {
    serde_json::from_str(&row.data).unwrap_or_default()
}

/// The ids of a filter made only of `value eq "..."` terms joined by `or`.
fn value_equalities(f: &Filter) -> Option<Vec<String>> {
    match f {
        Filter::Or(a, b) => {
            let mut ids = value_equalities(a)?;
            ids.extend(value_equalities(b)?);
            Some(ids)
        }
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::String(id),
        } if path.urn.is_none()
            && path.sub.is_none()
            && path.attr.eq_ignore_ascii_case("value") =>
        {
            Some(vec![id.clone()])
        }
        _ => None,
    }
}

fn not_found(rt: &ResourceType, id: &str, e: StoreError) -> BridgeError {
    match e {
        StoreError::NotFound => {
            ScimError::NotFound(format!("{} '{id}' does not exist", rt.name)).into()
        }
        other => other.into(),
    }
}

pub fn location(base: &str, rt: &ResourceType, id: &str) -> String {
    format!("{base}{}/{id}", rt.endpoint)
}

/// Takes a Group's `members` out of its document: membership lives in its own table.
fn take_members(
    rt: &ResourceType,
    data: &mut Map<String, Value>,
) -> BridgeResult<Option<Vec<NewMember>>> {
    if rt.schema != GROUP_SCHEMA {
        return Ok(None);
    }
    let Some(Value::Array(items)) = data.remove("members") else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(member_from_json)
        .collect::<BridgeResult<Vec<_>>>()
        .map(Some)
}

/// Reads one `members` element: `value` is required, `type` optional ("User" or "Group").
pub fn member_from_json(v: Value) -> BridgeResult<NewMember> {
    let id = v
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ScimError::InvalidValue("every member needs a 'value', the member's id".into())
        })?
        .to_string();
    let kind = match v.get("type").and_then(Value::as_str) {
        None => None,
        Some(t) if t.eq_ignore_ascii_case("user") => Some("User".to_string()),
        Some(t) if t.eq_ignore_ascii_case("group") => Some("Group".to_string()),
        Some(t) => {
            return Err(ScimError::InvalidValue(format!(
                "member type '{t}' is neither User nor Group"
            ))
            .into())
        }
    };
    Ok(NewMember { id, kind })
}

/// The most bytes (UTF-8) of userName, externalId and displayName, and of their folded
/// forms: they are indexed, and an index entry has a size limit (PostgreSQL's btree).
pub const MAX_INDEXED_BYTES: usize = 1024;

/// How identity systems compare names: Unicode NFC, then full case folding.
pub fn fold(s: &str) -> String {
    crate::scim::fold::fold(s)
}

/// A group may not be its own member.
fn not_self(group_id: &str, members: &[NewMember]) -> BridgeResult<()> {
    if members.iter().any(|m| m.id == group_id) {
        return Err(ScimError::InvalidValue("a group cannot be a member of itself".into()).into());
    }
    Ok(())
}

/// Builds the stored row: the document plus its indexed columns.
pub(crate) fn to_row(
    rt: &ResourceType,
    id: String,
    data: Map<String, Value>,
    version: i64,
    created: String,
    last_modified: String,
) -> BridgeResult<ResourceRow> {
    let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_string);
    let is_user = rt.schema == USER_SCHEMA;
    let user_name = if is_user { text("userName") } else { None };
    let display_name = text("displayName");
    let external_id = text("externalId");
    if is_user && user_name.as_deref().is_some_and(|u| u.trim().is_empty()) {
        return Err(ScimError::InvalidValue("userName may not be empty or blank".into()).into());
    }
    if rt.schema == GROUP_SCHEMA && display_name.as_deref().is_none_or(|d| d.trim().is_empty()) {
        return Err(ScimError::InvalidValue(
            "a group's displayName may not be empty or blank".into(),
        )
        .into());
    }
    let user_name_ci = user_name.as_deref().map(fold);
    let display_name_ci = display_name.as_deref().map(fold);
    for (name, value) in [
        ("userName", &user_name),
        ("userName", &user_name_ci),
        ("externalId", &external_id),
        ("displayName", &display_name),
        ("displayName", &display_name_ci),
    ] {
        if value.as_ref().is_some_and(|v| v.len() > MAX_INDEXED_BYTES) {
            return Err(ScimError::InvalidValue(format!(
                "{name} is longer than {MAX_INDEXED_BYTES} bytes (UTF-8), the most an indexed attribute holds"
            ))
            .into());
        }
    }
    Ok(ResourceRow {
        id,
        resource_type: rt.name.clone(),
        user_name_ci,
        user_name,
        external_id,
        display_name_ci,
        display_name,
        active: data.get("active").and_then(Value::as_bool),
        data: serde_json::to_string(&data).map_err(|e| ScimError::Internal(e.to_string()))?,
        version,
        created,
        last_modified,
    })
}
