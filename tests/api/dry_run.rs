//! `mode = "dry_run"`: every call a connector would make is computed and recorded, per job
//! and per user, and none is made; switched to async, the connector receives everything
//! from the current state, not from the recorded calls.

use std::sync::Arc;

use serde_json::{json, Value};

use scim_bridge::config::{ConnectorConfig, ConnectorKind, Mode, Secret};
use scim_bridge::emulator::{pyramid::PyramidEmulator, serve, Credentials};

use crate::helpers::*;

const ADMIN: &str = "dry-run-admin-token-0123456789";

fn admin(app: &TestApp, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/admin/v1{path}", app.port))
        .bearer_auth(ADMIN)
}

async fn get_json(req: reqwest::RequestBuilder) -> Value {
    req.send().await.expect("sent").json().await.expect("json")
}

/// Drains the outbox; then `check` holds.
async fn until(app: &TestApp, what: &str, mut check: impl AsyncFnMut() -> bool) {
    app.drain().await;
    assert!(check().await, "once the outbox is drained, {what}");
}

/// A Pyramid emulator, and the settings of an app with one async connector `py` to it
/// (and an admin token), on a database ready for them.
async fn with_pyramid(db: Db) -> (String, scim_bridge::config::Settings, Arc<TestDb>) {
    with_pyramid_via(db, false).await
}

/// The same, through the built-in connector or Pyramid's example definition.
async fn with_pyramid_via(
    db: Db,
    file: bool,
) -> (String, scim_bridge::config::Settings, Arc<TestDb>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let creds = Credentials::new(Some("svc".into()), Some("svc-pass".into()));
    let (server, port) = serve(Arc::new(PyramidEmulator::new(creds)), listener).expect("emulator");
    tokio::spawn(server);
    let pyramid = format!("http://127.0.0.1:{port}");
    let first = spawn_app(db).await;
    let mut settings = first.settings.clone();
    let dbh = first.stop().await;
    settings.admin_token = Some(Secret::new(ADMIN));
    settings.outbox_base_delay_ms = 50;
    settings.outbox_max_delay_ms = 200;
    let mut c = ConnectorConfig::new("py", ConnectorKind::Pyramid, &format!("{pyramid}/API2"))
        .with_credentials("svc", "svc-pass");
    if file {
        crate::vendors::described(&mut c, "pyramid", "/API2");
    }
    settings.connectors = vec![c];
    (pyramid, settings, dbh)
}

crate::each_database! {
    async fn dry_run_records_every_call_sends_nothing_and_async_then_delivers_the_current_state(db) {
        dry_run_then_async(db, false).await;
    }

    async fn dry_run_holds_the_same_through_pyramids_example_definition(db) {
        dry_run_then_async(db, true).await;
    }

    async fn a_user_deleted_while_its_connector_was_in_dry_run_is_deleted_in_the_target_once_it_is_live_again(db) {
        let http = reqwest::Client::new();
        let (pyramid, mut settings, dbh) = with_pyramid(db).await;

        // Live: three users reach Pyramid.
        let app = spawn_with(dbh, settings.clone()).await;
        let mut ids = Vec::new();
        for name in ["keep@example.com", "gone@example.com", "off@example.com"] {
            let res = app.post("/Users", user(name)).await;
            assert_eq!(res.status(), 201);
            ids.push(json(res).await["id"].as_str().expect("id").to_string());
        }
        until(&app, "Pyramid has the three users", async || {
            emulator_state(&http, &pyramid).await["users"].as_array().is_some_and(|u| u.len() == 3)
        }).await;
        let dbh = app.stop().await;

        // In dry run: one is deleted, one deactivated; nothing reaches Pyramid.
        settings.connectors[0].mode = Mode::DryRun;
        let app = spawn_with(dbh, settings.clone()).await;
        assert_eq!(app.delete(&format!("/Users/{}", ids[1])).await.status(), 204);
        let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}]});
        assert_eq!(app.send(reqwest::Method::PATCH, &format!("/Users/{}", ids[2]), Some(off)).await.status(), 200);
        app.drain().await;
        let state = emulator_state(&http, &pyramid).await;
        assert_eq!(state["deleted"], json!([]), "{state}");
        let dbh = app.stop().await;

        // Live again: the delete and the deactivation made in between reach Pyramid.
        settings.connectors[0].mode = Mode::Async;
        let app = spawn_with(dbh, settings).await;
        app.drain().await;
        let state = emulator_state(&http, &pyramid).await;
        assert_eq!(state["deleted"], json!([ids[1]]), "{state}");
        let users = state["users"].as_array().cloned().unwrap_or_default();
        assert_eq!(users.len(), 2, "{state}");
        let enabled = |id: &str| users.iter().find(|u| u["id"] == id).map(|u| u["enabled"].clone());
        assert_eq!(enabled(&ids[0]), Some(json!(true)));
        assert_eq!(enabled(&ids[2]), Some(json!(false)), "the deactivation arrives too");
        assert_eq!(get_json(admin(&app, "/jobs?state=dead")).await["jobs"], json!([]));
        let gone = get_json(admin(&app, &format!("/users/{}", ids[1]))).await;
        assert_eq!(gone["connectors"][0]["state"], "deleted", "{gone}");
    }
}

