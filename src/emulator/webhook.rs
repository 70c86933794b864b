//! The `webhook` emulator: receives changes, checks the HMAC signature when it has a
//! secret, and drops a change whose Idempotency-Key it already has, as a careful receiver
//! would.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{latency, Emulator, Injected, Shared};

/// The header a signed delivery carries: `sha256=` and the hex HMAC-SHA256 of the body
/// under the shared secret (the webhook contract README documents).
const SIGNATURE_HEADER: &str = "X-Scim-Bridge-Signature";

/// Whether `header` is the body's HMAC-SHA256 under `secret`, compared in constant time.
fn signed(secret: &str, body: &[u8], header: &str) -> bool {
    use hmac::Mac;
    let Some(hex_mac) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(given) = hex::decode(hex_mac) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

#[derive(Debug, Default)]
struct Data {
    events: Vec<Value>,
    keys: HashSet<String>,
}

#[derive(Debug, Default)]
pub struct WebhookEmulator {
    secret: Option<String>,
    shared: Mutex<Shared>,
    data: Mutex<Data>,
}

impl WebhookEmulator {
    pub fn new(secret: Option<String>) -> WebhookEmulator {
        WebhookEmulator {
            secret,
            ..Default::default()
        }
    }
}

async fn receive(
    e: web::Data<WebhookEmulator>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    latency(&e.shared).await;
    let fault = {
        let mut s = e.shared.lock().unwrap_or_else(|p| p.into_inner());
        s.count("receive");
        s.inject()
    };
    match fault {
        Some(Injected::Down) => return HttpResponse::ServiceUnavailable().body("down"),
        Some(Injected::Fail { status, error }) => {
            let status = actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
            return HttpResponse::build(status)
                .body(error.unwrap_or_else(|| "injected failure".into()));
        }
        None => {}
    }
    if let Some(secret) = &e.secret {
        let given = req
            .headers()
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !signed(secret, &body, given) {
            return HttpResponse::Unauthorized().body("bad signature");
        }
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return HttpResponse::BadRequest().body("not JSON");
    };
    let key = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut data = e.data.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(k) = &key {
        if !data.keys.insert(k.clone()) {
            e.shared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .count("duplicate");
            return HttpResponse::Ok().json(json!({"duplicate": true}));
        }
    }
    let received_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    data.events.push(
        json!({"idempotencyKey": key, "event": payload["event"], "id": payload["id"],
                            "receivedAtMicros": received_at, "payload": payload}),
    );
    HttpResponse::Ok().json(json!({"received": true}))
}

impl Emulator for WebhookEmulator {
    fn shared(&self) -> &Mutex<Shared> {
        &self.shared
    }

    fn state(&self) -> Value {
        let data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        json!({"kind": "webhook", "events": data.events})
    }

    fn configure(self: Arc<Self>, cfg: &mut web::ServiceConfig) {
        cfg.route("/{tail:.*}", web::post().to(receive));
    }
}
