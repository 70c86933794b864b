//! SCIM resource use cases: create, read, replace, delete, patch and list, over the store.
//! Each job of the service has its own file: events (what the outbox gets), undo (sync
//! mode), patch, list.

mod events;
mod list;
mod patch;
mod undo;

use events::{ids_of, member_event, members_replaced, Write};
use list::{norm_data_copy, value_equalities};
pub use patch::member_from_json;
use patch::{not_self, take_members};

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::error::{BridgeError, BridgeResult};
use super::etag::{etag, Precondition};
use crate::clock::{format_time, Clock};
use crate::model::{changes, Change, Event, ResourceKind};
use crate::outbox::Fanout;
use crate::scim::filter::{CompValue, CompareOp, Evaluator, Filter};
use crate::scim::list::{cursor_response, list_response, ListQuery};
use crate::scim::patch::{parse_request, MemberChange, Patcher};
use crate::scim::path::AttrPath;
use crate::scim::resource::{normalize, Projection};
use crate::scim::schema::{Registry, ResourceType, GROUP_SCHEMA, USER_SCHEMA};
use crate::scim::ScimError;
use crate::store::{
    Applied, ListSpec, Listed, MemberDelta, NewJob, NewMember, Page, ResourceRow, ResourceStore,
    StoreError,
};
use crate::store::{JobRow, WaitState};

/// How often a write without If-Match retries when another write changed the resource
/// under it (with a short random pause, so that racing writers spread out).
const WRITE_RETRIES: usize = 64;

/// What a write without If-Match does on a version conflict: wait a moment and try again,
/// or, past the retries, say the resource is too busy (503), never 412: the client set no
/// precondition.
fn conflict_retry(attempt: usize, metrics: &crate::metrics::Metrics) -> BridgeResult<()> {
    metrics.write_conflict();
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

/// The SCIM resource service.
pub struct Resources {
    reg: Arc<Registry>,
    store: Arc<dyn ResourceStore>,
    clock: Arc<dyn Clock>,
    fanout: Arc<Fanout>,
    /// How long a write waits for connectors in sync mode.
    sync_timeout: std::time::Duration,
    /// The most stored bytes one list page reads and renders (`ListSpec::max_bytes`).
    page_bytes: usize,
    /// Writes of one resource in this process take turns (a stripe of locks by id), so a
    /// write without If-Match waits for the one before it instead of losing optimistic
    /// retries to a stream of others (a rename among member changes). Across processes
    /// the version check and its retries still decide.
    turns: Arc<Vec<std::sync::Mutex<()>>>,
    /// Counts version conflicts (`/metrics`).
    metrics: Arc<crate::metrics::Metrics>,
}

/// How many locks the writes of resources share, by a hash of the id.
const TURN_STRIPES: usize = 256;

/// The default of `max_page_bytes`, the same as the largest body accepted: a page of 100
/// typical users (as Okta and Entra ask for) is a small part of it.
pub const DEFAULT_PAGE_BYTES: usize = 1024 * 1024;

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
            page_bytes: DEFAULT_PAGE_BYTES,
            turns: Arc::new(
                (0..TURN_STRIPES)
                    .map(|_| std::sync::Mutex::new(()))
                    .collect(),
            ),
            metrics: Arc::new(crate::metrics::Metrics::new()),
        }
    }

    /// Counts in `metrics` (the application's) rather than a set of its own.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Resources {
        self.metrics = metrics;
        self
    }

    /// Waits for this process's other writes of `id` to finish; the turn lasts as long as
    /// the guard (a sync-mode write keeps it while its connectors answer, so that an undo
    /// never lands on a later write).
    fn turn(&self, id: &str) -> std::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        let i = (h.finish() as usize) % self.turns.len();
        self.turns[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most stored bytes one list page renders; a page that would hold more holds
    /// fewer resources (at least one).
    pub fn with_page_bytes(mut self, bytes: usize) -> Resources {
        self.page_bytes = bytes.max(1);
        self
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
                    vec![(Event::GroupMembersAdded, events::named(&ids_of(m)))]
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

    /// A GET by id answered on the calling thread, when the store can read it without
    /// waiting (a local database with a connection free now; a group only without its
    /// members, which can be many). None: call [`Resources::get`] off the request thread.
    pub fn get_now(
        &self,
        rt_name: &str,
        id: &str,
        base: &str,
        projection: &Projection,
    ) -> Option<BridgeResult<Rendered>> {
        let rt = self.rt(rt_name).ok()?;
        let is_user = rt.schema == USER_SCHEMA;
        if id.contains('\0') || (!is_user && projection.wants(&self.reg, rt, "members")) {
            return None;
        }
        let with_groups = is_user && projection.wants(&self.reg, rt, "groups");
        let read = self.store.get_now(&rt.name, id, with_groups)?;
        Some((|| {
            let (row, groups) = read?;
            let row = row
                .ok_or_else(|| ScimError::NotFound(format!("{} '{id}' does not exist", rt.name)))?;
            self.render_one(rt, row, Some(groups), base, projection)
        })())
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
        let _turn = self.turn(id);
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
                    conflict_retry(attempt, &self.metrics)?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ScimError::Internal("unreachable retry loop".into()).into())
    }

    /// DELETE.
    pub fn delete(&self, rt_name: &str, id: &str, pre: &Precondition) -> BridgeResult<()> {
        let rt = self.rt(rt_name)?;
        let _turn = self.turn(id);
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
}

/// The kind of resource a type is, as the outbox names it.
fn kind_of(rt: &ResourceType) -> ResourceKind {
    if rt.schema == USER_SCHEMA {
        ResourceKind::User
    } else {
        ResourceKind::Group
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

/// The most bytes (UTF-8) of userName, externalId and displayName, and of their folded
/// forms: they are indexed, and an index entry has a size limit (PostgreSQL's btree).
pub const MAX_INDEXED_BYTES: usize = 1024;

/// How identity systems compare names: Unicode NFC, then full case folding.
pub fn fold(s: &str) -> String {
    crate::scim::fold::fold(s)
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
