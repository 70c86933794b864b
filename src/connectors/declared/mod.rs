//! `http`: a target described in a file ([`definition`]) instead of Rust. It is a
//! [`Target`] like the built-in ones, so the shared adapter gives it the attribute mapping,
//! roles, scope, dry run, the brake, backfill and reconcile; what it adds is how each
//! operation becomes the calls the file names, how each answer is read, and how the
//! bridge signs in.

pub mod definition;
pub mod probe;
pub mod template;
pub mod xpath;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use minijinja::value::Value as Ctx;
use serde_json::{json, Map, Value};

use super::attrs::{FieldChange, Op};
use super::read::TargetUser;
use super::target::{Created, Target, User};
use super::{retry_after, transport, BlockingClient, ConnectorError};
use crate::secret::Secret;
use definition::{Auth, Call, Definition, Verdict};
use template::{Place, Templates};

/// The operations a definition may give, as the adapter asks for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Lookup,
    Create,
    Update,
    Deactivate,
    Reactivate,
    Delete,
    Adopt,
    Password,
    Roles,
    AddRole,
    RemoveRole,
    Read,
    List,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Lookup => "lookup",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Deactivate => "deactivate",
            Operation::Reactivate => "reactivate",
            Operation::Delete => "delete",
            Operation::Adopt => "adopt",
            Operation::Password => "password",
            Operation::Roles => "roles",
            Operation::AddRole => "add_role",
            Operation::RemoveRole => "remove_role",
            Operation::Read => "read",
            Operation::List => "list",
        }
    }
}

/// The credentials the connector's table gives.
#[derive(Clone, Default)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub secret: Option<Secret>,
}

/// A token the bridge signed in for, and until when it holds.
#[derive(Clone)]
struct Token {
    value: Secret,
    until: Option<Instant>,
}

/// One call as it went: what was sent and what came back (for `connector test`).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub call: String,
    pub method: &'static str,
    pub url: String,
    pub body: Option<Value>,
    pub status: Option<u16>,
    pub answer: String,
    pub verdict: Result<Verdict, String>,
}

/// A described target.
pub struct Declared {
    def: Definition,
    base: String,
    creds: Credentials,
    options: Value,
    templates: Templates,
    client: BlockingClient,
    token: Mutex<Option<Token>>,
    /// Every exchange, when something asked to watch them.
    watch: Option<Mutex<Vec<Exchange>>>,
}

