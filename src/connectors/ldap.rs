//! `ldap`: an LDAP directory (OpenLDAP, 389, any RFC 4511 server). Users are entries
//! (`inetOrgPerson` by default) named `RDN=principal,base_dn`, their attributes the
//! mapping's; the target id is the entry's `entryUUID` (RFC 4530), which a rename keeps.
//! A userName change is a modrdn, and the user's group memberships follow the new DN.
//! Deactivation, as configured: the server's account lock (`pwdAccountLockedTime` with
//! OpenLDAP's ppolicy, the default: the user can no longer bind), a move to another
//! subtree, or removal from every group. Passwords by the Password Modify extended
//! operation (RFC 3062; the server hashes), or as `userPassword`. Delete removes the user
//! from its groups and deletes the entry. Groups are `groupOfNames` (or
//! `groupOfUniqueNames`) under `groups_dn`, their members the users' DNs.
//!
//! Result codes: entryAlreadyExists (68) is a conflict (a create adopts the entry it
//! finds), noSuchObject (32) not found, busy (51), unavailable (52) and a lost connection
//! are retried, every other refusal is final with the server's diagnostic.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap3::{
    dn_escape, ldap_escape, LdapConn, LdapConnSettings, LdapError, Mod, Scope, SearchEntry,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::attrs::{text, FieldChange, Op};
use super::read::TargetUser;
use super::target::{member_delta, member_target_ids, Created, Target, User};
use super::{Connector, ConnectorError, Delivery, Outcome};
use crate::model::Event;
use crate::secret::Secret;

/// Default mapping: LDAP attribute = SCIM path.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("uid", "userName"),
    // cn is required by person: the userName, always there and so comparable.
    ("cn", "userName"),
    ("displayName", "displayName"),
    ("givenName", "name.givenName"),
    ("sn", "name.familyName"),
    ("mail", "emails.value"),
    ("title", "title"),
];

/// How a deactivated user is kept out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deactivate {
    /// The server's account lock: `lock_attribute` set to `lock_value` (by default
    /// OpenLDAP ppolicy's permanent lock), removed on reactivation.
    #[default]
    Lock,
    /// The entry moved under `disabled_dn`, and back.
    Move,
    /// Removed from every group (its groups given back on reactivation).
    Groups,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PasswordBy {
    /// The Password Modify extended operation (RFC 3062): the server hashes it.
    #[default]
    Exop,
    /// `userPassword` replaced (a server that hashes on write).
    Attribute,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum GroupClass {
    #[default]
    #[serde(rename = "groupOfNames")]
    GroupOfNames,
    #[serde(rename = "groupOfUniqueNames")]
    GroupOfUniqueNames,
}

impl GroupClass {
    fn member(self) -> &'static str {
        match self {
            GroupClass::GroupOfNames => "member",
            GroupClass::GroupOfUniqueNames => "uniqueMember",
        }
    }
    fn name(self) -> &'static str {
        match self {
            GroupClass::GroupOfNames => "groupOfNames",
            GroupClass::GroupOfUniqueNames => "groupOfUniqueNames",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// The DN the bridge binds as (the connector's `username` if not set).
    pub bind_dn: Option<String>,
    /// Where users are (required).
    pub base_dn: String,
    /// Where groups are (default: `base_dn`).
    pub groups_dn: Option<String>,
    /// The attribute that holds a user's principal (and names its entry).
    pub rdn_attribute: String,
    /// A user's DN, where it is not `RDN=principal,base_dn`: `{principal}` and
    /// `{FIELD}` (a mapped field) are replaced by the user's values, DN-escaped, such as
    /// `"cn={cn},ou=staff,dc=example,dc=com"`. A change of a value it names moves the
    /// entry (a modrdn), and its groups follow. It must lie under `base_dn`.
    pub dn_template: Option<String>,
    pub object_classes: Vec<String>,
    pub group_class: GroupClass,
    pub deactivate: Deactivate,
    pub lock_attribute: String,
    pub lock_value: String,
    /// Where `deactivate = "move"` puts a user.
    pub disabled_dn: Option<String>,
    pub password: PasswordBy,
    /// StartTLS on an `ldap://` URL.
    pub starttls: bool,
    /// A PEM file of the certificate authorities to trust for `ldaps://` and StartTLS
    /// (a directory with its own CA); without it, the system's.
    pub ca_file: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            bind_dn: None,
            base_dn: String::new(),
            groups_dn: None,
            rdn_attribute: "uid".into(),
            dn_template: None,
            object_classes: vec!["inetOrgPerson".into()],
            group_class: GroupClass::GroupOfNames,
            deactivate: Deactivate::Lock,
            lock_attribute: "pwdAccountLockedTime".into(),
            lock_value: "000001010000Z".into(),
            disabled_dn: None,
            password: PasswordBy::Exop,
            starttls: false,
            ca_file: None,
        }
    }
}

