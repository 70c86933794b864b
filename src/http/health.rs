//! /healthz and /readyz for load balancers and orchestrators, without a token: the first
//! says the process answers, the second that it can serve (its database answers and is
//! migrated), listing connectors that are failing without making the bridge unready.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

/// GET /healthz: the process answers.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// GET /readyz: 200 when the database answers and is migrated, else 503 with the reason.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let s = state.clone();
    let answer = web::block(move || s.admin.readiness())
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    match answer {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(why) => {
            HttpResponse::ServiceUnavailable().json(json!({"status": "unready", "reason": why}))
        }
    }
}
