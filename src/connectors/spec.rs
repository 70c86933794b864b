//! What a `[[connector]]` table says: the connector's kind, how the SCIM side waits for
//! it, where the target is and how to sign in, and how SCIM attributes map to its fields.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::secret::{redacted_url, Secret};

/// The kinds of target this build can deliver to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    Webhook,
    OpenIam,
    Pyramid,
    EthosCe,
    Itron,
    EntSso,
    /// A target described in a file (`definition`): JSON over HTTP.
    Http,
    /// A target described in a file with a `[soap]` section: SOAP 1.1 or 1.2 over HTTP.
    Soap,
    /// Another SCIM 2.0 service provider.
    Scim,
    /// An LDAP directory.
    Ldap,
}

impl ConnectorKind {
    pub const ALL: [ConnectorKind; 10] = [
        ConnectorKind::Webhook,
        ConnectorKind::OpenIam,
        ConnectorKind::Pyramid,
        ConnectorKind::EthosCe,
        ConnectorKind::Itron,
        ConnectorKind::EntSso,
        ConnectorKind::Http,
        ConnectorKind::Soap,
        ConnectorKind::Scim,
        ConnectorKind::Ldap,
    ];

    /// The name a settings file gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Webhook => "webhook",
            ConnectorKind::OpenIam => "openiam",
            ConnectorKind::Pyramid => "pyramid",
            ConnectorKind::EthosCe => "ethosce",
            ConnectorKind::Itron => "itron",
            ConnectorKind::EntSso => "entsso",
            ConnectorKind::Http => "http",
            ConnectorKind::Soap => "soap",
            ConnectorKind::Scim => "scim",
            ConnectorKind::Ldap => "ldap",
        }
    }

    /// The product's own name, for messages.
    pub fn title(self) -> &'static str {
        match self {
            ConnectorKind::Webhook => "a webhook",
            ConnectorKind::OpenIam => "OpenIAM",
            ConnectorKind::Pyramid => "Pyramid",
            ConnectorKind::EthosCe => "EthosCE",
            ConnectorKind::Itron => "Itron",
            ConnectorKind::EntSso => "ENTSSO",
            ConnectorKind::Http | ConnectorKind::Soap => "a described target",
            ConnectorKind::Scim => "a SCIM service",
            ConnectorKind::Ldap => "an LDAP directory",
        }
    }

    /// Whether the target is described in a file (`definition`), not built in.
    pub fn is_described(self) -> bool {
        matches!(self, ConnectorKind::Http | ConnectorKind::Soap)
    }

    /// Every kind's name, for an error that lists them.
    pub fn names() -> String {
        ConnectorKind::ALL.map(ConnectorKind::as_str).join(", ")
    }
}

impl fmt::Display for ConnectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ConnectorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<ConnectorKind, String> {
        ConnectorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown kind '{s}' (known: {})", ConnectorKind::names()))
    }
}

/// When a SCIM write answers, as far as this connector is concerned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Once the change and its jobs are committed.
    #[default]
    Async,
    /// Once this connector delivered it (or its sync timeout passed).
    Sync,
    /// Every call the connector would make is computed and recorded, none made; switched
    /// to another mode, the connector receives everything from its current state.
    DryRun,
}

/// One `[[connector]]` table.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    pub name: String,
    pub kind: ConnectorKind,
    pub url: String,
    /// An `http` connector: the file that describes the target (README, "Writing a
    /// connector"); a relative path is taken from the working directory.
    #[serde(default)]
    pub definition: Option<String>,
    /// A shared secret (webhook HMAC, an `http` target's bearer token): literal,
    /// `env:VAR` or `file:PATH`.
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub username: Option<String>,
    /// Literal, `env:VAR` or `file:PATH`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// `async` (answer once committed) or `sync`.
    #[serde(default)]
    pub mode: Mode,
    /// Seconds a call to the target may take.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// In sync mode, seconds a SCIM write waits for delivery before it answers anyway
    /// (the change stays queued).
    #[serde(default = "default_timeout")]
    pub sync_timeout_secs: u64,
    /// Attribute-mapping overrides: target field = SCIM path ("" leaves a field out).
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Group-to-role mapping: group displayName = the target's role.
    #[serde(default)]
    pub roles: std::collections::BTreeMap<String, String>,
    /// Scope: when set, only members of these groups (by displayName) are provisioned.
    #[serde(default)]
    pub scope_groups: Vec<String>,
    /// Drop a password that comes with a create (Okta sends a placeholder one).
    #[serde(default)]
    pub ignore_password_on_create: bool,
    /// When the connector first appears, send it every user and group the bridge holds.
    #[serde(default = "yes")]
    pub backfill: bool,
    /// The deletion brake: past this many deactivations and deletions within
    /// `deprovision_window_secs`, further ones are held for an administrator.
    #[serde(default)]
    pub deprovision_limit: Option<u32>,
    #[serde(default = "default_window")]
    pub deprovision_window_secs: u64,
    /// Reconcile: users read from the target at once.
    #[serde(default = "default_reconcile_concurrency")]
    pub reconcile_concurrency: usize,
    /// Reconcile: users read from the target per second, at most.
    #[serde(default = "default_reconcile_rate")]
    pub reconcile_requests_per_sec: f64,
    /// Settings of this kind of connector (see README).
    #[serde(default)]
    pub options: toml::Table,
}

impl ConnectorConfig {
    /// A connector with its defaults: async, 10 s timeouts, default mapping, everyone in scope.
    pub fn new(name: &str, kind: ConnectorKind, url: &str) -> ConnectorConfig {
        ConnectorConfig {
            name: name.into(),
            kind,
            url: url.into(),
            definition: None,
            secret: None,
            username: None,
            password: None,
            mode: Mode::Async,
            timeout_secs: default_timeout(),
            sync_timeout_secs: default_timeout(),
            attributes: Default::default(),
            roles: Default::default(),
            scope_groups: Vec::new(),
            ignore_password_on_create: false,
            backfill: true,
            deprovision_limit: None,
            deprovision_window_secs: default_window(),
            reconcile_concurrency: default_reconcile_concurrency(),
            reconcile_requests_per_sec: default_reconcile_rate(),
            options: Default::default(),
        }
    }

    pub fn with_credentials(mut self, username: &str, password: &str) -> ConnectorConfig {
        self.username = Some(username.into());
        self.password = Some(Secret::new(password));
        self
    }
}

/// A connector without its secrets: the password and secret redacted, and of its options
/// (which may hold a callback token) only the names.
impl fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &redacted_url(&self.url))
            .field("definition", &self.definition)
            .field("secret", &self.secret)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("mode", &self.mode)
            .field("timeout_secs", &self.timeout_secs)
            .field("attributes", &self.attributes)
            .field("roles", &self.roles)
            .field("scope_groups", &self.scope_groups)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn default_reconcile_concurrency() -> usize {
    4
}

fn default_reconcile_rate() -> f64 {
    20.0
}

fn default_window() -> u64 {
    3600
}

fn yes() -> bool {
    true
}

fn default_timeout() -> u64 {
    10
}
