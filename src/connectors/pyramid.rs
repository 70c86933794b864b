//! `pyramid`: Pyramid Analytics API 2.0 (JSON, POST only, the `auth` token in the body).
//! authenticateUser gives a token, cached and renewed when refused; getUserBySamlPrincipalName
//! finds a user before a create; createSamlUser (`newSamlUser` with samlPrincipleName) or
//! createUserSaml (`createUserSaml` with userName and principalName) with the SCIM id as the
//! Pyramid id, so a repeated create is recognised; updateUsersSaml with UpdateUserSamlObject's
//! own `principalName` for changes; toggleEnableUser for the enabled state; updateUserRoles
//! for groups; deleteUser.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::attrs::{FieldChange, Op};
use super::read::TargetUser;
use super::target::{Created, Target, User};
use super::{classify_status, transport, BlockingClient, ConnectorError};
use crate::secret::Secret;

/// Default mapping: Pyramid field = SCIM path; `principalName` is the SAML principal.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("principalName", "userName"),
    ("firstName", "name.givenName"),
    ("lastName", "name.familyName"),
    ("email", "emails.value"),
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// `createSamlUser` (with `newSamlUser`) or `createUserSaml` (with `createUserSaml`).
    pub create_method: String,
    /// `updateUsersSaml` (with `updateUserSamlArr`) or `updateSamlUsers` (with `updateUser`).
    pub update_method: String,
    /// AdminType for new users: 0 none, 1, 2.
    pub admin_type: i64,
    /// ClientLicenseType for new users: 0, 100 viewer, 200 professional.
    pub client_license_type: i64,
    /// A group (displayName) that gives its members this ClientLicenseType.
    pub group_licenses: BTreeMap<String, i64>,
    /// A group (displayName) that gives its members this AdminType.
    pub group_admin_types: BTreeMap<String, i64>,
    /// What getUserStatusById answers for an enabled user, and for a disabled one.
    /// Pyramid does not publish these numbers: the defaults (1, 2) are this project's
    /// assumption; reconcile compares the enabled state only when the answer is one of them.
    pub status_enabled: i64,
    pub status_disabled: i64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            create_method: "createSamlUser".into(),
            update_method: "updateUsersSaml".into(),
            admin_type: 0,
            client_license_type: 100,
            group_licenses: BTreeMap::new(),
            group_admin_types: BTreeMap::new(),
            status_enabled: 1,
            status_disabled: 2,
        }
    }
}

impl Options {
    pub fn check(&self) -> Result<(), String> {
        if !["createSamlUser", "createUserSaml"].contains(&self.create_method.as_str()) {
            return Err("create_method is createSamlUser or createUserSaml".into());
        }
        if !["updateUsersSaml", "updateSamlUsers"].contains(&self.update_method.as_str()) {
            return Err("update_method is updateUsersSaml or updateSamlUsers".into());
        }
        if self.status_enabled == self.status_disabled {
            return Err("status_enabled and status_disabled are two different numbers".into());
        }
        Ok(())
    }
}

pub struct Pyramid {
    base: String,
    username: String,
    password: Secret,
    opts: Options,
    token: Mutex<Option<String>>,
    client: BlockingClient,
}

impl Pyramid {
    pub fn new(
        url: &str,
        username: String,
        password: Secret,
        opts: Options,
        timeout: Duration,
    ) -> Pyramid {
        Pyramid {
            base: url.trim_end_matches('/').to_string(),
            username,
            password,
            opts,
            token: Mutex::new(None),
            client: BlockingClient::new(timeout),
        }
    }

    fn post(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<(reqwest::StatusCode, String), ConnectorError> {
        let res = self
            .client
            .get()?
            .post(format!("{}/{path}", self.base))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .map_err(transport)?;
        let status = res.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let headers = res.headers().clone();
            let text = res.text().unwrap_or_default();
            return Err(classify_status(status, &headers, &text));
        }
        Ok((status, res.text().unwrap_or_default()))
    }

    fn authenticate(&self) -> Result<String, ConnectorError> {
        let body = json!({"data": {"userName": self.username, "password": self.password.expose()}});
        let (status, text) = self.post("auth/authenticateUser", &body)?;
        let token = text.trim().trim_matches('"').to_string();
        if !status.is_success() || token.is_empty() {
            return Err(ConnectorError::Permanent(format!(
                "authenticateUser refused the service account ({status})"
            )));
        }
        Ok(token)
    }

