//! Connectors: one module per target system, behind one trait. Vendor wire types stay
//! inside their module; the outbox sees only [`Connector`].

pub mod attrs;
pub mod declared;
pub mod dryrun;
pub mod entsso;
pub mod ethosce;
pub mod itron;
pub mod ldap;
pub mod openiam;
pub mod pyramid;
pub mod read;
pub mod scim;
pub mod spec;
pub mod target;
pub mod webhook;
pub mod xml;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::model::{Change, Event, Mapping, MappingState, ResourceKind};
use crate::secret::Secret;
pub use attrs::FieldChange;
pub use spec::{ConnectorConfig, ConnectorKind, Mode};

/// Why a delivery failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectorError {
    /// The target is down, overloaded or answered 5xx/429: try again later.
    #[error("{message}")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The target refused the change itself: trying again will not help.
    #[error("{0}")]
    Permanent(String),
    /// The target already holds a conflicting value (a duplicate email): permanent.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The target holds no such thing (its 404, its "not found" code): permanent, and for
    /// a delete the connector decides, having checked, whether that means done.
    #[error("{0}")]
    NotFound(String),
}

impl ConnectorError {
    pub fn retry(message: impl Into<String>) -> ConnectorError {
        ConnectorError::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }
}

/// What the bridge holds now about the resources a job touches, read with the job (for a
/// connector that [`Connector::reads`] it), so a delivery never calls back into the store
/// for them halfway through.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Known {
    /// The job's user as stored now, for a password or a user leaving scope (None once
    /// deleted, and for other events, whose change carries the document).
    pub resource: Option<Value>,
    /// A user job: the displayNames of the user's groups.
    pub groups: Vec<String>,
    /// A group job: the members it concerns (those it names; after a rename, all of them).
    pub members: Vec<String>,
    /// Those members' mappings in this connector.
    pub member_mappings: HashMap<String, Mapping>,
    /// Those members' groups (displayNames).
    pub member_groups: HashMap<String, Vec<String>>,
}

/// What a connector may still ask of the bridge while it delivers: the documents of
/// members joining a scope group, read one by one as each is provisioned (a group of
/// 100,000 joining is never held in memory at once), and where each then stands.
pub trait Context {
    /// A resource as stored now (None once deleted).
    fn resource(&self, kind: ResourceKind, id: &str) -> Result<Option<Value>, ConnectorError>;
    /// Records where another resource now stands in this target (a user provisioned
    /// because it joined a scope group).
    fn record(&self, resource_id: &str, outcome: &Outcome) -> Result<(), ConnectorError>;
}

/// One job, as a connector receives it.
#[derive(Clone)]
pub struct Delivery<'a> {
    pub job_id: i64,
    /// Unique across databases and time, the same on every delivery of this job.
    pub idempotency_key: &'a str,
    pub event: Event,
    pub resource_type: ResourceKind,
    pub resource_id: &'a str,
    /// What changed: read once from the job, as the bridge wrote it.
    pub change: &'a Change,
    /// What the bridge holds now about the resources the job touches (empty for a
    /// connector that does not read it).
    pub known: &'a Known,
    /// Where the resource stood in this target before (its target id, principal).
    pub mapping: Option<&'a Mapping>,
    /// The password of a `user.password_set` job, opened from the outbox.
    pub password: Option<&'a Secret>,
    pub ctx: &'a dyn Context,
}

/// What a delivery leaves in the mapping table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub target_id: Option<String>,
    pub principal: Option<String>,
    /// The mapping's state when not `synced`: `accepted` for a notification the target
    /// completes later.
    pub state: Option<MappingState>,
    /// A tracking id the target gave, to be completed by its callback.
    pub tracking_id: Option<String>,
    /// What was done in the target, for the admin view ("adopted existing user 42").
    pub note: Option<String>,
    /// In dry run: the calls the connector would have made (it made none).
    pub dry_run: Option<Vec<Value>>,
    /// Users that left the connector's last scope group with this (group) change: each
    /// gets a `user.left_scope` job of its own, which the deletion brake counts.
    pub left_scope: Vec<String>,
}

