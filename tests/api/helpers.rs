//! spawn_app: the real application on port 0 against a fresh database.

use std::sync::Arc;

use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use scim_bridge::clock::{Clock, ShiftedClock};
use scim_bridge::config::{Secret, Settings};
use scim_bridge::startup::{Application, Core, Delivery};

pub const TOKEN: &str = "test-token-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A database made for one test and removed after it.
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    fn create(kind: Db) -> TestDb {
        match kind {
            Db::Sqlite => TestDb::Sqlite(tempfile::tempdir().expect("temp dir")),
            Db::Postgres => {
                // The harness reports PostgreSQL tests ignored without TEST_POSTGRES_URL;
                // one run anyway (--include-ignored) fails rather than pass having done
                // nothing, and so does a server that cannot be reached.
                let admin_url = std::env::var("TEST_POSTGRES_URL")
                    .expect("this test needs PostgreSQL: set TEST_POSTGRES_URL");
                let name = format!("scim_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::establish(&admin_url).unwrap_or_else(|e| {
                    panic!("TEST_POSTGRES_URL is set but PostgreSQL cannot be reached: {e}")
                });
                diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut conn)
                    .expect("create test database");
                TestDb::Postgres { admin_url, name }
            }
        }
    }

    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite(dir) => format!("sqlite://{}", dir.path().join("test.db").display()),
            TestDb::Postgres { admin_url, name } => {
                let mut u = url::Url::parse(admin_url).expect("TEST_POSTGRES_URL is a URL");
                u.set_path(&format!("/{name}"));
                u.to_string()
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            if let Ok(mut conn) = PgConnection::establish(admin_url) {
                let _ =
                    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .execute(&mut conn);
            }
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub port: u16,
    /// `/metrics`' own port, when `metrics_listen` is set.
    pub metrics_port: Option<u16>,
    pub client: reqwest::Client,
    pub token: String,
    handle: actix_web::dev::ServerHandle,
    pub db: Arc<TestDb>,
    pub settings: Settings,
    /// The app's use cases, its outbox's dispatcher among them.
    pub core: Arc<Core>,
    /// The app's clock: real time, moved ahead when a drain skips to a retry.
    pub clock: ShiftedClock,
}

pub fn settings_for(db: &TestDb) -> Settings {
    Settings {
        listen: "127.0.0.1:0".into(),
        database_url: db.url(),
        pool_size: 4,
        token: Some(Secret::new(TOKEN)),
        workers: 2,
        shutdown_timeout_secs: 5,
        ..Settings::default()
    }
}

/// Starts the app against a fresh database of this kind.
pub async fn spawn_app(kind: Db) -> TestApp {
    let db = Arc::new(TestDb::create(kind));
    let settings = settings_for(&db);
    spawn_with(db, settings).await
}

/// Starts the app with no outbox workers: the test delivers with `deliver_due` and `drain`.
pub async fn spawn_with(db: Arc<TestDb>, settings: Settings) -> TestApp {
    spawn_delivering(db, settings, Delivery::OnDemand).await
}

/// Starts the app with its own outbox workers, as `serve` runs it: for what needs them
/// (connectors in `sync` mode, leases between workers).
pub async fn spawn_with_workers(db: Arc<TestDb>, settings: Settings) -> TestApp {
    spawn_delivering(db, settings, Delivery::Background).await
}

async fn spawn_delivering(db: Arc<TestDb>, settings: Settings, delivery: Delivery) -> TestApp {
    let clock = ShiftedClock::new();
    let app = Application::build_with(settings.clone(), Arc::new(clock.clone()), delivery)
        .expect("the app builds");
    let port = app.port();
    let metrics_port = app.metrics_port();
    let handle = app.handle();
    let core = app.core.clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base: format!("http://127.0.0.1:{port}/scim/v2"),
        port,
        metrics_port,
        client: reqwest::Client::new(),
        token: TOKEN.into(),
        handle,
        db,
        settings,
        core,
        clock,
    }
}

