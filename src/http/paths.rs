//! Paths as clients write them: `/Users/` with a trailing slash and `/users` in another
//! letter case (Microsoft's reference SCIM tests send both) reach `/Users`. The path is
//! rewritten before routing, as actix's NormalizePath does, so the handlers see one form.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::middleware::Next;
use actix_web::web;

use super::{AppState, SCIM_BASE};

/// The endpoints under /scim/v2 besides the resource types'.
const FIXED: &[&str] = &[
    "Bulk",
    "Schemas",
    "ResourceTypes",
    "ServiceProviderConfig",
    "Me",
    ".search",
];

/// The canonical form of a /scim/v2 path, if it differs.
fn canonical(path: &str, state: &AppState) -> Option<String> {
    let rest = path.strip_prefix(SCIM_BASE)?.strip_prefix('/')?;
    let trimmed = rest.trim_end_matches('/');
    let (first, tail) = match trimmed.split_once('/') {
        Some((f, t)) => (f, Some(t)),
        None => (trimmed, None),
    };
    let endpoints = state.resources.registry().resource_types();
    let known = endpoints
        .iter()
        .map(|r| r.endpoint.trim_start_matches('/'))
        .chain(FIXED.iter().copied())
        .find(|e| e.eq_ignore_ascii_case(first))?;
    // The usual case, already canonical: nothing to build.
    if known == first && !rest.ends_with('/') {
        return None;
    }
    let out = match tail {
        Some(t) => format!("{SCIM_BASE}/{known}/{t}"),
        None => format!("{SCIM_BASE}/{known}"),
    };
    (out != path).then_some(out)
}

pub async fn normalize(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let rewritten = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| canonical(req.path(), s));
    if let Some(path) = rewritten {
        let pq = match req.query_string() {
            "" => path,
            q => format!("{path}?{q}"),
        };
        let mut parts = req.head().uri.clone().into_parts();
        if let Ok(pq) = pq.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                req.match_info_mut().get_mut().update(&uri);
                req.head_mut().uri = uri;
            }
        }
    }
    next.call(req).await
}
