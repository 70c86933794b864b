//! The admin page at /admin and the description of the admin API at
//! /admin/v1/openapi.json: files built into the binary, served with a strict
//! Content-Security-Policy (nothing inline, nothing from elsewhere).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

const HTML: &str = include_str!("assets/admin.html");
const JS: &str = include_str!("assets/admin.js");
const CSS: &str = include_str!("assets/admin.css");
const OPENAPI: &str = include_str!("assets/openapi.json");

/// Scripts, styles and calls from this origin only; no frames, forms or plugins elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

pub async fn admin_page() -> HttpResponse {
    file("text/html; charset=utf-8", HTML)
}

pub async fn asset(name: web::Path<String>) -> HttpResponse {
    match name.as_str() {
        "admin.js" => file("text/javascript; charset=utf-8", JS),
        "admin.css" => file("text/css; charset=utf-8", CSS),
        _ => super::error::not_found().await,
    }
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(OPENAPI)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_openapi_description_is_json_and_names_every_admin_route() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).expect("JSON");
        for path in [
            "/admin/v1/users/{key}",
            "/admin/v1/jobs",
            "/admin/v1/jobs/{id}/retry",
            "/admin/v1/connectors",
            "/admin/v1/audit",
            "/oauth/token",
        ] {
            assert!(doc["paths"][path].is_object(), "{path}");
        }
    }
}