impl TestApp {
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/scim+json")
                .body(b.to_string());
        }
        req.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.send(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Response {
        self.send(Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Response {
        self.send(Method::DELETE, path, None).await
    }

    /// Creates a user and returns its id.
    pub async fn create_user(&self, user_name: &str) -> String {
        let res = self.post("/Users", user(user_name)).await;
        assert_eq!(res.status(), 201, "create {user_name}");
        json(res).await["id"].as_str().expect("id").to_string()
    }

    pub async fn create_group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members
            .iter()
            .map(|m| serde_json::json!({"value": m}))
            .collect();
        let res = self
            .post(
                "/Groups",
                serde_json::json!({"schemas": [GROUP], "displayName": name, "members": members}),
            )
            .await;
        assert_eq!(res.status(), 201, "create group {name}");
        json(res).await["id"].as_str().expect("id").to_string()
    }

    /// Delivers what the outbox holds that is due now, once each, as a worker would;
    /// retries it schedules stay for later. Returns how many jobs were handled.
    pub async fn deliver_due(&self) -> usize {
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || core.dispatcher.deliver_due())
            .await
            .expect("delivery joined")
            .expect("the outbox delivers")
    }

    /// Moves the clock to when the next pending job is due, and delivers what is due then.
    pub async fn retry_due(&self) -> usize {
        let core = self.core.clone();
        let next = tokio::task::spawn_blocking(move || core.dispatcher.next_due())
            .await
            .expect("joined")
            .expect("the outbox answers");
        if let Some(at) = next {
            self.clock.advance_to(at);
        }
        self.deliver_due().await
    }

    /// Delivers until nothing is pending: each retry a failure schedules is made at once,
    /// the clock moved ahead to when it is due. What remains is delivered, dead or held.
    pub async fn drain(&self) {
        let mut idle = 0;
        for _ in 0..10_000 {
            let handled = self.deliver_due().await;
            let core = self.core.clone();
            let next = tokio::task::spawn_blocking(move || core.dispatcher.next_due())
                .await
                .expect("joined")
                .expect("the outbox answers");
            match next {
                None => return,
                Some(at) if at > self.clock.now() => self.clock.advance_to(at),
                // Due, and not claimed: it became due as the claim ran (so the next pass
                // takes it), or it never can be, which a drain cannot help.
                Some(_) if handled == 0 && idle > 0 => return,
                Some(_) => idle = if handled == 0 { idle + 1 } else { 0 },
            }
        }
        panic!("the outbox never drained");
    }

    /// Waits for the reconcile of `connector` started last to finish; its status.
    pub async fn reconciled(&self, connector: &str) -> Value {
        let (core, name) = (self.core.clone(), connector.to_string());
        tokio::task::spawn_blocking(move || core.reconcile.wait(&name))
            .await
            .expect("joined")
            .expect("a reconcile status")
    }

    /// Stops the server as SIGTERM would.
    pub async fn stop(self) -> Arc<TestDb> {
        self.handle.stop(true).await;
        self.db.clone()
    }
}

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

pub fn user(user_name: &str) -> Value {
    serde_json::json!({
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "active": true
    })
}

pub async fn json(res: Response) -> Value {
    let text = res.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts an RFC 7644 error body with this status and scimType.
pub async fn assert_scim_error(res: Response, status: u16, scim_type: Option<&str>) -> Value {
    assert_eq!(res.status().as_u16(), status);
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with("application/scim+json"), "content type {ct}");
    let body = json(res).await;
    assert_eq!(body["schemas"][0], ERROR, "{body}");
    assert_eq!(body["status"], status.to_string(), "{body}");
    assert_eq!(
        body.get("scimType").and_then(Value::as_str),
        scim_type,
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

/// Polls `check` until it gives a value, for what a test cannot drain: another process (a
/// bridge started as a binary, a restarted database), or the app's own outbox workers.
/// Fails the test after `within`.
pub async fn eventually<T>(
    what: &str,
    within: std::time::Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Runs each test once on SQLite and once on PostgreSQL; the PostgreSQL variant is
/// reported ignored when TEST_POSTGRES_URL is unset.
#[macro_export]
macro_rules! both_databases {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[allow(unused_imports)]
                use $crate::helpers::*;

                fn on_sqlite() {
                    $crate::helpers::block_on(async {
                        let $app = spawn_app(Db::Sqlite).await;
                        $body
                    })
                }

                fn on_postgres() {
                    $crate::helpers::block_on(async {
                        let $app = spawn_app(Db::Postgres).await;
                        $body
                    })
                }

                $crate::register!(on_sqlite, $crate::helpers::Needs::Nothing);
                $crate::register!(on_postgres, $crate::helpers::Needs::Postgres);
            }
        )*
    };
}

