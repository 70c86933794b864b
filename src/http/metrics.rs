//! GET /metrics: Prometheus' text format, behind `metrics_token` when one is set.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::blocking;
use super::{AppState, HttpError};
use crate::scim::ScimError;

pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    if let Some(want) = &state.metrics_token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !super::auth::same_secret(given, want.expose()) {
            return Err(HttpError(ScimError::Unauthorized(
                "/metrics needs the metrics token".into(),
            )));
        }
    }
    let (admin, metrics) = (state.admin.clone(), state.metrics.clone());
    let text = blocking(move || admin.metrics_text(&metrics)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE))
        .body(text))
}
