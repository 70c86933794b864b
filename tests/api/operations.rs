//! Running it as a service: /metrics, request and job ids in JSON logs, the audit trail,
//! HTTPS with a test certificate, and every setting from the environment.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use scim_bridge::config::{ConnectorConfig, ConnectorKind, Secret};

use crate::helpers::*;

const ADMIN: &str = "ops-admin-token-0123456789";

fn user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "password": "Sup3r-secret!"})
}

async fn metrics_text(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("metrics");
    let status = res.status().as_u16();
    (status, res.text().await.expect("text"))
}

/// A connector that cannot be reached: its jobs stay pending and fail.
fn unreachable_hook() -> ConnectorConfig {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    ConnectorConfig::new(
        "hook",
        ConnectorKind::Webhook,
        &format!("http://127.0.0.1:{port}/events"),
    )
}

crate::each_database! {
    async fn metrics_count_requests_by_route_and_show_each_connectors_queue(db) {
        let first = spawn_app(db).await;
        let mut settings = first.settings.clone();
        let dbh = first.stop().await;
        settings.connectors = vec![unreachable_hook()];
        settings.outbox_base_delay_ms = 60_000;
        let app = spawn_with(dbh, settings).await;
        assert_eq!(app.post("/Users", user("m1@example.com")).await.status(), 201);
        assert_eq!(app.get("/Users/no-such-id").await.status(), 404);
        let (status, text) = metrics_text(&format!("http://127.0.0.1:{}/metrics", app.port), None).await;
        assert_eq!(status, 200, "{text}");
        for needle in [
            "scim_bridge_http_requests_total{route=\"/scim/v2/Users\",method=\"POST\",status=\"201\"} 1",
            "scim_bridge_http_requests_total{route=\"/scim/v2/Users/{id}\",method=\"GET\",status=\"404\"} 1",
            "scim_bridge_http_request_duration_seconds_count{route=\"/scim/v2/Users\",method=\"POST\"} 1",
            "scim_bridge_outbox_jobs{connector=\"hook\",state=\"dead\"} 0",
            "scim_bridge_outbox_jobs{connector=\"hook\",state=\"held\"} 0",
            "scim_bridge_outbox_oldest_pending_age_seconds{connector=\"hook\"}",
            "scim_bridge_db_pool_max_connections 4",
        ] {
            assert!(text.contains(needle), "{needle} is missing from\n{text}");
        }
        // The create's job is pending until its first attempt; then it failed and waits.
        app.deliver_due().await;
        let (_, text) = metrics_text(&format!("http://127.0.0.1:{}/metrics", app.port), None).await;
        assert!(
            text.contains("scim_bridge_target_calls_total{connector=\"hook\",operation=\"user.created\",outcome=\"retry\"} 1"),
            "no failed call counted:\n{text}"
        );
        // The create and its password: both wait for the next attempt.
        assert!(text.contains("scim_bridge_outbox_jobs{connector=\"hook\",state=\"pending\"} 2"), "{text}");
    }

    async fn metrics_can_ask_for_a_token_and_live_on_a_listener_of_their_own(db) {
        let first = spawn_app(db).await;
        let mut settings = first.settings.clone();
        let dbh = first.stop().await;
        settings.metrics_token = Some(Secret::new("metrics-secret"));
        settings.metrics_listen = Some("127.0.0.1:0".into());
        let app = Arc::new(spawn_with(dbh, settings).await);
        let own = app.metrics_port.expect("a metrics listener");
        let (status, _) = metrics_text(&format!("http://127.0.0.1:{}/metrics", app.port), Some("metrics-secret")).await;
        assert_eq!(status, 404, "not beside the SCIM API");
        let url = format!("http://127.0.0.1:{own}/metrics");
        assert_eq!(metrics_text(&url, None).await.0, 401);
        assert_eq!(metrics_text(&url, Some("wrong")).await.0, 401);
        let (status, text) = metrics_text(&url, Some("metrics-secret")).await;
        assert_eq!(status, 200);
        assert!(text.contains("# EOF"));
    }

    async fn the_audit_trail_records_every_write_with_its_credential_and_paths_never_values(db) {
        let first = spawn_app(db).await;
        let mut settings = first.settings.clone();
        let dbh = first.stop().await;
        settings.admin_token = Some(Secret::new(ADMIN));
        let app = Arc::new(spawn_with(dbh, settings).await);
        let admin = |path: &str| {
            reqwest::Client::new()
                .get(format!("http://127.0.0.1:{}/admin/v1{path}", app.port))
                .bearer_auth(ADMIN)
        };
        // A stored token with a name of its own, made through the admin API.
        let made: Value = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/admin/v1/credentials/tokens", app.port))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "okta-prod"}))
            .send().await.expect("token").json().await.expect("json");
        let okta = made["token"].as_str().expect("a token").to_string();

        // 16 creates at once, each with its own request id.
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (app, okta) = (app.clone(), okta.clone());
            tasks.push(tokio::spawn(async move {
                let res = app.client.post(format!("{}/Users", app.base))
                    .bearer_auth(&okta)
                    .header("Content-Type", "application/scim+json")
                    .header("X-Request-Id", format!("req-{i}"))
                    .body(user(&format!("a{i}@example.com")).to_string())
                    .send().await.expect("create");
                assert_eq!(res.status(), 201);
                assert_eq!(res.headers()["x-request-id"], format!("req-{i}").as_str());
                res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_string()
            }));
        }
        let mut ids = Vec::new();
        for t in tasks { ids.push(t.await.expect("task")); }
        let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false},
                           {"op": "replace", "value": {"password": "An0ther-secret!"}}]});
        assert_eq!(app.send(reqwest::Method::PATCH, &format!("/Users/{}", ids[0]), Some(patch)).await.status(), 200);
        // A refused request made no write and names no credential: not recorded.
        let anon = reqwest::Client::new().delete(format!("{}/Users/{}", app.base, ids[0])).send().await.expect("anon");
        assert_eq!(anon.status(), 401);

        let page: Value = admin(&format!("/audit?resource={}", ids[0])).send().await.expect("audit").json().await.expect("json");
        let entries = page["entries"].as_array().expect("entries");
        assert_eq!(entries.len(), 2, "{page}");
        assert_eq!(entries[0]["method"], "PATCH");
        assert_eq!(entries[0]["credential"], "configured");
        assert_eq!(entries[0]["paths"], json!(["active", "password"]));
        assert_eq!(entries[0]["status"], 200);
        assert_eq!(entries[1]["method"], "POST");
        assert_eq!(entries[1]["credential"], "okta-prod");
        assert_eq!(entries[1]["resourceType"], "User");
        assert_eq!(entries[1]["client"], "127.0.0.1");
        assert!(!page.to_string().contains("secret!"), "no value is recorded: {page}");

        // Paging by credential: the 16 creates, newest first, in pages of 5.
        let mut seen = std::collections::BTreeSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor { Some(c) => format!("/audit?credential=okta-prod&count=5&cursor={c}"), None => "/audit?credential=okta-prod&count=5".into() };
            let page: Value = admin(&q).send().await.expect("audit").json().await.expect("json");
            for e in page["entries"].as_array().expect("entries") {
                assert!(seen.insert(e["requestId"].as_str().expect("id").to_string()), "each once");
            }
            match page["next"].as_str() { Some(c) => cursor = Some(c.into()), None => break }
        }
        assert_eq!(seen.len(), 16);
        assert!((0..16).all(|i| seen.contains(&format!("req-{i}"))));

        // The admin action that made the token is on record under the admin credential.
        let all: Value = admin("/audit?count=1000").send().await.expect("audit").json().await.expect("json");
        assert!(all["entries"].as_array().expect("entries").iter().any(|e|
            e["route"] == "/admin/v1/credentials/tokens" && e["method"] == "POST" && e["status"] == 201), "{all}");
        // A bad filter is a clear 400, not a 500.
        let bad = admin("/audit?since=yesterday").send().await.expect("audit");
        assert_eq!(bad.status(), 400);
        let future: Value = admin("/audit?since=2999-01-01T00:00:00Z").send().await.expect("audit").json().await.expect("json");
        assert_eq!(future["entries"], json!([]));
    }
}

