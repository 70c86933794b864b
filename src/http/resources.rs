//! /Users, /Groups and any other configured resource type: thin handlers over
//! [`crate::bridge::Resources`].

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::body::read_json;
use super::error::blocking;
use super::observe::AuditNote;
use super::{scim_json, AppState, HttpError, RtName};
use crate::bridge::audit::paths_named;
use crate::bridge::etag::{none_match_hits, Precondition};
use crate::bridge::Rendered;
use crate::scim::list::ListParams;
use crate::scim::resource::Projection;
use crate::scim::ScimError;

fn rt_name(req: &HttpRequest) -> Result<String, HttpError> {
    req.app_data::<RtName>()
        .map(|r| r.0.clone())
        .ok_or_else(|| HttpError(ScimError::Internal("route without a resource type".into())))
}

fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn projection(req: &HttpRequest) -> Projection {
    let pairs = query_pairs(req);
    let find = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    Projection::from_params(find("attributes"), find("excludedAttributes"))
}

fn header_str(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn precondition(req: &HttpRequest) -> Precondition {
    Precondition::from_if_match(header_str(req, header::IF_MATCH))
}

/// Tells the audit trail which resource a write touched and the paths it named.
fn note(req: &HttpRequest, rt: &str, id: Option<&str>, paths: Vec<String>) {
    use actix_web::HttpMessage;
    req.extensions_mut().insert(AuditNote {
        resource_type: Some(rt.to_string()),
        resource_id: id.map(str::to_string),
        paths,
    });
}

fn answer(status: StatusCode, r: &Rendered, with_location: bool) -> HttpResponse {
    let mut res = scim_json(status, &r.body);
    if let Ok(v) = header::HeaderValue::from_str(&r.etag) {
        res.headers_mut().insert(header::ETAG, v);
    }
    if with_location {
        if let Ok(v) = header::HeaderValue::from_str(&r.location) {
            res.headers_mut().insert(header::LOCATION, v);
        }
    }
    res
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    let rt = rt_name(&req)?;
    let pairs = query_pairs(&req);
    let params = ListParams::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let query = params.parse(state.settings.max_results)?;
    let base = state.base_url(&req);
    let resources = state.resources.clone();
    let body = blocking(move || resources.list(&rt, &query, &base)).await?;
    Ok(scim_json(StatusCode::OK, &body))
}

/// POST {endpoint}/.search and /.search (RFC 7644 section 3.4.3).
pub async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, HttpError> {
    let rt = req.app_data::<RtName>().map(|r| r.0.clone());
    let body = read_json(
        &req,
        payload,
        state.settings.max_body_bytes,
        state.body_timeout(),
    )
    .await?;
    let query = ListParams::from_search_body(&body)?.parse(state.settings.max_results)?;
    let base = state.base_url(&req);
    let resources = state.resources.clone();
    let body = blocking(move || match rt {
        Some(rt) => resources.list(&rt, &query, &base),
        None => resources.search_all(&query, &base),
    })
    .await?;
    Ok(scim_json(StatusCode::OK, &body))
}

/// POST /Bulk.
pub async fn bulk(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, HttpError> {
    let body = read_json(
        &req,
        payload,
        state.settings.bulk_max_payload_bytes,
        state.body_timeout(),
    )
    .await?;
    let ops: Vec<String> = body
        .get("Operations")
        .and_then(|o| o.as_array())
        .map(|ops| {
            ops.iter()
                .map(|op| {
                    let m = op.get("method").and_then(|v| v.as_str()).unwrap_or("?");
                    let p = op.get("path").and_then(|v| v.as_str()).unwrap_or("?");
                    format!("{m} {p}")
                })
                .collect()
        })
        .unwrap_or_default();
    note(&req, "Bulk", None, ops);
    let base = state.base_url(&req);
    let max_ops = state.settings.bulk_max_operations;
    let resources = state.resources.clone();
    let scim_base = base.clone();
    let body = blocking(move || resources.bulk(body, &base, max_ops)).await?;
    // The audit names each resource an operation touched, those it created included, so a
    // lookup of the trail by resource finds the Bulk request.
    let done: Vec<String> = body["Operations"]
        .as_array()
        .map(|ops| {
            ops.iter()
                .filter_map(|op| {
                    let method = op["method"].as_str()?;
                    let location = op["location"].as_str()?;
                    let path = location
                        .strip_prefix(scim_base.as_str())
                        .unwrap_or(location);
                    Some(format!("{method} {path}"))
                })
                .collect()
        })
        .unwrap_or_default();
    if !done.is_empty() {
        let mut done = done;
        done.truncate(crate::bridge::audit::MAX_PATHS);
        note(&req, "Bulk", None, done);
    }
    Ok(scim_json(StatusCode::OK, &body))
}

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, HttpError> {
    let rt = rt_name(&req)?;
    let body = read_json(
        &req,
        payload,
        state.settings.max_body_bytes,
        state.body_timeout(),
    )
    .await?;
    let base = state.base_url(&req);
    let proj = projection(&req);
    let resources = state.resources.clone();
    let paths = paths_named(&body, false);
    note(&req, &rt, None, paths.clone());
    let created = rt.clone();
    let rendered = blocking(move || resources.create(&rt, body, &base, &proj)).await?;
    note(&req, &created, rendered.body["id"].as_str(), paths);
    Ok(answer(StatusCode::CREATED, &rendered, true))
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let rt = rt_name(&req)?;
    let base = state.base_url(&req);
    let proj = projection(&req);
    let resources = state.resources.clone();
    let id = id.into_inner();
    // A point read that cannot wait is answered here, without the blocking pool's hop.
    let rendered = match resources.get_now(&rt, &id, &base, &proj) {
        Some(done) => done?,
        None => blocking(move || resources.get(&rt, &id, &base, &proj)).await?,
    };
    if let Some(inm) = header_str(&req, header::IF_NONE_MATCH) {
        if none_match_hits(inm, &rendered.etag) {
            let mut res = HttpResponse::NotModified().finish();
            if let Ok(v) = header::HeaderValue::from_str(&rendered.etag) {
                res.headers_mut().insert(header::ETAG, v);
            }
            return Ok(res);
        }
    }
    Ok(answer(StatusCode::OK, &rendered, false))
}

pub async fn replace(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, HttpError> {
    let rt = rt_name(&req)?;
    let body = read_json(
        &req,
        payload,
        state.settings.max_body_bytes,
        state.body_timeout(),
    )
    .await?;
    let base = state.base_url(&req);
    let proj = projection(&req);
    let pre = precondition(&req);
    let resources = state.resources.clone();
    let id = id.into_inner();
    note(&req, &rt, Some(&id), paths_named(&body, false));
    let rendered = blocking(move || resources.replace(&rt, &id, body, &pre, &base, &proj)).await?;
    Ok(answer(StatusCode::OK, &rendered, false))
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let rt = rt_name(&req)?;
    let pre = precondition(&req);
    let resources = state.resources.clone();
    let id = id.into_inner();
    note(&req, &rt, Some(&id), Vec::new());
    blocking(move || resources.delete(&rt, &id, &pre)).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn patch(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, HttpError> {
    let rt = rt_name(&req)?;
    let body = read_json(
        &req,
        payload,
        state.settings.max_body_bytes,
        state.body_timeout(),
    )
    .await?;
    let base = state.base_url(&req);
    let proj = projection(&req);
    let pre = precondition(&req);
    // A group PATCH answers 204 unless the client asks for attributes (RFC 7644 3.5.2),
    // so a one-member change never serialises a large group.
    let want_body = !state.resources.is_group(&rt)
        || !proj.attributes.is_empty()
        || state.settings.group_patch_returns_resource;
    let resources = state.resources.clone();
    let id = id.into_inner();
    note(&req, &rt, Some(&id), paths_named(&body, true));
    let (etag, rendered) =
        blocking(move || resources.patch(&rt, &id, body, &pre, &base, &proj, want_body)).await?;
    Ok(match rendered {
        Some(r) => answer(StatusCode::OK, &r, false),
        None => {
            let mut res = HttpResponse::NoContent().finish();
            if let Ok(v) = header::HeaderValue::from_str(&etag) {
                res.headers_mut().insert(header::ETAG, v);
            }
            res
        }
    })
}