/// What an answer gave: the values taken.
type Taken = Map<String, Value>;

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Declared {
    pub fn new(
        def: Definition,
        url: &str,
        creds: Credentials,
        options: Value,
        timeout: Duration,
    ) -> Declared {
        Declared {
            def,
            base: url.trim_end_matches('/').to_string(),
            creds,
            options,
            templates: Templates::new(),
            client: BlockingClient::new(timeout),
            token: Mutex::new(None),
            watch: None,
        }
    }

    /// Keeps every exchange, for [`Declared::exchanges`].
    pub fn watched(mut self) -> Declared {
        self.watch = Some(Mutex::new(Vec::new()));
        self
    }

    /// The exchanges since the last call, with secrets masked.
    pub fn exchanges(&self) -> Vec<Exchange> {
        let Some(w) = &self.watch else { return vec![] };
        std::mem::take(&mut *w.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn definition(&self) -> &Definition {
        &self.def
    }

    fn credentials(&self) -> Value {
        json!({
            "username": self.creds.username,
            "password": self.creds.password.as_ref().map(|p| p.expose().to_string()),
            "secret": self.creds.secret.as_ref().map(|s| s.expose().to_string()),
        })
    }

    /// The variables every template of an operation sees.
    fn vars(&self, principal: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("principal".into(), json!(principal));
        m.insert("options".into(), self.options.clone());
        m.insert("credentials".into(), self.credentials());
        m.insert("taken".into(), json!({}));
        m
    }

    fn user_vars(&self, user: &User<'_>, active: bool) -> Map<String, Value> {
        let mut m = self.vars(&user.principal);
        m.insert(
            "user".into(),
            Value::Object(user.fields.clone().into_iter().collect()),
        );
        m.insert("scim_id".into(), json!(user.scim_id));
        m.insert("active".into(), json!(active));
        m.insert("roles".into(), json!(user.roles));
        m.insert("groups".into(), json!(user.groups));
        m
    }

    fn steps(&self, op: Operation) -> Option<&definition::Steps> {
        let o = &self.def.operations;
        match op {
            Operation::Lookup => o.lookup.as_ref(),
            Operation::Create => o.create.as_ref(),
            Operation::Update => o.update.as_ref(),
            Operation::Deactivate => o.deactivate.as_ref(),
            Operation::Reactivate => o.reactivate.as_ref(),
            Operation::Delete => o.delete.as_ref(),
            Operation::Adopt => o.adopt.as_ref(),
            Operation::Password => o.password.as_ref(),
            Operation::Roles => o.roles.as_ref(),
            Operation::AddRole => o.add_role.as_ref(),
            Operation::RemoveRole => o.remove_role.as_ref(),
            Operation::Read => o.read.as_ref(),
            Operation::List => o.list.as_ref(),
        }
    }

    /// Runs an operation's calls in order; what each takes is `taken` to the next (and a
    /// taken `id` is the `target_id`).
    pub fn run(
        &self,
        op: Operation,
        vars: &mut Map<String, Value>,
    ) -> Result<Taken, ConnectorError> {
        let steps = self.steps(op).ok_or_else(|| {
            ConnectorError::Permanent(format!(
                "{}: the definition has no {} operation",
                self.def.target.title,
                op.as_str()
            ))
        })?;
        let mut all = Taken::new();
        for name in definition::names(steps) {
            let Some(call) = self.def.calls.get(name) else {
                return Err(ConnectorError::Permanent(format!(
                    "the definition has no call {name}"
                )));
            };
            if let Some(when) = &call.when {
                let go = self
                    .templates
                    .test(when.get_ref(), &Ctx::from_serialize(&*vars))
                    .map_err(|e| ConnectorError::Permanent(format!("calls.{name}.when: {e}")))?;
                if !go {
                    continue;
                }
            }
            let taken = self.call(name, call, vars, false)?;
            if let Some(id) = taken.get("id").filter(|v| !v.is_null()) {
                vars.insert("target_id".into(), Value::String(text_of(id)));
            }
            if let Some(Value::Object(t)) = vars.get_mut("taken") {
                t.extend(taken.clone());
            }
            all.extend(taken);
        }
        Ok(all)
    }

    /// The token to send, signing in (or fetching an OAuth token) when none is held.
    fn token(&self) -> Result<Option<Secret>, ConnectorError> {
        if !self.def.auth.renews() {
            return Ok(None);
        }
        // Held while signing in, so workers starting together share one token.
        let mut held = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = held.as_ref() {
            if t.until.is_none_or(|u| Instant::now() < u) {
                return Ok(Some(t.value.clone()));
            }
        }
        let fresh = match &self.def.auth {
            Auth::Signin { call } => {
                let c = self.def.calls.get(call).ok_or_else(|| {
                    ConnectorError::Permanent(format!("the definition has no call {call}"))
                })?;
                let mut vars = self.vars("");
                let taken = self.call(call, c, &mut vars, true)?;
                let value = taken
                    .get("token")
                    .filter(|v| !v.is_null())
                    .map(text_of)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        ConnectorError::Permanent(format!(
                            "{call}: the sign-in answer gave no token"
                        ))
                    })?;
                Token {
                    value: Secret::new(value),
                    until: None,
                }
            }
            Auth::Oauth2 { token_url, scope } => self.oauth(token_url, scope.as_deref())?,
            Auth::None | Auth::Basic | Auth::Bearer => return Ok(None),
        };
        *held = Some(fresh.clone());
        Ok(Some(fresh.value))
    }

    fn forget_token(&self) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// OAuth 2.0 client credentials (RFC 6749 4.4), the client authenticated with HTTP
    /// Basic (2.3.1).
    fn oauth(&self, token_url: &str, scope: Option<&str>) -> Result<Token, ConnectorError> {
        // A reference resolved against the connector's url (RFC 3986): `/oauth/token` is
        // on its host, `token` under its path.
        let url = url::Url::parse(&format!("{}/", self.base))
            .and_then(|b| b.join(token_url))
            .map_err(|e| ConnectorError::Permanent(format!("auth.token_url: {e}")))?;
        let (Some(id), Some(secret)) = (&self.creds.username, &self.creds.password) else {
            return Err(ConnectorError::Permanent(
                "OAuth client credentials need the connector's username (client id) and password (client secret)".into(),
            ));
        };
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let res = self
            .client
            .get()?
            .post(url)
            .basic_auth(id, Some(secret.expose()))
            .form(&form)
            .send()
            .map_err(transport)?;
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().unwrap_or_default();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(super::classify_status(status, &headers, &text));
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let Some(token) = v["access_token"].as_str().filter(|t| !t.is_empty()) else {
            return Err(ConnectorError::Permanent(format!(
                "the token endpoint refused the client ({status}): {}",
                v["error"]
                    .as_str()
                    .unwrap_or("no access_token in its answer")
            )));
        };
        // Renewed a little before it expires.
        let until = v["expires_in"]
            .as_u64()
            .map(|s| Instant::now() + Duration::from_secs(s.saturating_sub(30).max(1)));
        Ok(Token {
            value: Secret::new(token),
            until,
        })
    }

    /// Makes one call (signing in again once if its answer says so) and reads its answer.
    fn call(
        &self,
        name: &str,
        call: &Call,
        vars: &mut Map<String, Value>,
        signing_in: bool,
    ) -> Result<Taken, ConnectorError> {
        for attempt in 0..2 {
            let token = if signing_in { None } else { self.token()? };
            match &token {
                Some(t) => vars.insert("token".into(), json!(t.expose())),
                None => vars.remove("token"),
            };
            let (verdict, taken) = self.exchange(name, call, vars, token.as_ref())?;
            match verdict {
                Ok(()) => return Ok(taken),
                Err(Refusal::Reauth(why)) => {
                    if signing_in || !self.def.auth.renews() {
                        return Err(ConnectorError::Permanent(format!(
                            "{name}: the target refused the credentials: {why}"
                        )));
                    }
                    self.forget_token();
                    if attempt == 1 {
                        return Err(ConnectorError::Permanent(format!(
                            "{name}: the credentials were refused twice: {why}"
                        )));
                    }
                }
                Err(Refusal::Error(e)) => return Err(e),
            }
        }
        Err(ConnectorError::retry(format!("{name}: no answer")))
    }

    fn render_err(name: &str, what: &str, e: template::TemplateError) -> ConnectorError {
        ConnectorError::Permanent(format!("calls.{name}.{what}: {e}"))
    }

    /// Sends one request and judges its answer.
    fn exchange(
        &self,
        name: &str,
        call: &Call,
        vars: &Map<String, Value>,
        token: Option<&Secret>,
    ) -> Result<(Result<(), Refusal>, Taken), ConnectorError> {
        let ctx = Ctx::from_serialize(vars);
        let t = &self.templates;
        let path = t
            .render(Place::Path, call.path.get_ref(), &ctx)
            .map_err(|e| Self::render_err(name, "path", e))?;
        let url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        let method = reqwest::Method::from_bytes(call.method.as_str().as_bytes())
            .map_err(|e| ConnectorError::Permanent(e.to_string()))?;
        let client = self.client.get()?;
        let mut req = client.request(method, &url);
        let mut query = Vec::new();
        for (k, v) in &call.query {
            if let Some(v) = t
                .value(v.get_ref(), &ctx)
                .map_err(|e| Self::render_err(name, &format!("query.{k}"), e))?
            {
                query.push((k.clone(), text_of(&v)));
            }
        }
        if !query.is_empty() {
            req = req.query(&query);
        }
        for (k, v) in self.def.request.headers.iter().chain(&call.headers) {
            if let Some(v) = t
                .value(v.get_ref(), &ctx)
                .map_err(|e| Self::render_err(name, &format!("headers.{k}"), e))?
            {
                req = req.header(k.as_str(), text_of(&v));
            }
        }
        match &self.def.auth {
            Auth::Basic => {
                if let Some(u) = &self.creds.username {
                    req = req.basic_auth(u, self.creds.password.as_ref().map(|p| p.expose()));
                }
            }
            Auth::Bearer => {
                if let Some(s) = self.creds.secret.as_ref().or(self.creds.password.as_ref()) {
                    req = req.bearer_auth(s.expose());
                }
            }
            Auth::Oauth2 { .. } => {
                if let Some(tk) = token {
                    req = req.bearer_auth(tk.expose());
                }
            }
            Auth::None | Auth::Signin { .. } => {}
        }
        if let Some(soap) = &self.def.soap {
            let (envelope, rq) = self.envelope(name, call, soap, &ctx, req)?;
            return self.answer(
                (name, call, token),
                rq,
                &url,
                Some(Value::String(envelope)),
                vars,
            );
        }
        let mut body = match &call.body {
            Some(b) => t
                .body(b, &ctx)
                .map_err(|e| Self::render_err(name, "body", e))?,
            None => None,
        };
        // What every JSON object body carries, where the call does not say otherwise.
        if let (Some(Value::Object(b)), Some(common)) = (&mut body, &self.def.request.body) {
            if let Some(Value::Object(c)) = t
                .body(common, &ctx)
                .map_err(|e| Self::render_err(name, "request.body", e))?
            {
                for (k, v) in c {
                    b.entry(k).or_insert(v);
                }
            }
        }
        if let Some(b) = &body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        self.answer((name, call, token), req, &url, body, vars)
    }

    /// A SOAP call's envelope, and the request carrying it.
    fn envelope(
        &self,
        name: &str,
        call: &Call,
        soap: &definition::Soap,
        ctx: &Ctx,
        req: reqwest::blocking::RequestBuilder,
    ) -> Result<(String, reqwest::blocking::RequestBuilder), ConnectorError> {
        let inner = match &call.body {
            Some(toml::Value::String(xml)) => self
                .templates
                .render(Place::Xml, xml, ctx)
                .map_err(|e| Self::render_err(name, "body", e))?,
            Some(_) => {
                return Err(ConnectorError::Permanent(format!(
                    "calls.{name}.body: a SOAP body is XML text"
                )))
            }
            None => String::new(),
        };
        let declared: String = soap
            .namespaces
            .iter()
            .map(|(p, u)| format!(" xmlns:{p}=\"{}\"", super::xml::esc(u)))
            .collect();
        let action = call.action.clone().unwrap_or_default();
        let (ns, content_type) = match soap.version {
            definition::SoapVersion::V11 => (
                "http://schemas.xmlsoap.org/soap/envelope/",
                "text/xml; charset=utf-8".to_string(),
            ),
            definition::SoapVersion::V12 => (
                "http://www.w3.org/2003/05/soap-envelope",
                format!("application/soap+xml; charset=utf-8; action=\"{action}\""),
            ),
        };
        let envelope = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"{ns}\"{declared}><soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>"
        );
        let mut req = req.header("Content-Type", content_type);
        if soap.version == definition::SoapVersion::V11 {
            req = req.header("SOAPAction", format!("\"{action}\""));
        }
        Ok((envelope.clone(), req.body(envelope)))
    }

    /// Sends a request made and reads its answer.
    fn answer(
        &self,
        (name, call, token): (&str, &Call, Option<&Secret>),
        req: reqwest::blocking::RequestBuilder,
        url: &str,
        body: Option<Value>,
        vars: &Map<String, Value>,
    ) -> Result<(Result<(), Refusal>, Taken), ConnectorError> {
        let url = url.to_string();
        let res = match req.send() {
            Ok(r) => r,
            Err(e) => {
                let err = transport(e);
                self.keep(
                    (name, call, token),
                    &url,
                    &body,
                    None,
                    "",
                    Err(err.to_string()),
                );
                return Err(err);
            }
        };
        let status = res.status();
        let headers = res.headers().clone();
        // An answer is read up to 1 MiB: what a provisioning call answers about one user.
        let text = read_limited(res, 1 << 20);
        let (verdict, message) = self.judge(name, call, status.as_u16(), &headers, &text, vars)?;
        self.keep(
            (name, call, token),
            &url,
            &body,
            Some(status.as_u16()),
            &text,
            Ok(verdict),
        );
        let outcome = match verdict {
            Verdict::Success => Ok(()),
            Verdict::Reauth => Err(Refusal::Reauth(message)),
            Verdict::NotFound => Err(Refusal::Error(ConnectorError::NotFound(message))),
            Verdict::Conflict => Err(Refusal::Error(ConnectorError::Conflict(message))),
            Verdict::Refused => Err(Refusal::Error(ConnectorError::Permanent(message))),
            Verdict::Retry => Err(Refusal::Error(ConnectorError::Retryable {
                message,
                retry_after: retry_after(&headers),
            })),
        };
        if outcome.is_err() {
            return Ok((outcome, Taken::new()));
        }
        let taken = self.take(name, call, &text)?;
        if let (Some(w), Some(t)) = (&self.watch, taken.get("token")) {
            // A sign-in's answer is shown without the token it gave.
            let t = text_of(t);
            if let Some(last) = w.lock().unwrap_or_else(|p| p.into_inner()).last_mut() {
                if !t.is_empty() {
                    last.answer = last.answer.replace(&t, "<token>");
                }
            }
        }
        Ok((outcome, taken))
    }

    #[allow(clippy::too_many_arguments)]
    fn keep(
        &self,
        (name, call, token): (&str, &Call, Option<&Secret>),
        url: &str,
        body: &Option<Value>,
        status: Option<u16>,
        text: &str,
        verdict: Result<Verdict, String>,
    ) {
        let Some(w) = &self.watch else { return };
        let mask = |s: String| {
            let mut s = s;
            for secret in [&self.creds.password, &self.creds.secret]
                .into_iter()
                .flatten()
            {
                if !secret.expose().is_empty() {
                    s = s.replace(secret.expose(), "********");
                }
            }
            // The token this call carried (the lock is not taken: a sign-in holds it).
            if let Some(t) = token.filter(|t| !t.expose().is_empty()) {
                s = s.replace(t.expose(), "<token>");
            }
            s
        };
        let body = body
            .as_ref()
            .and_then(|b| serde_json::from_str(&mask(b.to_string())).ok());
        w.lock().unwrap_or_else(|p| p.into_inner()).push(Exchange {
            call: name.to_string(),
            method: call.method.as_str(),
            url: mask(url.to_string()),
            body,
            status,
            answer: mask(text.chars().take(2000).collect()),
            verdict,
        });
    }

    /// What the answer means: the call's rules, the file's, then HTTP's own.
    fn judge(
        &self,
        name: &str,
        call: &Call,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        text: &str,
        vars: &Map<String, Value>,
    ) -> Result<(Verdict, String), ConnectorError> {
        let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let heads: Map<String, Value> = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    json!(v.to_str().unwrap_or_default()),
                )
            })
            .collect();
        let fault = self.def.soap.as_ref().and_then(|_| fault_of(text));
        let answer = json!({
            "status": status, "body": body, "text": text, "headers": heads,
            "taken": vars.get("taken"), "options": self.options,
            "fault": fault,
        });
        let ctx = if self.def.soap.is_some() {
            // `xpath("…")`: the string value of what an expression selects in the answer.
            let xml: std::sync::Arc<str> = text.into();
            // An answer that is not XML (a proxy's error page) selects nothing.
            let xpath = Ctx::from_function(move |expr: String| {
                Ctx::from(
                    xpath::first_string(&xml, &expr)
                        .ok()
                        .flatten()
                        .unwrap_or_default(),
                )
            });
            let mut map: BTreeMap<String, Ctx> = BTreeMap::new();
            if let Value::Object(o) = answer {
                for (k, v) in o {
                    map.insert(k, Ctx::from_serialize(v));
                }
            }
            map.insert("xpath".into(), xpath);
            Ctx::from_iter(map)
        } else {
            Ctx::from_serialize(answer)
        };
        let short: String = text.chars().take(300).collect();
        for rule in call.answers.iter().chain(&self.def.answers) {
            let hit = self
                .templates
                .test(rule.when.get_ref(), &ctx)
                .map_err(|e| ConnectorError::Permanent(format!("{name}: answers.when: {e}")))?;
            if hit {
                let message = match &rule.message {
                    Some(m) => self
                        .templates
                        .render(Place::Plain, m.get_ref(), &ctx)
                        .map_err(|e| {
                            ConnectorError::Permanent(format!("{name}: answers.message: {e}"))
                        })?,
                    None => format!("{status}: {}", short.trim()),
                };
                return Ok((rule.is, format!("{name}: {message}")));
            }
        }
        if let Some(f) = &fault {
            // A fault blames the request (Client, Sender) or the server (anything else),
            // by its code, never by its words.
            let code = f["code"].as_str().unwrap_or_default();
            let verdict = if matches!(code, "Client" | "Sender") {
                Verdict::Refused
            } else {
                Verdict::Retry
            };
            return Ok((
                verdict,
                format!(
                    "{name}: SOAP fault {code}: {}",
                    f["string"].as_str().unwrap_or_default()
                ),
            ));
        }
        let verdict = match status {
            200..=299 => Verdict::Success,
            401 | 403 if self.def.auth.renews() => Verdict::Reauth,
            404 => Verdict::NotFound,
            409 => Verdict::Conflict,
            429 | 500..=599 => Verdict::Retry,
            _ => Verdict::Refused,
        };
        Ok((verdict, format!("{name}: {status}: {}", short.trim())))
    }

    /// The values a successful answer gives, by the call's JSONPaths.
    fn take(&self, name: &str, call: &Call, text: &str) -> Result<Taken, ConnectorError> {
        let mut out = Taken::new();
        if call.take.is_empty() {
            return Ok(out);
        }
        if self.def.soap.is_some() {
            for (k, p) in &call.take {
                let fail = |e: String| ConnectorError::Permanent(format!("{name}.take.{k}: {e}"));
                if k == "principals" {
                    let all = xpath::all_strings(text, p.get_ref()).map_err(fail)?;
                    out.insert(k.clone(), json!(all));
                } else if let Some(v) = xpath::first_string(text, p.get_ref()).map_err(fail)? {
                    out.insert(k.clone(), Value::String(v));
                }
            }
            return Ok(out);
        }
        // An answer that is not JSON is one string: `$` takes it whole (a bare token).
        let body: Value =
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.trim().to_string()));
        for (k, p) in &call.take {
            let path = serde_json_path::JsonPath::parse(p.get_ref())
                .map_err(|e| ConnectorError::Permanent(format!("{name}.take.{k}: {e}")))?;
            // `principals` (a list's page) is every match; any other take the first.
            if k == "principals" {
                let all: Vec<Value> = path.query(&body).all().into_iter().cloned().collect();
                out.insert(k.clone(), Value::Array(all));
            } else if let Some(v) = path.query(&body).first() {
                if !v.is_null() {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(out)
    }

    fn created_id(
        &self,
        vars: &Map<String, Value>,
        user: &User<'_>,
    ) -> Result<String, ConnectorError> {
        if let Some(id) = vars.get("target_id").filter(|v| !v.is_null()) {
            return Ok(text_of(id));
        }
        match &self.def.target.id {
            Some(tpl) => {
                let id = self
                    .templates
                    .render(Place::Plain, tpl.get_ref(), &Ctx::from_serialize(vars))
                    .map_err(|e| ConnectorError::Permanent(format!("target.id: {e}")))?;
                if id.is_empty() {
                    return Err(ConnectorError::Permanent(
                        "the create's answer gave no id, and target.id made an empty one".into(),
                    ));
                }
                Ok(id)
            }
            None => Ok(user.principal.clone()),
        }
    }
}

/// A SOAP answer's Fault (1.1 faultcode/faultstring, 1.2 Code/Value and Reason/Text):
/// `code` without its prefix, `string`, and `detail`'s text.
fn fault_of(text: &str) -> Option<Value> {
    let doc = roxmltree::Document::parse(text).ok()?;
    let fault = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "Fault")?;
    fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
        n.children()
            .find(|c| c.is_element() && c.tag_name().name() == name)
    }
    let text_in = |n: Option<roxmltree::Node<'_, '_>>| {
        n.map(|n| {
            n.descendants()
                .filter(|d| d.is_text())
                .filter_map(|d| d.text())
                .collect::<String>()
                .trim()
                .to_string()
        })
    };
    let code = child(fault, "faultcode")
        .or_else(|| child(fault, "Code").and_then(|c| child(c, "Value")))
        .and_then(|n| n.text())
        .map(|c| c.trim().rsplit(':').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let string =
        text_in(child(fault, "faultstring").or_else(|| child(fault, "Reason"))).unwrap_or_default();
    let detail =
        text_in(child(fault, "detail").or_else(|| child(fault, "Detail"))).unwrap_or_default();
    Some(json!({"code": code, "string": string, "detail": detail}))
}

