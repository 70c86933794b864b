//! Reconcile against real differences: users changed or removed in the OpenIAM, Pyramid
//! and EthosCE emulators behind the bridge's back (`POST /_emulator/drift`) are found
//! through each connector's own lookup calls, reported field by field, and repaired; a
//! target that cannot be read says so.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use scim_bridge::emulator::ethosce::EthosCeEmulator;
use scim_bridge::emulator::itron::ItronEmulator;
use scim_bridge::emulator::openiam::OpenIamEmulator;
use scim_bridge::emulator::pyramid::PyramidEmulator;
use scim_bridge::emulator::webhook::WebhookEmulator;

use crate::helpers::*;
use crate::vendors::{creds, described, full_user, rig, Rig, ADMIN, SVC_PASS, SVC_USER};

const OPENIAM_PATH: &str = "/openiam-idm-esb/idmsrvc/ProvisioningService";

impl Rig {
    fn admin_call(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(
                method,
                format!("http://127.0.0.1:{}/admin/v1{path}", self.app.port),
            )
            .bearer_auth(ADMIN)
    }

    async fn drift(&self, body: Value) -> reqwest::Response {
        self.emu_post("/_emulator/drift", body).await
    }

    /// Starts a reconcile over the admin API and waits for its report.
    async fn reconcile(&self, connector: &str, repair: bool) -> Value {
        let res = self
            .admin_call(
                Method::POST,
                &format!("/connectors/{connector}/reconcile?repair={repair}"),
            )
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 202);
        let p = self.app.reconciled(connector).await;
        assert_eq!(p["state"], "finished", "{p}");
        assert_eq!(p["done"], p["total"], "{p}");
        p["report"].clone()
    }
}

/// The report's line for a user, by its userName.
fn line<'a>(report: &'a Value, user_name: &str) -> &'a Value {
    report["results"]
        .as_array()
        .and_then(|r| r.iter().find(|l| l["userName"] == user_name))
        .unwrap_or_else(|| panic!("no line for {user_name}: {report}"))
}

fn counts(report: &Value) -> (i64, i64, i64, i64) {
    let n = |k: &str| report[k].as_i64().unwrap_or(-1);
    (n("users"), n("inSync"), n("missing"), n("different"))
}

/// Three users provisioned and settled.
async fn three(r: &Rig, names: [&str; 3]) {
    for n in names {
        r.create(full_user(n)).await;
    }
    r.settle().await;
    r.no_dead_jobs().await;
}

