//! One diesel codebase for SQLite and PostgreSQL: the connection enum, the pool, SQLite
//! pragmas, and migrations embedded per backend.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::error::{StoreError, StoreResult};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

pub type DbPool = Pool<Manager>;

/// Opens connections of the backend the URL names (never guessing from the driver's
/// willingness to open a file of that name).
#[derive(Debug)]
pub struct Manager {
    url: DbUrl,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        match self.url.backend {
            Backend::Sqlite => SqliteConnection::establish(&self.url.target).map(DbConn::Sqlite),
            Backend::Postgres => PgConnection::establish(&self.url.target).map(DbConn::Pg),
        }
        .map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    /// A connection whose transaction was left broken is not handed out again.
    fn has_broken(&self, conn: &mut DbConn) -> bool {
        use diesel::r2d2::R2D2Connection;
        match conn {
            DbConn::Sqlite(c) => c.is_broken(),
            DbConn::Pg(c) => c.is_broken(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database URL, checked: `sqlite://PATH` (or `sqlite::memory:`) or `postgres://...`.
#[derive(Debug, Clone)]
pub struct DbUrl {
    pub backend: Backend,
    /// What the driver receives: a file path for SQLite, the URL for PostgreSQL.
    pub target: String,
}

impl DbUrl {
    pub fn parse(url: &str) -> StoreResult<DbUrl> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(StoreError::UnsupportedUrl(url.to_string()));
            }
            return Ok(DbUrl {
                backend: Backend::Sqlite,
                target: path.to_string(),
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbUrl {
                backend: Backend::Postgres,
                target: url.to_string(),
            });
        }
        Err(StoreError::UnsupportedUrl(redact(url)))
    }
}

/// Removes a password from a URL before it is shown.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

diesel::define_sql_function! {
    /// Unicode lowercase: replaces SQLite's `lower()`, which lowercases only ASCII, so
    /// a case-insensitive filter compares as PostgreSQL's `lower()` and the in-memory
    /// evaluator do. No index is built on `lower()`, so replacing it changes no index.
    fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        if let DbConn::Sqlite(c) = conn {
            c.batch_execute(
                "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
            lower_utils::register_impl(c, |x: Option<String>| x.map(|s| s.to_lowercase()))
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Whether a failure to connect can pass by waiting: a server that is not up yet, or busy.
/// An unknown host, a missing database or role, refused credentials or a file that cannot
/// be opened will not, and fail at once.
fn worth_waiting_for(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "connection refused",
        "the database system is starting up",
        "the database system is shutting down",
        "the database system is in recovery mode",
        "too many clients",
        "timeout expired",
        "timed out",
        "no route to host",
        "network is unreachable",
        "server closed the connection",
        "database is locked",
    ]
    .iter()
    .any(|t| m.contains(t))
}

/// Connects, waiting up to `patience` (one log line per retry) for a server that is not up
/// yet, and failing at once, in one line, when waiting cannot help.
pub fn connect(url: &DbUrl, max_size: u32, patience: Duration) -> StoreResult<DbPool> {
    let manager = Manager { url: url.clone() };
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        let Err(e) = manager.connect() else { break };
        let why = e.to_string();
        let why = why.lines().next().unwrap_or_default().trim().to_string();
        if !worth_waiting_for(&why) || started.elapsed() + delay > patience {
            return Err(StoreError::Connect(why));
        }
        log::warn!(
            "the database is not reachable yet ({why}); trying again in {:.1}s",
            delay.as_secs_f64()
        );
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(4));
    }
    // A PostgreSQL server that restarted leaves every pooled connection dead: each is
    // checked (SELECT 1) as it is handed out, and a dead one replaced. A SQLite file does
    // not go away under its connections.
    let pool = Pool::builder()
        .max_size(max_size)
        .connection_timeout(Duration::from_secs(10))
        .test_on_check_out(url.backend == Backend::Postgres)
        // The first connection was checked above; the pool's own failures are errors it
        // returns, not lines it logs.
        .error_handler(Box::new(diesel::r2d2::NopErrorHandler))
        .connection_customizer(Box::new(SqlitePragmas))
        .build(manager)
        .map_err(|e| StoreError::Connect(e.to_string()))?;
    Ok(pool)
}

/// Applies pending migrations; returns how many ran.
/// How many embedded migrations this database has not had yet.
pub fn pending_migrations(conn: &mut DbConn) -> StoreResult<usize> {
    match conn {
        DbConn::Sqlite(c) => {
            MigrationHarness::pending_migrations(c, SQLITE_MIGRATIONS).map(|v| v.len())
        }
        DbConn::Pg(c) => {
            MigrationHarness::pending_migrations(c, POSTGRES_MIGRATIONS).map(|v| v.len())
        }
    }
    .map_err(|e| StoreError::Migration(e.to_string()))
}

pub fn migrate(pool: &DbPool) -> StoreResult<usize> {
    let mut conn = pool.get()?;
    let ran = match &mut *conn {
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConn::Pg(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
    }
    .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(ran)
}
