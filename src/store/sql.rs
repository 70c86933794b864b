//! The SQL store itself: its connection pool, migrations, write transactions, and the
//! one-time data migrations.

use std::sync::Mutex;

use diesel::prelude::*;

use super::db::{self, Backend, DbConn, DbPool, DbUrl};
use super::error::{StoreError, StoreResult};
use super::schema::resources;

/// The store over a pool of connections to SQLite or PostgreSQL. Each capability's trait
/// is implemented in its own module: resources, jobs, mappings, notifications,
/// credentials.
pub struct SqlStore {
    pool: DbPool,
    backend: Backend,
    /// SQLite allows one writer; taking this before a write transaction queues writers in
    /// the process instead of failing them with SQLITE_BUSY.
    sqlite_writer: Mutex<()>,
    /// Page boundaries and totals of recent lists (pages.rs).
    pub(super) pages: super::pages::PageCache,
}

/// A resource's names and their case-insensitive forms: id, userName, its folded form,
/// displayName, its folded form.
type NameRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl SqlStore {
    /// Connects to `url` and applies pending migrations.
    /// Opens the database, waiting up to 30 s for a server that is not up yet.
    pub fn open(url: &str, pool_size: u32) -> StoreResult<SqlStore> {
        SqlStore::open_waiting(url, pool_size, std::time::Duration::from_secs(30))
    }

    /// Opens the database, waiting up to `patience` for a server that is not up yet.
    pub fn open_waiting(
        url: &str,
        pool_size: u32,
        patience: std::time::Duration,
    ) -> StoreResult<SqlStore> {
        let url = DbUrl::parse(url)?;
        if url.backend == Backend::Sqlite {
            if let Some(parent) = std::path::Path::new(&url.target).parent() {
                if !parent.as_os_str().is_empty() && !parent.exists() {
                    return Err(StoreError::Connect(format!(
                        "the folder {} does not exist",
                        parent.display()
                    )));
                }
            }
        }
        let pool = db::connect(&url, pool_size, patience)?;
        db::migrate(&pool)?;
        let store = SqlStore {
            pool,
            backend: url.backend,
            sqlite_writer: Mutex::new(()),
            pages: Default::default(),
        };
        store.refold_names()?;
        Ok(store)
    }

    /// Once per database: the case-insensitive columns rewritten in the folded form (NFC
    /// and full case folding) where an earlier version kept them only lowercased. ASCII
    /// names are the same either way, so only the others are written.
    fn refold_names(&self) -> StoreResult<()> {
        use super::schema::data_migrations as dm;
        const NAME: &str = "fold_names_v1";
        let mut conn = self.conn()?;
        let done: Option<String> = dm::table
            .filter(dm::name.eq(NAME))
            .select(dm::done)
            .first(&mut *conn)
            .optional()?;
        if done.is_some() {
            return Ok(());
        }
        let fold = crate::scim::fold::fold;
        let mut after = String::new();
        let mut changed = 0u64;
        loop {
            let batch: Vec<NameRow> = resources::table
                .filter(resources::id.gt(&after))
                .order(resources::id)
                .select((
                    resources::id,
                    resources::user_name,
                    resources::user_name_ci,
                    resources::display_name,
                    resources::display_name_ci,
                ))
                .limit(2000)
                .load(&mut *conn)?;
            let Some(last) = batch.last() else { break };
            after = last.0.clone();
            for (id, un, un_ci, dn, dn_ci) in batch {
                let new_un = un.as_deref().map(fold);
                let new_dn = dn.as_deref().map(fold);
                if new_un == un_ci && new_dn == dn_ci {
                    continue;
                }
                let r = diesel::update(resources::table.find(&id))
                    .set((
                        resources::user_name_ci.eq(&new_un),
                        resources::display_name_ci.eq(&new_dn),
                    ))
                    .execute(&mut *conn);
                match r {
                    Ok(_) => changed += 1,
                    // Two names that now fold alike: the first keeps its place.
                    Err(e) => log::error!("resource {id}: its folded name collides with another's ({e}); left as it was"),
                }
            }
        }
        // Two instances starting together may both get here: the second insert is refused.
        let _ = diesel::insert_into(dm::table)
            .values((
                dm::name.eq(NAME),
                dm::done.eq(crate::clock::format_time(chrono::Utc::now())),
            ))
            .execute(&mut *conn);
        if changed > 0 {
            log::info!("{changed} names rewritten in their folded form");
        }
        Ok(())
    }

    /// Whether the database answers and has every migration this build expects: an error
    /// saying what is wrong otherwise.
    pub fn check_ready(&self) -> StoreResult<()> {
        let mut conn = self.conn()?;
        diesel::sql_query("SELECT 1").execute(&mut *conn)?;
        match db::pending_migrations(&mut conn)? {
            0 => Ok(()),
            n => Err(StoreError::Migration(format!(
                "{n} migrations are not applied (run `scim-bridge migrate`)"
            ))),
        }
    }

    /// The pool now: connections in use, idle, and the most it opens.
    pub fn pool_state(&self) -> PoolState {
        let st = self.pool.state();
        PoolState {
            in_use: st.connections.saturating_sub(st.idle_connections),
            idle: st.idle_connections,
            max: self.pool.max_size(),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn conn(&self) -> StoreResult<diesel::r2d2::PooledConnection<db::Manager>> {
        Ok(self.pool.get()?)
    }

    /// A pooled connection if one is free now; None rather than a wait.
    pub(crate) fn free_conn(&self) -> Option<diesel::r2d2::PooledConnection<db::Manager>> {
        self.pool.try_get()
    }

    /// Runs `f` in a write transaction.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut DbConn) -> StoreResult<T>) -> StoreResult<T> {
        let _guard = match self.backend {
            Backend::Sqlite => Some(self.sqlite_writer.lock().unwrap_or_else(|p| p.into_inner())),
            Backend::Postgres => None,
        };
        let mut conn = self.conn()?;
        let conn: &mut DbConn = &mut conn;
        conn.transaction::<T, StoreError, _>(f)
    }
}

/// The connection pool at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolState {
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}
