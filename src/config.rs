//! Settings: defaults, then the TOML file of `--config`, then environment variables, then
//! command-line flags. Secrets are kept out of `Debug` output.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{name} = '{value}' is not valid: {why}")]
    Env {
        name: String,
        value: String,
        why: String,
    },
}

pub use crate::secret::{redacted_url, resolve_secret, Secret, SecretError};

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address to listen on (SCIM_BRIDGE_LISTEN).
    pub listen: String,
    /// `sqlite://PATH` or `postgres://...` (DATABASE_URL).
    pub database_url: String,
    /// Connections in the database pool.
    pub pool_size: u32,
    /// Largest request body accepted, in bytes (SCIM_BRIDGE_MAX_BODY_BYTES).
    pub max_body_bytes: usize,
    /// Most resources one list response carries.
    pub max_results: u64,
    /// Most stored bytes one list page renders: a page that would hold more holds fewer
    /// resources, and the client pages on (itemsPerPage, or the next cursor).
    pub max_page_bytes: usize,
    /// A folder laid out like scim-schemas/ whose documents add to or override the
    /// embedded ones (SCIM_BRIDGE_SCHEMAS_DIR).
    pub schemas_dir: Option<PathBuf>,
    /// The public base URL, such as `https://scim.example.com`, for `meta.location`; when
    /// unset it is taken from each request (SCIM_BRIDGE_PUBLIC_URL).
    pub public_url: Option<String>,
    /// A SCIM bearer token accepted as well as stored ones (SCIM_BRIDGE_TOKEN).
    pub token: Option<Secret>,
    /// Seconds that requests in flight get to finish after SIGTERM or SIGINT.
    pub shutdown_timeout_secs: u64,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Whether a group PATCH without `attributes` answers 200 with the group (true) or 204.
    pub group_patch_returns_resource: bool,
    /// Most operations in one /Bulk request (advertised as bulk.maxOperations).
    pub bulk_max_operations: usize,
    /// Largest /Bulk body, in bytes (advertised as bulk.maxPayloadSize).
    pub bulk_max_payload_bytes: usize,
    /// The admin API's token (SCIM_BRIDGE_ADMIN_TOKEN), accepted besides stored admin tokens.
    pub admin_token: Option<Secret>,
    /// Outbox worker threads.
    pub outbox_workers: usize,
    /// Attempts before a job is dead.
    pub outbox_max_attempts: i32,
    /// Age after which a failing job is dead, in seconds.
    pub outbox_max_age_secs: u64,
    /// The first retry delay, in milliseconds; each retry doubles it.
    pub outbox_base_delay_ms: u64,
    /// The longest retry delay, in milliseconds.
    pub outbox_max_delay_ms: u64,
    /// Seconds a claimed job stays reserved to its worker; after a crash, another process
    /// takes it over once this has passed.
    pub outbox_lease_secs: u64,
    /// The key that seals passwords waiting in the outbox: 32 bytes in base64, literal,
    /// `env:VAR` or `file:PATH` (SCIM_BRIDGE_OUTBOX_KEY). Unset, a key is made at start and
    /// passwords still queued at a restart cannot be delivered.
    pub outbox_key: Option<Secret>,
    /// Days the mappings of a deleted resource stay visible to administrators.
    pub deleted_retention_days: u64,
    /// Seconds a request's body may take to arrive after its headers; then 408
    /// (SCIM_BRIDGE_BODY_TIMEOUT_SECS).
    pub body_timeout_secs: u64,
    /// Addresses of reverse proxies whose `Forwarded` and `X-Forwarded-*` headers are
    /// believed (for `meta.location`); from anyone else they are ignored.
    pub trusted_proxies: Vec<String>,
    /// Target systems, as `[[connector]]` tables.
    #[serde(rename = "connector")]
    pub connectors: Vec<ConnectorConfig>,
    /// Outside issuers whose JWT bearer tokens are accepted, as `[[jwt_issuer]]` tables.
    #[serde(rename = "jwt_issuer")]
    pub jwt_issuers: Vec<JwtIssuerConfig>,
    /// The request budget of each credential, in requests per second; 0 (the default)
    /// turns budgets off (SCIM_BRIDGE_RATE_LIMIT_PER_SEC).
    pub rate_limit_per_sec: f64,
    /// How many requests a credential may make at once beyond its rate
    /// (SCIM_BRIDGE_RATE_LIMIT_BURST).
    pub rate_limit_burst: u32,
}