crate::each_database! {
    async fn openiam_reconcile_finds_a_changed_field_and_a_deleted_user_and_repair_puts_both_back(db) {
        let r = rig(db, Arc::new(OpenIamEmulator::new(creds())), "openiam", OPENIAM_PATH, |c| {
            c.attributes.insert("department".into(), "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department".into());
        }).await;
        three(&r, ["ann@example.com", "bob@example.com", "cy@example.com"]).await;
        let clean = r.reconcile("openiam", false).await;
        assert_eq!(counts(&clean), (3, 3, 0, 0), "{clean}");
        assert_eq!(clean["unknownToBridge"], json!([]), "the target lists its logins");

        assert_eq!(r.drift(json!({"user": "ann@example.com", "set": {"firstName": "Eve", "department": "Sales", "secondaryStatus": "locked"}})).await.status(), 200);
        assert_eq!(r.drift(json!({"user": "bob@example.com", "delete": true})).await.status(), 200);
        assert_eq!(r.drift(json!({"user": "nobody@example.com", "delete": true})).await.status(), 404);

        let found = r.reconcile("openiam", false).await;
        assert_eq!(counts(&found), (3, 1, 1, 1), "{found}");
        let ann = line(&found, "ann@example.com");
        assert_eq!(ann["state"], "different");
        assert_eq!(ann["fields"], json!([
            {"field": "department", "target": "Sales", "bridge": "IT"},
            {"field": "firstName", "target": "Eve", "bridge": "Barbara"},
            {"field": "active", "target": false, "bridge": true},
        ]));
        assert_eq!(line(&found, "bob@example.com")["state"], "missing");
        assert_eq!(line(&found, "cy@example.com")["state"], "in_sync");
        // Nothing was sent to the target by a reconcile without repair.
        let s = r.state().await;
        assert_eq!(s["users"].as_array().map(Vec::len), Some(2));

        let repaired = r.reconcile("openiam", true).await;
        assert_eq!(repaired["repairQueued"], 2, "{repaired}");
        r.settle().await;
        r.no_dead_jobs().await;
        let s = r.state().await;
        let ann = s["users"].as_array().and_then(|u| u.iter().find(|u| u["login"] == "ann@example.com")).expect("ann").clone();
        assert_eq!(ann["fields"]["firstName"], "Barbara");
        assert_eq!(ann["attributes"]["department"], "IT");
        assert_eq!(ann["secondaryStatus"], Value::Null, "unlocked again");
        assert!(s["users"].as_array().is_some_and(|u| u.iter().any(|u| u["login"] == "bob@example.com")), "bob is back: {s}");
        let after = r.reconcile("openiam", false).await;
        assert_eq!(counts(&after), (3, 3, 0, 0), "{after}");
        // Bob's mapping names the user OpenIAM holds now.
        let bob = line(&after, "bob@example.com")["targetId"].clone();
        let standing = r.admin(&format!("/users/{}", line(&after, "bob@example.com")["id"].as_str().expect("id"))).await;
        assert_eq!(standing["connectors"][0]["targetId"], bob, "{standing}");
    }

    async fn pyramid_reconcile_finds_a_changed_email_a_disabled_user_and_a_deleted_one_and_repairs_them(db) {
        pyramid_drift_found_and_repaired(db, false).await;
    }

    async fn pyramid_reconcile_through_the_example_definition_finds_and_repairs_the_same_drift(db) {
        pyramid_drift_found_and_repaired(db, true).await;
    }

    async fn ethosce_reconcile_finds_profile_and_mail_drift_a_deleted_user_and_one_the_bridge_does_not_know(db) {
        let r = rig(db, Arc::new(EthosCeEmulator::new(creds())), "ethosce", "", |_| {}).await;
        three(&r, ["EA01", "EB02", "EC03"]).await;
        assert_eq!(r.drift(json!({"user": "EA01", "set": {"field_last_name": "Smith", "location_city": "Camden", "mail": "ea@elsewhere.example"}})).await.status(), 200);
        assert_eq!(r.drift(json!({"user": "EB02", "delete": true})).await.status(), 200);
        assert_eq!(r.drift(json!({"user": "EA01", "set": {"nickname": "x"}})).await.status(), 400);
        // A user created in Drupal by hand, as its own restws API takes it.
        let res = r.http.post(format!("{}/user", r.emu)).basic_auth(SVC_USER, Some(SVC_PASS))
            .json(&json!({"name": "handmade", "mail": "h@example.com"})).send().await.expect("sent");
        assert_eq!(res.status(), 201);

        let found = r.reconcile("ethosce", false).await;
        assert_eq!(counts(&found), (3, 1, 1, 1), "{found}");
        assert_eq!(line(&found, "EA01")["fields"], json!([
            {"field": "field_last_name", "target": "Smith", "bridge": "Jensen"},
            {"field": "location_city", "target": "Camden", "bridge": "Philadelphia"},
            {"field": "mail", "target": "ea@elsewhere.example", "bridge": "EA01"},
        ]));
        assert_eq!(line(&found, "EB02")["state"], "missing");
        assert_eq!(found["unknownToBridge"], json!(["handmade"]));

        r.reconcile("ethosce", true).await;
        r.settle().await;
        r.no_dead_jobs().await;
        let after = r.reconcile("ethosce", false).await;
        assert_eq!(counts(&after), (3, 3, 0, 0), "{after}");
        assert_eq!(after["unknownToBridge"], json!(["handmade"]), "repair leaves users it did not make alone");
    }

    async fn reconcile_lists_every_page_of_a_target_with_more_than_a_hundred_users(db) {
        let r = rig(db, Arc::new(EthosCeEmulator::new(creds())), "ethosce", "", |c| {
            c.reconcile_concurrency = 8;
            c.reconcile_requests_per_sec = 1000.0;
        }).await;
        let ops: Vec<Value> = (0..130).map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
            "data": user(&format!("pg{i:03}"))})).collect();
        let res = r.app.post("/Bulk", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops})).await;
        assert_eq!(res.status(), 200);
        r.settle().await;
        r.no_dead_jobs().await;
        let report = r.reconcile("ethosce", false).await;
        assert_eq!(counts(&report), (130, 130, 0, 0), "{}", report["results"][0]);
        assert_eq!(report["unknownToBridge"], json!([]), "all 130, over two pages");
    }

    async fn a_target_that_is_down_makes_each_user_an_error_line_and_the_report_still_finishes(db) {
        let r = rig(db, Arc::new(EthosCeEmulator::new(creds())), "ethosce", "", |_| {}).await;
        three(&r, ["DA", "DB", "DC"]).await;
        r.faults(json!({"down": true})).await;
        let report = r.reconcile("ethosce", true).await;
        assert_eq!(report["errors"], 3, "{report}");
        assert_eq!(report["repairQueued"], 0, "nothing is repaired from a read that failed");
        assert_eq!(report["unknownToBridge"], Value::Null);
        assert!(report["listError"].as_str().is_some_and(|e| e.contains("down")), "{report}");
        assert!(line(&report, "DA")["error"].as_str().is_some_and(|e| e.contains("down")), "{report}");
        r.faults(json!({})).await;
        let report = r.reconcile("ethosce", false).await;
        assert_eq!(counts(&report), (3, 3, 0, 0), "{report}");
    }

    async fn a_target_that_cannot_be_read_says_so_instead_of_guessing(db) {
        let r = rig(db, Arc::new(ItronEmulator::new(creds())), "itron", "/PortalServices/api/User/UpdateSSOUser", |_| {}).await;
        r.create(full_user("it@example.com")).await;
        r.settle().await;
        let report = r.reconcile("itron", false).await;
        assert_eq!(report["readable"], false);
        assert!(report["reason"].as_str().is_some_and(|w| w.contains("UpdateSSOUser")), "{report}");
        assert_eq!(report["results"], json!([]));
        // Its emulator keeps users, so drift works there too.
        assert_eq!(r.drift(json!({"user": "it@example.com", "set": {"firstName": "Zed"}})).await.status(), 200);
        assert_eq!(r.state().await["users"][0]["firstName"], "Zed");
    }

    async fn reconcile_requests_are_checked_and_only_one_runs_per_connector_at_a_time(db) {
        let r = rig(db, Arc::new(EthosCeEmulator::new(creds())), "ethosce", "", |c| {
            c.reconcile_concurrency = 1;
        }).await;
        three(&r, ["RA", "RB", "RC"]).await;
        let post = |path: &str| r.admin_call(Method::POST, path).send();
        let bad = post("/connectors/ethosce/reconcile?repair=maybe").await.expect("sent");
        assert_scim_error(bad, 400, Some("invalidValue")).await;
        let unknown = post("/connectors/ethosce/reconcile?fast=true").await.expect("sent");
        assert_eq!(unknown.status(), 400);
        let missing = post("/connectors/nope/reconcile").await.expect("sent");
        assert_scim_error(missing, 404, None).await;
        let never = r.admin("/connectors/ethosce/reconcile").await;
        assert_eq!(never["state"], "never");
        // Each read waits 300 ms: eight requests at once meet one running reconcile.
        r.faults(json!({"latency_ms": 300})).await;
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..8 {
            all.spawn(r.admin_call(Method::POST, "/connectors/ethosce/reconcile").send());
        }
        let mut statuses: Vec<u16> = Vec::new();
        while let Some(done) = all.join_next().await {
            statuses.push(done.expect("joined").expect("sent").status().as_u16());
        }
        assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 7, "{statuses:?}");
        let p = r.app.reconciled("ethosce").await;
        assert_eq!(p["state"], "finished", "{p}");
        assert_eq!(counts(&p["report"]), (3, 3, 0, 0), "{p}");
    }
}

