//! The `pyramid` emulator: Pyramid Analytics API 2.0, JSON over POST only, under any
//! prefix ending in `/{section}/{method}`. authenticateUser checks the service account and
//! gives a token that every other call must carry as `auth`; createSamlUser and
//! createUserSaml (principal as samlPrincipleName or principalName), updateUsersSaml and
//! updateSamlUsers, getUserBySamlPrincipalName, getUserStatusById, updateUserRoles and
//! deleteUser. Results are wrapped in `data`; a refusal is a ModifiedItemsResult with
//! success false. A `fail_next` whose error is `token_expired` forgets every token.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{json, Value};

use super::{enter, fault_response, lock, Credentials, Emulator, Injected, Shared};

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct PyUser {
    id: String,
    principal_name: String,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    admin_type: i64,
    client_license_type: i64,
    #[serde(rename = "statusID")]
    status_id: i64,
    role_ids: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Data {
    users: BTreeMap<String, PyUser>,
    tokens: HashSet<String>,
    deleted: Vec<String>,
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

fn result(success: bool, error: Option<&str>, ids: &[&str]) -> HttpResponse {
    let list: Vec<Value> = ids.iter().map(|i| json!({"id": i})).collect();
    HttpResponse::Ok()
        .json(json!({"data": {"success": success, "errorMessage": error, "modifiedList": list}}))
}

fn apply(u: &mut PyUser, v: &Value) {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    for (k, slot) in [
        ("firstName", &mut u.first_name),
        ("lastName", &mut u.last_name),
        ("email", &mut u.email),
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
        u.status_id = n;
    }
    if let Some(r) = v.get("roleIds").and_then(Value::as_array) {
        u.role_ids = r
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
    }
}

fn call(data: &mut Data, method: &str, body: &Value) -> HttpResponse {
    match method {
        "createsamluser" | "createusersaml" => {
            let Some(new) = ["newSamlUser", "newUserSaml", "user"]
                .iter()
                .find_map(|k| body.get(*k))
            else {
                return result(false, Some("missing the new user object"), &[]);
            };
            let principal = new
                .get("samlPrincipleName")
                .or_else(|| new.get("principalName"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if principal.is_empty() {
                return result(false, Some("a SAML principal name is required"), &[]);
            }
            if data
                .users
                .values()
                .any(|u| u.principal_name.eq_ignore_ascii_case(&principal))
            {
                return result(
                    false,
                    Some(&format!(
                        "a user with principal name {principal} already exists"
                    )),
                    &[],
                );
            }
            let id = new
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            if data.users.contains_key(&id) {
                return result(
                    false,
                    Some(&format!("a user with id {id} already exists")),
                    &[],
                );
            }
            let mut u = PyUser {
                id: id.clone(),
                status_id: 1,
                ..Default::default()
            };
            apply(&mut u, new);
            data.users.insert(id.clone(), u);
            result(true, None, &[&id])
        }
        "updateuserssaml" | "updatesamlusers" => {
            let Some(list) = ["updateUserSamlArr", "updateUser"]
                .iter()
                .find_map(|k| body.get(*k))
                .and_then(Value::as_array)
            else {
                return result(false, Some("missing the list of users to update"), &[]);
            };
            let mut ids = Vec::new();
            for item in list {
                let id = item
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let Some(u) = data.users.get_mut(&id) else {
                    return result(false, Some(&format!("user {id} was not found")), &[]);
                };
                apply(u, item);
                ids.push(id);
            }
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            result(true, None, &refs)
        }
        "getuserbysamlprincipalname" => {
            let p = body
                .get("PrincipalName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let u = data
                .users
                .values()
                .find(|u| u.principal_name.eq_ignore_ascii_case(p));
            HttpResponse::Ok().json(json!({"data": u}))
        }
        "getuserstatusbyid" => {
            let id = body
                .get("userId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match data.users.get(id) {
                Some(u) => HttpResponse::Ok().json(json!({"data": u.status_id})),
                None => result(false, Some("user was not found"), &[]),
            }
        }
        "updateuserroles" => {
            let d = &body["userRolesData"];
            let id = d["userId"].as_str().unwrap_or_default();
            let Some(u) = data.users.get_mut(id) else {
                return result(false, Some(&format!("user {id} was not found")), &[]);
            };
            for r in d["rolesToAdd"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                u.role_ids.insert(r.to_string());
            }
            for r in d["rolesToRemove"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                u.role_ids.remove(r);
            }
            result(true, None, &[id])
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
    if section != "access" {
        return HttpResponse::NotFound().finish();
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
               "deleted": data.deleted, "tokensIssued": data.tokens.len()})
    }

    fn configure(self: Arc<Self>, cfg: &mut web::ServiceConfig) {
        cfg.route("/{tail:.*}", web::post().to(endpoint));
    }
}