/// Every setting, with secrets redacted (the database URL's password too).
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database_url", &redacted_url(&self.database_url))
            .field("pool_size", &self.pool_size)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_results", &self.max_results)
            .field("max_page_bytes", &self.max_page_bytes)
            .field("schemas_dir", &self.schemas_dir)
            .field("public_url", &self.public_url)
            .field("token", &self.token)
            .field("shutdown_timeout_secs", &self.shutdown_timeout_secs)
            .field("workers", &self.workers)
            .field(
                "group_patch_returns_resource",
                &self.group_patch_returns_resource,
            )
            .field("bulk_max_operations", &self.bulk_max_operations)
            .field("bulk_max_payload_bytes", &self.bulk_max_payload_bytes)
            .field("admin_token", &self.admin_token)
            .field("outbox_workers", &self.outbox_workers)
            .field("outbox_max_attempts", &self.outbox_max_attempts)
            .field("outbox_max_age_secs", &self.outbox_max_age_secs)
            .field("outbox_base_delay_ms", &self.outbox_base_delay_ms)
            .field("outbox_max_delay_ms", &self.outbox_max_delay_ms)
            .field("outbox_lease_secs", &self.outbox_lease_secs)
            .field("outbox_key", &self.outbox_key)
            .field("body_timeout_secs", &self.body_timeout_secs)
            .field("deleted_retention_days", &self.deleted_retention_days)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("connectors", &self.connectors)
            .field("jwt_issuers", &self.jwt_issuers)
            .field("rate_limit_per_sec", &self.rate_limit_per_sec)
            .field("rate_limit_burst", &self.rate_limit_burst)
            .finish()
    }
}

pub use crate::bridge::jwt::{JwtIssuerConfig, ENTRA_AUDIENCE, JWT_ALGORITHMS};
pub use crate::connectors::spec::{ConnectorConfig, ConnectorKind, Mode};

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://scim-bridge.db".into(),
            pool_size: 8,
            max_body_bytes: 1024 * 1024,
            max_results: 1000,
            max_page_bytes: crate::bridge::resources::DEFAULT_PAGE_BYTES,
            schemas_dir: None,
            public_url: None,
            token: None,
            shutdown_timeout_secs: 30,
            workers: 0,
            group_patch_returns_resource: false,
            bulk_max_operations: 1000,
            bulk_max_payload_bytes: 1024 * 1024,
            admin_token: None,
            outbox_workers: 2,
            outbox_max_attempts: 10,
            outbox_max_age_secs: 24 * 3600,
            outbox_base_delay_ms: 1000,
            outbox_max_delay_ms: 600_000,
            outbox_lease_secs: 30,
            outbox_key: None,
            body_timeout_secs: 30,
            deleted_retention_days: 30,
            trusted_proxies: Vec::new(),
            connectors: Vec::new(),
            jwt_issuers: Vec::new(),
            rate_limit_per_sec: 0.0,
            rate_limit_burst: 20,
        }
    }
}

impl Settings {
    /// Reads the TOML file, if any, over the defaults.
    pub fn from_file(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let Some(path) = path else {
            return Ok(Settings::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        // toml's Display quotes the offending line, which may hold a secret: the line
        // number and the message only.
        toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            ConfigError::Parse {
                path: path.display().to_string(),
                message: match line {
                    Some(l) => format!("line {l}: {}", e.message().trim()),
                    None => e.message().trim().to_string(),
                },
            }
        })
    }

