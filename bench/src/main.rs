//! scim-bench: drives a SCIM 2.0 server over HTTP with a fixed set of workloads and writes
//! a JSON report. With `--seeded` it addresses the users `scim-bridge seed` wrote; without,
//! it creates its users over HTTP first (for any other SCIM server).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::Rng;
use serde_json::{json, Value};

#[derive(Parser, Debug, Clone)]
#[command(name = "scim-bench", about = "Load generator for SCIM 2.0 servers")]
struct Args {
    /// The SCIM base URL, such as http://127.0.0.1:8080/scim/v2
    #[arg(long)]
    base: String,
    #[arg(long)]
    token: String,
    /// Users in the target (seeded, or to create over HTTP).
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    /// Members of the big group (the first users).
    #[arg(long, default_value_t = 100_000)]
    big_group: u64,
    /// The users were written by `scim-bridge seed` (ids are known).
    #[arg(long)]
    seeded: bool,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds per workload.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Requests per second of all connections together, each connection starting its
    /// requests on a fixed schedule; 0: each as soon as the last one is answered.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Comma-separated workloads; all by default.
    #[arg(long)]
    workloads: Option<String>,
    /// The server's process id, to read its peak RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Where to write the JSON report.
    #[arg(long)]
    report: Option<String>,
    /// The webhook emulator's base URL, for the propagation workload.
    #[arg(long)]
    hook: Option<String>,
    /// Free-form facts to put in the report (backend=sqlite, db_bytes=...).
    #[arg(long = "meta", value_parser = parse_kv)]
    meta: Vec<(String, String)>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("'{s}' is not KEY=VALUE"))
}

/// Workloads that need the webhook emulator attached (`--hook`); not in the default set.
const WITH_HOOK: &[&str] = &["propagation", "deprovision"];

/// The ceiling's workloads, against `scim-ceiling` (a fixed GET body, an echoed POST);
/// not in the default set.
const CEILING: &[&str] = &["ceiling_get", "ceiling_post"];

const ALL: &[&str] = &[
    "create",
    "get",
    "filter_username",
    "filter_externalid",
    "page_deep",
    "page_cursor",
    "patch_user",
    "put_user",
    "member_add_remove",
    "bulk_100",
    "import_walk",
];

struct Target {
    client: reqwest::Client,
    base: String,
    token: String,
    user_ids: Vec<String>,
    user_names: Vec<String>,
    group_id: String,
    cursors: Vec<String>,
    run: String,
    counter: AtomicU64,
    /// Propagation: when each created user's SCIM answer came, by userName (epoch µs).
    answered: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// Deprovision: when each deactivation's SCIM answer came, by user id (epoch µs).
    deactivated: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

fn epoch_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn user_body(name: &str, ext: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "externalId": ext,
           "name": {"givenName": "Given", "familyName": "Family"}, "active": true,
           "emails": [{"value": name, "type": "work", "primary": true}]})
}

