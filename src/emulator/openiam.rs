//! The `openiam` emulator: OpenIAM 2.x's ProvisioningService and LoginDataWebService over
//! SOAP 1.1, as its CXF server reads them. Every body is checked against the published WSDL
//! (`contracts/openiam-2x/`, read by [`super::wsdl`]): an element a bean does not declare is
//! CXF's "Unmarshalling Error" fault; an unknown wrapper parameter or an unreadable enum is
//! dropped silently, and recorded as such in `requests` so tests can see it. A SOAPAction
//! other than the binding's `""` is refused as a CXF with the CVE-2012-3451 fix refuses it.
//!
//! What the service does with what it reads (from `DefaultProvisioningService`): addUser
//! and modifyUser read ProvisionUser's own unqualified `principalList` and ignore the
//! inherited `dto:principalList` (addUser then builds its own login from the names, and a
//! rename sent that way is dropped while the reply says success); lockUser looks its
//! `requestorId` up as a user and faults when there is none; disableUser's audit reads
//! `requestor`; setPassword checks the password policy only when `validateRequest` is
//! true; a field set to the literal `null` is cleared. getTargetSystemUser (in the seed,
//! not in this WSDL) answers a LookupUserResponse, which has no OpenIAM userId;
//! `getLoginByManagedSys` on the login service answers the Login with its userId.
//! A service account (`sysadmin`, userId `3000`) exists from the start.
//!
//! What it does to a user over time (vendors.md section 6): deleteUser and deleteByUserId
//! are soft deletes (status `deleted`, the login kept and INACTIVE, so an addUser of the same
//! login answers DUPLICATE_PRINCIPAL and the login service still finds it); an identity
//! change (a principalList `replace`) sets the login's password to the one it carries, or
//! NULL, and clears its lock; a login made without a password keeps NULL, with which the
//! sign-in check (`POST /_emulator/login {login, password}`, as a 2.x login module that
//! skips the comparison for NULL) lets any password in; lockUser `locked` is what a
//! password lock-out sets and the unlock batch (`POST /_emulator/unlock_batch`) clears it,
//! `locked_admin` and disableUser stay; modifyUser for a userId it does not have is a SOAP
//! fault, as is a userAttribute `replace` or `delete` of an attribute the user does not
//! hold; a `delete` role on a user with no role adds it; setPassword checks the password
//! policy whatever validateRequest says, and resetPassword with a blank password makes one
//! from it; a path that names no service is CXF's 404.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{json, Value};

use super::wsdl::{Problem, Schema, Severity};
use super::{
    enter, lock, password_digest, Credentials, Drift, Drifted, Emulator, Injected, Shared,
};

/// The types of ProvisioningService, as OpenIAM published them.
pub const PROVISIONING_WSDL: &str =
    include_str!("../../contracts/openiam-2x/ProvisionControllerService.wsdl");
/// Its binding (the soapAction of each operation).
pub const BINDING_WSDL: &str = include_str!("../../contracts/openiam-2x/ProvisioningService.wsdl");
/// The login service's SoapUI project, with its WSDL inside.
pub const LOGIN_PROJECT: &str =
    include_str!("../../contracts/openiam-2x/LoginDataWebService-soapui-project.xml");

const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const PROV: &str = "http://www.openiam.org/service/provision";
const DTO: &str = "urn:idm.openiam.org/srvc/user/dto";
const ROLE: &str = "urn:idm.openiam.org/srvc/role/dto";
const AUTH: &str = "urn:idm.openiam.org/srvc/auth/service";

/// The service account every OpenIAM install has.
pub const SERVICE_ACCOUNT_ID: &str = "3000";
pub const SERVICE_ACCOUNT_LOGIN: &str = "sysadmin";

/// The provisioning and login schemas, read once.
pub fn provisioning_schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        Schema::from_documents(&[PROVISIONING_WSDL])
            .unwrap_or_else(|e| panic!("the embedded ProvisioningService WSDL does not read: {e}"))
    })
}

pub fn login_schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        Schema::from_documents(&[LOGIN_PROJECT])
            .unwrap_or_else(|e| panic!("the embedded LoginDataWebService WSDL does not read: {e}"))
    })
}

