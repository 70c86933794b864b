//! Storage errors: what went wrong in terms the bridge can act on.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("a unique value is already taken")]
    Conflict,
    #[error("the resource changed since version {0}")]
    VersionMismatch(i64),
    #[error("member '{0}' does not exist")]
    MissingMember(String),
    /// A member was deleted by another request while this one added it.
    #[error("a member was deleted while it was being added")]
    MemberGone,
    #[error("unsupported database URL '{0}': use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("connection pool error: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// A filter or sort the store cannot run, as the SCIM error to answer with.
    #[error("{0}")]
    Query(crate::scim::ScimError),
    #[error("stored document is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Maps a diesel error, turning unique violations into [`StoreError::Conflict`].
pub fn classify(e: diesel::result::Error) -> StoreError {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StoreError::Conflict,
        Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => StoreError::MemberGone,
        Error::NotFound => StoreError::NotFound,
        other => StoreError::Db(other),
    }
}
