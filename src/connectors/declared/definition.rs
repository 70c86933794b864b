//! A target described in a file: what `definition = "PATH"` names. The file is TOML; its
//! sections are `[target]`, `[attributes]`, `[auth]`, `[request]`, `[calls.NAME]`,
//! `[[answers]]`, `[operations]` and `[read]` (README, "Writing a connector", has every
//! key). [`Definition::parse`] reads one and checks it whole: every problem is reported
//! with the file's line, in words.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

use super::template;

/// A string the file gave, with where it was (a byte range), so a problem found later
/// can name its line.
pub type Spanned = toml::Spanned<String>;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub target: TargetSection,
    /// The default attribute mapping: target field = SCIM path (the connector's
    /// `[connector.attributes]` overrides it).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub request: Request,
    #[serde(default)]
    pub calls: BTreeMap<String, Call>,
    /// How to read an answer, tried in order after a call's own rules.
    #[serde(default)]
    pub answers: Vec<Rule>,
    pub operations: Operations,
    #[serde(default)]
    pub read: ReadSection,
    #[serde(default)]
    pub list: ListSection,
    /// Present for a SOAP target (`kind = "soap"`): each call's body is then the XML
    /// inside the envelope's Body, and takes are XPath.
    #[serde(default)]
    pub soap: Option<Soap>,
}

/// How a SOAP target's envelopes are made.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Soap {
    #[serde(default)]
    pub version: SoapVersion,
    /// Prefix = namespace URI, declared on the envelope for the bodies to use.
    #[serde(default)]
    pub namespaces: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum SoapVersion {
    /// `text/xml` with a `SOAPAction` header.
    #[default]
    #[serde(rename = "1.1")]
    V11,
    /// `application/soap+xml` with the action as a parameter.
    #[serde(rename = "1.2")]
    V12,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// The product's name, for messages.
    pub title: String,
    /// The mapped field that is the user's principal in the target (its login).
    pub principal: String,
    /// The target id of a created user when the create's answer gave none (a template;
    /// default: the principal).
    #[serde(default)]
    pub id: Option<Spanned>,
    /// What a rename does in the target that an administrator should know.
    #[serde(default)]
    pub rename_note: Option<String>,
    /// Whether a create is preceded by the lookup (default true, when there is one).
    /// False for a target whose create answers conflict for a principal it holds: the
    /// create then finds the user, runs `adopt`, and adopts it, and the call is saved.
    #[serde(default = "yes")]
    pub lookup_first: bool,
}

fn yes() -> bool {
    true
}

/// How the bridge signs in to the target.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// No credentials (a target behind a trusted gateway).
    #[default]
    None,
    /// HTTP Basic with the connector's `username` and `password`.
    Basic,
    /// `Authorization: Bearer` with the connector's `secret`.
    Bearer,
    /// OAuth 2.0 client credentials: the connector's `username` is the client id and its
    /// `password` the client secret; the token is renewed when it expires or is refused.
    Oauth2 {
        /// The token endpoint: absolute, or a path under the connector's `url`.
        token_url: String,
        #[serde(default)]
        scope: Option<String>,
    },
    /// A sign-in call (one of `[calls]`) whose answer gives a token (`take.token`);
    /// templates place it as `{{ token }}`, in a header or the body. Renewed when an
    /// answer reads as `reauth`.
    Signin { call: String },
}

impl Auth {
    /// Whether a refused credential can be renewed by signing in again.
    pub fn renews(&self) -> bool {
        matches!(self, Auth::Oauth2 { .. } | Auth::Signin { .. })
    }
}