/// The soapAction the binding declares for each operation.
pub fn binding_actions() -> &'static HashMap<String, String> {
    static A: OnceLock<HashMap<String, String>> = OnceLock::new();
    A.get_or_init(|| {
        let mut out = HashMap::new();
        for text in [BINDING_WSDL, LOGIN_PROJECT] {
            let Ok(doc) = roxmltree::Document::parse(text) else {
                continue;
            };
            let mut docs = vec![text.to_string()];
            docs.extend(
                doc.descendants()
                    .filter(|n| n.tag_name().name() == "content")
                    .filter_map(|n| n.text().map(str::to_string)),
            );
            for d in docs {
                let Ok(doc) = roxmltree::Document::parse(&d) else {
                    continue;
                };
                for op in doc.descendants().filter(|n| {
                    n.tag_name().name() == "operation"
                        && n.parent().is_some_and(|p| p.tag_name().name() == "binding")
                }) {
                    if let (Some(name), Some(action)) = (
                        op.attribute("name"),
                        op.children()
                            .find(|c| c.tag_name().name() == "operation")
                            .and_then(|c| c.attribute("soapAction")),
                    ) {
                        out.insert(name.to_string(), action.to_string());
                    }
                }
            }
        }
        out
    })
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct EmUser {
    user_id: String,
    /// The User DTO's simple fields, by local name.
    fields: BTreeMap<String, String>,
    status: String,
    secondary_status: Option<String>,
    login: String,
    managed_sys_id: String,
    domain_id: String,
    attributes: BTreeMap<String, String>,
    roles: BTreeSet<String>,
    password_sha256: Option<String>,
    /// The Login's status: ACTIVE, or INACTIVE once the user is deleted.
    login_status: String,
    /// The Login's isLocked: 0 open, 1 locked (a lock-out, cleared by the unlock batch),
    /// 2 locked by an administrator.
    is_locked: u8,
}

/// One request as received, with what the real server would refuse or not read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Received {
    service: &'static str,
    op: String,
    soap_action: Option<String>,
    problems: Vec<Problem>,
    body: String,
}

#[derive(Debug, Default)]
struct Data {
    users: BTreeMap<String, EmUser>,
    accounts: BTreeMap<String, String>,
    next: u64,
    deleted: Vec<String>,
    /// Each call, as the operations it asked for (for tests and the curious).
    log: Vec<Value>,
    requests: Vec<Received>,
    /// Who each audited call names as its requestor (null when it named nobody).
    audit: Vec<Value>,
}

#[derive(Debug)]
pub struct OpenIamEmulator {
    creds: Credentials,
    shared: Mutex<Shared>,
    data: Mutex<Data>,
}

impl OpenIamEmulator {
    pub fn new(creds: Credentials) -> OpenIamEmulator {
        let mut data = Data::default();
        data.accounts
            .insert(SERVICE_ACCOUNT_ID.into(), SERVICE_ACCOUNT_LOGIN.into());
        OpenIamEmulator {
            creds,
            shared: Mutex::new(Shared::default()),
            data: Mutex::new(data),
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn kid<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    ns: &str,
    name: &str,
) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| {
        c.is_element()
            && c.tag_name().name() == name
            && c.tag_name().namespace().unwrap_or_default() == ns
    })
}

fn kids<'a, 'i: 'a>(
    n: roxmltree::Node<'a, 'i>,
    ns: &'a str,
    name: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
    n.children().filter(move |c| {
        c.is_element()
            && c.tag_name().name() == name
            && c.tag_name().namespace().unwrap_or_default() == ns
    })
}

fn txt(n: roxmltree::Node<'_, '_>, ns: &str, name: &str) -> Option<String> {
    kid(n, ns, name).map(|c| c.text().unwrap_or("").trim().to_string())
}

fn envelope(ns: &str, op: &str, inner: &str) -> HttpResponse {
    HttpResponse::Ok().content_type("text/xml; charset=utf-8").body(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"{SOAP}\">\
         <soap:Body><ns2:{op}Response xmlns:ns2=\"{ns}\" xmlns:ns3=\"{DTO}\">{inner}</ns2:{op}Response></soap:Body></soap:Envelope>"
    ))
}

fn success(op: &str, inner: &str) -> HttpResponse {
    envelope(
        PROV,
        op,
        &format!("<return status=\"success\">{inner}</return>"),
    )
}

fn failure(op: &str, code: &str) -> HttpResponse {
    envelope(
        PROV,
        op,
        &format!(
            "<return status=\"failure\"><errorCode>{}</errorCode></return>",
            esc(code)
        ),
    )
}

