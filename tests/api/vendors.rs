//! The five vendor connectors against their emulators, through the real outbox, over HTTP,
//! on both databases; and the bridge features they rely on: sync mode, scope, coalescing,
//! passwords sealed in the outbox.

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::{Nullable, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use reqwest::Method;
use serde_json::{json, Value};

use scim_bridge::config::{ConnectorConfig, Mode, Secret};
use scim_bridge::emulator::entsso::EntSsoEmulator;
use scim_bridge::emulator::ethosce::EthosCeEmulator;
use scim_bridge::emulator::itron::ItronEmulator;
use scim_bridge::emulator::openiam::OpenIamEmulator;
use scim_bridge::emulator::pyramid::PyramidEmulator;
use scim_bridge::emulator::webhook::WebhookEmulator;
use scim_bridge::emulator::{password_digest, serve, Credentials, Emulator};

use crate::helpers::*;

pub(crate) const ADMIN: &str = "admin-token-vendors";
pub(crate) const SVC_USER: &str = "restws_bridge";
pub(crate) const SVC_PASS: &str = "s3rvice-pass";
const CALLBACK_TOKEN: &str = "callback-token-0123";
/// The userId of the service account the OpenIAM emulator starts with.
const OPENIAM_SERVICE_ACCOUNT: &str = "3000";
const ITRON_EXT: &str = "urn:scim-bridge:schemas:extension:itron:2.0:User";

/// The app with one connector wired to an in-process emulator.
pub(crate) struct Rig {
    pub(crate) app: TestApp,
    pub(crate) emu: String,
    pub(crate) http: reqwest::Client,
}

pub(crate) async fn rig<E: Emulator>(
    db: Db,
    emulator: Arc<E>,
    kind: &str,
    path: &str,
    tweak: impl FnOnce(&mut ConnectorConfig),
) -> Rig {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (server, port) = serve(emulator, listener).expect("emulator");
    tokio::spawn(server);
    let first = spawn_app(db).await;
    let mut settings = first.settings.clone();
    let db = first.stop().await;
    settings.admin_token = Some(Secret::new(ADMIN));
    settings.outbox_base_delay_ms = 50;
    settings.outbox_max_delay_ms = 200;
    settings.outbox_max_attempts = 5;
    let mut c = ConnectorConfig::new(
        kind,
        kind.parse().expect("a kind"),
        &format!("http://127.0.0.1:{port}{path}"),
    )
    .with_credentials(SVC_USER, SVC_PASS);
    c.timeout_secs = 5;
    if kind == "openiam" {
        c.options
            .insert("requestor_id".into(), OPENIAM_SERVICE_ACCOUNT.into());
    }
    if kind == "entsso" {
        c.options
            .insert("callback_token".into(), "test-callback-token".into());
    }
    tweak(&mut c);
    // A connector in sync mode answers the identity provider once a worker delivered.
    let sync = c.mode == Mode::Sync;
    settings.connectors = vec![c];
    let app = if sync {
        spawn_with_workers(db, settings).await
    } else {
        spawn_with(db, settings).await
    };
    Rig {
        app,
        emu: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::new(),
    }
}

/// Makes a connector the `http` kind, described by its vendor's example definition
/// (`examples/connectors/{vendor}.toml`), which names its own paths under `base`.
pub(crate) fn described(c: &mut ConnectorConfig, vendor: &str, base: &str) {
    use scim_bridge::config::ConnectorKind;
    // OpenIAM's is a SOAP target.
    c.kind = if vendor == "openiam" {
        ConnectorKind::Soap
    } else {
        ConnectorKind::Http
    };
    c.definition = Some(format!(
        "{}/examples/connectors/{vendor}.toml",
        env!("CARGO_MANIFEST_DIR")
    ));
    if let Some(port) = c.url.split(':').nth(2).and_then(|p| p.split('/').next()) {
        c.url = format!("http://127.0.0.1:{port}{base}");
    }
}

pub(crate) fn creds() -> Credentials {
    Credentials::new(Some(SVC_USER.into()), Some(SVC_PASS.into()))
}

impl Rig {
    pub(crate) async fn state(&self) -> Value {
        emulator_state(&self.http, &self.emu).await
    }

    pub(crate) async fn emu_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.emu))
            .json(&body)
            .send()
            .await
            .expect("sent")
    }

    pub(crate) async fn faults(&self, faults: Value) {
        set_faults(&self.http, &self.emu, faults).await;
    }

    pub(crate) async fn admin(&self, path: &str) -> Value {
        let res = self
            .http
            .get(format!("http://127.0.0.1:{}/admin/v1{path}", self.app.port))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 200, "{path}");
        res.json().await.expect("json")
    }

    /// Drains the outbox; the emulator's state then is what `check` accepts.
    pub(crate) async fn wait(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        self.app.drain().await;
        let s = self.state().await;
        assert!(check(&s), "{what}: {s}");
        s
    }

    /// Drains the outbox; the admin API's `path` then answers what `check` accepts.
    pub(crate) async fn wait_admin(
        &self,
        what: &str,
        path: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        self.app.drain().await;
        let v = self.admin(path).await;
        assert!(check(&v), "{what}: {v}");
        v
    }

    /// Asserts that no job died.
    pub(crate) async fn no_dead_jobs(&self) {
        self.settle().await;
        assert_eq!(self.admin("/jobs?state=dead").await["jobs"], json!([]));
    }

    /// Waits until the outbox is empty (every job delivered or dead).
    pub(crate) async fn settle(&self) {
        self.wait_admin("an empty queue", "/connectors", |v| {
            v["connectors"][0]["queueDepth"] == 0
        })
        .await;
    }

    pub(crate) async fn patch(&self, path: &str, ops: Value) -> reqwest::Response {
        self.app
            .send(
                Method::PATCH,
                path,
                Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})),
            )
            .await
    }

    pub(crate) async fn create(&self, body: Value) -> String {
        let res = self.app.post("/Users", body).await;
        assert_eq!(res.status(), 201);
        json(res).await["id"].as_str().expect("id").to_string()
    }
}

/// Every request an OpenIAM emulator received, held against OpenIAM's WSDL (the emulator
/// checks each body with code that reads it): nothing the real server would refuse, drop,
/// misread or read out of order; `SOAPAction: ""` as the binding declares; setPassword
/// asks for validation; every audited call names the service account.
fn assert_openiam_contract(state: &Value) {
    let requests = state["requests"].as_array().expect("requests");
    assert!(!requests.is_empty(), "no request to check");
    for r in requests {
        assert_eq!(r["problems"], json!([]), "{}", r["body"]);
        assert_eq!(r["soapAction"], "", "{}", r["body"]);
        if r["op"] == "setPassword" {
            let body = r["body"].as_str().expect("body");
            assert!(
                body.contains("<validateRequest>true</validateRequest>"),
                "{body}"
            );
        }
    }
    for a in state["audit"].as_array().expect("audit") {
        assert_eq!(a["requestor"], OPENIAM_SERVICE_ACCOUNT, "{a}");
    }
}

/// Every request a JSON emulator received, held against the vendor's documented objects
/// (the emulator binds each body as the real server does): nothing it would drop unread.
fn assert_nothing_ignored(state: &Value) {
    let requests = state["requests"].as_array().expect("requests");
    assert!(!requests.is_empty(), "no request to check");
    for r in requests {
        assert_eq!(r["ignored"], json!([]), "{r}");
    }
}

/// Every request an EthosCE emulator received is one of restws's documented calls, with
/// roles as `{"id": rid}` objects.
fn assert_ethosce_documented(state: &Value) {
    let requests = state["requests"].as_array().expect("requests");
    assert!(!requests.is_empty(), "no request to check");
    for r in requests {
        let method = r["method"].as_str().expect("method");
        let path = r["path"].as_str().expect("path");
        let query = r["query"].as_str().unwrap_or_default();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let numeric = |p: &str| p.trim_end_matches(".json").parse::<u64>().is_ok();
        let documented = match (method, parts.as_slice()) {
            ("POST", ["user" | "profile2" | "authmap"]) => true,
            // An authmap row is removed by restws's generic entity delete (vendors.md 6).
            ("PUT", ["user" | "profile2", id]) | ("DELETE", ["user" | "authmap", id]) => {
                numeric(id)
            }
            ("GET", ["user", id]) => id.ends_with(".json") && numeric(id),
            ("GET", ["user.json"]) => query.starts_with("name=") || query.starts_with("mail="),
            ("GET", ["profile2.json"]) => query.starts_with("user="),
            ("GET", ["authmap.json"]) => query.starts_with("uid="),
            _ => false,
        };
        assert!(
            documented,
            "not a documented restws call: {method} {path}?{query}"
        );
        if let Some(roles) = r["body"].get("roles") {
            assert!(
                roles
                    .as_array()
                    .is_some_and(|l| l.iter().all(|x| x.get("id").is_some())),
                "{r}"
            );
        }
    }
}

fn calls(state: &Value, op: &str) -> u64 {
    state["calls"][op].as_u64().unwrap_or(0)
}

pub(crate) fn full_user(user_name: &str) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "userName": user_name,
        "name": {"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "addresses": [{"type": "work", "streetAddress": "123 S Broad Street", "locality": "Philadelphia",
                       "region": "PA", "postalCode": "19109", "country": "us"}],
        "title": "Analyst",
        "active": true,
        ENTERPRISE: {"employeeNumber": "701", "department": "IT"}
    })
}

#[derive(QueryableByName, Debug)]
struct JobSecret {
    #[diesel(sql_type = Nullable<Text>)]
    secret: Option<String>,
    #[diesel(sql_type = Text)]
    payload: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Text)]
    event: String,
}

/// The outbox rows as the database holds them.
fn outbox_rows(url: &str) -> Vec<JobSecret> {
    let q = "SELECT secret, payload, state, event FROM outbox_jobs ORDER BY id";
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut c = diesel::SqliteConnection::establish(path).expect("sqlite");
        diesel::sql_query(q).load(&mut c).expect("rows")
    } else {
        let mut c = diesel::PgConnection::establish(url).expect("pg");
        diesel::sql_query(q).load(&mut c).expect("rows")
    }
}

use crate::each_database as on_both;

