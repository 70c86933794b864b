//! The `openiam` emulator: ProvisioningService over SOAP 1.1 as OpenIAM 2.x answers it.
//! addUser (DUPLICATE_PRINCIPAL for a login it has), modifyUser (direct fields, user
//! attributes by operation, roles added or deleted, a principal `replace` with
//! origPrincipalName), lockUser, disableUser, deleteUser, setPassword (a password policy:
//! at least 8 characters, not the current one), getTargetSystemUser. Replies carry
//! `<return status="success|failure">` with an errorCode. HTTP Basic is required only when
//! it was started with credentials.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{json, Value};

use super::{enter, lock, password_digest, Credentials, Emulator, Injected, Shared};
use crate::connectors::openiam::{DIRECT, NS_PROVISION, NS_USER};
use crate::connectors::xml::{children, el, esc, find, text_of};

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct EmUser {
    user_id: String,
    fields: BTreeMap<String, String>,
    status: String,
    secondary_status: Option<String>,
    login: String,
    managed_sys_id: String,
    attributes: BTreeMap<String, String>,
    roles: BTreeSet<String>,
    password_sha256: Option<String>,
}

#[derive(Debug, Default)]
struct Data {
    users: BTreeMap<String, EmUser>,
    next: u64,
    deleted: Vec<String>,
    /// Each call, as the operations it asked for (for tests and the curious).
    log: Vec<Value>,
}

/// What a call asked for: its user attribute and role operations and principal change.
fn summary(op: &str, body: roxmltree::Node<'_, '_>) -> Value {
    let attrs: Vec<Value> = body
        .descendants()
        .filter(|n| n.tag_name().name() == "userAttribute")
        .map(|a| json!({"name": text_of(a, "name"), "value": text_of(a, "value"), "operation": text_of(a, "operation")}))
        .collect();
    let roles: Vec<Value> = body
        .descendants()
        .filter(|n| n.tag_name().name() == "memberOfRoles")
        .map(|r| json!({"roleId": text_of(r, "roleId"),
                        "operation": children(r, "operation").next().and_then(|o| o.text()).unwrap_or("add")}))
        .collect();
    let principal = find(body, "principalList").map(|p| {
        json!({"login": text_of(p, "login"), "origPrincipalName": text_of(p, "origPrincipalName"),
               "operation": text_of(p, "operation")})
    });
    let direct: serde_json::Map<String, Value> = DIRECT
        .iter()
        .filter_map(|f| text_of(body, f).map(|v| (f.to_string(), json!(v))))
        .collect();
    json!({"op": op, "userId": text_of(body, "userId"), "fields": direct, "attributes": attrs,
           "roles": roles, "principal": principal, "operation": text_of(body, "operation")})
}

#[derive(Debug, Default)]
pub struct OpenIamEmulator {
    creds: Credentials,
    shared: Mutex<Shared>,
    data: Mutex<Data>,
}

impl OpenIamEmulator {
    pub fn new(creds: Credentials) -> OpenIamEmulator {
        OpenIamEmulator {
            creds,
            ..Default::default()
        }
    }
}

fn envelope(op: &str, inner: &str) -> HttpResponse {
    HttpResponse::Ok().content_type("text/xml; charset=utf-8").body(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <soap:Body><ns2:{op}Response xmlns:ns2=\"{NS_PROVISION}\" xmlns:dto=\"{NS_USER}\">{inner}</ns2:{op}Response></soap:Body></soap:Envelope>"
    ))
}

fn success(op: &str, inner: &str) -> HttpResponse {
    envelope(op, &format!("<return status=\"success\">{inner}</return>"))
}

fn failure(op: &str, code: &str) -> HttpResponse {
    envelope(
        op,
        &format!(
            "<return status=\"failure\">{}</return>",
            el("errorCode", code)
        ),
    )
}