fn soap_fault(code: &str, message: &str) -> HttpResponse {
    HttpResponse::InternalServerError()
        .content_type("text/xml; charset=utf-8")
        .body(format!(
            "<soap:Envelope xmlns:soap=\"{SOAP}\"><soap:Body><soap:Fault>\
             <faultcode>soap:{code}</faultcode><faultstring>{}</faultstring></soap:Fault></soap:Body></soap:Envelope>",
            esc(message)
        ))
}

fn user_xml(u: &EmUser) -> String {
    let mut s = String::from("<user>");
    for (k, v) in &u.fields {
        s.push_str(&format!("<ns3:{k}>{}</ns3:{k}>", esc(v)));
    }
    s.push_str(&format!("<ns3:status>{}</ns3:status>", esc(&u.status)));
    if let Some(st) = &u.secondary_status {
        s.push_str(&format!(
            "<ns3:secondaryStatus>{}</ns3:secondaryStatus>",
            esc(st)
        ));
    }
    if !u.attributes.is_empty() {
        s.push_str("<ns3:userAttributes>");
        for (k, v) in &u.attributes {
            s.push_str(&format!(
                "<ns3:userAttributeEntry key=\"{k}\"><ns3:userAttribute><ns3:name>{k}</ns3:name>\
                 <ns3:value>{}</ns3:value></ns3:userAttribute></ns3:userAttributeEntry>",
                esc(v),
                k = esc(k)
            ));
        }
        s.push_str("</ns3:userAttributes>");
    }
    s.push_str(&format!("<ns3:userId>{}</ns3:userId>", esc(&u.user_id)));
    s.push_str(&format!(
        "<principalList><id><domainId>{}</domainId><login>{}</login><managedSysId>{}</managedSysId></id></principalList></user>",
        esc(&u.domain_id),
        esc(&u.login),
        esc(&u.managed_sys_id)
    ));
    s
}

/// The User DTO's children that are not simple fields.
const STRUCTURED: &[&str] = &[
    "addresses",
    "emailAddresses",
    "phones",
    "userAttributes",
    "userNotes",
    "supervisor",
    "principalList",
    "userId",
    "status",
    "secondaryStatus",
];

