//! The `entsso` emulator: the HTTP relay of ISSONotification.SendNotification an adapter
//! runs on the Windows side. A PASSWORD_CHANGE is checked (type, flags, external account,
//! new password) and answered `{"hresult": "S_OK", "trackingId": "{GUID}"}`: accepted, not
//! done. Completion comes later, as a PASSWORD_CHANGE_COMPLETE callback to the URL set with
//! `--callback-url` (or `POST /_emulator/callback {url, token, auto}`), sent by itself after
//! acceptance when `auto`, or on demand with `POST /_emulator/complete {trackingId,
//! errorCode, errorMessage}`. Wrong credentials get E_ACCESSDENIED; a `fail_next` error
//! (ENTSSO_E_NO_SERVER, ENTSSO_E_WRONG_STATE, a number such as 0xC0002A0F, ...) is returned
//! as the HRESULT.
//!
//! Checked as Microsoft documents SSendNotification: the type is PASSWORD_CHANGE (3),
//! PASSWORD_CHANGE_COMPLETE (4) or PASSWORD_EXPIRED (5); the flags combine NONE, ADMIN_CHANGE
//! (0x1), TEST (0x8) and AUDIT (0x10) only (WAIT 0x40 is ReceiveNotification's, SEND_ONLY
//! 0x80 adapter initialisation's): other flags are E_INVALIDARG, another type is
//! ENTSSO_E_INVALID_NOTIFICATION ("Invalid notification type"). The relay's JSON is this
//! project's own contract. With `numeric`, HRESULTs are answered as numbers (signed 32-bit),
//! as a relay that passes COM's values through would.

use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{enter, lock, password_digest, Credentials, Emulator, Injected, Shared};

/// SSO_NOTIFICATION_TYPE values a sender may use.
const PASSWORD_CHANGE: i64 = 3;
const PASSWORD_CHANGE_COMPLETE: i64 = 4;
const PASSWORD_EXPIRED: i64 = 5;
/// SSO_NOTIFICATION_FLAG values valid when sending.
const SEND_FLAGS: i64 = 0x1 | 0x8 | 0x10;
/// The HRESULTs whose values Microsoft publishes.
const KNOWN_VALUES: &[(&str, i32)] = &[
    ("S_OK", 0),
    ("E_ACCESSDENIED", 0x8007_0005_u32 as i32),
    ("E_INVALIDARG", 0x8007_0057_u32 as i32),
];

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    tracking_id: String,
    notification_type: i64,
    flags: i64,
    external_account: String,
    password_sha256: String,
    state: String,
    callback_status: Option<u16>,
}

/// Where completions go.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Callback {
    pub url: String,
    #[serde(default)]
    pub token: Option<String>,
    /// Complete each accepted notification by itself, successfully.
    #[serde(default = "yes")]
    pub auto: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default)]
pub struct EntSsoEmulator {
    /// Answer HRESULTs whose value is public as numbers.
    numeric: bool,
    creds: Credentials,
    shared: Mutex<Shared>,
    notifications: Mutex<Vec<Notification>>,
    callback: Mutex<Option<Callback>>,
}

impl EntSsoEmulator {
    pub fn new(creds: Credentials, callback: Option<Callback>) -> EntSsoEmulator {
        EntSsoEmulator {
            creds,
            callback: Mutex::new(callback),
            ..Default::default()
        }
    }

    /// Answers HRESULTs as numbers where their value is public.
    pub fn numeric(mut self) -> EntSsoEmulator {
        self.numeric = true;
        self
    }

    fn hresult(&self, h: &str) -> HttpResponse {
        let number = KNOWN_VALUES
            .iter()
            .find(|(n, _)| *n == h)
            .map(|(_, v)| *v)
            .or_else(|| {
                h.strip_prefix("0x")
                    .and_then(|x| u32::from_str_radix(x, 16).ok())
                    .map(|u| u as i32)
            });
        match number {
            Some(v) if self.numeric => {
                HttpResponse::Ok().json(json!({"hresult": v, "trackingId": null}))
            }
            _ => hresult(h),
        }
    }
}

fn hresult(h: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({"hresult": h, "trackingId": null}))
}