/// What every call carries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Header name = template.
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned>,
    /// Keys every JSON object body carries (a key the call gives itself wins; one that is
    /// undefined is left out): `auth = "{{ token }}"` for a target that wants the token
    /// in the body.
    #[serde(default)]
    pub body: Option<toml::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// One request to the target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    pub method: Method,
    /// A template: a path under the connector's `url` (each value placed in it is
    /// percent-encoded).
    pub path: Spanned,
    /// An expression: the call is made only when it is true.
    #[serde(default)]
    pub when: Option<Spanned>,
    /// Query parameter = template (a parameter whose value is undefined is left out).
    #[serde(default)]
    pub query: BTreeMap<String, Spanned>,
    /// Header name = template, over `[request] headers`.
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned>,
    /// A JSON body: a table whose strings are templates. A string that is one `{{ … }}`
    /// gives its value as it is (a list, a number, null); one that is undefined leaves
    /// its key out.
    #[serde(default)]
    pub body: Option<toml::Value>,
    /// Values to take from the answer: name = a JSONPath. `id` is the target id, `token`
    /// the sign-in token; every value taken is `taken.NAME` in later calls.
    #[serde(default)]
    pub take: BTreeMap<String, Spanned>,
    /// Rules for this call's answers, tried before the file's `[[answers]]`.
    #[serde(default)]
    pub answers: Vec<Rule>,
    /// A SOAP call's action (the SOAPAction header, or the action parameter in 1.2).
    #[serde(default)]
    pub action: Option<String>,
}

/// What an answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Success,
    /// The target holds no such user: a lookup finds nothing, a delete is done.
    NotFound,
    /// The target holds a conflicting user: a create adopts it, where it can be looked up.
    Conflict,
    /// Try again later (with the answer's Retry-After, if any).
    Retry,
    /// The target refused the change itself: trying again will not help.
    Refused,
    /// The credential expired: sign in again and repeat the call once.
    Reauth,
}

/// One way of reading an answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// An expression over `status`, `body` (the JSON answer, if it is JSON), `text` and
    /// `headers` (lower-case names).
    pub when: Spanned,
    pub is: Verdict,
    /// A template: what the administrator is shown.
    #[serde(default)]
    pub message: Option<Spanned>,
}

/// One operation: a call's name, or several made in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Names {
    One(String),
    Many(Vec<String>),
}

/// An operation's calls, with where the file names them.
pub type Steps = toml::Spanned<Names>;

/// The names of an operation's calls, in order.
pub fn names(steps: &Steps) -> Vec<&str> {
    match steps.get_ref() {
        Names::One(s) => vec![s.as_str()],
        Names::Many(v) => v.iter().map(String::as_str).collect(),
    }
}

/// What the bridge does, and the calls that do it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operations {
    /// Finds a user by `principal`: takes `id`, or reads as not_found.
    pub lookup: Option<Steps>,
    pub create: Option<Steps>,
    /// With `changes` and `changed` (the changed fields only) and `user` (all of them).
    pub update: Option<Steps>,
    pub deactivate: Option<Steps>,
    pub reactivate: Option<Steps>,
    /// Without it a deleted user is deactivated.
    pub delete: Option<Steps>,
    /// After a create answered conflict and the lookup found the user: what makes the
    /// found user one to adopt (a soft-deleted user restored), before it is brought to
    /// the bridge's state.
    pub adopt: Option<Steps>,
    /// With `password`.
    pub password: Option<Steps>,
    /// Role changes in one go, with `add_roles` and `remove_roles`.
    pub roles: Option<Steps>,
    /// One role at a time, with `role`.
    pub add_role: Option<Steps>,
    pub remove_role: Option<Steps>,
    /// Reads a user by `principal` for reconcile: takes `id` and the mapped fields.
    pub read: Option<Steps>,
    /// Lists the target's users a page at a time, with `cursor` (none for the first
    /// page): takes `principals` (every match) and whatever `[list] next` needs.
    pub list: Option<Steps>,
}