impl Target {
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/scim+json")
    }

    fn pick(&self) -> usize {
        rand::thread_rng().gen_range(0..self.user_ids.len())
    }

    /// One request of a workload; Ok(true) when it succeeded.
    async fn once(&self, workload: &str) -> Result<bool, reqwest::Error> {
        use reqwest::Method;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let ok = |r: reqwest::Response| r.status().is_success();
        Ok(match workload {
            // The ceiling's two workloads send what get and create send.
            "create" | "ceiling_post" => {
                let name = format!("bench-{}-{n}@example.com", self.run);
                ok(self
                    .req(Method::POST, "/Users")
                    .body(user_body(&name, &name).to_string())
                    .send()
                    .await?)
            }
            "get" | "ceiling_get" => ok(self
                .req(
                    Method::GET,
                    &format!("/Users/{}", self.user_ids[self.pick()]),
                )
                .send()
                .await?),
            "filter_username" => {
                let f = format!("userName eq \"{}\"", self.user_names[self.pick()]);
                let r = self
                    .req(Method::GET, "/Users")
                    .query(&[("filter", f)])
                    .send()
                    .await?;
                r.status().is_success() && r.json::<Value>().await?["totalResults"] == 1
            }
            "filter_externalid" => {
                let i = self.pick();
                let f = format!("externalId eq \"{}\"", external_id(&self.user_names[i]));
                let r = self
                    .req(Method::GET, "/Users")
                    .query(&[("filter", f)])
                    .send()
                    .await?;
                r.status().is_success() && r.json::<Value>().await?["totalResults"] == 1
            }
            "page_deep" => {
                let len = self.user_ids.len() as u64;
                let start =
                    len.saturating_sub(1000).max(1) + rand::thread_rng().gen_range(0..900.min(len));
                let r = self
                    .req(Method::GET, &format!("/Users?startIndex={start}&count=100"))
                    .send()
                    .await?;
                r.status().is_success()
            }
            "page_cursor" => {
                if self.cursors.is_empty() {
                    return Ok(false);
                }
                let c = &self.cursors[rand::thread_rng().gen_range(0..self.cursors.len())];
                let r = self
                    .req(Method::GET, "/Users")
                    .query(&[("cursor", c.as_str()), ("count", "100")])
                    .send()
                    .await?;
                r.status().is_success()
            }
            "patch_user" => {
                let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                  "Operations": [{"op": "replace", "path": "title", "value": format!("T{n}")}]});
                ok(self
                    .req(
                        Method::PATCH,
                        &format!("/Users/{}", self.user_ids[self.pick()]),
                    )
                    .body(body.to_string())
                    .send()
                    .await?)
            }
            "put_user" => {
                let i = self.pick();
                let mut body = user_body(&self.user_names[i], &external_id(&self.user_names[i]));
                body["title"] = json!(format!("T{n}"));
                ok(self
                    .req(Method::PUT, &format!("/Users/{}", self.user_ids[i]))
                    .body(body.to_string())
                    .send()
                    .await?)
            }
            "member_add_remove" => {
                // A user outside the big group, added then removed.
                let i = self.pick();
                let op = if n % 2 == 0 { "add" } else { "remove" };
                let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                  "Operations": [{"op": op, "path": "members", "value": [{"value": self.user_ids[i]}]}]});
                ok(self
                    .req(Method::PATCH, &format!("/Groups/{}", self.group_id))
                    .body(body.to_string())
                    .send()
                    .await?)
            }
            "bulk_100" => {
                let ops: Vec<Value> = (0..100)
                    .map(|k| {
                        let name = format!("bulk-{}-{n}-{k}@example.com", self.run);
                        json!({"method": "POST", "path": "/Users", "bulkId": format!("b{k}"), "data": user_body(&name, &name)})
                    })
                    .collect();
                let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
                let r = self
                    .req(Method::POST, "/Bulk")
                    .body(body.to_string())
                    .send()
                    .await?;
                r.status().is_success()
                    && r.json::<Value>().await?["Operations"]
                        .as_array()
                        .is_some_and(|o| o.len() == 100 && o.iter().all(|x| x["status"] == "201"))
            }
            "propagation" => {
                let name = format!("prop-{}-{n}@example.com", self.run);
                let r = self
                    .req(Method::POST, "/Users")
                    .body(user_body(&name, &name).to_string())
                    .send()
                    .await?;
                let ok = r.status().is_success();
                if ok {
                    self.answered
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(name, epoch_micros());
                }
                ok
            }
            "deprovision" => {
                // Each seeded user at most once, in turn: a deactivation, timed from its
                // answer to the target's receipt.
                let id = &self.user_ids[(n as usize) % self.user_ids.len()];
                let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                  "Operations": [{"op": "replace", "path": "active", "value": false}]});
                let r = self
                    .req(Method::PATCH, &format!("/Users/{id}"))
                    .body(body.to_string())
                    .send()
                    .await?;
                let ok = r.status().is_success();
                if ok {
                    self.deactivated
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(id.clone())
                        .or_insert_with(epoch_micros);
                }
                ok
            }
            other => panic!("unknown workload {other}"),
        })
    }
}

