//! The bridge: changes reach a target through the outbox, in order, once, across outages,
//! with dead letters an administrator can see and retry.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use scim_bridge::clock::Clock;
use scim_bridge::config::{ConnectorConfig, ConnectorKind, Secret};
use scim_bridge::emulator::{serve, webhook::WebhookEmulator};

use crate::helpers::*;

pub const ADMIN: &str = "admin-token-abcdef";

pub struct Hooked {
    pub app: TestApp,
    pub emulator: String,
    pub admin: reqwest::Client,
}

impl Hooked {
    pub async fn admin_get(&self, path: &str) -> Value {
        let res = self
            .admin
            .get(format!("http://127.0.0.1:{}/admin/v1{path}", self.app.port))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 200, "{path}");
        res.json().await.expect("json")
    }

    pub async fn admin_post(&self, path: &str) -> reqwest::Response {
        self.admin
            .post(format!("http://127.0.0.1:{}/admin/v1{path}", self.app.port))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("sent")
    }

    pub async fn emulator_state(&self) -> Value {
        emulator_state(&self.admin, &self.emulator).await
    }

    pub async fn faults(&self, faults: Value) {
        set_faults(&self.admin, &self.emulator, faults).await;
    }

    pub async fn events(&self) -> Vec<Value> {
        self.emulator_state().await["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Drains the outbox; the emulator then holds exactly `n` events.
    pub async fn wait_events(&self, n: usize) -> Vec<Value> {
        self.app.drain().await;
        let events = self.events().await;
        assert_eq!(events.len(), n, "{n} events, each once: {events:?}");
        events
    }

    /// Drains the outbox; the admin API's `path` then answers what `check` accepts.
    pub async fn wait_for(
        &self,
        what: &str,
        check: impl FnOnce(&Value) -> bool,
        path: &str,
    ) -> Value {
        self.app.drain().await;
        self.expect_admin(what, check, path).await
    }

    /// The admin API's `path` answers, now, what `check` accepts.
    pub async fn expect_admin(
        &self,
        what: &str,
        check: impl FnOnce(&Value) -> bool,
        path: &str,
    ) -> Value {
        let v = self.admin_get(path).await;
        assert!(check(&v), "{what}: {v}");
        v
    }
}

pub async fn spawn_hooked(kind: Db) -> Hooked {
    let secret = "hook-secret-123";
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (server, port) = serve(
        std::sync::Arc::new(WebhookEmulator::new(Some(secret.into()))),
        listener,
    )
    .expect("emulator");
    tokio::spawn(server);
    let first = spawn_app(kind).await;
    let mut settings = first.settings.clone();
    let db = first.stop().await;
    settings.admin_token = Some(Secret::new(ADMIN));
    settings.outbox_base_delay_ms = 50;
    settings.outbox_max_delay_ms = 200;
    let mut hook = ConnectorConfig::new(
        "hook",
        ConnectorKind::Webhook,
        &format!("http://127.0.0.1:{port}/events"),
    );
    hook.secret = Some(secret.into());
    hook.timeout_secs = 5;
    settings.connectors = vec![hook];
    let app = spawn_with(db, settings).await;
    Hooked {
        app,
        emulator: format!("http://127.0.0.1:{port}"),
        admin: reqwest::Client::new(),
    }
}

/// Runs each test on both databases with an app whose webhook connector reaches an emulator.
#[macro_export]
macro_rules! with_hook {
    ($(async fn $name:ident($h:ident) $body:block)*) => {
        $(
            mod $name {
                use super::*;
                fn on_sqlite() {
                    $crate::helpers::block_on(async {
                        let $h = $crate::outbox::spawn_hooked($crate::helpers::Db::Sqlite).await;
                        $body
                    })
                }
                fn on_postgres() {
                    $crate::helpers::block_on(async {
                        let $h = $crate::outbox::spawn_hooked($crate::helpers::Db::Postgres).await;
                        $body
                    })
                }
                $crate::register!(on_sqlite, $crate::helpers::Needs::Nothing);
                $crate::register!(on_postgres, $crate::helpers::Needs::Postgres);
            }
        )*
    };
}

fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn patch(app: &TestApp, path: &str, ops: Value) -> reqwest::Response {
    app.send(Method::PATCH, path, Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}))).await
}