impl Operations {
    /// Each operation the file gives, with its key.
    pub fn each(&self) -> Vec<(&'static str, &Steps)> {
        [
            ("lookup", &self.lookup),
            ("create", &self.create),
            ("update", &self.update),
            ("deactivate", &self.deactivate),
            ("reactivate", &self.reactivate),
            ("delete", &self.delete),
            ("adopt", &self.adopt),
            ("password", &self.password),
            ("roles", &self.roles),
            ("add_role", &self.add_role),
            ("remove_role", &self.remove_role),
            ("read", &self.read),
            ("list", &self.list),
        ]
        .into_iter()
        .filter_map(|(k, s)| s.as_ref().map(|s| (k, s)))
        .collect()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadSection {
    /// An expression over `taken`: whether the user read may sign in (true, false, or
    /// none where the answer does not tell). Default: `taken.active`, if taken.
    #[serde(default)]
    pub active: Option<Spanned>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSection {
    /// An expression over `taken` and `cursor`: the next page's cursor, or none (or
    /// undefined) after the last page.
    #[serde(default)]
    pub next: Option<Spanned>,
    /// Pages read at most, so a target that always answers a next page cannot hold
    /// reconcile forever.
    #[serde(default = "max_pages")]
    pub max_pages: u32,
}

impl Default for ListSection {
    fn default() -> ListSection {
        ListSection {
            next: None,
            max_pages: max_pages(),
        }
    }
}

fn max_pages() -> u32 {
    10_000
}

/// One problem in a definition file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Every problem found in a definition file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems {
    pub file: String,
    pub list: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.list.len();
        write!(
            f,
            "{n} problem{} in the connector definition {}:",
            if n == 1 { "" } else { "s" },
            self.file
        )?;
        for p in &self.list {
            write!(f, "\n    {p}")?;
        }
        Ok(())
    }
}

/// The names templates may use, besides `user.FIELD`.
pub const REQUEST_NAMES: &[&str] = &[
    "user",
    "principal",
    "old_principal",
    "scim_id",
    "target_id",
    "active",
    "changes",
    "changed",
    "roles",
    "groups",
    "add_roles",
    "remove_roles",
    "role",
    "password",
    "token",
    "taken",
    "options",
    "credentials",
    "omit",
    "random_password",
    "cursor",
];

/// The names an answer rule may use.
pub const ANSWER_NAMES: &[&str] = &[
    "status", "body", "text", "headers", "taken", "options", "omit", "fault", "xpath",
];

struct Checker<'a> {
    text: &'a str,
    doc: Option<toml_edit::ImDocument<&'a str>>,
    fields: &'a BTreeSet<String>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn say(&mut self, offset: usize, message: String) {
        let line = self.line(offset);
        self.problems.push(Problem { line, message });
    }

    /// Checks a template's syntax and the names it uses.
    fn template(&mut self, where_: &str, s: &Spanned, names: &[&str]) {
        let offset = s.span().start;
        self.source(where_, s.get_ref(), offset, names);
    }

    fn source(&mut self, where_: &str, source: &str, offset: usize, names: &[&str]) {
        match template::used_names(source) {
            Err(e) => self.say(offset, format!("{where_}: {e}")),
            Ok(used) => self.names(where_, offset, &used, names),
        }
    }

    fn expression(&mut self, where_: &str, s: &Spanned, names: &[&str]) {
        let offset = s.span().start;
        match template::expression_names(s.get_ref()) {
            Err(e) => self.say(offset, format!("{where_}: {e}")),
            Ok(used) => self.names(where_, offset, &used, names),
        }
    }

    fn names(&mut self, where_: &str, offset: usize, used: &BTreeSet<String>, names: &[&str]) {
        for name in used {
            let (head, rest) = match name.split_once('.') {
                Some((h, r)) => (h, Some(r)),
                None => (name.as_str(), None),
            };
            if !names.contains(&head) {
                self.say(
                    offset,
                    format!(
                        "{where_}: '{head}' is not something a template here can use (it can use {})",
                        names.join(", ")
                    ),
                );
            } else if matches!(head, "user" | "changed") {
                if let Some(field) = rest.map(|r| r.split('.').next().unwrap_or(r)) {
                    if !self.fields.contains(field) {
                        self.say(
                            offset,
                            format!(
                                "{where_}: '{field}' is not a mapped field (the fields are {})",
                                self.fields.iter().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        );
                    }
                }
            }
        }
    }

    /// The byte range of a key's value in the file (a table's from its header to the
    /// next one), or the whole file where it cannot be found.
    fn span_of(&self, path: &[&str]) -> std::ops::Range<usize> {
        let whole = 0..self.text.len();
        let Some(doc) = &self.doc else { return whole };
        let mut item = doc.as_item();
        let mut best = whole.clone();
        for k in path {
            let Some(next) = item.get(k) else { break };
            if let Some(span) = next
                .span()
                .or_else(|| next.as_table().and_then(|t| t.span()))
            {
                best = span;
            } else if let Some((key, _)) = item.as_table_like().and_then(|t| t.get_key_value(k)) {
                if let Some(span) = key.span() {
                    best = span.start..self.text.len();
                }
            }
            item = next;
        }
        best
    }

    fn body(&mut self, where_: &str, path: &[&str], v: &toml::Value) {
        let range = self.span_of(path);
        let (start, end) = (range.start, range.end.min(self.text.len()));
        let mut leaves = Vec::new();
        collect_strings(v, &mut leaves);
        for leaf in leaves {
            // A leaf's own line: where its text first appears inside the body.
            let offset = self.text[start..end]
                .find(leaf.as_str())
                .map(|i| start + i)
                .unwrap_or(start);
            self.source(where_, &leaf, offset, REQUEST_NAMES);
        }
    }
}

