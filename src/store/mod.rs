//! Storage: SCIM resources, group membership and tokens, in SQLite or PostgreSQL through
//! one diesel codebase. Traits are cut by capability; all SQL stays in this module.

pub mod audit;
pub mod backfill;
pub mod brake;
mod codec;
mod credentials;
pub mod db;
pub mod dryrun;
pub mod error;
pub mod filter_sql;
pub mod jobs;
pub mod mappings;
pub mod notifications;
mod pages;
pub mod raw;
mod resources;
pub mod schema;
mod sql;

pub use audit::{AuditQuery, AuditRow, NewAudit};
pub use backfill::{BackfillCounts, SyncRunRow};
pub use brake::Verdict;
pub use db::{Backend, DbUrl};
pub use error::{StoreError, StoreResult};
pub use jobs::{Delivered, Done, JobRow, NewJob, QueueHealth, WaitState};
pub use mappings::MappingRow;
pub use notifications::NotificationRow;
pub use sql::{PoolState, SqlStore};

use crate::model::{Event, Failure, JobState, NotificationState};
use crate::scim::filter::Filter;
use crate::scim::path::AttrPath;

/// A stored resource: the JSON document and the columns indexed for lookups.
#[derive(Debug, Clone, PartialEq, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(table_name = schema::resources)]
pub struct ResourceRow {
    pub id: String,
    pub resource_type: String,
    pub user_name: Option<String>,
    pub user_name_ci: Option<String>,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub display_name_ci: Option<String>,
    pub active: Option<bool>,
    /// The resource's attributes as JSON, without id, meta and computed attributes.
    pub data: String,
    pub version: i64,
    pub created: String,
    pub last_modified: String,
}

/// A member to be stored: its id and, when the client gave one, its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMember {
    pub id: String,
    pub kind: Option<String>,
}

/// One change to a group's membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberDelta {
    /// Add these members; members already in the group are left as they are.
    Add(Vec<NewMember>),
    /// Remove these member ids; ids not in the group are ignored.
    Remove(Vec<String>),
    RemoveAll,
    ReplaceAll(Vec<NewMember>),
}

/// Makes a group change's outbox jobs from its new version, its document as stored, and
/// what its member deltas really did.
pub type JobsFor<'a> = dyn Fn(i64, &str, &[Applied]) -> Vec<NewJob> + 'a;

/// What a member delta really did, as the store applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Added(Vec<String>),
    Removed(Vec<String>),
    RemovedAll(Vec<String>),
    Replaced {
        members: Vec<String>,
        added: Vec<String>,
        removed: Vec<String>,
    },
}

/// A stored member, with what it takes to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub kind: String,
    pub display: Option<String>,
}

/// A group a resource belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub member_id: String,
    pub group_id: String,
    pub display: Option<String>,
}

/// What a list asks of the store. The filter has been checked against the schemas.
pub struct ListSpec<'a> {
    pub resource_type: &'a str,
    pub filter: Option<&'a Filter>,
    /// Sort by this attribute (descending when the flag is set); ties, and lists without
    /// a sort, go in creation order.
    pub sort: Option<(&'a AttrPath, bool)>,
    pub page: Page,
    /// Whether to count every match (totalResults); a deep cursor page skips it, so that
    /// its cost does not grow with the collection.
    pub count_total: bool,
    /// At most this many bytes of documents (each counted with [`PAGE_ROW_OVERHEAD`]) are
    /// read for the page, whatever its limit: the rows' sizes are read first, and only
    /// the documents that fit (always the first) are loaded.
    pub max_bytes: usize,
}

/// What one row costs a page besides its document (its columns, and what rendering adds).
pub const PAGE_ROW_OVERHEAD: usize = 256;

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// Every match, when counted.
    pub total: u64,
    pub rows: Vec<ResourceRow>,
    /// Rows within the limit were left out to keep the page within its bytes.
    pub cut: bool,
}

/// Which slice of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    Offset {
        offset: u64,
        limit: u64,
    },
    /// Keyset paging in creation order: the rows after (created, id).
    After {
        after: Option<(String, String)>,
        limit: u64,
    },
}

