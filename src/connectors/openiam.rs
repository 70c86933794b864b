//! `openiam`: OpenIAM 2.x ProvisioningService over SOAP 1.1 (document/literal wrapped,
//! `SOAPAction: ""` as the binding declares), written to the published WSDL: the User DTO's
//! fields qualified in `urn:idm.openiam.org/srvc/user/dto` and in declared order, then
//! ProvisionUser's own unqualified `principalList`, `memberOfRoles` and `securityDomain`.
//!
//! addUser (principal, direct fields, userAttributes `add`, roles, `createdBy`), modifyUser
//! with only what changed (direct fields, `null` to clear one, userAttributes
//! `add`/`replace`/`delete`, roles with `operation delete`, a rename as a Login with
//! operation `replace` and origPrincipalName, `lastUpdatedBy`), lockUser (requestorId) or
//! disableUser (requestor), deleteUser, setPassword with `validateRequest`. An existing user
//! is found through the login service's getLoginByManagedSys, whose Login carries the
//! OpenIAM userId. The service account's userId (`requestor_id`) is required: lockUser
//! faults without an existing one. Reconcile reads a user with the login service's
//! getUserByLogin (its User DTO: direct fields, userAttributes, secondaryStatus) and lists
//! the managed system's principals with getLoginByDomain.

use std::time::Duration;

use serde::Deserialize;

use super::attrs::{text, FieldChange, Op};
use super::read::TargetUser;
use super::target::{Created, Target, User};
use super::xml::{el, esc, find, text_of};
use super::{transport, BlockingClient, ConnectorError};
use crate::secret::Secret;

const NS_PROVISION: &str = "http://www.openiam.org/service/provision";
const NS_USER: &str = "urn:idm.openiam.org/srvc/user/dto";
const NS_ROLE: &str = "urn:idm.openiam.org/srvc/role/dto";
const NS_AUTH: &str = "urn:idm.openiam.org/srvc/auth/service";

/// Default mapping: OpenIAM field = SCIM path. `login` is the principal; a field named as
/// one of the User DTO's simple fields ([`DTO_FIELDS`]) is set directly; any other field
/// becomes a userAttribute.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("login", "userName"),
    ("firstName", "name.givenName"),
    ("lastName", "name.familyName"),
    ("middleInit", "name.middleName"),
    ("email", "emails.value"),
    ("title", "title"),
    (
        "employeeId",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    ),
];

/// The User DTO's elements in the WSDL's order, up to the last one this connector writes.
/// Those marked settable can be mapping targets; the others the connector fills itself.
const DTO_FIELDS: &[(&str, bool)] = &[
    ("companyId", true),
    ("companyOwnerId", true),
    ("createdBy", false),
    ("deptCd", true),
    ("deptName", true),
    ("employeeId", true),
    ("employeeType", true),
    ("firstName", true),
    ("jobCode", true),
    ("lastName", true),
    ("lastUpdatedBy", false),
    ("locationCd", true),
    ("locationName", true),
    ("managerId", true),
    ("classification", true),
    ("middleInit", true),
    ("prefix", true),
    ("sex", true),
    ("status", false),
    ("suffix", true),
    ("title", true),
    ("userAttributes", false),
    ("userId", false),
    ("userTypeInd", true),
    ("division", true),
    ("costCenter", true),
    ("mailCode", true),
    ("nickname", true),
    ("maidenName", true),
    ("country", true),
    ("bldgNum", true),
    ("streetDirection", true),
    ("suite", true),
    ("address1", true),
    ("address2", true),
    ("address3", true),
    ("city", true),
    ("state", true),
    ("postalCd", true),
    ("email", true),
    ("areaCd", true),
    ("countryCd", true),
    ("phoneNbr", true),
    ("phoneExt", true),
    ("alternateContactId", true),
    ("userOwnerId", true),
];

fn is_direct(field: &str) -> bool {
    DTO_FIELDS
        .iter()
        .any(|(f, settable)| *settable && *f == field)
}