    /// Applies environment variables over what the file said.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("SCIM_BRIDGE_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = get("DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = get("SCIM_BRIDGE_MAX_BODY_BYTES") {
            self.max_body_bytes =
                v.parse()
                    .map_err(|e: std::num::ParseIntError| ConfigError::Env {
                        name: "SCIM_BRIDGE_MAX_BODY_BYTES".into(),
                        value: v.clone(),
                        why: e.to_string(),
                    })?;
        }
        if let Some(v) = get("SCIM_BRIDGE_SCHEMAS_DIR") {
            self.schemas_dir = Some(v.into());
        }
        if let Some(v) = get("SCIM_BRIDGE_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = get("SCIM_BRIDGE_TOKEN").filter(|v| !v.is_empty()) {
            self.token = Some(Secret::new(v));
        }
        if let Some(v) = get("SCIM_BRIDGE_ADMIN_TOKEN").filter(|v| !v.is_empty()) {
            self.admin_token = Some(Secret::new(v));
        }
        if let Some(v) = get("SCIM_BRIDGE_OUTBOX_KEY").filter(|v| !v.is_empty()) {
            self.outbox_key = Some(Secret::new(v));
        }
        if let Some(v) = get("SCIM_BRIDGE_RATE_LIMIT_PER_SEC") {
            self.rate_limit_per_sec = v
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r >= 0.0)
                .ok_or_else(|| ConfigError::Env {
                    name: "SCIM_BRIDGE_RATE_LIMIT_PER_SEC".into(),
                    value: v.clone(),
                    why: "a number of requests per second, 0 or more".into(),
                })?;
        }
        if let Some(v) = get("SCIM_BRIDGE_BODY_TIMEOUT_SECS") {
            self.body_timeout_secs =
                v.parse()
                    .map_err(|e: std::num::ParseIntError| ConfigError::Env {
                        name: "SCIM_BRIDGE_BODY_TIMEOUT_SECS".into(),
                        value: v.clone(),
                        why: e.to_string(),
                    })?;
        }
        if let Some(v) = get("SCIM_BRIDGE_RATE_LIMIT_BURST") {
            self.rate_limit_burst =
                v.parse()
                    .map_err(|e: std::num::ParseIntError| ConfigError::Env {
                        name: "SCIM_BRIDGE_RATE_LIMIT_BURST".into(),
                        value: v.clone(),
                        why: e.to_string(),
                    })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file_and_secrets_do_not_print() {
        let mut s: Settings =
            toml::from_str("listen = \"0.0.0.0:9000\"\ntoken = \"abc\"").expect("parses");
        s.apply_env(|k| (k == "SCIM_BRIDGE_LISTEN").then(|| "127.0.0.1:1".to_string()))
            .expect("env");
        assert_eq!(s.listen, "127.0.0.1:1");
        assert!(!format!("{s:?}").contains("abc"));
    }

    #[test]
    fn an_unknown_setting_is_an_error() {
        assert!(toml::from_str::<Settings>("lisen = \"x\"").is_err());
    }
}

/// One problem `check-config` found, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
struct CheckFile {
    #[serde(default)]
    connector: Vec<CheckConnector>,
    #[serde(default)]
    jwt_issuer: Vec<toml::Spanned<JwtIssuerConfig>>,
    #[serde(default)]
    token: Option<toml::Spanned<String>>,
    #[serde(default)]
    admin_token: Option<toml::Spanned<String>>,
    #[serde(default)]
    outbox_key: Option<toml::Spanned<String>>,
}

#[derive(Deserialize)]
struct CheckConnector {
    name: toml::Spanned<String>,
    kind: toml::Spanned<String>,
    url: toml::Spanned<String>,
    #[serde(default)]
    secret: Option<toml::Spanned<String>>,
    #[serde(default)]
    password: Option<toml::Spanned<String>>,
    #[serde(default)]
    mode: Option<toml::Spanned<String>>,
    #[serde(default)]
    attributes: Option<toml::Spanned<toml::Table>>,
    #[serde(default)]
    options: Option<toml::Spanned<toml::Table>>,
    #[serde(default)]
    scope_groups: Option<toml::Spanned<Vec<String>>>,
}

/// Checks a settings file: its syntax and types, then each connector. Secrets are
/// resolved to prove they can be, and never shown.
pub fn check_file(text: &str) -> Vec<Problem> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let problem_of = |e: toml::de::Error| Problem {
        line: e.span().map(|s| line_of(s.start)).unwrap_or(1),
        message: e.message().trim().to_string(),
    };
    // The settings as `serve` reads them; a problem the checks below also find (an
    // unknown connector kind) is reported once, in their words.
    let typed = toml::from_str::<Settings>(text).err().map(problem_of);
    let file: CheckFile = match toml::from_str(text) {
        Ok(f) => f,
        Err(e) => return vec![typed.unwrap_or_else(|| problem_of(e))],
    };
    let mut problems = checks(&file, &line_of);
    if let Some(p) = typed {
        if !problems.iter().any(|q| q.line == p.line) {
            problems.push(p);
            problems.sort_by_key(|p| p.line);
        }
    }
    problems
}

