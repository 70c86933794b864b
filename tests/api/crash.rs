//! The real binary, killed with SIGKILL in the middle of a delivery burst, and two bridge
//! processes sharing one PostgreSQL: nothing lost, nothing delivered twice.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

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

/// Waits until the bridges on `db_url` hold no job (none pending, none in flight), then
/// reads the emulator: what it holds then is all it will ever get.
async fn settled(db_url: &str, base: &str) -> Value {
    let store = scim_bridge::store::SqlStore::open_waiting(db_url, 1, Duration::from_secs(10))
        .expect("the bridges' database");
    let store = Arc::new(store);
    eventually("the outbox is empty", Duration::from_secs(60), async || {
        let store = store.clone();
        let next = tokio::task::spawn_blocking(move || {
            use scim_bridge::store::JobStore;
            store.next_claimable_at()
        })
        .await
        .expect("joined")
        .expect("the outbox answers");
        next.is_none().then_some(())
    })
    .await;
    state(base).await
}

/// How many events the emulator at `base` holds.
async fn events_at(base: &str) -> usize {
    state(base).await["events"].as_array().map_or(0, Vec::len)
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
    let app = spawn_app(kind).await;
    let db = app.stop().await;
    let (hook, base) = start_hook(30).await;
    let mut bridge = start_bridge(dir.path(), &db.url(), &hook, "a");
    create_users(bridge.port, "burst", 40).await;
    // Kill it while the slow target still has most of the burst ahead.
    eventually("three deliveries", Duration::from_secs(30), async || {
        (events_at(&base).await >= 3).then_some(())
    })
    .await;
    bridge.child.kill().expect("SIGKILL");
    bridge.child.wait().expect("reaped");
    let before = events_at(&base).await;
    assert!(before < 40, "the kill came mid-burst ({before} delivered)");
    let _again = start_bridge(dir.path(), &db.url(), &hook, "b");
    let s = settled(&db.url(), &base).await;
    assert_eq!(
        s["events"].as_array().expect("events").len(),
        40,
        "nothing twice at the target"
    );
    assert_eq!(distinct_users(&s), 40, "nothing lost");
}

crate::each_database! {
    async fn a_bridge_killed_mid_delivery_loses_and_duplicates_nothing(db) {
        kill_mid_burst(db).await;
    }
}

crate::tests! {
    #[postgres]
    async fn two_bridges_on_one_postgres_deliver_each_job_once() {
        let dir = tempfile::tempdir().expect("dir");
        let app = spawn_app(Db::Postgres).await;
        let db = app.stop().await;
        let (hook, base) = start_hook(5).await;
        let a = start_bridge(dir.path(), &db.url(), &hook, "a");
        let b = start_bridge(dir.path(), &db.url(), &hook, "b");
        // Writes go to both; both deliver.
        create_users(a.port, "twoa", 30).await;
        create_users(b.port, "twob", 30).await;
        let s = settled(&db.url(), &base).await;
        assert_eq!(
            s["calls"]["receive"], 60,
            "each job delivered once: {}",
            s["calls"]
        );
        assert!(s["calls"].get("duplicate").is_none());
        assert_eq!(distinct_users(&s), 60);
    }
}

