//! Use-case errors, and the one place they become SCIM errors.

use crate::scim::ScimError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Scim(#[from] ScimError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A connector in sync mode refused the change; the bridge undid it.
    #[error("{connector} refused the change: {error}")]
    Target {
        connector: String,
        failure: Option<crate::model::Failure>,
        error: String,
    },
}

pub type BridgeResult<T> = Result<T, BridgeError>;

impl BridgeError {
    /// The SCIM error a client sees. Internal failures are logged here, with their chain,
    /// and shown to the client without internals.
    pub fn to_scim(&self) -> ScimError {
        match self {
            BridgeError::Scim(e) => e.clone(),
            BridgeError::Target {
                connector,
                failure,
                error,
            } => {
                let detail = format!("target '{connector}' refused the change: {error}");
                match failure {
                    Some(crate::model::Failure::Conflict) => ScimError::Uniqueness(detail),
                    _ => ScimError::InvalidValue(detail),
                }
            }
            BridgeError::Store(e) => match e {
                StoreError::NotFound => ScimError::NotFound("the resource does not exist".into()),
                StoreError::Conflict => {
                    ScimError::Uniqueness("a resource with this unique value already exists".into())
                }
                StoreError::VersionMismatch(_) => ScimError::PreconditionFailed(
                    "the resource has changed: its version no longer matches If-Match".into(),
                ),
                StoreError::MissingMember(id) => {
                    ScimError::InvalidValue(format!("member '{id}' does not exist"))
                }
                StoreError::MemberGone => ScimError::InvalidValue(
                    "a member does not exist (it was deleted while being added)".into(),
                ),
                StoreError::Query(e) => e.clone(),
                // The database cannot be reached (restarting, or every connection busy):
                // nothing was written, and a retry may well succeed.
                StoreError::Pool(_)
                | StoreError::Db(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UnableToSendCommand
                    | diesel::result::DatabaseErrorKind::ClosedConnection,
                    _,
                )) => {
                    log::warn!("the database is unavailable: {e}");
                    ScimError::Unavailable(
                        "the database is unavailable for a moment; try again".into(),
                    )
                }
                other => {
                    log::error!("storage failure: {other}");
                    ScimError::Internal("the server could not complete the request".into())
                }
            },
        }
    }
}