/// Reading and writing SCIM resources.
pub trait ResourceStore: Send + Sync {
    /// Inserts a resource and its members in one transaction.
    fn insert(&self, row: &ResourceRow, members: &[NewMember], jobs: &[NewJob]) -> StoreResult<()>;
    fn get(&self, resource_type: &str, id: &str) -> StoreResult<Option<ResourceRow>>;
    /// Replaces a resource if its stored version is still `base_version`; `members`, when
    /// given, replaces its membership.
    fn replace(
        &self,
        row: &ResourceRow,
        base_version: i64,
        members: Option<&[NewMember]>,
        jobs: &[NewJob],
    ) -> StoreResult<()>;
    /// Changes a group in one transaction, touching only the members named: locks its row
    /// (with `base_version`, only if the version is still that), applies the member deltas,
    /// and learns which members really joined or left. Only then, when `write_doc` or a
    /// member really changed, writes the document (its fields only with `write_doc`) and the
    /// next version, and queues the jobs `jobs` makes from that version and what was
    /// applied (and the document as stored then). A change that changes nothing writes
    /// nothing and queues nothing. Returns
    /// the group's version afterwards and whether anything changed.
    fn change_group(
        &self,
        row: &ResourceRow,
        base_version: Option<i64>,
        write_doc: bool,
        deltas: &[MemberDelta],
        jobs: &JobsFor<'_>,
    ) -> StoreResult<(i64, bool)>;
    /// Deletes a resource (and every membership naming it) if its version is `base_version`.
    fn delete(
        &self,
        resource_type: &str,
        id: &str,
        base_version: Option<i64>,
        now: &str,
        jobs: &[NewJob],
    ) -> StoreResult<()>;
    /// One page of resources and the exact total, in a stable order.
    fn list(&self, spec: &ListSpec<'_>, reg: &crate::scim::schema::Registry)
        -> StoreResult<Listed>;
    fn members(&self, group_id: &str) -> StoreResult<Vec<Member>>;
    fn groups_of(&self, member_ids: &[String]) -> StoreResult<Vec<GroupRef>>;
    /// A resource and (with `with_groups`) its groups, read at once on this thread: None
    /// where that could wait (no connection free now, or a database across the network),
    /// and then the caller reads the ordinary way, off the request thread.
    fn get_now(
        &self,
        _resource_type: &str,
        _id: &str,
        _with_groups: bool,
    ) -> Option<StoreResult<(Option<ResourceRow>, Vec<GroupRef>)>> {
        None
    }
    /// Where the outbox jobs a request waits for stand (connectors in sync mode).
    fn wait_state(&self, _token: &str) -> StoreResult<WaitState> {
        Ok(WaitState::Delivered)
    }
    /// Removes the dead jobs of a write that was undone.
    fn drop_dead_jobs(&self, _token: &str) -> StoreResult<usize> {
        Ok(0)
    }
}

/// A stored bearer token (its hash stays in the store).
#[derive(Debug, Clone, PartialEq, diesel::Queryable)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub created: String,
    pub scopes: String,
    pub last_used: Option<String>,
    pub revoked: Option<String>,
}

/// An OAuth client (client credentials grant).
#[derive(Debug, Clone, PartialEq, diesel::Queryable, diesel::Insertable)]
#[diesel(table_name = schema::oauth_clients)]
pub struct ClientRow {
    pub client_id: String,
    pub name: String,
    pub secret_hash: String,
    pub scopes: String,
    pub token_lifetime_mins: i32,
    pub created: String,
    pub last_used: Option<String>,
    pub revoked: Option<String>,
}

/// A key the bridge signs its access tokens with.
#[derive(Clone, PartialEq, diesel::Queryable, diesel::Insertable)]
#[diesel(table_name = schema::signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub secret: String,
    pub created: String,
    pub retired: Option<String>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("secret", &"***")
            .field("created", &self.created)
            .field("retired", &self.retired)
            .finish()
    }
}