impl Options {
    pub fn check(&self) -> Result<(), String> {
        if self.base_dn.trim().is_empty() {
            return Err("base_dn is required: where the users' entries are".into());
        }
        if let Some(f) = &self.ca_file {
            trusted(f)?;
        }
        if self.deactivate == Deactivate::Move && self.disabled_dn.is_none() {
            return Err(
                "deactivate = \"move\" needs disabled_dn: where a deactivated user goes".into(),
            );
        }
        Ok(())
    }
}

/// The TLS client configuration that trusts the authorities in a PEM file.
fn trusted(file: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(file).map_err(|e| format!("ca_file {file}: {e}"))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("ca_file {file}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("ca_file {file}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("ca_file {file} holds no certificate"));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

fn from_ldap(what: &str, e: LdapError) -> ConnectorError {
    match e {
        LdapError::LdapResult { result } => refusal(what, result.rc, &result.text),
        other => ConnectorError::retry(format!("{what}: cannot reach the directory: {other}")),
    }
}

fn refusal(what: &str, rc: u32, text: &str) -> ConnectorError {
    let message = format!("{what}: result {rc}: {text}");
    match rc {
        32 => ConnectorError::NotFound(message),
        68 => ConnectorError::Conflict(message),
        51 | 52 => ConnectorError::retry(message),
        _ => ConnectorError::Permanent(message),
    }
}

fn done(what: &str, r: Result<ldap3::LdapResult, LdapError>) -> Result<(), ConnectorError> {
    let r = r.map_err(|e| from_ldap(what, e))?;
    match r.rc {
        0 => Ok(()),
        rc => Err(refusal(what, rc, &r.text)),
    }
}

/// A DN's first RDN and the rest (its parent), split at the first comma not escaped.
fn split_rdn(dn: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, ch) in dn.char_indices() {
        match ch {
            '\\' if !escaped => escaped = true,
            ',' if !escaped => return (&dn[..i], &dn[i + 1..]),
            _ => escaped = false,
        }
    }
    (dn, "")
}

fn set(v: impl Into<String>) -> HashSet<String> {
    HashSet::from([v.into()])
}

/// The directory, and one bound connection to it (made again after a failure).
pub struct LdapTarget {
    url: String,
    password: Secret,
    opts: Options,
    bind_dn: String,
    timeout: Duration,
    conn: Mutex<Option<LdapConn>>,
}

impl LdapTarget {
    pub fn new(
        url: &str,
        username: Option<String>,
        password: Option<Secret>,
        opts: Options,
        timeout: Duration,
    ) -> Result<LdapTarget, String> {
        let bind_dn = opts
            .bind_dn
            .clone()
            .or(username)
            .ok_or("an ldap connector binds as options.bind_dn (or username)")?;
        let password = password.ok_or("an ldap connector needs password (the bind DN's)")?;
        Ok(LdapTarget {
            url: url.to_string(),
            password,
            opts,
            bind_dn,
            timeout,
            conn: Mutex::new(None),
        })
    }

