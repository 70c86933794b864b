//! Faithful local stand-ins of target systems, for tests, demos and benchmarks. Each keeps
//! its state in memory and serves `GET /_emulator/state` and `POST /_emulator/faults`
//! (`latency_ms`, `error_rate`, `fail_next` {count, status}, `down`). Each that keeps
//! users also serves `POST /_emulator/drift`: `{"user": "<principal>", "set": {"<target
//! field>": "value"}}` or `{"user": "...", "delete": true}` changes or removes a user
//! behind the bridge's back (200, or 404 for a user it does not have).

pub mod entsso;
pub mod ethosce;
pub mod itron;
pub mod openiam;
pub mod pyramid;
pub mod webhook;
pub mod wsdl;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Faults an emulator injects, set through `POST /_emulator/faults`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Faults {
    pub latency_ms: u64,
    pub error_rate: f64,
    pub fail_next: Option<FailNext>,
    pub down: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FailNext {
    pub count: u32,
    /// The HTTP status to answer with (default 500).
    #[serde(default = "default_status")]
    pub status: u16,
    /// A vendor error (code or message) to answer with, where the vendor has one.
    #[serde(default)]
    pub error: Option<String>,
}

fn default_status() -> u16 {
    500
}

/// What every emulator keeps: faults, call counts, and its own data.
#[derive(Debug, Default)]
pub struct Shared {
    pub faults: Faults,
    pub calls: BTreeMap<String, u64>,
}

/// A fault that applies to this call, if any.
#[derive(Debug, Clone, PartialEq)]
pub enum Injected {
    Down,
    Fail { status: u16, error: Option<String> },
}

impl Shared {
    pub fn count(&mut self, op: &str) {
        *self.calls.entry(op.to_string()).or_default() += 1;
    }

    /// Decides, for one call, whether a fault applies; consumes `fail_next`.
    pub fn inject(&mut self) -> Option<Injected> {
        if self.faults.down {
            return Some(Injected::Down);
        }
        if let Some(f) = &mut self.faults.fail_next {
            if f.count > 0 {
                f.count -= 1;
                let out = Injected::Fail {
                    status: f.status,
                    error: f.error.clone(),
                };
                if f.count == 0 {
                    self.faults.fail_next = None;
                }
                return Some(out);
            }
        }
        if self.faults.error_rate > 0.0
            && rand::thread_rng().gen_bool(self.faults.error_rate.clamp(0.0, 1.0))
        {
            return Some(Injected::Fail {
                status: 500,
                error: None,
            });
        }
        None
    }
}

/// A change made to a target behind the bridge's back (`POST /_emulator/drift`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    /// The user as the target knows it: its principal, login or name.
    pub user: String,
    /// Target fields to set, by the target's own names ("" clears one).
    #[serde(default)]
    pub set: serde_json::Map<String, Value>,
    /// Remove the user instead.
    #[serde(default)]
    pub delete: bool,
}

/// An emulator kind: its routes and its state as JSON.
pub trait Emulator: Send + Sync + 'static {
    fn shared(&self) -> &Mutex<Shared>;
    fn state(&self) -> Value;
    fn configure(self: Arc<Self>, cfg: &mut web::ServiceConfig);
    /// Applies a drift to the user it names.
    fn drift(&self, _drift: &Drift) -> Drifted {
        Drifted::KeepsNoUsers
    }
}

/// What a drift did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drifted {
    Done,
    NoSuchUser,
    /// A field this target does not have, or a value it cannot take.
    Refused(String),
    KeepsNoUsers,
}

async fn drift_handler<E: Emulator>(e: web::Data<E>, body: web::Bytes) -> HttpResponse {
    let d: Drift = match serde_json::from_slice(&body) {
        Ok(d) => d,
        Err(err) => {
            return HttpResponse::BadRequest()
                .json(serde_json::json!({"error": format!("a drift is {{\"user\", \"set\"}} or {{\"user\", \"delete\": true}}: {err}")}))
        }
    };
    if !d.delete && d.set.is_empty() {
        return HttpResponse::BadRequest().json(
            serde_json::json!({"error": "give \"set\" (fields to change) or \"delete\": true"}),
        );
    }
    match e.drift(&d) {
        Drifted::Done => {
            HttpResponse::Ok().json(serde_json::json!({"user": d.user, "drifted": true}))
        }
        Drifted::NoSuchUser => HttpResponse::NotFound()
            .json(serde_json::json!({"error": format!("no user '{}'", d.user)})),
        Drifted::Refused(why) => HttpResponse::BadRequest().json(serde_json::json!({"error": why})),
        Drifted::KeepsNoUsers => HttpResponse::NotFound()
            .json(serde_json::json!({"error": "this emulator keeps no users"})),
    }
}

