//! The deletion brake: past a connector's limit of deactivations and deletions within its
//! window, further ones are held (not delivered, not dead) until an administrator releases
//! or discards them; nothing else about the connector stops.

use std::sync::Arc;

use serde_json::{json, Value};

use scim_bridge::config::{ConnectorConfig, ConnectorKind, Secret};
use scim_bridge::emulator::{serve, webhook::WebhookEmulator};

use crate::helpers::*;

const ADMIN: &str = "brake-admin-token-0123456789";

fn start_hook() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (server, port) = serve(Arc::new(WebhookEmulator::new(None)), listener).expect("emulator");
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

async fn braked_app(db: Db, hook: &str, limit: u32) -> TestApp {
    let first = spawn_app(db).await;
    let mut settings = first.settings.clone();
    let dbh = first.stop().await;
    settings.admin_token = Some(Secret::new(ADMIN));
    settings.outbox_base_delay_ms = 50;
    settings.outbox_max_delay_ms = 200;
    let mut c = ConnectorConfig::new("hook", ConnectorKind::Webhook, &format!("{hook}/events"));
    c.deprovision_limit = Some(limit);
    c.deprovision_window_secs = 3600;
    settings.connectors = vec![c];
    spawn_with(dbh, settings).await
}

fn admin(app: &TestApp, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(
            method,
            format!("http://127.0.0.1:{}/admin/v1{path}", app.port),
        )
        .bearer_auth(ADMIN)
}

async fn events_of(hook: &str, event: &str) -> Vec<Value> {
    emulator_state(&reqwest::Client::new(), hook).await["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["event"] == event)
        .collect()
}

/// Drains the outbox; then `check` holds.
async fn until(app: &TestApp, what: &str, mut check: impl AsyncFnMut() -> bool) {
    app.drain().await;
    assert!(check().await, "once the outbox is drained, {what}");
}

async fn connector(app: &TestApp) -> Value {
    let list: Value = admin(app, reqwest::Method::GET, "/connectors")
        .send()
        .await
        .expect("connectors")
        .json()
        .await
        .expect("json");
    list["connectors"][0].clone()
}

/// Creates `n` users and waits until the target has them all.
async fn users(app: &Arc<TestApp>, hook: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let res = app
            .post("/Users", user(&format!("brake{i}@example.com")))
            .await;
        assert_eq!(res.status(), 201);
        ids.push(
            res.json::<Value>().await.expect("json")["id"]
                .as_str()
                .expect("id")
                .to_string(),
        );
    }
    until(app, "every user arrived", async || {
        events_of(hook, "user.created").await.len() == n
    })
    .await;
    ids
}

