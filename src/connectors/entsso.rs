//! `entsso`: Microsoft Enterprise SSO password synchronisation. ISSONotification is an
//! in-process COM interface on Windows, so the bridge talks to an adapter process on the
//! Windows side that relays SendNotification over HTTP JSON: a PASSWORD_CHANGE carries the
//! external account and the new password and is answered with an HRESULT and a tracking
//! GUID. S_OK means accepted, not done: the job completes in state `accepted`, and the
//! adapter's PASSWORD_CHANGE_COMPLETE callback (to `/callbacks/entsso/{connector}`) marks it
//! completed or failed.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::attrs::{text, AttrMap};
use super::{transport, BlockingClient, Connector, ConnectorError, Delivery, Outcome};
use crate::config::Secret;

pub const PASSWORD_CHANGE: i64 = 3;
pub const PASSWORD_CHANGE_COMPLETE: i64 = 4;
pub const FLAG_ADMIN_CHANGE: i64 = 0x1;

/// Default mapping: the external account (the user's id in the affiliate application).
pub const DEFAULTS: &[(&str, &str)] = &[("externalAccount", "userName")];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// ulNotificationFlags: 0 NONE, 0x1 ADMIN_CHANGE, 0x40 WAIT, 0x80 SEND_ONLY.
    pub flags: i64,
    /// The bearer token the adapter presents on its PASSWORD_CHANGE_COMPLETE callback:
    /// literal, `env:VAR` or `file:PATH`.
    pub callback_token: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            flags: FLAG_ADMIN_CHANGE,
            callback_token: None,
        }
    }
}

impl Options {
    pub fn check(&self) -> Result<(), String> {
        if self.flags & !(0x1 | 0x40 | 0x80) != 0 {
            return Err("flags may combine 0x1, 0x40 and 0x80 only".into());
        }
        if let Some(t) = &self.callback_token {
            crate::config::resolve_secret(t).map_err(|e| format!("callback_token: {e}"))?;
        }
        Ok(())
    }
}

pub struct EntSso {
    url: String,
    auth: Option<(String, Secret)>,
    opts: Options,
    map: AttrMap,
    client: BlockingClient,
}

/// How an HRESULT from SendNotification is taken.
pub fn classify_hresult(hresult: &str) -> Result<(), ConnectorError> {
    let h = hresult.trim();
    match h {
        "S_OK" | "0" | "0x00000000" => Ok(()),
        "E_ACCESSDENIED" | "0x80070005" => Err(ConnectorError::Permanent(
            "SendNotification: E_ACCESSDENIED (the adapter account may not send notifications)"
                .into(),
        )),
        "ENTSSO_E_INVALID_NOTIFICATION" => Err(ConnectorError::Permanent(
            "SendNotification: ENTSSO_E_INVALID_NOTIFICATION".into(),
        )),
        "ENTSSO_E_NO_SERVER" => Err(ConnectorError::retry(
            "SendNotification: ENTSSO_E_NO_SERVER (the ENTSSO service cannot be reached)",
        )),
        "ENTSSO_E_WRONG_STATE" => Err(ConnectorError::retry(
            "SendNotification: ENTSSO_E_WRONG_STATE",
        )),
        other => Err(ConnectorError::Permanent(format!(
            "SendNotification: {other}"
        ))),
    }
}

impl EntSso {
    pub fn new(
        url: &str,
        auth: Option<(String, Secret)>,
        opts: Options,
        map: AttrMap,
        timeout: Duration,
    ) -> EntSso {
        EntSso {
            url: url.to_string(),
            auth,
            opts,
            map,
            client: BlockingClient::new(timeout),
        }
    }
}

impl Connector for EntSso {
    fn kind(&self) -> &'static str {
        "entsso"
    }

    fn supports(&self, event: &str) -> bool {
        event == "user.password_set"
    }

    fn deliver(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        let Some(password) = d.password else {
            return Err(ConnectorError::Permanent(
                "the password is no longer held (it is erased when its job dies); set it again through SCIM".into(),
            ));
        };
        let fields = self.map.apply(&d.payload["resource"]);
        let account = fields
            .get("externalAccount")
            .map(text)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                ConnectorError::Permanent("the user has no value for externalAccount".into())
            })?;
        let body = json!({
            "NotificationType": PASSWORD_CHANGE,
            "ulNotificationFlags": self.opts.flags,
            "PasswordChange": {
                "externalAccount": account,
                "newPassword": password.expose(),
                "oldPassword": "",
                "timestamp": 0
            }
        });
        let mut req = self
            .client
            .get()?
            .post(&self.url)
            .header("Content-Type", "application/json");
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, Some(p.expose()));
        }
        let res = req.body(body.to_string()).send().map_err(transport)?;
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().unwrap_or_default();
        if !status.is_success() {
            return Err(super::classify_status(status, &headers, &text));
        }
        let reply: Value = serde_json::from_str(&text).map_err(|_| {
            ConnectorError::retry(format!(
                "SendNotification: not JSON: {}",
                text.chars().take(200).collect::<String>()
            ))
        })?;
        let hresult = reply["hresult"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| reply["hresult"].to_string());
        classify_hresult(&hresult)?;
        let tracking = reply["trackingId"].as_str().map(str::to_string);
        Ok(Outcome {
            target_id: Some(account.clone()),
            principal: Some(account),
            state: Some("accepted".into()),
            tracking_id: tracking,
            note: None,
        })
    }
}
