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

/// A query parameter; an empty one counts as absent.
fn param(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// A 400 for a query parameter the endpoint does not take: a misspelt filter would
/// otherwise be ignored and answer with everything.
fn only(req: &HttpRequest, known: &[&str]) -> Result<(), HttpError> {
    for (k, _) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        if !known.contains(&k.as_ref()) {
            return Err(HttpError(ScimError::InvalidValue(format!(
                "'{k}' is not a parameter here (known: {})",
                known.join(", ")
            ))));
        }
    }
    Ok(())
}

fn raw_param(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A whole-number query parameter: absent, or a 400 naming it (an empty one too).
fn number(req: &HttpRequest, name: &str) -> Result<Option<i64>, HttpError> {
    raw_param(req, name)
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                HttpError(ScimError::InvalidValue(format!(
                    "{name}: '{c}' is not a whole number"
                )))
            })
        })
        .transpose()
}

pub async fn jobs(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    only(&req, &["state", "connector", "limit"])?;
    let job_state = raw_param(&req, "state");
    let connector = param(&req, "connector");
    // Past the largest page, the largest page.
    let limit = number(&req, "limit")?.unwrap_or(100);
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

/// POST /admin/v1/jobs/{id}/discard: drop one dead job; the jobs behind it go on.
pub async fn discard_job(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, HttpError> {
    let id = id.into_inner();
    let s = state.clone();
    let n = blocking(move || s.admin.discard_job(id)).await?;
    Ok(HttpResponse::Ok().json(json!({ "discarded": n })))
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
    admin: Option<bool>,
    /// Clients only: a whole number of minutes (JSON may write it 90.0).
    #[serde(default)]
    token_lifetime_mins: Option<f64>,
}

/// Reads a credential request: at most 16 KiB, within the body timeout like every other
/// body (a body that never finishes holds no connection for longer), keys once each.
async fn new_credential(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<NewCredential, HttpError> {
    let body = super::body::read_json(req, payload, 16 * 1024, state.body_timeout()).await?;
    serde_json::from_value(body).map_err(|e| {
        HttpError(ScimError::InvalidValue(format!(
            "the credential request cannot be read: {e}"
        )))
    })
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
    if name.is_empty() || name.chars().count() > 200 {
        return Err(HttpError(ScimError::InvalidValue(
            "name is 1 to 200 characters".into(),
        )));
    }
    Ok(name.to_string())
}

/// `POST /admin/v1/credentials/tokens {name, scope, admin}`: the token, shown this once.
pub async fn create_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, HttpError> {
    let body = new_credential(&req, &state, payload).await?;
    if body.token_lifetime_mins.is_some() {
        return Err(HttpError(ScimError::InvalidValue(
            "tokenLifetimeMins belongs to clients; a token lives until it is revoked".into(),
        )));
    }
    let name = named(&body)?;
    let scopes = scopes_of(body.scope.as_deref())?;
    let kind = if body.admin == Some(true) {
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
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, HttpError> {
    let body = new_credential(&req, &state, payload).await?;
    if body.admin.is_some() {
        return Err(HttpError(ScimError::InvalidValue(
            "admin belongs to tokens; a client is for the SCIM API".into(),
        )));
    }
    let name = named(&body)?;
    let scopes = scopes_of(body.scope.as_deref())?;
    let lifetime = match body.token_lifetime_mins {
        None => 60,
        Some(m) if m.fract() == 0.0 && (60.0..=360.0).contains(&m) => m as i32,
        Some(_) => {
            return Err(HttpError(ScimError::InvalidValue(
                "tokenLifetimeMins is a whole number of minutes, 60 to 360".into(),
            )))
        }
    };
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
    only(
        &req,
        &["resource", "credential", "since", "count", "cursor"],
    )?;
    let resource = param(&req, "resource");
    let credential = param(&req, "credential");
    // An empty `since` is not a time: refused, not ignored.
    let since = raw_param(&req, "since");
    let cursor = raw_param(&req, "cursor");
    let count = number(&req, "count")?;
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

/// POST /admin/v1/connectors/{name}/sync[?all=true]: queue what the connector never
/// received (or everything); 202 with the run's progress.
pub async fn sync(
    req: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    only(&req, &["all"])?;
    let all = flag(&req, "all")?;
    let (name, s) = (name.into_inner(), state.clone());
    let progress = blocking(move || s.backfill.queue(&name, all)).await?;
    Ok(HttpResponse::Accepted().json(progress))
}

/// POST /admin/v1/connectors/{name}/reconcile[?repair=true]: read every user back from the
/// target and compare; 202 with the run's progress (409 while one runs).
pub async fn reconcile(
    req: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    only(&req, &["repair"])?;
    let repair = flag(&req, "repair")?;
    let (name, s) = (name.into_inner(), state.clone());
    let progress = blocking(move || s.reconcile.start(&name, repair)).await?;
    Ok(HttpResponse::Accepted().json(progress))
}

/// GET /admin/v1/connectors/{name}/reconcile: the latest run's progress, and its report
/// once it finished.
pub async fn reconcile_progress(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let (name, s) = (name.into_inner(), state.clone());
    let progress = blocking(move || s.reconcile.status(&name)).await?;
    Ok(HttpResponse::Ok().json(progress))
}

/// A query flag: absent or `false`, or `true`.
fn flag(req: &HttpRequest, name: &str) -> Result<bool, HttpError> {
    match raw_param(req, name).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(HttpError(ScimError::InvalidValue(format!(
            "{name}: '{other}' is true or false"
        )))),
    }
}

/// GET /admin/v1/connectors/{name}/sync: the latest run's progress.
pub async fn sync_progress(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let (name, s) = (name.into_inner(), state.clone());
    let progress = blocking(move || s.backfill.progress(&name)).await?;
    Ok(HttpResponse::Ok().json(progress))
}

/// POST /admin/v1/connectors/{name}/release: deliver the jobs the deletion brake holds.
pub async fn release(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let (name, s) = (name.into_inner(), state.clone());
    let n = blocking(move || s.admin.release(&name)).await?;
    Ok(HttpResponse::Ok().json(json!({ "released": n })))
}

/// POST /admin/v1/connectors/{name}/discard: drop the held jobs; the target keeps those
/// users as they are.
pub async fn discard(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let (name, s) = (name.into_inner(), state.clone());
    let dropped = blocking(move || s.admin.discard(&name)).await?;
    Ok(HttpResponse::Ok().json(json!({ "discarded": dropped })))
}