/// Deactivates every user at once (parallel PATCHes).
async fn deactivate_all(app: &Arc<TestApp>, ids: &[String]) {
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move {
                let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": false}]});
                let res = app
                    .send(reqwest::Method::PATCH, &format!("/Users/{id}"), Some(patch))
                    .await;
                assert_eq!(res.status(), 200);
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
}

crate::each_database! {
    async fn a_burst_of_deactivations_over_the_limit_is_held_until_released(db) {
        let hook = start_hook();
        let app = braked_app(db, &hook, 3).await;
        let app = Arc::new(app);
        let ids = users(&app, &hook, 10).await;
        deactivate_all(&app, &ids).await;
        until(&app, "three deactivations are delivered and seven held", async || {
            let c = connector(&app).await;
            c["held"] == 7 && c["queueDepth"] == 0
        }).await;
        assert_eq!(events_of(&hook, "user.deactivated").await.len(), 3);
        // Held is neither pending nor dead, and says so in the admin API and the metrics.
        let c = connector(&app).await;
        assert_eq!(c["dead"], 0, "{c}");
        let held: Value = admin(&app, reqwest::Method::GET, "/jobs?state=held").send().await.expect("jobs").json().await.expect("json");
        assert_eq!(held["jobs"].as_array().map(Vec::len), Some(7));
        assert!(held["jobs"][0]["lastError"].as_str().is_some_and(|e| e.contains("deletion brake")));
        let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", app.port)).await.expect("metrics").text().await.expect("text");
        assert!(metrics.contains("scim_bridge_outbox_jobs{connector=\"hook\",state=\"held\"} 7"), "{metrics}");
        // Nothing else about the connector stops: a new user still arrives.
        assert_eq!(app.post("/Users", user("after@example.com")).await.status(), 201);
        until(&app, "the new user arrived", async || events_of(&hook, "user.created").await.len() == 11).await;
        // A later change of a held user waits behind its held deactivation.
        let put_back = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Waits"}]});
        let held_id = held["jobs"][0]["resourceId"].as_str().expect("id").to_string();
        assert_eq!(app.send(reqwest::Method::PATCH, &format!("/Users/{held_id}"), Some(put_back)).await.status(), 200);

        let res = admin(&app, reqwest::Method::POST, "/connectors/hook/release").send().await.expect("release");
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.expect("json")["released"], 7);
        until(&app, "all ten deactivations and the later change arrived", async || {
            events_of(&hook, "user.deactivated").await.len() == 10 && connector(&app).await["queueDepth"] == 0
        }).await;
        let c = connector(&app).await;
        assert_eq!((c["held"].clone(), c["dead"].clone()), (json!(0), json!(0)), "{c}");
        // In order: the held user's deactivation before its later change.
        let all = emulator_state(&reqwest::Client::new(), &hook).await["events"].as_array().cloned().unwrap_or_default();
        let of_held: Vec<&str> = all.iter().filter(|e| e["id"] == held_id.as_str()).filter_map(|e| e["event"].as_str()).collect();
        assert_eq!(of_held, vec!["user.created", "user.deactivated", "user.updated"]);
    }

    async fn a_deactivation_retried_after_a_failed_delivery_counts_once_against_the_limit(db) {
        let hook = start_hook();
        let app = braked_app(db, &hook, 1).await;
        let app = Arc::new(app);
        let ids = users(&app, &hook, 2).await;
        set_faults(&reqwest::Client::new(), &hook, json!({"fail_next": {"count": 2, "status": 503}})).await;
        deactivate_all(&app, &ids[..1]).await;
        until(&app, "the first deactivation arrived after its retries", async || {
            events_of(&hook, "user.deactivated").await.len() == 1
        }).await;
        assert_eq!(connector(&app).await["held"], 0, "its retries are the same deprovision");
        deactivate_all(&app, &ids[1..]).await;
        until(&app, "the second is held", async || connector(&app).await["held"] == 1).await;
        assert_eq!(events_of(&hook, "user.deactivated").await.len(), 1);
    }

    async fn discarding_held_deactivations_drops_them_and_the_reactivations_behind_them_follow(db) {
        let hook = start_hook();
        let app = braked_app(db, &hook, 2).await;
        let app = Arc::new(app);
        let ids = users(&app, &hook, 5).await;
        deactivate_all(&app, &ids).await;
        until(&app, "two delivered and three held", async || connector(&app).await["held"] == 3).await;
        // The identity provider's mistake is undone there: the users are active again.
        for id in &ids {
            let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": true}]});
            assert_eq!(app.send(reqwest::Method::PATCH, &format!("/Users/{id}"), Some(patch)).await.status(), 200);
        }
        let res = admin(&app, reqwest::Method::POST, "/connectors/hook/discard").send().await.expect("discard");
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        assert_eq!(body, json!({"discarded": 3}));
        until(&app, "the queue is empty", async || {
            let c = connector(&app).await;
            c["queueDepth"] == 0 && c["held"] == 0
        }).await;
        // Only the two deactivations before the brake ever reached the target; every
        // reactivation did, the three queued behind the held jobs once they were dropped.
        assert_eq!(events_of(&hook, "user.deactivated").await.len(), 2);
        assert_eq!(events_of(&hook, "user.reactivated").await.len(), 5);
        assert!(events_of(&hook, "user.updated").await.is_empty(), "nothing is resent besides");
        let unknown = admin(&app, reqwest::Method::POST, "/connectors/nope/release").send().await.expect("release");
        assert_eq!(unknown.status(), 404);
    }
}

/// A Pyramid connector provisioning only members of `Scope`, braked at `limit`.
async fn scoped_pyramid(db: Db, limit: u32) -> crate::vendors::Rig {
    scoped_pyramid_via(db, limit, false).await
}

/// The same, through the built-in connector or Pyramid's example definition.
async fn scoped_pyramid_via(db: Db, limit: u32, file: bool) -> crate::vendors::Rig {
    crate::vendors::rig(
        db,
        Arc::new(scim_bridge::emulator::pyramid::PyramidEmulator::new(
            crate::vendors::creds(),
        )),
        "pyramid",
        "/API2",
        |c| {
            c.scope_groups = vec!["Scope".into()];
            c.deprovision_limit = Some(limit);
            c.deprovision_window_secs = 3600;
            if file {
                crate::vendors::described(c, "pyramid", "/API2");
            }
        },
    )
    .await
}

/// `n` users, provisioned by joining the scope group; their ids and the group's.
async fn in_scope(r: &crate::vendors::Rig, n: usize) -> (Vec<String>, String) {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            r.create(crate::vendors::full_user(&format!("scoped{i}@example.com")))
                .await,
        );
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let group = r.app.create_group("Scope", &refs).await;
    r.settle().await;
    r.no_dead_jobs().await;
    assert_eq!(enabled_in_pyramid(r).await, n, "all provisioned on joining");
    (ids, group)
}

async fn enabled_in_pyramid(r: &crate::vendors::Rig) -> usize {
    let s = r.state().await;
    s["users"]
        .as_array()
        .map_or(0, |u| u.iter().filter(|u| u["enabled"] == true).count())
}