/// OpenIAM has no idempotency key: after a kill, a create may be sent again for a user it
/// already made. The connector must adopt that user (DUPLICATE_PRINCIPAL, then
/// getLoginByManagedSys), never make a second one.
async fn kill_mid_openiam_burst(kind: Db) {
    let dir = tempfile::tempdir().expect("dir");
    let app = spawn_app(kind).await;
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
    eventually("three users made", Duration::from_secs(30), async || {
        (state(&base).await["users"].as_array().map_or(0, Vec::len) >= 3).then_some(())
    })
    .await;
    bridge.child.kill().expect("SIGKILL");
    bridge.child.wait().expect("reaped");
    let before = state(&base).await["users"].as_array().map_or(0, Vec::len);
    assert!(before < 40, "the kill came mid-burst ({before} made)");
    let _again = start_bridge_with(dir.path(), &db.url(), &connector, "b");
    let s = settled(&db.url(), &base).await;
    assert!(s["calls"]["addUser"].as_u64().unwrap_or(0) >= 40, "{s}");
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

crate::each_database! {
    async fn an_openiam_burst_cut_by_a_kill_leaves_exactly_one_target_user_each(db) {
        kill_mid_openiam_burst(db).await;
    }
}

/// A PostgreSQL server of this test's own (initdb in a temporary folder, on a free port),
/// so that restarting it disturbs no other test. Started only when PostgreSQL tests are
/// asked for; then a missing PostgreSQL installation fails the test.
struct PrivatePg {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivatePg {
    fn start() -> PrivatePg {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("initdb").exists())
            .expect("an initdb");
        let dir = tempfile::tempdir().expect("dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let pg = PrivatePg { dir, bin, port };
        let root = unsafe_is_root();
        if root {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(pg.dir.path())
                .status()
                .expect("chown");
            assert!(ok.success());
        }
        let data = pg.dir.path().join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().expect("path"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        pg.ctl(&[
            "start",
            "-w",
            "-o",
            &format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                pg.port,
                pg.dir.path().display()
            ),
        ]);
        pg
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if unsafe_is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).output().expect("runs");
        assert!(
            out.status.success(),
            "{tool}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log");
        let mut all = vec![
            "-D",
            data.to_str().expect("path"),
            "-l",
            log.to_str().expect("path"),
        ];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.run(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap_or("."),
                    "-m",
                    "immediate",
                    "stop",
                ],
            );
        }));
    }
}

/// Whether this process runs as root (initdb refuses root: the tools then run as postgres).
fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

crate::tests! {
    #[postgres]
    async fn a_postgresql_restart_under_load_is_survived_without_restarting_the_bridge_or_losing_a_change(
    ) {
        let pg = tokio::task::spawn_blocking(PrivatePg::start)
            .await
            .expect("joined");
        let db = Arc::new(TestDb::Postgres {
            admin_url: pg.url(),
            name: "bridge".into(),
        });
        {
            use diesel::{Connection, RunQueryDsl};
            let mut c = diesel::PgConnection::establish(&pg.url()).expect("private server");
            diesel::sql_query("CREATE DATABASE bridge")
                .execute(&mut c)
                .expect("create");
        }
        let settings = settings_for(&db);
        let app = Arc::new(spawn_with(db, settings).await);
        let (under_way, started) = tokio::sync::oneshot::channel::<()>();
        let load = {
            let app = app.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut refused = Vec::new();
                let mut under_way = Some(under_way);
                for i in 0..300 {
                    let res = app
                        .post("/Users", user(&format!("load{i}@example.com")))
                        .await;
                    match res.status().as_u16() {
                        201 => acked.push(json(res).await["id"].as_str().expect("id").to_string()),
                        s => refused.push(s),
                    }
                    if acked.len() == 50 {
                        under_way.take().map(|tx| tx.send(()));
                    }
                    // Paced, so the load spans the restart: the passing of time is the point.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (acked, refused)
            })
        };
        // The restart comes once the load is under way.
        started.await.expect("fifty creates went through");
        let pg = tokio::task::spawn_blocking(move || {
            pg.ctl(&["restart", "-m", "fast", "-w"]);
            pg
        })
        .await
        .expect("restarted");
        let (acked, refused) = load.await.expect("load");
        eprintln!(
            "restart under load: {} acknowledged, {} refused",
            acked.len(),
            refused.len()
        );
        assert!(
            refused.iter().all(|s| *s == 503),
            "while it restarts, 503 and nothing else: {refused:?}"
        );
        assert!(
            acked.len() > 100,
            "most creates went through: {} acked, {} refused",
            acked.len(),
            refused.len()
        );
        // Without restarting the bridge: new writes go through (a connection the pool
        // still held from before the restart may answer one 503 first, writing nothing),
        // and every acknowledged one is there.
        eventually("a write after the restart goes through", Duration::from_secs(10), async || {
            match app.post("/Users", user("after@example.com")).await.status().as_u16() {
                201 => Some(()),
                503 => None,
                other => panic!("a write after the restart answered {other}"),
            }
        })
        .await;
        for id in &acked {
            assert_eq!(
                app.get(&format!("/Users/{id}")).await.status(),
                200,
                "acknowledged {id} is kept"
            );
        }
        let list = json(app.get("/Users?count=1").await).await;
        assert_eq!(list["totalResults"], acked.len() + 1, "every acknowledged create and the one after, nothing else: {} acknowledged, refused {refused:?}", acked.len());
        drop(pg);
    }
}