/// How a deactivated user is shut out. Never lockUser `locked`: that is the state a
/// password lock-out sets, and OpenIAM's unlock batch clears it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deactivate {
    /// disableUser `true` / `false`: secondaryStatus DISABLED, which no batch and no
    /// identity change clears (the default).
    #[default]
    Disable,
    /// lockUser `locked_admin` / `unlock`: not cleared by the unlock batch, but an
    /// identity change (a rename) clears the login's lock.
    Lock,
}

/// Who a SOAP fault blames, from its faultcode (SOAP 1.1 `Client`/`Server`, SOAP 1.2
/// `Sender`/`Receiver`), never from its faultstring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultCode {
    Client,
    Server,
    Other,
}

impl FaultCode {
    fn parse(qname: &str) -> FaultCode {
        // `soap:Client`, or a dotted refinement such as `Client.Authentication`.
        let local = qname.rsplit(':').next().unwrap_or(qname);
        match local.split('.').next().unwrap_or(local) {
            "Client" | "Sender" => FaultCode::Client,
            "Server" | "Receiver" => FaultCode::Server,
            _ => FaultCode::Other,
        }
    }
}

/// OpenIAM's ResponseErrorCode (the WSDL's enumeration), as far as the bridge acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ErrorCode {
    DuplicatePrincipal,
    /// principalNotFound, userNotFound, objectNotFound (and the upper-case spellings).
    NotFound,
    /// The service could not reach a system: a later attempt may pass.
    Transient,
    Other(String),
}

impl ErrorCode {
    fn parse(code: &str) -> ErrorCode {
        match code {
            "DUPLICATE_PRINCIPAL" => ErrorCode::DuplicatePrincipal,
            "principalNotFound"
            | "userNotFound"
            | "objectNotFound"
            | "PRINCIPAL_NOT_FOUND"
            | "USER_NOT_FOUND"
            | "OBJECT_NOT_FOUND" => ErrorCode::NotFound,
            c if transient_code(c) => ErrorCode::Transient,
            other => ErrorCode::Other(other.to_string()),
        }
    }
}

/// A password for a login that must not be left without one (OpenIAM stores NULL, which a
/// 2.x login module lets any password through): random, never kept, never shown, with
/// upper and lower case, digits and a symbol, so the usual policies take it.
fn throwaway_password() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    let body = Alphanumeric.sample_string(&mut rand::thread_rng(), 28);
    format!("Sb-{body}-7q")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// The managed system the principal belongs to.
    pub managed_sys_id: String,
    /// The security domain of the principal and roles.
    pub security_domain: String,
    pub deactivate: Deactivate,
    /// The OpenIAM userId of the bridge's service account: lockUser's and deleteUser's
    /// requestorId, disableUser's requestor, and createdBy/lastUpdatedBy. Required.
    pub requestor_id: Option<String>,
    /// The LoginDataWebService endpoint; by default beside the provisioning URL.
    pub login_url: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            managed_sys_id: "0".into(),
            security_domain: "USR_SEC_DOMAIN".into(),
            deactivate: Deactivate::Disable,
            requestor_id: None,
            login_url: None,
        }
    }
}

impl Options {
    pub fn check(&self) -> Result<(), String> {
        match self.requestor_id.as_deref().map(str::trim) {
            None | Some("") => Err("requestor_id is required: the OpenIAM userId of the bridge's service account (lockUser looks it up, and the audit fields name it)".into()),
            Some(_) => Ok(()),
        }
    }
}

pub struct OpenIam {
    url: String,
    login_url: String,
    auth: Option<(String, Secret)>,
    opts: Options,
    requestor: String,
    client: BlockingClient,
}

/// What the call's `<return>` held on success.
struct Reply {
    /// The text of the reply, to read further.
    xml: String,
}

