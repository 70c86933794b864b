//! `scim`: outbound SCIM 2.0 (RFC 7644) to any service provider: another application's
//! SCIM API, or another scim-bridge. The bridge is the client here. Users go through the
//! shared [`Adapter`](super::target::Adapter) (mapping, scope, the brake, dry run,
//! reconcile); groups are mirrored as groups, their members translated to the target's
//! ids through the mapping table.
//!
//! What it reads of the target's ServiceProviderConfig (once, on first use): whether it
//! takes PATCH (changed attributes only; otherwise the whole resource by PUT), whether it
//! offers ETags (then every change is sent with If-Match of the version just read, and a
//! 412 is tried again), whether it filters (a lookup by userName before a create;
//! otherwise a create that answers 409 is adopted by reading the list).
//!
//! Answers: 2xx done; 409 a conflict (a create adopts the user the target holds); 404 not
//! found (a delete is done); 412, 429 (with Retry-After) and 5xx retried; 401 renews an
//! OAuth token once; any other 4xx is final, with the target's `detail` and `scimType`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::attrs::{FieldChange, Op};
use super::read::TargetUser;
use super::target::{member_delta, member_target_ids, Created, Target, User};
use super::{retry_after, transport, BlockingClient, Connector, ConnectorError, Delivery, Outcome};
use crate::model::Event;
use crate::secret::Secret;

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Default mapping: the target's attribute path = this bridge's SCIM path.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("userName", "userName"),
    ("name.givenName", "name.givenName"),
    ("name.familyName", "name.familyName"),
    ("displayName", "displayName"),
    ("title", "title"),
    ("emails.value", "emails.value"),
];

/// Multi-valued attributes a mapped `attr.sub` field becomes a primary work entry of.
const MULTI: &[&str] = &["emails", "phoneNumbers", "ims", "photos", "addresses"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// OAuth 2.0 client credentials: the token endpoint (absolute, or resolved against
    /// `url`); the connector's `username` and `password` are the client id and secret.
    /// Without it, `secret` is a static bearer token (or no credential at all).
    pub token_url: Option<String>,
    pub scope: Option<String>,
    /// Users per page when reconcile lists the target's users.
    pub page_size: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            token_url: None,
            scope: None,
            page_size: 100,
        }
    }
}

impl Options {
    pub fn check(&self) -> Result<(), String> {
        if !(1..=1000).contains(&self.page_size) {
            return Err("page_size is from 1 to 1000".into());
        }
        Ok(())
    }
}

/// How the bridge proves itself to the target.
enum Auth {
    None,
    Bearer(Secret),
    ClientCredentials {
        token_url: String,
        client_id: String,
        secret: Secret,
        scope: Option<String>,
        token: Mutex<Option<(Secret, Option<Instant>)>>,
    },
}

/// What the target's ServiceProviderConfig says it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub patch: bool,
    pub etag: bool,
    pub filter: bool,
}

/// One answer: its status, ETag (header, else meta.version) and JSON body.
struct Answer {
    etag: Option<String>,
    body: Value,
}

/// The target: its base URL, how to sign in, and what it can do.
pub struct ScimTarget {
    base: String,
    auth: Auth,
    opts: Options,
    caps: Mutex<Option<Capabilities>>,
    client: BlockingClient,
}

fn scim_error(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &str,
) -> ConnectorError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let detail = v["detail"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| body.chars().take(300).collect());
    let message = match v["scimType"].as_str() {
        Some(t) => format!("{status} {t}: {detail}"),
        None => format!("{status}: {detail}"),
    };
    match status.as_u16() {
        404 => ConnectorError::NotFound(message),
        409 => ConnectorError::Conflict(message),
        // The resource changed since it was read: read it again and retry.
        412 => ConnectorError::Retryable {
            message,
            retry_after: None,
        },
        429 | 500..=599 => ConnectorError::Retryable {
            message,
            retry_after: retry_after(headers),
        },
        _ => ConnectorError::Permanent(message),
    }
}