on_both! {
    async fn openiam_gets_add_user_then_only_what_changed_with_attribute_operations_roles_and_a_rename(db) {
        let r = rig(db, Arc::new(OpenIamEmulator::new(creds())), "openiam", "/openiam-idm-esb/idmsrvc/ProvisioningService", |c| {
            c.roles.insert("Analysts".into(), "END_USER".into());
            c.attributes.insert("department".into(), format!("{ENTERPRISE}:department"));
            c.attributes.insert("nick".into(), "nickName".into());
            c.options.insert("managed_sys_id".into(), "200".into());
        }).await;
        let id = r.create(full_user("andy@example.com")).await;
        let s = r.wait("the user", |s| s["users"].as_array().is_some_and(|u| u.len() == 1)).await;
        let u = &s["users"][0];
        assert_eq!(u["login"], "andy@example.com");
        assert_eq!(u["managedSysId"], "200");
        assert_eq!(u["fields"]["firstName"], "Barbara");
        assert_eq!(u["fields"]["lastName"], "Jensen");
        assert_eq!(u["fields"]["email"], "andy@example.com");
        assert_eq!(u["fields"]["employeeId"], "701");
        assert_eq!(u["attributes"]["department"], "IT");
        // Only a delete names its operation: OpenIAM decides add or replace itself.
        assert!(s["log"][0]["attributes"][0]["operation"].is_null(), "{}", s["log"][0]);
        let user_id = u["userId"].as_str().expect("userId").to_string();
        // An Entra user has no password in SCIM: the login still never has none.
        assert!(!u["passwordSha256"].is_null(), "a login without a password lets any password in");
        assert_eq!(openiam_login(&r, "andy@example.com", "anything").await["why"], "wrong password");

        // Replace one attribute, add another: nothing else sent.
        let res = r.patch(&format!("/Users/{id}"), json!([
            {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Sales"},
            {"op": "add", "path": "nickName", "value": "Andy"}])).await;
        assert_eq!(res.status(), 200);
        let s = r.wait("a modifyUser", |s| s["log"].as_array().is_some_and(|l| l.len() >= 2)).await;
        let m = &s["log"][1];
        assert_eq!(m["op"], "modifyUser");
        assert_eq!(m["userId"], user_id.as_str());
        let mut ops: Vec<(String, String)> = m["attributes"].as_array().expect("attrs").iter()
            .map(|a| (a["name"].as_str().unwrap_or("").to_string(), a["operation"].as_str().unwrap_or("").to_string())).collect();
        ops.sort();
        assert_eq!(ops, vec![("department".into(), String::new()), ("nick".into(), String::new())]);
        assert_eq!(m["fields"], json!({"lastUpdatedBy": OPENIAM_SERVICE_ACCOUNT}), "unchanged fields are not sent");
        assert_eq!(s["users"][0]["attributes"]["nick"], "Andy");

        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "remove", "path": "nickName"}])).await.status(), 200);
        let s = r.wait("a delete operation", |s| s["log"].as_array().is_some_and(|l| l.len() >= 3)).await;
        assert_eq!(s["log"][2]["attributes"], json!([{"name": "nick", "value": "Andy", "operation": "delete"}]));
        assert!(s["users"][0]["attributes"].get("nick").is_none());

        // A group mapped to a role: membership adds and removes the role.
        let gid = r.app.create_group("Analysts", &[&id]).await;
        let s = r.wait("the role", |s| s["users"][0]["roles"] == json!(["END_USER"])).await;
        assert!(s["log"].as_array().expect("log").iter().any(|l| l["roles"] == json!([{"roleId": "END_USER", "operation": "add"}])));
        r.settle().await;
        let res = r.app.send(Method::PATCH, &format!("/Groups/{gid}"), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]}))).await;
        assert_eq!(res.status(), 204);
        let s = r.wait("the role removed", |s| s["users"][0]["roles"] == json!([])).await;
        assert!(s["log"].as_array().expect("log").iter().any(|l| l["roles"] == json!([{"roleId": "END_USER", "operation": "delete"}])));

        // A password from the identity provider signs in.
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "password", "value": "Andy-Passw0rd-1"}])).await.status(), 200);
        r.wait("the password", |s| calls(s, "setPassword") == 1).await;
        assert_eq!(openiam_login(&r, "andy@example.com", "Andy-Passw0rd-1").await["signedIn"], true);

        // A rename is a principal replace with the original name, carrying a password: an
        // identity change without one leaves the login with none, open to any password.
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "userName", "value": "andrew@example.com"}])).await.status(), 200);
        let s = r.wait("the rename", |s| s["users"][0]["login"] == "andrew@example.com").await;
        let rename = s["log"].as_array().expect("log").iter().find(|l| !l["principal"].is_null() && l["op"] == "modifyUser").expect("rename");
        assert_eq!(rename["principal"], json!({"login": "andrew@example.com", "origPrincipalName": "andy@example.com", "operation": "replace"}));
        assert_eq!(openiam_login(&r, "andrew@example.com", "anything").await["why"], "wrong password");
        let standing = r.admin("/users/andrew@example.com").await;
        assert!(standing["connectors"][0]["note"].as_str().is_some_and(|n| n.contains("random one")), "the lost password is said: {standing}");

        // Deactivation disables: the unlock batch does not bring the user back.
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "password", "value": "Andrew-Passw0rd-2"}])).await.status(), 200);
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": false}])).await.status(), 200);
        r.wait("disabled", |s| s["users"][0]["secondaryStatus"] == "disabled").await;
        unlock_batch(&r).await;
        assert_eq!(openiam_login(&r, "andrew@example.com", "Andrew-Passw0rd-2").await["why"], "the user is disabled");
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": true}])).await.status(), 200);
        r.wait("enabled", |s| s["users"][0]["secondaryStatus"].is_null() && calls(s, "disableUser") == 2).await;
        assert_eq!(openiam_login(&r, "andrew@example.com", "Andrew-Passw0rd-2").await["signedIn"], true);

        let standing = r.wait_admin("synced", "/users/andrew@example.com", |v| v["connectors"][0]["state"] == "synced").await;
        assert_eq!(standing["connectors"][0]["targetId"], user_id.as_str());
        assert_eq!(standing["connectors"][0]["principal"], "andrew@example.com");

        // A delete goes by the userId; OpenIAM keeps the user as DELETED, and no one signs in.
        assert_eq!(r.app.delete(&format!("/Users/{id}")).await.status(), 204);
        let s = r.wait("deleted", |s| s["users"][0]["status"] == "deleted").await;
        assert_eq!(s["deleted"], json!([user_id]));
        assert_eq!(calls(&s, "deleteByUserId"), 1);
        assert_eq!(openiam_login(&r, "andrew@example.com", "Andrew-Passw0rd-2").await["why"], "the user is deleted");

        // Re-hired under the same userName: OpenIAM's deleted record is made active again,
        // with the new data, and the bridge reports it synced only then.
        let mut again = full_user("andrew@example.com");
        again["name"]["familyName"] = json!("Rehired");
        let rehired = r.create(again).await;
        let s = r.wait("active again", |s| s["users"][0]["status"] == "active").await;
        assert_eq!(s["users"].as_array().map(Vec::len), Some(1), "the same OpenIAM user");
        assert_eq!(s["users"][0]["fields"]["lastName"], "Rehired");
        assert_eq!(s["users"][0]["loginStatus"], "ACTIVE");
        let standing = r.wait_admin("synced", &format!("/users/{rehired}"), |v| v["connectors"][0]["state"] == "synced").await;
        assert_eq!(standing["connectors"][0]["targetId"], user_id.as_str());
        assert_openiam_contract(&s);
        r.no_dead_jobs().await;
    }

    async fn a_password_waits_behind_a_rename_openiam_refused_and_reaches_the_renamed_login_after_the_retry(db) {
        let r = rig(db, Arc::new(OpenIamEmulator::new(creds())), "openiam", "/ProvisioningService", |_| {}).await;
        let id = r.create(full_user("ren@example.com")).await;
        r.wait("the user", |s| s["users"].as_array().is_some_and(|u| u.len() == 1)).await;
        // OpenIAM refuses the rename for good: the job dies.
        r.faults(json!({"fail_next": {"count": 1, "error": "FAIL_SQL_ERORR"}})).await;
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "userName", "value": "renamed@example.com"}])).await.status(), 200);
        let dead = r.wait_admin("the rename died", "/jobs?state=dead", |v| v["jobs"].as_array().is_some_and(|j| j.len() == 1)).await;
        let job = dead["jobs"][0]["id"].as_i64().expect("id");
        // The password that follows waits behind it, rather than go to a login OpenIAM does
        // not have.
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "password", "value": "Renamed-Passw0rd-1"}])).await.status(), 200);
        let waiting = r.wait_admin("the password waits", "/jobs?state=pending", |v| v["jobs"].as_array().is_some_and(|j| j.len() == 1)).await;
        assert_eq!(waiting["jobs"][0]["state"], "blocked", "{waiting}");
        let s = r.state().await;
        assert_eq!(calls(&s, "setPassword"), 0, "{}", s["calls"]);
        assert_eq!(s["users"][0]["login"], "ren@example.com");
        // Retried, the rename lands, then the password, on the renamed login.
        let res = r.http.post(format!("http://127.0.0.1:{}/admin/v1/jobs/{job}/retry", r.app.port)).bearer_auth(ADMIN).send().await.expect("retry");
        assert_eq!(res.status(), 200);
        let s = r.wait("renamed, then the password", |s| s["users"][0]["login"] == "renamed@example.com" && calls(s, "setPassword") == 1).await;
        assert_eq!(openiam_login(&r, "renamed@example.com", "Renamed-Passw0rd-1").await["signedIn"], true, "{}", s["users"][0]);
        r.no_dead_jobs().await;
    }

    async fn a_rename_openiam_refused_can_be_discarded_and_the_password_behind_it_reaches_the_login_openiam_has(db) {
        let r = rig(db, Arc::new(OpenIamEmulator::new(creds())), "openiam", "/ProvisioningService", |_| {}).await;
        let id = r.create(full_user("kept@example.com")).await;
        r.wait("the user", |s| s["users"].as_array().is_some_and(|u| u.len() == 1)).await;
        r.faults(json!({"fail_next": {"count": 1, "error": "FAIL_SQL_ERORR"}})).await;
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "userName", "value": "other@example.com"}])).await.status(), 200);
        let dead = r.wait_admin("the rename died", "/jobs?state=dead", |v| v["jobs"].as_array().is_some_and(|j| j.len() == 1)).await;
        let job = dead["jobs"][0]["id"].as_i64().expect("id");
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "password", "value": "Kept-Passw0rd-1"}])).await.status(), 200);
        let standing = r.wait_admin("blocked", &format!("/users/{id}"), |v| v["connectors"][0]["state"] == "dead").await;
        assert!(standing["connectors"][0]["lastError"].is_string(), "{standing}");
        let post = |path: String| r.http.post(format!("http://127.0.0.1:{}/admin/v1{path}", r.app.port)).bearer_auth(ADMIN).send();
        assert_eq!(post("/jobs/999999/discard".into()).await.expect("sent").status(), 404);
        // Discarded, the rename never reaches OpenIAM; the password behind it goes to the
        // login OpenIAM has.
        let res = post(format!("/jobs/{job}/discard")).await.expect("sent");
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.expect("json"), json!({"discarded": 1}));
        let s = r.wait("the password", |s| calls(s, "setPassword") == 1).await;
        assert_eq!(s["users"][0]["login"], "kept@example.com");
        assert_eq!(openiam_login(&r, "kept@example.com", "Kept-Passw0rd-1").await["signedIn"], true);
        r.no_dead_jobs().await;
        let standing = r.admin(&format!("/users/{id}")).await;
        assert_eq!(standing["connectors"][0]["state"], "synced", "{standing}");
        assert_eq!(standing["connectors"][0]["principal"], "kept@example.com", "{standing}");
    }

    async fn openiam_adopts_a_user_whose_principal_exists_instead_of_failing_on_duplicate_principal(db) {
        let r = rig(db, Arc::new(OpenIamEmulator::new(creds())), "openiam", "/ProvisioningService", |_| {}).await;
        // The user already exists in OpenIAM (made there by hand).
        let soap = "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:prov=\"http://www.openiam.org/service/provision\" xmlns:dto=\"urn:idm.openiam.org/srvc/user/dto\"><soapenv:Body><prov:addUser><user><dto:firstName>Old</dto:firstName><principalList><id><domainId>USR_SEC_DOMAIN</domainId><login>dup@example.com</login><managedSysId>0</managedSysId></id></principalList></user></prov:addUser></soapenv:Body></soapenv:Envelope>";
        let res = r.http.post(format!("{}/ProvisioningService", r.emu)).basic_auth(SVC_USER, Some(SVC_PASS)).header("SOAPAction", "\"\"").body(soap).send().await.expect("sent");
        assert!(res.text().await.expect("text").contains("status=\"success\""));
        r.create(full_user("dup@example.com")).await;
        let standing = r.wait_admin("adopted", "/users/dup@example.com", |v| v["connectors"][0]["state"] == "synced").await;
        assert_eq!(standing["connectors"][0]["targetId"], "U000001");
        assert_eq!(standing["connectors"][0]["note"], "adopted the existing user U000001");
        assert!(standing["connectors"][0]["lastError"].is_null());
        let s = r.state().await;
        assert_eq!(s["users"].as_array().expect("users").len(), 1, "no second user");
        assert_eq!(calls(&s, "addUser"), 2);
        assert_eq!(calls(&s, "getLoginByManagedSys"), 1, "found through the login service");
        assert_eq!(calls(&s, "getTargetSystemUser"), 0);
        assert_eq!(s["users"][0]["fields"]["firstName"], "Barbara", "the adopted user is brought up to date");
        assert_openiam_contract(&s);
    }

    async fn openiam_disables_with_its_requestor_clears_a_removed_field_with_null_and_retries_fail_connection(db) {
        let r = rig(db, Arc::new(OpenIamEmulator::new(creds())), "openiam", "/openiam-idm-esb/idmsrvc/ProvisioningService", |c| {
            c.options.insert("deactivate".into(), "disable".into());
        }).await;
        let id = r.create(full_user("dis@example.com")).await;
        r.wait("the user", |s| s["users"][0]["fields"]["title"] == "Analyst").await;
        r.settle().await;
        // A connection failure inside OpenIAM is transient: the job is retried, not buried.
        r.faults(json!({"fail_next": {"count": 1, "error": "FAIL_CONNECTION"}})).await;
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "remove", "path": "title"}])).await.status(), 200);
        let s = r.wait("title cleared", |s| s["users"][0]["fields"].get("title").is_none()).await;
        assert_eq!(calls(&s, "modifyUser"), 2, "refused once, then delivered");
        let cleared = s["log"].as_array().expect("log").iter().rev().find(|l| l["op"] == "modifyUser").expect("modify");
        assert_eq!(cleared["fields"]["title"], "null", "OpenIAM clears a field given the literal null");
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": false}])).await.status(), 200);
        let s = r.wait("disabled", |s| s["users"][0]["secondaryStatus"] == "disabled").await;
        assert_eq!(s["audit"].as_array().expect("audit").last().expect("audit")["op"], "disableUser");
        r.settle().await;
        assert_eq!(r.admin("/jobs?state=dead").await["jobs"], json!([]));
        assert_openiam_contract(&s);
    }

    async fn openiam_password_policy_failures_are_permanent_and_in_sync_mode_a_scim_400(db) {
        let r = rig(db, Arc::new(OpenIamEmulator::new(creds())), "openiam", "/ProvisioningService", |c| {
            c.mode = Mode::Sync;
        }).await;
        let mut body = full_user("pw@example.com");
        body["password"] = json!("Initial-Passw0rd");
        let id = r.create(body).await;
        // In sync mode the answer comes after delivery: the target already has it.
        let s = r.state().await;
        assert_eq!(s["users"][0]["passwordSha256"], password_digest("Initial-Passw0rd"));
        let res = r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "password", "value": "short"}])).await;
        let err = assert_scim_error(res, 400, Some("invalidValue")).await;
        assert!(err["detail"].as_str().expect("detail").contains("FAIL_LENGTH_RULE"), "{err}");
        let res = r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "password", "value": "Better-Passw0rd!"}])).await;
        assert_eq!(res.status(), 200);
        assert_eq!(r.state().await["users"][0]["passwordSha256"], password_digest("Better-Passw0rd!"));
        // OpenIAM has the new name already (made there, not through the bridge): the rename is
        // refused with DUPLICATE_PRINCIPAL, answered 409, and undone in the bridge.
        let soap = "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:prov=\"http://www.openiam.org/service/provision\" xmlns:dto=\"urn:idm.openiam.org/srvc/user/dto\"><soapenv:Body><prov:addUser><user><principalList><id><login>elsewhere@example.com</login><managedSysId>0</managedSysId></id></principalList></user></prov:addUser></soapenv:Body></soapenv:Envelope>";
        r.http.post(format!("{}/ProvisioningService", r.emu)).basic_auth(SVC_USER, Some(SVC_PASS)).header("SOAPAction", "\"\"").body(soap).send().await.expect("sent");
        let res = r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "userName", "value": "elsewhere@example.com"}])).await;
        let err = assert_scim_error(res, 409, Some("uniqueness")).await;
        assert!(err["detail"].as_str().expect("detail").contains("DUPLICATE_PRINCIPAL"), "{err}");
        let now = json(r.app.get(&format!("/Users/{id}")).await).await;
        assert_eq!(now["userName"], "pw@example.com");
        assert!(outbox_rows(&r.app.db.url()).is_empty(), "nothing left in the outbox");
        assert_openiam_contract(&r.state().await);
    }

    async fn a_password_waits_in_the_outbox_sealed_and_is_erased_when_its_job_dies(db) {
        let r = rig(db, Arc::new(OpenIamEmulator::new(creds())), "openiam", "/ProvisioningService", |_| {}).await;
        r.faults(json!({"down": true})).await;
        let mut body = full_user("sealed@example.com");
        body["password"] = json!("tiny-pw");
        r.create(body).await;
        let rows = outbox_rows(&r.app.db.url());
        assert_eq!(rows.iter().map(|j| j.event.as_str()).collect::<Vec<_>>(), vec!["user.created", "user.password_set"]);
        let sealed = rows[1].secret.as_deref().expect("the password job holds a sealed password");
        assert!(!sealed.contains("tiny-pw"));
        assert!(rows.iter().all(|j| !j.payload.contains("tiny-pw")), "never in a payload");
        r.faults(json!({"down": false})).await;
        // The emulator's policy refuses 7 characters: the job dies, and its password goes.
        let dead = r.wait_admin("a dead job", "/jobs?state=dead", |v| v["jobs"].as_array().is_some_and(|j| j.len() == 1)).await;
        assert!(dead["jobs"][0]["lastError"].as_str().expect("error").contains("FAIL_LENGTH_RULE"));
        let rows = outbox_rows(&r.app.db.url());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, "dead");
        assert!(rows[0].secret.is_none(), "erased when dead");
    }

    async fn pyramid_creates_saml_users_with_a_cached_token_renewed_when_refused_and_roles_from_groups(db) {
        let r = rig(db, Arc::new(PyramidEmulator::new(creds())), "pyramid", "/API2", |c| {
            c.roles.insert("Pros".into(), "role-pro".into());
            c.options.insert("group_licenses".into(), toml::Value::Table([("Pros".to_string(), toml::Value::Integer(200))].into_iter().collect()));
        }).await;
        let a = r.create(full_user("a@saml.example")).await;
        let b = r.create(full_user("b@saml.example")).await;
        let s = r.wait("two users", |s| s["users"].as_array().is_some_and(|u| u.len() == 2)).await;
        assert_eq!(calls(&s, "authenticateuser"), 1, "the token is cached");
        let ua = s["users"].as_array().expect("users").iter().find(|u| u["principalName"] == "a@saml.example").expect("a").clone();
        assert_eq!(ua["id"], a.as_str(), "the SCIM id is the Pyramid id");
        assert_eq!(ua["clientLicenseType"], 100);
        assert_eq!(ua["enabled"], true);
        r.settle().await;
        // The token expires: the next call is refused, a new token is taken, the call made.
        r.faults(json!({"fail_next": {"count": 1, "status": 401, "error": "token_expired"}})).await;
        assert_eq!(r.patch(&format!("/Users/{a}"), json!([{"op": "replace", "path": "name.givenName", "value": "Paul"}])).await.status(), 200);
        let s = r.wait("the update", |s| s["users"].as_array().is_some_and(|u| u.iter().any(|u| u["firstName"] == "Paul"))).await;
        assert_eq!(calls(&s, "authenticateuser"), 2);
        r.app.create_group("Pros", &[&b]).await;
        r.wait("the role", |s| s["users"].as_array().is_some_and(|u| u.iter().any(|u| u["id"] == b.as_str() && u["roleIds"] == json!(["role-pro"])))).await;
        assert_eq!(r.patch(&format!("/Users/{b}"), json!([{"op": "replace", "path": "active", "value": false}])).await.status(), 200);
        let s = r.wait("disabled", |s| s["users"].as_array().is_some_and(|u| u.iter().any(|u| u["id"] == b.as_str() && u["enabled"] == false))).await;
        assert_eq!(calls(&s, "toggleenableuser"), 1, "the documented call for the enabled state");
        // A rename reaches Pyramid as UpdateUserSamlObject's principalName.
        assert_eq!(r.patch(&format!("/Users/{a}"), json!([{"op": "replace", "path": "userName", "value": "a2@saml.example"}])).await.status(), 200);
        r.wait("renamed", |s| s["users"].as_array().is_some_and(|u| u.iter().any(|u| u["id"] == a.as_str() && u["principalName"] == "a2@saml.example"))).await;
        assert_eq!(r.app.delete(&format!("/Users/{b}")).await.status(), 204);
        r.wait("deleted", |s| s["deleted"] == json!([b])).await;
        // A user that joins Pros before its create reaches Pyramid is created with the
        // group's licence and role.
        r.settle().await;
        r.faults(json!({"down": true})).await;
        let c = r.create(full_user("c@saml.example")).await;
        let res = r.patch(&format!("/Groups/{}", r.admin("/groups/Pros").await["id"].as_str().expect("gid")),
            json!([{"op": "add", "path": "members", "value": [{"value": c}]}])).await;
        assert_eq!(res.status(), 204);
        r.faults(json!({"down": false})).await;
        let s = r.wait("c", |s| s["users"].as_array().is_some_and(|u| u.iter().any(|u| u["id"] == c.as_str() && u["roleIds"] == json!(["role-pro"])))).await;
        let uc = s["users"].as_array().expect("users").iter().find(|u| u["id"] == c.as_str()).expect("c").clone();
        assert_eq!(uc["clientLicenseType"], 200);
        // Leaving the group removes the role; a removed name is cleared; reactivation.
        let pros = r.admin("/groups/Pros").await["id"].as_str().expect("gid").to_string();
        assert_eq!(r.patch(&format!("/Groups/{pros}"), json!([{"op": "remove", "path": format!("members[value eq \"{c}\"]")}])).await.status(), 204);
        assert_eq!(r.patch(&format!("/Users/{c}"), json!([{"op": "remove", "path": "name.familyName"}, {"op": "replace", "path": "active", "value": false}])).await.status(), 200);
        r.wait("c disabled", |s| s["users"].as_array().is_some_and(|u| u.iter().any(|u| u["id"] == c.as_str() && u["enabled"] == false))).await;
        assert_eq!(r.patch(&format!("/Users/{c}"), json!([{"op": "replace", "path": "active", "value": true}])).await.status(), 200);
        let s = r.wait("c", |s| s["users"].as_array().is_some_and(|u| u.iter().any(|u| u["id"] == c.as_str()
            && u["roleIds"] == json!([]) && u["lastName"].is_null() && u["enabled"] == true))).await;
        assert_nothing_ignored(&s);
        r.no_dead_jobs().await;
    }

    async fn pyramid_looks_a_user_up_by_principal_before_creating_and_speaks_the_documented_variants(db) {
        let r = rig(db, Arc::new(PyramidEmulator::new(creds())), "pyramid", "/API2", |c| {
            c.options.insert("create_method".into(), "createUserSaml".into());
            c.options.insert("update_method".into(), "updateSamlUsers".into());
        }).await;
        // A user made in Pyramid before the bridge knew it.
        let token = r.http.post(format!("{}/API2/auth/authenticateUser", r.emu))
            .json(&json!({"data": {"userName": SVC_USER, "password": SVC_PASS}})).send().await.expect("sent").text().await.expect("token");
        let made = r.emu_post("/API2/access/createSamlUser", json!({"newSamlUser": {"samlPrincipleName": "pre@saml.example", "firstName": "Old"}, "auth": token})).await;
        let pre_id = json(made).await["data"]["modifiedList"][0]["id"].as_str().expect("id").to_string();
        r.create(full_user("pre@saml.example")).await;
        let standing = r.wait_admin("adopted", "/users/pre@saml.example", |v| v["connectors"][0]["state"] == "synced").await;
        assert_eq!(standing["connectors"][0]["targetId"], pre_id.as_str());
        let s = r.state().await;
        assert_eq!(calls(&s, "createusersaml"), 0, "found, not created");
        assert_eq!(calls(&s, "getuserbysamlprincipalname"), 1);
        assert!(calls(&s, "updatesamlusers") >= 1, "brought up to date with the configured method name");
        assert_eq!(s["users"][0]["firstName"], "Barbara");
        r.create(full_user("new@saml.example")).await;
        let mut inactive = full_user("off@saml.example");
        inactive["active"] = json!(false);
        r.create(inactive).await;
        let s = r.wait("created", |s| s["users"].as_array().is_some_and(|u| u.len() == 3)).await;
        assert_eq!(calls(&s, "createusersaml"), 2);
        let made = s["users"].as_array().expect("users").iter().find(|u| u["principalName"] == "new@saml.example").expect("new").clone();
        assert_eq!(made["userName"], "new@saml.example", "CreateUserSamlObject's required userName");
        let s = r.wait("disabled after create", |s| s["users"].as_array().is_some_and(|u| u.iter().any(|u| u["principalName"] == "off@saml.example" && u["enabled"] == false))).await;
        assert_nothing_ignored(&s);
    }

    async fn ethosce_creates_the_user_its_profile_and_saml_authmap_and_blocks_on_deactivation(db) {
        let r = rig(db, Arc::new(EthosCeEmulator::new(creds())), "ethosce", "", |c| {
            c.roles.insert("Authors".into(), "105847459".into());
        }).await;
        let id = r.create(full_user("TU06503")).await;
        let s = r.wait("user, profile, authmap", |s| s["authmaps"].as_array().is_some_and(|a| a.len() == 1)).await;
        let u = &s["users"][0];
        assert_eq!(u["name"], "TU06503");
        assert_eq!(u["status"], 1);
        let p = &s["profiles"][0];
        assert_eq!(p["user"], u["uid"]);
        assert_eq!(p["field_first_name"], "Barbara");
        assert_eq!(p["field_middle_name"], "Jane");
        assert_eq!(p["field_last_name"], "Jensen");
        assert_eq!(p["field_profile_location"], json!({"street": "123 S Broad Street", "city": "Philadelphia", "province": "PA", "postal_code": "19109", "country": "us"}));
        assert_eq!(s["authmaps"][0]["authname"], "TU06503");
        assert_eq!(s["authmaps"][0]["module"], "simplesamlphp_auth");
        assert_eq!(s["authmaps"][0]["uid"], u["uid"]);
        r.app.create_group("Authors", &[&id]).await;
        r.wait("the role", |s| s["users"][0]["roles"] == json!([{"id": 105847459}])).await;
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": false}])).await.status(), 200);
        r.wait("blocked", |s| s["users"][0]["status"] == 0).await;
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": true},
            {"op": "replace", "path": "name.familyName", "value": "Smith"}])).await.status(), 200);
        let s = r.wait("unblocked and renamed", |s| s["users"][0]["status"] == 1 && s["profiles"][0]["field_last_name"] == "Smith").await;
        assert_eq!(s["profiles"].as_array().expect("p").len(), 1, "the profile is updated, not added");
        assert_eq!(s["authmaps"].as_array().expect("a").len(), 1);
        // A new userName renames the Drupal user and moves its SAML mapping: the new name
        // signs in to the account, the old one no longer does.
        assert_eq!(saml_login(&r, "TU06503").await["uid"], s["users"][0]["uid"]);
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "userName", "value": "TU06504"}])).await.status(), 200);
        let s = r.wait("renamed", |s| s["users"][0]["name"] == "TU06504").await;
        assert_eq!(s["authmaps"].as_array().map(Vec::len), Some(1), "{s}");
        assert_eq!(s["authmaps"][0]["authname"], "TU06504");
        assert_eq!(saml_login(&r, "TU06504").await["uid"], s["users"][0]["uid"]);
        assert_eq!(saml_login(&r, "TU06503").await["signedIn"], false, "the old SAML name reaches nobody");
        // Leaving the group removes the role; a removed middle name is cleared; delete.
        let authors = r.admin("/groups/Authors").await["id"].as_str().expect("gid").to_string();
        assert_eq!(r.patch(&format!("/Groups/{authors}"), json!([{"op": "remove", "path": "members"}])).await.status(), 204);
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "remove", "path": "name.middleName"}])).await.status(), 200);
        r.wait("role and middle name gone", |s| s["users"][0]["roles"] == json!([]) && s["profiles"][0]["field_middle_name"] == "").await;
        r.no_dead_jobs().await;
        assert_eq!(r.app.delete(&format!("/Users/{id}")).await.status(), 204);
        let s = r.wait("deleted", |s| s["users"] == json!([])).await;
        r.no_dead_jobs().await;
        assert_ethosce_documented(&s);
    }

    async fn ethosce_never_lets_a_reused_saml_name_reach_the_account_of_the_person_who_had_it(db) {
        let r = rig(db, Arc::new(EthosCeEmulator::new(creds())), "ethosce", "", |_| {}).await;
        // Ann has ann@example.com; she is renamed, and her old name is given to a new Ann.
        let ann = r.create(full_user("ann@example.com")).await;
        r.wait("Ann", |s| s["authmaps"].as_array().is_some_and(|a| a.len() == 1)).await;
        let first_uid = r.state().await["users"][0]["uid"].clone();
        assert_eq!(r.patch(&format!("/Users/{ann}"), json!([{"op": "replace", "path": "userName", "value": "ann.old@example.com"}])).await.status(), 200);
        r.wait("Ann renamed", |s| s["users"][0]["name"] == "ann.old@example.com").await;
        let newcomer = r.create(full_user("ann@example.com")).await;
        let s = r.wait("the newcomer", |s| s["users"].as_array().is_some_and(|u| u.len() == 2)).await;
        let second_uid = s["users"].as_array().expect("users").iter().find(|u| u["name"] == "ann@example.com").expect("newcomer")["uid"].clone();
        assert_ne!(first_uid, second_uid);
        // The name signs the newcomer in to their own account, and the renamed Ann's name
        // to hers.
        assert_eq!(saml_login(&r, "ann@example.com").await["uid"], second_uid);
        assert_eq!(saml_login(&r, "ann.old@example.com").await["uid"], first_uid);
        r.no_dead_jobs().await;
        // A SAML name already mapped to another account (an administrator mapped it by
        // hand) is neither taken nor shared: the create stops with a conflict.
        let res = r.http.post(format!("{}/_emulator/drift", r.emu)).json(&json!({"user": "ann.old@example.com", "set": {"authname": "carl@example.com"}})).send().await.expect("drift");
        assert_eq!(res.status(), 200);
        let carl = r.create(full_user("carl@example.com")).await;
        let dead = r.wait_admin("a dead create", "/jobs?state=dead", |v| v["jobs"].as_array().is_some_and(|j| j.len() == 1)).await;
        assert_eq!(dead["jobs"][0]["resourceId"], carl.as_str());
        let error = dead["jobs"][0]["lastError"].as_str().expect("error");
        assert!(error.contains("already signs in to another EthosCE account"), "{error}");
        assert_eq!(saml_login(&r, "carl@example.com").await["uid"], first_uid, "still only where it was");
        let _ = newcomer;
        assert_ethosce_documented(&r.state().await);
    }

    async fn ethosce_adopts_the_user_drupal_answers_duplicate_entry_for(db) {
        let r = rig(db, Arc::new(EthosCeEmulator::new(creds())), "ethosce", "", |_| {}).await;
        let res = r.http.post(format!("{}/user", r.emu)).basic_auth(SVC_USER, Some(SVC_PASS))
            .json(&json!({"name": "racer", "mail": "racer@example.com", "status": 1})).send().await.expect("sent");
        assert_eq!(res.status(), 201);
        // The bridge's lookup comes back empty, as when the name is taken a moment after it:
        // the create then meets Drupal's unique key.
        r.faults(json!({"fail_next": {"count": 1, "status": 200, "error": "{\"list\": []}"}})).await;
        r.create(full_user("racer")).await;
        let standing = r.wait_admin("adopted", "/users/racer", |v| v["connectors"][0]["state"] == "synced").await;
        assert!(standing["connectors"][0]["note"].as_str().expect("note").starts_with("adopted the existing user"), "{standing}");
        let s = r.state().await;
        assert_eq!(s["users"].as_array().expect("users").len(), 1);
        assert_eq!(calls(&s, "POST user"), 2, "the set-up's create and the bridge's refused one");
        assert_ethosce_documented(&s);
    }

    async fn ethosce_plain_text_errors_are_recorded_and_a_user_it_has_is_adopted(db) {
        let r = rig(db, Arc::new(EthosCeEmulator::new(creds())), "ethosce", "", |c| {
            c.attributes.insert("field_bogus".into(), "title".into());
        }).await;
        // A user EthosCE already has, with no authmap yet.
        let res = r.http.post(format!("{}/user", r.emu)).basic_auth(SVC_USER, Some(SVC_PASS))
            .json(&json!({"name": "known", "mail": "known@example.com", "status": 1})).send().await.expect("sent");
        assert_eq!(res.status(), 201);
        r.create(full_user("known")).await;
        let dead = r.wait_admin("a dead job", "/jobs?state=dead", |v| v["jobs"].as_array().is_some_and(|j| j.len() == 1)).await;
        assert_eq!(dead["jobs"][0]["lastError"], "POST /profile2: 406 Not Acceptable: Unknown data properties: field_bogus.");
        let s = r.state().await;
        assert_eq!(s["users"].as_array().expect("users").len(), 1, "looked up by name, not made twice");
        assert_eq!(calls(&s, "POST user"), 1, "only the set-up's own create");
        let standing = r.admin("/users/known").await;
        assert_eq!(standing["connectors"][0]["state"], "dead");
    }

    async fn itron_upserts_the_user_with_its_accounts_and_empties_them_on_deactivation_and_delete(db) {
        let r = rig(db, Arc::new(ItronEmulator::new(creds())), "itron", "/PortalServices/api/User/UpdateSSOUser", |_| {}).await;
        let mut body = full_user("meter@example.com");
        body["schemas"] = json!([USER, ITRON_EXT]);
        body[ITRON_EXT] = json!({"accountIds": ["A-100", "A-200"]});
        let id = r.create(body).await;
        let s = r.wait("the user", |s| s["users"].as_array().is_some_and(|u| u.len() == 1)).await;
        assert_eq!(s["users"][0], json!({"username": "meter@example.com", "email": "meter@example.com", "firstName": "Barbara",
            "lastName": "Jensen", "accountIds": ["A-100", "A-200"], "updates": 1}));
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}])).await.status(), 200);
        r.wait("new email", |s| s["users"][0]["email"] == "new@example.com").await;
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": false}])).await.status(), 200);
        r.wait("no accounts", |s| s["users"][0]["accountIds"] == json!([])).await;
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": true}])).await.status(), 200);
        r.wait("accounts back", |s| s["users"][0]["accountIds"] == json!(["A-100", "A-200"])).await;
        assert_eq!(r.app.delete(&format!("/Users/{id}")).await.status(), 204);
        let s = r.wait("no accounts after delete", |s| s["users"][0]["accountIds"] == json!([])).await;
        assert_eq!(s["users"].as_array().expect("users").len(), 1, "the portal has no delete");
        assert_nothing_ignored(&s);
    }

    async fn itron_leaves_the_portals_own_accounts_to_a_user_the_identity_provider_gave_none(db) {
        let r = rig(db, Arc::new(ItronEmulator::new(creds())), "itron", "/PortalServices/api/User/UpdateSSOUser", |_| {}).await;
        // An Okta or Entra user: no account IDs in its SCIM document.
        let id = r.create(full_user("plain@example.com")).await;
        let s = r.wait("the user", |s| s["users"].as_array().is_some_and(|u| u.len() == 1)).await;
        assert_eq!(s["users"][0]["accountIds"], json!([]));
        assert!(s["requests"][0]["body"].get("accountIds").is_none(), "sent without the list: {s}");
        // The utility's own site gives the user an account; a change from the identity
        // provider does not take it away.
        assert_eq!(r.emu_post("/_emulator/drift", json!({"user": "plain@example.com", "set": {"accountIds": ["SITE-1"]}})).await.status(), 200);
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "name.familyName", "value": "Kept"}])).await.status(), 200);
        let s = r.wait("renamed family", |s| s["users"][0]["lastName"] == "Kept").await;
        assert_eq!(s["users"][0]["accountIds"], json!(["SITE-1"]), "{s}");
        // Deprovisioning still removes every account, the site's included.
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": false}])).await.status(), 200);
        let s = r.wait("deactivated", |s| s["users"][0]["accountIds"] == json!([])).await;
        assert_eq!(s["users"][0]["lastName"], "Kept");
        assert_eq!(r.app.delete(&format!("/Users/{id}")).await.status(), 204);
        r.wait("deleted", |s| s["users"][0]["accountIds"] == json!([])).await;
        r.no_dead_jobs().await;
    }

    async fn itron_told_to_manage_accounts_sends_an_empty_list_for_a_user_without_account_ids(db) {
        let r = rig(db, Arc::new(ItronEmulator::new(creds())), "itron", "/PortalServices/api/User/UpdateSSOUser", |c| {
            c.options.insert("manage_accounts".into(), true.into());
        }).await;
        let id = r.create(full_user("owned@example.com")).await;
        r.wait("the user", |s| s["users"].as_array().is_some_and(|u| u.len() == 1)).await;
        assert_eq!(r.emu_post("/_emulator/drift", json!({"user": "owned@example.com", "set": {"accountIds": ["SITE-1"]}})).await.status(), 200);
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "name.familyName", "value": "Owned"}])).await.status(), 200);
        let s = r.wait("the identity provider's list, empty", |s| s["users"][0]["lastName"] == "Owned").await;
        assert_eq!(s["users"][0]["accountIds"], json!([]), "the identity provider owns the list: {s}");
        r.no_dead_jobs().await;
    }

    async fn itron_renames_by_freeing_the_old_username_first_and_binds_names_in_any_case(db) {
        let r = rig(db, Arc::new(ItronEmulator::new(creds())), "itron", "/PortalServices/api/User/UpdateSSOUser", |c| {
            // Itron's services emit PascalCase: the portal binds names without regard to case.
            for (from, to) in [("username", "UserName"), ("email", "Email"), ("firstName", "FirstName"),
                               ("lastName", "LastName"), ("accountIds", "AccountIDs")] {
                let path = scim_bridge::connectors::itron::DEFAULTS.iter().find(|(f, _)| *f == from).expect("default").1;
                c.attributes.insert(from.into(), String::new());
                c.attributes.insert(to.into(), path.into());
            }
            c.options.insert("username_field".into(), "UserName".into());
            c.options.insert("accounts_field".into(), "AccountIDs".into());
            c.options.insert("email_field".into(), "Email".into());
        }).await;
        let mut body = full_user("old@example.com");
        body["schemas"] = json!([USER, ITRON_EXT]);
        body[ITRON_EXT] = json!({"accountIds": ["A-1"]});
        let id = r.create(body).await;
        r.wait("the user", |s| s["users"][0]["accountIds"] == json!(["A-1"])).await;
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "userName", "value": "new@example.com"}])).await.status(), 200);
        let s = r.wait("renamed", |s| s["users"].as_array().is_some_and(|u| u.len() == 2)).await;
        let by = |name: &str| s["users"].as_array().expect("users").iter().find(|u| u["username"] == name).expect(name).clone();
        let (old, new) = (by("old@example.com"), by("new@example.com"));
        assert_eq!(old["accountIds"], json!([]));
        assert!(old["email"].is_null(), "the old username gives its email up: {old}");
        assert_eq!(new["email"], "old@example.com");
        assert_eq!(new["accountIds"], json!(["A-1"]));
        assert_eq!(new["firstName"], "Barbara");
        r.settle().await;
        assert_eq!(r.admin("/jobs?state=dead").await["jobs"], json!([]));
        assert_nothing_ignored(&r.state().await);
    }

    async fn itron_duplicate_email_is_permanent_and_a_sync_create_answers_409_keeping_nothing(db) {
        let r = rig(db, Arc::new(ItronEmulator::new(creds())), "itron", "/PortalServices/api/User/UpdateSSOUser", |c| {
            c.mode = Mode::Sync;
        }).await;
        let mut one = full_user("one@example.com");
        one["emails"] = json!([{"value": "shared@example.com", "primary": true}]);
        r.create(one).await;
        let mut two = full_user("two@example.com");
        two["emails"] = json!([{"value": "shared@example.com", "primary": true}]);
        let res = r.app.post("/Users", two).await;
        let err = assert_scim_error(res, 409, Some("uniqueness")).await;
        assert!(err["detail"].as_str().expect("detail").contains("already in use"), "{err}");
        let found = json(r.app.get("/Users?filter=userName%20eq%20%22two@example.com%22").await).await;
        assert_eq!(found["totalResults"], 0, "nothing half-applied in the bridge");
        assert_eq!(r.state().await["users"].as_array().expect("users").len(), 1);
        assert!(outbox_rows(&r.app.db.url()).is_empty());
    }

    async fn entsso_password_change_is_accepted_with_a_tracking_id_and_completed_by_the_callback(db) {
        let emulator = Arc::new(EntSsoEmulator::new(creds(), None));
        let r = rig(db, emulator, "entsso", "/SendNotification", |c| {
            c.options.insert("callback_token".into(), CALLBACK_TOKEN.into());
        }).await;
        let cb = format!("http://127.0.0.1:{}/callbacks/entsso/entsso", r.app.port);
        assert_eq!(r.emu_post("/_emulator/callback", json!({"url": cb, "token": CALLBACK_TOKEN, "auto": true})).await.status(), 200);
        let mut body = full_user("sso@example.com");
        body["password"] = json!("N3w-Passw0rd");
        r.create(body).await;
        let s = r.wait("a notification", |s| s["notifications"].as_array().is_some_and(|n| n.len() == 1)).await;
        let n = &s["notifications"][0];
        assert_eq!(n["notificationType"], 3);
        assert_eq!(n["flags"], 1);
        assert_eq!(n["externalAccount"], "sso@example.com");
        assert_eq!(n["passwordSha256"], password_digest("N3w-Passw0rd"));
        let tracking = n["trackingId"].as_str().expect("tracking").to_string();
        // ENTSSO completes on its own time: its callback has been answered once it says so.
        eventually("ENTSSO called back", Duration::from_secs(20), async || {
            (r.state().await["notifications"][0]["state"] == "completed").then_some(())
        })
        .await;
        let standing = r.wait_admin("completed", "/users/sso@example.com", |v| v["notifications"][0]["state"] == "completed").await;
        assert_eq!(standing["notifications"][0]["trackingId"], tracking.as_str());
        assert_eq!(standing["connectors"][0]["state"], "synced", "{standing}");
        // A completion with an error marks it failed; a wrong callback token is refused.
        let id = standing["id"].as_str().expect("id").to_string();
        assert_eq!(r.emu_post("/_emulator/callback", json!({"url": cb, "token": CALLBACK_TOKEN, "auto": false})).await.status(), 200);
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "password", "value": "An0ther-Passw0rd"}])).await.status(), 200);
        let standing = r.wait_admin("accepted", "/users/sso@example.com", |v| v["connectors"][0]["state"] == "accepted").await;
        let second = standing["notifications"][1]["trackingId"].as_str().expect("second").to_string();
        let res = r.http.post(&cb).bearer_auth("wrong").json(&json!({"trackingId": second, "errorCode": 0})).send().await.expect("sent");
        assert_eq!(res.status(), 401);
        // A tracking id with U+0000 names no notification: a clear 400, on PostgreSQL too.
        let res = r.http.post(&cb).bearer_auth(CALLBACK_TOKEN).json(&json!({"trackingId": "{A\u{0}}", "errorCode": 0})).send().await.expect("sent");
        assert_eq!(res.status(), 400, "{}", res.text().await.unwrap_or_default());
        let res = r.emu_post("/_emulator/complete", json!({"trackingId": second, "errorCode": 5, "errorMessage": "no mapping for the account"})).await;
        assert_eq!(json(res).await["callbackStatus"], 200);
        let standing = r.wait_admin("failed", "/users/sso@example.com", |v| v["connectors"][0]["state"] == "failed").await;
        assert_eq!(standing["notifications"][1]["state"], "failed");
        assert!(standing["connectors"][0]["lastError"].as_str().expect("error").contains("no mapping for the account"));
    }

    async fn entsso_ignores_placeholder_passwords_on_create_retries_no_server_and_gives_up_on_access_denied(db) {
        let r = rig(db, Arc::new(EntSsoEmulator::new(creds(), None)), "entsso", "/SendNotification", |c| {
            c.ignore_password_on_create = true;
        }).await;
        let mut body = full_user("okta@example.com");
        body["password"] = json!("Okta-placeholder-123");
        let id = r.create(body).await;
        r.settle().await;
        let s = r.state().await;
        assert_eq!(s["notifications"], json!([]), "the create's password is not sent");
        r.faults(json!({"fail_next": {"count": 1, "error": "ENTSSO_E_NO_SERVER"}})).await;
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "password", "value": "Real-Passw0rd"}])).await.status(), 200);
        let s = r.wait("delivered after a retry", |s| s["notifications"].as_array().is_some_and(|n| n.len() == 1)).await;
        assert_eq!(calls(&s, "SendNotification"), 2);
        assert_eq!(s["notifications"][0]["passwordSha256"], password_digest("Real-Passw0rd"));
        r.faults(json!({"fail_next": {"count": 1, "error": "E_ACCESSDENIED"}})).await;
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "password", "value": "Third-Passw0rd"}])).await.status(), 200);
        let dead = r.wait_admin("dead", "/jobs?state=dead", |v| v["jobs"].as_array().is_some_and(|j| j.len() == 1)).await;
        assert!(dead["jobs"][0]["lastError"].as_str().expect("error").contains("E_ACCESSDENIED"));
        assert_eq!(dead["jobs"][0]["attempts"], 1, "not retried");
        assert!(outbox_rows(&r.app.db.url()).iter().all(|j| j.secret.is_none()));
    }

    async fn entsso_sends_documented_flags_and_takes_numeric_hresults_by_configuration(db) {
        let emulator = Arc::new(EntSsoEmulator::new(creds(), None).numeric());
        let r = rig(db, emulator, "entsso", "/SendNotification", |c| {
            // TEST | AUDIT: valid when sending, as Microsoft documents them.
            c.options.insert("flags".into(), toml::Value::Integer(0x18));
            c.options.insert("hresults".into(), toml::Value::Table(
                [("0xC0002A0F".to_string(), toml::Value::String("ENTSSO_E_NO_SERVER".into()))].into_iter().collect()));
        }).await;
        let mut body = full_user("num@example.com");
        body["password"] = json!("Numeric-Passw0rd");
        let id = r.create(body).await;
        let s = r.wait("accepted", |s| s["notifications"].as_array().is_some_and(|n| n.len() == 1)).await;
        assert_eq!(s["notifications"][0]["flags"], 0x18);
        // The adapter answers a number: configured as ENTSSO_E_NO_SERVER, it is retried.
        r.faults(json!({"fail_next": {"count": 1, "error": "0xC0002A0F"}})).await;
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "password", "value": "Second-Passw0rd"}])).await.status(), 200);
        let s = r.wait("delivered after a retry", |s| s["notifications"].as_array().is_some_and(|n| n.len() == 2)).await;
        assert_eq!(calls(&s, "SendNotification"), 3);
        // E_ACCESSDENIED as a number (0x80070005) is still a refusal.
        r.faults(json!({"fail_next": {"count": 1, "error": "E_ACCESSDENIED"}})).await;
        assert_eq!(r.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "password", "value": "Third-Passw0rd"}])).await.status(), 200);
        let dead = r.wait_admin("dead", "/jobs?state=dead", |v| v["jobs"].as_array().is_some_and(|j| j.len() == 1)).await;
        let error = dead["jobs"][0]["lastError"].as_str().expect("error");
        assert!(error.contains("E_ACCESSDENIED") && error.contains("-2147024891"), "{error}");
    }

    async fn a_sync_connector_that_refuses_a_change_fails_the_scim_write_and_leaves_nothing_behind(db) {
        let r = rig(db, Arc::new(WebhookEmulator::new(None)), "webhook", "/events", |c| {
            c.mode = Mode::Sync;
            c.username = None;
            c.password = None;
        }).await;
        r.faults(json!({"fail_next": {"count": 1, "status": 422, "error": "employee number required"}})).await;
        let res = r.app.post("/Users", user("refused@example.com")).await;
        let err = assert_scim_error(res, 400, Some("invalidValue")).await;
        assert!(err["detail"].as_str().expect("detail").contains("employee number required"), "{err}");
        let found = json(r.app.get("/Users?filter=userName%20eq%20%22refused@example.com%22").await).await;
        assert_eq!(found["totalResults"], 0);
        let id = r.app.create_user("kept@example.com").await;
        r.faults(json!({"fail_next": {"count": 1, "status": 400, "error": "no titles here"}})).await;
        let res = r.patch(&format!("/Users/{id}"), json!([{"op": "add", "path": "title", "value": "Boss"}])).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
        let now = json(r.app.get(&format!("/Users/{id}")).await).await;
        assert!(now.get("title").is_none(), "the refused change was undone: {now}");
        assert!(outbox_rows(&r.app.db.url()).is_empty(), "no dead job left to replay");
    }

    async fn a_refused_sync_delete_puts_the_user_back_in_its_groups(db) {
        let r = rig(db, Arc::new(WebhookEmulator::new(None)), "webhook", "/events", |c| {
            c.mode = Mode::Sync;
            c.username = None;
            c.password = None;
        }).await;
        let id = r.app.create_user("member@example.com").await;
        let gid = r.app.create_group("Keepers", &[&id]).await;
        r.faults(json!({"fail_next": {"count": 1, "status": 422, "error": "leavers are handled by HR"}})).await;
        assert_scim_error(r.app.delete(&format!("/Users/{id}")).await, 400, Some("invalidValue")).await;
        let user = json(r.app.get(&format!("/Users/{id}")).await).await;
        assert_eq!(user["groups"][0]["value"], gid.as_str(), "{user}");
        let group = json(r.app.get(&format!("/Groups/{gid}")).await).await;
        assert_eq!(group["members"], json!([{"value": id, "type": "User", "display": "member@example.com",
            "$ref": format!("{}/Users/{id}", r.app.base)}]), "{group}");
    }

    async fn a_user_outside_the_scope_groups_waits_until_it_joins_one_and_is_disabled_when_it_leaves(db) {
        let r = rig(db, Arc::new(OpenIamEmulator::new(creds())), "openiam", "/ProvisioningService", |c| {
            c.scope_groups = vec!["Staff".into()];
        }).await;
        let id = r.create(full_user("scoped@example.com")).await;
        let standing = r.wait_admin("out of scope", "/users/scoped@example.com", |v| v["connectors"][0]["state"] == "out_of_scope").await;
        assert!(standing["connectors"][0]["targetId"].is_null());
        assert_eq!(r.state().await["users"], json!([]));
        let gid = r.app.create_group("Staff", &[&id]).await;
        r.wait("provisioned on joining", |s| s["users"].as_array().is_some_and(|u| u.len() == 1)).await;
        r.wait_admin("mapped", "/users/scoped@example.com", |v| v["connectors"][0]["targetId"] == "U000001").await;
        r.settle().await;
        let res = r.app.send(Method::PATCH, &format!("/Groups/{gid}"), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": "members"}]}))).await;
        assert_eq!(res.status(), 204);
        let s = r.wait("disabled on leaving", |s| s["users"][0]["secondaryStatus"] == "disabled").await;
        unlock_batch(&r).await;
        assert_eq!(openiam_login(&r, "scoped@example.com", "anything").await["why"], "the user is disabled");
        assert_openiam_contract(&s);
    }
}

