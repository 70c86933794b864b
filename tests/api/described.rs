//! Targets described in a file (`kind = "http"`): check-config reads a definition whole
//! and names each problem with the file's line; a described target signs in once for
//! every worker and again when its token expires; `connector test` runs a short life
//! against a target and prints each call.

use std::process::Command;
use std::sync::Arc;

use serde_json::json;

use scim_bridge::config::Mode;
use scim_bridge::emulator::pyramid::PyramidEmulator;
use scim_bridge::emulator::Emulator;

use crate::helpers::{spawn_app, spawn_with, Db, TestApp};
use crate::vendors::{creds, described, full_user, rig};

fn example(vendor: &str) -> String {
    format!(
        "{}/examples/connectors/{vendor}.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Runs `check-config` over a settings file with one http connector naming `definition`.
fn check_config(definition: &std::path::Path, extra: &str) -> (bool, String) {
    check_config_kind("http", definition, extra)
}

fn check_config_kind(kind: &str, definition: &std::path::Path, extra: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("bridge.toml");
    std::fs::write(
        &config,
        format!(
            "[[connector]]\nname = \"app\"\nkind = \"{kind}\"\nurl = \"https://app.example.com\"\ndefinition = \"{}\"\nusername = \"svc\"\npassword = \"pw\"\n{extra}",
            definition.display()
        ),
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
        .arg("check-config")
        .arg(&config)
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The line (from 1) of the first line of `text` holding `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line holds {needle}"))
}

crate::tests! {
    fn check_config_names_every_problem_of_a_broken_definition_with_its_line_in_one_pass() {
        let def = r#"[target]
title = "Broken"
principal = "login"

[attributes]
username = "userName"
email = "emails.value"

[calls.create]
method = "POST"
path = "/users/{{ user.username"
body = { name = "{{ user.nickname }}", mail = "{{ user.email }}" }
take = { id = "$.[id" }

[calls.update]
method = "PUT"
path = "/users/{{ target_id }}"
when = "principal =="
body = { who = "{{ someone }}" }

[operations]
create = "create"
update = ["update", "no_such_call"]
deactivate = "update"
"#;
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("broken.toml");
        std::fs::write(&file, def).expect("definition");
        let (ok, text) = check_config(&file, "");
        assert!(!ok, "a broken definition fails check-config: {text}");
        for (needle, says) in [
            ("principal = \"login\"", "'login' is not a mapped field"),
            ("path = \"/users/{{ user.username\"", "calls.create.path"),
            ("body = { name", "'nickname' is not a mapped field"),
            ("take = { id", "is not a JSONPath"),
            ("when = \"principal ==\"", "calls.update.when"),
            ("body = { who", "'someone' is not something a template here can use"),
            ("update = [\"update\", \"no_such_call\"]", "there is no [calls.no_such_call]"),
            ("[operations]", "operations.reactivate is required"),
        ] {
            let line = line_of(def, needle);
            let want = format!("line {line}: ");
            assert!(
                text.lines().any(|l| l.contains(&want) && l.contains(says)),
                "expected '{says}' at line {line} of the definition:\n{text}"
            );
        }
    }

    fn check_config_refuses_a_definition_that_is_not_toml_with_its_line() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "[target]\ntitle = \"x\"\nprincipal = \n").expect("definition");
        let (ok, text) = check_config(&file, "");
        assert!(!ok && text.contains("bad.toml line 3"), "{text}");
        let (ok, text) = check_config(&dir.path().join("absent.toml"), "");
        assert!(!ok && text.contains("cannot read the connector definition"), "{text}");
    }

    fn check_config_accepts_the_example_definitions_and_refuses_roles_a_definition_cannot_give() {
        for vendor in ["itron", "pyramid"] {
            let (ok, text) = check_config(std::path::Path::new(&example(vendor)), "");
            assert!(ok, "{vendor}: {text}");
        }
        let openiam = example("openiam");
        let (ok, text) = check_config_kind("soap", std::path::Path::new(&openiam), "[connector.options]\nrequestor_id = \"3000\"\n");
        assert!(ok, "openiam: {text}");
        let (ok, text) = check_config(std::path::Path::new(&openiam), "");
        assert!(!ok && text.contains("describes a SOAP target ([soap]): the connector's kind is \"soap\""), "{text}");
        let (ok, text) = check_config_kind("soap", std::path::Path::new(&example("itron")), "");
        assert!(!ok && text.contains("has no [soap] section"), "{text}");
        let (ok, text) = check_config(
            std::path::Path::new(&example("itron")),
            "[connector.roles]\nAnalysts = \"analyst\"\n",
        );
        assert!(!ok && text.contains("has no roles or add_role operation"), "{text}");
    }

    fn the_worked_example_in_the_readme_passes_check_config() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
        let start = readme.find("# hr-portal.toml\n").expect("the worked example");
        let end = start + readme[start..].find("```").expect("its end");
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("hr-portal.toml");
        std::fs::write(&file, &readme[start..end]).expect("definition");
        let (ok, text) = check_config(&file, "secret = \"env:HOME\"\n");
        assert!(ok, "{text}");
        let (ok, text) = check_config(&file, "");
        assert!(!ok && text.contains("signs in with secret"), "{text}");
    }

    fn a_mapping_override_that_removes_a_field_a_template_uses_is_reported() {
        let (ok, text) = check_config(
            std::path::Path::new(&example("pyramid")),
            "[connector.attributes]\nemail = \"\"\nprincipalName = \"emails.value\"\n",
        );
        // The Pyramid file's read takes the email but no template names user.email: the
        // override is fine. Taking the principal's field away is not.
        assert!(ok, "{text}");
        let (ok, text) = check_config(
            std::path::Path::new(&example("itron")),
            "[connector.attributes]\nusername = \"\"\n",
        );
        assert!(!ok && text.contains("'username' is not a mapped field"), "{text}");
    }
}

crate::each_database! {
    async fn workers_delivering_at_once_through_a_definition_share_one_sign_in_and_sign_in_again_when_it_expires(db) {
        let r = rig(db, Arc::new(PyramidEmulator::new(creds())), "pyramid", "/API2", |c| {
            described(c, "pyramid", "/API2");
            c.mode = Mode::Sync;
        })
        .await;
        let creates = (0..16).map(|i| r.app.post("/Users", full_user(&format!("u{i:02}@file.example"))));
        let mut ids = Vec::new();
        for res in futures_util::future::join_all(creates).await {
            assert_eq!(res.status(), 201);
            let body: serde_json::Value = res.json().await.expect("json");
            ids.push(body["id"].as_str().expect("id").to_string());
        }
        let s = r.wait("sixteen users", |s| s["users"].as_array().is_some_and(|u| u.len() == 16)).await;
        assert_eq!(s["calls"]["authenticateuser"], 1, "one token for every worker: {}", s["calls"]);
        r.settle().await;
        r.no_dead_jobs().await;

        r.faults(json!({"fail_next": {"count": 1, "status": 401, "error": "token_expired"}})).await;
        let id = &ids[3];
        let res = r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "name.givenName", "value": "Renewed"}])).await;
        assert_eq!(res.status(), 200);
        let s = r.wait("the change", |s| s["users"].as_array().is_some_and(|u| u.iter().any(|u| u["firstName"] == "Renewed"))).await;
        assert_eq!(s["calls"]["authenticateuser"], 2, "signed in again once");
        r.no_dead_jobs().await;
    }
}