with_hook! {
    async fn a_user_created_updated_deactivated_and_deleted_reaches_the_target_in_order(h) {
        let app = &h.app;
        let id = app.create_user("hook1@example.com").await;
        let res = app.put(&format!("/Users/{id}"), json!({"schemas": [USER], "userName": "hook1@example.com", "title": "Boss"})).await;
        assert_eq!(res.status(), 200);
        assert_eq!(patch(app, &format!("/Users/{id}"), json!([{"op": "Replace", "path": "active", "value": "False"}])).await.status(), 200);
        let events = h.wait_events(3).await;
        assert_eq!(names(&events), vec!["user.created", "user.updated", "user.deactivated"]);
        assert!(events.iter().all(|e| e["id"] == id.as_str()));
        assert_eq!(events[1]["payload"]["changes"]["added"]["title"], "Boss");
        assert_eq!(events[1]["payload"]["changes"]["removed"]["name.familyName"], "Jensen");
        assert_eq!(events[2]["payload"]["changes"]["replaced"]["active"], json!({"old": true, "new": false}));
        assert!(events[0]["payload"]["resource"].get("password").is_none());
        let standing = h.wait_for("synced", |v| v["connectors"][0]["lastVersion"] == 3, "/users/hook1@example.com").await;
        assert_eq!(standing["id"], id.as_str());
        assert_eq!(standing["connectors"][0]["state"], "synced");
        assert_eq!(standing["connectors"][0]["targetId"], id.as_str());
        assert_eq!(app.delete(&format!("/Users/{id}")).await.status(), 204);
        let events = h.wait_events(4).await;
        assert_eq!(names(&events)[3], "user.deleted");
        let state = h.emulator_state().await;
        assert_eq!(state["calls"]["receive"], 4, "each change delivered once");
    }

    async fn a_target_down_for_a_while_receives_every_change_once_in_order_with_queued_updates_as_one(h) {
        let app = &h.app;
        h.faults(json!({"down": true})).await;
        let id = app.create_user("down@example.com").await;
        for t in ["T1", "T2", "T3"] {
            assert_eq!(patch(app, &format!("/Users/{id}"), json!([{"op": "replace", "path": "title", "value": t}])).await.status(), 200);
        }
        // Two attempts, the second when the first's retry is due; then the target is back.
        h.app.deliver_due().await;
        h.app.retry_due().await;
        let jobs = h.expect_admin("a failed attempt", |v| v["jobs"][0]["attempts"].as_i64().unwrap_or(0) >= 2, "/jobs?state=pending").await;
        assert_eq!(jobs["jobs"].as_array().expect("jobs").len(), 4);
        assert!(jobs["jobs"][0]["lastError"].as_str().expect("error").contains("503"));
        let health = h.admin_get("/connectors").await;
        assert_eq!(health["connectors"][0]["queueDepth"], 4);
        assert!(health["connectors"][0]["lastError"].as_str().is_some());
        h.faults(json!({"down": false})).await;
        // The three updates queued behind the create are coalesced: the target gets the
        // latest document once, with the change set from before the first to after the last.
        let events = h.wait_events(2).await;
        assert_eq!(names(&events), vec!["user.created", "user.updated"]);
        assert_eq!(events[1]["payload"]["resource"]["title"], "T3");
        assert_eq!(events[1]["payload"]["version"], 4);
        assert_eq!(events[1]["payload"]["changes"]["added"]["title"], "T3");
        h.wait_for("an empty queue", |v| v["connectors"][0]["queueDepth"] == 0, "/connectors").await;
        let standing = h.admin_get("/users/down@example.com").await;
        assert_eq!(standing["connectors"][0]["lastVersion"], 4);
        h.app.drain().await;
        assert_eq!(h.events().await.len(), 2, "nothing twice");
    }

    async fn a_permanent_error_ends_dead_visible_and_is_delivered_after_a_retry(h) {
        let app = &h.app;
        h.faults(json!({"fail_next": {"count": 1, "status": 422, "error": "email already used"}})).await;
        let id = app.create_user("dead@example.com").await;
        let dead = h.wait_for("a dead job", |v| v["jobs"].as_array().is_some_and(|j| !j.is_empty()), "/jobs?state=dead&connector=hook").await;
        assert!(dead["jobs"][0]["lastError"].as_str().expect("error").contains("email already used"));
        let standing = h.admin_get(&format!("/users/{id}")).await;
        assert_eq!(standing["connectors"][0]["state"], "dead");
        assert_eq!(h.admin_get("/connectors").await["connectors"][0]["dead"], 1);
        let res = h.admin_post("/connectors/hook/retry").await;
        assert_eq!(res.status(), 200);
        let events = h.wait_events(1).await;
        assert_eq!(names(&events), vec!["user.created"]);
        h.wait_for("synced", |v| v["connectors"][0]["state"] == "synced", &format!("/users/{id}")).await;
        assert_eq!(h.admin_post("/jobs/99999/retry").await.status(), 404);
    }

    async fn group_changes_reach_the_target_as_member_events(h) {
        let app = &h.app;
        let u = app.create_user("gm@example.com").await;
        let g = app.create_group("Hooked Group", &[]).await;
        assert_eq!(patch(app, &format!("/Groups/{g}"), json!([{"op": "add", "path": "members", "value": [{"value": u}]}])).await.status(), 204);
        assert_eq!(patch(app, &format!("/Groups/{g}"), json!([{"op": "replace", "path": "displayName", "value": "Renamed"}])).await.status(), 204);
        assert_eq!(patch(app, &format!("/Groups/{g}"), json!([{"op": "remove", "path": format!("members[value eq \"{u}\"]")}])).await.status(), 204);
        let all = h.wait_events(5).await;
        // Order is kept per resource; the user's and the group's jobs may interleave.
        let events: Vec<Value> = all.iter().filter(|e| e["id"] == g.as_str()).cloned().collect();
        assert_eq!(names(&events), vec!["group.created", "group.members_added", "group.renamed", "group.members_removed"]);
        assert_eq!(events[1]["payload"]["members"], json!([u]));
        assert_eq!(events[3]["payload"]["members"], json!([u]));
        let standing = h.admin_get("/groups/Renamed").await;
        assert_eq!(standing["id"], g.as_str());
    }

    async fn admin_and_scim_tokens_do_not_open_each_others_doors(h) {
        let app = &h.app;
        let res = h.admin.get(format!("http://127.0.0.1:{}/admin/v1/connectors", app.port)).bearer_auth(&app.token).send().await.expect("sent");
        assert_scim_error(res, 401, None).await;
        let res = h.admin.get(format!("{}/Users", app.base)).bearer_auth(ADMIN).send().await.expect("sent");
        assert_scim_error(res, 401, None).await;
        let res = h.admin.get(format!("http://127.0.0.1:{}/admin/v1/users/nobody", app.port)).bearer_auth(ADMIN).send().await.expect("sent");
        assert_scim_error(res, 404, None).await;
    }
}