crate::tests! {
    fn check_config_knows_every_vendor_kind_and_checks_their_options_and_mappings() {
        let text = r#"
    [[connector]]
    name = "iam"
    kind = "openiam"
    url = "http://iam.example/ProvisioningService"
    options = { deactivate = "explode" }

    [[connector]]
    name = "py"
    kind = "pyramid"
    url = "http://py.example/API2"
    attributes = { email = "emails[type co \"work\"].value" }

    [[connector]]
    name = "sso"
    kind = "entsso"
    url = "http://sso.example/SendNotification"
    options = { flags = 2 }

    [[connector]]
    name = "ok"
    kind = "itron"
    url = "http://portal.example/PortalServices/api/User/UpdateSSOUser"
    options = { accounts_field = "Accounts" }
    attributes = { Accounts = "urn:scim-bridge:schemas:extension:itron:2.0:User:accountIds" }
    "#;
        let problems = scim_bridge::config::check_file(text);
        let lines: Vec<usize> = problems.iter().filter_map(|p| p.line()).collect();
        assert_eq!(lines, vec![6, 10, 12, 18, 22], "{problems:?}");
        assert!(problems[0]
            .message
            .contains("'explode' is not one of the choices"));
        assert!(problems[1]
            .message
            .contains("Pyramid signs in: username is required"));
        assert!(problems[2].message.contains("only [attribute eq value]"));
        assert!(problems[4]
            .message
            .contains("Itron signs in: username is required"));
    }
}

