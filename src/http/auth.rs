//! Authentication of every request: SCIM callers (static tokens, access tokens the bridge
//! issued to OAuth clients, JWTs from configured outside issuers) with their scopes and
//! request budget on /scim/v2; admin tokens on /admin/v1. A refusal says which check failed
//! in the log and in RFC 6750's `WWW-Authenticate`; a token is never logged.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};

use super::error::{HttpError, SCIM_JSON};
use super::AppState;
use crate::bridge::tokens::{looks_like_jwt, unverified_issuer, AuthError, OWN_ISSUER};
use crate::bridge::{Caller, Scope, TokenKind};
use crate::scim::ScimError;

fn bearer(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Why a request was not let through.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("a bearer token is required")]
    Missing,
    #[error("the bearer token is not valid: {0}")]
    Invalid(String),
    #[error("this credential may not {0}")]
    InsufficientScope(Scope),
    #[error("this credential is over its request budget")]
    OverBudget(std::time::Duration),
    #[error("too many failed authentications from this address; try again later")]
    TooManyFailures(std::time::Duration),
    #[error("{}", .0 .0)]
    Other(HttpError),
}

impl From<HttpError> for Refusal {
    fn from(e: HttpError) -> Refusal {
        Refusal::Other(e)
    }
}

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        match self {
            Refusal::Missing | Refusal::Invalid(_) => StatusCode::UNAUTHORIZED,
            Refusal::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Refusal::OverBudget(_) | Refusal::TooManyFailures(_) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Other(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let scim = match self {
            Refusal::Other(e) => return e.error_response(),
            Refusal::Missing | Refusal::Invalid(_) => ScimError::Unauthorized(self.to_string()),
            Refusal::InsufficientScope(_) => ScimError::Forbidden(self.to_string()),
            Refusal::OverBudget(_) | Refusal::TooManyFailures(_) => {
                ScimError::TooManyRequests(self.to_string())
            }
        };
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CONTENT_TYPE, SCIM_JSON));
        match self {
            Refusal::Missing => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"scim-bridge\""));
            }
            Refusal::Invalid(why) => {
                let why = why.replace(['"', '\\'], "'");
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!("Bearer realm=\"scim-bridge\", error=\"invalid_token\", error_description=\"{why}\""),
                ));
            }
            Refusal::InsufficientScope(s) => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(
                        "Bearer realm=\"scim-bridge\", error=\"insufficient_scope\", scope=\"{}\"",
                        s.as_str()
                    ),
                ));
            }
            Refusal::OverBudget(wait) | Refusal::TooManyFailures(wait) => {
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                res.insert_header((header::RETRY_AFTER, secs.max(1).to_string()));
            }
            Refusal::Other(_) => {}
        }
        res.body(scim.to_body().to_string())
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::Read => "read (scim:read)",
            Scope::Write => "write (scim:write)",
        })
    }
}

fn state_of(req: &ServiceRequest) -> Result<web::Data<AppState>, Refusal> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| HttpError(ScimError::Internal("no application state".into())).into())
}

fn refused(e: AuthError) -> Refusal {
    match e {
        AuthError::Invalid(why) => {
            log::info!("authentication refused: {why}");
            Refusal::Invalid(why)
        }
        AuthError::Store(s) => HttpError(crate::bridge::BridgeError::Store(s).to_scim()).into(),
    }
}

/// The SCIM scope a request needs: reads are GET and `.search`, everything else writes.
fn needed(req: &ServiceRequest) -> Scope {
    let m = req.method();
    if m == actix_web::http::Method::GET
        || m == actix_web::http::Method::HEAD
        || (m == actix_web::http::Method::POST && req.path().ends_with("/.search"))
    {
        Scope::Read
    } else {
        Scope::Write
    }
}