/// The value at a target attribute path in a resource (a multi-valued attribute's
/// primary entry, else its first).
fn value_at(doc: &Value, path: &str) -> Value {
    if let Some((urn, attr)) = path.rsplit_once(':').filter(|(u, _)| u.starts_with("urn:")) {
        return doc[urn][attr].clone();
    }
    let mut cur = doc.clone();
    for part in path.split('.') {
        cur = match cur {
            Value::Array(items) => {
                let pick = items
                    .iter()
                    .find(|i| i["primary"] == true)
                    .or_else(|| items.first())
                    .cloned()
                    .unwrap_or(Value::Null);
                pick[part].clone()
            }
            other => other[part].clone(),
        };
    }
    if let Value::Array(items) = &cur {
        // A multi-valued attribute mapped whole: its primary value.
        if let Some(v) = items
            .iter()
            .find(|i| i["primary"] == true)
            .or(items.first())
        {
            return v.get("value").cloned().unwrap_or_else(|| v.clone());
        }
    }
    cur
}

/// Sets a target attribute path in a document being built.
fn set_at(doc: &mut Map<String, Value>, path: &str, value: Value) {
    if let Some((urn, attr)) = path.rsplit_once(':').filter(|(u, _)| u.starts_with("urn:")) {
        let ext = doc.entry(urn.to_string()).or_insert_with(|| json!({}));
        if let Some(o) = ext.as_object_mut() {
            o.insert(attr.to_string(), value);
        }
        if let Some(Value::Array(s)) = doc.get_mut("schemas") {
            if !s.iter().any(|x| x == urn) {
                s.push(json!(urn));
            }
        }
        return;
    }
    match path.split_once('.') {
        Some((multi, sub)) if MULTI.contains(&multi) => {
            doc.insert(
                multi.to_string(),
                json!([{ sub: value, "type": "work", "primary": true }]),
            );
        }
        Some((head, rest)) => {
            let inner = doc.entry(head.to_string()).or_insert_with(|| json!({}));
            if let Some(o) = inner.as_object_mut() {
                set_at(o, rest, value);
            }
        }
        None => {
            doc.insert(path.to_string(), value);
        }
    }
}

/// The PATCH path and value of a mapped field: a multi-valued attribute is replaced
/// whole, with its one primary entry.
fn patch_op(field: &str, value: Option<&Value>) -> Value {
    let (path, value) = match field.split_once('.') {
        Some((multi, sub)) if MULTI.contains(&multi) => (
            multi.to_string(),
            value.map(|v| json!([{ sub: v, "type": "work", "primary": true }])),
        ),
        _ => (field.to_string(), value.cloned()),
    };
    match value {
        Some(v) if !v.is_null() => json!({"op": "replace", "path": path, "value": v}),
        _ => json!({"op": "remove", "path": path}),
    }
}

impl ScimTarget {
    pub fn new(
        url: &str,
        username: Option<String>,
        password: Option<Secret>,
        secret: Option<Secret>,
        opts: Options,
        timeout: Duration,
    ) -> Result<ScimTarget, String> {
        let base = url.trim_end_matches('/').to_string();
        let auth = match (&opts.token_url, username, password, secret) {
            (Some(t), Some(id), Some(pw), _) => {
                let token_url = url::Url::parse(&format!("{base}/"))
                    .and_then(|b| b.join(t))
                    .map_err(|e| format!("token_url: {e}"))?
                    .to_string();
                Auth::ClientCredentials {
                    token_url,
                    client_id: id,
                    secret: pw,
                    scope: opts.scope.clone(),
                    token: Mutex::new(None),
                }
            }
            (Some(_), _, _, _) => {
                return Err("OAuth client credentials (options.token_url) need username (the client id) and password (the secret)".into())
            }
            (None, _, _, Some(s)) => Auth::Bearer(s),
            (None, _, _, None) => Auth::None,
        };
        Ok(ScimTarget {
            base,
            auth,
            opts,
            caps: Mutex::new(None),
            client: BlockingClient::new(timeout),
        })
    }

