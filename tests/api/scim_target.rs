//! `kind = "scim"`: this bridge provisioning another SCIM service provider. Against a
//! second scim-bridge (OAuth client credentials) and against scim2-server (PyPI, its own
//! in-memory storage, a static bearer token, ETags): a user and a group created, renamed,
//! changed, deactivated, reactivated and deleted end the same in the target, read back
//! from the target itself.

use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use scim_bridge::config::{ConnectorConfig, ConnectorKind, Secret};

use crate::helpers::{spawn_app, spawn_with, Db, TestApp};
use crate::vendors::{full_user, ADMIN};

/// The SCIM service behind the bridge, as the test reads it.
struct Downstream {
    base: String,
    token: String,
    http: reqwest::Client,
    /// Kept alive for the test: the second bridge, or the scim2-server process.
    _bridge: Option<TestApp>,
    process: Option<Child>,
    /// scim2-server's request log.
    log: Option<std::path::PathBuf>,
}

impl Drop for Downstream {
    fn drop(&mut self) {
        if let Some(p) = &mut self.process {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

impl Downstream {
    async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("sent");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn one(&self, kind: &str, attr: &str, value: &str) -> Option<Value> {
        let filter = format!("{attr} eq \"{value}\"");
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("filter", &filter)
            .finish();
        let (status, list) = self.get(&format!("/{kind}?{q}")).await;
        assert_eq!(status, 200, "{list}");
        list["Resources"]
            .as_array()
            .and_then(|r| r.first().cloned())
    }

    async fn patch(&self, path: &str, ops: Value) -> u16 {
        self.http
            .patch(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}))
            .send()
            .await
            .expect("sent")
            .status()
            .as_u16()
    }
}

/// A second scim-bridge with an OAuth client for this one.
async fn second_bridge(db: Db) -> (Downstream, ConnectorConfig) {
    let first = spawn_app(db).await;
    let mut settings = first.settings.clone();
    let dbh = first.stop().await;
    settings.admin_token = Some(Secret::new(ADMIN));
    let bridge = spawn_with(dbh, settings).await;
    let res = bridge
        .client
        .post(format!(
            "http://127.0.0.1:{}/admin/v1/credentials/clients",
            bridge.port
        ))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "upstream", "scope": "scim:read scim:write"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 201);
    let client: Value = res.json().await.expect("json");
    let mut c = ConnectorConfig::new("downstream", ConnectorKind::Scim, &bridge.base)
        .with_credentials(
            client["client_id"].as_str().expect("id"),
            client["client_secret"].as_str().expect("secret"),
        );
    c.options.insert("token_url".into(), "/oauth/token".into());
    c.options
        .insert("scope".into(), "scim:read scim:write".into());
    let down = Downstream {
        base: bridge.base.clone(),
        token: bridge.token.clone(),
        http: reqwest::Client::new(),
        _bridge: Some(bridge),
        process: None,
        log: None,
    };
    (down, c)
}