/// A bridge with its own database delivering to `hook`; returns it.
async fn bridge_to(kind: Db, hook: &str) -> TestApp {
    let first = spawn_app(kind).await;
    let mut settings = first.settings.clone();
    let db = first.stop().await;
    let mut c = ConnectorConfig::new("hook", ConnectorKind::Webhook, hook);
    c.timeout_secs = 5;
    settings.connectors = vec![c];
    settings.outbox_base_delay_ms = 50;
    spawn_with(db, settings).await
}

crate::tests! {
    async fn two_bridges_with_their_own_databases_never_send_the_same_idempotency_key() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let (server, port) =
            serve(std::sync::Arc::new(WebhookEmulator::new(None)), listener).expect("emulator");
        tokio::spawn(server);
        let hook = format!("http://127.0.0.1:{port}/events");
        let base = format!("http://127.0.0.1:{port}");
        // One on SQLite and one on PostgreSQL when it is asked for; two SQLite files otherwise.
        let a = bridge_to(Db::Sqlite, &hook).await;
        let b = match std::env::var_os("TEST_POSTGRES_URL") {
            Some(_) => bridge_to(Db::Postgres, &hook).await,
            None => bridge_to(Db::Sqlite, &hook).await,
        };
        // Each database's first job: row id 1 in both.
        a.create_user("from-a@example.com").await;
        b.create_user("from-b@example.com").await;
        a.drain().await;
        b.drain().await;
        let s = emulator_state(&reqwest::Client::new(), &base).await;
        let events = s["events"].as_array().cloned().unwrap_or_default();
        assert_eq!(events.len(), 2, "{s}");
        let keys: Vec<&str> = events
            .iter()
            .filter_map(|e| e["idempotencyKey"].as_str())
            .collect();
        assert_ne!(keys[0], keys[1]);
        assert!(
            keys.iter().all(|k| uuid::Uuid::parse_str(k).is_ok()),
            "{keys:?}"
        );
        assert!(
            s["calls"].get("duplicate").is_none(),
            "no change dropped as a repeat: {s}"
        );
    }
}