    fn token(&self, renew: bool) -> Result<Option<String>, ConnectorError> {
        match &self.auth {
            Auth::None => Ok(None),
            Auth::Bearer(s) => Ok(Some(s.expose().to_string())),
            Auth::ClientCredentials {
                token_url,
                client_id,
                secret,
                scope,
                token,
            } => {
                let mut held = token.lock().unwrap_or_else(|p| p.into_inner());
                if renew {
                    *held = None;
                }
                if let Some((t, until)) = held.as_ref() {
                    if until.is_none_or(|u| Instant::now() < u) {
                        return Ok(Some(t.expose().to_string()));
                    }
                }
                let mut form = vec![("grant_type", "client_credentials")];
                if let Some(s) = scope {
                    form.push(("scope", s.as_str()));
                }
                let res = self
                    .client
                    .get()?
                    .post(token_url)
                    .basic_auth(client_id, Some(secret.expose()))
                    .form(&form)
                    .send()
                    .map_err(transport)?;
                let status = res.status();
                let headers = res.headers().clone();
                let body = res.text().unwrap_or_default();
                if !status.is_success() {
                    return Err(match status.as_u16() {
                        429 | 500..=599 => scim_error(status, &headers, &body),
                        _ => ConnectorError::Permanent(format!(
                            "the token endpoint refused the client ({status})"
                        )),
                    });
                }
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let t = v["access_token"]
                    .as_str()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        ConnectorError::Permanent("the token endpoint gave no access_token".into())
                    })?
                    .to_string();
                let until = v["expires_in"]
                    .as_u64()
                    .map(|s| Instant::now() + Duration::from_secs(s.saturating_sub(30).max(1)));
                *held = Some((Secret::new(t.clone()), until));
                Ok(Some(t))
            }
        }
    }

    /// One request; a refused OAuth token is renewed once.
    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Answer, ConnectorError> {
        for attempt in 0..2 {
            let url = format!("{}{path}", self.base);
            let mut req = self
                .client
                .get()?
                .request(method.clone(), &url)
                .header("Accept", "application/scim+json, application/json");
            if let Some(t) = self.token(attempt == 1)? {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req
                    .header("Content-Type", "application/scim+json")
                    .body(b.to_string());
            }
            if let Some(e) = if_match {
                req = req.header("If-Match", e);
            }
            let res = req.send().map_err(transport)?;
            let status = res.status();
            let headers = res.headers().clone();
            let text = super::declared::read_limited(res, 4 << 20);
            if status == reqwest::StatusCode::UNAUTHORIZED
                && attempt == 0
                && matches!(self.auth, Auth::ClientCredentials { .. })
            {
                continue;
            }
            if !status.is_success() {
                return Err(scim_error(status, &headers, &text));
            }
            let body: Value = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).map_err(|_| {
                    ConnectorError::Permanent(format!(
                        "{method} {path}: the answer is not JSON: {}",
                        text.chars().take(200).collect::<String>()
                    ))
                })?
            };
            let etag = headers
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| body["meta"]["version"].as_str().map(str::to_string));
            return Ok(Answer { etag, body });
        }
        Err(ConnectorError::Permanent(format!(
            "{method} {path}: the target refused the credentials twice"
        )))
    }

    /// The target's capabilities, read once from its ServiceProviderConfig (a target
    /// without one is taken to filter and take PATCH, as RFC 7644 clients commonly do).
    pub fn capabilities(&self) -> Result<Capabilities, ConnectorError> {
        if let Some(c) = *self.caps.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(c);
        }
        let caps = match self.call(reqwest::Method::GET, "/ServiceProviderConfig", None, None) {
            Ok(a) => Capabilities {
                patch: a.body["patch"]["supported"].as_bool().unwrap_or(false),
                etag: a.body["etag"]["supported"].as_bool().unwrap_or(false),
                filter: a.body["filter"]["supported"].as_bool().unwrap_or(false),
            },
            Err(ConnectorError::NotFound(_)) => Capabilities {
                patch: true,
                etag: false,
                filter: true,
            },
            Err(e) => return Err(e),
        };
        *self.caps.lock().unwrap_or_else(|p| p.into_inner()) = Some(caps);
        Ok(caps)
    }

    fn filter_value(v: &str) -> String {
        serde_json::to_string(v).unwrap_or_default()
    }

    /// The first resource of a type with `attr eq value`, by filter where the target
    /// filters, else by reading its pages.
    fn find(&self, kind: &str, attr: &str, value: &str) -> Result<Option<Value>, ConnectorError> {
        let caps = self.capabilities()?;
        if caps.filter {
            let filter = format!("{attr} eq {}", Self::filter_value(value));
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("filter", &filter)
                .finish();
            let a = self.call(reqwest::Method::GET, &format!("/{kind}?{q}"), None, None)?;
            return Ok(a.body["Resources"]
                .as_array()
                .and_then(|r| r.first())
                .cloned());
        }
        let mut found = None;
        self.pages(kind, |r| {
            if found.is_none()
                && r[attr]
                    .as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(value))
            {
                found = Some(r.clone());
            }
        })?;
        Ok(found)
    }

    /// Reads every resource of a type, a page at a time.
    fn pages(&self, kind: &str, mut each: impl FnMut(&Value)) -> Result<(), ConnectorError> {
        let per = self.opts.page_size;
        let mut start = 1u64;
        for _ in 0..100_000 {
            let a = self.call(
                reqwest::Method::GET,
                &format!("/{kind}?startIndex={start}&count={per}"),
                None,
                None,
            )?;
            let items = a.body["Resources"].as_array().cloned().unwrap_or_default();
            for r in &items {
                each(r);
            }
            let total = a.body["totalResults"].as_u64().unwrap_or(0);
            start += items.len() as u64;
            if items.is_empty() || start > total {
                return Ok(());
            }
        }
        Err(ConnectorError::Permanent(
            "the target's list did not end".into(),
        ))
    }

    /// The version to send with If-Match, where the target offers ETags.
    fn version(&self, kind: &str, id: &str) -> Result<Option<String>, ConnectorError> {
        if !self.capabilities()?.etag {
            return Ok(None);
        }
        Ok(self
            .call(reqwest::Method::GET, &format!("/{kind}/{id}"), None, None)?
            .etag)
    }

    /// A PATCH where the target takes one; otherwise the resource read, changed by
    /// `whole` and PUT back.
    fn change(
        &self,
        kind: &str,
        id: &str,
        ops: Vec<Value>,
        whole: impl Fn(&mut Value),
    ) -> Result<(), ConnectorError> {
        if ops.is_empty() {
            return Ok(());
        }
        let path = format!("/{kind}/{id}");
        if self.capabilities()?.patch {
            let v = self.version(kind, id)?;
            let body = json!({"schemas": [PATCH_OP], "Operations": ops});
            self.call(reqwest::Method::PATCH, &path, Some(&body), v.as_deref())?;
            return Ok(());
        }
        let current = self.call(reqwest::Method::GET, &path, None, None)?;
        let mut doc = current.body;
        if let Some(o) = doc.as_object_mut() {
            o.remove("meta");
        }
        whole(&mut doc);
        self.call(
            reqwest::Method::PUT,
            &path,
            Some(&doc),
            current.etag.as_deref(),
        )?;
        Ok(())
    }

    fn user_document(user: &User<'_>, active: bool) -> Value {
        let mut doc = Map::new();
        doc.insert("schemas".into(), json!([USER_SCHEMA]));
        doc.insert("externalId".into(), json!(user.scim_id));
        for (k, v) in &user.fields {
            if !v.is_null() {
                set_at(&mut doc, k, v.clone());
            }
        }
        doc.insert("userName".into(), json!(user.principal));
        doc.insert("active".into(), json!(active));
        Value::Object(doc)
    }
}

