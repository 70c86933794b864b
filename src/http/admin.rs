//! /admin/v1: where each user and group stands in each target, the outbox, and retries.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::error::blocking;
use super::{AppState, HttpError};
use crate::scim::ScimError;

pub async fn user(
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let key = key.into_inner();
    let s = state.clone();
    let body = blocking(move || s.admin.user_standing(&key)).await?;
    Ok(HttpResponse::Ok().json(body))
}

pub async fn group(
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let key = key.into_inner();
    let s = state.clone();
    let body = blocking(move || s.admin.group_standing(&key)).await?;
    Ok(HttpResponse::Ok().json(body))
}

fn param(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub async fn jobs(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    let job_state = param(&req, "state");
    let connector = param(&req, "connector");
    let limit = param(&req, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100i64);
    let s = state.clone();
    let jobs = blocking(move || {
        s.admin
            .jobs(job_state.as_deref(), connector.as_deref(), limit)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "jobs": jobs })))
}

pub async fn retry_job(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, HttpError> {
    let id = id.into_inner();
    let s = state.clone();
    let n = blocking(move || s.admin.retry_job(id)).await?;
    Ok(HttpResponse::Ok().json(json!({ "retried": n })))
}

pub async fn retry_connector(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let name = name.into_inner();
    let s = state.clone();
    let n = blocking(move || s.admin.retry_connector(&name)).await?;
    Ok(HttpResponse::Ok().json(json!({ "retried": n })))
}

pub async fn connectors(state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    let s = state.clone();
    let list = blocking(move || s.admin.connector_health()).await?;
    Ok(HttpResponse::Ok().json(json!({ "connectors": list })))
}

/// `GET /admin/v1/credentials`: every token and client with its scopes, creation, last use
/// and revocation; never a secret.
pub async fn credentials(state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    let tokens = state.tokens.clone();
    let list = blocking(move || tokens.list()).await?;
    Ok(HttpResponse::Ok().json(json!({ "credentials": list })))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCredential {
    name: String,
    #[serde(default)]
    scope: Option<String>,
    /// Tokens only: an admin API token.
    #[serde(default)]
    admin: bool,
    /// Clients only.
    #[serde(default)]
    token_lifetime_mins: Option<i32>,
}

fn scopes_of(scope: Option<&str>) -> Result<crate::bridge::Scopes, HttpError> {
    match scope {
        None => Ok(crate::bridge::Scopes::FULL),
        Some(s) => crate::bridge::Scopes::parse(s)
            .map_err(|e| HttpError(ScimError::InvalidValue(format!("scope: {e}")))),
    }
}

fn named(body: &NewCredential) -> Result<String, HttpError> {
    let name = body.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(HttpError(ScimError::InvalidValue(
            "name is 1 to 200 characters".into(),
        )));
    }
    Ok(name.to_string())
}

/// `POST /admin/v1/credentials/tokens {name, scope, admin}`: the token, shown this once.
pub async fn create_token(
    state: web::Data<AppState>,
    body: web::Json<NewCredential>,
) -> Result<HttpResponse, HttpError> {
    let name = named(&body)?;
    let scopes = scopes_of(body.scope.as_deref())?;
    let kind = if body.admin {
        crate::bridge::TokenKind::Admin
    } else {
        crate::bridge::TokenKind::Scim
    };
    let tokens = state.tokens.clone();
    let n = name.clone();
    let token = blocking(move || tokens.create_scoped(&n, kind, scopes)).await?;
    Ok(HttpResponse::Created()
        .json(json!({"name": name, "token": token, "scopes": scopes.to_string()})))
}

/// `POST /admin/v1/credentials/clients {name, scope, tokenLifetimeMins}`: the client id and
/// secret, the secret shown this once.
pub async fn create_client(
    state: web::Data<AppState>,
    body: web::Json<NewCredential>,
) -> Result<HttpResponse, HttpError> {
    let name = named(&body)?;
    let scopes = scopes_of(body.scope.as_deref())?;
    let lifetime = body.token_lifetime_mins.unwrap_or(60);
    let tokens = state.tokens.clone();
    let made = blocking(move || tokens.create_client(&name, scopes, lifetime)).await?;
    Ok(HttpResponse::Created().json(made))
}

/// `DELETE /admin/v1/credentials/{tokens|clients}/{name}`: revoked at once everywhere.
pub async fn revoke(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, HttpError> {
    let (kind, name) = path.into_inner();
    let tokens = state.tokens.clone();
    let n = match kind.as_str() {
        "tokens" => blocking(move || tokens.revoke(&name)).await?,
        "clients" => blocking(move || tokens.revoke_client(&name)).await?,
        _ => return Err(HttpError(ScimError::NotFound("no such endpoint".into()))),
    };
    if n == 0 {
        return Err(HttpError(ScimError::NotFound(
            "no live credential has that name".into(),
        )));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /admin/v1/credentials/signing-key`: access tokens are signed with a new key from
/// now on; those already issued stay valid until they expire.
pub async fn rotate_signing_key(state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    let tokens = state.tokens.clone();
    let kid = blocking(move || tokens.rotate_key()).await?;
    Ok(HttpResponse::Ok().json(json!({ "kid": kid })))
}

/// GET /admin/v1/audit?resource=&credential=&since=&count=&cursor=: newest first.
pub async fn audit(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    let resource = param(&req, "resource");
    let credential = param(&req, "credential");
    let since = param(&req, "since");
    let cursor = param(&req, "cursor");
    let count = param(&req, "count")
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                HttpError(crate::scim::ScimError::InvalidValue(format!(
                    "count: '{c}' is not a whole number"
                )))
            })
        })
        .transpose()?;
    let s = state.clone();
    let page = blocking(move || {
        s.audit.list(
            resource.as_deref(),
            credential.as_deref(),
            since.as_deref(),
            cursor.as_deref(),
            count,
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}