with_hook! {
    async fn a_dead_job_holds_back_its_resources_later_jobs_until_retried_then_sends_the_current_state(h) {
        let id = h.app.create_user("resync@example.com").await;
        h.wait_events(1).await;
        h.faults(json!({"fail_next": {"count": 1, "status": 400, "error": "titles are managed elsewhere"}})).await;
        let title = |t: &str| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": t}]});
        assert_eq!(h.app.send(Method::PATCH, &format!("/Users/{id}"), Some(title("Old"))).await.status(), 200);
        let dead = h.wait_for("a dead job", |v| v["jobs"].as_array().is_some_and(|j| j.len() == 1), "/jobs?state=dead").await;
        let (job, died_created) = (dead["jobs"][0]["id"].as_i64().expect("id"), dead["jobs"][0]["created"].as_str().expect("created").to_string());
        // A newer change of the same user waits behind the dead one (order per resource),
        // in a state of its own; other users' changes go on.
        assert_eq!(h.app.send(Method::PATCH, &format!("/Users/{id}"), Some(title("New"))).await.status(), 200);
        h.app.create_user("bystander@example.com").await;
        h.wait_events(2).await;
        let held_back = h.admin_get("/jobs?state=pending").await;
        assert_eq!(held_back["jobs"].as_array().map(Vec::len), Some(1), "{held_back}");
        assert_eq!(held_back["jobs"][0]["state"], "blocked", "{held_back}");
        let connectors = h.admin_get("/connectors").await;
        assert_eq!((connectors["connectors"][0]["blocked"].clone(), connectors["connectors"][0]["dead"].clone()), (json!(1), json!(1)), "{connectors}");
        let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", h.app.port)).await.expect("metrics").text().await.expect("text");
        assert!(metrics.contains("scim_bridge_outbox_jobs{connector=\"hook\",state=\"blocked\"} 1"), "{metrics}");
        assert!(metrics.contains("scim_bridge_outbox_jobs{connector=\"hook\",state=\"pending\"} 0"), "{metrics}");
        // The user's standing: dead while the failure holds its later change back.
        let user = h.admin_get(&format!("/users/{id}")).await;
        assert_eq!(user["connectors"][0]["state"], "dead", "{user}");
        assert!(user["connectors"][0]["lastError"].as_str().expect("error").contains("titles are managed elsewhere"));
        // Retried while the target is down, the job waits with a fresh age ...
        h.app.clock.advance(chrono::Duration::milliseconds(20));
        h.faults(json!({"down": true})).await;
        assert_eq!(h.admin_post(&format!("/jobs/{job}/retry")).await.status(), 200);
        h.app.deliver_due().await;
        let pending = h.expect_admin("pending", |v| v["jobs"].as_array().is_some_and(|j| j.len() == 2), "/jobs?state=pending").await;
        let retried = pending["jobs"].as_array().expect("jobs").iter().find(|j| j["id"] == job).expect("the retried job").clone();
        assert!(retried["created"].as_str().expect("created") > died_created.as_str(), "{pending}");
        assert_eq!(retried["state"], "pending");
        // ... and then delivers the current state, not the payload that died, with the
        // change that waited behind it folded in: the target gets the user once, as it is.
        h.faults(json!({"down": false})).await;
        let events = h.wait_events(3).await;
        let last = &events[2]["payload"];
        assert_eq!(last["event"], "user.updated");
        assert_eq!(last["id"], id.as_str());
        assert_eq!(last["resource"]["title"], "New", "{last}");
        let user = h.wait_for("synced", |v| v["connectors"][0]["state"] == "synced", &format!("/users/{id}")).await;
        assert!(user["connectors"][0]["lastError"].is_null());
    }

    async fn a_deleted_user_stays_visible_to_administrators_with_where_the_delete_reached(h) {
        let id = h.app.create_user("leaver@example.com").await;
        h.wait_events(1).await;
        assert_eq!(h.app.delete(&format!("/Users/{id}")).await.status(), 204);
        let user = h.wait_for("deleted", |v| v["connectors"][0]["state"] == "deleted", &format!("/users/{id}")).await;
        assert_eq!(user["deleted"], true);
        assert_eq!(user["id"], id.as_str());
        let res = h.admin.get(format!("http://127.0.0.1:{}/admin/v1/users/nobody-at-all", h.app.port)).bearer_auth(ADMIN).send().await.expect("sent");
        assert_eq!(res.status(), 404);
    }
}

