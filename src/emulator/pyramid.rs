//! The `pyramid` emulator: Pyramid Analytics API 2.0, JSON over POST only, under any
//! prefix ending in `/{section}/{method}`. authenticateUser checks the service account and
//! gives a token that every other call must carry as `auth`; createSamlUser (`newSamlUser`,
//! the seed's object) and createUserSaml (`createUserSaml`, a CreateUserSamlObject with its
//! required userName, principalName, adminType and clientLicenseType), updateUsersSaml
//! (`updateUserSamlArr`) and the seed's updateSamlUsers (`updateUser`) with
//! UpdateUserSamlObjects, toggleEnableUser, getUserBySamlPrincipalName, getUserStatusById,
//! updateUserRoles and deleteUser; an undocumented method is 404.
//!
//! As the real server binds JSON to its objects, a field an object does not declare is
//! dropped without a word (a rename sent as `samlPrincipleName` to an update is lost); each
//! call is kept in `requests` with what was dropped, so tests can see it. Results are
//! wrapped in `data`; a refusal is a ModifiedItemsResult with success false. A `fail_next`
//! whose error is `token_expired` forgets every token.
//!
//! Over a user's life (vendors.md section 6): ids are GUIDs, and a create with an `id` that
//! is not one is refused. getUserBySamlPrincipalName answers the PyramidViewUserObject,
//! which has no enabled field; the enabled state is read with getUserStatusById, which
//! answers a status number. Pyramid does not publish those numbers: this emulator answers
//! [`STATUS_ENABLED`] and [`STATUS_DISABLED`] (its assumption, which the connector's
//! `status_enabled` and `status_disabled` options follow by default).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{enter, fault_response, lock, Credentials, Drift, Drifted, Emulator, Injected, Shared};

/// What getUserStatusById answers for an enabled user (an assumption: not published).
pub const STATUS_ENABLED: i64 = 1;
/// What getUserStatusById answers for a disabled user (an assumption: not published).
pub const STATUS_DISABLED: i64 = 2;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct PyUser {
    id: String,
    user_name: Option<String>,
    principal_name: String,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    admin_type: i64,
    client_license_type: i64,
    #[serde(rename = "statusID")]
    status_id: Option<i64>,
    enabled: bool,
    role_ids: BTreeSet<String>,
}

/// One call as received, with the fields the real server would have dropped.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Received {
    method: String,
    /// The body with `auth` and passwords left out.
    body: Value,
    ignored: Vec<String>,
}

#[derive(Debug, Default)]
struct Data {
    users: BTreeMap<String, PyUser>,
    tokens: HashSet<String>,
    deleted: Vec<String>,
    requests: Vec<Received>,
}

#[derive(Debug, Default)]
pub struct PyramidEmulator {
    creds: Credentials,
    shared: Mutex<Shared>,
    data: Mutex<Data>,
}

impl PyramidEmulator {
    pub fn new(creds: Credentials) -> PyramidEmulator {
        PyramidEmulator {
            creds,
            ..Default::default()
        }
    }
}

/// An API2 object: the fields it declares and those it requires.
struct Object {
    name: &'static str,
    fields: &'static [&'static str],
    required: &'static [&'static str],
}

/// The seed's createSamlUser example (2018.5 on).
const NEW_SAML_USER: Object = Object {
    name: "newSamlUser",
    fields: &[
        "id",
        "samlPrincipleName",
        "firstName",
        "lastName",
        "adminType",
        "clientLicenseType",
        "email",
    ],
    required: &["samlPrincipleName"],
};
const CREATE_USER_SAML: Object = Object {
    name: "CreateUserSamlObject",
    fields: &[
        "id",
        "userName",
        "principalName",
        "firstName",
        "lastName",
        "email",
        "adminType",
        "clientLicenseType",
        "roleIds",
        "statusID",
        "tenantId",
    ],
    required: &[
        "userName",
        "principalName",
        "adminType",
        "clientLicenseType",
    ],
};
const UPDATE_USER_SAML: Object = Object {
    name: "UpdateUserSamlObject",
    fields: &[
        "id",
        "userName",
        "principalName",
        "firstName",
        "lastName",
        "email",
        "adminType",
        "clientLicenseType",
        "roleIds",
        "statusID",
    ],
    required: &["id"],
};
const TOGGLE: Object = Object {
    name: "toggleUserApiData",
    fields: &["userId", "isEnable"],
    required: &["userId", "isEnable"],
};
const USER_ROLES: Object = Object {
    name: "userRolesData",
    fields: &["userId", "rolesToAdd", "rolesToRemove"],
    required: &["userId"],
};