/// Credentials: bearer tokens (as hashes), OAuth clients and the bridge's signing keys.
pub trait TokenStore: Send + Sync {
    fn add_token(&self, row: &TokenRow, hash: &str) -> StoreResult<()>;
    /// The token with this hash, revoked or not.
    fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenRow>>;
    /// Tokens of `kind` that are not revoked.
    fn count_tokens(&self, kind: &str) -> StoreResult<u64>;
    fn list_tokens(&self) -> StoreResult<Vec<TokenRow>>;
    /// Revokes every token with this name; returns how many were live.
    fn revoke_tokens(&self, name: &str, now: &str) -> StoreResult<usize>;
    fn touch_token(&self, id: &str, now: &str) -> StoreResult<()>;
    /// Adds a client; a taken name is [`StoreError::Conflict`].
    fn add_client(&self, row: &ClientRow) -> StoreResult<()>;
    fn client(&self, client_id: &str) -> StoreResult<Option<ClientRow>>;
    fn list_clients(&self) -> StoreResult<Vec<ClientRow>>;
    fn revoke_client(&self, name: &str, now: &str) -> StoreResult<usize>;
    fn touch_client(&self, client_id: &str, now: &str) -> StoreResult<()>;
    fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRow>>;
    fn add_signing_key(&self, row: &SigningKeyRow) -> StoreResult<()>;
    /// Replaces a signing key's stored text (the same key, sealed).
    fn reseal_signing_key(&self, kid: &str, secret: &str) -> StoreResult<()>;
    /// Retires every key but `keep`.
    fn retire_signing_keys(&self, keep: &str, now: &str) -> StoreResult<()>;
    /// Removes keys retired before `before` (their tokens have expired).
    fn drop_signing_keys(&self, before: &str) -> StoreResult<usize>;
}

