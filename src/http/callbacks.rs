//! Callbacks from targets that finish work later: ENTSSO's PASSWORD_CHANGE_COMPLETE, sent
//! by its adapter with the tracking id it gave when it accepted a password change. Each
//! connector has its own callback token (`options.callback_token`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::error::blocking;
use super::{AppState, HttpError};
use crate::bridge::BridgeError;
use crate::clock::format_time;

fn refuse(status: actix_web::http::StatusCode, detail: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": detail}))
}

/// POST /callbacks/entsso/{connector}: `{"NotificationType": 4, "PasswordChangeComplete":
/// {"trackingId", "errorCode", "errorMessage"}}` (or the three fields at the top level).
pub async fn entsso_complete(
    req: HttpRequest,
    state: web::Data<AppState>,
    connector: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    use actix_web::http::StatusCode;
    let connector = connector.into_inner();
    let Some(expected) = state.callbacks.get(&connector) else {
        return Ok(refuse(
            StatusCode::NOT_FOUND,
            "no connector with a callback by that name",
        ));
    };
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !bool::from(given.as_bytes().ct_eq(expected.expose().as_bytes())) {
        return Ok(refuse(
            StatusCode::UNAUTHORIZED,
            "a valid callback token is required",
        ));
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return Ok(refuse(StatusCode::BAD_REQUEST, "the body is not JSON"));
    };
    let c = v.get("PasswordChangeComplete").unwrap_or(&v);
    let Some(tracking) = c["trackingId"].as_str().map(str::to_string) else {
        return Ok(refuse(StatusCode::BAD_REQUEST, "trackingId is required"));
    };
    let code = match &c["errorCode"] {
        Value::Number(n) => n.as_i64().unwrap_or(-1),
        Value::String(s) if s == "S_OK" || s == "0" => 0,
        Value::Null => 0,
        _ => -1,
    };
    let (st, error) = if code == 0 {
        ("completed", None)
    } else {
        let msg = c["errorMessage"].as_str().unwrap_or("").trim().to_string();
        (
            "failed",
            Some(format!("PASSWORD_CHANGE_COMPLETE error {code}: {msg}")),
        )
    };
    let now = format_time(state.clock.now());
    let s = state.clone();
    let connector2 = connector.clone();
    let row = blocking(move || {
        s.store
            .complete_notification(&tracking, &connector2, st, error.as_deref(), &now)
            .map_err(BridgeError::Store)
    })
    .await?;
    Ok(match row {
        Some(r) => HttpResponse::Ok().json(json!({"trackingId": r.tracking_id, "state": r.state})),
        None => refuse(
            StatusCode::NOT_FOUND,
            "that tracking id belongs to another connector",
        ),
    })
}