crate::tests! {
    async fn an_emulator_without_users_refuses_a_drift_and_a_drift_must_say_what_it_changes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let (server, port) =
            scim_bridge::emulator::serve(Arc::new(WebhookEmulator::new(None)), listener).expect("emu");
        tokio::spawn(server);
        let http = reqwest::Client::new();
        let post = |body: Value| {
            http.post(format!("http://127.0.0.1:{port}/_emulator/drift"))
                .json(&body)
                .send()
        };
        let res = post(json!({"user": "a", "delete": true}))
            .await
            .expect("sent");
        assert_eq!(res.status(), 404);
        let res = post(json!({"user": "a"})).await.expect("sent");
        assert_eq!(res.status(), 400, "neither set nor delete");
        let res = post(json!({"who": "a"})).await.expect("sent");
        assert_eq!(res.status(), 400);
    }
}

/// Pyramid's reconcile, through the built-in connector or the example definition.
async fn pyramid_drift_found_and_repaired(db: Db, file: bool) {
    let r = rig(
        db,
        Arc::new(PyramidEmulator::new(creds())),
        "pyramid",
        "/API2",
        |c| {
            if file {
                described(c, "pyramid", "/API2");
            }
        },
    )
    .await;
    three(&r, ["pa@example.com", "pb@example.com", "pc@example.com"]).await;
    assert_eq!(
        r.drift(json!({"user": "pa@example.com", "set": {"email": "other@example.com"}}))
            .await
            .status(),
        200
    );
    assert_eq!(
        r.drift(json!({"user": "pb@example.com", "set": {"enabled": false}}))
            .await
            .status(),
        200
    );
    assert_eq!(
        r.drift(json!({"user": "pc@example.com", "delete": true}))
            .await
            .status(),
        200
    );
    assert_eq!(
        r.drift(json!({"user": "pa@example.com", "set": {"samlPrincipleName": "x"}}))
            .await
            .status(),
        400,
        "not a field of the user object"
    );

    let found = r.reconcile("pyramid", false).await;
    assert_eq!(counts(&found), (3, 0, 1, 2), "{found}");
    assert_eq!(
        line(&found, "pa@example.com")["fields"],
        json!([{"field": "email", "target": "other@example.com", "bridge": "pa@example.com"}])
    );
    assert_eq!(
        line(&found, "pb@example.com")["fields"],
        json!([{"field": "active", "target": false, "bridge": true}])
    );
    assert_eq!(line(&found, "pc@example.com")["state"], "missing");
    assert_eq!(
        found["unknownToBridge"],
        Value::Null,
        "API2 has no call that lists users"
    );

    r.reconcile("pyramid", true).await;
    r.settle().await;
    r.no_dead_jobs().await;
    let after = r.reconcile("pyramid", false).await;
    assert_eq!(counts(&after), (3, 3, 0, 0), "{after}");
    let s = r.state().await;
    assert!(
        s["users"]
            .as_array()
            .is_some_and(|u| u.iter().all(|u| u["enabled"] == true)),
        "{s}"
    );
}