    /// Runs `f` on the bound connection; a connection that failed is dropped, so the
    /// next operation binds again.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut LdapConn) -> Result<T, ConnectorError>,
    ) -> Result<T, ConnectorError> {
        let mut held = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if held.is_none() {
            let mut settings = LdapConnSettings::new()
                .set_conn_timeout(self.timeout)
                .set_starttls(self.opts.starttls);
            if let Some(f) = &self.opts.ca_file {
                settings = settings.set_config(trusted(f).map_err(ConnectorError::Permanent)?);
            }
            let mut c = LdapConn::with_settings(settings, &self.url)
                .map_err(|e| ConnectorError::retry(format!("cannot reach the directory: {e}")))?;
            done("bind", c.simple_bind(&self.bind_dn, self.password.expose()))?;
            *held = Some(c);
        }
        let Some(conn) = held.as_mut() else {
            return Err(ConnectorError::retry("no connection"));
        };
        conn.with_timeout(self.timeout);
        let out = f(conn);
        if matches!(out, Err(ConnectorError::Retryable { .. })) {
            *held = None;
        }
        out
    }

    fn groups_dn(&self) -> &str {
        self.opts.groups_dn.as_deref().unwrap_or(&self.opts.base_dn)
    }

    /// The DN a user's entry should have.
    fn user_dn(&self, user: &User<'_>) -> String {
        let Some(t) = &self.opts.dn_template else {
            return format!(
                "{}={},{}",
                self.opts.rdn_attribute,
                dn_escape(user.principal.as_str()),
                self.opts.base_dn
            );
        };
        let mut out = t.replace("{principal}", &dn_escape(user.principal.as_str()));
        for (k, v) in &user.fields {
            out = out.replace(&format!("{{{k}}}"), &dn_escape(text(v)));
        }
        out
    }

    fn group_dn(&self, name: &str) -> String {
        format!("cn={},{}", dn_escape(name), self.groups_dn())
    }

    /// Where users may be: the base, and the disabled subtree where they are moved.
    fn user_bases(&self) -> Vec<&str> {
        let mut out = vec![self.opts.base_dn.as_str()];
        if let Some(d) = &self.opts.disabled_dn {
            out.push(d);
        }
        out
    }

    fn search(
        &self,
        c: &mut LdapConn,
        base: &str,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>, ConnectorError> {
        match c.search(base, Scope::Subtree, filter, attrs) {
            Ok(r) => {
                let (rs, res) = (r.0, r.1);
                if res.rc == 32 {
                    return Ok(vec![]);
                }
                if res.rc != 0 {
                    return Err(refusal("search", res.rc, &res.text));
                }
                Ok(rs.into_iter().map(SearchEntry::construct).collect())
            }
            Err(e) => Err(from_ldap("search", e)),
        }
    }

    /// The entry with this entryUUID (a user or a group).
    fn by_uuid(
        &self,
        c: &mut LdapConn,
        uuid: &str,
        bases: &[&str],
    ) -> Result<Option<SearchEntry>, ConnectorError> {
        let filter = format!("(entryUUID={})", ldap_escape(uuid));
        for base in bases {
            if let Some(e) = self
                .search(c, base, &filter, vec!["*".into(), "entryUUID".into()])?
                .into_iter()
                .next()
            {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    fn user_by_name(
        &self,
        c: &mut LdapConn,
        principal: &str,
    ) -> Result<Option<SearchEntry>, ConnectorError> {
        let filter = format!("({}={})", self.opts.rdn_attribute, ldap_escape(principal));
        for base in self.user_bases() {
            let attrs = vec![
                "*".into(),
                "entryUUID".into(),
                self.opts.lock_attribute.clone(),
            ];
            if let Some(e) = self.search(c, base, &filter, attrs)?.into_iter().next() {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    fn uuid_of(e: &SearchEntry) -> Option<String> {
        e.attrs.get("entryUUID").and_then(|v| v.first()).cloned()
    }

    fn dn_of_user(&self, c: &mut LdapConn, target_id: &str) -> Result<String, ConnectorError> {
        let bases = self.user_bases();
        self.by_uuid(c, target_id, &bases)?
            .map(|e| e.dn)
            .ok_or_else(|| ConnectorError::NotFound(format!("no entry with entryUUID {target_id}")))
    }

    /// Every group holding `dn` as a member.
    fn groups_of(&self, c: &mut LdapConn, dn: &str) -> Result<Vec<String>, ConnectorError> {
        let m = self.opts.group_class.member();
        let filter = format!("({m}={})", ldap_escape(dn));
        Ok(self
            .search(c, self.groups_dn(), &filter, vec!["cn".into()])?
            .into_iter()
            .map(|e| e.dn)
            .collect())
    }

    /// Removes a member value, keeping the group valid: a groupOfNames must have a
    /// member, so the last one is replaced by the empty DN.
    fn remove_member(&self, c: &mut LdapConn, group: &str, dn: &str) -> Result<(), ConnectorError> {
        let m = self.opts.group_class.member();
        let r = c.modify(group, vec![Mod::Delete(m.to_string(), set(dn))]);
        match r {
            Ok(res) if res.rc == 65 => done(
                "modify group",
                c.modify(group, vec![Mod::Replace(m.to_string(), set(""))]),
            ),
            // noSuchAttribute: it was not a member.
            Ok(res) if res.rc == 16 || res.rc == 0 => Ok(()),
            Ok(res) => Err(refusal("modify group", res.rc, &res.text)),
            Err(e) => Err(from_ldap("modify group", e)),
        }
    }

    fn add_member(&self, c: &mut LdapConn, group: &str, dn: &str) -> Result<(), ConnectorError> {
        let m = self.opts.group_class.member();
        match c.modify(group, vec![Mod::Add(m.to_string(), set(dn))]) {
            // typeOrValueExists (20): already a member.
            Ok(res) if res.rc == 0 || res.rc == 20 => {}
            Ok(res) => return Err(refusal("modify group", res.rc, &res.text)),
            Err(e) => return Err(from_ldap("modify group", e)),
        }
        // The empty placeholder of a group that had no member goes.
        let _ = c.modify(group, vec![Mod::Delete(m.to_string(), set(""))]);
        Ok(())
    }

    fn attrs_of(&self, user: &User<'_>) -> Vec<(String, HashSet<String>)> {
        let mut out: Vec<(String, HashSet<String>)> = vec![(
            "objectClass".into(),
            self.opts.object_classes.iter().cloned().collect(),
        )];
        for (k, v) in &user.fields {
            let t = text(v);
            if !t.is_empty() && k != &self.opts.rdn_attribute {
                out.push((k.clone(), set(t)));
            }
        }
        out.push((self.opts.rdn_attribute.clone(), set(user.principal.clone())));
        // inetOrgPerson (person) must have cn and sn.
        for must in ["cn", "sn"] {
            if !out.iter().any(|(k, _)| k == must) {
                out.push((must.into(), set(user.principal.clone())));
            }
        }
        out
    }

    fn lock_mods(&self, active: bool) -> Vec<Mod<String>> {
        if active {
            vec![Mod::Replace(
                self.opts.lock_attribute.clone(),
                HashSet::new(),
            )]
        } else {
            vec![Mod::Replace(
                self.opts.lock_attribute.clone(),
                set(self.opts.lock_value.clone()),
            )]
        }
    }
}

/// ldap3's blocking connection owns a runtime, which may not be dropped inside another
/// (the application's, where a connector is dropped at shutdown): it goes on a thread of
/// its own.
impl Drop for LdapTarget {
    fn drop(&mut self) {
        let held = self
            .conn
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(c) = held {
            std::thread::spawn(move || drop(c));
        }
    }
}

impl Target for Arc<LdapTarget> {
    fn kind(&self) -> &'static str {
        "ldap"
    }

    fn principal_field(&self) -> &str {
        &self.opts.rdn_attribute
    }

    fn supports_passwords(&self) -> bool {
        true
    }

    fn lookup(&self, principal: &str) -> Result<Option<String>, ConnectorError> {
        self.with(|c| {
            Ok(self
                .user_by_name(c, principal)?
                .as_ref()
                .and_then(LdapTarget::uuid_of))
        })
    }

    fn unreadable(&self) -> Option<String> {
        None
    }

    fn read(&self, principal: &str, fields: &[&str]) -> Result<Option<TargetUser>, ConnectorError> {
        self.with(|c| {
            let Some(e) = self.user_by_name(c, principal)? else {
                return Ok(None);
            };
            let Some(id) = LdapTarget::uuid_of(&e) else {
                return Ok(None);
            };
            let read = fields
                .iter()
                .map(|f| {
                    let v = e
                        .attrs
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(f))
                        .and_then(|(_, v)| v.first())
                        .map(|s| json!(s))
                        .unwrap_or(Value::Null);
                    (f.to_string(), v)
                })
                .collect();
            let active = match self.opts.deactivate {
                Deactivate::Lock => Some(
                    !e.attrs
                        .keys()
                        .any(|k| k.eq_ignore_ascii_case(&self.opts.lock_attribute)),
                ),
                Deactivate::Move => Some(
                    !self
                        .opts
                        .disabled_dn
                        .as_deref()
                        .is_some_and(|d| e.dn.to_lowercase().ends_with(&d.to_lowercase())),
                ),
                Deactivate::Groups => None,
            };
            Ok(Some(TargetUser {
                target_id: id,
                fields: read,
                active,
            }))
        })
    }

    fn principals(&self) -> Result<Option<Vec<String>>, ConnectorError> {
        use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
        let rdn = self.opts.rdn_attribute.clone();
        self.with(|c| {
            let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
                Box::new(EntriesOnly::new()),
                Box::new(PagedResults::new(500)),
            ];
            let filter = format!("({rdn}=*)");
            let mut stream = c
                .streaming_search_with(
                    adapters,
                    &self.opts.base_dn,
                    Scope::Subtree,
                    &filter,
                    vec![rdn.clone()],
                )
                .map_err(|e| from_ldap("search", e))?;
            let mut out = Vec::new();
            while let Some(entry) = stream.next().map_err(|e| from_ldap("search", e))? {
                let e = SearchEntry::construct(entry);
                if let Some(v) = e.attrs.get(&rdn).and_then(|v| v.first()) {
                    out.push(v.clone());
                }
            }
            let _ = stream.result();
            Ok(Some(out))
        })
    }

    fn create(&self, user: &User<'_>) -> Result<Created, ConnectorError> {
        self.with(|c| {
            let dn = self.user_dn(user);
            let r = c.add(&dn, self.attrs_of(user));
            match done("add", r) {
                Ok(()) => {}
                Err(ConnectorError::Conflict(why)) => {
                    let found = self.user_by_name(c, &user.principal)?;
                    return match found.as_ref().and_then(LdapTarget::uuid_of) {
                        Some(id) => Ok(Created {
                            target_id: id,
                            adopted: true,
                        }),
                        None => Err(ConnectorError::Conflict(why)),
                    };
                }
                Err(e) => return Err(e),
            }
            if !user.active && self.opts.deactivate == Deactivate::Lock {
                done("lock", c.modify(&dn, self.lock_mods(false)))?;
            }
            let e = self.user_by_name(c, &user.principal)?;
            let id = e.as_ref().and_then(LdapTarget::uuid_of).ok_or_else(|| {
                ConnectorError::Permanent("the entry added has no entryUUID".into())
            })?;
            Ok(Created {
                target_id: id,
                adopted: false,
            })
        })
    }

    fn update(
        &self,
        target_id: &str,
        user: &User<'_>,
        changes: &[FieldChange],
        old_principal: Option<&str>,
    ) -> Result<(), ConnectorError> {
        self.with(|c| {
            let _ = old_principal;
            let mut dn = self.dn_of_user(c, target_id)?;
            let (_, parent) = split_rdn(&dn);
            let mut want = self.user_dn(user);
            // A user moved out (deactivate = "move") stays out until reactivated.
            let out = self.opts.deactivate == Deactivate::Move
                && self
                    .opts
                    .disabled_dn
                    .as_deref()
                    .is_some_and(|d| parent.eq_ignore_ascii_case(d));
            if out {
                want = format!("{},{parent}", split_rdn(&want).0);
            }
            if !want.eq_ignore_ascii_case(&dn) {
                // A rename (or a change of a value the DN names): a modrdn, then every
                // group that named the old DN.
                let (rdn, new_parent) = split_rdn(&want);
                let sup = (!new_parent.eq_ignore_ascii_case(parent)).then_some(new_parent);
                done("modrdn", c.modifydn(&dn, rdn, true, sup))?;
                let old = dn.clone();
                dn = self.dn_of_user(c, target_id)?;
                for g in self.groups_of(c, &old)? {
                    self.add_member(c, &g, &dn)?;
                    self.remove_member(c, &g, &old)?;
                }
            }
            // The RDN's attribute was set by the modrdn.
            let rdn_attr = split_rdn(&dn)
                .0
                .split('=')
                .next()
                .unwrap_or_default()
                .to_string();
            let mods: Vec<Mod<String>> = changes
                .iter()
                .filter(|ch| !ch.field.eq_ignore_ascii_case(&rdn_attr))
                .map(|ch| match (ch.op, ch.new.as_ref().map(text)) {
                    (Op::Delete, _) | (_, None) => Mod::Replace(ch.field.clone(), HashSet::new()),
                    (_, Some(v)) if v.is_empty() => Mod::Replace(ch.field.clone(), HashSet::new()),
                    (_, Some(v)) => Mod::Replace(ch.field.clone(), set(v)),
                })
                .collect();
            if mods.is_empty() {
                return Ok(());
            }
            done("modify", c.modify(&dn, mods))
        })
    }

    fn set_active(
        &self,
        target_id: &str,
        user: &User<'_>,
        active: bool,
    ) -> Result<(), ConnectorError> {
        self.with(|c| {
            let dn = self.dn_of_user(c, target_id)?;
            match self.opts.deactivate {
                Deactivate::Lock => done("lock", c.modify(&dn, self.lock_mods(active))),
                Deactivate::Move => {
                    let to = if active {
                        self.opts.base_dn.clone()
                    } else {
                        self.opts.disabled_dn.clone().unwrap_or_default()
                    };
                    if dn.to_lowercase().ends_with(&to.to_lowercase()) {
                        return Ok(());
                    }
                    let rdn = dn.split(',').next().unwrap_or_default().to_string();
                    done("move", c.modifydn(&dn, &rdn, true, Some(&to)))
                }
                Deactivate::Groups => {
                    if active {
                        for name in &user.groups {
                            let g = self.group_dn(name);
                            match self.add_member(c, &g, &dn) {
                                Ok(()) | Err(ConnectorError::NotFound(_)) => {}
                                Err(e) => return Err(e),
                            }
                        }
                        Ok(())
                    } else {
                        for g in self.groups_of(c, &dn)? {
                            self.remove_member(c, &g, &dn)?;
                        }
                        Ok(())
                    }
                }
            }
        })
    }

    fn delete(&self, target_id: &str, _user: &User<'_>) -> Result<(), ConnectorError> {
        self.with(|c| {
            let dn = match self.dn_of_user(c, target_id) {
                Ok(dn) => dn,
                Err(ConnectorError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            };
            for g in self.groups_of(c, &dn)? {
                self.remove_member(c, &g, &dn)?;
            }
            match done("delete", c.delete(&dn)) {
                Ok(()) | Err(ConnectorError::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn set_password(
        &self,
        target_id: &str,
        _user: &User<'_>,
        password: &str,
    ) -> Result<(), ConnectorError> {
        self.with(|c| {
            let dn = self.dn_of_user(c, target_id)?;
            match self.opts.password {
                PasswordBy::Exop => {
                    let op = ldap3::exop::PasswordModify {
                        user_id: Some(&dn),
                        old_pass: None,
                        new_pass: Some(password),
                    };
                    let r = c
                        .extended(op)
                        .map_err(|e| from_ldap("password modify", e))?;
                    let res = r.1;
                    match res.rc {
                        0 => Ok(()),
                        rc => Err(refusal("password modify", rc, &res.text)),
                    }
                }
                PasswordBy::Attribute => done(
                    "modify",
                    c.modify(
                        &dn,
                        vec![Mod::Replace("userPassword".to_string(), set(password))],
                    ),
                ),
            }
        })
    }
}

/// The `ldap` connector: users through the shared adapter, groups mirrored here.
pub struct Ldap {
    pub users: Arc<dyn Connector>,
    pub target: Arc<LdapTarget>,
    pub dry_run: bool,
}

impl Ldap {
    /// Members' DNs (by their entryUUIDs); a member still queued makes the group job
    /// wait when `wait`.
    fn member_dns(
        &self,
        c: &mut LdapConn,
        d: &Delivery<'_>,
        members: &[String],
        wait: bool,
    ) -> Result<Vec<String>, ConnectorError> {
        let mut out = Vec::new();
        for t in member_target_ids(d, members, wait)? {
            match self.target.dn_of_user(c, &t) {
                Ok(dn) => out.push(dn),
                Err(ConnectorError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn group(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        let ch = d.change;
        let name = ch
            .resource
            .as_ref()
            .and_then(|r| r["displayName"].as_str())
            .map(str::to_string);
        let mapped = d.mapping.and_then(|m| m.target_id.clone());
        if self.dry_run {
            super::dryrun::record_call(
                json!({"call": format!("group {}", d.event.as_str()), "group": name, "id": mapped}),
            );
            return Ok(Outcome::default());
        }
        let t = &self.target;
        let member = t.opts.group_class.member();
        let groups_dn = t.groups_dn().to_string();
        t.with(|c| {
            let found = match &mapped {
                Some(id) => t.by_uuid(c, id, &[&groups_dn])?,
                None => None,
            };
            if d.event == Event::GroupDeleted {
                if let Some(e) = found {
                    match done("delete group", c.delete(&e.dn)) {
                        Ok(()) | Err(ConnectorError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                return Ok(Outcome {
                    target_id: mapped.clone(),
                    ..Default::default()
                });
            }
            let name = name
                .clone()
                .ok_or_else(|| ConnectorError::Permanent("the group has no displayName".into()))?;
            let dn = match found {
                Some(e) => {
                    // A rename is a modrdn of the group's cn.
                    let want = t.group_dn(&name);
                    if !e.dn.eq_ignore_ascii_case(&want) {
                        let rdn = format!("cn={}", dn_escape(&name));
                        done("modrdn group", c.modifydn(&e.dn, &rdn, true, None))?;
                    }
                    want
                }
                None => {
                    let dns = self.member_dns(c, d, ch.members.members(), true)?;
                    let dn = t.group_dn(&name);
                    let mut values: HashSet<String> = dns.into_iter().collect();
                    if values.is_empty() {
                        values.insert(String::new());
                    }
                    let attrs = vec![
                        ("objectClass".to_string(), set(t.opts.group_class.name())),
                        ("cn".to_string(), set(name.clone())),
                        (member.to_string(), values),
                    ];
                    match done("add group", c.add(&dn, attrs)) {
                        Ok(()) | Err(ConnectorError::Conflict(_)) => {}
                        Err(e) => return Err(e),
                    }
                    let e = t.search(c, &dn, "(objectClass=*)", vec!["entryUUID".into()])?;
                    let id = e.first().and_then(LdapTarget::uuid_of).ok_or_else(|| {
                        ConnectorError::Permanent("the group added has no entryUUID".into())
                    })?;
                    return Ok(Outcome {
                        target_id: Some(id),
                        principal: Some(name),
                        ..Default::default()
                    });
                }
            };
            let (add, remove) = member_delta(d);
            for m in self.member_dns(c, d, &add, true)? {
                t.add_member(c, &dn, &m)?;
            }
            for m in self.member_dns(c, d, &remove, false)? {
                t.remove_member(c, &dn, &m)?;
            }
            Ok(Outcome {
                target_id: mapped.clone(),
                principal: Some(name),
                ..Default::default()
            })
        })
    }
}

impl super::target::MirrorsGroups for Ldap {
    fn kind(&self) -> &'static str {
        "ldap"
    }

    fn users(&self) -> &dyn Connector {
        self.users.as_ref()
    }

    fn group(&self, d: &Delivery<'_>) -> Result<Outcome, ConnectorError> {
        Ldap::group(self, d)
    }
}
