//! Settings: defaults, then the TOML file of `--config`, then environment variables, then
//! command-line flags. Secrets are kept out of `Debug` output.

mod load;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use load::{
    env_name, in_words, unknown_variables, KeyPath, Place, Problem, Problems, Seg, KEYS,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Problems),
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
    /// Seconds a start waits for a database server that refuses connections (still
    /// starting, restarting), one log line per retry. An unknown host, a missing database
    /// or refused credentials fail at once.
    pub database_wait_secs: u64,
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
    /// Attempts before a job that keeps failing in a way a retry can help is dead; 0 (the
    /// default) sets no number: it is retried until `outbox_max_age_secs`.
    pub outbox_max_attempts: i32,
    /// Age after which a job that keeps failing is dead, in seconds (a day by default: an
    /// outage of hours loses nothing). A refusal a retry cannot help dies at once.
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
    /// `text` (the default) or `json`, one object a line (SCIM_BRIDGE_LOG_FORMAT); which lines
    /// come is RUST_LOG's choice.
    pub log_format: LogFormat,
    /// A PEM certificate chain: with `tls_key`, the bridge serves HTTPS itself.
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// A bearer token `/metrics` asks for (literal, `env:VAR` or `file:PATH`); unset, it
    /// answers anyone who can reach it.
    pub metrics_token: Option<Secret>,
    /// Serve `/metrics` on this address of its own (plain HTTP, such as 127.0.0.1:9464)
    /// rather than beside the SCIM API.
    pub metrics_listen: Option<String>,
    /// Days the audit trail keeps its records.
    pub audit_retention_days: u64,
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
    /// Failed authentications (a wrong token, a wrong client secret) a client
    /// address may make a second, past its burst; 0 turns the budget off
    /// (SCIM_BRIDGE_AUTH_FAILURES_PER_SEC).
    pub auth_failures_per_sec: f64,
    /// How many failed authentications an address may make at once
    /// (SCIM_BRIDGE_AUTH_FAILURES_BURST).
    pub auth_failures_burst: u32,
}

/// Every setting, with secrets redacted (the database URL's password too).
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database_url", &redacted_url(&self.database_url))
            .field("pool_size", &self.pool_size)
            .field("database_wait_secs", &self.database_wait_secs)
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
            .field("auth_failures_per_sec", &self.auth_failures_per_sec)
            .field("auth_failures_burst", &self.auth_failures_burst)
            .field("log_format", &self.log_format)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("metrics_token", &self.metrics_token)
            .field("metrics_listen", &self.metrics_listen)
            .field("audit_retention_days", &self.audit_retention_days)
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
            database_wait_secs: 30,
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
            outbox_max_attempts: 0,
            outbox_max_age_secs: 24 * 3600,
            outbox_base_delay_ms: 1000,
            outbox_max_delay_ms: 300_000,
            outbox_lease_secs: 30,
            outbox_key: None,
            body_timeout_secs: 30,
            deleted_retention_days: 30,
            trusted_proxies: Vec::new(),
            connectors: Vec::new(),
            jwt_issuers: Vec::new(),
            rate_limit_per_sec: 0.0,
            rate_limit_burst: 20,
            auth_failures_per_sec: 1.0,
            auth_failures_burst: 30,
            log_format: LogFormat::Text,
            tls_cert: None,
            tls_key: None,
            metrics_token: None,
            metrics_listen: None,
            audit_retention_days: 90,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human lines: time, level, target, message and fields.
    #[default]
    Text,
    /// One JSON object a line, for a log collector.
    Json,
}

impl Settings {
    /// The settings `serve` runs with: the file (if any), then the environment, then
    /// `adjust` (command-line flags), then every check. All problems are returned together.
    pub fn read(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        adjust: impl FnOnce(&mut Settings),
    ) -> Result<Settings, ConfigError> {
        let text = path
            .map(|p| {
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })
            })
            .transpose()?;
        let (loaded, mut problems, source) = load::load(text.as_deref(), env);
        let Some(mut settings) = loaded else {
            return Err(ConfigError::Invalid(Problems(problems)));
        };
        adjust(&mut settings);
        problems.extend(validate::validate(&settings, &source));
        if problems.is_empty() {
            Ok(settings)
        } else {
            problems.sort_by_key(|p| p.line().unwrap_or(usize::MAX));
            Err(ConfigError::Invalid(Problems(problems)))
        }
    }

    /// Every check `serve` makes, for settings built in code (tests, the demo).
    pub fn check(&self) -> Result<(), Problems> {
        let (_, _, source) = load::load(None, &|_| None);
        let problems = validate::validate(self, &source);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Problems(problems))
        }
    }
}