fn external_id(user_name: &str) -> String {
    // user{i}@example.com has externalId ext{i}.
    user_name
        .trim_start_matches("user")
        .split('@')
        .next()
        .map(|i| format!("ext{i}"))
        .unwrap_or_default()
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

async fn prepare(args: &Args, client: &reqwest::Client) -> anyhow::Result<Target> {
    let run = format!("{:x}", rand::thread_rng().gen::<u32>());
    let mut t = Target {
        client: client.clone(),
        base: args.base.trim_end_matches('/').to_string(),
        token: args.token.clone(),
        user_ids: vec![],
        user_names: vec![],
        group_id: String::new(),
        cursors: vec![],
        run,
        counter: AtomicU64::new(0),
        answered: Default::default(),
        deactivated: Default::default(),
    };
    if args.seeded {
        t.user_ids = (0..args.users)
            .map(scim_bridge::bridge::seed::seeded_user_id)
            .collect();
        t.user_names = (0..args.users)
            .map(|i| format!("user{i}@example.com"))
            .collect();
        t.group_id = scim_bridge::bridge::seed::seeded_group_id(0);
    } else {
        eprintln!("seeding {} users over HTTP", args.users);
        for i in 0..args.users {
            let name = format!("user{i}@example.com");
            let r = t
                .req(reqwest::Method::POST, "/Users")
                .body(user_body(&name, &format!("ext{i}")).to_string())
                .send()
                .await?;
            let status = r.status();
            let body: Value = r.json().await?;
            let id = body["id"]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("create {name}: {status} {body}"))?;
            t.user_ids.push(id.to_string());
            t.user_names.push(name);
        }
        let members: Vec<Value> = t
            .user_ids
            .iter()
            .take(args.big_group as usize)
            .map(|id| json!({"value": id}))
            .collect();
        let r = t
            .req(reqwest::Method::POST, "/Groups")
            .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": format!("Big {}", t.run), "members": members}).to_string())
            .send()
            .await?;
        let body: Value = r.json().await?;
        t.group_id = body["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("create group: {body}"))?
            .to_string();
    }
    // Cursors at every depth, for the cursor workload (servers without cursors get none).
    let mut cursor = String::new();
    for _ in 0..(args.users / 1000 + 2) {
        let r = t
            .req(reqwest::Method::GET, "/Users")
            .query(&[
                ("cursor", cursor.as_str()),
                ("count", "1000"),
                ("attributes", "id"),
            ])
            .send()
            .await?;
        if !r.status().is_success() {
            break;
        }
        let body: Value = r.json().await?;
        match body.get("nextCursor").and_then(Value::as_str) {
            Some(c) => {
                cursor = c.to_string();
                t.cursors.push(cursor.clone());
            }
            None => break,
        }
    }
    Ok(t)
}

/// Which change a delivery workload times, and how its events are told apart.
#[derive(Clone, Copy)]
enum Timed {
    /// `propagation`: a create, by userName.
    Create,
    /// `deprovision`: a deactivation, by id.
    Deactivation,
}

impl Timed {
    fn event(self) -> &'static str {
        match self {
            Timed::Create => "user.created",
            Timed::Deactivation => "user.deactivated",
        }
    }

    fn key(self, payload: &Value) -> Option<&str> {
        match self {
            Timed::Create => payload["resource"]["userName"].as_str(),
            Timed::Deactivation => payload["id"].as_str(),
        }
    }
}