/// Starts one emulator in this process; returns its base URL.
fn start<E: Emulator>(e: Arc<E>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (server, port) = serve(e, listener).expect("emulator");
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

/// Drains the outbox; the emulator at `base` then holds what `check` accepts.
async fn wait_state(
    app: &TestApp,
    http: &reqwest::Client,
    base: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    app.drain().await;
    let s = emulator_state(http, base).await;
    assert!(check(&s), "{what}: {s}");
    s
}

on_both! {
    async fn one_user_with_a_password_address_accounts_and_a_mapped_group_appears_in_all_five_targets(db) {
        let http = reqwest::Client::new();
        let openiam = start(Arc::new(OpenIamEmulator::new(creds())));
        let pyramid = start(Arc::new(PyramidEmulator::new(creds())));
        let ethosce = start(Arc::new(EthosCeEmulator::new(creds())));
        let itron = start(Arc::new(ItronEmulator::new(creds())));
        let entsso = start(Arc::new(EntSsoEmulator::new(creds(), None)));
        let first = spawn_app(db).await;
        let mut settings = first.settings.clone();
        let dbh = first.stop().await;
        settings.admin_token = Some(Secret::new(ADMIN));
        settings.outbox_base_delay_ms = 50;
        settings.outbox_max_delay_ms = 200;
        let mut connectors = Vec::new();
        for (kind, url, role) in [
            ("openiam", format!("{openiam}/openiam-idm-esb/idmsrvc/ProvisioningService"), Some("END_USER")),
            ("pyramid", format!("{pyramid}/API2"), Some("role-analyst")),
            ("ethosce", ethosce.clone(), Some("175031666")),
            ("itron", format!("{itron}/PortalServices/api/User/UpdateSSOUser"), None),
            ("entsso", format!("{entsso}/SendNotification"), None),
        ] {
            let mut c = ConnectorConfig::new(kind, kind.parse().expect("a kind"), &url).with_credentials(SVC_USER, SVC_PASS);
            if kind == "entsso" {
                c.options.insert("callback_token".into(), "test-callback-token".into());
            }
            if kind == "openiam" {
                c.options.insert("requestor_id".into(), OPENIAM_SERVICE_ACCOUNT.into());
            }
            if let Some(r) = role {
                c.roles.insert("Analysts".into(), r.into());
            }
            connectors.push(c);
        }
        settings.connectors = connectors;
        let app = spawn_with(dbh, settings).await;
        let mut body = full_user("five@example.com");
        body["schemas"] = json!([USER, ENTERPRISE, ITRON_EXT]);
        body[ITRON_EXT] = json!({"accountIds": ["ACC-1"]});
        body["password"] = json!("Five-Targets-1");
        let res = app.post("/Users", body).await;
        assert_eq!(res.status(), 201);
        let id = json(res).await["id"].as_str().expect("id").to_string();
        app.create_group("Analysts", &[&id]).await;

        let s = wait_state(&app, &http, &openiam, "openiam", |s| s["users"][0]["roles"] == json!(["END_USER"]) && !s["users"][0]["passwordSha256"].is_null()).await;
        assert_eq!(s["users"][0]["login"], "five@example.com");
        assert_eq!(s["users"][0]["fields"]["lastName"], "Jensen");
        assert_eq!(s["users"][0]["passwordSha256"], password_digest("Five-Targets-1"));
        assert_openiam_contract(&s);
        let s = wait_state(&app, &http, &pyramid, "pyramid", |s| s["users"][0]["roleIds"] == json!(["role-analyst"])).await;
        assert_eq!(s["users"][0]["principalName"], "five@example.com");
        assert_nothing_ignored(&s);
        assert_eq!(s["users"][0]["email"], "five@example.com");
        let s = wait_state(&app, &http, &ethosce, "ethosce", |s| s["users"][0]["roles"] == json!([{"id": 175031666}])).await;
        assert_eq!(s["profiles"][0]["field_profile_location"]["city"], "Philadelphia");
        assert_eq!(s["authmaps"][0]["authname"], "five@example.com");
        let s = wait_state(&app, &http, &itron, "itron", |s| s["users"].as_array().is_some_and(|u| u.len() == 1)).await;
        assert_eq!(s["users"][0]["accountIds"], json!(["ACC-1"]));
        assert_eq!(s["users"][0]["email"], "five@example.com");
        let s = wait_state(&app, &http, &entsso, "entsso", |s| s["notifications"].as_array().is_some_and(|n| n.len() == 1)).await;
        assert_eq!(s["notifications"][0]["externalAccount"], "five@example.com");
        assert_eq!(s["notifications"][0]["passwordSha256"], password_digest("Five-Targets-1"));
        let standing: Value = http.get(format!("http://127.0.0.1:{}/admin/v1/users/five@example.com", app.port))
            .bearer_auth(ADMIN).send().await.expect("sent").json().await.expect("json");
        let targets: Vec<&str> = standing["connectors"].as_array().expect("c").iter().filter_map(|c| c["targetId"].as_str()).collect();
        assert_eq!(targets.len(), 5, "{standing}");
        let itron_note = standing["connectors"].as_array().expect("c").iter().find(|c| c["connector"] == "itron").expect("itron")["note"].clone();
        assert_eq!(itron_note, "itron does not support user.password_set: skipped", "a skip is a note, not an error");
    }
}

/// POSTs `body` to one of the emulator's own endpoints (`/_emulator/...`); its JSON answer.
pub(crate) async fn emulator_call(r: &Rig, path: &str, body: Value) -> Value {
    r.http
        .post(format!("{}{path}", r.emu))
        .json(&body)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .unwrap_or(Value::Null)
}

/// What OpenIAM's sign-in answers for this login and password (the emulator's check).
async fn openiam_login(r: &Rig, login: &str, password: &str) -> Value {
    emulator_call(
        r,
        "/_emulator/login",
        json!({"login": login, "password": password}),
    )
    .await
}

/// Runs OpenIAM's unlock batch (bulkUnLock) in the emulator.
async fn unlock_batch(r: &Rig) -> Value {
    emulator_call(r, "/_emulator/unlock_batch", json!({})).await
}

/// Where an EthosCE SAML sign-in with `authname` lands (the emulator's sign-in check).
async fn saml_login(r: &Rig, authname: &str) -> Value {
    emulator_call(r, "/_emulator/saml_login", json!({"authname": authname})).await
}

/// POSTs JSON to an emulator, with or without HTTP Basic.
async fn post_as(
    http: &reqwest::Client,
    url: &str,
    auth: Option<(&str, &str)>,
    body: Value,
) -> (u16, String) {
    let mut req = http.post(url).json(&body);
    if let Some((u, p)) = auth {
        req = req.basic_auth(u, Some(p));
    }
    let res = req.send().await.expect("sent");
    (res.status().as_u16(), res.text().await.expect("text"))
}

crate::tests! {
    async fn the_ethosce_emulator_answers_as_restws_does_to_what_it_does_not_take() {
        let http = reqwest::Client::new();
        let base = start(Arc::new(EthosCeEmulator::new(creds())));
        let user = format!("{base}/user");
        let me = Some((SVC_USER, SVC_PASS));
        let (status, text) = post_as(&http, &user, None, json!({"name": "a", "mail": "a@x"})).await;
        assert_eq!(
            (status, text.as_str()),
            (403, "403 Access Denied"),
            "anonymous"
        );
        let (status, _) = post_as(
            &http,
            &user,
            Some((SVC_USER, "wrong")),
            json!({"name": "a", "mail": "a@x"}),
        )
        .await;
        assert_eq!(status, 403, "a wrong password is an anonymous request");
        assert_eq!(
            post_as(&http, &user, me, json!({"name": "a", "mail": "a@x"}))
                .await
                .0,
            201
        );
        let (status, text) = post_as(&http, &user, me, json!({"name": "a", "mail": "b@x"})).await;
        assert_eq!(status, 500);
        assert!(
            text.contains("Integrity constraint violation: 1062 Duplicate entry 'a' for key 'name'"),
            "{text}"
        );
        assert_eq!(
            post_as(&http, &user, me, json!({"name": "b", "mail": "a@x"}))
                .await
                .0,
            201,
            "a duplicate mail is accepted"
        );
        let (status, text) = post_as(
            &http,
            &user,
            me,
            json!({"name": "c", "mail": "c@x", "roles": [3]}),
        )
        .await;
        assert_eq!(status, 500);
        assert!(text.contains("PHP Fatal error"), "{text}");
        let (status, text) = post_as(
            &http,
            &user,
            me,
            json!({"name": "d", "mail": "d@x", "nickname": "D"}),
        )
        .await;
        assert_eq!(
            (status, text.as_str()),
            (
                406,
                "406 Not Acceptable: Unknown data properties: nickname."
            )
        );
        // Over a user's life: an authmap row signs its name in until it is removed or
        // changed, whatever happens to the user's name.
        let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
            let mut req = http.request(method, format!("{base}/{path}")).basic_auth(SVC_USER, Some(SVC_PASS));
            if let Some(b) = body {
                req = req.json(&b);
            }
            async move {
                let res = req.send().await.expect("sent");
                (res.status().as_u16(), res.text().await.expect("text"))
            }
        };
        let login = |name: &str| {
            let req = http.post(format!("{base}/_emulator/saml_login")).json(&json!({"authname": name}));
            async move { req.send().await.expect("sent").json::<Value>().await.expect("json") }
        };
        let (_, made) = call(reqwest::Method::POST, "user", Some(json!({"name": "e", "mail": "e@x"}))).await;
        let uid = serde_json::from_str::<Value>(&made).expect("reference")["id"].as_str().expect("uid").to_string();
        let (status, made) = call(reqwest::Method::POST, "authmap", Some(json!({"uid": uid, "authname": "e-saml", "module": "simplesamlphp_auth"}))).await;
        assert_eq!(status, 201);
        let aid = serde_json::from_str::<Value>(&made).expect("reference")["id"].as_str().expect("aid").to_string();
        assert_eq!(login("e-saml").await["uid"], uid.as_str());
        assert_eq!(call(reqwest::Method::PUT, &format!("user/{uid}"), Some(json!({"name": "e2"}))).await.0, 200);
        assert_eq!(login("e-saml").await["uid"], uid.as_str(), "a renamed user keeps its old SAML name");
        let (status, text) = call(reqwest::Method::POST, "authmap", Some(json!({"uid": uid, "authname": "E-SAML", "module": "x"}))).await;
        assert_eq!(status, 500, "authnames are unique: {text}");
        assert_eq!(call(reqwest::Method::PUT, &format!("authmap/{aid}"), Some(json!({"authname": "e2-saml"}))).await.0, 200);
        assert_eq!(login("e-saml").await["signedIn"], false);
        assert_eq!(login("e2-saml").await["uid"], uid.as_str());
        assert_eq!(call(reqwest::Method::PUT, &format!("user/{uid}"), Some(json!({"status": 0}))).await.0, 200);
        assert_eq!(login("e2-saml").await["why"], "the account is blocked");
        assert_eq!(call(reqwest::Method::DELETE, &format!("authmap/{aid}"), None).await.0, 200);
        assert_eq!(login("e2-saml").await["why"], "no account maps this SAML name");
        // What restws refuses.
        assert_eq!(call(reqwest::Method::PUT, &format!("user/{uid}"), Some(json!({"uid": "1"}))).await, (422, "422 Unprocessable Entity: Unable to change uid".to_string()));
        let (status, text) = call(reqwest::Method::POST, "profile2", Some(json!({"user": uid, "label": "Profile"}))).await;
        assert_eq!((status, text.as_str()), (406, "406 Not Acceptable: Missing bundle: type"));
        let res = http.post(format!("{base}/user")).basic_auth(SVC_USER, Some(SVC_PASS)).body(json!({"name": "f", "mail": "f@x"}).to_string()).send().await.expect("sent");
        assert_eq!(res.status(), 404, "without a JSON Content-Type it is not a restws request");
        assert_eq!(call(reqwest::Method::DELETE, &format!("user/{uid}"), None).await.0, 200);
        assert_eq!(call(reqwest::Method::DELETE, &format!("user/{uid}"), None).await.0, 404);
    }
}