/// What a call asked for: its fields, user attribute and role operations and principal.
fn summary(op: &str, wrapper: roxmltree::Node<'_, '_>) -> Value {
    let user = kid(wrapper, "", "user");
    let attrs: Vec<Value> = user
        .and_then(|u| kid(u, DTO, "userAttributes"))
        .map(|a| {
            kids(a, DTO, "userAttributeEntry")
                .filter_map(|e| kid(e, DTO, "userAttribute"))
                .map(|a| json!({"name": txt(a, DTO, "name"), "value": txt(a, DTO, "value"), "operation": txt(a, DTO, "operation")}))
                .collect()
        })
        .unwrap_or_default();
    let roles: Vec<Value> = user
        .map(|u| {
            kids(u, "", "memberOfRoles")
                .map(|r| json!({"roleId": kid(r, ROLE, "id").and_then(|i| txt(i, ROLE, "roleId")),
                                "operation": txt(r, ROLE, "operation").unwrap_or_else(|| "add".into())}))
                .collect()
        })
        .unwrap_or_default();
    let principal = user.and_then(|u| kid(u, "", "principalList")).map(|p| {
        json!({"login": kid(p, "", "id").and_then(|i| txt(i, "", "login")),
               "origPrincipalName": txt(p, "", "origPrincipalName"), "operation": txt(p, "", "operation")})
    });
    let fields: serde_json::Map<String, Value> = user
        .map(|u| {
            u.children()
                .filter(|c| c.is_element() && c.tag_name().namespace() == Some(DTO))
                .filter(|c| !STRUCTURED.contains(&c.tag_name().name()))
                .map(|c| {
                    (
                        c.tag_name().name().to_string(),
                        json!(c.text().unwrap_or("").trim()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({"op": op, "userId": user.and_then(|u| txt(u, DTO, "userId")).or_else(|| txt(wrapper, "", "userId")),
           "fields": fields, "attributes": attrs, "roles": roles, "principal": principal,
           "operation": txt(wrapper, "", "operation")})
}

fn find_login<'a>(data: &'a mut Data, login: &str, managed_sys: &str) -> Option<&'a mut EmUser> {
    data.users.values_mut().find(|u| {
        u.login.eq_ignore_ascii_case(login)
            && (managed_sys.is_empty() || u.managed_sys_id == managed_sys)
    })
}

/// A deleted user: status DELETED, its login kept and INACTIVE.
fn soft_delete(u: &mut EmUser) {
    u.status = "deleted".into();
    u.login_status = "INACTIVE".into();
}

/// User.updateAttributes decides add or replace itself; a `replace` or `delete` of an
/// attribute the user does not hold dereferences nothing: a NullPointerException.
fn check_attributes(u: &EmUser, user: roxmltree::Node<'_, '_>) -> Result<(), Box<HttpResponse>> {
    let Some(attrs) = kid(user, DTO, "userAttributes") else {
        return Ok(());
    };
    for a in kids(attrs, DTO, "userAttributeEntry").filter_map(|e| kid(e, DTO, "userAttribute")) {
        let name = txt(a, DTO, "name").unwrap_or_default();
        let op = txt(a, DTO, "operation");
        if matches!(op.as_deref(), Some("replace" | "delete")) && !u.attributes.contains_key(&name)
        {
            return Err(Box::new(soap_fault(
                "Server",
                &format!("java.lang.NullPointerException (userAttribute {name})"),
            )));
        }
    }
    Ok(())
}

/// Applies a ProvisionUser's fields, attributes and roles to a user.
fn apply_user(u: &mut EmUser, user: roxmltree::Node<'_, '_>) -> Result<(), Box<HttpResponse>> {
    check_attributes(u, user)?;
    for c in user
        .children()
        .filter(|c| c.is_element() && c.tag_name().namespace() == Some(DTO))
        .filter(|c| !STRUCTURED.contains(&c.tag_name().name()))
    {
        let name = c.tag_name().name().to_string();
        let value = c.text().unwrap_or("").trim().to_string();
        if value == "null" {
            u.fields.remove(&name);
        } else {
            u.fields.insert(name, value);
        }
    }
    if let Some(attrs) = kid(user, DTO, "userAttributes") {
        for a in kids(attrs, DTO, "userAttributeEntry").filter_map(|e| kid(e, DTO, "userAttribute"))
        {
            let name = txt(a, DTO, "name").unwrap_or_default();
            let value = txt(a, DTO, "value").unwrap_or_default();
            match txt(a, DTO, "operation").as_deref() {
                Some("delete") => {
                    u.attributes.remove(&name);
                }
                Some("nochange") => {}
                _ => {
                    u.attributes.insert(name, value);
                }
            }
        }
    }
    // A user with no role at all gets every role in the request, whatever its operation.
    let roleless = u.roles.is_empty();
    for r in kids(user, "", "memberOfRoles") {
        let role = kid(r, ROLE, "id")
            .and_then(|i| txt(i, ROLE, "roleId"))
            .unwrap_or_default();
        if role.is_empty() {
            continue;
        }
        if txt(r, ROLE, "operation").as_deref() == Some("delete") && !roleless {
            u.roles.remove(&role);
        } else {
            u.roles.insert(role);
        }
    }
    Ok(())
}

fn provisioning(data: &mut Data, op: &str, w: roxmltree::Node<'_, '_>) -> HttpResponse {
    let arg = |name: &str| txt(w, "", name).unwrap_or_default();
    match op {
        "addUser" => {
            let Some(user) = kid(w, "", "user") else {
                return soap_fault("Server", "java.lang.NullPointerException");
            };
            // ProvisionUser's own principalList; the inherited dto:principalList is ignored.
            let principal = kid(user, "", "principalList");
            let id = principal.and_then(|p| kid(p, "", "id"));
            let managed = id
                .and_then(|i| txt(i, "", "managedSysId"))
                .unwrap_or_else(|| "0".into());
            let domain = id
                .and_then(|i| txt(i, "", "domainId"))
                .or_else(|| txt(user, "", "securityDomain"))
                .unwrap_or_default();
            let login = match id
                .and_then(|i| txt(i, "", "login"))
                .filter(|l| !l.is_empty())
            {
                Some(l) => l,
                // No principal: the service builds its own from the names.
                None => format!(
                    "{}.{}",
                    txt(user, DTO, "firstName").unwrap_or_default(),
                    txt(user, DTO, "lastName").unwrap_or_default()
                )
                .to_lowercase(),
            };
            if find_login(data, &login, &managed).is_some() {
                return failure(op, "DUPLICATE_PRINCIPAL");
            }
            // The principal's own password, or none: a NULL password.
            let password = principal
                .and_then(|p| txt(p, "", "password"))
                .filter(|p| !p.is_empty());
            data.next += 1;
            let mut u = EmUser {
                user_id: format!("U{:06}", data.next),
                status: txt(user, DTO, "status").unwrap_or_else(|| "active".into()),
                login,
                managed_sys_id: managed,
                domain_id: domain,
                password_sha256: password.as_deref().map(password_digest),
                login_status: "ACTIVE".into(),
                ..Default::default()
            };
            if let Err(fault) = apply_user(&mut u, user) {
                return *fault;
            }
            let xml = user_xml(&u);
            data.users.insert(u.user_id.clone(), u);
            success(op, &xml)
        }
        "modifyUser" => {
            let Some(user) = kid(w, "", "user") else {
                return soap_fault("Server", "java.lang.NullPointerException");
            };
            let id = txt(user, DTO, "userId").unwrap_or_default();
            let rename = kid(user, "", "principalList").and_then(|p| {
                (txt(p, "", "operation").as_deref() == Some("replace")).then(|| {
                    (
                        kid(p, "", "id")
                            .and_then(|i| txt(i, "", "login"))
                            .unwrap_or_default(),
                        txt(p, "", "origPrincipalName").unwrap_or_default(),
                        txt(p, "", "password").filter(|p| !p.is_empty()),
                    )
                })
            });
            let managed = data.users.get(&id).map(|u| u.managed_sys_id.clone());
            let Some(managed) = managed else {
                // ModifyUser looks the user up and throws for an id it does not have.
                return soap_fault(
                    "Server",
                    &format!("java.lang.IllegalArgumentException: no user with id {id}"),
                );
            };
            if let Some((new, _, _)) = &rename {
                if data.users.values().any(|u| {
                    u.login.eq_ignore_ascii_case(new)
                        && u.managed_sys_id == managed
                        && u.user_id != id
                }) {
                    return failure(op, "DUPLICATE_PRINCIPAL");
                }
            }
            let Some(u) = data.users.get_mut(&id) else {
                return failure(op, "userNotFound");
            };
            if let Some((_, orig, _)) = &rename {
                if !orig.eq_ignore_ascii_case(&u.login) {
                    return failure(op, "principalNotFound");
                }
            }
            if let Err(fault) = check_attributes(u, user) {
                return *fault;
            }
            if let Some((new, _, password)) = rename {
                // LoginDAO.changeIdentity: login, password (the request's, or NULL),
                // isLocked 0, authFailCount 0.
                u.login = new;
                u.password_sha256 = password.as_deref().map(password_digest);
                u.is_locked = 0;
            }
            if let Err(fault) = apply_user(u, user) {
                return *fault;
            }
            // Setting the status: `active` makes a deleted user, and its login, active again.
            if let Some(status) = txt(user, DTO, "status").filter(|s| !s.is_empty()) {
                if status == "active" {
                    u.login_status = "ACTIVE".into();
                }
                u.status = status;
            }
            let xml = user_xml(u);
            success(op, &xml)
        }
        "lockUser" => {
            let requestor = arg("requestorId");
            let known =
                data.users.contains_key(&requestor) || data.accounts.contains_key(&requestor);
            if !known {
                // getPrimaryIdentity(requestorId) is null for an unknown id.
                return soap_fault("Server", "java.lang.NullPointerException");
            }
            data.audit.push(json!({"op": op, "requestor": requestor}));
            let operation = arg("operation");
            let Some(u) = data.users.get_mut(&arg("userId")) else {
                return failure(op, "userNotFound");
            };
            match operation.as_str() {
                "locked" => {
                    u.secondary_status = Some(operation);
                    u.is_locked = 1;
                }
                "locked_admin" => {
                    u.secondary_status = Some(operation);
                    u.is_locked = 2;
                }
                "unlock" => {
                    u.secondary_status = None;
                    u.is_locked = 0;
                }
                _ => return soap_fault("Server", "java.lang.NullPointerException"),
            }
            success(op, "")
        }
        "disableUser" => {
            let requestor = txt(w, "", "requestor");
            data.audit.push(json!({"op": op, "requestor": requestor}));
            let disable = matches!(arg("operation").as_str(), "true" | "1");
            let Some(u) = data.users.get_mut(&arg("userId")) else {
                return failure(op, "userNotFound");
            };
            u.secondary_status = disable.then(|| "disabled".to_string());
            success(op, "")
        }
        "deleteUser" => {
            data.audit
                .push(json!({"op": op, "requestor": txt(w, "", "requestorId")}));
            let Some(u) = find_login(data, &arg("principal"), &arg("managedSystemId")) else {
                return failure(op, "principalNotFound");
            };
            soft_delete(u);
            let id = u.user_id.clone();
            data.deleted.push(id);
            success(op, "<user/>")
        }
        "deleteByUserId" => {
            data.audit
                .push(json!({"op": op, "requestor": txt(w, "", "requestorId")}));
            let id = kid(w, "", "user")
                .and_then(|u| txt(u, DTO, "userId"))
                .unwrap_or_default();
            let Some(u) = data.users.get_mut(&id) else {
                return failure(op, "userNotFound");
            };
            soft_delete(u);
            data.deleted.push(id);
            success(op, "<user/>")
        }
        "setPassword" | "resetPassword" => {
            let Some(sync) = kid(w, "", "passwordSync") else {
                return soap_fault("Server", "java.lang.NullPointerException");
            };
            let p = |n: &str| txt(sync, "", n).unwrap_or_default();
            let password = p("password");
            let Some(u) = find_login(data, &p("principal"), &p("managedSystemId")) else {
                return failure(op, "principalNotFound");
            };
            // resetPassword with a blank password makes one from the policy.
            let password = if op == "resetPassword" && password.is_empty() {
                format!("Gen-{}-9a", uuid::Uuid::new_v4().simple())
            } else {
                password
            };
            let digest = password_digest(&password);
            // The policy is checked whatever validateRequest says.
            if password.chars().count() < 8 {
                return failure(op, "FAIL_LENGTH_RULE");
            }
            if u.password_sha256.as_deref() == Some(digest.as_str()) {
                return failure(op, "FAIL_HISTORY_RULE");
            }
            u.password_sha256 = Some(digest);
            success(op, "")
        }
        other => soap_fault("Client", &format!("no operation {other}")),
    }
}

/// getTargetSystemUser, from the seed: asks the managed system for the principal and
/// answers a LookupUserResponse, which carries no OpenIAM userId.
fn target_system_user(data: &mut Data, w: roxmltree::Node<'_, '_>) -> HttpResponse {
    let principal = txt(w, "", "principalName").unwrap_or_default();
    let managed = txt(w, "", "managedSysId").unwrap_or_default();
    let Some(u) = find_login(data, &principal, &managed) else {
        return failure("getTargetSystemUser", "principalNotFound");
    };
    let attrs: String = u
        .fields
        .iter()
        .chain(u.attributes.iter())
        .map(|(k, v)| {
            format!(
                "<attrList><ns3:name>{}</ns3:name><ns3:value>{}</ns3:value></attrList>",
                esc(k),
                esc(v)
            )
        })
        .collect();
    success(
        "getTargetSystemUser",
        &format!(
            "{attrs}<principalName>{}</principalName><managedSysId>{}</managedSysId>",
            esc(&u.login),
            esc(&u.managed_sys_id)
        ),
    )
}

fn login_service(data: &mut Data, op: &str, w: roxmltree::Node<'_, '_>) -> HttpResponse {
    let arg = |name: &str| txt(w, "", name).unwrap_or_default();
    match op {
        "getLoginByManagedSys" => {
            let (domain, principal, managed) =
                (arg("domainId"), arg("principal"), arg("managedSysId"));
            let found = find_login(data, &principal, &managed)
                .filter(|u| domain.is_empty() || u.domain_id.is_empty() || u.domain_id == domain);
            let inner = match found {
                Some(u) => format!(
                    "<return status=\"success\"><principal><id><domainId>{}</domainId><login>{}</login>\
                     <managedSysId>{}</managedSysId></id><userId>{}</userId><firstTimeLogin>0</firstTimeLogin>\
                     <resetPassword>0</resetPassword><isLocked>{}</isLocked><status>{}</status><selected>false</selected></principal></return>",
                    esc(&u.domain_id),
                    esc(&u.login),
                    esc(&u.managed_sys_id),
                    esc(&u.user_id),
                    u.is_locked,
                    esc(&u.login_status)
                ),
                None => "<return status=\"failure\"><errorCode>principalNotFound</errorCode></return>".into(),
            };
            envelope(AUTH, op, &inner)
        }
        // The user owning a login, as a UserResponse: the User DTO whole.
        "getUserByLogin" => {
            let (domain, principal, managed) =
                (arg("domainId"), arg("principal"), arg("managedSysId"));
            let found = find_login(data, &principal, &managed)
                .filter(|u| domain.is_empty() || u.domain_id.is_empty() || u.domain_id == domain);
            let inner = match found {
                Some(u) => format!("<return status=\"success\">{}</return>", user_xml(u)),
                None => {
                    "<return status=\"failure\"><errorCode>principalNotFound</errorCode></return>"
                        .into()
                }
            };
            envelope(AUTH, op, &inner)
        }
        // Every login of a security domain, as a LoginListResponse.
        "getLoginByDomain" => {
            let domain = arg("domainId");
            let logins: String = data
                .users
                .values()
                .filter(|u| u.domain_id.is_empty() || u.domain_id == domain)
                .map(|u| {
                    format!(
                        "<principalList><id><domainId>{}</domainId><login>{}</login><managedSysId>{}</managedSysId></id>\
                         <userId>{}</userId></principalList>",
                        esc(&domain),
                        esc(&u.login),
                        esc(&u.managed_sys_id),
                        esc(&u.user_id)
                    )
                })
                .collect();
            envelope(
                AUTH,
                op,
                &format!("<return status=\"success\">{logins}</return>"),
            )
        }
        other => soap_fault("Client", &format!("no operation {other} in this emulator")),
    }
}

/// The sign-in a 2.x login module makes: the login found, the user not deleted, disabled or
/// inactive, the login not locked, and the password compared, unless the login has none
/// (NULL), when that module skips the comparison and lets any password in.
async fn login_check(e: web::Data<OpenIamEmulator>, body: web::Json<Value>) -> HttpResponse {
    let login = body
        .get("login")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let password = body
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut data = lock(&e.data);
    let refused =
        |why: &str| HttpResponse::Forbidden().json(json!({"signedIn": false, "why": why}));
    let Some(u) = find_login(&mut data, login, "") else {
        return refused("no such login");
    };
    if u.status != "active" || u.login_status != "ACTIVE" {
        return refused(&format!("the user is {}", u.status));
    }
    if u.secondary_status.as_deref() == Some("disabled") {
        return refused("the user is disabled");
    }
    if u.is_locked != 0 {
        return refused("the login is locked");
    }
    match &u.password_sha256 {
        None => HttpResponse::Ok().json(json!({"signedIn": true, "userId": u.user_id,
            "why": "the login has no password, and this login module then skips the comparison"})),
        Some(d) if *d == password_digest(password) => {
            HttpResponse::Ok().json(json!({"signedIn": true, "userId": u.user_id}))
        }
        Some(_) => refused("wrong password"),
    }
}

/// LoginDataService.bulkUnLock, as the scheduled batch runs it once AUTO_UNLOCK_TIME has
/// passed: every login a lock-out locked (isLocked 1) is unlocked; those an administrator
/// locked, and disabled users, stay as they are.
async fn unlock_batch(e: web::Data<OpenIamEmulator>) -> HttpResponse {
    let mut data = lock(&e.data);
    let mut unlocked = Vec::new();
    for u in data.users.values_mut().filter(|u| u.is_locked == 1) {
        u.is_locked = 0;
        if u.secondary_status.as_deref() == Some("locked") {
            u.secondary_status = None;
        }
        unlocked.push(u.login.clone());
    }
    HttpResponse::Ok().json(json!({"unlocked": unlocked}))
}

async fn endpoint(e: web::Data<OpenIamEmulator>, req: HttpRequest, body: String) -> HttpResponse {
    // CXF serves its services by path; any other path names no service.
    let path = req.path().trim_end_matches('/');
    if !path.ends_with("/ProvisioningService") && !path.ends_with("/LoginDataWebService") {
        return HttpResponse::NotFound()
            .content_type("text/plain")
            .body("No service was found.");
    }
    if !e.creds.basic_ok(&req) {
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Basic realm=\"openiam\""))
            .finish();
    }
    let Ok(doc) = roxmltree::Document::parse(&body) else {
        return soap_fault("Client", "Unmarshalling Error: the request is not XML");
    };
    let Some(wrapper) = doc
        .descendants()
        .find(|n| n.tag_name().name() == "Body" && n.tag_name().namespace() == Some(SOAP))
        .and_then(|b| b.first_element_child())
    else {
        return soap_fault("Client", "no SOAP 1.1 Body");
    };
    let op = wrapper.tag_name().name().to_string();
    let login = req
        .path()
        .trim_end_matches('/')
        .ends_with("LoginDataWebService");
    let action = req
        .headers()
        .get("SOAPAction")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_matches('"').to_string());
    let fault = enter(&e.shared, &op).await;
    let mut data = lock(&e.data);
    let seed_only = !login && op == "getTargetSystemUser";
    let problems = if seed_only {
        Vec::new()
    } else if login {
        login_schema().check(wrapper)
    } else {
        provisioning_schema().check(wrapper)
    };
    data.requests.push(Received {
        service: if login {
            "LoginDataWebService"
        } else {
            "ProvisioningService"
        },
        op: op.clone(),
        soap_action: action.clone(),
        problems: problems.clone(),
        body: body.clone(),
    });
    data.log.push(summary(&op, wrapper));
    // The binding declares soapAction="" for every operation.
    if let Some(a) = action.filter(|a| !a.is_empty()) {
        let declared = binding_actions().get(&op).map(String::as_str);
        if declared != Some(a.as_str()) {
            return soap_fault(
                "Client",
                &format!("The given SOAPAction {a} does not match an operation."),
            );
        }
    }
    match fault {
        Some(Injected::Down) => return HttpResponse::ServiceUnavailable().body("down"),
        Some(Injected::Fail {
            error: Some(code), ..
        }) => return failure(&op, &code),
        Some(Injected::Fail { .. }) => return soap_fault("Server", "injected failure"),
        None => {}
    }
    if let Some(p) = problems.iter().find(|p| p.severity == Severity::Refused) {
        return soap_fault("Client", &p.message);
    }
    let expected_ns = if login { AUTH } else { PROV };
    if wrapper.tag_name().namespace() != Some(expected_ns) {
        return soap_fault(
            "Client",
            &format!(
                "Message part {{{}}}{op} was not recognized.  (Does it exist in service WSDL?)",
                wrapper.tag_name().namespace().unwrap_or_default()
            ),
        );
    }
    if seed_only {
        return target_system_user(&mut data, wrapper);
    }
    if login {
        login_service(&mut data, &op, wrapper)
    } else {
        provisioning(&mut data, &op, wrapper)
    }
}

impl Emulator for OpenIamEmulator {
    fn shared(&self) -> &Mutex<Shared> {
        &self.shared
    }

    fn state(&self) -> Value {
        let data = lock(&self.data);
        json!({"kind": "openiam", "users": data.users.values().collect::<Vec<_>>(),
               "serviceAccounts": data.accounts, "deleted": data.deleted, "log": data.log,
               "requests": data.requests, "audit": data.audit})
    }

    fn configure(self: Arc<Self>, cfg: &mut web::ServiceConfig) {
        cfg.route("/_emulator/login", web::post().to(login_check))
            .route("/_emulator/unlock_batch", web::post().to(unlock_batch))
            .route("/{tail:.*}", web::post().to(endpoint));
    }

    /// Changes a user behind the bridge's back, found by its login: `secondaryStatus`
    /// (locked, disabled, or "" for none), a simple User DTO field, or else a
    /// userAttribute; "" removes the value.
    fn drift(&self, d: &Drift) -> Drifted {
        let mut data = lock(&self.data);
        let Some(u) = find_login(&mut data, &d.user, "") else {
            return Drifted::NoSuchUser;
        };
        if d.delete {
            let id = u.user_id.clone();
            data.users.remove(&id);
            data.deleted.push(id);
            return Drifted::Done;
        }
        let dto = provisioning_schema().declared(DTO, "user");
        for (k, v) in &d.set {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let field = dto.iter().any(|q| q.1 == *k);
            match (k.as_str(), v.is_empty()) {
                ("secondaryStatus", true) => u.secondary_status = None,
                ("secondaryStatus", false) => u.secondary_status = Some(v),
                ("status", _) => u.status = v,
                (_, true) if field => {
                    u.fields.remove(k);
                }
                (_, false) if field => {
                    u.fields.insert(k.clone(), v);
                }
                (_, true) => {
                    u.attributes.remove(k);
                }
                (_, false) => {
                    u.attributes.insert(k.clone(), v);
                }
            }
        }
        Drifted::Done
    }
}
