//! The real binary, killed with SIGKILL in the middle of a delivery burst, and two bridge
//! processes sharing one PostgreSQL: nothing lost, nothing delivered twice.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use scim_bridge::emulator::openiam::OpenIamEmulator;
use scim_bridge::emulator::{serve, webhook::WebhookEmulator, Credentials};

use crate::helpers::*;

struct Bridge {
    child: Child,
    port: u16,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `scim-bridge serve` with a webhook connector to `hook_url`.
fn start_bridge(dir: &std::path::Path, db_url: &str, hook_url: &str, tag: &str) -> Bridge {
    let connector = format!("name = \"hook\"\nkind = \"webhook\"\nurl = \"{hook_url}\"\n");
    start_bridge_with(dir, db_url, &connector, tag)
}

/// Starts `scim-bridge serve` with one `[[connector]]` table.
fn start_bridge_with(dir: &std::path::Path, db_url: &str, connector: &str, tag: &str) -> Bridge {
    let config = dir.join(format!("bridge-{tag}.toml"));
    std::fs::write(
        &config,
        format!(
            "outbox_base_delay_ms = 50\noutbox_max_delay_ms = 200\noutbox_workers = 2\noutbox_lease_secs = 3\n\n[[connector]]\n{connector}"
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            db_url,
            "--config",
        ])
        .arg(&config)
        .env("SCIM_BRIDGE_TOKEN", TOKEN)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut port = None;
    for line in lines.by_ref() {
        let line = line.expect("utf8");
        if let Some(rest) = line.split("(port ").nth(1) {
            port = rest.trim_end_matches(')').parse().ok();
            break;
        }
    }
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Bridge {
        child,
        port: port.expect("the bridge says its port"),
    }
}

async fn start_hook(latency_ms: u64) -> (String, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (server, port) = serve(Arc::new(WebhookEmulator::new(None)), listener).expect("emulator");
    tokio::spawn(server);
    let base = format!("http://127.0.0.1:{port}");
    reqwest::Client::new()
        .post(format!("{base}/_emulator/faults"))
        .json(&json!({"latency_ms": latency_ms}))
        .send()
        .await
        .expect("faults");
    (format!("{base}/events"), base)
}

async fn state(base: &str) -> Value {
    emulator_state(&reqwest::Client::new(), base).await
}

async fn create_users(port: u16, prefix: &str, n: usize) {
    let client = reqwest::Client::new();
    for i in 0..n {
        let res = client
            .post(format!("http://127.0.0.1:{port}/scim/v2/Users"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .body(json!({"userName": format!("{prefix}{i}@example.com")}).to_string())
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 201);
    }
}

async fn wait_events(base: &str, n: usize) -> Value {
    let started = Instant::now();
    loop {
        let s = state(base).await;
        if s["events"].as_array().map_or(0, Vec::len) >= n {
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} of {n} events: {s}",
            s["events"].as_array().map_or(0, Vec::len)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn distinct_users(s: &Value) -> usize {
    let mut ids: Vec<&str> = s["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    ids.sort();
    ids.dedup();
    ids.len()
}

async fn kill_mid_burst(kind: Db) {
    let dir = tempfile::tempdir().expect("dir");
    let Some(app) = spawn_app(kind).await else {
        return;
    };
    let db = app.stop().await;
    let (hook, base) = start_hook(30).await;
    let mut bridge = start_bridge(dir.path(), &db.url(), &hook, "a");
    create_users(bridge.port, "burst", 40).await;
    // Kill it while the slow target still has most of the burst ahead.
    let started = Instant::now();
    while state(&base).await["events"].as_array().map_or(0, Vec::len) < 3 {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bridge.child.kill().expect("SIGKILL");
    bridge.child.wait().expect("reaped");
    let before = state(&base).await["events"].as_array().map_or(0, Vec::len);
    assert!(before < 40, "the kill came mid-burst ({before} delivered)");
    let _again = start_bridge(dir.path(), &db.url(), &hook, "b");
    let s = wait_events(&base, 40).await;
    assert_eq!(
        s["events"].as_array().expect("events").len(),
        40,
        "nothing twice at the target"
    );
    assert_eq!(distinct_users(&s), 40, "nothing lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_killed_mid_delivery_loses_and_duplicates_nothing_on_sqlite() {
    kill_mid_burst(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_killed_mid_delivery_loses_and_duplicates_nothing_on_postgres() {
    kill_mid_burst(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bridges_on_one_postgres_deliver_each_job_once() {
    let dir = tempfile::tempdir().expect("dir");
    let Some(app) = spawn_app(Db::Postgres).await else {
        return;
    };
    let db = app.stop().await;
    let (hook, base) = start_hook(5).await;
    let a = start_bridge(dir.path(), &db.url(), &hook, "a");
    let b = start_bridge(dir.path(), &db.url(), &hook, "b");
    // Writes go to both; both deliver.
    create_users(a.port, "twoa", 30).await;
    create_users(b.port, "twob", 30).await;
    let s = wait_events(&base, 60).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s2 = state(&base).await;
    assert_eq!(
        s2["calls"]["receive"], 60,
        "each job delivered once: {}",
        s2["calls"]
    );
    assert!(s2["calls"].get("duplicate").is_none());
    assert_eq!(distinct_users(&s), 60);
}

/// OpenIAM has no idempotency key: after a kill, a create may be sent again for a user it
/// already made. The connector must adopt that user (DUPLICATE_PRINCIPAL, then
/// getLoginByManagedSys), never make a second one.
async fn kill_mid_openiam_burst(kind: Db) {
    let dir = tempfile::tempdir().expect("dir");
    let Some(app) = spawn_app(kind).await else {
        return;
    };
    let db = app.stop().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (server, port) = serve(
        Arc::new(OpenIamEmulator::new(Credentials::default())),
        listener,
    )
    .expect("emulator");
    tokio::spawn(server);
    let base = format!("http://127.0.0.1:{port}");
    reqwest::Client::new()
        .post(format!("{base}/_emulator/faults"))
        .json(&json!({"latency_ms": 30}))
        .send()
        .await
        .expect("faults");
    let connector =
        format!("name = \"iam\"\nkind = \"openiam\"\nurl = \"{base}/ProvisioningService\"\noptions = {{ requestor_id = \"3000\" }}\n");
    let mut bridge = start_bridge_with(dir.path(), &db.url(), &connector, "a");
    create_users(bridge.port, "iam", 40).await;
    let started = Instant::now();
    while state(&base).await["users"].as_array().map_or(0, Vec::len) < 3 {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bridge.child.kill().expect("SIGKILL");
    bridge.child.wait().expect("reaped");
    let before = state(&base).await["users"].as_array().map_or(0, Vec::len);
    assert!(before < 40, "the kill came mid-burst ({before} made)");
    let _again = start_bridge_with(dir.path(), &db.url(), &connector, "b");
    let started = Instant::now();
    loop {
        let s = state(&base).await;
        if s["users"].as_array().map_or(0, Vec::len) >= 40
            && s["calls"]["addUser"].as_u64().unwrap_or(0) >= 40
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = state(&base).await;
    let mut logins: Vec<&str> = s["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["login"].as_str())
        .collect();
    assert_eq!(logins.len(), 40, "one user per SCIM user: {}", s["calls"]);
    logins.sort();
    logins.dedup();
    assert_eq!(logins.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openiam_burst_cut_by_a_kill_leaves_exactly_one_target_user_each_on_sqlite() {
    kill_mid_openiam_burst(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openiam_burst_cut_by_a_kill_leaves_exactly_one_target_user_each_on_postgres() {
    kill_mid_openiam_burst(Db::Postgres).await;
}