impl Target for Arc<ScimTarget> {
    fn kind(&self) -> &'static str {
        "scim"
    }

    fn principal_field(&self) -> &str {
        "userName"
    }

    fn supports_passwords(&self) -> bool {
        true
    }

    fn lookup(&self, principal: &str) -> Result<Option<String>, ConnectorError> {
        Ok(self
            .find("Users", "userName", principal)?
            .and_then(|u| u["id"].as_str().map(str::to_string)))
    }

    fn unreadable(&self) -> Option<String> {
        None
    }

    fn read(&self, principal: &str, fields: &[&str]) -> Result<Option<TargetUser>, ConnectorError> {
        let Some(u) = self.find("Users", "userName", principal)? else {
            return Ok(None);
        };
        let Some(id) = u["id"].as_str() else {
            return Ok(None);
        };
        let read = fields
            .iter()
            .map(|f| (f.to_string(), value_at(&u, f)))
            .collect::<BTreeMap<_, _>>();
        Ok(Some(TargetUser {
            target_id: id.to_string(),
            fields: read,
            active: Some(u["active"].as_bool().unwrap_or(true)),
        }))
    }

    fn principals(&self) -> Result<Option<Vec<String>>, ConnectorError> {
        let mut out = Vec::new();
        self.pages("Users", |u| {
            if let Some(n) = u["userName"].as_str() {
                out.push(n.to_string());
            }
        })?;
        Ok(Some(out))
    }

    fn create(&self, user: &User<'_>) -> Result<Created, ConnectorError> {
        // The userName was looked up first; the bridge's id as externalId finds a user
        // renamed in the target, which is adopted rather than made twice.
        if let Some(id) = self
            .find("Users", "externalId", user.scim_id)?
            .and_then(|u| u["id"].as_str().map(str::to_string))
        {
            return Ok(Created {
                target_id: id,
                adopted: true,
            });
        }
        let doc = ScimTarget::user_document(user, user.active);
        match self.call(reqwest::Method::POST, "/Users", Some(&doc), None) {
            Ok(a) => {
                let id = a.body["id"].as_str().map(str::to_string).ok_or_else(|| {
                    ConnectorError::Permanent("POST /Users: the answer has no id".into())
                })?;
                Ok(Created {
                    target_id: id,
                    adopted: false,
                })
            }
            // uniqueness: the target holds the userName already; adopted.
            Err(ConnectorError::Conflict(why)) => match self.lookup(&user.principal)? {
                Some(id) => Ok(Created {
                    target_id: id,
                    adopted: true,
                }),
                None => Err(ConnectorError::Conflict(why)),
            },
            Err(e) => Err(e),
        }
    }

    fn update(
        &self,
        target_id: &str,
        user: &User<'_>,
        changes: &[FieldChange],
        _old_principal: Option<&str>,
    ) -> Result<(), ConnectorError> {
        let ops: Vec<Value> = changes
            .iter()
            .map(|c| {
                let v = match c.op {
                    Op::Delete => None,
                    _ => c.new.as_ref(),
                };
                patch_op(&c.field, v)
            })
            .collect();
        let whole = ScimTarget::user_document(user, user.active);
        self.change("Users", target_id, ops, |doc| {
            // PUT replaces: the bridge's mapped state over what the target holds.
            if let (Some(d), Some(w)) = (doc.as_object_mut(), whole.as_object()) {
                for c in changes {
                    let head = c.field.split(['.', ':']).next().unwrap_or(&c.field);
                    if c.op == Op::Delete {
                        d.remove(head);
                    }
                }
                for (k, v) in w {
                    d.insert(k.clone(), v.clone());
                }
            }
        })
    }

    fn set_active(
        &self,
        target_id: &str,
        _user: &User<'_>,
        active: bool,
    ) -> Result<(), ConnectorError> {
        let ops = vec![json!({"op": "replace", "path": "active", "value": active})];
        self.change("Users", target_id, ops, |doc| {
            doc["active"] = json!(active);
        })
    }

    fn delete(&self, target_id: &str, _user: &User<'_>) -> Result<(), ConnectorError> {
        match self.call(
            reqwest::Method::DELETE,
            &format!("/Users/{target_id}"),
            None,
            None,
        ) {
            Ok(_) | Err(ConnectorError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn set_password(
        &self,
        target_id: &str,
        _user: &User<'_>,
        password: &str,
    ) -> Result<(), ConnectorError> {
        let ops = vec![json!({"op": "replace", "path": "password", "value": password})];
        self.change("Users", target_id, ops, |doc| {
            doc["password"] = json!(password);
        })
    }
}

/// The `scim` connector: users through the shared adapter, groups mirrored here.
pub struct Scim {
    pub users: Arc<dyn Connector>,
    pub target: Arc<ScimTarget>,
    /// In dry run: group calls are recorded, not made.
    pub dry_run: bool,
}

impl Scim {
    fn record(&self, call: Value) -> Result<Outcome, ConnectorError> {
        super::dryrun::record_call(call);
        Ok(Outcome::default())
    }

    fn group(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        let c = d.change;
        let name = c
            .resource
            .as_ref()
            .and_then(|r| r["displayName"].as_str())
            .map(str::to_string);
        let mapped = d.mapping.and_then(|m| m.target_id.clone());
        let t = &self.target;
        let members_value =
            |ids: &[String]| -> Vec<Value> { ids.iter().map(|i| json!({"value": i})).collect() };
        if d.event == Event::GroupDeleted {
            let Some(id) = mapped else {
                return Ok(Outcome {
                    note: Some("the group was never in the target".into()),
                    ..Default::default()
                });
            };
            if self.dry_run {
                return self.record(json!({"call": "DELETE /Groups", "id": id}));
            }
            return match t.call(
                reqwest::Method::DELETE,
                &format!("/Groups/{id}"),
                None,
                None,
            ) {
                Ok(_) | Err(ConnectorError::NotFound(_)) => Ok(Outcome {
                    target_id: Some(id),
                    ..Default::default()
                }),
                Err(e) => Err(e),
            };
        }
        let name =
            name.ok_or_else(|| ConnectorError::Permanent("the group has no displayName".into()))?;
        let id = match mapped {
            Some(id) => id,
            None => {
                // Created here (or found by name, and adopted) with the members it names.
                let ids = member_target_ids(d, c.members.members(), true)?;
                if self.dry_run {
                    return self.record(
                        json!({"call": "POST /Groups", "displayName": name, "members": ids}),
                    );
                }
                let doc = json!({"schemas": [GROUP_SCHEMA], "displayName": name,
                                  "externalId": d.resource_id, "members": members_value(&ids)});
                let id = match t.call(reqwest::Method::POST, "/Groups", Some(&doc), None) {
                    Ok(a) => a.body["id"].as_str().map(str::to_string).ok_or_else(|| {
                        ConnectorError::Permanent("POST /Groups: the answer has no id".into())
                    })?,
                    Err(ConnectorError::Conflict(why)) => t
                        .find("Groups", "displayName", &name)?
                        .and_then(|g| g["id"].as_str().map(str::to_string))
                        .ok_or(ConnectorError::Conflict(why))?,
                    Err(e) => return Err(e),
                };
                return Ok(Outcome {
                    target_id: Some(id),
                    principal: Some(name),
                    ..Default::default()
                });
            }
        };
        let (add, remove) = member_delta(d);
        let add = member_target_ids(d, &add, true)?;
        // A member leaving that the target never had is nothing to remove there.
        let remove = member_target_ids(d, &remove, false)?;
        let mut ops = Vec::new();
        if matches!(
            d.event,
            Event::GroupRenamed | Event::GroupUpdated | Event::GroupCreated
        ) {
            ops.push(json!({"op": "replace", "path": "displayName", "value": name}));
        }
        if !add.is_empty() {
            ops.push(json!({"op": "add", "path": "members", "value": members_value(&add)}));
        }
        for r in &remove {
            ops.push(json!({"op": "remove", "path": format!("members[value eq {}]", ScimTarget::filter_value(r))}));
        }
        if self.dry_run {
            return self.record(json!({"call": "PATCH /Groups", "id": id, "Operations": ops}));
        }
        let result = t.change("Groups", &id, ops, |doc| {
            doc["displayName"] = json!(name);
            let mut list: Vec<Value> = doc["members"].as_array().cloned().unwrap_or_default();
            list.retain(|m| {
                !m["value"]
                    .as_str()
                    .is_some_and(|v| remove.iter().any(|r| r == v))
            });
            for a in &add {
                if !list.iter().any(|m| m["value"] == a.as_str()) {
                    list.push(json!({"value": a}));
                }
            }
            doc["members"] = Value::Array(list);
        });
        match result {
            Ok(()) => Ok(Outcome {
                target_id: Some(id),
                principal: Some(name),
                ..Default::default()
            }),
            Err(e) => Err(e),
        }
    }
}

impl super::target::MirrorsGroups for Scim {
    fn kind(&self) -> &'static str {
        "scim"
    }

    fn users(&self) -> &dyn Connector {
        self.users.as_ref()
    }

    fn group(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        Scim::group(self, d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_path_builds_nested_multi_valued_and_extension_attributes() {
        let mut doc = Map::new();
        doc.insert("schemas".into(), json!([USER_SCHEMA]));
        set_at(&mut doc, "name.givenName", json!("Ann"));
        set_at(&mut doc, "emails.value", json!("ann@x"));
        set_at(
            &mut doc,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            json!("7"),
        );
        let doc = Value::Object(doc);
        assert_eq!(doc["name"]["givenName"], "Ann");
        assert_eq!(
            doc["emails"],
            json!([{"value": "ann@x", "type": "work", "primary": true}])
        );
        assert_eq!(value_at(&doc, "emails.value"), json!("ann@x"));
        assert_eq!(
            value_at(
                &doc,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
            ),
            json!("7")
        );
        assert_eq!(doc["schemas"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn a_cleared_field_is_a_remove_and_a_multi_valued_one_is_replaced_whole() {
        assert_eq!(
            patch_op("title", None),
            json!({"op": "remove", "path": "title"})
        );
        assert_eq!(
            patch_op("emails.value", Some(&json!("b@x"))),
            json!({"op": "replace", "path": "emails", "value": [{"value": "b@x", "type": "work", "primary": true}]})
        );
    }
}