async fn state_handler<E: Emulator>(e: web::Data<E>) -> HttpResponse {
    let mut state = e.state();
    let shared = e.shared().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(o) = state.as_object_mut() {
        o.insert(
            "calls".into(),
            serde_json::to_value(&shared.calls).unwrap_or_default(),
        );
        o.insert(
            "faults".into(),
            serde_json::to_value(&shared.faults).unwrap_or_default(),
        );
    }
    HttpResponse::Ok().json(state)
}

async fn faults_handler<E: Emulator>(e: web::Data<E>, body: web::Json<Faults>) -> HttpResponse {
    let mut shared = e.shared().lock().unwrap_or_else(|p| p.into_inner());
    shared.faults = body.into_inner();
    HttpResponse::Ok().json(&shared.faults)
}

/// Waits the configured latency before a call is answered.
pub async fn latency(shared: &Mutex<Shared>) {
    let ms = shared
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .faults
        .latency_ms;
    if ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// Starts an emulator on `listener`; returns the server (await it to run) and its port.
pub fn serve<E: Emulator>(
    emulator: Arc<E>,
    listener: TcpListener,
) -> std::io::Result<(Server, u16)> {
    let port = listener.local_addr()?.port();
    let data = web::Data::from(emulator.clone());
    let server = HttpServer::new(move || {
        let e = emulator.clone();
        App::new()
            .app_data(data.clone())
            .route("/_emulator/state", web::get().to(state_handler::<E>))
            .route("/_emulator/faults", web::post().to(faults_handler::<E>))
            .route("/_emulator/drift", web::post().to(drift_handler::<E>))
            .configure(|cfg| e.configure(cfg))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((server, port))
}

/// The credentials an emulator was started with; `None` accepts any caller (as OpenIAM's
/// ESB on a trusted network does).
#[derive(Debug, Clone, Default)]
pub struct Credentials(pub Option<(String, String)>);

impl Credentials {
    pub fn new(username: Option<String>, password: Option<String>) -> Credentials {
        match (username, password) {
            (Some(u), Some(p)) => Credentials(Some((u, p))),
            _ => Credentials(None),
        }
    }

    /// Whether the request's HTTP Basic credentials are these.
    pub fn basic_ok(&self, req: &actix_web::HttpRequest) -> bool {
        let Some((u, p)) = &self.0 else { return true };
        basic_of(req).is_some_and(|(gu, gp)| &gu == u && &gp == p)
    }
}

/// The user and password of an `Authorization: Basic` header.
pub fn basic_of(req: &actix_web::HttpRequest) -> Option<(String, String)> {
    use base64::Engine;
    let h = req.headers().get("authorization")?.to_str().ok()?;
    let b64 = h
        .strip_prefix("Basic ")
        .or_else(|| h.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Counts a call and decides its fault, after the configured latency.
pub async fn enter(shared: &Mutex<Shared>, op: &str) -> Option<Injected> {
    latency(shared).await;
    let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
    s.count(op);
    s.inject()
}

/// The plain HTTP answer to a fault: 503 when down, else the status and error text.
pub fn fault_response(f: Injected) -> HttpResponse {
    match f {
        Injected::Down => HttpResponse::ServiceUnavailable().body("down"),
        Injected::Fail { status, error } => {
            let status = actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
            HttpResponse::build(status).body(error.unwrap_or_else(|| "injected failure".into()))
        }
    }
}

/// A SHA-256 of a password, which is what emulators show of one.
pub fn password_digest(p: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(p.as_bytes()))
}

/// Locks a mutex, taking it back if a handler panicked while holding it.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