crate::tests! {
    async fn the_entsso_emulator_refuses_flags_and_types_microsoft_does_not_document_for_sending() {
        let http = reqwest::Client::new();
        let base = start(Arc::new(EntSsoEmulator::new(creds(), None)));
        let url = format!("{base}/SendNotification");
        let me = Some((SVC_USER, SVC_PASS));
        let send = |kind: i64, flags: i64| {
            json!({"NotificationType": kind, "ulNotificationFlags": flags,
            "PasswordChange": {"externalAccount": "a", "newPassword": "p", "oldPassword": "", "timestamp": 0}})
        };
        for (kind, flags, answer) in [
            (3, 0x1, "S_OK"),
            (3, 0x8 | 0x10, "S_OK"),
            (3, 0, "S_OK"),
            (3, 0x40, "E_INVALIDARG"),
            (3, 0x80, "E_INVALIDARG"),
            (9, 0x1, "ENTSSO_E_INVALID_NOTIFICATION"),
        ] {
            let (status, text) = post_as(&http, &url, me, send(kind, flags)).await;
            assert_eq!(status, 200);
            let v: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(v["hresult"], answer, "type {kind} flags {flags:#x}");
        }
    }
}

/// A SOAP call to an emulator: (HTTP status, reply text).
async fn soap(http: &reqwest::Client, url: &str, action: &str, body: &str) -> (u16, String) {
    let envelope = format!(
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:prov=\"http://www.openiam.org/service/provision\" \
         xmlns:dto=\"urn:idm.openiam.org/srvc/user/dto\" xmlns:auth=\"urn:idm.openiam.org/srvc/auth/service\" xmlns:role=\"urn:idm.openiam.org/srvc/role/dto\"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    );
    let res = http
        .post(url)
        .header("SOAPAction", action)
        .body(envelope)
        .send()
        .await
        .expect("sent");
    (res.status().as_u16(), res.text().await.expect("text"))
}

crate::tests! {
    async fn the_openiam_emulator_refuses_and_misreads_what_openiams_cxf_server_does() {
        let http = reqwest::Client::new();
        let base = start(Arc::new(OpenIamEmulator::new(Credentials::default())));
        let prov = format!("{base}/openiam-idm-esb/idmsrvc/ProvisioningService");
        let login = format!("{base}/openiam-idm-esb/idmsrvc/LoginDataWebService");
        // What the bridge used to send: requestorId inside <user> is not declared by ProvisionUser.
        let (status, text) = soap(&http, &prov, "\"\"", "<prov:addUser><user><dto:firstName>A</dto:firstName><requestorId>x</requestorId></user></prov:addUser>").await;
        assert_eq!(status, 500);
        assert!(text.contains("Unmarshalling Error: unexpected element (uri:&quot;&quot;, local:&quot;requestorId&quot;)"), "{text}");
        // A SOAPAction naming the operation, where the binding declares "".
        let (status, text) = soap(
            &http,
            &prov,
            "\"addUser\"",
            "<prov:addUser><user/></prov:addUser>",
        )
        .await;
        assert_eq!(status, 500);
        assert!(
            text.contains("The given SOAPAction addUser does not match an operation."),
            "{text}"
        );
        // dto:principalList is the User field the service ignores: it makes its own login.
        let (_, text) = soap(&http, &prov, "\"\"", "<prov:addUser><user><dto:firstName>Ann</dto:firstName><dto:lastName>Lee</dto:lastName>\
            <dto:principalList><id><login>ann@example.com</login></id></dto:principalList></user></prov:addUser>").await;
        assert!(text.contains("status=\"success\""), "{text}");
        let s = emulator_state(&http, &base).await;
        assert_eq!(
            s["users"][0]["login"], "ann.lee",
            "the principal sent that way is not used"
        );
        let user_id = s["users"][0]["userId"].as_str().expect("id").to_string();
        // lockUser with a requestorId that is no OpenIAM user: the service's NullPointerException.
        let (status, text) = soap(&http, &prov, "\"\"", &format!("<prov:lockUser><userId>{user_id}</userId><operation>locked</operation><requestorId>scim-bridge</requestorId></prov:lockUser>")).await;
        assert_eq!(status, 500);
        assert!(text.contains("NullPointerException"), "{text}");
        let (_, text) = soap(&http, &prov, "\"\"", &format!("<prov:lockUser><userId>{user_id}</userId><operation>locked</operation><requestorId>3000</requestorId></prov:lockUser>")).await;
        assert!(text.contains("status=\"success\""), "{text}");
        // disableUser reads `requestor`; a requestorId is skipped and the audit names nobody.
        let (_, text) = soap(&http, &prov, "\"\"", &format!("<prov:disableUser><userId>{user_id}</userId><operation>true</operation><requestorId>3000</requestorId></prov:disableUser>")).await;
        assert!(text.contains("status=\"success\""), "{text}");
        let s = emulator_state(&http, &base).await;
        assert_eq!(
            s["audit"].as_array().expect("audit").last().expect("last")["requestor"],
            Value::Null
        );
        assert_eq!(
            s["requests"]
                .as_array()
                .expect("requests")
                .last()
                .expect("last")["problems"][0]["severity"],
            "ignored"
        );
        // getTargetSystemUser's LookupUserResponse has no userId; getLoginByManagedSys's Login has.
        let (_, text) = soap(&http, &prov, "\"\"", "<prov:getTargetSystemUser><principalName>ann.lee</principalName><managedSysId>0</managedSysId></prov:getTargetSystemUser>").await;
        assert!(
            text.contains("<principalName>ann.lee</principalName>") && !text.contains("userId"),
            "{text}"
        );
        let (_, text) = soap(&http, &login, "\"\"", "<auth:getLoginByManagedSys><domainId></domainId><principal>ann.lee</principal><managedSysId>0</managedSysId></auth:getLoginByManagedSys>").await;
        assert!(
            text.contains(&format!("<userId>{user_id}</userId>")),
            "{text}"
        );
    }
}

crate::tests! {
    async fn the_openiam_emulator_does_to_a_user_over_time_what_openiams_service_code_does() {
        let http = reqwest::Client::new();
        let base = start(Arc::new(OpenIamEmulator::new(Credentials::default())));
        let prov = format!("{base}/openiam-idm-esb/idmsrvc/ProvisioningService");
        let login = format!("{base}/openiam-idm-esb/idmsrvc/LoginDataWebService");
        let sign_in = |who: &str, password: &str| {
            let req = http.post(format!("{base}/_emulator/login")).json(&json!({"login": who, "password": password}));
            async move { req.send().await.expect("sent").json::<Value>().await.expect("json") }
        };
        let ok = |text: &str| assert!(text.contains("status=\"success\""), "{text}");
        let principal = |login: &str| format!("<principalList><id><domainId>D</domainId><login>{login}</login><managedSysId>0</managedSysId></id></principalList>");
        // A login made without a password keeps NULL: that login module lets any password in.
        let (_, text) = soap(&http, &prov, "\"\"", &format!("<prov:addUser><user><dto:firstName>Nil</dto:firstName>{}</user></prov:addUser>", principal("nil"))).await;
        ok(&text);
        assert_eq!(sign_in("nil", "any guess").await["signedIn"], true);
        let id = emulator_state(&http, &base).await["users"][0]["userId"].as_str().expect("id").to_string();
        // resetPassword with a blank password makes one from the policy; setPassword checks
        // the policy even when validateRequest is false.
        let sync = |op: &str, password: &str| format!("<prov:{op}><passwordSync><managedSystemId>0</managedSystemId><principal>nil</principal><password>{password}</password><validateRequest>false</validateRequest></passwordSync></prov:{op}>");
        let (_, text) = soap(&http, &prov, "\"\"", &sync("setPassword", "short")).await;
        assert!(text.contains("FAIL_LENGTH_RULE"), "{text}");
        ok(&soap(&http, &prov, "\"\"", &sync("resetPassword", "")).await.1);
        assert_eq!(sign_in("nil", "any guess").await["why"], "wrong password");
        ok(&soap(&http, &prov, "\"\"", &sync("setPassword", "Nil-Passw0rd")).await.1);
        assert_eq!(sign_in("nil", "Nil-Passw0rd").await["signedIn"], true);
        // `locked` is a lock-out, which the unlock batch clears; `locked_admin` stays.
        let lock = |op: &str| format!("<prov:lockUser><userId>{id}</userId><operation>{op}</operation><requestorId>3000</requestorId></prov:lockUser>");
        ok(&soap(&http, &prov, "\"\"", &lock("locked")).await.1);
        assert_eq!(sign_in("nil", "Nil-Passw0rd").await["why"], "the login is locked");
        http.post(format!("{base}/_emulator/unlock_batch")).send().await.expect("batch");
        assert_eq!(sign_in("nil", "Nil-Passw0rd").await["signedIn"], true, "the batch unlocked it");
        ok(&soap(&http, &prov, "\"\"", &lock("locked_admin")).await.1);
        http.post(format!("{base}/_emulator/unlock_batch")).send().await.expect("batch");
        assert_eq!(sign_in("nil", "Nil-Passw0rd").await["why"], "the login is locked");
        // An identity change without a password: the login's password becomes NULL and its
        // lock is cleared, locked_admin included.
        let (_, text) = soap(&http, &prov, "\"\"", &format!("<prov:modifyUser><user><dto:userId>{id}</dto:userId><principalList><id><domainId>D</domainId><login>nil2</login><managedSysId>0</managedSysId></id><operation>replace</operation><origPrincipalName>nil</origPrincipalName></principalList></user></prov:modifyUser>")).await;
        ok(&text);
        assert_eq!(sign_in("nil2", "any guess").await["signedIn"], true, "unlocked, and any password");
        // disableUser stays through the batch and through an identity change.
        ok(&soap(&http, &prov, "\"\"", &format!("<prov:disableUser><userId>{id}</userId><operation>true</operation><requestor>3000</requestor></prov:disableUser>")).await.1);
        http.post(format!("{base}/_emulator/unlock_batch")).send().await.expect("batch");
        assert_eq!(sign_in("nil2", "x").await["why"], "the user is disabled");
        // A replace of an attribute the user lacks, and modifyUser of an unknown userId: faults.
        let (status, text) = soap(&http, &prov, "\"\"", &format!("<prov:modifyUser><user><dto:userAttributes><dto:userAttributeEntry key=\"dept\"><dto:userAttribute><dto:name>dept</dto:name><dto:value>IT</dto:value><dto:operation>replace</dto:operation></dto:userAttribute></dto:userAttributeEntry></dto:userAttributes><dto:userId>{id}</dto:userId></user></prov:modifyUser>")).await;
        assert_eq!(status, 500, "{text}");
        assert!(text.contains("NullPointerException"), "{text}");
        let (status, text) = soap(&http, &prov, "\"\"", "<prov:modifyUser><user><dto:firstName>X</dto:firstName><dto:userId>NOPE</dto:userId></user></prov:modifyUser>").await;
        assert_eq!(status, 500);
        assert!(text.contains("IllegalArgumentException"), "{text}");
        // A `delete` role on a user with no role adds it.
        ok(&soap(&http, &prov, "\"\"", &format!("<prov:modifyUser><user><dto:userId>{id}</dto:userId><memberOfRoles><role:id><role:roleId>R1</role:roleId></role:id><role:operation>delete</role:operation></memberOfRoles></user></prov:modifyUser>")).await.1);
        assert_eq!(emulator_state(&http, &base).await["users"][0]["roles"], json!(["R1"]));
        // deleteUser is a soft delete: the login stays, found by the login service, and an
        // addUser of it is DUPLICATE_PRINCIPAL.
        ok(&soap(&http, &prov, "\"\"", "<prov:deleteUser><managedSystemId>0</managedSystemId><principal>nil2</principal><requestorId>3000</requestorId></prov:deleteUser>").await.1);
        let s = emulator_state(&http, &base).await;
        assert_eq!((s["users"][0]["status"].clone(), s["users"][0]["loginStatus"].clone()), (json!("deleted"), json!("INACTIVE")));
        let (_, text) = soap(&http, &prov, "\"\"", &format!("<prov:addUser><user><dto:firstName>Nil</dto:firstName>{}</user></prov:addUser>", principal("nil2"))).await;
        assert!(text.contains("DUPLICATE_PRINCIPAL"), "{text}");
        let (_, text) = soap(&http, &login, "\"\"", "<auth:getLoginByManagedSys><domainId></domainId><principal>nil2</principal><managedSysId>0</managedSysId></auth:getLoginByManagedSys>").await;
        assert!(text.contains(&format!("<userId>{id}</userId>")), "{text}");
        assert_eq!(sign_in("nil2", "x").await["why"], "the user is deleted");
        // A path that names no service.
        let res = http.post(format!("{base}/openiam-idm-esb/idmsrvc/NoSuchService")).body("<x/>").send().await.expect("sent");
        assert_eq!(res.status(), 404);
        assert_eq!(res.text().await.expect("text"), "No service was found.");
    }

    async fn the_itron_emulator_keeps_accounts_it_is_not_sent_and_answers_only_its_documented_route() {
        let http = reqwest::Client::new();
        let base = start(Arc::new(ItronEmulator::new(creds())));
        let url = format!("{base}/PortalServices/api/User/UpdateSSOUser");
        let auth = Some((SVC_USER, SVC_PASS));
        let (status, _) = post_as(&http, &url, auth, json!({"username": "u", "email": "u@x", "accountIds": ["A-1"]})).await;
        assert_eq!(status, 200);
        // The utility's own site gives an account; an upsert without the list keeps both.
        let res = http.post(format!("{base}/_emulator/drift")).json(&json!({"user": "u", "set": {"accountIds": ["A-1", "SITE-9"]}})).send().await.expect("drift");
        assert_eq!(res.status(), 200);
        let (status, _) = post_as(&http, &url, auth, json!({"username": "u", "lastName": "Jensen"})).await;
        assert_eq!(status, 200);
        let s = emulator_state(&http, &base).await;
        assert_eq!(s["users"][0]["accountIds"], json!(["A-1", "SITE-9"]), "{s}");
        assert_eq!(s["users"][0]["lastName"], "Jensen");
        // A list replaces the accounts: the site's one goes with a list that lacks it.
        post_as(&http, &url, auth, json!({"username": "u", "accountIds": ["A-1"]})).await;
        assert_eq!(emulator_state(&http, &base).await["users"][0]["accountIds"], json!(["A-1"]));
        post_as(&http, &url, auth, json!({"username": "u", "accountIds": []})).await;
        assert_eq!(emulator_state(&http, &base).await["users"][0]["accountIds"], json!([]));
        // Only the documented route: case does not matter, the path and the method do.
        let (status, _) = post_as(&http, &format!("{base}/portalservices/API/user/updatessouser"), auth, json!({"username": "v"})).await;
        assert_eq!(status, 200);
        let (status, text) = post_as(&http, &format!("{base}/PortalServices/api/User/UpdateUser"), auth, json!({"username": "w"})).await;
        assert_eq!(status, 404, "{text}");
        assert!(text.contains("No HTTP resource was found"), "{text}");
        let res = http.get(&url).basic_auth(SVC_USER, Some(SVC_PASS)).send().await.expect("sent");
        assert_eq!(res.status(), 405);
        let users = emulator_state(&http, &base).await["users"].as_array().map(Vec::len);
        assert_eq!(users, Some(2), "neither the wrong path nor the wrong method made a user");
    }

    async fn the_pyramid_emulator_drops_undeclared_fields_and_refuses_missing_required_ones() {
        let http = reqwest::Client::new();
        let base = start(Arc::new(PyramidEmulator::new(creds())));
        let token = http
            .post(format!("{base}/API2/auth/authenticateUser"))
            .json(&json!({"data": {"userName": SVC_USER, "password": SVC_PASS}}))
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("token");
        let call = |method: &str, mut body: Value| {
            body["auth"] = json!(token);
            let (http, url) = (http.clone(), format!("{base}/API2/access/{method}"));
            async move { post_as(&http, &url, None, body).await }
        };
        // createUserSaml's parameter is createUserSaml, and userName is required in it.
        let (_, text) = call("createUserSaml", json!({"createUserSaml": {"principalName": "p@x", "adminType": 0, "clientLicenseType": 100}})).await;
        assert!(text.contains("userName is required"), "{text}");
        let (_, text) = call("createUserSaml", json!({"newSamlUser": {"userName": "p", "principalName": "p@x", "adminType": 0, "clientLicenseType": 100}})).await;
        assert!(
            text.contains("\"success\":false"),
            "the page's example parameter is not bound: {text}"
        );
        let (_, text) = call("createUserSaml", json!({"createUserSaml": {"id": "u1", "userName": "p", "principalName": "p@x", "adminType": 0, "clientLicenseType": 100}})).await;
        assert!(text.contains("is not a valid GUID"), "ids are GUIDs: {text}");
        let (_, text) = call("createUserSaml", json!({"createUserSaml": {"id": "9b2f7c1e-5d4a-4e8b-9c3f-2a1b0c9d8e7f", "userName": "p", "principalName": "p@x", "adminType": 0, "clientLicenseType": 100}})).await;
        assert!(text.contains("\"success\":true"), "{text}");
        // UpdateUserSamlObject has no samlPrincipleName: the rename is dropped, silently.
        let (_, text) = call(
            "updateUsersSaml",
            json!({"updateUserSamlArr": [{"id": "9b2f7c1e-5d4a-4e8b-9c3f-2a1b0c9d8e7f", "samlPrincipleName": "q@x"}]}),
        )
        .await;
        assert!(text.contains("\"success\":true"), "{text}");
        let s = emulator_state(&http, &base).await;
        assert_eq!(s["users"][0]["principalName"], "p@x");
        assert_eq!(
            s["requests"].as_array().expect("r").last().expect("last")["ignored"],
            json!(["UpdateUserSamlObject.samlPrincipleName"])
        );
        let (_, text) = call(
            "toggleEnableUser",
            json!({"toggleUserApiData": {"userId": "9b2f7c1e-5d4a-4e8b-9c3f-2a1b0c9d8e7f", "isEnable": false}}),
        )
        .await;
        assert!(text.contains("\"success\":true"), "{text}");
        assert_eq!(
            emulator_state(&http, &base).await["users"][0]["enabled"],
            false
        );
        // The enabled state is getUserStatusById's, as a number; the view object has none.
        let (_, text) = call("getUserStatusById", json!({"userId": "9b2f7c1e-5d4a-4e8b-9c3f-2a1b0c9d8e7f"})).await;
        assert_eq!(serde_json::from_str::<Value>(&text).expect("json")["data"], scim_bridge::emulator::pyramid::STATUS_DISABLED);
        let (_, text) = call("getUserBySamlPrincipalName", json!({"PrincipalName": "p@x"})).await;
        let view: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(view["data"]["principalName"], "p@x");
        assert!(view["data"].get("enabled").is_none(), "PyramidViewUserObject has no enabled: {view}");
        assert_eq!(
            call("setUserStatus", json!({})).await.0,
            404,
            "an undocumented method"
        );
    }
}

/// A SCIM PATCH through the bridge, which must succeed.
pub(crate) async fn patch_ok(app: &TestApp, path: &str, ops: Value) {
    let res = app
        .send(
            Method::PATCH,
            path,
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})),
        )
        .await;
    assert!(res.status().is_success(), "{path}: {}", res.status());
}

/// No job of the app is dead (asked of the admin API).
pub(crate) async fn assert_no_dead_jobs(app: &TestApp) {
    let dead: Value = app
        .client
        .get(format!(
            "http://127.0.0.1:{}/admin/v1/jobs?state=dead",
            app.port
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(dead["jobs"], json!([]), "{dead}");
}