/// The outbox: claiming, completing, retrying and burying jobs.
pub trait JobStore: Send + Sync {
    /// Claims up to `limit` due jobs until `lease_until`, oldest first, never a job whose
    /// resource has an earlier job pending for the same connector (order per resource).
    fn claim_jobs(
        &self,
        now: &str,
        lease_until: &str,
        limit: i64,
        owner: &str,
    ) -> StoreResult<Vec<JobRow>>;
    /// Extends the lease of the jobs `owner` still holds among `ids`.
    fn renew_claims(&self, owner: &str, ids: &[i64], until: &str) -> StoreResult<usize>;
    /// Releases every claim (for a single-process database after a restart).
    fn release_claims(&self) -> StoreResult<usize>;
    /// Pending jobs (id, connector) held back by an earlier dead job of their resource.
    fn blocked_jobs(&self) -> StoreResult<Vec<(i64, String)>>;
    /// When the first pending job that no earlier job of its resource holds back may next
    /// be claimed (its next attempt, or the end of its lease if later); `None` when none.
    fn next_claimable_at(&self) -> StoreResult<Option<String>>;
    /// A delivered job: gone from the outbox, its mapping synced.
    fn complete_job(&self, job: &JobRow, d: &Delivered, now: &str) -> StoreResult<()>;
    /// Delivered jobs written together, in one transaction: each gone with the jobs it
    /// carried along (coalesced), its mapping synced, its notification recorded.
    fn complete_jobs(&self, done: &[Done], now: &str) -> StoreResult<()>;
    /// A failed attempt that will be tried again at `next_at`.
    fn reschedule_job(
        &self,
        job: &JobRow,
        next_at: &str,
        error: &str,
        now: &str,
    ) -> StoreResult<()>;
    /// A job that will not be tried again unless an administrator asks.
    fn bury_job(&self, job: &JobRow, failure: Failure, error: &str, now: &str) -> StoreResult<()>;
    /// Drops one dead job for good (the jobs of its resource behind it go on); None when no
    /// dead job has that id.
    fn discard_dead(&self, id: i64, now: &str) -> StoreResult<Option<JobRow>>;
    /// Removes a claimed job the target must not receive (it carries an older state of
    /// its resource than the target holds, or a snapshot of a resource deleted since) and
    /// leaves the mapping as the target holds it.
    fn drop_superseded(&self, job: &JobRow, note: &str, now: &str) -> StoreResult<()>;
    /// Jobs by state and connector, oldest first.
    fn list_jobs(
        &self,
        state: Option<JobState>,
        connector: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<JobRow>>;
    /// Puts dead jobs back in the queue: one (`id`) or all of a connector. Each is rebuilt
    /// by `resync` from the resource's current state (when it gives a new event and
    /// payload), and its age starts afresh, so it is not buried again by age at once.
    fn retry_dead(
        &self,
        id: Option<i64>,
        connector: Option<&str>,
        now: &str,
        resync: &dyn Fn(&JobRow) -> Option<(Event, String)>,
    ) -> StoreResult<usize>;
    /// Where the jobs written with `token` stand.
    fn wait_state_of(&self, token: &str) -> StoreResult<WaitState>;
    /// Removes the dead jobs written with `token` (a sync write that was undone: the change
    /// they carried no longer exists, so retrying them would be wrong).
    fn drop_dead_jobs_of(&self, token: &str) -> StoreResult<usize>;
    /// The pending jobs after `job` for the same resource and connector, oldest first, that
    /// no worker holds: candidates to deliver together with it.
    fn following_jobs(&self, job: &JobRow, now: &str, limit: i64) -> StoreResult<Vec<JobRow>>;
    fn queue_health(&self, connector: &str) -> StoreResult<QueueHealth>;
}

/// Where each resource stands in each target.
pub trait MappingStore: Send + Sync {
    /// The id of a deleted resource of this type whose mappings are still kept, by its id
    /// or by a principal a target knew it by.
    fn deleted_resource(&self, resource_type: &str, key: &str) -> StoreResult<Option<String>>;
    /// Forgets the mappings of resources deleted everywhere before `before`.
    fn prune_deleted(&self, before: &str) -> StoreResult<usize>;
    fn mappings_of(&self, resource_id: &str) -> StoreResult<Vec<MappingRow>>;
    fn mapping(&self, resource_id: &str, connector: &str) -> StoreResult<Option<MappingRow>>;
    /// The mappings in `connector` of many resources at once (a group job's members), read
    /// in chunks.
    fn mappings_in(&self, resource_ids: &[String], connector: &str)
        -> StoreResult<Vec<MappingRow>>;
    /// Records where a resource stands in a target outside its own jobs (a user provisioned
    /// because it joined a scope group).
    fn record_mapping(
        &self,
        resource_id: &str,
        connector: &str,
        resource_type: &str,
        target_id: Option<&str>,
        principal: Option<&str>,
        now: &str,
    ) -> StoreResult<()>;
    /// A resource's mappings and notifications as of one moment (one snapshot), so a
    /// completion committed between two reads cannot show half of itself.
    fn standing_of(
        &self,
        resource_id: &str,
    ) -> StoreResult<(Vec<MappingRow>, Vec<NotificationRow>)>;
}

/// Notifications a target completes later.
pub trait NotificationStore: Send + Sync {
    /// Completes a notification by its tracking id and returns it. A completion for a
    /// tracking id not yet recorded (it raced ahead of the delivery's own record) is kept
    /// for that record to find.
    fn complete_notification(
        &self,
        tracking_id: &str,
        connector: &str,
        state: NotificationState,
        error: Option<&str>,
        now: &str,
    ) -> StoreResult<Option<NotificationRow>>;
    fn notifications_of(&self, resource_id: &str) -> StoreResult<Vec<NotificationRow>>;
}

/// Whether the store can serve: the database answers and is migrated.
/// Backfill: what a connector never received, queued behind live changes.
pub trait BackfillStore: Send + Sync {
    /// Records that this database has seen `connector`; true the first time only (on any
    /// instance), so a new connector is backfilled once.
    fn first_sighting(&self, connector: &str, now: &str) -> StoreResult<bool>;
    /// Resources of a type in id order after `after`: those with no mapping for the
    /// connector (never received), or every one when `all`.
    fn backfill_page(
        &self,
        connector: &str,
        resource_type: &str,
        all: bool,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ResourceRow>>;
    fn start_run(&self, connector: &str, all: bool, now: &str) -> StoreResult<i64>;
    /// Queues jobs of a run (and marks their mappings pending) in one transaction.
    fn queue_backfill(&self, run: i64, jobs: &[NewJob], now: &str) -> StoreResult<()>;
    /// Queues a reconcile's repairs as a run: each user's target id is forgotten in the
    /// same transaction, so its job finds the user again by principal (recreating it where
    /// it is gone) and sends it whole. A user changed or deleted since it was read is left
    /// to its own newer job; returns how many were queued.
    fn queue_repair(&self, run: i64, jobs: &[NewJob], now: &str) -> StoreResult<usize>;
    /// How many resources of a type there are.
    fn count_resources(&self, resource_type: &str) -> StoreResult<i64>;
    fn latest_run(&self, connector: &str) -> StoreResult<Option<SyncRunRow>>;
    fn backfill_counts(&self, connector: &str) -> StoreResult<BackfillCounts>;
}

/// Dry run.
pub trait DryRunStore: Send + Sync {
    /// A job a connector in dry run handled: kept with the calls it would have made (the
    /// jobs coalesced into it go), its mapping marked dry run with the would-be target id.
    fn record_dry_run(
        &self,
        job: &JobRow,
        coalesced: &[i64],
        calls: &str,
        target_id: Option<&str>,
        now: &str,
    ) -> StoreResult<()>;
    /// Records the mode a connector runs in now; returns the one it ran in before.
    fn note_mode(&self, connector: &str, mode: &str, now: &str) -> StoreResult<Option<String>>;
    /// Ends a connector's dry run. A backfill then sends it what exists from the current
    /// state; what was deleted meanwhile exists nowhere else, so each recorded delete of a
    /// resource still gone becomes a pending job again (the target may hold what it
    /// deletes; it is addressed by principal, the dry run's made-up target id forgotten).
    /// The other recorded jobs and dry-run mappings are forgotten. Returns how many deletes
    /// were queued.
    fn clear_dry_run(&self, connector: &str, now: &str) -> StoreResult<usize>;
    /// A resource's dry-run jobs, oldest first.
    fn dry_run_jobs_of(&self, resource_id: &str) -> StoreResult<Vec<JobRow>>;
}

/// The deletion brake.
pub trait BrakeStore: Send + Sync {
    /// For a claimed deprovisioning job of a connector with a limit: go (and count it), or
    /// hold it when `limit` were delivered since `since` or others are held already. Jobs
    /// an administrator released are not held again.
    fn brake(&self, job: &JobRow, limit: i64, since: &str, now: &str) -> StoreResult<Verdict>;
    /// Puts a connector's held jobs back in the queue, never to be held again.
    fn release_held(&self, connector: &str, now: &str) -> StoreResult<usize>;
    /// Drops a connector's held jobs, leaving each mapping `synced` with a note (the target
    /// holds what it held); says how many.
    fn discard_held(&self, connector: &str, now: &str) -> StoreResult<usize>;
}

/// The audit trail.
pub trait AuditStore: Send + Sync {
    fn add_audit(&self, row: &NewAudit) -> StoreResult<()>;
    /// Records newest first.
    fn audit(&self, q: &AuditQuery) -> StoreResult<Vec<AuditRow>>;
    /// Forgets records older than `before`; says how many.
    fn prune_audit(&self, before: &str) -> StoreResult<usize>;
}

pub trait HealthStore: Send + Sync {
    fn check_ready(&self) -> StoreResult<()>;
    fn pool_state(&self) -> PoolState;
}

impl HealthStore for SqlStore {
    fn check_ready(&self) -> StoreResult<()> {
        SqlStore::check_ready(self)
    }

    fn pool_state(&self) -> PoolState {
        SqlStore::pool_state(self)
    }
}
