//! Backfill and sync: a connector added to a bridge that already holds users receives them
//! all, once; `sync` queues what it never had (or everything) behind live changes.

use std::sync::Arc;

use serde_json::{json, Value};

use scim_bridge::config::{ConnectorConfig, ConnectorKind, Secret};
use scim_bridge::emulator::{serve, webhook::WebhookEmulator};

use crate::helpers::*;

const ADMIN: &str = "backfill-admin-token-0123456789";

fn start_hook() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (server, port) = serve(Arc::new(WebhookEmulator::new(None)), listener).expect("emulator");
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

async fn events(http: &reqwest::Client, hook: &str) -> Vec<Value> {
    emulator_state(http, hook).await["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// 200 users, and a group holding the first 10, in one /Bulk request.
async fn seed_200(app: &TestApp) -> Vec<String> {
    let mut ops: Vec<Value> = (0..200)
        .map(|i| {
            json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                   "data": user(&format!("bf{i}@example.com"))})
        })
        .collect();
    let members: Vec<Value> = (0..10)
        .map(|i| json!({"value": format!("bulkId:u{i}")}))
        .collect();
    ops.push(json!({"method": "POST", "path": "/Groups", "bulkId": "g",
                    "data": {"schemas": [GROUP], "displayName": "Backfilled", "members": members}}));
    let res = app
        .post(
            "/Bulk",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["Operations"]
        .as_array()
        .expect("ops")
        .iter()
        .map(|o| {
            assert_eq!(o["status"], "201", "{o}");
            o["location"]
                .as_str()
                .and_then(|l| l.rsplit('/').next())
                .expect("location")
                .to_string()
        })
        .collect()
}

fn admin(app: &TestApp, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(
            method,
            format!("http://127.0.0.1:{}/admin/v1{path}", app.port),
        )
        .bearer_auth(ADMIN)
}

async fn progress(app: &TestApp) -> Value {
    admin(app, reqwest::Method::GET, "/connectors/hook/sync")
        .send()
        .await
        .expect("progress")
        .json()
        .await
        .expect("json")
}

/// Drains the outbox: the latest run then has nothing left to deliver.
async fn until_finished(app: &TestApp) -> Value {
    app.drain().await;
    let p = progress(app).await;
    assert_eq!(p["state"], "finished", "the backfill did not finish: {p}");
    p
}

fn with_hook(settings: &mut scim_bridge::config::Settings, hook: &str) {
    settings.admin_token = Some(Secret::new(ADMIN));
    settings.outbox_base_delay_ms = 50;
    settings.outbox_max_delay_ms = 200;
    settings.connectors = vec![ConnectorConfig::new(
        "hook",
        ConnectorKind::Webhook,
        &format!("{hook}/events"),
    )];
}

crate::each_database! {
    async fn a_connector_added_after_200_users_gets_all_200_once_and_not_again_on_the_next_restart(db) {
        let http = reqwest::Client::new();
        let hook = start_hook();
        let first = spawn_app(db).await;
        let ids = seed_200(&first).await;
        let mut settings = first.settings.clone();
        let dbh = first.stop().await;
        with_hook(&mut settings, &hook);

        let app = spawn_with(dbh, settings.clone()).await;
        let p = until_finished(&app).await;
        // 200 users, the group, and its membership.
        assert_eq!(p["total"], 202, "{p}");
        assert_eq!(p["done"], 202, "{p}");
        assert_eq!(p["dead"], 0);
        let got = events(&http, &hook).await;
        let created: std::collections::BTreeSet<&str> = got
            .iter()
            .filter(|e| e["event"] == "user.created")
            .filter_map(|e| e["id"].as_str())
            .collect();
        assert_eq!(created.len(), 200, "each user once");
        assert_eq!(got.iter().filter(|e| e["event"] == "user.created").count(), 200, "and only once");
        assert!(ids[..200].iter().all(|id| created.contains(id.as_str())));
        let members = got.iter().find(|e| e["event"] == "group.members_replaced").expect("the membership");
        assert_eq!(members["payload"]["members"].as_array().map(Vec::len), Some(10));
        // Every user now stands synced in the target.
        let standing: Value = admin(&app, reqwest::Method::GET, &format!("/users/{}", ids[0]))
            .send().await.expect("standing").json().await.expect("json");
        assert_eq!(standing["connectors"][0]["state"], "synced", "{standing}");
        let dbh = app.stop().await;

        // The next start knows the connector: nothing is queued again.
        let app = spawn_with(dbh, settings).await;
        let again = progress(&app).await;
        assert_eq!(again["run"], p["run"], "no new run: {again}");
        let jobs: Value = admin(&app, reqwest::Method::GET, "/jobs").send().await.expect("jobs").json().await.expect("json");
        assert_eq!(jobs["jobs"], json!([]), "nothing queued on restart");
        assert_eq!(events(&http, &hook).await.len(), got.len());
    }

    async fn sync_queues_only_what_a_connector_never_had_and_with_all_a_fresh_copy(db) {
        let http = reqwest::Client::new();
        let hook = start_hook();
        let first = spawn_app(db).await;
        let mut settings = first.settings.clone();
        let dbh = first.stop().await;
        with_hook(&mut settings, &hook);
        settings.connectors[0].backfill = false;
        let app = spawn_with(dbh, settings).await;
        // Made while the connector was switched off for backfill: nothing to sync yet...
        let p = progress(&app).await;
        assert_eq!(p["state"], "never", "{p}");
        // ...users created now are live changes, and the connector has them.
        for i in 0..5 {
            assert_eq!(app.post("/Users", user(&format!("live{i}@example.com"))).await.status(), 201);
        }
        app.drain().await;
        assert_eq!(events(&http, &hook).await.len(), 5);
        // Nothing was never received: a sync queues nothing.
        let res = admin(&app, reqwest::Method::POST, "/connectors/hook/sync").send().await.expect("sync");
        assert_eq!(res.status(), 202);
        let p: Value = res.json().await.expect("json");
        assert_eq!(p["total"], 0, "{p}");
        // --all: a fresh copy of all five.
        let res = admin(&app, reqwest::Method::POST, "/connectors/hook/sync?all=true").send().await.expect("sync");
        assert_eq!(res.status(), 202);
        let p = until_finished(&app).await;
        assert_eq!((p["total"].clone(), p["done"].clone(), p["all"].clone()), (json!(5), json!(5), json!(true)), "{p}");
        assert_eq!(events(&http, &hook).await.len(), 10);
        // Clear errors for what cannot be synced.
        let res = admin(&app, reqwest::Method::POST, "/connectors/nope/sync").send().await.expect("sync");
        assert_eq!(res.status(), 404);
        let res = admin(&app, reqwest::Method::POST, "/connectors/hook/sync?all=maybe").send().await.expect("sync");
        assert_eq!(res.status(), 400);
    }

    async fn backfill_jobs_wait_behind_a_live_change_made_after_them(db) {
        let first = spawn_app(db).await;
        seed_200(&first).await;
        let mut settings = first.settings.clone();
        let _dbh = first.stop().await;
        with_hook(&mut settings, "http://127.0.0.1:9");
        // The use cases without the HTTP server or the workers: nothing is delivered.
        let core = scim_bridge::startup::Core::build(&settings, Arc::new(scim_bridge::clock::SystemClock)).expect("core");
        let p = core.backfill.queue("hook", false).expect("queued");
        assert_eq!(p["total"], 202);
        core.resources
            .create("User", user("late@example.com"), "http://x/scim/v2", &scim_bridge::scim::resource::Projection::default())
            .expect("created");
        use scim_bridge::store::JobStore;
        let claimed = core.store.claim_jobs("9999-01-01T00:00:00Z", "9999-01-01T00:00:01Z", 1, "test").expect("claim");
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].event.as_str(), "user.created");
        let payload: Value = serde_json::from_str(&claimed[0].payload).expect("payload");
        assert_eq!(payload["resource"]["userName"], "late@example.com", "the live change goes first");
    }
}

crate::tests! {
    fn the_sync_command_queues_and_says_how_many() {
        let dir = tempfile::tempdir().expect("dir");
        let config = dir.path().join("bridge.toml");
        std::fs::write(
            &config,
            "[[connector]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/events\"\n",
        )
        .expect("config");
        let db = format!("sqlite://{}", dir.path().join("s.db").display());
        // The database serve would have made; sync never makes one.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
            .args(["migrate", "--database-url", &db])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
            .args([
                "sync",
                "--connector",
                "hook",
                "--all",
                "--no-wait",
                "--database-url",
                &db,
                "--config",
            ])
            .arg(&config)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "0 jobs queued for 'hook' (everything)"
        );
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
            .args([
                "sync",
                "--connector",
                "nope",
                "--database-url",
                &db,
                "--config",
            ])
            .arg(&config)
            .output()
            .expect("runs");
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("no connector is named 'nope'"));
    }
}
