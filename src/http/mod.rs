//! actix-web: routes, extractors, authentication and the error funnel. Handlers are thin:
//! they read the request, call a use case, and write the answer.

pub mod admin;
pub mod auth;
pub mod body;
pub mod budget;
pub mod callbacks;
pub mod discovery;
pub mod error;
pub mod health;
pub mod metrics;
pub mod oauth;
pub mod observe;
pub mod page;
pub mod paths;
pub mod resources;

use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::bridge::{Resources, Tokens};
use crate::config::Settings;
use crate::scim::schema::Registry;
use crate::scim::ScimError;
use actix_web::ResponseError;

pub use error::{HttpError, SCIM_JSON};

pub const SCIM_BASE: &str = "/scim/v2";

/// What every handler can reach.
pub struct AppState {
    pub resources: Arc<Resources>,
    pub tokens: Arc<Tokens>,
    pub settings: Arc<Settings>,
    pub admin: Arc<crate::bridge::Admin>,
    pub callbacks: Arc<crate::bridge::Callbacks>,
    pub clock: Arc<dyn crate::clock::Clock>,
    /// Outside JWT issuers.
    pub issuers: Arc<crate::bridge::jwt::Issuers>,
    /// Each credential's request budget, when budgets are on.
    pub budget: Option<Arc<budget::Budget>>,
    /// Failed authentications per client address, when that budget is on.
    pub failures: Option<Arc<budget::Failures>>,
    /// What `/metrics` serves.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The token `/metrics` asks for, resolved.
    pub metrics_token: Option<crate::secret::Secret>,
    /// The audit trail.
    pub audit: Arc<crate::bridge::audit::Audit>,
    /// Backfill and sync.
    pub backfill: Arc<crate::bridge::backfill::Backfill>,
    /// Reconcile.
    pub reconcile: Arc<crate::bridge::reconcile::Reconcile>,
}

impl AppState {
    /// The base URL of the SCIM service as clients see it, for `meta.location` and
    /// `Location`: `public_url` when set; else what a trusted proxy's `Forwarded` or
    /// `X-Forwarded-*` headers say; else the request's own scheme and Host. Forwarding
    /// headers from anyone else are ignored, so no client can point locations elsewhere.
    pub fn base_url(&self, req: &HttpRequest) -> String {
        if let Some(u) = &self.settings.public_url {
            return format!("{}{SCIM_BASE}", u.trim_end_matches('/'));
        }
        let peer = req.peer_addr().map(|a| a.ip());
        let trusted = peer.is_some_and(|ip| {
            self.settings
                .trusted_proxies
                .iter()
                .any(|p| p.trim().parse::<std::net::IpAddr>().ok() == Some(ip))
        });
        if trusted {
            let info = req.connection_info();
            return format!("{}://{}{SCIM_BASE}", info.scheme(), info.host());
        }
        let host = req
            .headers()
            .get(actix_web::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| req.uri().authority().map(|a| a.to_string()))
            .unwrap_or_else(|| self.settings.listen.clone());
        let scheme = req.uri().scheme_str().unwrap_or("http");
        format!("{scheme}://{host}{SCIM_BASE}")
    }

    /// The client's address: the peer's, or what a trusted proxy says the client's is.
    pub fn client_addr(&self, req: &HttpRequest) -> String {
        let peer = req.peer_addr().map(|a| a.ip());
        let trusted = peer.is_some_and(|ip| {
            self.settings
                .trusted_proxies
                .iter()
                .any(|p| p.trim().parse::<std::net::IpAddr>().ok() == Some(ip))
        });
        if trusted {
            if let Some(real) = req.connection_info().realip_remote_addr() {
                return real.to_string();
            }
        }
        peer.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into())
    }

    /// How long a request's body may take to arrive.
    pub fn body_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.settings.body_timeout_secs.max(1))
    }
}

/// The resource type a route serves, attached to its routes.
#[derive(Debug, Clone)]
pub struct RtName(pub String);

/// Registers `/metrics` alone, for its own listener.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics::metrics));
    cfg.default_service(web::to(error::not_found));
}

