//! What `serve` and `check-config` both refuse in settings that parsed: secrets that cannot
//! be resolved, addresses and URLs that cannot be used, connectors that cannot be built, and
//! attribute mappings to attributes the schema does not have. One function for both, so
//! check-config passes exactly the files serve starts with.

use std::collections::HashMap;

use super::load::{KeyPath, Problem, Source};
use super::{resolve_secret, ConnectorConfig, ConnectorKind, Settings};
use crate::scim::schema::Registry;

/// Every problem with settings that parsed, each where it is.
pub fn validate(s: &Settings, source: &Source) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut say = |key: KeyPath, message: String| out.push(source.problem(&key, message));
    if let Err(why) = check_address(&s.listen) {
        say(KeyPath::key("listen"), why);
    }
    if let Some(m) = &s.metrics_listen {
        if let Err(why) = check_address(m) {
            say(KeyPath::key("metrics_listen"), why);
        }
    }
    let scheme = s.database_url.split("://").next().unwrap_or_default();
    if !s.database_url.contains("://") || !matches!(scheme, "sqlite" | "postgres" | "postgresql") {
        say(
            KeyPath::key("database_url"),
            "the database is sqlite://PATH or postgres://USER@HOST/NAME".into(),
        );
    }
    if s.pool_size == 0 {
        say(KeyPath::key("pool_size"), "at least one connection".into());
    }
    if let Some(u) = &s.public_url {
        if !matches!(url::Url::parse(u), Ok(p) if p.scheme() == "http" || p.scheme() == "https") {
            say(
                KeyPath::key("public_url"),
                "an http(s) URL, such as https://scim.example.com".into(),
            );
        }
    }
    for p in &s.trusted_proxies {
        if p.trim().parse::<std::net::IpAddr>().is_err() {
            say(
                KeyPath::key("trusted_proxies"),
                format!("'{p}' is not an IP address"),
            );
        }
    }
    for (name, value) in [
        ("token", &s.token),
        ("admin_token", &s.admin_token),
        ("metrics_token", &s.metrics_token),
    ] {
        if let Some(v) = value {
            match resolve_secret(v.expose()) {
                Err(e) => say(KeyPath::key(name), e.to_string()),
                Ok(t) if t.expose().trim().is_empty() => {
                    say(KeyPath::key(name), "the token is empty".into())
                }
                Ok(_) => {}
            }
        }
    }
    if let Some(k) = &s.outbox_key {
        let checked = resolve_secret(k.expose())
            .map_err(|e| e.to_string())
            .and_then(|key| {
                crate::outbox::seal::Sealer::from_base64(key.expose())
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
        if let Err(why) = checked {
            say(KeyPath::key("outbox_key"), why);
        }
    }
    match (&s.tls_cert, &s.tls_key) {
        (Some(_), None) => say(
            KeyPath::key("tls_cert"),
            "tls_key is needed as well: both, or neither".into(),
        ),
        (None, Some(_)) => say(
            KeyPath::key("tls_key"),
            "tls_cert is needed as well: both, or neither".into(),
        ),
        (Some(cert), Some(key)) => {
            if let Err(why) = crate::tls::check(cert, key) {
                say(KeyPath::key(why.setting()), why.to_string());
            }
        }
        (None, None) => {}
    }
    if s.rate_limit_per_sec < 0.0 || !s.rate_limit_per_sec.is_finite() {
        say(
            KeyPath::key("rate_limit_per_sec"),
            "a number of requests per second, 0 or more".into(),
        );
    }
    for (i, issuer) in s.jwt_issuers.iter().enumerate() {
        if let Err(why) = issuer.resolved() {
            say(KeyPath::key("jwt_issuer").index(i), why);
        }
    }
    let registry = crate::bridge::schemas::load_registry(s.schemas_dir.as_deref());
    if let Err(e) = &registry {
        say(KeyPath::key("schemas_dir"), e.to_string());
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, c) in s.connectors.iter().enumerate() {
        let at = KeyPath::key("connector").index(i);
        let before = out.len();
        connector(c, &at, registry.as_ref().ok(), &mut |k, m| {
            out.push(source.problem(&k, m))
        });
        if let Some(first) = seen.insert(&c.name, i) {
            out.push(source.problem(
                &at.at("name"),
                format!(
                    "the name '{}' is already used by connector[{first}]",
                    c.name
                ),
            ));
        }
        // Anything else that stops the connector being built, said once.
        if out.len() == before {
            if let Err(why) = crate::connectors::build(c) {
                out.push(source.problem(&at.at("name"), format!("'{}': {why}", c.name)));
            }
        }
    }
    out.sort_by_key(|p| p.line().unwrap_or(usize::MAX));
    out
}

/// `HOST:PORT`, the host a name or an address.
fn check_address(text: &str) -> Result<(), String> {
    if text.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let bad = || format!("'{text}' is not an address to listen on, such as 127.0.0.1:8080");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() || host.contains(['/', ' ']) {
        return Err(bad());
    }
    Ok(())
}

fn connector(
    c: &ConnectorConfig,
    at: &KeyPath,
    registry: Option<&Registry>,
    say: &mut dyn FnMut(KeyPath, String),
) {
    let name = &c.name;
    if c.kind == ConnectorKind::Ldap {
        if !matches!(url::Url::parse(&c.url), Ok(u) if u.scheme() == "ldap" || u.scheme() == "ldaps")
        {
            say(
                at.at("url"),
                "an ldap:// (with options.starttls) or ldaps:// URL".into(),
            );
        }
    } else if !matches!(url::Url::parse(&c.url), Ok(u) if u.scheme() == "http" || u.scheme() == "https")
    {
        say(at.at("url"), "an http(s) URL".into());
    }
    for (field, value) in [("secret", &c.secret), ("password", &c.password)] {
        if let Some(v) = value {
            if let Err(e) = resolve_secret(v.expose()) {
                say(at.at(field), e.to_string());
            }
        }
    }
    // OpenIAM and ENTSSO may be reached without signing in (behind a gateway, say).
    let needs_login = matches!(
        c.kind,
        ConnectorKind::Pyramid | ConnectorKind::EthosCe | ConnectorKind::Itron
    );
    if needs_login && (c.username.is_none() || c.password.is_none()) {
        let missing = if c.username.is_none() {
            "username"
        } else {
            "password"
        };
        say(
            at.at("kind"),
            format!(
                "'{name}': {} signs in: {missing} is required",
                c.kind.title()
            ),
        );
    }
    if c.kind.is_described() {
        described(c, at, registry, say);
    }
    if let Err(why) = crate::connectors::check_attributes(c.kind, &c.attributes) {
        say(at.at("attributes"), why);
    } else if let Some(reg) = registry {
        for (field, path) in &c.attributes {
            if path.trim().is_empty() {
                continue;
            }
            if let Err(why) = known_attribute(reg, path) {
                say(at.at("attributes").at(field), why);
            }
        }
    }
    if let Err(why) = crate::connectors::check_options(c.kind, &c.options) {
        say(at.at("options"), super::in_words(&why));
    } else if c.kind == ConnectorKind::EntSso {
        match c.options.get("callback_token").and_then(|v| v.as_str()) {
            None => say(
                at.at("options"),
                format!("'{name}': an entsso connector needs options.callback_token, the bearer token ENTSSO's completion callbacks present"),
            ),
            Some(t) => {
                if let Err(e) = resolve_secret(t) {
                    say(at.at("options").at("callback_token"), e.to_string());
                }
            }
        }
    }
    if c.deprovision_limit == Some(0) {
        say(
            at.at("deprovision_limit"),
            "at least 1: the number of deactivations and deletions allowed per window".into(),
        );
    }
    if !(1..=64).contains(&c.reconcile_concurrency) {
        say(
            at.at("reconcile_concurrency"),
            "from 1 to 64: the users reconcile reads from the target at once".into(),
        );
    }
    if !(c.reconcile_requests_per_sec.is_finite() && c.reconcile_requests_per_sec > 0.0) {
        say(
            at.at("reconcile_requests_per_sec"),
            "more than 0: the users reconcile reads from the target per second".into(),
        );
    }
    if c.kind == ConnectorKind::Webhook && !c.scope_groups.is_empty() {
        say(
            at.at("scope_groups"),
            "scope_groups applies to vendor connectors; a webhook receives every change".into(),
        );
    }
}

/// An `http` connector: its definition file, read and checked whole (each problem with
/// the file's line), and what the connector's table must give for it.
fn described(
    c: &ConnectorConfig,
    at: &KeyPath,
    registry: Option<&Registry>,
    say: &mut dyn FnMut(KeyPath, String),
) {
    use crate::connectors::declared::definition::Auth;
    use crate::connectors::DefinitionError;
    let def = match crate::connectors::definition(c) {
        Ok(def) => def,
        Err(DefinitionError::Problems(p)) => {
            for problem in &p.list {
                say(
                    at.at("definition"),
                    format!("{} line {}: {}", p.file, problem.line, problem.message),
                );
            }
            return;
        }
        Err(e) => {
            say(at.at("definition"), e.to_string());
            return;
        }
    };
    let file = c.definition.as_deref().unwrap_or_default();
    if let Some(reg) = registry {
        for (field, path) in &def.attributes {
            if let Err(why) = known_attribute(reg, path) {
                say(
                    at.at("definition"),
                    format!("{file}: attributes.{field}: {why}"),
                );
            }
        }
    }
    let needs: &[&str] = match def.auth {
        Auth::Basic | Auth::Oauth2 { .. } => &["username", "password"],
        Auth::Bearer => &["secret"],
        Auth::None | Auth::Signin { .. } => &[],
    };
    for key in needs {
        let given = match *key {
            "username" => c.username.is_some(),
            "password" => c.password.is_some(),
            _ => c.secret.is_some(),
        };
        if !given {
            say(
                at.at("kind"),
                format!("'{}': {file} signs in with {key}, which is not set", c.name),
            );
        }
    }
    let o = &def.operations;
    if !c.roles.is_empty() && o.roles.is_none() && o.add_role.is_none() {
        say(
            at.at("roles"),
            format!("'{}': {file} has no roles or add_role operation, so these roles would never be given", c.name),
        );
    }
}

/// Whether a mapping's SCIM path names an attribute of the User schema or an extension.
fn known_attribute(reg: &Registry, path: &str) -> Result<(), String> {
    let pointer = crate::connectors::attrs::Pointer::parse(path)?;
    let (urn, attr, sub) = pointer.parts();
    let rt = reg
        .resource_type("User")
        .ok_or_else(|| "the schemas have no User resource type".to_string())?;
    let schema = match urn {
        None => reg.core_schema(rt).map_err(|e| e.to_string())?,
        Some(u) => match reg.core_schema(rt) {
            Ok(core) if core.id.eq_ignore_ascii_case(u) => core,
            _ => reg
                .extension(rt, u)
                .ok_or_else(|| format!("'{u}' is not a schema of User"))?,
        },
    };
    let def = schema
        .attr(attr)
        .ok_or_else(|| format!("'{path}': User has no attribute '{attr}'"))?;
    if let Some(sub) = sub {
        def.sub(sub)
            .ok_or_else(|| format!("'{path}': '{attr}' has no sub-attribute '{sub}'"))?;
    }
    Ok(())
}