/// The checks `serve` would fail at start: secrets that cannot be resolved, connectors and
/// issuers that cannot be built.
fn checks(file: &CheckFile, line_of: &dyn Fn(usize) -> usize) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(k) = &file.outbox_key {
        let checked = resolve_secret(k.get_ref())
            .map_err(|e| e.to_string())
            .and_then(|key| {
                crate::outbox::seal::Sealer::from_base64(key.expose())
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
        if let Err(why) = checked {
            problems.push(Problem {
                line: line_of(k.span().start),
                message: format!("outbox_key: {why}"),
            });
        }
    }
    for (name, value) in [("token", &file.token), ("admin_token", &file.admin_token)] {
        if let Some(v) = value {
            if let Err(e) = resolve_secret(v.get_ref()) {
                problems.push(Problem {
                    line: line_of(v.span().start),
                    message: format!("{name}: {e}"),
                });
            }
        }
    }
    for i in &file.jwt_issuer {
        if let Err(why) = i.get_ref().resolved() {
            problems.push(Problem {
                line: line_of(i.span().start),
                message: format!("jwt_issuer: {why}"),
            });
        }
    }
    let mut seen = std::collections::HashMap::new();
    for c in &file.connector {
        let at = |s: &toml::Spanned<String>| line_of(s.span().start);
        let name = c.name.get_ref();
        if let Some(first) = seen.insert(name.clone(), at(&c.name)) {
            problems.push(Problem {
                line: at(&c.name),
                message: format!("connector name '{name}' is already used on line {first}"),
            });
        }
        if c.kind.get_ref().parse::<ConnectorKind>().is_err() {
            problems.push(Problem {
                line: at(&c.kind),
                message: format!(
                    "connector '{name}': unknown kind '{}' (known: {})",
                    c.kind.get_ref(),
                    ConnectorKind::names()
                ),
            });
        }
        match url::Url::parse(c.url.get_ref()) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            _ => problems.push(Problem {
                line: at(&c.url),
                message: format!("connector '{name}': url must be an http(s) URL"),
            }),
        }
        for (field, value) in [("secret", &c.secret), ("password", &c.password)] {
            if let Some(v) = value {
                if let Err(e) = resolve_secret(v.get_ref()) {
                    let why = e.to_string();
                    problems.push(Problem {
                        line: at(v),
                        message: format!("connector '{name}': {field}: {why}"),
                    });
                }
            }
        }
        if let Some(m) = &c.mode {
            if m.get_ref() != "async" && m.get_ref() != "sync" {
                problems.push(Problem {
                    line: at(m),
                    message: format!("connector '{name}': mode is async or sync"),
                });
            }
        }
        let Ok(kind) = c.kind.get_ref().parse::<ConnectorKind>() else {
            continue;
        };
        let line_at = |span: std::ops::Range<usize>| line_of(span.start);
        if let Some(a) = &c.attributes {
            let overrides: std::collections::BTreeMap<String, String> = a
                .get_ref()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("\u{0}").to_string()))
                .collect();
            if let Err(why) = crate::connectors::check_attributes(kind, &overrides) {
                problems.push(Problem {
                    line: line_at(a.span()),
                    message: format!("connector '{name}': attributes: {why}"),
                });
            }
        }
        let options = c
            .options
            .as_ref()
            .map(|o| o.get_ref().clone())
            .unwrap_or_default();
        if let Err(why) = crate::connectors::check_options(kind, &options) {
            let line = c
                .options
                .as_ref()
                .map(|o| line_at(o.span()))
                .unwrap_or(at(&c.kind));
            problems.push(Problem {
                line,
                message: format!("connector '{name}': options: {why}"),
            });
        }
        if let Some(sg) = &c.scope_groups {
            if kind == ConnectorKind::Webhook && !sg.get_ref().is_empty() {
                problems.push(Problem {
                    line: line_at(sg.span()),
                    message: format!("connector '{name}': scope_groups applies to vendor connectors; a webhook receives every change"),
                });
            }
        }
    }
    problems
}

#[cfg(test)]
mod check_tests {
    use super::*;

    #[test]
    fn check_config_reports_each_problem_on_its_line_without_secrets() {
        let text = "listen = \"127.0.0.1:8080\"\n\n[[connector]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"http://x\"\nsecret = \"env:SCIM_BRIDGE_SURELY_UNSET_VAR\"\n\n[[connector]]\nname = \"a\"\nkind = \"ldap\"\nurl = \"not a url\"\n";
        let problems = check_file(text);
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![7, 10, 11, 12], "{problems:?}");
        assert!(problems[0]
            .message
            .contains("SCIM_BRIDGE_SURELY_UNSET_VAR is not set"));
    }

    #[test]
    fn an_outbox_key_that_is_not_32_bytes_of_base64_is_reported_on_its_line() {
        let problems = check_file("listen = \"x\"\noutbox_key = \"c2hvcnQ=\"\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, 2);
        assert!(problems[0].message.contains("32 bytes"));
        assert!(
            !problems[0].message.contains("c2hvcnQ"),
            "the key is never shown"
        );
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let problems = check_file("listen = \"x\"\nworkers = \"two\"\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 2);
    }
}