/// What `check-config` reports: every problem `serve` would refuse the file (and these
/// variables) for, each with its line or variable.
pub fn check(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<Problem> {
    let (loaded, mut problems, source) = load::load(Some(text), env);
    if let Some(settings) = loaded {
        problems.extend(validate::validate(&settings, &source));
        problems.sort_by_key(|p| p.line().unwrap_or(usize::MAX));
    }
    problems
}

/// [`check`] with no variables set.
pub fn check_file(text: &str) -> Vec<Problem> {
    check(text, &|_| None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s: Settings = toml::from_str("token = \"abc\"").expect("parses");
        assert!(!format!("{s:?}").contains("abc"));
    }

    #[test]
    fn check_config_reports_each_problem_on_its_line_without_secrets() {
        let text = "listen = \"127.0.0.1:8080\"\n\n[[connector]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"http://x\"\nsecret = \"env:SCIM_BRIDGE_SURELY_UNSET_VAR\"\n\n[[connector]]\nname = \"a\"\nkind = \"gopher\"\nurl = \"not a url\"\n";
        let problems = check_file(text);
        let lines: Vec<Option<usize>> = problems.iter().map(|p| p.line()).collect();
        // The kind no connector has, and in the same pass the name used twice and the URL.
        assert_eq!(lines, vec![Some(10), Some(11), Some(12)], "{problems:?}");
        assert!(problems[1]
            .message
            .contains("'gopher' is not one of the choices"));
        assert!(problems[0].message.contains("already used by connector[0]"));
        assert!(problems[2].message.contains("an http(s) URL"));
        let text = text.replace("gopher", "webhook");
        let problems = check_file(&text);
        let lines: Vec<Option<usize>> = problems.iter().map(|p| p.line()).collect();
        assert_eq!(lines, vec![Some(7), Some(10), Some(12)], "{problems:?}");
        assert!(problems[0]
            .message
            .contains("SCIM_BRIDGE_SURELY_UNSET_VAR is not set"));
    }

    #[test]
    fn an_outbox_key_that_is_not_32_bytes_of_base64_is_reported_on_its_line() {
        let problems = check_file("listen = \"127.0.0.1:1\"\noutbox_key = \"c2hvcnQ=\"\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line(), Some(2));
        assert!(problems[0].message.contains("32 bytes"));
        assert!(
            !problems[0].to_string().contains("c2hvcnQ"),
            "the key is never shown"
        );
    }

    #[test]
    fn what_serve_refuses_check_config_refuses() {
        let text = r#"listen = "not-an-address"
database_url = "mysql://x"

[[connector]]
name = "p"
kind = "pyramid"
url = "http://127.0.0.1:1"
attributes = { email = "nosuch.attr", name = "name.middle" }

[[connector]]
name = "e"
kind = "entsso"
url = "http://127.0.0.1:1"
username = "u"
password = "p"
"#;
        let problems = check_file(text);
        let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown.len(), 6, "{shown:#?}");
        assert!(shown[0].starts_with("line 1: listen: 'not-an-address' is not an address"));
        assert!(shown[1].starts_with("line 2: database_url:"));
        assert!(shown[2].starts_with("line 6: connector[0].kind: 'p': Pyramid signs in"));
        assert!(shown[3].contains(
            "line 8: connector[0].attributes.email: 'nosuch.attr': User has no attribute 'nosuch'"
        ));
        assert!(shown[4].contains("'name.middle': 'name' has no sub-attribute 'middle'"));
        assert!(
            shown[5].contains(
                "line 11: connector[1].kind: 'e': an entsso connector needs options.callback_token"
            ) || shown[5].contains("callback_token"),
            "{shown:#?}"
        );
        let err = Settings::read(
            None,
            &|k| (k == "SCIM_BRIDGE_LISTEN").then(|| "nowhere".into()),
            |_| (),
        )
        .expect_err("refused");
        assert!(
            err.to_string()
                .contains("SCIM_BRIDGE_LISTEN: 'nowhere' is not an address"),
            "{err}"
        );
    }
}
