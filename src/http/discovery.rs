//! /ServiceProviderConfig, /ResourceTypes and /Schemas (RFC 7644 section 4), built from the
//! documents in the schema registry.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{scim_json, AppState, HttpError};
use crate::scim::list::list_response;
use crate::scim::ScimError;

fn with_meta(mut doc: Value, resource_type: &str, location: String) -> Value {
    if let Some(obj) = doc.as_object_mut() {
        obj.insert(
            "meta".into(),
            json!({ "resourceType": resource_type, "location": location }),
        );
    }
    doc
}

pub async fn service_provider_config(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let base = state.base_url(&req);
    let mut doc = state.resources.registry().service_provider_config().clone();
    let max = state.settings.max_results;
    if let Some(filter) = doc.get_mut("filter").and_then(Value::as_object_mut) {
        filter.insert("maxResults".into(), json!(max));
    }
    if let Some(b) = doc.get_mut("bulk").and_then(Value::as_object_mut) {
        b.insert(
            "maxOperations".into(),
            json!(state.settings.bulk_max_operations),
        );
        b.insert(
            "maxPayloadSize".into(),
            json!(state.settings.bulk_max_payload_bytes),
        );
    }
    if let Some(p) = doc.get_mut("pagination").and_then(Value::as_object_mut) {
        p.insert("maxPageSize".into(), json!(max));
        p.insert("defaultPageSize".into(), json!(max));
    }
    scim_json(
        StatusCode::OK,
        &with_meta(
            doc,
            "ServiceProviderConfig",
            format!("{base}/ServiceProviderConfig"),
        ),
    )
}

fn rt_doc(state: &AppState, base: &str, name: &str) -> Option<Value> {
    let rt = state.resources.registry().resource_type(name)?;
    Some(with_meta(
        rt.document.clone(),
        "ResourceType",
        format!("{base}/ResourceTypes/{}", rt.name),
    ))
}

pub async fn resource_types(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let base = state.base_url(&req);
    let docs: Vec<Value> = state
        .resources
        .registry()
        .resource_types()
        .iter()
        .filter_map(|rt| rt_doc(&state, &base, &rt.name))
        .collect();
    scim_json(StatusCode::OK, &list_response(docs.len() as u64, 1, docs))
}

pub async fn resource_type(
    req: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let base = state.base_url(&req);
    rt_doc(&state, &base, &name)
        .map(|d| scim_json(StatusCode::OK, &d))
        .ok_or_else(|| HttpError(ScimError::NotFound(format!("no resource type '{name}'"))))
}

fn schema_doc(state: &AppState, base: &str, urn: &str) -> Option<Value> {
    let s = state.resources.registry().schema(urn)?;
    Some(with_meta(
        s.document.clone(),
        "Schema",
        format!("{base}/Schemas/{}", s.id),
    ))
}

pub async fn schemas(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let base = state.base_url(&req);
    let docs: Vec<Value> = state
        .resources
        .registry()
        .schemas()
        .filter_map(|s| schema_doc(&state, &base, &s.id))
        .collect();
    scim_json(StatusCode::OK, &list_response(docs.len() as u64, 1, docs))
}

pub async fn schema(
    req: HttpRequest,
    state: web::Data<AppState>,
    urn: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let base = state.base_url(&req);
    schema_doc(&state, &base, &urn)
        .map(|d| scim_json(StatusCode::OK, &d))
        .ok_or_else(|| HttpError(ScimError::NotFound(format!("no schema '{urn}'"))))
}