async fn rig_admin(
    r: &crate::vendors::Rig,
    method: reqwest::Method,
    path: &str,
) -> reqwest::Response {
    r.http
        .request(
            method,
            format!("http://127.0.0.1:{}/admin/v1{path}", r.app.port),
        )
        .bearer_auth(crate::vendors::ADMIN)
        .send()
        .await
        .expect("sent")
}

crate::each_database! {
    async fn one_patch_emptying_the_scope_group_deprovisions_only_up_to_the_limit_and_discard_keeps_the_rest(db) {
        emptying_the_scope_group_is_braked(db, false).await;
    }

    async fn the_brake_and_scope_hold_the_same_through_pyramids_example_definition(db) {
        emptying_the_scope_group_is_braked(db, true).await;
    }

    async fn deleting_the_scope_group_counts_each_member_against_the_brake_and_release_deactivates_the_rest(db) {
        let r = scoped_pyramid(db, 2).await;
        let (ids, group) = in_scope(&r, 5).await;
        assert_eq!(r.app.delete(&format!("/Groups/{group}")).await.status(), 204);
        r.settle().await;
        assert_eq!(enabled_in_pyramid(&r).await, 3);
        assert_eq!(r.admin("/connectors").await["connectors"][0]["held"], 3);
        let res = rig_admin(&r, reqwest::Method::POST, "/connectors/pyramid/release").await;
        assert_eq!(res.status(), 200);
        r.settle().await;
        r.no_dead_jobs().await;
        assert_eq!(enabled_in_pyramid(&r).await, 0);
        let standing = r.admin(&format!("/users/{}", ids[4])).await;
        assert_eq!(standing["connectors"][0]["note"], "left the scope groups: deactivated in the target", "{standing}");
    }

    async fn renaming_the_scope_group_out_of_scope_deactivates_its_members_unless_another_scope_group_keeps_them(db) {
        let r = scoped_pyramid(db, 10).await;
        let (ids, group) = in_scope(&r, 3).await;
        // The first member is also in a second group that becomes a scope group's name.
        let other = r.app.create_group("Other", &[&ids[0]]).await;
        r.settle().await;
        let rename = |name: &str| json!([{"op": "replace", "path": "displayName", "value": name}]);
        assert_eq!(r.patch(&format!("/Groups/{group}"), rename("Former")).await.status(), 204);
        assert_eq!(r.patch(&format!("/Groups/{other}"), rename("Scope")).await.status(), 204);
        r.settle().await;
        r.no_dead_jobs().await;
        let s = r.state().await;
        let enabled = |id: &str| s["users"].as_array().and_then(|u| u.iter().find(|u| u["id"] == id)).map(|u| u["enabled"].clone());
        assert_eq!(enabled(&ids[0]), Some(json!(true)), "back in scope through the other group");
        assert_eq!(enabled(&ids[1]), Some(json!(false)));
        assert_eq!(enabled(&ids[2]), Some(json!(false)));
    }
}

/// Ten members in scope; one PATCH empties the scope group with the brake at three.
async fn emptying_the_scope_group_is_braked(db: Db, file: bool) {
    let r = scoped_pyramid_via(db, 3, file).await;
    let (ids, group) = in_scope(&r, 10).await;
    let res = r
        .app
        .send(
            reqwest::Method::PATCH,
            &format!("/Groups/{group}"),
            Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": "members"}]})),
        )
        .await;
    assert_eq!(res.status(), 204);
    r.settle().await;
    assert_eq!(
        enabled_in_pyramid(&r).await,
        7,
        "three deactivated, seven held"
    );
    assert_eq!(r.admin("/connectors").await["connectors"][0]["held"], 7);

    let res = rig_admin(&r, reqwest::Method::POST, "/connectors/pyramid/discard").await;
    assert_eq!(
        res.json::<Value>().await.expect("json"),
        json!({"discarded": 7})
    );
    r.settle().await;
    assert_eq!(
        enabled_in_pyramid(&r).await,
        7,
        "discarded: the target keeps them"
    );
    // Nothing later deprovisions them behind the administrator's back: not a change of
    // their own, not a sync of everything.
    for id in &ids {
        let res = r
            .patch(
                &format!("/Users/{id}"),
                json!([{"op": "replace", "path": "title", "value": "Moved"}]),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    let res = rig_admin(
        &r,
        reqwest::Method::POST,
        "/connectors/pyramid/sync?all=true",
    )
    .await;
    assert!(res.status().is_success());
    r.settle().await;
    r.no_dead_jobs().await;
    assert_eq!(enabled_in_pyramid(&r).await, 7);
    assert_eq!(r.admin("/connectors").await["connectors"][0]["held"], 0);
    // A reconcile reports them as drift.
    let res = rig_admin(
        &r,
        reqwest::Method::POST,
        "/connectors/pyramid/reconcile?repair=false",
    )
    .await;
    assert_eq!(res.status(), 202);
    let report = r.app.reconciled("pyramid").await["report"].clone();
    assert_eq!(report["different"], 7, "{report}");
}