pub trait Connector: Send + Sync {
    fn kind(&self) -> &'static str;
    /// Whether the connector acts on this event; others are skipped and recorded.
    fn supports(&self, event: Event) -> bool;
    /// Whether a job of this event needs [`Known`] read with it (a vendor connector maps
    /// groups to roles and scope; a webhook sends the change as it is).
    fn reads(&self, _event: Event) -> bool {
        false
    }
    fn deliver(&self, delivery: &Delivery<'_>) -> Result<Outcome, ConnectorError>;
    /// Why reconcile cannot read this target back, or None where it can.
    fn unreadable(&self) -> Option<String> {
        Some(format!(
            "a {} target cannot be read back: it takes changes and answers nothing about what it holds",
            self.kind()
        ))
    }
    /// Reads one user in the target through the connector's own lookup calls and
    /// compares it with what the bridge would send.
    fn inspect(&self, _subject: &read::Subject<'_>) -> Result<read::Inspection, ConnectorError> {
        Err(ConnectorError::Permanent(
            self.unreadable().unwrap_or_default(),
        ))
    }
    /// Every principal the target holds, where it can list its users (None otherwise).
    fn principals(&self) -> Result<Option<Vec<String>>, ConnectorError> {
        Ok(None)
    }
}

/// A blocking HTTP client made on first use (in an outbox worker thread) and dropped on a
/// thread of its own: reqwest's blocking client may be neither made nor dropped inside an
/// async runtime, and the application is built inside one.
pub struct BlockingClient {
    timeout: Duration,
    client: std::sync::OnceLock<reqwest::blocking::Client>,
}

impl BlockingClient {
    pub fn new(timeout: Duration) -> BlockingClient {
        BlockingClient {
            timeout,
            client: std::sync::OnceLock::new(),
        }
    }

    pub fn get(&self) -> Result<&reqwest::blocking::Client, ConnectorError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let c = reqwest::blocking::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| ConnectorError::Permanent(format!("HTTP client: {e}")))?;
        Ok(self.client.get_or_init(|| c))
    }
}

impl Drop for BlockingClient {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            std::thread::spawn(move || drop(c));
        }
    }
}

/// Reads a `Retry-After` header given in seconds.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Classifies an HTTP status the common way: 429 and 5xx retryable, other 4xx permanent.
pub fn classify_status(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &str,
) -> ConnectorError {
    let message = format!(
        "{status}: {}",
        body.chars().take(300).collect::<String>().trim()
    );
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        ConnectorError::Retryable {
            message,
            retry_after: retry_after(headers),
        }
    } else {
        ConnectorError::Permanent(message)
    }
}

/// A transport failure (connection refused, timeout): always retryable.
pub fn transport(e: reqwest::Error) -> ConnectorError {
    ConnectorError::Retryable {
        message: format!("cannot reach the target: {e}"),
        retry_after: None,
    }
}

/// The default attribute mapping of a connector kind (target field, SCIM path).
pub fn defaults(kind: ConnectorKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        ConnectorKind::OpenIam => openiam::DEFAULTS,
        ConnectorKind::Pyramid => pyramid::DEFAULTS,
        ConnectorKind::EthosCe => ethosce::DEFAULTS,
        ConnectorKind::Itron => itron::DEFAULTS,
        ConnectorKind::EntSso => entsso::DEFAULTS,
        ConnectorKind::Scim => scim::DEFAULTS,
        ConnectorKind::Ldap => ldap::DEFAULTS,
        ConnectorKind::Webhook | ConnectorKind::Http | ConnectorKind::Soap => &[],
    }
}

fn options<T: serde::de::DeserializeOwned>(table: &toml::Table) -> Result<T, String> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| e.message().trim().to_string())
}

/// Checks a connector's `options` table against its kind.
pub fn check_options(kind: ConnectorKind, table: &toml::Table) -> Result<(), String> {
    match kind {
        ConnectorKind::OpenIam => options::<openiam::Options>(table)?.check(),
        ConnectorKind::Pyramid => options::<pyramid::Options>(table)?.check(),
        ConnectorKind::EthosCe => options::<ethosce::Options>(table).map(|_| ()),
        ConnectorKind::Itron => options::<itron::Options>(table).map(|_| ()),
        ConnectorKind::EntSso => options::<entsso::Options>(table)?.check(),
        ConnectorKind::Scim => options::<scim::Options>(table)?.check(),
        ConnectorKind::Ldap => options::<ldap::Options>(table)?.check(),
        // A described target's options are its templates' `options`.
        ConnectorKind::Http | ConnectorKind::Soap => Ok(()),
        ConnectorKind::Webhook if table.is_empty() => Ok(()),
        ConnectorKind::Webhook => Err(format!("a {kind} connector takes no options")),
    }
}

