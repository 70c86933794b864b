//! `openiam`: OpenIAM ProvisioningService over SOAP 1.1. addUser (principal, names, email,
//! status, userAttributes, memberOfRoles), modifyUser with only what changed (user
//! attributes with their add/replace/delete operation, roles added or removed, a rename as
//! a principal `replace` with origPrincipalName), lockUser or disableUser, deleteUser,
//! setPassword, and getTargetSystemUser to adopt a user whose principal already exists.

use std::time::Duration;

use serde::Deserialize;

use super::attrs::{text, FieldChange, Op};
use super::target::{Created, Target, User};
use super::xml::{el, esc, find, text_of};
use super::{transport, BlockingClient, ConnectorError};
use crate::config::Secret;

pub const NS_PROVISION: &str = "http://www.openiam.org/service/provision";
pub const NS_USER: &str = "urn:idm.openiam.org/srvc/user/dto";
pub const NS_ROLE: &str = "urn:idm.openiam.org/srvc/role/dto";

/// Default mapping: OpenIAM field = SCIM path. `login` is the principal; the other
/// ProvisionUser fields are set directly; any further field becomes a userAttribute.
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

/// The ProvisionUser fields set directly rather than as userAttributes.
pub const DIRECT: &[&str] = &[
    "firstName",
    "lastName",
    "middleInit",
    "email",
    "title",
    "employeeId",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// The managed system the principal belongs to.
    pub managed_sys_id: String,
    /// The security domain of the principal and roles.
    pub security_domain: String,
    /// `lock` (lockUser locked / unlock) or `disable` (disableUser).
    pub deactivate: String,
    /// The requestorId sent with each call (for OpenIAM's audit log).
    pub requestor_id: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            managed_sys_id: "0".into(),
            security_domain: "USR_SEC_DOMAIN".into(),
            deactivate: "lock".into(),
            requestor_id: "scim-bridge".into(),
        }
    }
}

impl Options {
    pub fn check(&self) -> Result<(), String> {
        if self.deactivate != "lock" && self.deactivate != "disable" {
            return Err("deactivate is lock or disable".into());
        }
        Ok(())
    }
}

pub struct OpenIam {
    url: String,
    auth: Option<(String, Secret)>,
    opts: Options,
    client: BlockingClient,
}

/// A reply's `<return status="...">`: the errorCode on failure, the element on success.
#[derive(Debug)]
struct Reply {
    user_id: Option<String>,
}

