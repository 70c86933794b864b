//! `ethosce`: EthosCE on Drupal restws, HTTP Basic as a `restws...` service user. A user
//! is looked up by name first; a create is POST /user, POST /profile2 (names and the work
//! address), then the SAML authmap when GET /authmap.json?uid= shows none. Changes are
//! PUT /user/{uid} (status 0 to block, 1 to unblock; roles from the group mapping as
//! `{"id": rid}` objects) and the profile's own PUT. A new authname gets a new authmap by
//! POST /authmap (nothing documents changing one in place). Errors come as plain text
//! (`406 Not Acceptable: ...`); a duplicate name is Drupal's uncaught PDOException, a 500
//! saying "Duplicate entry", on which a create adopts the user that has the name.
//! Reconcile reads a user as GET /user.json?name=, its profile (GET /profile2.json?user=)
//! and its authmap (GET /authmap.json?uid=), and lists users page by page (?page=N).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::attrs::{text, FieldChange};
use super::read::TargetUser;
use super::target::{Created, Target, User};
use super::{transport, BlockingClient, ConnectorError};
use crate::secret::Secret;

/// Default mapping: EthosCE field = SCIM path. `name` is the Drupal user name (the
/// principal); `authname` is the SAML name in the authmap; `location_*` fill
/// field_profile_location.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("name", "userName"),
    ("mail", "emails.value"),
    ("authname", "userName"),
    ("field_first_name", "name.givenName"),
    ("field_middle_name", "name.middleName"),
    ("field_last_name", "name.familyName"),
    (
        "location_street",
        "addresses[type eq \"work\"].streetAddress",
    ),
    ("location_city", "addresses[type eq \"work\"].locality"),
    ("location_province", "addresses[type eq \"work\"].region"),
    (
        "location_postal_code",
        "addresses[type eq \"work\"].postalCode",
    ),
    ("location_country", "addresses[type eq \"work\"].country"),
];

const USER_FIELDS: &[&str] = &["name", "mail"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// The authentication module of the authmap.
    pub module: String,
    /// The profile2 type.
    pub profile_type: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            module: "simplesamlphp_auth".into(),
            profile_type: "profile".into(),
        }
    }
}

pub struct EthosCe {
    base: String,
    username: String,
    password: Secret,
    opts: Options,
    client: BlockingClient,
}

/// A role id as Drupal takes it: a number when it is one.
fn role_id(r: &str) -> Value {
    r.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| json!(r))
}

fn is_profile_field(f: &str) -> bool {
    f.starts_with("field_") || f.starts_with("location_")
}