/// Waits until every change a delivery workload made has reached the emulator, then
/// measures the time from each SCIM answer to the target's receipt.
async fn propagation(
    client: &reqwest::Client,
    hook: &str,
    t: &Target,
    timed: Timed,
) -> anyhow::Result<Value> {
    let answered = match timed {
        Timed::Create => &t.answered,
        Timed::Deactivation => &t.deactivated,
    };
    let answered = answered.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let started = Instant::now();
    loop {
        let state: Value = client
            .get(format!("{hook}/_emulator/state"))
            .send()
            .await?
            .json()
            .await?;
        let mut received = std::collections::HashMap::new();
        for e in state["events"].as_array().into_iter().flatten() {
            if e["event"] == timed.event() {
                if let (Some(name), Some(at)) =
                    (timed.key(&e["payload"]), e["receivedAtMicros"].as_u64())
                {
                    if answered.contains_key(name) {
                        received.insert(name.to_string(), at);
                    }
                }
            }
        }
        if received.len() == answered.len() || started.elapsed() > Duration::from_secs(120) {
            let mut lat: Vec<u64> = answered
                .iter()
                .filter_map(|(n, a)| received.get(n).map(|r| r.saturating_sub(*a)))
                .collect();
            lat.sort_unstable();
            let first = answered.values().min().copied().unwrap_or(0);
            let last = received.values().max().copied().unwrap_or(first);
            let span = (last.saturating_sub(first)) as f64 / 1e6;
            return Ok(json!({
                "delivered": received.len(), "lost": answered.len() - received.len(),
                "delivered_per_second": if span > 0.0 { received.len() as f64 / span } else { 0.0 },
                "p50_ms": percentile(&lat, 0.50), "p95_ms": percentile(&lat, 0.95), "p99_ms": percentile(&lat, 0.99),
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A ListResponse as the walk reads it: the total and how many resources came.
#[derive(serde::Deserialize)]
struct WalkPage {
    #[serde(rename = "totalResults")]
    total_results: u64,
    #[serde(rename = "Resources", default)]
    resources: Vec<serde::de::IgnoredAny>,
}

/// Okta's full import: one client walks every user by `startIndex` pages of 100 from the
/// start, each page asking for the next, until past totalResults. Reports the whole walk's
/// time and the pages per second at its start and at its end (the first and last tenth).
async fn import_walk(t: &Target) -> anyhow::Result<Value> {
    let started = Instant::now();
    let mut lat: Vec<u64> = Vec::new();
    let (mut errors, mut seen, mut start, mut total) = (0u64, 0u64, 1u64, u64::MAX);
    while start <= total {
        let page_started = Instant::now();
        let res = t
            .req(
                reqwest::Method::GET,
                &format!("/Users?startIndex={start}&count=100"),
            )
            .send()
            .await;
        lat.push(page_started.elapsed().as_micros() as u64);
        // Only what the walk needs is read: the generator spends its core on requests.
        let page: Option<WalkPage> = match res {
            Ok(r) if r.status().is_success() => r
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok()),
            _ => None,
        };
        let n = page.as_ref().map_or(0, |p| p.resources.len()) as u64;
        let Some(t) = page.map(|p| p.total_results).filter(|_| n > 0) else {
            errors += 1;
            break;
        };
        total = t;
        seen += n;
        start += n;
    }
    let seconds = started.elapsed().as_secs_f64();
    let tenth = (lat.len() / 10).max(1);
    let rate = |l: &[u64]| {
        let us: u64 = l.iter().sum();
        if us == 0 {
            0.0
        } else {
            l.len() as f64 / (us as f64 / 1e6)
        }
    };
    let (first, last) = (
        rate(&lat[..tenth.min(lat.len())]),
        rate(&lat[lat.len().saturating_sub(tenth)..]),
    );
    if seen != total && total != u64::MAX {
        errors += 1;
    }
    let pages = lat.len();
    lat.sort_unstable();
    Ok(json!({
        "requests": pages, "requests_per_second": pages as f64 / seconds.max(1e-9),
        "p50_ms": percentile(&lat, 0.50), "p95_ms": percentile(&lat, 0.95), "p99_ms": percentile(&lat, 0.99),
        "errors": errors, "seconds": seconds, "users_walked": seen,
        "pages_per_second_first_tenth": first, "pages_per_second_last_tenth": last,
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let target = Arc::new(prepare(&args, &client).await?);
    let workloads: Vec<String> = match &args.workloads {
        Some(w) => w
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => ALL.iter().map(|s| s.to_string()).collect(),
    };
    let mut results = serde_json::Map::new();
    println!(
        "{:<20} {:>10} {:>9} {:>9} {:>9} {:>7}",
        "workload", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"
    );
    for w in &workloads {
        if !ALL.contains(&w.as_str())
            && !WITH_HOOK.contains(&w.as_str())
            && !CEILING.contains(&w.as_str())
        {
            anyhow::bail!(
                "unknown workload '{w}'; known: {}, {}",
                ALL.join(", "),
                WITH_HOOK.join(", ")
            );
        }
        if WITH_HOOK.contains(&w.as_str()) && args.hook.is_none() {
            anyhow::bail!("'{w}' needs --hook (the webhook emulator's URL)");
        }
        if w == "page_cursor" && target.cursors.is_empty() {
            println!("{w:<20} skipped: the target does not page by cursor");
            results.insert(
                w.clone(),
                json!({"skipped": "the target does not page by cursor"}),
            );
            continue;
        }
        if w == "import_walk" {
            let entry = import_walk(&target).await?;
            println!(
                "{w:<20} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>7}  ({} users in {:.1} s; pages/s {:.0} at the start, {:.0} at the end)",
                entry["requests_per_second"].as_f64().unwrap_or(0.0),
                entry["p50_ms"].as_f64().unwrap_or(0.0),
                entry["p95_ms"].as_f64().unwrap_or(0.0),
                entry["p99_ms"].as_f64().unwrap_or(0.0),
                entry["errors"].as_u64().unwrap_or(0),
                entry["users_walked"],
                entry["seconds"].as_f64().unwrap_or(0.0),
                entry["pages_per_second_first_tenth"].as_f64().unwrap_or(0.0),
                entry["pages_per_second_last_tenth"].as_f64().unwrap_or(0.0),
            );
            results.insert(w.clone(), entry);
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs_f64(args.duration);
        let every =
            (args.rate > 0.0).then(|| Duration::from_secs_f64(args.concurrency as f64 / args.rate));
        let mut tasks = Vec::new();
        for i in 0..args.concurrency {
            let t = target.clone();
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                // Paced connections start spread over one interval.
                let mut next = tokio::time::Instant::now()
                    + every.map_or(Duration::ZERO, |e| {
                        e.mul_f64(i as f64 / args.concurrency as f64)
                    });
                while Instant::now() < deadline {
                    if let Some(e) = every {
                        tokio::time::sleep_until(next).await;
                        next += e;
                    }
                    let started = Instant::now();
                    let ok = t.once(&w).await.unwrap_or(false);
                    lat.push(started.elapsed().as_micros() as u64);
                    if !ok {
                        errors += 1;
                    }
                }
                (lat, errors)
            }));
        }
        let started = Instant::now();
        let mut lat = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await?;
            lat.extend(l);
            errors += e;
        }
        let elapsed = started.elapsed().as_secs_f64();
        lat.sort_unstable();
        let rps = lat.len() as f64 / elapsed;
        let (p50, p95, p99) = (
            percentile(&lat, 0.50),
            percentile(&lat, 0.95),
            percentile(&lat, 0.99),
        );
        println!("{w:<20} {rps:>10.1} {p50:>9.2} {p95:>9.2} {p99:>9.2} {errors:>7}");
        let mut entry = json!({"requests": lat.len(), "requests_per_second": rps, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "errors": errors});
        let timed = match w.as_str() {
            "propagation" => Some(Timed::Create),
            "deprovision" => Some(Timed::Deactivation),
            _ => None,
        };
        if let Some(timed) = timed {
            let hook = args.hook.clone().unwrap_or_default();
            let p = propagation(&client, &hook, &target, timed).await?;
            println!(
                "{:<20} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>7}",
                "  delivered",
                p["delivered_per_second"].as_f64().unwrap_or(0.0),
                p["p50_ms"].as_f64().unwrap_or(0.0),
                p["p95_ms"].as_f64().unwrap_or(0.0),
                p["p99_ms"].as_f64().unwrap_or(0.0),
                p["lost"].as_u64().unwrap_or(0)
            );
            entry["delivery"] = p.clone();
            errors += p["lost"].as_u64().unwrap_or(0);
            entry["errors"] = json!(errors);
        }
        results.insert(w.clone(), entry);
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let mut report = json!({
        "users": args.users, "big_group": args.big_group, "concurrency": args.concurrency,
        "seconds_per_workload": args.duration, "target": args.base,
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "cpu": cpu},
        "server_peak_rss_kib": args.server_pid.and_then(peak_rss_kib),
        "workloads": results,
    });
    for (k, v) in &args.meta {
        report[k.as_str()] = Value::String(v.clone());
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        eprintln!("report written to {path}");
    }
    let total_errors: u64 = report["workloads"]
        .as_object()
        .map(|o| o.values().filter_map(|v| v["errors"].as_u64()).sum())
        .unwrap_or(0);
    if total_errors > 0 {
        eprintln!("{total_errors} requests failed: their workloads' figures do not count");
        std::process::exit(2);
    }
    Ok(())
}