/// Deliveries slower than the lease, two workers: each job still reaches the target once.
async fn slow_deliveries_outlast_their_lease(kind: Db) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (server, port) =
        serve(std::sync::Arc::new(WebhookEmulator::new(None)), listener).expect("emulator");
    tokio::spawn(server);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    set_faults(&http, &base, json!({"latency_ms": 1500})).await;
    // Two workers of the app's own: the leases between them are what is tested.
    let app = spawn_tweaked_with_workers(kind, |s| {
        s.outbox_lease_secs = 1;
        s.outbox_workers = 2;
        let mut c = ConnectorConfig::new("hook", ConnectorKind::Webhook, &format!("{base}/events"));
        c.timeout_secs = 10;
        s.connectors = vec![c];
    })
    .await;
    for i in 0..3 {
        app.create_user(&format!("slow{i}@example.com")).await;
    }
    eventually("three deliveries", Duration::from_secs(30), async || {
        let s = emulator_state(&http, &base).await;
        s["events"]
            .as_array()
            .is_some_and(|e| e.len() == 3)
            .then_some(())
    })
    .await;
    // The passing of time is what is tested: long enough for a lost lease to have shown
    // as a second delivery.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let s = emulator_state(&http, &base).await;
    assert_eq!(
        s["calls"]["receive"], 3,
        "each job delivered once: {}",
        s["calls"]
    );
    assert!(s["calls"].get("duplicate").is_none(), "{}", s["calls"]);
}

crate::each_database! {
    async fn deliveries_slower_than_the_lease_are_not_taken_over(db) {
        slow_deliveries_outlast_their_lease(db).await;
    }
}

crate::each_database! {
    async fn a_target_down_for_six_hours_loses_nothing_and_gets_the_change_once_it_is_back(db) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let (server, port) = serve(std::sync::Arc::new(WebhookEmulator::new(None)), listener).expect("emulator");
        tokio::spawn(server);
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        set_faults(&http, &base, json!({"down": true})).await;
        // The default retry settings, as an operator gets them.
        let first = spawn_app(db).await;
        let mut settings = first.settings.clone();
        let dbh = first.stop().await;
        settings.admin_token = Some(Secret::new(ADMIN));
        settings.connectors = vec![ConnectorConfig::new("hook", ConnectorKind::Webhook, &format!("{base}/events"))];
        let app = spawn_with(dbh, settings).await;
        let admin = |path: &str| {
            let req = http.get(format!("http://127.0.0.1:{}/admin/v1{path}", app.port)).bearer_auth(ADMIN);
            async move { req.send().await.expect("sent").json::<Value>().await.expect("json") }
        };
        let id = app.create_user("outage@example.com").await;
        // Six hours of 503s, each retry made when it is due (the clock skips ahead to it).
        let began = app.clock.now();
        let mut attempts = 0;
        while app.clock.now() - began < chrono::Duration::hours(6) {
            assert!(attempts < 1000, "too many attempts for six hours");
            attempts += app.retry_due().await;
            let jobs = admin("/jobs?state=pending").await;
            let job = &jobs["jobs"][0];
            let next = scim_bridge::clock::parse_time(job["nextAttemptAt"].as_str().expect("next")).expect("time");
            assert!(next - app.clock.now() <= chrono::Duration::minutes(6), "never more than a few minutes between attempts: {job}");
        }
        assert!(attempts >= 60, "retried all along: {attempts} attempts");
        let jobs = admin("/jobs?state=pending").await;
        let job = &jobs["jobs"][0];
        assert_eq!(job["resourceId"], id.as_str());
        assert_eq!(job["retryingSince"], job["created"], "{job}");
        assert!(job["lastError"].as_str().is_some_and(|e| e.contains("503")), "{job}");
        assert_eq!(admin("/jobs?state=dead").await["jobs"], json!([]), "nothing died");
        // Anyone may ask /readyz: it counts the failing connector, and names nothing.
        let ready = http.get(format!("http://127.0.0.1:{}/readyz", app.port)).send().await.expect("readyz").text().await.expect("text");
        let ready_json: Value = serde_json::from_str(&ready).expect("json");
        assert_eq!(ready_json["failingConnectors"], 1, "{ready}");
        assert!(!ready.contains(&base) && !ready.contains("hook"), "no target or connector named: {ready}");
        // The target is back: the change arrives, once.
        set_faults(&http, &base, json!({"down": false})).await;
        app.drain().await;
        let s = emulator_state(&http, &base).await;
        let events = s["events"].as_array().cloned().unwrap_or_default();
        assert_eq!(events.len(), 1, "{s}");
        assert_eq!(events[0]["event"], "user.created");
        assert_eq!(admin("/jobs").await["jobs"], json!([]));
    }
}