impl EthosCe {
    pub fn new(
        url: &str,
        username: String,
        password: Secret,
        opts: Options,
        timeout: Duration,
    ) -> EthosCe {
        EthosCe {
            base: url.trim_end_matches('/').to_string(),
            username,
            password,
            opts,
            client: BlockingClient::new(timeout),
        }
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ConnectorError> {
        let mut req = self
            .client
            .get()?
            .request(method.clone(), format!("{}/{path}", self.base))
            .basic_auth(&self.username, Some(self.password.expose()))
            .header("Accept", "application/json");
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().map_err(transport)?;
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().unwrap_or_default();
        if status.is_success() {
            return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
        // restws answers plain text: "406 Not Acceptable: Unknown data properties: x."
        let message = format!("{method} /{path}: {}", text.trim());
        // Drupal's unique key on the user name (or authname) surfaces as an uncaught
        // PDOException, a 500 that a retry cannot get past: MySQL's error 1062.
        if status.is_server_error() && mysql_error(&text) == Some(DUPLICATE_ENTRY) {
            return Err(ConnectorError::Conflict(message));
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ConnectorError::NotFound(message));
        }
        Err(match super::classify_status(status, &headers, &text) {
            ConnectorError::Retryable { retry_after, .. } => ConnectorError::Retryable {
                message,
                retry_after,
            },
            _ => ConnectorError::Permanent(message),
        })
    }

    fn profile_body(
        &self,
        uid: &str,
        fields: &std::collections::BTreeMap<String, Value>,
        full: bool,
    ) -> Value {
        let mut body = Map::new();
        if full {
            body.insert("user".into(), role_id(uid));
            body.insert("label".into(), json!("Profile"));
            body.insert("type".into(), json!(self.opts.profile_type));
        }
        let mut location = Map::new();
        for (k, v) in fields {
            if let Some(part) = k.strip_prefix("location_") {
                location.insert(part.to_string(), json!(text(v)));
            } else if k.starts_with("field_") {
                body.insert(k.clone(), json!(text(v)));
            }
        }
        if !location.is_empty() {
            body.insert("field_profile_location".into(), Value::Object(location));
        }
        Value::Object(body)
    }

    /// The user's profile id, if it has one.
    fn profile_of(&self, uid: &str) -> Result<Option<String>, ConnectorError> {
        let list = self.send(
            reqwest::Method::GET,
            &format!("profile2.json?user={uid}"),
            None,
        )?;
        Ok(list["list"]
            .as_array()
            .and_then(|l| l.first())
            .and_then(|p| p.get("pid").or_else(|| p.get("id")))
            .map(text))
    }

    /// The first item of a restws list query, if any.
    fn first(&self, path: &str) -> Result<Option<Value>, ConnectorError> {
        let list = self.send(reqwest::Method::GET, path, None)?;
        Ok(list["list"].as_array().and_then(|l| l.first()).cloned())
    }

    /// Makes sure the SAML name `authname`, and no other of this module, signs in to `uid`.
    ///
    /// An authmap row keeps signing its name in to its account until it is removed, and
    /// renaming the Drupal user leaves it: so the rows of this module with another name go
    /// first (a failure after that leaves the user without SAML sign-in, never with the old
    /// name still reaching it). A name that already signs in to another account is not
    /// taken from it nor shared: the job stops with a conflict that says so.
    fn ensure_authmap(&self, uid: &str, authname: &str) -> Result<(), ConnectorError> {
        let mine = self.send(
            reqwest::Method::GET,
            &format!("authmap.json?uid={uid}"),
            None,
        )?;
        let mut has = false;
        for row in mine["list"].as_array().into_iter().flatten() {
            if row["module"] != json!(self.opts.module) {
                continue;
            }
            if row["authname"].as_str() == Some(authname) {
                has = true;
                continue;
            }
            let aid = row.get("aid").map(text).ok_or_else(|| {
                ConnectorError::retry(format!("GET /authmap.json?uid={uid}: a row without aid"))
            })?;
            match self.send(reqwest::Method::DELETE, &format!("authmap/{aid}"), None) {
                // Gone already (a retry of this very step): what was wanted.
                Ok(_) | Err(ConnectorError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if has {
            return Ok(());
        }
        // authname is unique: Drupal refuses a name another account holds (MySQL's 1062).
        let made = self.send(
            reqwest::Method::POST,
            "authmap",
            Some(&json!({"uid": role_id(uid), "authname": authname, "module": self.opts.module})),
        );
        match made {
            Ok(_) => Ok(()),
            Err(ConnectorError::Conflict(_)) => Err(ConnectorError::Conflict(format!(
                "the SAML name '{authname}' already signs in to another EthosCE account; it was not mapped to user {uid}, so that no two people share an account"
            ))),
            Err(e) => Err(e),
        }
    }
}

/// MySQL's error for a row a unique key refuses.
const DUPLICATE_ENTRY: u32 = 1062;

/// The MySQL error number in a PDOException Drupal let through ("SQLSTATE[23000]:
/// Integrity constraint violation: 1062 Duplicate entry ..."), if the answer is one.
fn mysql_error(text: &str) -> Option<u32> {
    let (_, rest) = text.split_once("SQLSTATE[")?;
    let (_, rest) = rest.split_once("]:")?;
    let (_, rest) = rest.split_once(':')?;
    rest.split_whitespace().next()?.parse().ok()
}

impl Target for EthosCe {
    fn kind(&self) -> &'static str {
        "ethosce"
    }

    fn principal_field(&self) -> &str {
        "name"
    }

    fn supports_roles(&self) -> bool {
        true
    }

    fn lookup(&self, principal: &str) -> Result<Option<String>, ConnectorError> {
        let q = url::form_urlencoded::byte_serialize(principal.as_bytes()).collect::<String>();
        let list = self.send(reqwest::Method::GET, &format!("user.json?name={q}"), None)?;
        Ok(list["list"]
            .as_array()
            .and_then(|l| l.first())
            .and_then(|u| u.get("uid"))
            .map(text))
    }

    fn unreadable(&self) -> Option<String> {
        None
    }

    fn read(&self, principal: &str, fields: &[&str]) -> Result<Option<TargetUser>, ConnectorError> {
        let q = url::form_urlencoded::byte_serialize(principal.as_bytes()).collect::<String>();
        let Some(user) = self.first(&format!("user.json?name={q}"))? else {
            return Ok(None);
        };
        let uid = user.get("uid").map(text).unwrap_or_default();
        let profile = if fields.iter().any(|f| is_profile_field(f)) {
            self.first(&format!("profile2.json?user={uid}"))?
        } else {
            None
        };
        let authname = if fields.contains(&"authname") {
            let list = self.send(
                reqwest::Method::GET,
                &format!("authmap.json?uid={uid}"),
                None,
            )?;
            // A new authname is a row of its own: the newest of this module counts.
            list["list"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a["module"] == json!(self.opts.module))
                .filter_map(|a| a.get("authname").cloned())
                .last()
        } else {
            None
        };
        let at = |v: Option<&Value>| v.cloned().unwrap_or(Value::Null);
        let fields = fields
            .iter()
            .map(|f| {
                let v = match *f {
                    "authname" => authname.clone().unwrap_or(Value::Null),
                    f if USER_FIELDS.contains(&f) => at(user.get(f)),
                    f => match f.strip_prefix("location_") {
                        Some(part) => at(profile
                            .as_ref()
                            .and_then(|p| p.get("field_profile_location"))
                            .and_then(|l| l.get(part))),
                        None => at(profile.as_ref().and_then(|p| p.get(f))),
                    },
                };
                (f.to_string(), v)
            })
            .collect();
        let active = user.get("status").map(|s| text(s) == "1");
        Ok(Some(TargetUser {
            target_id: uid,
            fields,
            active,
        }))
    }

    /// Every user name, page by page (restws gives 100 a page, and `next` while more).
    fn principals(&self) -> Result<Option<Vec<String>>, ConnectorError> {
        let mut out = Vec::new();
        for page in 0..100_000 {
            let list = self.send(
                reqwest::Method::GET,
                &format!("user.json?page={page}"),
                None,
            )?;
            let items = list["list"].as_array().cloned().unwrap_or_default();
            out.extend(
                items
                    .iter()
                    .filter_map(|u| u.get("name").and_then(Value::as_str))
                    .map(str::to_string),
            );
            if items.is_empty() || list.get("next").is_none() {
                break;
            }
        }
        Ok(Some(out))
    }

    fn create(&self, user: &User<'_>) -> Result<Created, ConnectorError> {
        let roles: Vec<Value> = user
            .roles
            .iter()
            .map(|r| json!({"id": role_id(r)}))
            .collect();
        let body = json!({
            "name": user.principal,
            "mail": user.field("mail").unwrap_or_default(),
            "status": if user.active { 1 } else { 0 },
            "roles": roles,
        });
        let made = match self.send(reqwest::Method::POST, "user", Some(&body)) {
            Ok(made) => made,
            // The name was taken between the lookup and the create (or by a create whose
            // answer was lost): adopt the user that has it.
            Err(ConnectorError::Conflict(m)) => {
                let uid = self.lookup(&user.principal)?.ok_or_else(|| {
                    ConnectorError::Permanent(format!("{m} (and no user has that name)"))
                })?;
                return Ok(Created {
                    target_id: uid,
                    adopted: true,
                });
            }
            Err(e) => return Err(e),
        };
        let uid = made
            .get("id")
            .map(text)
            .ok_or_else(|| ConnectorError::retry("POST /user: no id in the reply"))?;
        if user.fields.keys().any(|k| is_profile_field(k)) {
            self.send(
                reqwest::Method::POST,
                "profile2",
                Some(&self.profile_body(&uid, &user.fields, true)),
            )?;
        }
        if let Some(authname) = user.field("authname") {
            self.ensure_authmap(&uid, &authname)?;
        }
        Ok(Created {
            target_id: uid,
            adopted: false,
        })
    }

    fn update(
        &self,
        target_id: &str,
        user: &User<'_>,
        changes: &[FieldChange],
        _old_principal: Option<&str>,
    ) -> Result<(), ConnectorError> {
        let mut body = Map::new();
        for c in changes
            .iter()
            .filter(|c| USER_FIELDS.contains(&c.field.as_str()))
        {
            body.insert(
                c.field.clone(),
                json!(c.new.as_ref().map(text).unwrap_or_default()),
            );
        }
        if !body.is_empty() {
            self.send(
                reqwest::Method::PUT,
                &format!("user/{target_id}"),
                Some(&Value::Object(body)),
            )?;
        }
        if changes.iter().any(|c| is_profile_field(&c.field)) {
            match self.profile_of(target_id)? {
                Some(pid) => {
                    let mut fields = user.fields.clone();
                    // A removed profile field is cleared.
                    for c in changes
                        .iter()
                        .filter(|c| c.new.is_none() && is_profile_field(&c.field))
                    {
                        fields.insert(c.field.clone(), json!(""));
                    }
                    self.send(
                        reqwest::Method::PUT,
                        &format!("profile2/{pid}"),
                        Some(&self.profile_body(target_id, &fields, false)),
                    )?;
                }
                None => {
                    self.send(
                        reqwest::Method::POST,
                        "profile2",
                        Some(&self.profile_body(target_id, &user.fields, true)),
                    )?;
                }
            }
        }
        if changes.iter().any(|c| c.field == "authname") {
            if let Some(authname) = user.field("authname") {
                self.ensure_authmap(target_id, &authname)?;
            }
        }
        Ok(())
    }

    fn set_active(
        &self,
        target_id: &str,
        _user: &User<'_>,
        active: bool,
    ) -> Result<(), ConnectorError> {
        self.send(
            reqwest::Method::PUT,
            &format!("user/{target_id}"),
            Some(&json!({"status": if active { 1 } else { 0 }})),
        )
        .map(|_| ())
    }

    fn delete(&self, target_id: &str, user: &User<'_>) -> Result<(), ConnectorError> {
        match self.send(reqwest::Method::DELETE, &format!("user/{target_id}"), None) {
            Ok(_) => Ok(()),
            // 404 is also what a wrong base URL answers: done only if the site, asked by
            // name, confirms that no account with this uid is there.
            Err(ConnectorError::NotFound(m)) => match self.lookup(&user.principal)? {
                Some(uid) if uid == target_id => Err(ConnectorError::Permanent(format!(
                    "{m}, yet user {uid} is still there"
                ))),
                _ => Ok(()),
            },
            Err(e) => Err(e),
        }
    }

    fn change_roles(
        &self,
        target_id: &str,
        _user: &User<'_>,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ConnectorError> {
        let current = self.send(
            reqwest::Method::GET,
            &format!("user/{target_id}.json"),
            None,
        )?;
        let mut roles: Vec<String> = current["roles"]
            .as_array()
            .map(|a| a.iter().map(|r| text(r.get("id").unwrap_or(r))).collect())
            .unwrap_or_default();
        roles.retain(|r| !remove.contains(r));
        for r in add {
            if !roles.contains(r) {
                roles.push(r.clone());
            }
        }
        let roles: Vec<Value> = roles.iter().map(|r| json!({"id": role_id(r)})).collect();
        self.send(
            reqwest::Method::PUT,
            &format!("user/{target_id}"),
            Some(&json!({"roles": roles})),
        )
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mysql_error_number_is_read_from_drupals_pdoexception() {
        let text = "PDOException: SQLSTATE[23000]: Integrity constraint violation: 1062 Duplicate entry 'a' for key 'authname': INSERT INTO {authmap}";
        assert_eq!(mysql_error(text), Some(DUPLICATE_ENTRY));
        assert_eq!(
            mysql_error("SQLSTATE[HY000]: General error: 2006 MySQL server has gone away"),
            Some(2006)
        );
        assert_eq!(
            mysql_error("500 Internal Server Error: Duplicate entry"),
            None
        );
        assert_eq!(mysql_error("uid 1062 was not found"), None);
    }
}