/// Each method's parameters: (name, the object it holds, a list of them).
fn parameters(method: &str) -> Option<&'static [(&'static str, Option<&'static Object>, bool)]> {
    Some(match method {
        "createsamluser" => &[("newSamlUser", Some(&NEW_SAML_USER), false)],
        "createusersaml" => &[("createUserSaml", Some(&CREATE_USER_SAML), false)],
        "updateuserssaml" => &[("updateUserSamlArr", Some(&UPDATE_USER_SAML), true)],
        "updatesamlusers" => &[("updateUser", Some(&UPDATE_USER_SAML), true)],
        "toggleenableuser" => &[("toggleUserApiData", Some(&TOGGLE), false)],
        "updateuserroles" => &[("userRolesData", Some(&USER_ROLES), false)],
        "getuserbysamlprincipalname" => &[("PrincipalName", None, false)],
        "getuserstatusbyid" | "deleteuser" => &[("userId", None, false)],
        _ => return None,
    })
}

/// Drops what an object does not declare (the real server ignores it), noting each.
fn bind(v: &Value, o: &Object, ignored: &mut Vec<String>) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (k, x) in v.as_object().into_iter().flatten() {
        if o.fields.contains(&k.as_str()) {
            out.insert(k.clone(), x.clone());
        } else {
            ignored.push(format!("{}.{k}", o.name));
        }
    }
    for r in o.required {
        if out
            .get(*r)
            .is_none_or(|x| x.is_null() || x.as_str() == Some(""))
        {
            return Err(format!("{} is required in {}", r, o.name));
        }
    }
    Ok(out)
}

fn result(success: bool, error: Option<&str>, ids: &[&str]) -> HttpResponse {
    let list: Vec<Value> = ids.iter().map(|i| json!({"id": i})).collect();
    HttpResponse::Ok()
        .json(json!({"data": {"success": success, "errorMessage": error, "modifiedList": list}}))
}

fn apply(u: &mut PyUser, v: &Map<String, Value>) {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    for (k, slot) in [
        ("firstName", &mut u.first_name),
        ("lastName", &mut u.last_name),
        ("email", &mut u.email),
        ("userName", &mut u.user_name),
    ] {
        if let Some(x) = s(k) {
            *slot = (!x.is_empty()).then_some(x);
        }
    }
    if let Some(p) = s("samlPrincipleName").or_else(|| s("principalName")) {
        u.principal_name = p;
    }
    if let Some(n) = v.get("adminType").and_then(Value::as_i64) {
        u.admin_type = n;
    }
    if let Some(n) = v.get("clientLicenseType").and_then(Value::as_i64) {
        u.client_license_type = n;
    }
    if let Some(n) = v.get("statusID").and_then(Value::as_i64) {
        u.status_id = Some(n);
    }
    if let Some(r) = v.get("roleIds").and_then(Value::as_array) {
        u.role_ids = r
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
    }
}

fn principal_taken(data: &Data, principal: &str, except: &str) -> bool {
    data.users
        .values()
        .any(|u| u.id != except && u.principal_name.eq_ignore_ascii_case(principal))
}

