//! scim-bridge: a SCIM 2.0 server that carries identity providers' changes to
//! applications that do not speak SCIM.
//!
//! Layers, outermost first: [`http`] (actix-web handlers and the one error funnel) calls
//! [`bridge`] (use cases), which uses [`scim`] (the pure protocol) and [`store`] (diesel).

pub mod bridge;
pub mod clock;
pub mod config;
pub mod connectors;
pub mod emulator;
pub mod http;
pub mod metrics;
pub mod model;
pub mod outbox;
pub mod scim;
pub mod secret;
pub mod startup;
pub mod store;
pub mod tls;