    /// Calls a method with the cached token; a refused token is renewed once.
    fn call(&self, method: &str, mut body: Value) -> Result<Value, ConnectorError> {
        for attempt in 0..2 {
            let token = {
                // Held while authenticating, so workers starting together share one token.
                let mut cached = self.token.lock().unwrap_or_else(|p| p.into_inner());
                match cached.as_ref() {
                    Some(t) => t.clone(),
                    None => {
                        let t = self.authenticate()?;
                        *cached = Some(t.clone());
                        t
                    }
                }
            };
            body["auth"] = Value::String(token);
            let (status, text) = self.post(&format!("access/{method}"), &body)?;
            if status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN
            {
                *self.token.lock().unwrap_or_else(|p| p.into_inner()) = None;
                if attempt == 0 {
                    continue;
                }
                return Err(ConnectorError::Permanent(format!(
                    "{method}: the token was refused twice"
                )));
            }
            let v: Value = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).map_err(|_| {
                    ConnectorError::Permanent(format!(
                        "{method}: {status}: not JSON: {}",
                        text.chars().take(200).collect::<String>()
                    ))
                })?
            };
            if !status.is_success() {
                return Err(ConnectorError::Permanent(format!(
                    "{method}: {status}: {v}"
                )));
            }
            // API2 wraps results in `data`; a ModifiedItemsResult says success or not.
            let data = match v.get("data") {
                Some(d) => d.clone(),
                None => v,
            };
            if data.get("success") == Some(&Value::Bool(false)) {
                let msg = data["errorMessage"]
                    .as_str()
                    .unwrap_or("failed")
                    .to_string();
                // A ModifiedItemsResult carries no code, only its message: it is read here,
                // once, into the kind of refusal, and nowhere else.
                let lower = msg.to_lowercase();
                return Err(if lower.contains("exist") || lower.contains("duplicate") {
                    ConnectorError::Conflict(format!("{method}: {msg}"))
                } else if lower.contains("not found") {
                    ConnectorError::NotFound(format!("{method}: {msg}"))
                } else {
                    ConnectorError::Permanent(format!("{method}: {msg}"))
                });
            }
            return Ok(data);
        }
        Err(ConnectorError::retry(format!("{method}: no answer")))
    }

    fn license(&self, user: &User<'_>) -> (i64, i64) {
        let best = |m: &BTreeMap<String, i64>, default: i64| {
            user.groups
                .iter()
                .filter_map(|g| m.get(g).copied())
                .max()
                .unwrap_or(default)
        };
        (
            best(&self.opts.group_admin_types, self.opts.admin_type),
            best(&self.opts.group_licenses, self.opts.client_license_type),
        )
    }

    fn update_list(&self, items: Vec<Value>) -> Result<(), ConnectorError> {
        let key = if self.opts.update_method == "updateSamlUsers" {
            "updateUser"
        } else {
            "updateUserSamlArr"
        };
        self.call(&self.opts.update_method, json!({ key: items }))
            .map(|_| ())
    }
}