/// Error codes a retry cannot fix.
fn permanent_code(code: &str) -> bool {
    !matches!(code, "FAIL_CONNECTOR" | "FAIL_OTHER" | "")
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
            auth,
            opts,
            client: BlockingClient::new(timeout),
        }
    }

    fn call(&self, op: &str, body: &str) -> Result<Reply, ConnectorError> {
        let envelope = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             xmlns:prov=\"{NS_PROVISION}\" xmlns:dto=\"{NS_USER}\" xmlns:dto3=\"{NS_ROLE}\">\
             <soapenv:Header/><soapenv:Body><prov:{op}>{body}</prov:{op}></soapenv:Body></soapenv:Envelope>"
        );
        let mut req = self
            .client
            .get()?
            .post(&self.url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", format!("\"{op}\""));
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
            // A SOAP fault is the server's trouble (CXF answers 500): retry.
            return Err(ConnectorError::Retryable {
                message: format!("{op}: SOAP fault: {msg}"),
                retry_after: super::retry_after(&headers),
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
            return Ok(Reply {
                user_id: text_of(ret, "userId").filter(|s| !s.is_empty()),
            });
        }
        let code = text_of(ret, "errorCode").unwrap_or_default();
        let detail = text_of(ret, "errorText").filter(|t| !t.is_empty());
        let msg = match detail {
            Some(t) => format!("{op}: {code}: {t}"),
            None => format!("{op}: {code}"),
        };
        if code == "DUPLICATE_PRINCIPAL" {
            return Err(ConnectorError::Conflict(msg));
        }
        if permanent_code(&code) {
            Err(ConnectorError::Permanent(msg))
        } else {
            Err(ConnectorError::retry(msg))
        }
    }

    fn principal(&self, login: &str, op: Option<&str>, orig: Option<&str>) -> String {
        let mut id = format!(
            "<id>{}{}{}</id>",
            el("domainId", &self.opts.security_domain),
            el("login", login),
            el("managedSysId", &self.opts.managed_sys_id)
        );
        if let Some(o) = orig {
            id.push_str(&el("origPrincipalName", o));
        }
        if let Some(op) = op {
            id.push_str(&el("operation", op));
        }
        format!("<dto:principalList>{id}</dto:principalList>")
    }

    fn role(&self, role: &str, delete: bool) -> String {
        format!(
            "<memberOfRoles><dto3:id>{}{}</dto3:id>{}</memberOfRoles>",
            format_args!("<dto3:roleId>{}</dto3:roleId>", esc(role)),
            format_args!(
                "<dto3:serviceId>{}</dto3:serviceId>",
                esc(&self.opts.security_domain)
            ),
            if delete {
                "<dto3:operation>delete</dto3:operation>"
            } else {
                ""
            }
        )
    }

    fn attribute(name: &str, value: &str, op: Op) -> String {
        format!(
            "<dto:userAttributeEntry key=\"{k}\"><dto:userAttribute><dto:name>{k}</dto:name>\
             <dto:value>{v}</dto:value><dto:operation>{o}</dto:operation></dto:userAttribute></dto:userAttributeEntry>",
            k = esc(name),
            v = esc(value),
            o = op.as_str()
        )
    }

    /// Looks the principal up in the managed system: the OpenIAM userId.
    fn target_user(&self, login: &str) -> Result<Option<String>, ConnectorError> {
        let body = format!(
            "{}{}",
            el("principalName", login),
            el("managedSysId", &self.opts.managed_sys_id)
        );
        match self.call("getTargetSystemUser", &body) {
            Ok(r) => Ok(r.user_id),
            Err(ConnectorError::Permanent(m))
                if m.contains("principalNotFound") || m.contains("userNotFound") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

impl Target for OpenIam {
    fn kind(&self) -> &'static str {
        "openiam"
    }

    fn principal_field(&self) -> &'static str {
        "login"
    }

    fn supports_passwords(&self) -> bool {
        true
    }

    fn supports_roles(&self) -> bool {
        true
    }

    /// addUser answers DUPLICATE_PRINCIPAL for a principal it has: the create adopts
    /// then, so no lookup is made first.
    fn lookup(&self, _principal: &str) -> Result<Option<String>, ConnectorError> {
        Ok(None)
    }

    fn create(&self, user: &User<'_>) -> Result<Created, ConnectorError> {
        let mut body = String::from("<user>");
        let mut attrs = String::new();
        for (k, v) in &user.fields {
            if DIRECT.contains(&k.as_str()) {
                body.push_str(&el(&format!("dto:{k}"), &text(v)));
            } else if k != "login" {
                attrs.push_str(&Self::attribute(k, &text(v), Op::Add));
            }
        }
        body.push_str(&el("dto:status", "active"));
        body.push_str(&self.principal(&user.principal, None, None));
        if !attrs.is_empty() {
            body.push_str(&format!("<dto:userAttributes>{attrs}</dto:userAttributes>"));
        }
        for r in &user.roles {
            body.push_str(&self.role(r, false));
        }
        body.push_str(&el("securityDomain", &self.opts.security_domain));
        body.push_str(&el("requestorId", &self.opts.requestor_id));
        body.push_str("</user>");
        match self.call("addUser", &body) {
            Ok(r) => {
                let id = r
                    .user_id
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
            Err(ConnectorError::Conflict(m)) if m.contains("DUPLICATE_PRINCIPAL") => {
                let id = self.target_user(&user.principal)?.ok_or_else(|| {
                    ConnectorError::Permanent(format!(
                        "addUser said DUPLICATE_PRINCIPAL but getTargetSystemUser does not find '{}'",
                        user.principal
                    ))
                })?;
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
        let mut body = format!("<user>{}", el("dto:userId", target_id));
        let mut attrs = String::new();
        let mut any = false;
        for c in changes {
            let value = c.new.as_ref().map(text).unwrap_or_default();
            if DIRECT.contains(&c.field.as_str()) {
                body.push_str(&el(&format!("dto:{}", c.field), &value));
                any = true;
            } else if c.field != "login" {
                let value = match c.op {
                    Op::Delete => c.old.as_ref().map(text).unwrap_or_default(),
                    _ => value,
                };
                attrs.push_str(&Self::attribute(&c.field, &value, c.op));
                any = true;
            }
        }
        if let Some(orig) = old_principal {
            body.push_str(&self.principal(&user.principal, Some("replace"), Some(orig)));
            any = true;
        }
        if !any {
            return Ok(());
        }
        if !attrs.is_empty() {
            body.push_str(&format!("<dto:userAttributes>{attrs}</dto:userAttributes>"));
        }
        body.push_str(&el("securityDomain", &self.opts.security_domain));
        body.push_str(&el("requestorId", &self.opts.requestor_id));
        body.push_str("</user>");
        self.call("modifyUser", &body).map(|_| ())
    }

    fn set_active(
        &self,
        target_id: &str,
        _user: &User<'_>,
        active: bool,
    ) -> Result<(), ConnectorError> {
        if self.opts.deactivate == "disable" {
            let body = format!(
                "{}{}{}",
                el("userId", target_id),
                el("operation", if active { "false" } else { "true" }),
                el("requestorId", &self.opts.requestor_id)
            );
            return self.call("disableUser", &body).map(|_| ());
        }
        let body = format!(
            "{}{}{}",
            el("userId", target_id),
            el("operation", if active { "unlock" } else { "locked" }),
            el("requestorId", &self.opts.requestor_id)
        );
        self.call("lockUser", &body).map(|_| ())
    }

    fn delete(&self, _target_id: &str, user: &User<'_>) -> Result<(), ConnectorError> {
        let body = format!(
            "{}{}{}{}{}",
            el("securityDomain", &self.opts.security_domain),
            el("managedSystemId", &self.opts.managed_sys_id),
            el("principal", &user.principal),
            el("status", "deleted"),
            el("requestorId", &self.opts.requestor_id)
        );
        match self.call("deleteUser", &body) {
            Err(ConnectorError::Permanent(m))
                if m.contains("principalNotFound") || m.contains("userNotFound") =>
            {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    fn set_password(
        &self,
        _target_id: &str,
        user: &User<'_>,
        password: &str,
    ) -> Result<(), ConnectorError> {
        let body = format!(
            "<passwordSync>{}{}{}{}{}</passwordSync>",
            el("securityDomain", &self.opts.security_domain),
            el("managedSystemId", &self.opts.managed_sys_id),
            el("principal", &user.principal),
            el("password", password),
            el("requestorId", &self.opts.requestor_id)
        );
        self.call("setPassword", &body).map(|_| ())
    }

    fn change_roles(
        &self,
        target_id: &str,
        _user: &User<'_>,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ConnectorError> {
        let mut body = format!("<user>{}", el("dto:userId", target_id));
        for r in add {
            body.push_str(&self.role(r, false));
        }
        for r in remove {
            body.push_str(&self.role(r, true));
        }
        body.push_str(&el("securityDomain", &self.opts.security_domain));
        body.push_str(&el("requestorId", &self.opts.requestor_id));
        body.push_str("</user>");
        self.call("modifyUser", &body).map(|_| ())
    }
}
