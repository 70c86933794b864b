//! Bearer-token authentication: SCIM tokens for /scim/v2, admin tokens for /admin/v1.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web;

use super::error::HttpError;
use super::AppState;
use crate::bridge::TokenKind;
use crate::scim::ScimError;

fn bearer(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Lets a request through only with a valid SCIM token. The token is never logged.
pub async fn require_scim_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    check(&req, TokenKind::Scim).await?;
    next.call(req).await
}

/// Lets a request through only with a valid admin token (never a SCIM token).
pub async fn require_admin_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    check(&req, TokenKind::Admin).await?;
    next.call(req).await
}

async fn check(req: &ServiceRequest, kind: TokenKind) -> Result<(), HttpError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| HttpError(ScimError::Internal("no application state".into())))?;
    let Some(token) = bearer(req) else {
        return Err(HttpError(ScimError::Unauthorized(
            "a bearer token is required".into(),
        )));
    };
    let tokens = state.tokens.clone();
    let ok = web::block(move || tokens.verify(&token, kind)).await??;
    if !ok {
        return Err(HttpError(ScimError::Unauthorized(
            "the bearer token is not valid".into(),
        )));
    }
    Ok(())
}
