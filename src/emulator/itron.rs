//! The `itron` emulator: the Customer Portal's UpdateSSOUser, HTTP Basic as the
//! application-level user. An upsert by username (created if new, overwritten where the
//! values differ) with email, first and last name and the account ID list; an email must be
//! unique among portal users. 200 on success, an error message otherwise. The exact JSON
//! names are not public: it takes `username`, `email`, `firstName`, `lastName` and
//! `accountIds` (this project's assumption), bound without regard to case as ASP.NET Web
//! API binds them; a property it does not know is dropped silently, and recorded in
//! `requests` as such. An email given as null or empty is cleared (an assumption too: the
//! portal's upsert overwrites what is sent).
//!
//! Over a user's life (vendors.md section 6): UpdateSSOUser overwrites what it is sent and
//! nothing else. The account ID list is the set of accounts the user may see: a list sent
//! replaces it (an empty one removes every account, and a list that lacks the accounts the
//! utility's own site gave removes those), a body without the property leaves it as it is.
//! Accounts given by the utility's site are modelled with `POST /_emulator/drift`. Only
//! the documented path answers, as ASP.NET Web API routes: 404 for another path, 405 for
//! another method on it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{json, Value};

use super::{enter, fault_response, lock, Credentials, Drift, Drifted, Emulator, Shared};

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct PortalUser {
    username: String,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    account_ids: Vec<String>,
    updates: u64,
}

#[derive(Debug, Default)]
pub struct ItronEmulator {
    creds: Credentials,
    shared: Mutex<Shared>,
    users: Mutex<BTreeMap<String, PortalUser>>,
    requests: Mutex<Vec<Value>>,
}

/// The one documented route (ASP.NET routes without regard to case).
pub const PATH: &str = "/PortalServices/api/User/UpdateSSOUser";

/// The properties UpdateSSOUser binds (assumed names; any letter case).
const PROPERTIES: &[&str] = &["username", "email", "firstName", "lastName", "accountIds"];

impl ItronEmulator {
    pub fn new(creds: Credentials) -> ItronEmulator {
        ItronEmulator {
            creds,
            ..Default::default()
        }
    }
}

fn field<'a>(body: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

async fn update_sso_user(
    e: web::Data<ItronEmulator>,
    req: HttpRequest,
    body: String,
) -> HttpResponse {
    if !e.creds.basic_ok(&req) {
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Basic realm=\"PortalServices\""))
            .json(json!({"Message": "Authorization has been denied for this request."}));
    }
    if let Some(f) = enter(&e.shared, "UpdateSSOUser").await {
        return fault_response(f);
    }
    let Ok(Value::Object(body)) = serde_json::from_str::<Value>(&body) else {
        return HttpResponse::BadRequest().json(json!({"Message": "The request is invalid."}));
    };
    let ignored: Vec<&String> = body
        .keys()
        .filter(|k| !PROPERTIES.iter().any(|p| p.eq_ignore_ascii_case(k)))
        .collect();
    lock(&e.requests).push(json!({"body": body, "ignored": ignored}));
    let text = |n: &str| {
        field(&body, n)
            .and_then(Value::as_str)
            .map(str::to_string)
            .filter(|s| !s.is_empty())
    };
    let Some(username) = text("username") else {
        return HttpResponse::BadRequest().json(json!({"Message": "Username is required."}));
    };
    // Absent (or null, as model binding leaves an absent list): the accounts stay.
    let accounts: Option<Vec<String>> = match field(&body, "accountIds") {
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect(),
        ),
        Some(Value::Null) | None => None,
        Some(_) => {
            return HttpResponse::BadRequest()
                .json(json!({"Message": "accountIds must be a list."}))
        }
    };
    let key = username.to_lowercase();
    let mut users = lock(&e.users);
    if let Some(email) = text("email") {
        if users.iter().any(|(k, u)| {
            *k != key
                && u.email
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(&email))
        }) {
            return HttpResponse::BadRequest()
                .json(json!({"Message": format!("Email address {email} is already in use by another user.")}));
        }
    }
    let u = users.entry(key).or_insert_with(|| PortalUser {
        username: username.clone(),
        ..Default::default()
    });
    match field(&body, "email") {
        Some(Value::String(v)) if !v.is_empty() => u.email = Some(v.clone()),
        Some(Value::Null) | Some(Value::String(_)) => u.email = None,
        _ => {}
    }
    if let Some(v) = text("firstName") {
        u.first_name = Some(v);
    }
    if let Some(v) = text("lastName") {
        u.last_name = Some(v);
    }
    if let Some(accounts) = accounts {
        u.account_ids = accounts;
    }
    u.updates += 1;
    HttpResponse::Ok().finish()
}

/// ASP.NET Web API's routing: the one action, POST only.
async fn route(e: web::Data<ItronEmulator>, req: HttpRequest, body: String) -> HttpResponse {
    if !req.path().eq_ignore_ascii_case(PATH) {
        return HttpResponse::NotFound().json(json!({
            "Message": format!("No HTTP resource was found that matches the request URI '{}'.", req.uri())
        }));
    }
    if req.method() != actix_web::http::Method::POST {
        return HttpResponse::MethodNotAllowed()
            .insert_header(("Allow", "POST"))
            .json(json!({
                "Message": format!("The requested resource does not support http method '{}'.", req.method())
            }));
    }
    update_sso_user(e, req, body).await
}

impl Emulator for ItronEmulator {
    fn shared(&self) -> &Mutex<Shared> {
        &self.shared
    }

    fn state(&self) -> Value {
        let users = lock(&self.users);
        json!({"kind": "itron", "users": users.values().collect::<Vec<_>>(),
               "requests": *lock(&self.requests)})
    }

    fn configure(self: Arc<Self>, cfg: &mut web::ServiceConfig) {
        cfg.route("/{tail:.*}", web::route().to(route));
    }

    /// Changes a portal user found by username: `email`, `firstName`, `lastName` (""
    /// clears one) or `accountIds` (a list).
    fn drift(&self, d: &Drift) -> Drifted {
        let mut users = lock(&self.users);
        let key = d.user.to_lowercase();
        if d.delete {
            return match users.remove(&key) {
                Some(_) => Drifted::Done,
                None => Drifted::NoSuchUser,
            };
        }
        let Some(u) = users.get_mut(&key) else {
            return Drifted::NoSuchUser;
        };
        for (k, v) in &d.set {
            let text = v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
            match k.as_str() {
                "email" => u.email = text,
                "firstName" => u.first_name = text,
                "lastName" => u.last_name = text,
                "accountIds" => match v.as_array() {
                    Some(a) => {
                        u.account_ids = a
                            .iter()
                            .map(|x| {
                                x.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| x.to_string())
                            })
                            .collect()
                    }
                    None => return Drifted::Refused("accountIds is a list".into()),
                },
                other => return Drifted::Refused(format!("a portal user has no field '{other}'")),
            }
        }
        Drifted::Done
    }
}