/// Three users in dry run (one renamed, one deleted), then async.
async fn dry_run_then_async(db: Db, file: bool) {
    let http = reqwest::Client::new();
    let (pyramid, mut settings, dbh) = with_pyramid_via(db, file).await;
    settings.connectors[0].mode = Mode::DryRun;
    let app = spawn_with(dbh, settings.clone()).await;

    let mut ids = Vec::new();
    for name in ["dry1@example.com", "dry2@example.com", "dry3@example.com"] {
        let res = app.post("/Users", user(name)).await;
        assert_eq!(res.status(), 201);
        ids.push(json(res).await["id"].as_str().expect("id").to_string());
    }
    let rename = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "name.givenName", "value": "Renamed"}]});
    assert_eq!(
        app.send(
            reqwest::Method::PATCH,
            &format!("/Users/{}", ids[0]),
            Some(rename)
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        app.send(reqwest::Method::DELETE, &format!("/Users/{}", ids[2]), None)
            .await
            .status(),
        204
    );
    until(&app, "every job is recorded", async || {
        let c = get_json(admin(&app, "/connectors")).await;
        c["connectors"][0]["queueDepth"] == 0
    })
    .await;

    // Per job: the calls each would have made.
    let jobs = get_json(admin(&app, "/jobs?state=dry_run")).await;
    let jobs = jobs["jobs"].as_array().cloned().unwrap_or_default();
    assert_eq!(jobs.len(), 5, "3 creates, an update, a delete: {jobs:?}");
    let create = jobs
        .iter()
        .find(|j| j["event"] == "user.created" && j["resourceId"] == ids[1].as_str())
        .expect("a create");
    assert_eq!(create["calls"][0]["call"], "create", "{create}");
    assert_eq!(
        create["calls"][0]["fields"]["principalName"],
        "dry2@example.com"
    );
    let update = jobs
        .iter()
        .find(|j| j["event"] == "user.updated")
        .expect("the update");
    assert_eq!(update["calls"][0]["call"], "update", "{update}");
    assert_eq!(update["calls"][0]["changes"][0]["field"], "firstName");
    assert_eq!(update["calls"][0]["changes"][0]["value"], "Renamed");
    // Per user: where it stands, and what its changes would have called.
    let standing = get_json(admin(&app, &format!("/users/{}", ids[0]))).await;
    let py = &standing["connectors"][0];
    assert_eq!(py["state"], "dry_run", "{standing}");
    assert_eq!(py["dryRun"].as_array().map(Vec::len), Some(2), "{standing}");
    // Nothing reached Pyramid: no user, not even a sign-in.
    let state = emulator_state(&http, &pyramid).await;
    assert_eq!(state["users"], json!([]));
    assert_eq!(state["tokensIssued"], 0);
    assert_eq!(state["requests"], json!([]));
    let dbh = app.stop().await;

    // Switched to async: the users as they stand now, not the recorded calls.
    settings.connectors[0].mode = Mode::Async;
    let app = spawn_with(dbh, settings).await;
    until(&app, "Pyramid has the two remaining users", async || {
        emulator_state(&http, &pyramid).await["users"]
            .as_array()
            .is_some_and(|u| u.len() == 2)
    })
    .await;
    let state = emulator_state(&http, &pyramid).await;
    let users = state["users"].as_array().cloned().unwrap_or_default();
    let renamed = users
        .iter()
        .find(|u| u["principalName"] == "dry1@example.com")
        .expect("dry1");
    assert_eq!(renamed["firstName"], "Renamed");
    assert!(
        users
            .iter()
            .all(|u| u["principalName"] != "dry3@example.com"),
        "the deleted user never arrives"
    );
    until(&app, "the queue is empty", async || {
        get_json(admin(&app, "/connectors")).await["connectors"][0]["queueDepth"] == 0
    })
    .await;
    let jobs = get_json(admin(&app, "/jobs?state=dry_run")).await;
    assert_eq!(jobs["jobs"], json!([]), "the dry run's records are gone");
    let standing = get_json(admin(&app, &format!("/users/{}", ids[0]))).await;
    assert_eq!(standing["connectors"][0]["state"], "synced", "{standing}");
}
