//! Connectors: one module per target system, behind one trait. Vendor wire types stay
//! inside their module; the outbox sees only [`Connector`].

pub mod webhook;

use std::time::Duration;

use serde_json::Value;

use crate::store::outbox::MappingRow;

/// Why a delivery failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectorError {
    /// The target is down, overloaded or answered 5xx/429: try again later.
    #[error("{message}")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The target refused the change itself: trying again will not help.
    #[error("{0}")]
    Permanent(String),
}

/// One job, as a connector receives it.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    pub job_id: i64,
    pub event: &'a str,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    /// event, id, version, changes (added/replaced/removed with old and new), resource.
    pub payload: &'a Value,
    /// Where the resource stood in this target before (its target id, principal).
    pub mapping: Option<&'a MappingRow>,
}

/// What a delivery leaves in the mapping table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub target_id: Option<String>,
    pub principal: Option<String>,
}

pub trait Connector: Send + Sync {
    fn kind(&self) -> &'static str;
    /// Whether the connector acts on this event; others are skipped and recorded.
    fn supports(&self, event: &str) -> bool;
    fn deliver(&self, delivery: &Delivery<'_>) -> Result<Outcome, ConnectorError>;
}

/// A blocking HTTP client made on first use (in an outbox worker thread) and dropped on a
/// thread of its own: reqwest's blocking client may be neither made nor dropped inside an
/// async runtime, and the application is built inside one.
pub struct BlockingClient {
    timeout: Duration,
    client: std::sync::OnceLock<reqwest::blocking::Client>,
}

impl BlockingClient {
    pub fn new(timeout: Duration) -> BlockingClient {
        BlockingClient {
            timeout,
            client: std::sync::OnceLock::new(),
        }
    }

    pub fn get(&self) -> Result<&reqwest::blocking::Client, ConnectorError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let c = reqwest::blocking::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| ConnectorError::Permanent(format!("HTTP client: {e}")))?;
        Ok(self.client.get_or_init(|| c))
    }
}

impl Drop for BlockingClient {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            std::thread::spawn(move || drop(c));
        }
    }
}

/// Reads a `Retry-After` header given in seconds.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Classifies an HTTP status the common way: 429 and 5xx retryable, other 4xx permanent.
pub fn classify_status(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &str,
) -> ConnectorError {
    let message = format!(
        "{status}: {}",
        body.chars().take(300).collect::<String>().trim()
    );
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        ConnectorError::Retryable {
            message,
            retry_after: retry_after(headers),
        }
    } else {
        ConnectorError::Permanent(message)
    }
}

/// A transport failure (connection refused, timeout): always retryable.
pub fn transport(e: reqwest::Error) -> ConnectorError {
    ConnectorError::Retryable {
        message: format!("cannot reach the target: {e}"),
        retry_after: None,
    }
}