fn soap_fault(message: &str) -> HttpResponse {
    HttpResponse::InternalServerError()
        .content_type("text/xml; charset=utf-8")
        .body(format!(
            "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><soap:Fault>\
             <faultcode>soap:Server</faultcode><faultstring>{}</faultstring></soap:Fault></soap:Body></soap:Envelope>",
            esc(message)
        ))
}

fn user_xml(u: &EmUser) -> String {
    let mut s = format!("<user>{}", el("dto:userId", &u.user_id));
    for (k, v) in &u.fields {
        s.push_str(&el(&format!("dto:{k}"), v));
    }
    s.push_str(&el("dto:status", &u.status));
    s.push_str("</user>");
    s
}

fn by_login<'a>(data: &'a mut Data, login: &str) -> Option<&'a mut EmUser> {
    data.users
        .values_mut()
        .find(|u| u.login.eq_ignore_ascii_case(login))
}

fn apply_user(u: &mut EmUser, user: roxmltree::Node<'_, '_>) {
    for f in DIRECT {
        if let Some(v) = text_of(user, f) {
            if v.is_empty() {
                u.fields.remove(*f);
            } else {
                u.fields.insert(f.to_string(), v);
            }
        }
    }
    if let Some(attrs) = find(user, "userAttributes") {
        for a in attrs
            .descendants()
            .filter(|n| n.tag_name().name() == "userAttribute")
        {
            let name = text_of(a, "name").unwrap_or_default();
            let value = text_of(a, "value").unwrap_or_default();
            match text_of(a, "operation").as_deref() {
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
    for r in children(user, "memberOfRoles") {
        let role = text_of(r, "roleId").unwrap_or_default();
        let delete = children(r, "operation").any(|o| o.text() == Some("delete"));
        if delete {
            u.roles.remove(&role);
        } else {
            u.roles.insert(role);
        }
    }
}

fn handle(e: &OpenIamEmulator, op: &str, body: roxmltree::Node<'_, '_>) -> HttpResponse {
    let mut data = lock(&e.data);
    data.log.push(summary(op, body));
    let arg = |name: &str| text_of(body, name).unwrap_or_default();
    match op {
        "addUser" => {
            let Some(user) = find(body, "user") else {
                return soap_fault("addUser: no user");
            };
            let Some(principal) = find(user, "principalList") else {
                return failure(op, "principalNotFound");
            };
            let login = text_of(principal, "login").unwrap_or_default();
            if login.is_empty() {
                return failure(op, "principalNotFound");
            }
            if by_login(&mut data, &login).is_some() {
                return failure(op, "DUPLICATE_PRINCIPAL");
            }
            data.next += 1;
            let mut u = EmUser {
                user_id: format!("U{:06}", data.next),
                status: text_of(user, "status").unwrap_or_else(|| "active".into()),
                login,
                managed_sys_id: text_of(principal, "managedSysId").unwrap_or_default(),
                ..Default::default()
            };
            apply_user(&mut u, user);
            let xml = user_xml(&u);
            data.users.insert(u.user_id.clone(), u);
            success(op, &xml)
        }
        "modifyUser" => {
            let Some(user) = find(body, "user") else {
                return soap_fault("modifyUser: no user");
            };
            let id = text_of(user, "userId").unwrap_or_default();
            let rename = find(user, "principalList").and_then(|p| {
                (text_of(p, "operation").as_deref() == Some("replace")).then(|| {
                    (
                        text_of(p, "login").unwrap_or_default(),
                        text_of(p, "origPrincipalName").unwrap_or_default(),
                    )
                })
            });
            if let Some((new, _)) = &rename {
                if data
                    .users
                    .values()
                    .any(|u| u.login.eq_ignore_ascii_case(new) && u.user_id != id)
                {
                    return failure(op, "DUPLICATE_PRINCIPAL");
                }
            }
            let Some(u) = data.users.get_mut(&id) else {
                return failure(op, "userNotFound");
            };
            if let Some((new, orig)) = rename {
                if !orig.eq_ignore_ascii_case(&u.login) {
                    return failure(op, "principalNotFound");
                }
                u.login = new;
            }
            apply_user(u, user);
            let xml = user_xml(u);
            success(op, &xml)
        }
        "lockUser" => {
            let Some(u) = data.users.get_mut(&arg("userId")) else {
                return failure(op, "userNotFound");
            };
            match arg("operation").as_str() {
                "locked" | "locked_admin" => {
                    u.secondary_status = Some(arg("operation"));
                }
                "unlock" => u.secondary_status = None,
                _ => return soap_fault("lockUser: operation is locked, locked_admin or unlock"),
            }
            success(op, "")
        }
        "disableUser" => {
            let Some(u) = data.users.get_mut(&arg("userId")) else {
                return failure(op, "userNotFound");
            };
            u.secondary_status = (arg("operation") == "true").then(|| "disabled".to_string());
            success(op, "")
        }
        "deleteUser" => {
            let login = arg("principal");
            let Some(id) = by_login(&mut data, &login).map(|u| u.user_id.clone()) else {
                return failure(op, "principalNotFound");
            };
            data.users.remove(&id);
            data.deleted.push(id);
            success(op, "")
        }
        "setPassword" | "resetPassword" => {
            let login = arg("principal");
            let password = arg("password");
            let Some(u) = by_login(&mut data, &login) else {
                return failure(op, "principalNotFound");
            };
            if password.chars().count() < 8 {
                return failure(op, "FAIL_LENGTH_RULE");
            }
            let digest = password_digest(&password);
            if u.password_sha256.as_deref() == Some(digest.as_str()) {
                return failure(op, "FAIL_HISTORY_RULE");
            }
            u.password_sha256 = Some(digest);
            success(op, "")
        }
        "getTargetSystemUser" => {
            let login = arg("principalName");
            let Some(u) = by_login(&mut data, &login) else {
                return failure(op, "principalNotFound");
            };
            let mut attrs = String::new();
            for (k, v) in u.fields.iter().chain(u.attributes.iter()) {
                attrs.push_str(&format!(
                    "<attrList>{}{}</attrList>",
                    el("name", k),
                    el("value", v)
                ));
            }
            success(
                op,
                &format!(
                    "{}{}{}{attrs}",
                    el("userId", &u.user_id),
                    el("principalName", &u.login),
                    el("managedSysId", &u.managed_sys_id)
                ),
            )
        }
        other => soap_fault(&format!("unknown operation {other}")),
    }
}

async fn endpoint(e: web::Data<OpenIamEmulator>, req: HttpRequest, body: String) -> HttpResponse {
    if !e.creds.basic_ok(&req) {
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Basic realm=\"openiam\""))
            .finish();
    }
    let Ok(doc) = roxmltree::Document::parse(&body) else {
        return soap_fault("the request is not XML");
    };
    let Some(call) = find(doc.root(), "Body").and_then(|b| b.children().find(|n| n.is_element()))
    else {
        return soap_fault("no SOAP Body");
    };
    let op = call.tag_name().name().to_string();
    match enter(&e.shared, &op).await {
        Some(Injected::Down) => return HttpResponse::ServiceUnavailable().body("down"),
        Some(Injected::Fail {
            error: Some(code), ..
        }) => return failure(&op, &code),
        Some(Injected::Fail { .. }) => return soap_fault("injected failure"),
        None => {}
    }
    handle(&e, &op, call)
}

impl Emulator for OpenIamEmulator {
    fn shared(&self) -> &Mutex<Shared> {
        &self.shared
    }

    fn state(&self) -> Value {
        let data = lock(&self.data);
        json!({"kind": "openiam", "users": data.users.values().collect::<Vec<_>>(), "deleted": data.deleted, "log": data.log})
    }

    fn configure(self: Arc<Self>, cfg: &mut web::ServiceConfig) {
        cfg.route("/{tail:.*}", web::post().to(endpoint));
    }
}