/// SIGINT (Ctrl-C) drains like SIGTERM: a request whose body is still arriving when the
/// signal comes is answered, and only then does the process exit.
async fn a_signal_lets_the_request_in_flight_finish(signal: &str) {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite://{}", dir.path().join("drain.db").display());
    let mut bridge = start_bridge(dir.path(), &db, "http://127.0.0.1:9/none", signal);
    let body = json!({"schemas": [USER], "userName": "drained"}).to_string();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", bridge.port)).expect("connect");
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(&body.as_bytes()[..5])
        .expect("part of the body");
    std::thread::sleep(Duration::from_millis(300));
    let pid = bridge.child.id().to_string();
    let sent = Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(&body.as_bytes()[5..])
        .expect("the rest of the body");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    use wait_timeout::ChildExt;
    let status = bridge
        .child
        .wait_timeout(Duration::from_secs(10))
        .expect("wait")
        .unwrap_or_else(|| panic!("the bridge did not stop after {signal}"));
    assert!(status.success(), "a clean exit: {status}");
}

crate::tests! {
    async fn sigint_lets_the_request_in_flight_finish_before_the_bridge_stops() {
        a_signal_lets_the_request_in_flight_finish("-INT").await;
    }
}

crate::tests! {
    async fn sigterm_lets_the_request_in_flight_finish_before_the_bridge_stops() {
        a_signal_lets_the_request_in_flight_finish("-TERM").await;
    }
}

crate::tests! {
    /// `demo` starts clean on every run: the user its printed command creates is created (201)
    /// the second time as the first, since the emulators start empty and so does its database.
    async fn demo_run_twice_works_twice() {
        for run in 1..=2 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
                .args(["demo", "--listen", "127.0.0.1:0"])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn demo");
            let stdout = child.stdout.take().expect("stdout");
            let mut lines = BufReader::new(stdout).lines();
            let (mut base, mut token) = (None, None);
            for line in lines.by_ref() {
                let line = line.expect("utf8");
                if let Some(b) = line.strip_prefix("  SCIM base URL : ") {
                    base = Some(b.trim().to_string());
                }
                if let Some(t) = line.strip_prefix("  SCIM token    : ") {
                    token = Some(t.trim().to_string());
                }
                if line.starts_with("Ctrl-C stops it") {
                    break;
                }
            }
            std::thread::spawn(move || for _ in lines {});
            let (base, token) = (base.expect("base URL"), token.expect("token"));
            let res = reqwest::Client::new()
                .post(format!("{base}/Users"))
                .bearer_auth(&token)
                .header("content-type", "application/scim+json")
                .body(
                    json!({"userName": "demo@example.com", "name": {"givenName": "Demo", "familyName": "User"},
                           "emails": [{"value": "demo@example.com", "primary": true}],
                           "password": "Demo-passw0rd", "active": true})
                    .to_string(),
                )
                .send()
                .await
                .expect("create");
            assert_eq!(res.status(), 201, "run {run}");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