fn collect_strings(v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        toml::Value::Table(t) => t.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

impl Definition {
    /// Reads a definition and checks it against the connector's mapped fields (the file's
    /// `[attributes]` with the connector's overrides; None: the file's own).
    pub fn parse(
        file: &str,
        text: &str,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Definition, Problems> {
        let fail = |list: Vec<Problem>| Problems {
            file: file.to_string(),
            list,
        };
        let def: Definition = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(1);
            fail(vec![Problem {
                line,
                message: e.message().trim().to_string(),
            }])
        })?;
        let mut fields: BTreeSet<String> = def.attributes.keys().cloned().collect();
        for (k, v) in overrides {
            if v.trim().is_empty() {
                fields.remove(k);
            } else {
                fields.insert(k.clone());
            }
        }
        let problems = def.check(text, &fields);
        if problems.is_empty() {
            Ok(def)
        } else {
            Err(fail(problems))
        }
    }

    fn check(&self, text: &str, fields: &BTreeSet<String>) -> Vec<Problem> {
        let mut c = Checker {
            text,
            doc: toml_edit::ImDocument::parse(text).ok(),
            fields,
            problems: Vec::new(),
        };
        let top = |key: &str| {
            text.find(&format!("[{key}]"))
                .or_else(|| text.find(key))
                .unwrap_or(0)
        };
        if !fields.contains(&self.target.principal) {
            c.say(
                top("principal"),
                format!(
                    "target.principal: '{}' is not a mapped field (the fields are {})",
                    self.target.principal,
                    fields.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        if let Err(e) = crate::connectors::attrs::AttrMap::new(
            &self
                .attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
            &BTreeMap::new(),
        ) {
            c.say(top("attributes"), format!("attributes: {e}"));
        }
        if let Some(id) = &self.target.id {
            c.template("target.id", id, REQUEST_NAMES);
        }
        for (h, v) in &self.request.headers {
            c.template(&format!("request.headers.{h}"), v, REQUEST_NAMES);
        }
        if let Some(b) = &self.request.body {
            if self.soap.is_some() {
                c.say(
                    c.span_of(&["request", "body"]).start,
                    "request.body: a SOAP target's bodies are XML; put what each carries in it"
                        .into(),
                );
            }
            c.body("request.body", &["request", "body"], b);
        }
        for (name, call) in &self.calls {
            let at = format!("calls.{name}");
            c.template(&format!("{at}.path"), &call.path, REQUEST_NAMES);
            if let Some(w) = &call.when {
                c.expression(&format!("{at}.when"), w, REQUEST_NAMES);
            }
            for (k, v) in call.query.iter().chain(&call.headers) {
                c.template(&format!("{at}.{k}"), v, REQUEST_NAMES);
            }
            let soap = self.soap.is_some();
            if soap {
                if let Some(b) = &call.body {
                    let path = ["calls", name.as_str(), "body"];
                    let at_body = c.span_of(&path).start;
                    match b {
                        toml::Value::String(xml) => {
                            c.source(&format!("{at}.body"), xml, at_body, REQUEST_NAMES)
                        }
                        _ => c.say(
                            at_body,
                            format!("{at}.body: a SOAP call's body is the XML inside the envelope's Body, as a string"),
                        ),
                    }
                }
            } else if call.action.is_some() {
                c.say(
                    call.path.span().start,
                    format!("{at}.action: only a SOAP call has an action (add a [soap] section)"),
                );
            }
            if let (false, Some(b)) = (soap, &call.body) {
                let path = ["calls", name.as_str(), "body"];
                if !matches!(b, toml::Value::Table(_) | toml::Value::Array(_)) {
                    let at_body = c.span_of(&path).start;
                    c.say(
                        at_body,
                        format!("{at}.body: a table (the JSON object to send) or a list"),
                    );
                }
                c.body(&format!("{at}.body"), &path, b);
            }
            if call.body.is_some() && call.method == Method::Get {
                c.say(call.path.span().start, format!("{at}: a GET sends no body"));
            }
            for (k, p) in &call.take {
                if soap {
                    if let Err(e) = super::xpath::check(p.get_ref()) {
                        c.say(
                            p.span().start,
                            format!("{at}.take.{k}: '{}' is not an XPath: {e}", p.get_ref()),
                        );
                    }
                } else if let Err(e) = serde_json_path::JsonPath::parse(p.get_ref()) {
                    c.say(
                        p.span().start,
                        format!("{at}.take.{k}: '{}' is not a JSONPath: {e}", p.get_ref()),
                    );
                }
            }
            for r in &call.answers {
                rule(&mut c, &format!("{at}.answers"), r);
            }
        }
        for r in &self.answers {
            rule(&mut c, "answers", r);
        }
        if let Some(a) = &self.read.active {
            c.expression("read.active", a, &["taken", "options"]);
        }
        if let Some(n) = &self.list.next {
            c.expression("list.next", n, &["taken", "cursor", "options", "omit"]);
        }
        if self.operations.list.is_some() && self.list.next.is_none() {
            c.say(
                top("[operations]"),
                "operations.list needs [list] next: how to ask for the page after this one (none after the last)".into(),
            );
        }
        // Every call an operation names is there.
        for (op, steps) in self.operations.each() {
            for name in names(steps) {
                if !self.calls.contains_key(name) {
                    c.say(
                        steps.span().start,
                        format!(
                            "operations.{op}: there is no [calls.{}] (the calls are {})",
                            name,
                            self.calls.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
        }
        let ops = top("[operations]");
        let o = &self.operations;
        for (key, present, why) in [
            (
                "create",
                o.create.is_some(),
                "a new user could not be provisioned",
            ),
            (
                "update",
                o.update.is_some(),
                "a change or a rename could not be sent",
            ),
            (
                "deactivate",
                o.deactivate.is_some(),
                "a deprovisioned user would keep access",
            ),
            (
                "reactivate",
                o.reactivate.is_some(),
                "a user deactivated and then restored could not sign in again",
            ),
        ] {
            if !present {
                c.say(
                    ops,
                    format!("operations.{key} is required: without it {why}"),
                );
            }
        }
        if o.add_role.is_some() != o.remove_role.is_some() {
            c.say(
                ops,
                "operations: add_role and remove_role come together (a role given must be one that can be taken away)".into(),
            );
        }
        if o.adopt.is_some() && o.lookup.is_none() {
            c.say(
                ops,
                "operations.lookup is required with adopt: a user is found before it is adopted"
                    .into(),
            );
        }
        if o.read.is_some() && o.lookup.is_none() {
            c.say(
                ops,
                "operations.lookup is required with read: reconcile finds a user before it reads it".into(),
            );
        }
        if let Auth::Signin { call } = &self.auth {
            match self.calls.get(call) {
                None => c.say(
                    top("[auth]"),
                    format!("auth.call: there is no [calls.{call}]"),
                ),
                Some(cl) if !cl.take.contains_key("token") => c.say(
                    cl.path.span().start,
                    format!("calls.{call}: a sign-in call takes the token (take.token = \"$...\")"),
                ),
                Some(_) => {}
            }
        }
        c.problems
    }
}

fn rule(c: &mut Checker<'_>, at: &str, r: &Rule) {
    c.expression(&format!("{at}.when"), &r.when, ANSWER_NAMES);
    if let Some(m) = &r.message {
        c.template(&format!("{at}.message"), m, ANSWER_NAMES);
    }
}