/// Why a call did not succeed.
enum Refusal {
    Reauth(String),
    Error(ConnectorError),
}

/// Reads at most `limit` bytes of an answer (the rest is dropped).
pub fn read_limited(res: reqwest::blocking::Response, limit: u64) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    let _ = res.take(limit).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

impl Target for Declared {
    fn kind(&self) -> &'static str {
        if self.def.soap.is_some() {
            "soap"
        } else {
            "http"
        }
    }

    fn principal_field(&self) -> &str {
        &self.def.target.principal
    }

    fn supports_passwords(&self) -> bool {
        self.def.operations.password.is_some()
    }

    fn supports_roles(&self) -> bool {
        self.def.operations.roles.is_some() || self.def.operations.add_role.is_some()
    }

    fn lookup_before_create(&self) -> bool {
        self.def.operations.lookup.is_some() && self.def.target.lookup_first
    }

    fn lookup(&self, principal: &str) -> Result<Option<String>, ConnectorError> {
        if self.def.operations.lookup.is_none() {
            return Ok(None);
        }
        let mut vars = self.vars(principal);
        match self.run(Operation::Lookup, &mut vars) {
            Ok(taken) => Ok(taken.get("id").map(text_of)),
            Err(ConnectorError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn unreadable(&self) -> Option<String> {
        match self.def.operations.read {
            Some(_) => None,
            None => Some(format!(
                "{}'s definition has no read operation",
                self.def.target.title
            )),
        }
    }

    fn read(&self, principal: &str, fields: &[&str]) -> Result<Option<TargetUser>, ConnectorError> {
        let mut vars = self.vars(principal);
        let taken = match self.run(Operation::Read, &mut vars) {
            Ok(t) => t,
            Err(ConnectorError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(id) = taken.get("id").map(text_of) else {
            return Ok(None);
        };
        let mut read = BTreeMap::new();
        for f in fields {
            // A field the read takes nothing for, though it names it, has no value; one
            // it does not name at all is not compared.
            if self.def.calls.values().any(|c| c.take.contains_key(*f)) {
                read.insert(f.to_string(), taken.get(*f).cloned().unwrap_or(Value::Null));
            }
        }
        let active = match &self.def.read.active {
            Some(expr) => {
                let v = self
                    .templates
                    .eval(
                        expr.get_ref(),
                        &Ctx::from_serialize(json!({"taken": taken, "options": self.options})),
                    )
                    .map_err(|e| ConnectorError::Permanent(format!("read.active: {e}")))?;
                if v.is_undefined() || v.is_none() {
                    None
                } else {
                    Some(v.is_true())
                }
            }
            None => taken.get("active").and_then(Value::as_bool),
        };
        Ok(Some(TargetUser {
            target_id: id,
            fields: read,
            active,
        }))
    }

    /// Every principal, page by page, where the definition can list.
    fn principals(&self) -> Result<Option<Vec<String>>, ConnectorError> {
        if self.def.operations.list.is_none() {
            return Ok(None);
        }
        let mut out = Vec::new();
        let mut cursor = Value::Null;
        for _ in 0..self.def.list.max_pages {
            let mut vars = self.vars("");
            vars.insert("cursor".into(), cursor.clone());
            let taken = self.run(Operation::List, &mut vars)?;
            let page: Vec<String> = match taken.get("principals") {
                Some(Value::Array(a)) => a.iter().map(text_of).collect(),
                _ => vec![],
            };
            if page.is_empty() {
                return Ok(Some(out));
            }
            out.extend(page);
            let Some(next) = &self.def.list.next else {
                return Ok(Some(out));
            };
            let ctx = Ctx::from_serialize(
                json!({"taken": taken, "cursor": cursor, "options": self.options}),
            );
            let v = self
                .templates
                .eval(next.get_ref(), &ctx)
                .map_err(|e| ConnectorError::Permanent(format!("list.next: {e}")))?;
            if v.is_undefined() || v.is_none() || v.to_string().is_empty() {
                return Ok(Some(out));
            }
            cursor = serde_json::to_value(&v).unwrap_or(Value::Null);
        }
        Err(ConnectorError::Permanent(format!(
            "the list went past {} pages (list.max_pages)",
            self.def.list.max_pages
        )))
    }

    fn create(&self, user: &User<'_>) -> Result<Created, ConnectorError> {
        let mut vars = self.user_vars(user, user.active);
        vars.insert("add_roles".into(), json!(user.roles));
        vars.insert("remove_roles".into(), json!([]));
        match self.run(Operation::Create, &mut vars) {
            Ok(_) => Ok(Created {
                target_id: self.created_id(&vars, user)?,
                adopted: false,
            }),
            Err(ConnectorError::Conflict(why)) => {
                // The target already holds the principal: adopted where it can be found.
                let Some(target_id) = self.lookup(&user.principal)? else {
                    return Err(ConnectorError::Conflict(why));
                };
                if self.def.operations.adopt.is_some() {
                    let mut vars = self.user_vars(user, user.active);
                    vars.insert("target_id".into(), json!(target_id));
                    self.run(Operation::Adopt, &mut vars)?;
                }
                Ok(Created {
                    target_id,
                    adopted: true,
                })
            }
            Err(e) => Err(e),
        }
    }

    fn rename_note(&self) -> Option<&str> {
        self.def.target.rename_note.as_deref()
    }

    fn update(
        &self,
        target_id: &str,
        user: &User<'_>,
        changes: &[FieldChange],
        old_principal: Option<&str>,
    ) -> Result<(), ConnectorError> {
        let mut vars = self.user_vars(user, user.active);
        vars.insert("target_id".into(), json!(target_id));
        vars.insert("old_principal".into(), json!(old_principal));
        let mut changed = Map::new();
        let mut list = Vec::new();
        for c in changes {
            let new = match c.op {
                Op::Delete => Value::Null,
                _ => c.new.clone().unwrap_or(Value::Null),
            };
            changed.insert(c.field.clone(), new.clone());
            list.push(json!({"field": c.field, "op": c.op.as_str(), "old": c.old, "new": new}));
        }
        vars.insert("changed".into(), Value::Object(changed));
        vars.insert("changes".into(), Value::Array(list));
        self.run(Operation::Update, &mut vars).map(|_| ())
    }

    fn set_active(
        &self,
        target_id: &str,
        user: &User<'_>,
        active: bool,
    ) -> Result<(), ConnectorError> {
        let mut vars = self.user_vars(user, active);
        vars.insert("target_id".into(), json!(target_id));
        let op = if active {
            Operation::Reactivate
        } else {
            Operation::Deactivate
        };
        self.run(op, &mut vars).map(|_| ())
    }

    fn delete(&self, target_id: &str, user: &User<'_>) -> Result<(), ConnectorError> {
        let mut vars = self.user_vars(user, false);
        vars.insert("target_id".into(), json!(target_id));
        if self.def.operations.delete.is_none() {
            // No delete in the target: the user is deactivated, so it loses access.
            return self.run(Operation::Deactivate, &mut vars).map(|_| ());
        }
        match self.run(Operation::Delete, &mut vars) {
            Ok(_) | Err(ConnectorError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn set_password(
        &self,
        target_id: &str,
        user: &User<'_>,
        password: &str,
    ) -> Result<(), ConnectorError> {
        let mut vars = self.user_vars(user, user.active);
        vars.insert("target_id".into(), json!(target_id));
        vars.insert("password".into(), json!(password));
        self.run(Operation::Password, &mut vars).map(|_| ())
    }

    fn change_roles(
        &self,
        target_id: &str,
        user: &User<'_>,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ConnectorError> {
        let mut vars = self.user_vars(user, user.active);
        vars.insert("target_id".into(), json!(target_id));
        if self.def.operations.roles.is_some() {
            vars.insert("add_roles".into(), json!(add));
            vars.insert("remove_roles".into(), json!(remove));
            return self.run(Operation::Roles, &mut vars).map(|_| ());
        }
        for (op, roles) in [(Operation::AddRole, add), (Operation::RemoveRole, remove)] {
            for role in roles {
                vars.insert("role".into(), json!(role));
                self.run(op, &mut vars)?;
            }
        }
        Ok(())
    }
}