/// The scim2-server the tests run: `SCIM2_SERVER_BIN`, else one installed from PyPI
/// into a virtualenv under cargo's target directory on first use (so `cargo test` needs
/// nothing installed by hand, and a second run reuses it).
fn scim2_server_bin() -> std::path::PathBuf {
    static READY: std::sync::Mutex<Option<std::path::PathBuf>> = std::sync::Mutex::new(None);
    if let Ok(bin) = std::env::var("SCIM2_SERVER_BIN") {
        return bin.into();
    }
    let mut ready = READY.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(bin) = ready.as_ref() {
        return bin.clone();
    }
    let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("venv-scim2-server-0.8.3");
    let bin = venv.join("bin").join("scim2-server");
    if !venv.join(".complete").exists() {
        let _ = std::fs::remove_dir_all(&venv);
        let run = |cmd: &mut Command| {
            let out = cmd.output().expect("python3 runs");
            assert!(
                out.status.success(),
                "installing scim2-server from PyPI failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
        run(Command::new(venv.join("bin").join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "scim2-server==0.8.3",
        ]));
        std::fs::write(venv.join(".complete"), "").expect("marker");
    }
    *ready = Some(bin.clone());
    bin
}

/// scim2-server (PyPI) on a free port with a bearer token; with
/// `patch` false its ServiceProviderConfig says it takes no PATCH (ETags still offered).
async fn scim2_server(patch: bool) -> (Downstream, ConnectorConfig, Option<tempfile::TempDir>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let token = "scim2-server-token-0123";
    let mut args = vec![
        "--port".to_string(),
        port.to_string(),
        "--bearer-token".into(),
        token.into(),
    ];
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("requests.log");
    if !patch {
        let spc = dir.path().join("spc.json");
        std::fs::write(&spc, json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": false}, "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": 1000}, "changePassword": {"supported": true},
            "sort": {"supported": true}, "etag": {"supported": true}}).to_string()).expect("spc");
        args.push("--service-provider-config".into());
        args.push(spc.display().to_string());
    }
    let child = Command::new(scim2_server_bin())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("scim2-server runs");
    let base = format!("http://127.0.0.1:{port}/v2");
    let down = Downstream {
        base: base.clone(),
        token: token.into(),
        http: reqwest::Client::new(),
        _bridge: None,
        process: Some(child),
        log: Some(log),
    };
    for _ in 0..100 {
        if down
            .http
            .get(format!("{base}/ServiceProviderConfig"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut c = ConnectorConfig::new("downstream", ConnectorKind::Scim, &base);
    c.secret = Some(Secret::new(token));
    (down, c, Some(dir))
}

/// This bridge, delivering to the downstream through `c`.
async fn upstream(db: Db, mut c: ConnectorConfig) -> TestApp {
    let first = spawn_app(db).await;
    let mut settings = first.settings.clone();
    let dbh = first.stop().await;
    settings.admin_token = Some(Secret::new(ADMIN));
    c.reconcile_requests_per_sec = 1000.0;
    settings.connectors = vec![c];
    spawn_with(dbh, settings).await
}

async fn patch(up: &TestApp, path: &str, ops: Value) {
    crate::vendors::patch_ok(up, path, ops).await;
}

async fn no_dead_jobs(up: &TestApp) {
    crate::vendors::assert_no_dead_jobs(up).await;
}

/// A user's and a group's life, read back from the downstream after each step.
async fn lives(up: &TestApp, down: &Downstream) {
    let create = |name: &str| up.post("/Users", full_user(name));
    let res = create("ann@down.example").await;
    assert_eq!(res.status(), 201);
    let ann: String = res.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .into();
    let res = create("bob@down.example").await;
    let bob: String = res.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .into();
    let group = up.create_group("Analysts", &[&ann]).await;
    up.drain().await;
    let a = down
        .one("Users", "userName", "ann@down.example")
        .await
        .expect("ann there");
    assert_eq!(a["externalId"], ann.as_str(), "{a}");
    assert_eq!(a["name"]["givenName"], "Barbara", "{a}");
    assert_eq!(a["active"], true);
    let a_id = a["id"].as_str().expect("id").to_string();
    let b_id = down
        .one("Users", "userName", "bob@down.example")
        .await
        .expect("bob")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let g = down
        .one("Groups", "displayName", "Analysts")
        .await
        .expect("group there");
    let g_id = g["id"].as_str().expect("id").to_string();
    let members = |g: &Value| -> Vec<String> {
        let mut m: Vec<String> = g["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["value"].as_str().map(str::to_string))
            .collect();
        m.sort();
        m
    };
    assert_eq!(
        members(&g),
        std::slice::from_ref(&a_id),
        "members by the target's ids: {g}"
    );

    // Renamed and changed.
    patch(
        up,
        &format!("/Users/{ann}"),
        json!([{"op": "replace", "path": "userName", "value": "ann.lee@down.example"},
        {"op": "replace", "path": "name.familyName", "value": "Lee"}]),
    )
    .await;
    patch(
        up,
        &format!("/Groups/{group}"),
        json!([{"op": "replace", "path": "displayName", "value": "Analysts EU"},
        {"op": "add", "path": "members", "value": [{"value": bob}]}]),
    )
    .await;
    up.drain().await;
    assert!(
        down.one("Users", "userName", "ann@down.example")
            .await
            .is_none(),
        "the old userName is gone"
    );
    let a = down
        .one("Users", "userName", "ann.lee@down.example")
        .await
        .expect("renamed");
    assert_eq!(a["id"], a_id.as_str(), "the same user: {a}");
    assert_eq!(a["name"]["familyName"], "Lee", "{a}");
    let (_, g) = down.get(&format!("/Groups/{g_id}")).await;
    assert_eq!(g["displayName"], "Analysts EU", "{g}");
    let mut both = vec![a_id.clone(), b_id.clone()];
    both.sort();
    assert_eq!(members(&g), both, "{g}");

    // A member removed; deactivated, reactivated.
    patch(
        up,
        &format!("/Groups/{group}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{ann}\"]")}]),
    )
    .await;
    patch(
        up,
        &format!("/Users/{bob}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    up.drain().await;
    let (_, g) = down.get(&format!("/Groups/{g_id}")).await;
    assert_eq!(members(&g), std::slice::from_ref(&b_id), "{g}");
    let (_, b) = down.get(&format!("/Users/{b_id}")).await;
    assert_eq!(b["active"], false, "deprovisioned downstream: {b}");
    patch(
        up,
        &format!("/Users/{bob}"),
        json!([{"op": "replace", "path": "active", "value": true}]),
    )
    .await;
    up.drain().await;
    let (_, b) = down.get(&format!("/Users/{b_id}")).await;
    assert_eq!(b["active"], true, "{b}");

    // Deleted.
    assert_eq!(up.delete(&format!("/Users/{ann}")).await.status(), 204);
    assert_eq!(up.delete(&format!("/Groups/{group}")).await.status(), 204);
    up.drain().await;
    assert_eq!(
        down.get(&format!("/Users/{a_id}")).await.0,
        404,
        "the user is deleted downstream"
    );
    assert_eq!(
        down.get(&format!("/Groups/{g_id}")).await.0,
        404,
        "the group is deleted downstream"
    );
    no_dead_jobs(up).await;
}

/// Drift made in the downstream, found and repaired by reconcile.
async fn drift_repaired(up: &TestApp, down: &Downstream) {
    for i in 0..3 {
        assert_eq!(
            up.post("/Users", full_user(&format!("d{i}@down.example")))
                .await
                .status(),
            201
        );
    }
    up.drain().await;
    let d1 = down
        .one("Users", "userName", "d1@down.example")
        .await
        .expect("d1");
    let status = down
        .patch(&format!("/Users/{}", d1["id"].as_str().expect("id")),
            json!([{"op": "replace", "path": "title", "value": "Drifted"}, {"op": "replace", "path": "active", "value": false}]))
        .await;
    // 200 with the resource, or 204 without it (RFC 7644 3.5.2).
    assert!(matches!(status, 200 | 204), "{status}");
    let reconcile = |repair: bool| async move {
        let res = up
            .client
            .post(format!(
                "http://127.0.0.1:{}/admin/v1/connectors/downstream/reconcile?repair={repair}",
                up.port
            ))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 202);
        let p = up.reconciled("downstream").await;
        assert_eq!(p["state"], "finished", "{p}");
        p["report"].clone()
    };
    let found = reconcile(false).await;
    let line = found["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|l| l["userName"] == "d1@down.example")
        .expect("d1's line")
        .clone();
    assert_eq!(line["state"], "different", "{line}");
    let fields: Vec<&str> = line["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert_eq!(fields, ["title", "active"], "{line}");
    reconcile(true).await;
    up.drain().await;
    let d1 = down
        .one("Users", "userName", "d1@down.example")
        .await
        .expect("d1");
    assert_eq!(d1["title"], "Analyst", "{d1}");
    assert_eq!(d1["active"], true, "{d1}");
    let after = reconcile(false).await;
    assert!(
        after["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|l| l["state"] == "in_sync"),
        "{after}"
    );
}

crate::each_database! {
    async fn a_user_and_a_group_live_the_same_in_a_second_bridge_through_the_scim_connector(db) {
        let (down, c) = second_bridge(db).await;
        let up = upstream(db, c).await;
        lives(&up, &down).await;
    }

    async fn reconcile_finds_and_repairs_drift_made_in_a_second_bridge(db) {
        let (down, c) = second_bridge(db).await;
        let up = upstream(db, c).await;
        drift_repaired(&up, &down).await;
    }

    async fn a_user_and_a_group_live_the_same_in_scim2_server(db) {
        let (down, c, _dir) = scim2_server(true).await;
        let up = upstream(db, c).await;
        lives(&up, &down).await;
    }

    async fn a_target_that_takes_no_patch_gets_whole_resources_by_put(db) {
        let (down, c, _dir) = scim2_server(false).await;
        let up = upstream(db, c).await;
        lives(&up, &down).await;
        let log = std::fs::read_to_string(down.log.as_ref().expect("a log")).expect("log");
        assert!(log.contains("\"PUT /v2/Users/") && log.contains("\"PUT /v2/Groups/"), "{log}");
        assert!(!log.contains("\"PATCH "), "no PATCH to a target that takes none: {log}");
    }

    async fn reconcile_finds_and_repairs_drift_made_in_scim2_server(db) {
        let (down, c, _dir) = scim2_server(true).await;
        let up = upstream(db, c).await;
        drift_repaired(&up, &down).await;
    }
}

crate::each_database! {
    async fn a_scim_connector_added_later_receives_every_user_and_group_with_its_members(db) {
        let (down, c) = second_bridge(db).await;
        // The bridge holds users and a group before the connector exists.
        let first = spawn_app(db).await;
        let mut ids = Vec::new();
        for i in 0..5 {
            let res = first.post("/Users", full_user(&format!("early{i}@down.example"))).await;
            ids.push(res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_string());
        }
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        first.create_group("Early", &refs).await;
        let mut settings = first.settings.clone();
        let dbh = first.stop().await;
        settings.admin_token = Some(Secret::new(ADMIN));
        settings.connectors = vec![c];
        let up = spawn_with(dbh, settings).await;
        up.drain().await;
        let g = down.one("Groups", "displayName", "Early").await.expect("the group, backfilled");
        assert_eq!(g["members"].as_array().map(Vec::len), Some(5), "every member, by the target's ids: {g}");
        for i in 0..5 {
            assert!(down.one("Users", "userName", &format!("early{i}@down.example")).await.is_some());
        }
        no_dead_jobs(&up).await;
    }

    async fn a_scim_connector_in_dry_run_records_user_and_group_calls_and_sends_nothing(db) {
        let (down, mut c) = second_bridge(db).await;
        c.mode = scim_bridge::config::Mode::DryRun;
        let up = upstream(db, c).await;
        let res = up.post("/Users", full_user("dry@down.example")).await;
        let id = res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_string();
        up.create_group("Dry", &[&id]).await;
        up.drain().await;
        assert!(down.one("Users", "userName", "dry@down.example").await.is_none(), "nothing sent");
        assert!(down.one("Groups", "displayName", "Dry").await.is_none(), "nothing sent");
        let jobs: Value = up.client.get(format!("http://127.0.0.1:{}/admin/v1/jobs?state=dry_run", up.port))
            .bearer_auth(ADMIN).send().await.expect("sent").json().await.expect("json");
        let calls: Vec<String> = jobs["jobs"].as_array().into_iter().flatten()
            .flat_map(|j| j["calls"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["call"].as_str().map(str::to_string)).collect();
        assert!(calls.contains(&"create".to_string()) && calls.contains(&"POST /Groups".to_string()), "{jobs}");
    }
}
