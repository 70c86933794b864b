//! spawn_app: the real application on port 0 against a fresh database.

use std::sync::Arc;

use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use scim_bridge::clock::SystemClock;
use scim_bridge::config::{Secret, Settings};
use scim_bridge::startup::Application;

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
    fn create(kind: Db) -> Option<TestDb> {
        match kind {
            Db::Sqlite => Some(TestDb::Sqlite(tempfile::tempdir().expect("temp dir"))),
            Db::Postgres => {
                // Without TEST_POSTGRES_URL the PostgreSQL half is not asked for (a plain
                // `cargo test`); with it, an unreachable server fails the test.
                let admin_url = std::env::var("TEST_POSTGRES_URL").ok()?;
                let name = format!("scim_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::establish(&admin_url).unwrap_or_else(|e| {
                    panic!("TEST_POSTGRES_URL is set but PostgreSQL cannot be reached: {e}")
                });
                diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut conn)
                    .expect("create test database");
                Some(TestDb::Postgres { admin_url, name })
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

/// Starts the app; `None` when the database kind is not asked for in this run.
pub async fn spawn_app(kind: Db) -> Option<TestApp> {
    let db = Arc::new(TestDb::create(kind)?);
    let settings = settings_for(&db);
    Some(spawn_with(db, settings).await)
}

pub async fn spawn_with(db: Arc<TestDb>, settings: Settings) -> TestApp {
    let app = Application::build(settings.clone(), Arc::new(SystemClock)).expect("the app builds");
    let port = app.port();
    let metrics_port = app.metrics_port();
    let handle = app.handle();
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

/// Runs each test once on SQLite and once on PostgreSQL (when TEST_POSTGRES_URL is set).
#[macro_export]
macro_rules! both_databases {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[allow(unused_imports)]
                use $crate::helpers::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_sqlite() {
                    let Some($app) = spawn_app(Db::Sqlite).await else { return };
                    $body
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_postgres() {
                    let Some($app) = spawn_app(Db::Postgres).await else { return };
                    $body
                }
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
pub async fn spawn_tweaked(kind: Db, tweak: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    let db = Arc::new(TestDb::create(kind)?);
    let mut settings = settings_for(&db);
    tweak(&mut settings);
    Some(spawn_with(db, settings).await)
}

/// Runs each test once on SQLite and once on PostgreSQL (when TEST_POSTGRES_URL is set),
/// with the database kind bound to the given name, for tests that start the app themselves.
#[macro_export]
macro_rules! each_database {
    ($(async fn $name:ident($db:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_sqlite() {
                    let $db = $crate::helpers::Db::Sqlite;
                    $body
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_postgres() {
                    let $db = $crate::helpers::Db::Postgres;
                    $body
                }
            }
        )*
    };
}
