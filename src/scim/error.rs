//! SCIM protocol errors (RFC 7644 section 3.12).
//!
//! Every layer above maps its own failures into [`ScimError`] at the edge, and the
//! HTTP layer writes each one as the RFC 7644 error body. This type knows statuses
//! and `scimType` keywords, nothing about transports.

use serde_json::{json, Value};

/// The `urn:ietf:params:scim:api:messages:2.0:Error` schema URN.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A protocol-level error with the HTTP status and `scimType` RFC 7644 assigns it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScimError {
    #[error("{0}")]
    InvalidSyntax(String),
    #[error("{0}")]
    InvalidValue(String),
    #[error("{0}")]
    InvalidFilter(String),
    #[error("{0}")]
    InvalidPath(String),
    #[error("{0}")]
    NoTarget(String),
    #[error("{0}")]
    Mutability(String),
    #[error("{0}")]
    Uniqueness(String),
    /// A 409 with no scimType: a conflict other than uniqueness (a circular bulkId).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooMany(String),
    #[error("{0}")]
    InvalidVersion(String),
    /// RFC 9865: a cursor the server did not issue or cannot read.
    #[error("{0}")]
    InvalidCursor(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotImplemented(String),
    /// The request's body did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// The caller is over its request budget.
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ScimError {
    /// The HTTP status code for this error.
    pub fn status(&self) -> u16 {
        match self {
            ScimError::InvalidSyntax(_)
            | ScimError::InvalidValue(_)
            | ScimError::InvalidFilter(_)
            | ScimError::InvalidPath(_)
            | ScimError::NoTarget(_)
            | ScimError::Mutability(_)
            | ScimError::TooMany(_)
            | ScimError::InvalidVersion(_)
            | ScimError::InvalidCursor(_) => 400,
            ScimError::Unauthorized(_) => 401,
            ScimError::Forbidden(_) => 403,
            ScimError::NotFound(_) => 404,
            ScimError::MethodNotAllowed(_) => 405,
            ScimError::Uniqueness(_) | ScimError::Conflict(_) => 409,
            ScimError::RequestTimeout(_) => 408,
            ScimError::PreconditionFailed(_) => 412,
            ScimError::PayloadTooLarge(_) => 413,
            ScimError::UnsupportedMediaType(_) => 415,
            ScimError::TooManyRequests(_) => 429,
            ScimError::Internal(_) => 500,
            ScimError::NotImplemented(_) => 501,
            ScimError::Unavailable(_) => 503,
        }
    }

    /// The `scimType` keyword, for the 400 and 409 errors that have one.
    pub fn scim_type(&self) -> Option<&'static str> {
        match self {
            ScimError::InvalidSyntax(_) => Some("invalidSyntax"),
            ScimError::InvalidValue(_) => Some("invalidValue"),
            ScimError::InvalidFilter(_) => Some("invalidFilter"),
            ScimError::InvalidPath(_) => Some("invalidPath"),
            ScimError::NoTarget(_) => Some("noTarget"),
            ScimError::Mutability(_) => Some("mutability"),
            ScimError::Uniqueness(_) => Some("uniqueness"),
            ScimError::TooMany(_) => Some("tooMany"),
            ScimError::InvalidVersion(_) => Some("invalidVers"),
            ScimError::InvalidCursor(_) => Some("invalidCursor"),
            _ => None,
        }
    }

    /// The human-readable detail.
    pub fn detail(&self) -> String {
        self.to_string()
    }

    /// The RFC 7644 section 3.12 error body.
    pub fn to_body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status().to_string(),
            "detail": self.detail(),
        });
        if let (Some(t), Some(obj)) = (self.scim_type(), body.as_object_mut()) {
            obj.insert("scimType".into(), Value::String(t.into()));
        }
        body
    }
}

pub type ScimResult<T> = Result<T, ScimError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniqueness_is_a_409_with_its_scim_type() {
        let body = ScimError::Uniqueness("taken".into()).to_body();
        assert_eq!(body["status"], "409");
        assert_eq!(body["scimType"], "uniqueness");
        assert_eq!(body["schemas"][0], ERROR_SCHEMA);
    }

    #[test]
    fn not_found_has_no_scim_type() {
        let body = ScimError::NotFound("gone".into()).to_body();
        assert_eq!(body["status"], "404");
        assert!(body.get("scimType").is_none());
    }
}
