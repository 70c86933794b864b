//! `itron`: Itron Analytics Customer Portal, UpdateSSOUser (HTTP Basic as the
//! application-level user): an upsert by username with email, names and the account ID
//! list. The portal has no delete: deactivation and delete send the user with no accounts,
//! so it stops receiving alerts for them.
//!
//! UpdateSSOUser overwrites the account list it is sent, and the utility's own site gives
//! accounts too. So by default the bridge sends the list only when the identity provider
//! gave the user account IDs, and leaves the portal's list alone otherwise; with
//! `manage_accounts = true` the identity provider owns the list, and a user without
//! account IDs is sent an empty one. Deactivation, delete and the username a rename gives
//! up always send an empty list: access is removed either way. The JSON names are not public, so they are the
//! mapping's field names and can be changed in configuration.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::attrs::FieldChange;
use super::target::{Created, Target, User};
use super::{transport, BlockingClient, ConnectorError};
use crate::secret::Secret;

/// The extension schema that carries a user's portal account IDs.
pub const ACCOUNTS_SCHEMA: &str = "urn:scim-bridge:schemas:extension:itron:2.0:User";

/// Default mapping: JSON field = SCIM path.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("username", "userName"),
    ("email", "emails.value"),
    ("firstName", "name.givenName"),
    ("lastName", "name.familyName"),
    (
        "accountIds",
        "urn:scim-bridge:schemas:extension:itron:2.0:User:accountIds",
    ),
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Which mapped field is the account ID list (emptied on deactivation and delete).
    pub accounts_field: String,
    /// Which mapped field is the username (the upsert key).
    pub username_field: String,
    /// Which mapped field is the email (unique among portal users; cleared from a
    /// username a rename gives up).
    pub email_field: String,
    /// Whether the identity provider owns each user's account list: then a user without
    /// account IDs is sent an empty list, removing what the portal gave. Off by default:
    /// such a user is sent without the list, and keeps the portal's accounts.
    pub manage_accounts: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            accounts_field: "accountIds".into(),
            username_field: "username".into(),
            email_field: "email".into(),
            manage_accounts: false,
        }
    }
}

pub struct Itron {
    url: String,
    username: String,
    password: Secret,
    opts: Options,
    client: BlockingClient,
}

impl Itron {
    pub fn new(
        url: &str,
        username: String,
        password: Secret,
        opts: Options,
        timeout: Duration,
    ) -> Itron {
        Itron {
            url: url.to_string(),
            username,
            password,
            opts,
            client: BlockingClient::new(timeout),
        }
    }

    /// Sends the user whole (the portal overwrites what differs), with or without accounts.
    fn upsert(
        &self,
        user: &User<'_>,
        principal: &str,
        with_accounts: bool,
    ) -> Result<(), ConnectorError> {
        let mut body = Map::new();
        for (k, v) in &user.fields {
            body.insert(k.clone(), v.clone());
        }
        self.send(body, principal, with_accounts)
    }

    /// A username the user no longer has: it keeps no accounts and no email, so the email
    /// is free for the new username (emails are unique among portal users).
    fn give_up(&self, user: &User<'_>, old: &str) -> Result<(), ConnectorError> {
        let mut body = Map::new();
        for (k, v) in &user.fields {
            body.insert(k.clone(), v.clone());
        }
        body.insert(self.opts.email_field.clone(), Value::Null);
        self.send(body, old, false)
    }

    fn send(
        &self,
        mut body: Map<String, Value>,
        principal: &str,
        with_accounts: bool,
    ) -> Result<(), ConnectorError> {
        body.insert(self.opts.username_field.clone(), json!(principal));
        let given = match body.remove(&self.opts.accounts_field) {
            Some(Value::Array(a)) if !a.is_empty() => Some(Value::Array(a)),
            Some(Value::String(s)) if !s.is_empty() => Some(json!([s])),
            _ => None,
        };
        let accounts = match given {
            // Access removed: the user keeps no account, whoever gave it.
            _ if !with_accounts => Some(json!([])),
            Some(list) => Some(list),
            None if self.opts.manage_accounts => Some(json!([])),
            // The identity provider gave none: the portal's own stay as they are.
            None => None,
        };
        if let Some(accounts) = accounts {
            body.insert(self.opts.accounts_field.clone(), accounts);
        }
        let res = self
            .client
            .get()?
            .post(&self.url)
            .basic_auth(&self.username, Some(self.password.expose()))
            .header("Content-Type", "application/json")
            .body(Value::Object(body).to_string())
            .send()
            .map_err(transport)?;
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        let headers = res.headers().clone();
        let text = res.text().unwrap_or_default();
        let lower = text.to_lowercase();
        if status.is_client_error()
            && lower.contains("email")
            && (lower.contains("use") || lower.contains("unique") || lower.contains("duplicate"))
        {
            return Err(ConnectorError::Conflict(format!(
                "UpdateSSOUser: {}",
                text.trim()
            )));
        }
        Err(super::classify_status(status, &headers, &text))
    }
}

impl Target for Itron {
    fn kind(&self) -> &'static str {
        "itron"
    }

    fn unreadable(&self) -> Option<String> {
        Some("Itron's Customer Portal cannot be read back: UpdateSSOUser is its only call, and it answers nothing about the user".into())
    }

    fn principal_field(&self) -> &str {
        &self.opts.username_field
    }

    /// UpdateSSOUser is an upsert: repeating it is safe, so no lookup is needed.
    fn lookup(&self, _principal: &str) -> Result<Option<String>, ConnectorError> {
        Ok(None)
    }

    fn create(&self, user: &User<'_>) -> Result<Created, ConnectorError> {
        self.upsert(user, &user.principal, user.active)?;
        Ok(Created {
            target_id: user.principal.clone(),
            adopted: false,
        })
    }

    fn update(
        &self,
        _target_id: &str,
        user: &User<'_>,
        _changes: &[FieldChange],
        old_principal: Option<&str>,
    ) -> Result<(), ConnectorError> {
        // An upsert by username cannot rename: the old username first gives up its
        // accounts and its email (which must stay unique), then the new one is upserted.
        if let Some(old) = old_principal {
            self.give_up(user, old)?;
        }
        self.upsert(user, &user.principal, user.active)
    }

    fn set_active(
        &self,
        _target_id: &str,
        user: &User<'_>,
        active: bool,
    ) -> Result<(), ConnectorError> {
        self.upsert(user, &user.principal, active)
    }

    fn delete(&self, _target_id: &str, user: &User<'_>) -> Result<(), ConnectorError> {
        self.upsert(user, &user.principal, false)
    }
}
