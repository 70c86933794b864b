//! Callbacks from targets that finish work later (ENTSSO's PASSWORD_CHANGE_COMPLETE): the
//! request's token and body handed to [`crate::bridge::Callbacks`], its refusals answered
//! with their statuses.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::error::blocking;
use super::{AppState, HttpError};
use crate::bridge::callbacks::{Completion, Refused};

fn refuse(r: &Refused) -> HttpResponse {
    let status = match r {
        Refused::UnknownConnector | Refused::OtherConnector => StatusCode::NOT_FOUND,
        Refused::BadToken => StatusCode::UNAUTHORIZED,
        Refused::BadBody(_) => StatusCode::BAD_REQUEST,
    };
    HttpResponse::build(status).json(json!({"error": r.to_string()}))
}

/// POST /callbacks/entsso/{connector}: `{"NotificationType": 4, "PasswordChangeComplete":
/// {"trackingId", "errorCode", "errorMessage"}}` (or the three fields at the top level).
pub async fn entsso_complete(
    req: HttpRequest,
    state: web::Data<AppState>,
    connector: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, HttpError> {
    // Read within the body time limit, before anything else: a body that stalls after its
    // headers would otherwise hold a connection for good.
    let body = super::body::read_bytes(payload, 64 * 1024, state.body_timeout()).await?;
    let connector = connector.into_inner();
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if let Err(r) = state.callbacks.admit(&connector, given) {
        return Ok(refuse(&r));
    }
    let completion = match Completion::from_entsso(&body) {
        Ok(c) => c,
        Err(r) => return Ok(refuse(&r)),
    };
    let s = state.clone();
    let tracking = completion.tracking_id.clone();
    let done = blocking(move || s.callbacks.complete(&connector, &completion)).await?;
    Ok(match done {
        Ok(st) => HttpResponse::Ok().json(json!({"trackingId": tracking, "state": st})),
        Err(r) => refuse(&r),
    })
}
