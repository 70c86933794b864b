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