crate::tests! {
    async fn https_is_served_with_a_test_certificate_and_plain_http_is_not() {
        let first = spawn_app(Db::Sqlite).await;
        let mut settings = first.settings.clone();
        let dbh = first.stop().await;
        let dir = tempfile::tempdir().expect("dir");
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .expect("a certificate");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).expect("cert");
        std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key");
        settings.tls_cert = Some(cert.clone());
        settings.tls_key = Some(key.clone());
        let app = spawn_with(dbh, settings).await;
        let trusted = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).expect("pem");
        let https = reqwest::Client::builder()
            .add_root_certificate(trusted)
            .build()
            .expect("client");
        let res = https
            .get(format!(
                "https://localhost:{}/scim/v2/ServiceProviderConfig",
                app.port
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("https answers");
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        assert!(body["schemas"].is_array());
        let plain = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/healthz", app.port))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        assert!(
            plain.map(|r| r.status() != 200).unwrap_or(true),
            "plain HTTP is not served"
        );

        // A key that does not belong to the certificate is refused by the checks, on its line.
        let other = rcgen::generate_simple_self_signed(vec!["x".into()]).expect("cert");
        std::fs::write(&key, other.signing_key.serialize_pem()).expect("key");
        let text = format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        );
        let problems = scim_bridge::config::check_file(&text);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line(), Some(1));
        assert!(
            problems[0].message.contains("do not go together"),
            "{problems:?}"
        );
    }
}

