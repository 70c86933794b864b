//! Every request observed once: a request id (the caller's `X-Request-Id` when it is a
//! sensible one, else a new one) on every log line the request causes and on the answer,
//! one access line, and the request counted in the metrics by its route, never its path.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use tracing::Instrument;

use super::AppState;
use crate::bridge::audit::Entry;
use crate::bridge::Caller;

/// What a write handler tells the audit trail: the resource and the paths its request
/// named. Put in the request's extensions.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub paths: Vec<String>,
}

/// Whether a request is a write the audit trail records: a SCIM write or an admin action.
fn audited(method: &Method, path: &str) -> bool {
    let write = matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    write
        && (path.starts_with(super::SCIM_BASE) && !path.ends_with("/.search")
            || path.starts_with("/admin/v1/"))
}

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The caller's id when it is short printable ASCII (it goes into logs), else a new one.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = request_id(&req);
    let method = req.method().clone();
    let span =
        tracing::info_span!("request", request_id = %id, method = %method, path = %req.path());
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    // Handlers and the auth middleware answer errors themselves; an error that still
    // comes up here is actix's own, and it answers it: counted, without a request id.
    let mut res = match next.call(req).instrument(span.clone()).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => {
            let status = e.as_response_error().status_code().as_u16();
            if let Some(state) = state {
                state
                    .metrics
                    .request("unmatched", method.as_str(), status, started.elapsed());
            }
            return Err(e);
        }
    };
    let took = started.elapsed();
    let status = res.status().as_u16();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    if let Some(state) = &state {
        state.metrics.request(&route, method.as_str(), status, took);
    }
    span.in_scope(|| {
        tracing::info!(
            target: "scim_bridge::access",
            status,
            took_ms = took.as_secs_f64() * 1000.0,
            "{method} {route} {status}"
        )
    });
    if let Some(state) = state.filter(|_| audited(&method, res.request().path())) {
        let entry = {
            let req = res.request();
            let ext = req.extensions();
            // Refused before a credential was known: not a write anyone made.
            ext.get::<Caller>().map(|caller| {
                let note = ext.get::<AuditNote>().cloned().unwrap_or_default();
                let last = req.match_info().iter().last().map(|(_, v)| v.to_string());
                Entry {
                    credential: caller.name.clone(),
                    client: state.client_addr(req),
                    request_id: id.clone(),
                    method: method.to_string(),
                    route: route.clone(),
                    resource_type: note.resource_type,
                    resource_id: note.resource_id.or(last),
                    paths: note.paths,
                    status,
                }
            })
        };
        if let Some(entry) = entry {
            let audit = state.audit.clone();
            let recorded = web::block(move || audit.record(entry)).await;
            if !matches!(recorded, Ok(Ok(()))) {
                span.in_scope(|| tracing::error!("the audit trail could not record this write"));
            }
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    Ok(res)
}
