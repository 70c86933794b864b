//! The one error funnel: every failure a handler returns becomes an RFC 7644 error body.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::bridge::BridgeError;
use crate::scim::ScimError;

pub const SCIM_JSON: &str = "application/scim+json";

#[derive(Debug)]
pub struct HttpError(pub ScimError);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<ScimError> for HttpError {
    fn from(e: ScimError) -> HttpError {
        HttpError(e)
    }
}

impl From<BridgeError> for HttpError {
    fn from(e: BridgeError) -> HttpError {
        HttpError(e.to_scim())
    }
}

impl From<actix_web::error::BlockingError> for HttpError {
    fn from(_: actix_web::error::BlockingError) -> HttpError {
        log::error!("a blocking task was cancelled");
        HttpError(ScimError::Unavailable("the server is shutting down".into()))
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CONTENT_TYPE, SCIM_JSON));
        if self.0.status() == 401 {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"scim-bridge\""));
        }
        res.body(self.0.to_body().to_string())
    }
}

/// Runs blocking use-case code (database calls) off the async executor.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BridgeError> + Send + 'static,
) -> Result<T, HttpError> {
    // The blocking thread logs inside the request's span, so its lines carry the id.
    let span = tracing::Span::current();
    Ok(actix_web::web::block(move || span.in_scope(f)).await??)
}

/// The SCIM 404 for any path the server does not serve.
pub async fn not_found() -> HttpResponse {
    HttpError(ScimError::NotFound("no such endpoint".into())).error_response()
}

/// The SCIM 405 for a method an endpoint does not take.
pub async fn method_not_allowed() -> HttpResponse {
    HttpError(ScimError::MethodNotAllowed(
        "this endpoint does not take that method".into(),
    ))
    .error_response()
}

/// The SCIM 405 with the `Allow` header RFC 9110 asks for, naming what the path takes.
pub fn allow_only(
    allow: &'static str,
) -> impl Fn() -> std::future::Ready<HttpResponse> + Clone + 'static {
    move || {
        let mut res = HttpError(ScimError::MethodNotAllowed(format!(
            "this endpoint takes {allow} only"
        )))
        .error_response();
        res.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        std::future::ready(res)
    }
}