crate::tests! {
    fn json_logs_carry_the_request_id_and_a_deliverys_job_id_and_connector_and_no_secret() {
        let dir = tempfile::tempdir().expect("dir");
        let hook = unreachable_hook();
        let config = dir.path().join("bridge.toml");
        std::fs::write(
            &config,
            format!(
                "outbox_base_delay_ms = 50\noutbox_max_delay_ms = 100\n\n[[connector]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"hook-hmac-secret\"\n",
                hook.url
            ),
        )
        .expect("config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .env(
                "SCIM_BRIDGE_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("b.db").display()),
            )
            .env("SCIM_BRIDGE_TOKEN", TOKEN)
            .env("SCIM_BRIDGE_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut lines: Vec<Value> = Vec::new();
        let next = |lines: &mut Vec<Value>, want: &dyn Fn(&Value) -> bool| -> Value {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(v) = lines.iter().find(|v| want(v)) {
                    return v.clone();
                }
                let left = deadline.saturating_duration_since(Instant::now());
                let line = rx.recv_timeout(left).expect("the wanted log line");
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                lines.push(v);
            }
        };
        let started = next(&mut lines, &|v| {
            v["message"].as_str().is_some_and(|m| m.contains("(port "))
        });
        let port: u16 = started["message"]
            .as_str()
            .and_then(|m| m.split("(port ").nth(1))
            .and_then(|p| p.trim_end_matches(')').parse().ok())
            .expect("port");
        let res = reqwest::blocking::Client::new()
            .post(format!("http://127.0.0.1:{port}/scim/v2/Users"))
            .bearer_auth(TOKEN)
            .header("Content-Type", "application/scim+json")
            .header("X-Request-Id", "trace-me-42")
            .body(user("log@example.com").to_string())
            .send()
            .expect("create");
        assert_eq!(res.status(), 201);
        let access = next(&mut lines, &|v| v["span"]["request_id"] == "trace-me-42");
        assert_eq!(access["status"], 201, "{access}");
        let delivery = next(&mut lines, &|v| v["span"]["connector"] == "hook");
        assert!(delivery["span"]["job_id"].is_number(), "{delivery}");
        let _ = child.kill();
        let _ = child.wait();
        while let Ok(line) = rx.try_recv() {
            lines.push(serde_json::from_str(&line).unwrap_or(Value::String(line)));
        }
        let all = Value::from(lines).to_string();
        for secret in [TOKEN, "hook-hmac-secret", "Sup3r-secret!"] {
            assert!(!all.contains(secret), "{secret} was logged");
        }
        // The startup lines say the database, the connectors and how to stop it.
        for said in [
            "sqlite://",
            "connectors: hook (webhook, async)",
            "SIGTERM stops it",
        ] {
            assert!(all.contains(said), "startup does not say '{said}'");
        }
    }
}

crate::each_database! {
    async fn the_audit_holds_paths_not_values_stays_small_and_finds_what_a_bulk_request_created(db) {
        let first = spawn_app(db).await;
        let mut settings = first.settings.clone();
        let dbh = first.stop().await;
        settings.admin_token = Some(Secret::new(ADMIN));
        let app = spawn_with(dbh, settings).await;
        let audit = |q: String| {
            let port = app.port;
            async move {
                reqwest::Client::new().get(format!("http://127.0.0.1:{port}/admin/v1/audit?{q}"))
                    .bearer_auth(ADMIN).send().await.expect("audit").json::<Value>().await.expect("json")
            }
        };
        let id = app.create_user("audited@example.com").await;
        // A PATCH whose filter compares with an address: the path is kept, the address not.
        let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "emails[value eq \"audited@example.com\"].type", "value": "home"}]});
        assert_eq!(app.send(reqwest::Method::PATCH, &format!("/Users/{id}"), Some(patch)).await.status(), 200);
        let page = audit(format!("resource={id}")).await;
        assert_eq!(page["entries"][0]["paths"], json!(["emails[value eq …].type"]), "{page}");
        assert!(!page.to_string().contains("audited@example.com\\\""), "{page}");
        // A body of ten thousand made-up keys makes a record of at most 64 short paths.
        let mut body = json!({"schemas": [USER], "userName": "wide@example.com"});
        for i in 0..10_000 {
            body[format!("made-up-key-{i}")] = json!(i);
        }
        assert_eq!(app.post("/Users", body).await.status(), 201);
        let all = audit("count=1".into()).await;
        let paths = all["entries"][0]["paths"].as_array().expect("paths");
        assert!(paths.len() <= 64 && all.to_string().len() < 16 * 1024, "{} bytes", all.to_string().len());
        // A user made through /Bulk is found by the lookup by resource.
        let bulk = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "b1", "data": user("bulk-audited@example.com")}]});
        let res = json(app.post("/Bulk", bulk).await).await;
        let made = res["Operations"][0]["location"].as_str().and_then(|l| l.rsplit('/').next()).expect("location").to_string();
        let page = audit(format!("resource={made}")).await;
        let entries = page["entries"].as_array().expect("entries");
        assert_eq!(entries.len(), 1, "{page}");
        assert_eq!(entries[0]["route"], "/scim/v2/Bulk", "{page}");
        assert_eq!(entries[0]["paths"], json!([format!("POST /Users/{made}")]), "{page}");
    }
}