/// Sends a PASSWORD_CHANGE_COMPLETE to the bridge and records how it was taken.
async fn complete(
    e: Arc<EntSsoEmulator>,
    tracking_id: String,
    code: i64,
    message: String,
) -> Option<u16> {
    let cb = lock(&e.callback).clone()?;
    let body = json!({
        "NotificationType": PASSWORD_CHANGE_COMPLETE,
        "PasswordChangeComplete": {"trackingId": tracking_id, "errorCode": code, "errorMessage": message}
    });
    let mut req = reqwest::Client::new().post(&cb.url).json(&body);
    if let Some(t) = &cb.token {
        req = req.bearer_auth(t);
    }
    let status = req.send().await.ok().map(|r| r.status().as_u16());
    let mut list = lock(&e.notifications);
    if let Some(n) = list.iter_mut().find(|n| n.tracking_id == tracking_id) {
        n.state = if code == 0 {
            "completed".into()
        } else {
            "failed".into()
        };
        n.callback_status = status;
    }
    status
}

async fn send_notification(
    e: web::Data<EntSsoEmulator>,
    req: HttpRequest,
    body: String,
) -> HttpResponse {
    match enter(&e.shared, "SendNotification").await {
        Some(Injected::Down) => return HttpResponse::ServiceUnavailable().body("down"),
        Some(Injected::Fail { error: Some(h), .. }) => return e.hresult(&h),
        Some(Injected::Fail { status, .. }) => {
            return HttpResponse::build(
                actix_web::http::StatusCode::from_u16(status)
                    .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
            )
            .body("injected failure")
        }
        None => {}
    }
    if !e.creds.basic_ok(&req) {
        return e.hresult("E_ACCESSDENIED");
    }
    let Ok(v) = serde_json::from_str::<Value>(&body) else {
        return e.hresult("E_INVALIDARG");
    };
    let kind = v["NotificationType"].as_i64().unwrap_or(-1);
    if ![PASSWORD_CHANGE, PASSWORD_CHANGE_COMPLETE, PASSWORD_EXPIRED].contains(&kind) {
        // "Invalid notification type", by the seed's name (its number is not public).
        return e.hresult("ENTSSO_E_INVALID_NOTIFICATION");
    }
    let flags = v["ulNotificationFlags"].as_i64().unwrap_or(-1);
    if flags < 0 || flags & !SEND_FLAGS != 0 {
        return e.hresult("E_INVALIDARG");
    }
    let pc = &v["PasswordChange"];
    let account = pc["externalAccount"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let password = pc["newPassword"].as_str().unwrap_or_default();
    if kind == PASSWORD_CHANGE && (account.is_empty() || password.is_empty()) {
        return e.hresult("E_INVALIDARG");
    }
    let tracking_id = format!("{{{}}}", uuid::Uuid::new_v4().hyphenated()).to_uppercase();
    lock(&e.notifications).push(Notification {
        tracking_id: tracking_id.clone(),
        notification_type: kind,
        flags,
        external_account: account,
        password_sha256: password_digest(password),
        state: "accepted".into(),
        callback_status: None,
    });
    if lock(&e.callback).as_ref().is_some_and(|c| c.auto) {
        let me = e.clone().into_inner();
        let t = tracking_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            complete(me, t, 0, String::new()).await;
        });
    }
    HttpResponse::Ok().json(json!({"hresult": "S_OK", "trackingId": tracking_id}))
}

async fn set_callback(e: web::Data<EntSsoEmulator>, body: web::Json<Callback>) -> HttpResponse {
    *lock(&e.callback) = Some(body.into_inner());
    HttpResponse::Ok().json(json!({"ok": true}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complete {
    tracking_id: String,
    #[serde(default)]
    error_code: i64,
    #[serde(default)]
    error_message: String,
}

async fn complete_now(e: web::Data<EntSsoEmulator>, body: web::Json<Complete>) -> HttpResponse {
    let b = body.into_inner();
    let status = complete(e.into_inner(), b.tracking_id, b.error_code, b.error_message).await;
    HttpResponse::Ok().json(json!({"callbackStatus": status}))
}

impl Emulator for EntSsoEmulator {
    fn shared(&self) -> &Mutex<Shared> {
        &self.shared
    }

    fn state(&self) -> Value {
        json!({"kind": "entsso", "notifications": *lock(&self.notifications),
               "callback": lock(&self.callback).as_ref().map(|c| c.url.clone())})
    }

    fn configure(self: Arc<Self>, cfg: &mut web::ServiceConfig) {
        cfg.route("/_emulator/callback", web::post().to(set_callback))
            .route("/_emulator/complete", web::post().to(complete_now))
            .route("/{tail:.*}", web::post().to(send_notification));
    }
}
