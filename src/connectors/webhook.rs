//! `webhook`: POSTs each change as JSON to a URL, signed with HMAC-SHA256 when a secret is
//! configured. The job's key (a UUID, the same on every delivery of the job) travels as `Idempotency-Key`, so a receiver can drop a change
//! it already has (a job is retried after a crash mid-delivery).

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{classify_status, transport, Connector, ConnectorError, Delivery, Outcome};
use crate::secret::Secret;

pub const SIGNATURE_HEADER: &str = "X-Scim-Bridge-Signature";

pub struct Webhook {
    url: String,
    secret: Option<Secret>,
    client: super::BlockingClient,
}

impl Webhook {
    pub fn new(
        url: &str,
        secret: Option<Secret>,
        timeout: Duration,
    ) -> Result<Webhook, ConnectorError> {
        url::Url::parse(url)
            .map_err(|e| ConnectorError::Permanent(format!("'{url}' is not a URL: {e}")))?;
        Ok(Webhook {
            url: url.to_string(),
            secret,
            client: super::BlockingClient::new(timeout),
        })
    }
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Connector for Webhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn supports(&self, _event: crate::model::Event) -> bool {
        true
    }

    fn deliver(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        let body = d.change.payload();
        let mut req = self
            .client
            .get()?
            .post(&self.url)
            .header("content-type", "application/json")
            .header("Idempotency-Key", d.idempotency_key);
        if let Some(s) = &self.secret {
            req = req.header(SIGNATURE_HEADER, signature(s.expose(), body.as_bytes()));
        }
        let res = req.body(body).send().map_err(transport)?;
        let status = res.status();
        if status.is_success() {
            return Ok(Outcome {
                target_id: Some(d.resource_id.to_string()),
                ..Default::default()
            });
        }
        let headers = res.headers().clone();
        let text = res.text().unwrap_or_default();
        Err(classify_status(status, &headers, &text))
    }
}
