//! The SCIM 2.0 protocol (RFC 7643, RFC 7644), pure: no web framework, database or HTTP
//! client here. Everything in this module is deterministic data in, data out.

pub mod error;
pub mod filter;
pub mod fold;
pub mod json;
pub mod list;
pub mod patch;
pub mod path;
pub mod resource;
pub mod schema;

pub use error::{ScimError, ScimResult};
