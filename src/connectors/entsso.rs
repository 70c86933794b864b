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
use crate::model::{Event, MappingState};
use crate::secret::Secret;

pub const PASSWORD_CHANGE: i64 = 3;
pub const PASSWORD_CHANGE_COMPLETE: i64 = 4;
/// SSO_NOTIFICATION_FLAG values valid when sending: ADMIN_CHANGE, TEST, AUDIT. (WAIT 0x40
/// belongs to ReceiveNotification, SEND_ONLY 0x80 to adapter initialisation.)
pub const FLAG_ADMIN_CHANGE: i64 = 0x1;
pub const FLAG_TEST: i64 = 0x8;
pub const FLAG_AUDIT: i64 = 0x10;
const SEND_FLAGS: i64 = FLAG_ADMIN_CHANGE | FLAG_TEST | FLAG_AUDIT;

/// Default mapping: the external account (the user's id in the affiliate application).
pub const DEFAULTS: &[(&str, &str)] = &[("externalAccount", "userName")];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// ulNotificationFlags: 0 NONE, 0x1 ADMIN_CHANGE, 0x8 TEST, 0x10 AUDIT.
    pub flags: i64,
    /// The bearer token the adapter presents on its PASSWORD_CHANGE_COMPLETE callback:
    /// literal, `env:VAR` or `file:PATH`.
    pub callback_token: Option<String>,
    /// Numeric HRESULTs an adapter may answer with, by name: the values of
    /// ENTSSO_E_NO_SERVER, ENTSSO_E_WRONG_STATE and ENTSSO_E_INVALID_NOTIFICATION are not
    /// public (`{ "0xC0002A0F" = "ENTSSO_E_NO_SERVER" }`).
    pub hresults: std::collections::BTreeMap<String, String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            flags: FLAG_ADMIN_CHANGE,
            callback_token: None,
            hresults: std::collections::BTreeMap::new(),
        }
    }
}

impl Options {
    pub fn check(&self) -> Result<(), String> {
        if self.flags < 0 || self.flags & !SEND_FLAGS != 0 {
            return Err(
                "flags may combine 0x1 (ADMIN_CHANGE), 0x8 (TEST) and 0x10 (AUDIT) only".into(),
            );
        }
        for (number, name) in &self.hresults {
            if parse_hresult(number).is_none() {
                return Err(format!(
                    "hresults: '{number}' is not a number (0x8..., or decimal)"
                ));
            }
            if !KNOWN.contains(&name.as_str()) {
                return Err(format!(
                    "hresults: '{name}' is not one of {}",
                    KNOWN.join(", ")
                ));
            }
        }
        if let Some(t) = &self.callback_token {
            crate::secret::resolve_secret(t).map_err(|e| format!("callback_token: {e}"))?;
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

/// The HRESULT names this connector knows how to take.
const KNOWN: &[&str] = &[
    "S_OK",
    "E_ACCESSDENIED",
    "ENTSSO_E_INVALID_NOTIFICATION",
    "ENTSSO_E_NO_SERVER",
    "ENTSSO_E_WRONG_STATE",
];

/// An HRESULT given as a number: hex (`0x80070005`), or decimal, signed
/// (`-2147024891`) or not (`2147942405`).
pub fn parse_hresult(text: &str) -> Option<u32> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    if let Ok(n) = t.parse::<i64>() {
        return i32::try_from(n)
            .map(|i| i as u32)
            .or_else(|_| u32::try_from(n))
            .ok();
    }
    None
}

/// How an HRESULT from SendNotification is taken: by name, or a number that is S_OK,
/// E_ACCESSDENIED, a configured name, or any other success (severity bit clear).
pub fn classify_hresult(
    hresult: &str,
    names: &std::collections::BTreeMap<String, String>,
) -> Result<(), ConnectorError> {
    let h = hresult.trim();
    let name = match parse_hresult(h) {
        Some(0) => "S_OK".to_string(),
        Some(0x8007_0005) => "E_ACCESSDENIED".to_string(),
        Some(n) => match names
            .iter()
            .find(|(k, _)| parse_hresult(k) == Some(n))
            .map(|(_, v)| v.clone())
        {
            Some(v) => v,
            None if n & 0x8000_0000 == 0 => "S_OK".to_string(),
            None => format!("0x{n:08X}"),
        },
        None => h.to_string(),
    };
    match name.as_str() {
        "S_OK" => Ok(()),
        "E_ACCESSDENIED" => Err(ConnectorError::Permanent(format!(
            "SendNotification: E_ACCESSDENIED ({h}): the adapter account may not send notifications"
        ))),
        "ENTSSO_E_INVALID_NOTIFICATION" => Err(ConnectorError::Permanent(format!(
            "SendNotification: ENTSSO_E_INVALID_NOTIFICATION ({h})"
        ))),
        "ENTSSO_E_NO_SERVER" => Err(ConnectorError::retry(format!(
            "SendNotification: ENTSSO_E_NO_SERVER ({h}): the ENTSSO service cannot be reached"
        ))),
        "ENTSSO_E_WRONG_STATE" => Err(ConnectorError::retry(format!(
            "SendNotification: ENTSSO_E_WRONG_STATE ({h})"
        ))),
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

    fn supports(&self, event: Event) -> bool {
        event == Event::UserPasswordSet
    }

    fn deliver(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        let Some(password) = d.password else {
            return Err(ConnectorError::Permanent(
                "the password is no longer held (it is erased when its job dies); set it again through SCIM".into(),
            ));
        };
        let fields = self
            .map
            .apply(d.change.resource.as_ref().unwrap_or(&Value::Null));
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
        classify_hresult(&hresult, &self.opts.hresults)?;
        let tracking = reply["trackingId"].as_str().map(str::to_string);
        Ok(Outcome {
            target_id: Some(account.clone()),
            principal: Some(account),
            state: Some(MappingState::Accepted),
            tracking_id: tracking,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_hresults_are_read_in_every_form_and_configured_names_apply() {
        assert_eq!(parse_hresult("0x80070005"), Some(0x8007_0005));
        assert_eq!(parse_hresult("-2147024891"), Some(0x8007_0005));
        assert_eq!(parse_hresult("2147942405"), Some(0x8007_0005));
        let mut names = std::collections::BTreeMap::new();
        names.insert("0xC0002A0F".to_string(), "ENTSSO_E_NO_SERVER".to_string());
        assert!(classify_hresult("0", &names).is_ok());
        assert!(matches!(
            classify_hresult("-2147024891", &names),
            Err(ConnectorError::Permanent(_))
        ));
        assert!(matches!(
            classify_hresult("3221236239", &names),
            Err(ConnectorError::Retryable { .. })
        ));
        // A number no name is configured for: a refusal, not an outage.
        assert!(matches!(
            classify_hresult("0xC0002A10", &names),
            Err(ConnectorError::Permanent(_))
        ));
    }
}