/// Error codes a later attempt can get past: the service could not reach a system.
fn transient_code(code: &str) -> bool {
    matches!(
        code,
        "FAIL_CONNECTION" | "FAIL_CONNECTOR" | "SERVICE_UNAVAILABLE_EXCEPTION" | "FAIL_OTHER" | ""
    )
}

/// The login service's URL beside the provisioning one.
fn login_url_beside(url: &str) -> String {
    match url.trim_end_matches('/').rsplit_once('/') {
        Some((base, _)) => format!("{base}/LoginDataWebService"),
        None => format!("{url}/LoginDataWebService"),
    }
}

/// `<name>` with the User DTO's prefix.
fn dto(name: &str, value: &str) -> String {
    el(&format!("dto:{name}"), value)
}

impl OpenIam {
    pub fn new(
        url: &str,
        auth: Option<(String, Secret)>,
        opts: Options,
        timeout: Duration,
    ) -> OpenIam {
        OpenIam {
            url: url.to_string(),
            login_url: opts
                .login_url
                .clone()
                .unwrap_or_else(|| login_url_beside(url)),
            auth,
            requestor: opts.requestor_id.clone().unwrap_or_default(),
            opts,
            client: BlockingClient::new(timeout),
        }
    }

    fn call(&self, url: &str, ns: &str, op: &str, body: &str) -> Result<Reply, ConnectorError> {
        let envelope = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             xmlns:op=\"{ns}\" xmlns:dto=\"{NS_USER}\" xmlns:role=\"{NS_ROLE}\">\
             <soapenv:Body><op:{op}>{body}</op:{op}></soapenv:Body></soapenv:Envelope>"
        );
        let mut req = self
            .client
            .get()?
            .post(url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", "\"\"");
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, Some(p.expose()));
        }
        let res = req.body(envelope).send().map_err(transport)?;
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().unwrap_or_default();
        let doc = match roxmltree::Document::parse(&text) {
            Ok(d) => d,
            Err(_) => return Err(super::classify_status(status, &headers, &text)),
        };
        if let Some(fault) = find(doc.root(), "Fault") {
            let msg = text_of(fault, "faultstring").unwrap_or_default();
            let code = FaultCode::parse(&text_of(fault, "faultcode").unwrap_or_default());
            let message = format!("{op}: SOAP fault: {msg}");
            return Err(match code {
                // The request is at fault (CXF's Unmarshalling Error is one): it fails the
                // same way every time.
                FaultCode::Client => ConnectorError::Permanent(message),
                // The service failed handling it: a later attempt may pass.
                FaultCode::Server | FaultCode::Other => ConnectorError::Retryable {
                    message,
                    retry_after: super::retry_after(&headers),
                },
            });
        }
        if !status.is_success() {
            return Err(super::classify_status(status, &headers, &text));
        }
        let Some(ret) = find(doc.root(), "return") else {
            return Err(ConnectorError::retry(format!(
                "{op}: no <return> in the reply"
            )));
        };
        if ret.attribute("status") == Some("success") {
            return Ok(Reply { xml: text.clone() });
        }
        let code = text_of(ret, "errorCode").unwrap_or_default();
        let detail = text_of(ret, "errorText").filter(|t| !t.is_empty());
        let msg = match detail {
            Some(t) => format!("{op}: {code}: {t}"),
            None => format!("{op}: {code}"),
        };
        Err(match ErrorCode::parse(&code) {
            ErrorCode::DuplicatePrincipal => ConnectorError::Conflict(msg),
            ErrorCode::NotFound => ConnectorError::NotFound(msg),
            ErrorCode::Transient => ConnectorError::retry(msg),
            ErrorCode::Other(_) => ConnectorError::Permanent(msg),
        })
    }

    fn provision(&self, op: &str, body: &str) -> Result<Reply, ConnectorError> {
        self.call(&self.url, NS_PROVISION, op, body)
    }

    /// ProvisionUser's own Login (unqualified): id, password, then operation and
    /// origPrincipalName. Every Login the bridge writes carries a password: OpenIAM keeps
    /// NULL otherwise, at a create and at an identity change alike.
    fn principal(&self, login: &str, rename_from: Option<&str>) -> String {
        let id = format!(
            "<id>{}{}{}</id>{}",
            el("domainId", &self.opts.security_domain),
            el("login", login),
            el("managedSysId", &self.opts.managed_sys_id),
            el("password", &throwaway_password())
        );
        match rename_from {
            Some(orig) => format!(
                "<principalList>{id}{}{}</principalList>",
                el("operation", "replace"),
                el("origPrincipalName", orig)
            ),
            None => format!("<principalList>{id}</principalList>"),
        }
    }

    fn role(&self, role: &str, delete: bool) -> String {
        format!(
            "<memberOfRoles><role:id>{}{}</role:id>{}</memberOfRoles>",
            el("role:roleId", role),
            el("role:serviceId", &self.opts.security_domain),
            if delete {
                el("role:operation", "delete")
            } else {
                String::new()
            }
        )
    }

    /// A userAttribute. Only a delete names its operation (the seed's rule): OpenIAM
    /// decides add or replace itself, and faults on a `replace` of one the user lacks.
    fn attribute(name: &str, value: &str, op: Op) -> String {
        format!(
            "<dto:userAttributeEntry key=\"{k}\"><dto:userAttribute>{}{}{}</dto:userAttribute></dto:userAttributeEntry>",
            dto("name", name),
            dto("value", value),
            match op {
                Op::Delete => dto("operation", op.as_str()),
                _ => String::new(),
            },
            k = esc(name),
        )
    }

    /// A ProvisionUser: the DTO fields in declared order, then its own fields.
    fn provision_user(
        &self,
        direct: &[(String, String)],
        audit: (&str, &str),
        user_id: Option<&str>,
        attributes: &str,
        own: &str,
    ) -> String {
        let mut out = String::from("<user>");
        for (name, _) in DTO_FIELDS {
            let value = match *name {
                n if n == audit.0 => Some(audit.1.to_string()),
                "status" if user_id.is_none() => Some("active".to_string()),
                "userAttributes" if !attributes.is_empty() => {
                    out.push_str(&format!(
                        "<dto:userAttributes>{attributes}</dto:userAttributes>"
                    ));
                    None
                }
                "userId" => user_id.map(str::to_string),
                n => direct.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()),
            };
            if let Some(v) = value {
                out.push_str(&dto(name, &v));
            }
        }
        out.push_str(own);
        out.push_str(&el("securityDomain", &self.opts.security_domain));
        out.push_str("</user>");
        out
    }

    /// A login-service call whose "not found" codes mean no such user (None).
    fn login_call(&self, op: &str, body: &str) -> Result<Option<Reply>, ConnectorError> {
        match self.call(&self.login_url, NS_AUTH, op, body) {
            Ok(r) => Ok(Some(r)),
            Err(ConnectorError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The OpenIAM userId owning this principal in the managed system.
    fn login_owner(&self, login: &str) -> Result<Option<String>, ConnectorError> {
        let body = format!(
            "{}{}{}",
            el("domainId", &self.opts.security_domain),
            el("principal", login),
            el("managedSysId", &self.opts.managed_sys_id)
        );
        let Some(reply) = self.login_call("getLoginByManagedSys", &body)? else {
            return Ok(None);
        };
        let doc = roxmltree::Document::parse(&reply.xml)
            .map_err(|e| ConnectorError::retry(format!("getLoginByManagedSys: {e}")))?;
        Ok(find(doc.root(), "principal")
            .and_then(|p| {
                p.children()
                    .find(|c| c.is_element() && c.tag_name().name() == "userId")
            })
            .and_then(|u| u.text())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty()))
    }
}

impl Target for OpenIam {
    fn kind(&self) -> &'static str {
        "openiam"
    }

    fn principal_field(&self) -> &str {
        "login"
    }

    fn supports_passwords(&self) -> bool {
        true
    }

    /// OpenIAM's identity change sets the login's password to the one the request carries
    /// (NULL without one, which lets any password in): the rename carries a random one.
    fn rename_note(&self) -> Option<&str> {
        Some("renamed: OpenIAM's identity change replaces the login's password, so the login was given a random one; the user needs a new password (the identity provider's next password push, or OpenIAM's reset)")
    }

    fn supports_roles(&self) -> bool {
        true
    }

    /// addUser answers DUPLICATE_PRINCIPAL for a principal OpenIAM has, and the create
    /// then adopts it: no lookup is made before every create.
    fn lookup_before_create(&self) -> bool {
        false
    }

    fn lookup(&self, principal: &str) -> Result<Option<String>, ConnectorError> {
        self.login_owner(principal)
    }

    fn unreadable(&self) -> Option<String> {
        None
    }

    fn read(&self, principal: &str, fields: &[&str]) -> Result<Option<TargetUser>, ConnectorError> {
        let body = format!(
            "{}{}{}",
            el("domainId", &self.opts.security_domain),
            el("principal", principal),
            el("managedSysId", &self.opts.managed_sys_id)
        );
        let Some(reply) = self.login_call("getUserByLogin", &body)? else {
            return Ok(None);
        };
        let doc = roxmltree::Document::parse(&reply.xml)
            .map_err(|e| ConnectorError::retry(format!("getUserByLogin: {e}")))?;
        let Some(user) = find(doc.root(), "return").and_then(|r| find(r, "user")) else {
            return Ok(None);
        };
        // The DTO's own simple fields, qualified; userAttributes as name and value.
        let own = |name: &str| {
            user.children()
                .find(|c| {
                    c.is_element()
                        && c.tag_name().name() == name
                        && c.tag_name().namespace() == Some(NS_USER)
                })
                .map(|c| c.text().unwrap_or("").trim().to_string())
        };
        let mut attributes = std::collections::BTreeMap::new();
        for a in user
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "userAttribute")
        {
            if let Some(name) = text_of(a, "name") {
                attributes.insert(name, text_of(a, "value").unwrap_or_default());
            }
        }
        let login = find(user, "principalList")
            .and_then(|p| text_of(p, "login"))
            .unwrap_or_else(|| principal.to_string());
        let value = |v: Option<String>| match v {
            // OpenIAM's cleared field is the literal "null".
            Some(t) if !t.is_empty() && t != "null" => serde_json::Value::String(t),
            _ => serde_json::Value::Null,
        };
        let fields = fields
            .iter()
            .map(|f| {
                let v = match *f {
                    "login" => Some(login.clone()),
                    f if is_direct(f) => own(f),
                    f => attributes.get(f).cloned(),
                };
                (f.to_string(), value(v))
            })
            .collect();
        // A locked or disabled user (secondaryStatus), or one no longer active, is out.
        let status = own("status").unwrap_or_default().to_lowercase();
        let secondary = own("secondaryStatus").unwrap_or_default().to_lowercase();
        let active =
            matches!(status.as_str(), "" | "active") && matches!(secondary.as_str(), "" | "active");
        Ok(Some(TargetUser {
            target_id: own("userId").unwrap_or_default(),
            fields,
            active: Some(active),
        }))
    }

    fn principals(&self) -> Result<Option<Vec<String>>, ConnectorError> {
        let body = el("domainId", &self.opts.security_domain);
        let Some(reply) = self.login_call("getLoginByDomain", &body)? else {
            return Ok(Some(vec![]));
        };
        let doc = roxmltree::Document::parse(&reply.xml)
            .map_err(|e| ConnectorError::retry(format!("getLoginByDomain: {e}")))?;
        let mut out = Vec::new();
        for login in doc
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "principalList")
        {
            let Some(id) = find(login, "id") else {
                continue;
            };
            let managed = text_of(id, "managedSysId").unwrap_or_default();
            if managed != self.opts.managed_sys_id {
                continue;
            }
            if let Some(l) = text_of(id, "login").filter(|l| !l.is_empty()) {
                out.push(l);
            }
        }
        Ok(Some(out))
    }

    fn create(&self, user: &User<'_>) -> Result<Created, ConnectorError> {
        let mut direct = Vec::new();
        let mut attrs = String::new();
        for (k, v) in &user.fields {
            if is_direct(k) {
                direct.push((k.clone(), text(v)));
            } else if k != "login" {
                attrs.push_str(&Self::attribute(k, &text(v), Op::Add));
            }
        }
        let mut own = self.principal(&user.principal, None);
        for r in &user.roles {
            own.push_str(&self.role(r, false));
        }
        let body = self.provision_user(&direct, ("createdBy", &self.requestor), None, &attrs, &own);
        match self.provision("addUser", &body) {
            Ok(r) => {
                let doc = roxmltree::Document::parse(&r.xml)
                    .map_err(|e| ConnectorError::retry(format!("addUser: {e}")))?;
                let id = doc
                    .descendants()
                    .find(|n| {
                        n.tag_name().name() == "userId" && n.tag_name().namespace() == Some(NS_USER)
                    })
                    .and_then(|n| n.text())
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| ConnectorError::retry("addUser: no userId in the reply"))?;
                // A user created inactive is locked, as a deactivated one is.
                if !user.active {
                    self.set_active(&id, user, false)?;
                }
                Ok(Created {
                    target_id: id,
                    adopted: false,
                })
            }
            Err(ConnectorError::Conflict(_)) => {
                let id = self.login_owner(&user.principal)?.ok_or_else(|| {
                    ConnectorError::Permanent(format!(
                        "addUser said DUPLICATE_PRINCIPAL but getLoginByManagedSys does not find '{}'",
                        user.principal
                    ))
                })?;
                // The login may be a deleted user's (a re-hire, a restore): OpenIAM keeps
                // it, and the user stays DELETED until set active. The adoption that follows
                // sends the bridge's fields and its active state; this makes it a user again.
                let body = self.provision_user(
                    &[("status".to_string(), "active".to_string())],
                    ("lastUpdatedBy", &self.requestor),
                    Some(&id),
                    "",
                    "",
                );
                self.provision("modifyUser", &body)?;
                Ok(Created {
                    target_id: id,
                    adopted: true,
                })
            }
            Err(e) => Err(e),
        }
    }

    fn update(
        &self,
        target_id: &str,
        user: &User<'_>,
        changes: &[FieldChange],
        old_principal: Option<&str>,
    ) -> Result<(), ConnectorError> {
        let mut direct = Vec::new();
        let mut attrs = String::new();
        for c in changes {
            if is_direct(&c.field) {
                // OpenIAM clears a field given the literal string "null".
                let value = match c.op {
                    Op::Delete => "null".to_string(),
                    _ => c.new.as_ref().map(text).unwrap_or_default(),
                };
                direct.push((c.field.clone(), value));
            } else if c.field != "login" {
                let value = match c.op {
                    Op::Delete => c.old.as_ref().map(text).unwrap_or_default(),
                    _ => c.new.as_ref().map(text).unwrap_or_default(),
                };
                attrs.push_str(&Self::attribute(&c.field, &value, c.op));
            }
        }
        let own = old_principal
            .map(|orig| self.principal(&user.principal, Some(orig)))
            .unwrap_or_default();
        if direct.is_empty() && attrs.is_empty() && own.is_empty() {
            return Ok(());
        }
        let body = self.provision_user(
            &direct,
            ("lastUpdatedBy", &self.requestor),
            Some(target_id),
            &attrs,
            &own,
        );
        self.provision("modifyUser", &body).map(|_| ())
    }

    fn set_active(
        &self,
        target_id: &str,
        _user: &User<'_>,
        active: bool,
    ) -> Result<(), ConnectorError> {
        let body = match self.opts.deactivate {
            Deactivate::Disable => format!(
                "{}{}{}",
                el("userId", target_id),
                el("operation", if active { "false" } else { "true" }),
                el("requestor", &self.requestor)
            ),
            Deactivate::Lock => format!(
                "{}{}{}",
                el("userId", target_id),
                el("operation", if active { "unlock" } else { "locked_admin" }),
                el("requestorId", &self.requestor)
            ),
        };
        let op = match self.opts.deactivate {
            Deactivate::Disable => "disableUser",
            Deactivate::Lock => "lockUser",
        };
        self.provision(op, &body).map(|_| ())
    }

    /// deleteByUserId with the userId the mapping holds: never by a login OpenIAM may not
    /// have (a rename it never took would make a delete by login find nothing and report
    /// success while the user stays). userNotFound for that id means OpenIAM has no such
    /// user at all: done.
    fn delete(&self, target_id: &str, _user: &User<'_>) -> Result<(), ConnectorError> {
        let user = self.provision_user(
            &[],
            ("lastUpdatedBy", &self.requestor),
            Some(target_id),
            "",
            "",
        );
        let body = format!(
            "{user}{}{}",
            el("status", "deleted"),
            el("requestorId", &self.requestor)
        );
        match self.provision("deleteByUserId", &body) {
            Ok(_) | Err(ConnectorError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn set_password(
        &self,
        _target_id: &str,
        user: &User<'_>,
        password: &str,
    ) -> Result<(), ConnectorError> {
        let body = format!(
            "<passwordSync>{}{}{}{}{}{}</passwordSync>",
            el("securityDomain", &self.opts.security_domain),
            el("managedSystemId", &self.opts.managed_sys_id),
            el("principal", &user.principal),
            el("password", password),
            el("validateRequest", "true"),
            el("requestorId", &self.requestor)
        );
        self.provision("setPassword", &body).map(|_| ())
    }

    fn change_roles(
        &self,
        target_id: &str,
        _user: &User<'_>,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ConnectorError> {
        let mut own = String::new();
        for r in add {
            own.push_str(&self.role(r, false));
        }
        for r in remove {
            own.push_str(&self.role(r, true));
        }
        let body = self.provision_user(
            &[],
            ("lastUpdatedBy", &self.requestor),
            Some(target_id),
            "",
            &own,
        );
        self.provision("modifyUser", &body).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_service_defaults_beside_the_provisioning_service() {
        assert_eq!(
            login_url_beside("http://h:8080/openiam-idm-esb/idmsrvc/ProvisioningService"),
            "http://h:8080/openiam-idm-esb/idmsrvc/LoginDataWebService"
        );
    }

    #[test]
    fn connection_failures_are_transient_and_policy_failures_are_not() {
        assert!(transient_code("FAIL_CONNECTION"));
        assert!(!transient_code("FAIL_LENGTH_RULE"));
        assert!(!transient_code("principalNotFound"));
    }

    #[test]
    fn a_fault_is_read_by_its_code_and_never_by_its_words() {
        assert_eq!(FaultCode::parse("soap:Client"), FaultCode::Client);
        assert_eq!(FaultCode::parse("env:Sender"), FaultCode::Client);
        assert_eq!(
            FaultCode::parse("soap:Client.Authentication"),
            FaultCode::Client
        );
        assert_eq!(FaultCode::parse("soap:Server"), FaultCode::Server);
        assert_eq!(FaultCode::parse("Receiver"), FaultCode::Server);
        assert_eq!(FaultCode::parse("ns1:Clientele"), FaultCode::Other);
        assert_eq!(
            ErrorCode::parse("DUPLICATE_PRINCIPAL"),
            ErrorCode::DuplicatePrincipal
        );
        assert_eq!(ErrorCode::parse("userNotFound"), ErrorCode::NotFound);
        assert_eq!(ErrorCode::parse("FAIL_CONNECTION"), ErrorCode::Transient);
    }
}
