//! Completions a target sends after it accepted work it finishes later: ENTSSO's
//! PASSWORD_CHANGE_COMPLETE, sent by its adapter with the tracking id it gave when it
//! accepted a password change. Each connector has its own callback token.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use subtle::ConstantTimeEq;

use super::BridgeResult;
use crate::clock::{format_time, Clock};
use crate::model::NotificationState;
use crate::secret::Secret;
use crate::store::NotificationStore;

/// Why a callback is refused, before anything is recorded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    #[error("no connector with a callback by that name")]
    UnknownConnector,
    #[error("a valid callback token is required")]
    BadToken,
    #[error("{0}")]
    BadBody(&'static str),
    #[error("that tracking id belongs to another connector")]
    OtherConnector,
}

/// A completion as the target reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub tracking_id: String,
    pub state: NotificationState,
    /// The HRESULT the target reported: 0 for success, -1 for one it did not give as a
    /// number.
    pub code: i64,
    /// The failure, in words for people (None on success).
    pub error: Option<String>,
}

impl Completion {
    /// `{"NotificationType": 4, "PasswordChangeComplete": {"trackingId", "errorCode",
    /// "errorMessage"}}`, or the three fields at the top level. Error code 0 (or `S_OK`, or
    /// none) is success.
    pub fn from_entsso(body: &[u8]) -> Result<Completion, Refused> {
        let v: Value =
            serde_json::from_slice(body).map_err(|_| Refused::BadBody("the body is not JSON"))?;
        let c = v.get("PasswordChangeComplete").unwrap_or(&v);
        let tracking_id = c["trackingId"]
            .as_str()
            .ok_or(Refused::BadBody("trackingId is required"))?
            .to_string();
        // ENTSSO's tracking ids are GUIDs: one with a control character (U+0000, which
        // PostgreSQL cannot even compare) names no notification.
        if tracking_id.chars().any(char::is_control) {
            return Err(Refused::BadBody("trackingId holds a control character"));
        }
        let code = match &c["errorCode"] {
            Value::Number(n) => n.as_i64().unwrap_or(-1),
            Value::String(s) if s == "S_OK" || s == "0" => 0,
            Value::Null => 0,
            _ => -1,
        };
        Ok(if code == 0 {
            Completion {
                tracking_id,
                state: NotificationState::Completed,
                code,
                error: None,
            }
        } else {
            // Kept as text: U+0000, which PostgreSQL's text refuses, becomes U+FFFD.
            let msg = c["errorMessage"]
                .as_str()
                .unwrap_or("")
                .trim()
                .replace('\0', "\u{FFFD}");
            Completion {
                tracking_id,
                state: NotificationState::Failed,
                code,
                error: Some(format!("PASSWORD_CHANGE_COMPLETE error {code}: {msg}")),
            }
        })
    }
}

pub struct Callbacks {
    store: Arc<dyn NotificationStore>,
    clock: Arc<dyn Clock>,
    /// Connectors that call back, with the token their callback presents.
    tokens: HashMap<String, Secret>,
}

impl Callbacks {
    pub fn new(
        store: Arc<dyn NotificationStore>,
        clock: Arc<dyn Clock>,
        tokens: HashMap<String, Secret>,
    ) -> Callbacks {
        Callbacks {
            store,
            clock,
            tokens,
        }
    }

    /// Checks the bearer token a callback for `connector` presents (in constant time).
    pub fn admit(&self, connector: &str, given: &str) -> Result<(), Refused> {
        let expected = self
            .tokens
            .get(connector)
            .ok_or(Refused::UnknownConnector)?;
        if bool::from(given.as_bytes().ct_eq(expected.expose().as_bytes())) {
            Ok(())
        } else {
            Err(Refused::BadToken)
        }
    }

    /// Records a completion and what it does to the resource's mapping. A completion that
    /// arrives before the delivery's own record is kept for that record to find.
    pub fn complete(
        &self,
        connector: &str,
        c: &Completion,
    ) -> BridgeResult<Result<NotificationState, Refused>> {
        let now = format_time(self.clock.now());
        let row = self.store.complete_notification(
            &c.tracking_id,
            connector,
            c.state,
            c.error.as_deref(),
            &now,
        )?;
        Ok(row.map(|r| r.state).ok_or(Refused::OtherConnector))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_is_read_nested_or_flat_and_a_nonzero_code_is_a_failure() {
        let ok = br#"{"NotificationType": 4, "PasswordChangeComplete": {"trackingId": "t1", "errorCode": 0}}"#;
        assert_eq!(
            Completion::from_entsso(ok).map(|c| c.state),
            Ok(NotificationState::Completed)
        );
        let bad = br#"{"trackingId": "t2", "errorCode": -2147024809, "errorMessage": "bad"}"#;
        let c = Completion::from_entsso(bad).expect("read");
        assert_eq!(c.state, NotificationState::Failed);
        assert_eq!(c.code, -2147024809);
        assert!(c.error.is_some());
        assert!(Completion::from_entsso(b"{}").is_err());
        assert!(Completion::from_entsso(b"not json").is_err());
    }
}