/// Checks attribute-mapping overrides: each a SCIM path, or "" to leave a field out.
pub fn check_attributes(
    kind: ConnectorKind,
    overrides: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    if kind == ConnectorKind::Webhook && !overrides.is_empty() {
        return Err("a webhook sends the whole resource; it has no attribute mapping".into());
    }
    if let Some((k, _)) = overrides.iter().find(|(_, v)| v.as_str() == "\u{0}") {
        return Err(format!("{k}: the value is a SCIM path in quotes"));
    }
    attrs::AttrMap::new(defaults(kind), overrides).map(|_| ())
}

/// A user-centric target behind the shared adapter, with the table's mappings and scope;
/// in dry run, over a target that records its calls instead of making them.
fn adapt<T: target::Target + 'static>(
    target: T,
    map: attrs::AttrMap,
    c: &ConnectorConfig,
) -> std::sync::Arc<dyn Connector> {
    let (roles, scope) = (c.roles.clone(), c.scope_groups.clone());
    if c.mode == Mode::DryRun {
        let inner: std::sync::Arc<dyn Connector> = std::sync::Arc::new(target::Adapter {
            target: dryrun::Recorder { inner: target },
            map,
            roles,
            scope,
        });
        return std::sync::Arc::new(dryrun::DryRun { inner });
    }
    std::sync::Arc::new(target::Adapter {
        target,
        map,
        roles,
        scope,
    })
}

/// A target whose users go through the Adapter (over a Recorder in dry run) and whose
/// groups its connector mirrors; in dry run one DryRun collects the calls of both.
fn mirrored<T, M>(
    target: &std::sync::Arc<T>,
    map: attrs::AttrMap,
    c: &ConnectorConfig,
    make: impl FnOnce(std::sync::Arc<dyn Connector>, bool) -> M,
) -> std::sync::Arc<dyn Connector>
where
    std::sync::Arc<T>: target::Target + 'static,
    M: target::MirrorsGroups + 'static,
{
    use std::sync::Arc;
    let (roles, scope) = (c.roles.clone(), c.scope_groups.clone());
    let dry_run = c.mode == Mode::DryRun;
    let users: Arc<dyn Connector> = if dry_run {
        Arc::new(target::Adapter {
            target: dryrun::Recorder {
                inner: Arc::clone(target),
            },
            map,
            roles,
            scope,
        })
    } else {
        Arc::new(target::Adapter {
            target: Arc::clone(target),
            map,
            roles,
            scope,
        })
    };
    let built: Arc<dyn Connector> = Arc::new(target::Mirrored(make(users, dry_run)));
    if dry_run {
        Arc::new(dryrun::DryRun { inner: built })
    } else {
        built
    }
}

/// A connector that is not a vendor target, in dry run: the request it would send.
fn record_whole(
    kind: ConnectorKind,
    built: std::sync::Arc<dyn Connector>,
) -> std::sync::Arc<dyn Connector> {
    let (call, supports): (&'static str, fn(Event) -> bool) = match kind {
        ConnectorKind::EntSso => ("SendNotification", |e| e == Event::UserPasswordSet),
        _ => ("POST", |_| true),
    };
    let inner: std::sync::Arc<dyn Connector> = std::sync::Arc::new(dryrun::WholeRecorder {
        kind: built.kind(),
        call,
        supports,
    });
    std::sync::Arc::new(dryrun::DryRun { inner })
}

/// Builds the connector a `[[connector]]` table describes.
pub fn build(c: &ConnectorConfig) -> Result<std::sync::Arc<dyn Connector>, String> {
    use crate::secret::resolve_secret;
    let secret = |v: &Option<Secret>| -> Result<Option<Secret>, String> {
        v.as_ref()
            .map(|s| resolve_secret(s.expose()))
            .transpose()
            .map_err(|e| e.to_string())
    };
    let timeout = Duration::from_secs(c.timeout_secs.max(1));
    let password = secret(&c.password)?;
    let auth = match (&c.username, &password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        _ => None,
    };
    check_options(c.kind, &c.options)?;
    if c.kind.is_described() {
        let def = definition(c).map_err(|e| e.to_string())?;
        let file_map: Vec<(&str, &str)> = def
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let map = attrs::AttrMap::new(&file_map, &c.attributes)?;
        let creds = declared::Credentials {
            username: c.username.clone(),
            password,
            secret: secret(&c.secret)?,
        };
        let options = serde_json::to_value(&c.options).map_err(|e| e.to_string())?;
        let target = declared::Declared::new(def, &c.url, creds, options, timeout);
        return Ok(adapt(target, map, c));
    }
    let map = attrs::AttrMap::new(defaults(c.kind), &c.attributes)?;
    let built = build_kind(c, timeout, auth, map, &secret)?;
    if c.mode == Mode::DryRun && matches!(c.kind, ConnectorKind::Webhook | ConnectorKind::EntSso) {
        return Ok(record_whole(c.kind, built));
    }
    Ok(built)
}