fn call(data: &mut Data, method: &str, body: &Value) -> HttpResponse {
    let mut ignored = Vec::new();
    let params = parameters(method).unwrap_or(&[]);
    let mut recorded = body.clone();
    if let Some(o) = recorded.as_object_mut() {
        o.remove("auth");
        for k in o.keys().cloned().collect::<Vec<_>>() {
            if k != "auth" && !params.iter().any(|(p, _, _)| *p == k) {
                ignored.push(k);
            }
        }
    }
    // Binds each declared parameter's object, dropping what it does not declare.
    let mut bound: Vec<Result<Map<String, Value>, String>> = Vec::new();
    for (name, object, many) in params {
        let (Some(o), Some(v)) = (object, body.get(*name)) else {
            continue;
        };
        if *many {
            for item in v.as_array().into_iter().flatten() {
                bound.push(bind(item, o, &mut ignored));
            }
        } else {
            bound.push(bind(v, o, &mut ignored));
        }
    }
    data.requests.push(Received {
        method: method.to_string(),
        body: recorded,
        ignored,
    });
    let first = || bound.first().cloned();
    match method {
        "createsamluser" | "createusersaml" => {
            let new = match first() {
                Some(Ok(n)) => n,
                Some(Err(e)) => return result(false, Some(&e), &[]),
                None => return result(false, Some("the new user object is missing"), &[]),
            };
            let principal = new
                .get("samlPrincipleName")
                .or_else(|| new.get("principalName"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if principal_taken(data, &principal, "") {
                return result(
                    false,
                    Some(&format!(
                        "a user with principal name {principal} already exists"
                    )),
                    &[],
                );
            }
            let id = match new.get("id").and_then(Value::as_str) {
                Some(id) if uuid::Uuid::parse_str(id).is_ok() => id.to_string(),
                Some(id) => {
                    return result(false, Some(&format!("{id} is not a valid GUID")), &[]);
                }
                None => uuid::Uuid::new_v4().to_string(),
            };
            if data.users.contains_key(&id) {
                return result(
                    false,
                    Some(&format!("a user with id {id} already exists")),
                    &[],
                );
            }
            let mut u = PyUser {
                id: id.clone(),
                enabled: true,
                ..Default::default()
            };
            apply(&mut u, &new);
            data.users.insert(id.clone(), u);
            result(true, None, &[&id])
        }
        "updateuserssaml" | "updatesamlusers" => {
            if bound.is_empty() {
                return result(false, Some("the list of users to update is missing"), &[]);
            }
            let mut ids = Vec::new();
            for item in bound {
                let item = match item {
                    Ok(i) => i,
                    Err(e) => return result(false, Some(&e), &[]),
                };
                let id = item["id"].as_str().unwrap_or_default().to_string();
                if let Some(p) = item.get("principalName").and_then(Value::as_str) {
                    if principal_taken(data, p, &id) {
                        return result(
                            false,
                            Some(&format!("a user with principal name {p} already exists")),
                            &[],
                        );
                    }
                }
                let Some(u) = data.users.get_mut(&id) else {
                    return result(false, Some(&format!("user {id} was not found")), &[]);
                };
                apply(u, &item);
                ids.push(id);
            }
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            result(true, None, &refs)
        }
        "toggleenableuser" => {
            let t = match first() {
                Some(Ok(t)) => t,
                Some(Err(e)) => return result(false, Some(&e), &[]),
                None => return result(false, Some("toggleUserApiData is missing"), &[]),
            };
            let id = t["userId"].as_str().unwrap_or_default().to_string();
            let Some(enable) = t["isEnable"].as_bool() else {
                return result(false, Some("isEnable is a boolean"), &[]);
            };
            let Some(u) = data.users.get_mut(&id) else {
                return result(false, Some(&format!("user {id} was not found")), &[]);
            };
            u.enabled = enable;
            result(true, None, &[&id])
        }
        "getuserbysamlprincipalname" => {
            let p = body
                .get("PrincipalName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            // The PyramidViewUserObject: no enabled field (that is getUserStatusById's).
            let view = data
                .users
                .values()
                .find(|u| u.principal_name.eq_ignore_ascii_case(p))
                .and_then(|u| serde_json::to_value(u).ok())
                .map(|mut v| {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("enabled");
                    }
                    v
                });
            HttpResponse::Ok().json(json!({"data": view}))
        }
        "getuserstatusbyid" => {
            let id = body
                .get("userId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match data.users.get(id) {
                Some(u) => HttpResponse::Ok().json(json!({
                    "data": if u.enabled { STATUS_ENABLED } else { STATUS_DISABLED }
                })),
                None => result(false, Some("user was not found"), &[]),
            }
        }
        "updateuserroles" => {
            let d = match first() {
                Some(Ok(d)) => d,
                Some(Err(e)) => return result(false, Some(&e), &[]),
                None => return result(false, Some("userRolesData is missing"), &[]),
            };
            let id = d["userId"].as_str().unwrap_or_default().to_string();
            let Some(u) = data.users.get_mut(&id) else {
                return result(false, Some(&format!("user {id} was not found")), &[]);
            };
            let names = |k: &str| -> Vec<String> {
                d.get(k)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            };
            for r in names("rolesToAdd") {
                u.role_ids.insert(r);
            }
            for r in names("rolesToRemove") {
                u.role_ids.remove(&r);
            }
            result(true, None, &[&id])
        }
        "deleteuser" => {
            let id = body
                .get("userId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if data.users.remove(&id).is_none() {
                return result(false, Some(&format!("user {id} was not found")), &[]);
            }
            data.deleted.push(id.clone());
            result(true, None, &[&id])
        }
        other => HttpResponse::NotFound().body(format!("no method {other}")),
    }
}

async fn endpoint(e: web::Data<PyramidEmulator>, req: HttpRequest, body: String) -> HttpResponse {
    let segments: Vec<String> = req
        .path()
        .trim_end_matches('/')
        .rsplit('/')
        .take(2)
        .map(str::to_lowercase)
        .collect();
    let (method, section) = match segments.as_slice() {
        [m, s] => (m.clone(), s.clone()),
        _ => return HttpResponse::NotFound().finish(),
    };
    let fault = enter(&e.shared, &method).await;
    let mut data = lock(&e.data);
    match fault {
        Some(Injected::Fail {
            error: Some(ref code),
            ..
        }) if code == "token_expired" => {
            data.tokens.clear();
            return HttpResponse::Unauthorized().body("the token has expired");
        }
        Some(f) => return fault_response(f),
        None => {}
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return HttpResponse::BadRequest().body("the body is not JSON");
    };
    if section == "auth" && method == "authenticateuser" {
        let d = &body["data"];
        let given = (
            d["userName"].as_str().unwrap_or_default().to_string(),
            d["password"].as_str().unwrap_or_default().to_string(),
        );
        if e.creds.0.as_ref().is_some_and(|c| *c != given) {
            return HttpResponse::Unauthorized().body("wrong user name or password");
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        data.tokens.insert(token.clone());
        return HttpResponse::Ok().content_type("text/plain").body(token);
    }
    let token = body.get("auth").and_then(Value::as_str).unwrap_or_default();
    if !data.tokens.contains(token) {
        return HttpResponse::Unauthorized().body("the token is not valid");
    }
    if section != "access" || parameters(&method).is_none() {
        return HttpResponse::NotFound().body(format!("no method {section}/{method}"));
    }
    call(&mut data, &method, &body)
}

impl Emulator for PyramidEmulator {
    fn shared(&self) -> &Mutex<Shared> {
        &self.shared
    }

    fn state(&self) -> Value {
        let data = lock(&self.data);
        json!({"kind": "pyramid", "users": data.users.values().collect::<Vec<_>>(),
               "deleted": data.deleted, "tokensIssued": data.tokens.len(),
               "requests": data.requests})
    }

    fn configure(self: Arc<Self>, cfg: &mut web::ServiceConfig) {
        cfg.route("/{tail:.*}", web::post().to(endpoint));
    }

    /// Changes a user found by its principal name: the user object's own fields, and
    /// `enabled` (what toggleEnableUser sets).
    fn drift(&self, d: &Drift) -> Drifted {
        const FIELDS: &[&str] = &[
            "firstName",
            "lastName",
            "email",
            "userName",
            "principalName",
            "adminType",
            "clientLicenseType",
            "statusID",
            "roleIds",
            "enabled",
        ];
        if let Some(k) = d.set.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Drifted::Refused(format!("a Pyramid user has no field '{k}'"));
        }
        let mut data = lock(&self.data);
        let Some(id) = data
            .users
            .values()
            .find(|u| u.principal_name.eq_ignore_ascii_case(&d.user))
            .map(|u| u.id.clone())
        else {
            return Drifted::NoSuchUser;
        };
        if d.delete {
            data.users.remove(&id);
            data.deleted.push(id);
            return Drifted::Done;
        }
        let Some(u) = data.users.get_mut(&id) else {
            return Drifted::NoSuchUser;
        };
        apply(u, &d.set);
        match d.set.get("enabled") {
            None => {}
            Some(Value::Bool(b)) => u.enabled = *b,
            Some(_) => return Drifted::Refused("enabled is true or false".into()),
        }
        Drifted::Done
    }
}