impl Target for Pyramid {
    fn kind(&self) -> &'static str {
        "pyramid"
    }

    fn principal_field(&self) -> &str {
        "principalName"
    }

    fn supports_roles(&self) -> bool {
        true
    }

    fn lookup(&self, principal: &str) -> Result<Option<String>, ConnectorError> {
        let found = self.call(
            "getUserBySamlPrincipalName",
            json!({"PrincipalName": principal}),
        );
        match found {
            Ok(v) => Ok(v.get("id").and_then(Value::as_str).map(str::to_string)),
            Err(ConnectorError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn unreadable(&self) -> Option<String> {
        None
    }

    /// getUserBySamlPrincipalName's user object: its fields by name; whether it is enabled,
    /// from getUserStatusById (compared only when the number is a known one). API2 has no
    /// documented call that lists users.
    fn read(&self, principal: &str, fields: &[&str]) -> Result<Option<TargetUser>, ConnectorError> {
        let found = match self.call(
            "getUserBySamlPrincipalName",
            json!({"PrincipalName": principal}),
        ) {
            Ok(v) => v,
            Err(ConnectorError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(id) = found.get("id").and_then(Value::as_str) else {
            return Ok(None);
        };
        let fields = fields
            .iter()
            .map(|f| {
                let v = match *f {
                    "principalName" => found
                        .get("principalName")
                        .or_else(|| found.get("samlPrincipleName")),
                    f => found.get(f),
                };
                (f.to_string(), v.cloned().unwrap_or(Value::Null))
            })
            .collect();
        // The view object has no enabled state; getUserStatusById has it, as a number.
        let status = self.call("getUserStatusById", json!({"userId": id}))?;
        let active = match status.as_i64() {
            Some(s) if s == self.opts.status_enabled => Some(true),
            Some(s) if s == self.opts.status_disabled => Some(false),
            _ => None,
        };
        Ok(Some(TargetUser {
            target_id: id.to_string(),
            fields,
            active,
        }))
    }

    fn create(&self, user: &User<'_>) -> Result<Created, ConnectorError> {
        let (admin, license) = self.license(user);
        let modern = self.opts.create_method == "createUserSaml";
        let mut u = Map::new();
        u.insert("id".into(), json!(user.scim_id));
        // The seed's newSamlUser names the principal samlPrincipleName; CreateUserSamlObject
        // has principalName and a required userName.
        if modern {
            u.insert("userName".into(), json!(user.principal));
            u.insert("principalName".into(), json!(user.principal));
        } else {
            u.insert("samlPrincipleName".into(), json!(user.principal));
        }
        for (k, v) in &user.fields {
            if k != "principalName" {
                u.insert(k.clone(), v.clone());
            }
        }
        u.insert("adminType".into(), json!(admin));
        u.insert("clientLicenseType".into(), json!(license));
        if modern && !user.roles.is_empty() {
            u.insert("roleIds".into(), json!(user.roles));
        }
        let key = if modern {
            "createUserSaml"
        } else {
            "newSamlUser"
        };
        let data = self.call(&self.opts.create_method, json!({ key: Value::Object(u) }))?;
        let id = data["modifiedList"][0]["id"]
            .as_str()
            .unwrap_or(user.scim_id)
            .to_string();
        if !user.active {
            self.set_active(&id, user, false)?;
        }
        if !modern && !user.roles.is_empty() {
            self.change_roles(&id, user, &user.roles, &[])?;
        }
        Ok(Created {
            target_id: id,
            adopted: false,
        })
    }

    fn update(
        &self,
        target_id: &str,
        user: &User<'_>,
        changes: &[FieldChange],
        old_principal: Option<&str>,
    ) -> Result<(), ConnectorError> {
        let mut u = Map::new();
        u.insert("id".into(), json!(target_id));
        for c in changes {
            let value = match c.op {
                Op::Delete => json!(""),
                _ => c.new.clone().unwrap_or(Value::Null),
            };
            u.insert(c.field.clone(), value);
        }
        // UpdateUserSamlObject's principal is principalName (samlPrincipleName is dropped).
        if old_principal.is_some() {
            u.insert("principalName".into(), json!(user.principal));
            if self.opts.create_method == "createUserSaml" {
                u.insert("userName".into(), json!(user.principal));
            }
        }
        self.update_list(vec![Value::Object(u)])
    }

    fn set_active(
        &self,
        target_id: &str,
        _user: &User<'_>,
        active: bool,
    ) -> Result<(), ConnectorError> {
        self.call(
            "toggleEnableUser",
            json!({"toggleUserApiData": {"userId": target_id, "isEnable": active}}),
        )
        .map(|_| ())
    }

    fn delete(&self, target_id: &str, _user: &User<'_>) -> Result<(), ConnectorError> {
        self.call("deleteUser", json!({"userId": target_id}))
            .map(|_| ())
    }

    fn change_roles(
        &self,
        target_id: &str,
        _user: &User<'_>,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ConnectorError> {
        self.call(
            "updateUserRoles",
            json!({"userRolesData": {"userId": target_id, "rolesToAdd": add, "rolesToRemove": remove}}),
        )
        .map(|_| ())
    }
}
