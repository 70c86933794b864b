//! /admin/v1: where each user and group stands in each target, the outbox, and retries.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::error::blocking;
use super::{AppState, HttpError};
use crate::bridge::BridgeError;
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::list::ListQuery;
use crate::scim::path::AttrPath;
use crate::scim::resource::Projection;
use crate::scim::ScimError;
use crate::store::StoreError;

/// Finds a resource by SCIM id, then by each of `attrs` (equal, as a filter would match).
fn find(state: &AppState, rt: &str, key: &str, attrs: &[&str]) -> Result<Value, BridgeError> {
    let proj = Projection::default();
    if let Ok(r) = state.resources.get(rt, key, "", &proj) {
        return Ok(r.body);
    }
    for attr in attrs {
        let query = ListQuery {
            filter: Some(Filter::Compare {
                path: AttrPath {
                    urn: None,
                    attr: attr.to_string(),
                    sub: None,
                },
                op: CompareOp::Eq,
                value: CompValue::String(key.to_string()),
            }),
            start_index: 1,
            count: 2,
            projection: proj.clone(),
            sort: None,
            cursor: None,
        };
        let found = state.resources.list(rt, &query, "")?;
        if let Some(r) = found["Resources"].get(0) {
            return Ok(r.clone());
        }
    }
    Err(ScimError::NotFound(format!("no {rt} with id, {} '{key}'", attrs.join(" or "))).into())
}

fn standing(state: &AppState, rt: &str, key: &str, attrs: &[&str]) -> Result<Value, BridgeError> {
    let resource = match find(state, rt, key, attrs) {
        Ok(r) => r,
        // Deleted: still shown while its mappings are kept (the delete's fate in each
        // target), found by id or by the principal a target knew it by.
        Err(BridgeError::Scim(ScimError::NotFound(m))) => {
            let gone = state
                .store
                .deleted_resource(rt, key)
                .map_err(BridgeError::Store)?;
            match gone {
                Some(id) => json!({"id": id, "deleted": true}),
                None => return Err(ScimError::NotFound(m).into()),
            }
        }
        Err(e) => return Err(e),
    };
    let id = resource["id"].as_str().unwrap_or_default().to_string();
    // Both from one snapshot: a completion commits its notification and its mapping together.
    let (mappings, notes) = state.store.standing_of(&id).map_err(BridgeError::Store)?;
    let mut by_connector = Vec::new();
    for (name, kind) in &state.connectors {
        let m = mappings.iter().find(|m| &m.connector == name);
        by_connector.push(json!({
            "connector": name, "kind": kind,
            "state": m.map(|m| m.state.as_str()).unwrap_or("none"),
            "targetId": m.and_then(|m| m.target_id.clone()),
            "principal": m.and_then(|m| m.principal.clone()),
            "lastVersion": m.and_then(|m| m.last_version),
            "lastError": m.and_then(|m| m.last_error.clone()),
            "note": m.and_then(|m| m.note.clone()),
            "attempts": m.map(|m| m.attempts),
            "updated": m.map(|m| m.updated.clone()),
        }));
    }
    let mut summary = json!({"id": id, "resourceType": rt, "connectors": by_connector});
    if resource.get("deleted") == Some(&json!(true)) {
        summary["deleted"] = json!(true);
    }
    if !notes.is_empty() {
        summary["notifications"] = json!(notes);
    }
    for a in attrs {
        if let Some(v) = resource.get(*a) {
            summary[*a] = v.clone();
        }
    }
    Ok(summary)
}

pub async fn user(
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let key = key.into_inner();
    let s = state.clone();
    let body = blocking(move || standing(&s, "User", &key, &["userName", "externalId"])).await?;
    Ok(HttpResponse::Ok().json(body))
}

pub async fn group(
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let key = key.into_inner();
    let s = state.clone();
    let body =
        blocking(move || standing(&s, "Group", &key, &["displayName", "externalId"])).await?;
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
        .unwrap_or(100i64)
        .clamp(1, 1000);
    let store = state.store.clone();
    let rows = blocking(move || {
        store
            .list_jobs(job_state.as_deref(), connector.as_deref(), limit)
            .map_err(BridgeError::Store)
    })
    .await?;
    let jobs: Vec<Value> = rows
        .into_iter()
        .map(|j| {
            json!({"id": j.id, "connector": j.connector, "resourceType": j.resource_type, "resourceId": j.resource_id,
                   "event": j.event, "state": j.state, "attempts": j.attempts, "nextAttemptAt": j.next_attempt_at,
                   "lastError": j.last_error, "created": j.created, "updated": j.updated})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"jobs": jobs})))
}

pub async fn retry_job(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, HttpError> {
    let id = id.into_inner();
    let s = state.clone();
    let n =
        blocking(move || crate::bridge::admin::retry_dead(&s.store, &s.resources, Some(id), None))
            .await?;
    if n == 0 {
        return Err(HttpError(ScimError::NotFound(format!("no dead job {id}"))));
    }
    state.resources.wake_outbox();
    Ok(HttpResponse::Ok().json(json!({"retried": n})))
}

pub async fn retry_connector(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let name = name.into_inner();
    if !state.connectors.iter().any(|(n, _)| n == &name) {
        return Err(HttpError(ScimError::NotFound(format!(
            "no connector '{name}'"
        ))));
    }
    let s = state.clone();
    let n = blocking(move || {
        crate::bridge::admin::retry_dead(&s.store, &s.resources, None, Some(&name))
    })
    .await?;
    state.resources.wake_outbox();
    Ok(HttpResponse::Ok().json(json!({"retried": n})))
}

pub async fn connectors(state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    let s = state.clone();
    let list = blocking(move || {
        s.connectors
            .iter()
            .map(|(name, kind)| {
                let h = s.store.queue_health(name)?;
                Ok(
                    json!({"name": name, "kind": kind, "queueDepth": h.pending, "dead": h.dead,
                          "oldestPending": h.oldest_pending, "lastSuccess": h.last_success,
                          "lastError": h.last_error, "lastErrorAt": h.last_error_at}),
                )
            })
            .collect::<Result<Vec<Value>, StoreError>>()
            .map_err(BridgeError::Store)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({"connectors": list})))
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