with_hook! {
    async fn a_job_whose_payload_cannot_be_read_dies_as_the_bridges_failure_and_sends_nothing(h) {
        use scim_bridge::store::BackfillStore;
        let id = h.app.create_user("readable@example.com").await;
        h.wait_events(1).await;
        let now = scim_bridge::clock::format_time(chrono::Utc::now());
        let store = &h.app.core.store;
        let run = store.start_run("hook", false, &now).expect("run");
        let broken = scim_bridge::store::NewJob {
            connector: "hook".into(),
            resource_type: scim_bridge::model::ResourceKind::User,
            resource_id: id.clone(),
            event: scim_bridge::model::Event::UserUpdated,
            version: 1,
            payload: "{\"event\": \"user.updated\", \"changes\": 7".into(),
            secret: None,
            wait_token: None,
            priority: 0,
        };
        store.queue_backfill(run, &[broken], &now).expect("queued");
        h.app.drain().await;
        assert_eq!(h.events().await.len(), 1, "nothing more reached the target");
        let dead: Value = h.admin_get("/jobs?state=dead").await;
        let job = &dead["jobs"][0];
        assert!(job["lastError"].as_str().is_some_and(|e| e.contains("payload cannot be read")), "{dead}");
        assert_eq!(job["failure"], "bridge", "{dead}");
    }
}

with_hook! {
    async fn a_retry_and_a_discard_of_one_dead_job_racing_leave_exactly_one_of_them_done(h) {
        let id = h.app.create_user("contested@example.com").await;
        h.wait_events(1).await;
        h.faults(json!({"fail_next": {"count": 1, "status": 400, "error": "refused once"}})).await;
        let title = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "T"}]});
        assert_eq!(h.app.send(Method::PATCH, &format!("/Users/{id}"), Some(title)).await.status(), 200);
        let dead = h.wait_for("a dead job", |v| v["jobs"].as_array().is_some_and(|j| j.len() == 1), "/jobs?state=dead").await;
        let job = dead["jobs"][0]["id"].as_i64().expect("id");
        let h = std::sync::Arc::new(h);
        let racers: Vec<_> = ["retry", "discard", "retry", "discard"].into_iter().map(|what| {
            let h = h.clone();
            tokio::spawn(async move { (what, h.admin_post(&format!("/jobs/{job}/{what}")).await.status().as_u16()) })
        }).collect();
        let mut won = Vec::new();
        for r in racers {
            let (what, status) = r.await.expect("joined");
            assert!(status == 200 || status == 404, "{what}: {status}");
            if status == 200 {
                won.push(what);
            }
        }
        assert_eq!(won.len(), 1, "exactly one took the dead job: {won:?}");
        let h = std::sync::Arc::try_unwrap(h).ok().expect("sole owner");
        h.app.drain().await;
        assert_eq!(h.admin_get("/jobs?state=dead").await["jobs"], json!([]));
        assert_eq!(h.admin_get("/jobs?state=pending").await["jobs"], json!([]));
        let titles = h.events().await.iter().filter(|e| e["payload"]["resource"]["title"] == "T").count();
        assert_eq!(titles, usize::from(won[0] == "retry"), "the change reached the target only if retried");
    }
}