/// Why a connector's definition file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error(
        "an http or soap connector names the file that describes its target: definition = \"PATH\""
    )]
    Missing,
    #[error("{file} describes a SOAP target ([soap]): the connector's kind is \"soap\"")]
    SoapFile { file: String },
    #[error("{file} has no [soap] section: a SOAP target's definition needs one (or the kind is \"http\")")]
    NotSoap { file: String },
    #[error("cannot read the connector definition {file}: {error}")]
    Unreadable { file: String, error: std::io::Error },
    #[error(transparent)]
    Problems(#[from] declared::definition::Problems),
}

/// Reads and checks the definition an `http` connector names.
pub fn definition(
    c: &ConnectorConfig,
) -> Result<declared::definition::Definition, DefinitionError> {
    let file = c.definition.as_deref().ok_or(DefinitionError::Missing)?;
    let text = std::fs::read_to_string(file).map_err(|error| DefinitionError::Unreadable {
        file: file.to_string(),
        error,
    })?;
    let def = declared::definition::Definition::parse(file, &text, &c.attributes)?;
    match (c.kind, def.soap.is_some()) {
        (ConnectorKind::Http, true) => Err(DefinitionError::SoapFile { file: file.into() }),
        (ConnectorKind::Soap, false) => Err(DefinitionError::NotSoap { file: file.into() }),
        _ => Ok(def),
    }
}

type SecretOf<'a> = dyn Fn(&Option<Secret>) -> Result<Option<Secret>, String> + 'a;

fn build_kind(
    c: &ConnectorConfig,
    timeout: Duration,
    auth: Option<(String, Secret)>,
    map: attrs::AttrMap,
    secret: &SecretOf<'_>,
) -> Result<std::sync::Arc<dyn Connector>, String> {
    use std::sync::Arc;
    let need_auth = || {
        auth.clone()
            .ok_or_else(|| format!("a {} connector needs username and password", c.kind))
    };
    Ok(match c.kind {
        ConnectorKind::Webhook => Arc::new(
            webhook::Webhook::new(&c.url, secret(&c.secret)?, timeout)
                .map_err(|e| e.to_string())?,
        ),
        ConnectorKind::OpenIam => adapt(
            openiam::OpenIam::new(&c.url, auth.clone(), options(&c.options)?, timeout),
            map,
            c,
        ),
        ConnectorKind::Pyramid => {
            let (u, p) = need_auth()?;
            adapt(
                pyramid::Pyramid::new(&c.url, u, p, options(&c.options)?, timeout),
                map,
                c,
            )
        }
        ConnectorKind::EthosCe => {
            let (u, p) = need_auth()?;
            if !u.starts_with("restws") {
                return Err("EthosCE's service user name must begin with 'restws'".into());
            }
            adapt(
                ethosce::EthosCe::new(&c.url, u, p, options(&c.options)?, timeout),
                map,
                c,
            )
        }
        ConnectorKind::Itron => {
            let (u, p) = need_auth()?;
            adapt(
                itron::Itron::new(&c.url, u, p, options(&c.options)?, timeout),
                map,
                c,
            )
        }
        ConnectorKind::Http | ConnectorKind::Soap => {
            return Err("a described connector is built from its definition".into())
        }
        ConnectorKind::Ldap => {
            let target = Arc::new(ldap::LdapTarget::new(
                &c.url,
                c.username.clone(),
                auth.as_ref()
                    .map(|(_, p)| p.clone())
                    .or(secret(&c.password)?),
                options(&c.options)?,
                timeout,
            )?);
            mirrored(&target, map, c, |users, dry_run| ldap::Ldap {
                users,
                target: Arc::clone(&target),
                dry_run,
            })
        }
        ConnectorKind::Scim => {
            let target = Arc::new(scim::ScimTarget::new(
                &c.url,
                c.username.clone(),
                auth.as_ref().map(|(_, p)| p.clone()),
                secret(&c.secret)?,
                options(&c.options)?,
                timeout,
            )?);
            mirrored(&target, map, c, |users, dry_run| scim::Scim {
                users,
                target: Arc::clone(&target),
                dry_run,
            })
        }
        ConnectorKind::EntSso => Arc::new(entsso::EntSso::new(
            &c.url,
            auth.clone(),
            options(&c.options)?,
            map,
            timeout,
        )),
    })
}