/// Who presents this bearer token on /scim/v2.
async fn scim_caller(state: &AppState, token: String) -> Result<Caller, Refusal> {
    if looks_like_jwt(&token) {
        let iss = unverified_issuer(&token).unwrap_or_default();
        if iss == OWN_ISSUER {
            let tokens = state.tokens.clone();
            return web::block(move || tokens.verify_access_token(&token))
                .await
                .map_err(HttpError::from)?
                .map_err(refused);
        }
        if state.issuers.knows(&iss) {
            return state.issuers.verify(&token, &iss).await.map_err(refused);
        }
        return Err(refused(AuthError::Invalid(
            "the token's issuer is not configured".into(),
        )));
    }
    let tokens = state.tokens.clone();
    web::block(move || tokens.caller(&token, TokenKind::Scim))
        .await
        .map_err(HttpError::from)?
        .map_err(refused)?
        .ok_or_else(|| refused(AuthError::Invalid("no such token, or revoked".into())))
}

/// Lets a request through only with a valid SCIM credential that has the scope the request
/// needs and room in its budget; the caller goes into the request's extensions. A refusal
/// is an answer, not an error, so the middleware around it sees its status.
pub async fn require_scim_token<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    match admit_scim(&req).await {
        Ok(()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Err(refusal) => Ok(req
            .into_response(refusal.error_response())
            .map_into_right_body()),
    }
}

/// Runs `check` under the client address's budget of failed authentications: an address
/// past it is answered 429 before the credential it presents is checked; a credential that
/// fails counts, and the one that empties the budget is answered 429 too. A request that
/// presents no credential costs nothing to refuse: it is answered 401, never counted.
async fn within_failures(
    req: &ServiceRequest,
    check: impl std::future::Future<Output = Result<(), Refusal>>,
) -> Result<(), Refusal> {
    let state = state_of(req)?;
    let Some(failures) = state.failures.clone() else {
        return check.await;
    };
    if bearer(req).is_none() {
        return check.await;
    }
    let addr = state.client_addr(req.request());
    if let Some(wait) = failures.refused(&addr) {
        return Err(Refusal::TooManyFailures(wait));
    }
    let result = check.await;
    if let Err(Refusal::Invalid(_)) = &result {
        if let Some(wait) = failures.failed(&addr) {
            log::warn!(
                "{addr}: too many failed authentications; refused for {}s",
                wait.as_secs() + 1
            );
            return Err(Refusal::TooManyFailures(wait));
        }
    }
    result
}

async fn admit_scim(req: &ServiceRequest) -> Result<(), Refusal> {
    within_failures(req, admit_scim_checked(req)).await
}

async fn admit_scim_checked(req: &ServiceRequest) -> Result<(), Refusal> {
    let state = state_of(req)?;
    let token = bearer(req).ok_or(Refusal::Missing)?;
    let caller = scim_caller(&state, token).await?;
    let scope = needed(req);
    if !caller.scopes.allows(scope) {
        log::info!("'{}' may not {scope}: refused", caller.name);
        return Err(Refusal::InsufficientScope(scope));
    }
    if let Some(budget) = &state.budget {
        if let Err(wait) = budget.take(&caller.key) {
            return Err(Refusal::OverBudget(wait));
        }
    }
    req.extensions_mut().insert(caller);
    Ok(())
}

/// Lets a request through only with a valid admin token (never a SCIM token); the caller
/// goes into the request's extensions, for the audit trail.
pub async fn require_admin_token<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    match admit_admin(&req).await {
        Ok(()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Err(refusal) => Ok(req
            .into_response(refusal.error_response())
            .map_into_right_body()),
    }
}

async fn admit_admin(req: &ServiceRequest) -> Result<(), Refusal> {
    within_failures(req, admit_admin_checked(req)).await
}

async fn admit_admin_checked(req: &ServiceRequest) -> Result<(), Refusal> {
    let state = state_of(req)?;
    let token = bearer(req).ok_or(Refusal::Missing)?;
    let tokens = state.tokens.clone();
    let caller = web::block(move || tokens.caller(&token, TokenKind::Admin))
        .await
        .map_err(HttpError::from)?
        .map_err(refused)?;
    match caller {
        Some(c) => {
            req.extensions_mut().insert(c);
            Ok(())
        }
        None => Err(refused(AuthError::Invalid("not an admin token".into()))),
    }
}

/// Whether a presented secret is the expected one, in time that does not depend on where
/// they differ.
pub fn same_secret(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}
