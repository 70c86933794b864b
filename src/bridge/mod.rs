//! The bridge's use cases: where the SCIM protocol, the store and the outbox meet.
//! HTTP handlers call these; these never see HTTP.

pub mod admin;
pub mod audit;
pub mod backfill;
pub mod bulk;
pub mod callbacks;
pub mod error;
pub mod etag;
pub mod jwt;
pub mod reconcile;
pub mod resources;
pub mod schemas;
pub mod seed;
pub mod tokens;

pub use admin::Admin;
pub use callbacks::Callbacks;
pub use error::{BridgeError, BridgeResult};
pub use resources::{Rendered, Resources};
pub use tokens::{Caller, Scope, Scopes, TokenKind, Tokens};