/// Runs `scim-bridge connector test` against `url`.
fn connector_test(definition: &str, url: &str, credentials: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
        .args([
            "connector",
            "test",
            "--definition",
            definition,
            "--url",
            url,
        ])
        .args(credentials)
        .args(["--user-name", "probe@example.com"])
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// An emulator on a free port, served in this process; gives its base URL.
fn emulator<E: scim_bridge::emulator::Emulator>(e: Arc<E>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (server, port) = scim_bridge::emulator::serve(e, listener).expect("emulator");
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

crate::tests! {
    async fn connector_test_runs_a_whole_life_against_the_pyramid_emulator_and_shows_each_call() {
        let emu = Arc::new(PyramidEmulator::new(creds()));
        let base = emulator(emu.clone());
        let def = example("pyramid");
        let url = format!("{base}/API2");
        let (ok, text) = tokio::task::spawn_blocking(move || {
            connector_test(&def, &url, &["--username", crate::vendors::SVC_USER, "--password", crate::vendors::SVC_PASS])
        })
        .await
        .expect("ran");
        assert!(ok, "{text}");
        for step in ["== lookup (before the create)", "== create", "== update (familyName)", "== deactivate", "== reactivate", "== read", "== delete", "every step passed"] {
            assert!(text.contains(step), "{step}: {text}");
        }
        assert!(text.contains("access/createSamlUser") && text.contains("read as: success"), "{text}");
        assert!(!text.contains(crate::vendors::SVC_PASS), "the password is never printed: {text}");
        let state = emu.state();
        assert_eq!(state["users"], json!([]), "the made-up user is deleted at the end: {state}");
        assert_eq!(state["deleted"].as_array().map(Vec::len), Some(1), "{state}");
    }

    async fn connector_test_against_itron_leaves_the_user_without_accounts_and_a_wrong_password_fails_with_the_refusal_shown() {
        let emu = Arc::new(scim_bridge::emulator::itron::ItronEmulator::new(creds()));
        let base = emulator(emu.clone());
        let def = example("itron");
        let (d, b) = (def.clone(), base.clone());
        let (ok, text) = tokio::task::spawn_blocking(move || {
            connector_test(&d, &b, &["--username", crate::vendors::SVC_USER, "--password", crate::vendors::SVC_PASS])
        })
        .await
        .expect("ran");
        assert!(ok, "{text}");
        // Itron's delete is the upsert with no accounts: the user stays, without access.
        assert!(text.contains("== delete") && text.contains("\"accountIds\":[]"), "{text}");
        let state = emu.state();
        assert_eq!(state["users"][0]["accountIds"], json!([]), "access removed: {state}");
        assert_eq!(state["users"][0]["lastName"], "User-Changed", "{state}");

        let (ok, text) = tokio::task::spawn_blocking(move || {
            connector_test(&def, &base, &["--username", crate::vendors::SVC_USER, "--password", "wrong"])
        })
        .await
        .expect("ran");
        assert!(!ok, "{text}");
        assert!(text.contains("answer: 401") && text.contains("FAILED"), "{text}");
    }

    async fn connector_test_runs_a_whole_life_against_the_openiam_emulator_over_soap() {
        let emu = Arc::new(scim_bridge::emulator::openiam::OpenIamEmulator::new(creds()));
        let base = emulator(emu.clone());
        let url = format!("{base}/openiam-idm-esb/idmsrvc");
        let (ok, text) = tokio::task::spawn_blocking(move || {
            connector_test(&example("openiam"), &url, &["--username", crate::vendors::SVC_USER, "--password", crate::vendors::SVC_PASS, "--option", "requestor_id=3000"])
        })
        .await
        .expect("ran");
        assert!(ok, "{text}");
        assert!(text.contains("<prov:addUser>") && text.contains("every step passed"), "{text}");
        let state = emu.state();
        let user = &state["users"][0];
        assert_eq!(user["status"], "deleted", "OpenIAM's delete is soft: {state}");
        assert_eq!(user["fields"]["lastName"], "User-Changed", "{state}");
        assert!(!user["passwordSha256"].is_null(), "never a login without a password: {user}");
        assert!(state["requests"].as_array().is_some_and(|r| r.iter().all(|r| r["problems"] == json!([]))), "every body as the WSDL has it: {state}");
    }
}

/// A second scim-bridge as the target, with an OAuth client; and this bridge delivering
/// to it through the SCIM example definition.
async fn two_bridges(db: Db) -> (TestApp, TestApp) {
    let first = spawn_app(db).await;
    let mut settings = first.settings.clone();
    let dbh = first.stop().await;
    settings.admin_token = Some(scim_bridge::config::Secret::new(crate::vendors::ADMIN));
    let downstream = spawn_with(dbh, settings).await;
    let res = downstream
        .client
        .post(format!(
            "http://127.0.0.1:{}/admin/v1/credentials/clients",
            downstream.port
        ))
        .bearer_auth(crate::vendors::ADMIN)
        .json(&json!({"name": "upstream-bridge", "scope": "scim:read scim:write"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 201);
    let client: serde_json::Value = res.json().await.expect("json");

    let first = spawn_app(db).await;
    let mut settings = first.settings.clone();
    let dbh = first.stop().await;
    settings.admin_token = Some(scim_bridge::config::Secret::new(crate::vendors::ADMIN));
    let mut c = scim_bridge::config::ConnectorConfig::new(
        "downstream",
        scim_bridge::config::ConnectorKind::Http,
        &downstream.base,
    )
    .with_credentials(
        client["client_id"].as_str().expect("id"),
        client["client_secret"].as_str().expect("secret"),
    );
    c.definition = Some(example("scim"));
    c.reconcile_requests_per_sec = 1000.0;
    c.reconcile_concurrency = 8;
    settings.connectors = vec![c];
    let upstream = spawn_with(dbh, settings).await;
    (upstream, downstream)
}

/// The user the downstream bridge holds with this userName, if any.
async fn held(downstream: &TestApp, user_name: &str) -> Option<serde_json::Value> {
    let res = downstream
        .get(&format!("/Users?filter=userName%20eq%20%22{user_name}%22"))
        .await;
    assert_eq!(res.status(), 200);
    let list: serde_json::Value = res.json().await.expect("json");
    list["Resources"]
        .as_array()
        .and_then(|r| r.first().cloned())
}

crate::each_database! {
    async fn a_user_lives_the_same_in_a_second_bridge_reached_with_oauth_through_the_scim_definition(db) {
        let (up, down) = two_bridges(db).await;
        let res = up.post("/Users", crate::vendors::full_user("ann@two.example")).await;
        assert_eq!(res.status(), 201);
        let id = res.json::<serde_json::Value>().await.expect("json")["id"].as_str().expect("id").to_string();
        up.drain().await;
        let there = held(&down, "ann@two.example").await.expect("created downstream");
        assert_eq!(there["externalId"], id.as_str(), "{there}");
        assert_eq!(there["name"]["givenName"], "Barbara");
        assert_eq!(there["active"], true);

        let path = format!("/Users/{id}");
        let patch = |ops: serde_json::Value| up.send(reqwest::Method::PATCH, &path,
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})));
        assert_eq!(patch(json!([{"op": "replace", "path": "userName", "value": "ann.lee@two.example"}])).await.status(), 200);
        up.drain().await;
        assert!(held(&down, "ann@two.example").await.is_none(), "the old userName is gone");
        let there = held(&down, "ann.lee@two.example").await.expect("renamed");
        assert_eq!(there["externalId"], id.as_str(), "the same user, renamed: {there}");

        assert_eq!(patch(json!([{"op": "replace", "path": "active", "value": false}])).await.status(), 200);
        up.drain().await;
        assert_eq!(held(&down, "ann.lee@two.example").await.expect("there")["active"], false, "deprovisioned downstream");
        assert_eq!(patch(json!([{"op": "replace", "path": "active", "value": true}])).await.status(), 200);
        up.drain().await;
        assert_eq!(held(&down, "ann.lee@two.example").await.expect("there")["active"], true);

        assert_eq!(up.delete(&format!("/Users/{id}")).await.status(), 204);
        up.drain().await;
        assert!(held(&down, "ann.lee@two.example").await.is_none(), "deleted downstream");
        let dead = up.client.get(format!("http://127.0.0.1:{}/admin/v1/jobs?state=dead", up.port))
            .bearer_auth(crate::vendors::ADMIN).send().await.expect("sent").json::<serde_json::Value>().await.expect("json");
        assert_eq!(dead["jobs"], json!([]), "{dead}");
    }

    async fn reconcile_through_the_scim_definition_pages_through_the_second_bridge_and_repairs_drift_made_there(db) {
        let (up, down) = two_bridges(db).await;
        for i in 0..130 {
            assert_eq!(up.post("/Users", crate::vendors::full_user(&format!("r{i:03}@two.example"))).await.status(), 201);
        }
        up.drain().await;
        // Behind the bridge's back: a name changed, a user disabled, one made by hand.
        let r5 = held(&down, "r005@two.example").await.expect("r005");
        let res = down.send(reqwest::Method::PATCH, &format!("/Users/{}", r5["id"].as_str().expect("id")),
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "name.familyName", "value": "Drifted"}, {"op": "replace", "path": "active", "value": false}]}))).await;
        assert_eq!(res.status(), 200);
        assert_eq!(down.post("/Users", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "handmade@two.example"})).await.status(), 201);

        let reconcile = |repair: bool| {
            let up = &up;
            async move {
                let res = up.client.post(format!("http://127.0.0.1:{}/admin/v1/connectors/downstream/reconcile?repair={repair}", up.port))
                    .bearer_auth(crate::vendors::ADMIN).send().await.expect("sent");
                assert_eq!(res.status(), 202);
                let p = up.reconciled("downstream").await;
                assert_eq!(p["state"], "finished", "{p}");
                p["report"].clone()
            }
        };
        let found = reconcile(false).await;
        let r5_line = found["results"].as_array().expect("results").iter()
            .find(|l| l["userName"] == "r005@two.example").expect("r005 line").clone();
        assert_eq!(r5_line["state"], "different", "{r5_line}");
        let fields: Vec<&str> = r5_line["fields"].as_array().expect("fields").iter().filter_map(|f| f["field"].as_str()).collect();
        assert_eq!(fields, ["familyName", "active"], "{r5_line}");
        assert_eq!(found["unknownToBridge"], json!(["handmade@two.example"]), "the list went past the first page of 100: {}", found["unknownToBridge"]);

        reconcile(true).await;
        up.drain().await;
        let r5 = held(&down, "r005@two.example").await.expect("r005");
        assert_eq!(r5["name"]["familyName"], "Jensen", "{r5}");
        assert_eq!(r5["active"], true, "{r5}");
        let after = reconcile(false).await;
        assert!(after["results"].as_array().expect("results").iter().all(|l| l["state"] == "in_sync"), "{after}");
    }
}