/// Registers every route; `/metrics` too unless it has a listener of its own.
pub fn configure(reg: &Registry, with_metrics: bool) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
    move |cfg: &mut web::ServiceConfig| {
        if with_metrics {
            cfg.route("/metrics", web::get().to(metrics::metrics));
        }
        let mut scope = web::scope(SCIM_BASE)
            .wrap(from_fn(auth::require_scim_token))
            .service(
                web::resource("/ServiceProviderConfig")
                    .route(web::get().to(discovery::service_provider_config))
                    .default_service(web::to(error::method_not_allowed)),
            )
            .service(
                web::resource("/ResourceTypes")
                    .route(web::get().to(discovery::resource_types))
                    .default_service(web::to(error::method_not_allowed)),
            )
            .service(
                web::resource("/ResourceTypes/{name}")
                    .route(web::get().to(discovery::resource_type))
                    .default_service(web::to(error::method_not_allowed)),
            )
            .service(
                web::resource("/Schemas")
                    .route(web::get().to(discovery::schemas))
                    .default_service(web::to(error::method_not_allowed)),
            )
            .service(
                web::resource("/Schemas/{urn}")
                    .route(web::get().to(discovery::schema))
                    .default_service(web::to(error::method_not_allowed)),
            );
        for rt in reg.resource_types() {
            let name = RtName(rt.name.clone());
            scope = scope
                .service(
                    web::resource(format!("{}/.search", rt.endpoint))
                        .app_data(name.clone())
                        .route(web::post().to(resources::search))
                        .default_service(web::to(error::method_not_allowed)),
                )
                .service(
                    web::resource(rt.endpoint.clone())
                        .app_data(name.clone())
                        .route(web::get().to(resources::list))
                        // HEAD answers GET's status and headers without the body (RFC 9110
                        // 9.3.2); actix sends no body for a HEAD request.
                        .route(web::head().to(resources::list))
                        .route(web::post().to(resources::create))
                        .default_service(web::to(error::method_not_allowed)),
                )
                .service(
                    web::resource(format!("{}/{{id}}", rt.endpoint))
                        .app_data(name)
                        .route(web::get().to(resources::get))
                        .route(web::head().to(resources::get))
                        .route(web::put().to(resources::replace))
                        .route(web::delete().to(resources::delete))
                        .route(web::patch().to(resources::patch))
                        .default_service(web::to(error::method_not_allowed)),
                );
        }
        scope = scope.service(web::resource("/Me").to(|| async {
            HttpError(ScimError::NotImplemented(
                "/Me is not supported: this server has no notion of the caller as a user".into(),
            ))
            .error_response()
        }));
        scope = scope.service(
            web::resource("/Bulk")
                .route(web::post().to(resources::bulk))
                .default_service(web::to(error::method_not_allowed)),
        );
        scope = scope.service(
            web::resource("/.search")
                .route(web::post().to(resources::search))
                .default_service(web::to(error::method_not_allowed)),
        );
        cfg.service(scope.default_service(web::to(error::not_found)));
        // Before the /admin/v1 scope, which asks for a token: the description is public.
        cfg.route("/admin/v1/openapi.json", web::get().to(page::openapi));
        cfg.route("/admin", web::get().to(page::admin_page));
        cfg.route("/admin/", web::get().to(page::admin_page));
        cfg.route("/admin/assets/{name}", web::get().to(page::asset));
        // Browsers ask for it; the page has no icon.
        cfg.route(
            "/favicon.ico",
            web::get().to(|| async { HttpResponse::NoContent().finish() }),
        );
        // Bodies and path segments the extractors cannot read are SCIM 400s and 404s.
        cfg.app_data(web::JsonConfig::default().error_handler(|e, _| {
            HttpError(ScimError::InvalidSyntax(format!("the body: {e}"))).into()
        }));
        cfg.app_data(web::PathConfig::default().error_handler(|e, _| {
            HttpError(ScimError::NotFound(format!("no such resource: {e}"))).into()
        }));
        let admin = [
            ("/users/{key}", "GET", web::get().to(admin::user)),
            ("/groups/{key}", "GET", web::get().to(admin::group)),
            ("/jobs", "GET", web::get().to(admin::jobs)),
            ("/audit", "GET", web::get().to(admin::audit)),
            ("/jobs/{id}/retry", "POST", web::post().to(admin::retry_job)),
            (
                "/jobs/{id}/discard",
                "POST",
                web::post().to(admin::discard_job),
            ),
            ("/connectors", "GET", web::get().to(admin::connectors)),
            ("/credentials", "GET", web::get().to(admin::credentials)),
            (
                "/credentials/tokens",
                "POST",
                web::post().to(admin::create_token),
            ),
            (
                "/credentials/clients",
                "POST",
                web::post().to(admin::create_client),
            ),
            (
                "/credentials/signing-key",
                "POST",
                web::post().to(admin::rotate_signing_key),
            ),
            (
                "/credentials/{kind}/{name}",
                "DELETE",
                web::delete().to(admin::revoke),
            ),
            (
                "/connectors/{name}/retry",
                "POST",
                web::post().to(admin::retry_connector),
            ),
            (
                "/connectors/{name}/release",
                "POST",
                web::post().to(admin::release),
            ),
            (
                "/connectors/{name}/discard",
                "POST",
                web::post().to(admin::discard),
            ),
        ];
        let mut scope = web::scope("/admin/v1")
            .wrap(from_fn(auth::require_admin_token))
            .service(
                web::resource("/connectors/{name}/sync")
                    .route(web::post().to(admin::sync))
                    .route(web::get().to(admin::sync_progress)),
            )
            .service(
                web::resource("/connectors/{name}/reconcile")
                    .route(web::post().to(admin::reconcile))
                    .route(web::get().to(admin::reconcile_progress))
                    .default_service(web::to(error::allow_only("GET, POST"))),
            );
        for (path, allow, route) in admin {
            // Another method on a known path is a 405 that says which one it takes.
            scope = scope.service(
                web::resource(path)
                    .route(route)
                    .default_service(web::to(error::allow_only(allow))),
            );
        }
        cfg.service(scope.default_service(web::to(error::not_found)));
        cfg.service(
            web::resource("/oauth/token")
                .route(web::post().to(oauth::token))
                .default_service(web::to(error::allow_only("POST"))),
        );
        cfg.route("/healthz", web::get().to(health::live));
        cfg.route("/readyz", web::get().to(health::ready));
        cfg.route(
            "/callbacks/entsso/{connector}",
            web::post().to(callbacks::entsso_complete),
        );
        cfg.default_service(web::to(error::not_found));
    }
}

/// A 200 (or other) answer with a SCIM JSON body.
pub fn scim_json(status: actix_web::http::StatusCode, body: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((actix_web::http::header::CONTENT_TYPE, SCIM_JSON))
        .body(body.to_string())
}