/// An emulator's `GET /_emulator/state`.
pub async fn emulator_state(http: &reqwest::Client, base: &str) -> Value {
    http.get(format!("{base}/_emulator/state"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
}

/// Sets an emulator's faults (`POST /_emulator/faults`).
pub async fn set_faults(http: &reqwest::Client, base: &str, faults: Value) {
    let res = http
        .post(format!("{base}/_emulator/faults"))
        .json(&faults)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
}

/// Starts the app with these settings changed; `None` when the database kind is not asked
/// for in this run.
pub async fn spawn_tweaked(kind: Db, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let db = Arc::new(TestDb::create(kind));
    let mut settings = settings_for(&db);
    tweak(&mut settings);
    spawn_with(db, settings).await
}

/// As [`spawn_tweaked`], with the app's own outbox workers.
pub async fn spawn_tweaked_with_workers(kind: Db, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let db = Arc::new(TestDb::create(kind));
    let mut settings = settings_for(&db);
    tweak(&mut settings);
    spawn_with_workers(db, settings).await
}

/// Runs each test once with `Db::Sqlite` and once with `Db::Postgres` bound to `$db`; the
/// PostgreSQL variant is reported ignored when TEST_POSTGRES_URL is unset.
#[macro_export]
macro_rules! each_database {
    ($($tests:tt)*) => {
        $crate::each_database_needing! { [Nothing, Postgres] $($tests)* }
    };
}

/// The same, with what each variant needs named (`[Nothing, Postgres]`).
#[macro_export]
macro_rules! each_database_needing {
    ([$on_sqlite:ident, $on_postgres:ident] $(async fn $name:ident($db:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                fn on_sqlite() {
                    $crate::helpers::block_on(async {
                        let $db = $crate::helpers::Db::Sqlite;
                        $body
                    })
                }
                fn on_postgres() {
                    $crate::helpers::block_on(async {
                        let $db = $crate::helpers::Db::Postgres;
                        $body
                    })
                }
                $crate::register!(on_sqlite, $crate::helpers::Needs::$on_sqlite);
                $crate::register!(on_postgres, $crate::helpers::Needs::$on_postgres);
            }
        )*
    };
}

/// Tests that are not one per database: `#[postgres]` before one says it needs PostgreSQL
/// (it is reported ignored without TEST_POSTGRES_URL).
#[macro_export]
macro_rules! tests {
    () => {};
    ($(#[doc = $doc:literal])* #[postgres] async fn $name:ident() $body:block $($rest:tt)*) => {
        $(#[doc = $doc])*
        fn $name() {
            $crate::helpers::block_on(async $body)
        }
        $crate::register!($name, $crate::helpers::Needs::Postgres);
        $crate::tests!($($rest)*);
    };
    ($(#[doc = $doc:literal])* async fn $name:ident() $body:block $($rest:tt)*) => {
        $(#[doc = $doc])*
        fn $name() {
            $crate::helpers::block_on(async $body)
        }
        $crate::register!($name, $crate::helpers::Needs::Nothing);
        $crate::tests!($($rest)*);
    };
    ($(#[doc = $doc:literal])* fn $name:ident() $body:block $($rest:tt)*) => {
        $(#[doc = $doc])*
        fn $name() $body
        $crate::register!($name, $crate::helpers::Needs::Nothing);
        $crate::tests!($($rest)*);
    };
}

/// Adds the function `$f` of the module it is written in to the tests this binary runs.
#[macro_export]
macro_rules! register {
    ($f:ident, $needs:expr) => {
        inventory::submit! {
            $crate::helpers::Case { module: module_path!(), name: stringify!($f), needs: $needs, run: $f }
        }
    };
}

/// What a test needs beyond this machine's own resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// A PostgreSQL server: TEST_POSTGRES_URL.
    Postgres,
    /// OpenLDAP's slapd (Debian's `slapd` package), which the tests start themselves.
    Slapd,
    /// Both.
    SlapdPostgres,
}

impl Needs {
    /// Whether the test must be reported ignored here: what it needs is missing, and this
    /// is not CI (where a missing PostgreSQL or slapd fails the run instead).
    pub fn missing(self, postgres: bool, slapd: bool) -> bool {
        let ci = std::env::var_os("CI").is_some();
        match self {
            Needs::Nothing => false,
            Needs::Postgres => !postgres,
            Needs::Slapd => !slapd && !ci,
            Needs::SlapdPostgres => !postgres || (!slapd && !ci),
        }
    }
}

/// The slapd the LDAP tests start: SLAPD_BIN, else Debian's.
pub fn slapd_bin() -> std::path::PathBuf {
    std::env::var_os("SLAPD_BIN")
        .map(Into::into)
        .unwrap_or_else(|| "/usr/sbin/slapd".into())
}

/// Like `each_database!`, for tests that also need slapd.
#[macro_export]
macro_rules! each_database_with_slapd {
    ($($tests:tt)*) => {
        $crate::each_database_needing! { [Slapd, SlapdPostgres] $($tests)* }
    };
}

/// One test of this binary, as the macros above register it.
pub struct Case {
    /// Where it was written (`api::outbox::a_test_named_as_a_sentence`).
    pub module: &'static str,
    pub name: &'static str,
    pub needs: Needs,
    pub run: fn(),
}

inventory::collect!(Case);

impl Case {
    /// The name the harness shows and filters by: its path without the binary's name.
    pub fn full_name(&self) -> String {
        let module = self.module.split_once("::").map_or("", |(_, rest)| rest);
        if module.is_empty() {
            self.name.to_string()
        } else {
            format!("{module}::{}", self.name)
        }
    }
}

/// Runs a test's body on a runtime of its own, as `#[tokio::test]` with two workers would.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}
