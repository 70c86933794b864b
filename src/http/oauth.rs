//! `POST /oauth/token`: the OAuth 2.0 client credentials grant (RFC 6749 section 4.4), the
//! client authenticated by HTTP Basic (`client_secret_basic`) or form fields
//! (`client_secret_post`), never both. Errors are section 5.2 bodies.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde_json::json;

use super::AppState;
use crate::bridge::tokens::OAuthError;

fn error(e: &OAuthError) -> HttpResponse {
    let mut res = match e {
        OAuthError::InvalidClient(_) => {
            let mut r = HttpResponse::Unauthorized();
            r.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"scim-bridge\""));
            r
        }
        OAuthError::Server(_) => HttpResponse::InternalServerError(),
        _ => HttpResponse::BadRequest(),
    };
    res.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({"error": e.code(), "error_description": e.description()}))
}

/// 429 for an address past its budget of failed authentications.
fn too_many_failures(wait: std::time::Duration) -> HttpResponse {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    HttpResponse::TooManyRequests()
        .insert_header((header::RETRY_AFTER, secs.max(1).to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({"error": "invalid_request",
                     "error_description": "too many failed authentications from this address; try again later"}))
}

/// The form's parameters; one given twice is an error (RFC 6749 section 3.2).
fn form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(OAuthError::InvalidRequest(format!(
                "the parameter '{k}' is given more than once"
            )));
        }
    }
    Ok(out)
}

/// The client id and secret of an `Authorization: Basic` header, each form-urlencoded
/// (RFC 6749 section 2.3.1).
fn basic(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::InvalidClient("the Authorization header is not HTTP Basic".into());
    let value = value.to_str().map_err(|_| bad())?;
    let (scheme, b64) = value.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    Ok(Some((decode(id), decode(secret))))
}

fn grant(req: &HttpRequest, body: &[u8]) -> Result<(String, String, Option<String>), OAuthError> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !is_form {
        return Err(OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let mut p = form(body)?;
    match p.get("grant_type").map(String::as_str) {
        None => return Err(OAuthError::InvalidRequest("grant_type is required".into())),
        Some("client_credentials") => {}
        Some(other) => {
            return Err(OAuthError::UnsupportedGrantType(format!(
                "'{other}' is not supported: use client_credentials"
            )))
        }
    }
    let posted = (p.remove("client_id"), p.remove("client_secret"));
    let (id, secret) = match (basic(req)?, posted) {
        (Some(_), (_, Some(_))) => {
            return Err(OAuthError::InvalidRequest(
                "authenticate the client one way: HTTP Basic or form fields, not both".into(),
            ))
        }
        (Some((id, secret)), (form_id, None)) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(OAuthError::InvalidRequest(
                    "client_id differs from the one in HTTP Basic".into(),
                ));
            }
            (id, secret)
        }
        (None, (Some(id), Some(secret))) => (id, secret),
        (None, _) => {
            return Err(OAuthError::InvalidClient(
                "the client must authenticate (HTTP Basic, or client_id and client_secret)".into(),
            ))
        }
    };
    Ok((id, secret, p.remove("scope")))
}

/// The most a token request's form may hold.
const FORM_LIMIT: usize = 8 * 1024;

pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    // Read within the body time limit: anyone may call this endpoint, and a body that
    // stalls after its headers would hold a connection (and a descriptor) for good.
    let body = match super::body::read_bytes(payload, FORM_LIMIT, state.body_timeout()).await {
        Ok(b) => b,
        Err(e) => {
            let status = actix_web::http::StatusCode::from_u16(e.0.status())
                .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
            return HttpResponse::build(status)
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(json!({"error": "invalid_request", "error_description": e.0.detail()}));
        }
    };
    let addr = state.client_addr(&req);
    if let Some(wait) = state.failures.as_ref().and_then(|f| f.refused(&addr)) {
        return too_many_failures(wait);
    }
    let (id, secret, scope) = match grant(&req, &body) {
        Ok(g) => g,
        Err(e) => return error(&e),
    };
    let tokens = state.tokens.clone();
    let issued = web::block(move || tokens.issue(&id, &secret, scope.as_deref())).await;
    if let Ok(Err(OAuthError::InvalidClient(_))) = &issued {
        if let Some(wait) = state.failures.as_ref().and_then(|f| f.failed(&addr)) {
            return too_many_failures(wait);
        }
    }
    match issued {
        Ok(Ok(t)) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(t),
        Ok(Err(e)) => error(&e),
        Err(_) => error(&OAuthError::Server("the server is shutting down".into())),
    }
}
