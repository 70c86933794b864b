//! The `ethosce` emulator: Drupal 7 restws as EthosCE runs it. HTTP Basic with a user
//! whose name begins with `restws` and its password (anything else is an anonymous request:
//! 403); /user, /profile2 and /authmap resources with `.json` reads and `?name=`, `?mail=`,
//! `?user=`, `?uid=` queries; references `{"uri","id","resource"}` for creates; `[]` for
//! updates; errors in plain text (`406 Not Acceptable: Unknown data properties: x.`).
//! Drupal's `users` table is unique on `name` only: a duplicate name is an uncaught
//! PDOException (500, "Duplicate entry"), a duplicate mail is accepted; roles that are not
//! `{"id": rid}` objects are a PHP fatal error (500). Every call is kept in `requests`.
//!
//! Over a user's life (vendors.md section 6): an authmap row (unique authname) keeps
//! signing its authname in to its uid until it is deleted (`DELETE /authmap/{aid}`) or
//! changed (`PUT /authmap/{aid}`); renaming the Drupal user leaves it as it was. Where a SAML
//! name signs in is asked with `POST /_emulator/saml_login {"authname"}`: the account it
//! reaches, or none (no row; a blocked account). Auto-creating an account for an unknown
//! name (a SAML module setting) is not modelled. `POST /profile2` without `type` is 406
//! "Missing bundle: type"; a POST or PUT without a JSON Content-Type is not a restws
//! request (Drupal's own 404 page); a PUT that changes `uid` is 422; deleting a user
//! deletes its profiles and authmaps.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::{basic_of, enter, fault_response, lock, Credentials, Drift, Drifted, Emulator, Shared};

#[derive(Debug, Default)]
struct Data {
    requests: Vec<Value>,
    users: BTreeMap<u64, Map<String, Value>>,
    profiles: BTreeMap<u64, Map<String, Value>>,
    authmaps: BTreeMap<u64, Map<String, Value>>,
    next: u64,
}

#[derive(Debug, Default)]
pub struct EthosCeEmulator {
    creds: Credentials,
    shared: Mutex<Shared>,
    data: Mutex<Data>,
}

impl EthosCeEmulator {
    pub fn new(creds: Credentials) -> EthosCeEmulator {
        EthosCeEmulator {
            creds,
            ..Default::default()
        }
    }
}

const USER_PROPS: &[&str] = &["name", "mail", "status", "roles", "pass"];
const PROFILE_PROPS: &[&str] = &[
    "user",
    "label",
    "type",
    "field_first_name",
    "field_middle_name",
    "field_last_name",
    "field_profile_location",
];
const LOCATION_PROPS: &[&str] = &[
    "street",
    "additional",
    "city",
    "province",
    "postal_code",
    "country",
];
const AUTHMAP_PROPS: &[&str] = &["uid", "authname", "module"];

fn plain(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain")
        .body(format!(
            "{} {}: {message}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ))
}

fn unknown(body: &Map<String, Value>, allowed: &[&str]) -> Option<HttpResponse> {
    let bad: Vec<&str> = body
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    (!bad.is_empty()).then(|| {
        plain(
            StatusCode::NOT_ACCEPTABLE,
            &format!("Unknown data properties: {}.", bad.join(", ")),
        )
    })
}

fn reference(req: &HttpRequest, resource: &str, id: u64) -> HttpResponse {
    let host = req.connection_info().host().to_string();
    HttpResponse::Created().json(json!({
        "uri": format!("http://{host}/{resource}/{id}"), "id": id.to_string(), "resource": resource
    }))
}

fn as_id(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Drupal's answer to a row its unique key refuses: an uncaught PDOException.
fn duplicate_entry(value: &str, key: &str, table: &str) -> HttpResponse {
    HttpResponse::InternalServerError()
        .content_type("text/plain")
        .body(format!(
            "PDOException: SQLSTATE[23000]: Integrity constraint violation: 1062 Duplicate entry '{value}' for key '{key}': INSERT INTO {{{table}}} in drupal_write_record() (line 7239 of /var/www/html/includes/common.inc)."
        ))
}

/// roles must be a list of `{"id": rid}` objects; anything else trips a type hint.
fn roles_fatal(body: &Map<String, Value>) -> Option<HttpResponse> {
    let roles = body.get("roles")?;
    let ok = roles.as_array().is_some_and(|l| {
        l.iter()
            .all(|r| r.as_object().is_some_and(|o| o.contains_key("id")))
    });
    (!ok).then(|| {
        HttpResponse::InternalServerError()
            .content_type("text/plain")
            .body("PHP Fatal error:  Argument 1 passed to RestWSEntityResourceController::propertyValue() must be of the type array, integer given in /var/www/html/sites/all/modules/restws/restws.entity.inc")
    })
}

fn taken(data: &Data, field: &str, value: &Value, except: Option<u64>) -> bool {
    let want = value.as_str().unwrap_or_default().to_lowercase();
    !want.is_empty()
        && data.users.iter().any(|(uid, u)| {
            Some(*uid) != except
                && u.get(field)
                    .and_then(Value::as_str)
                    .is_some_and(|x| x.to_lowercase() == want)
        })
}

fn query(req: &HttpRequest) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

/// restws's list: the items matching every query property but `page`, 100 a page
/// (`?page=N` from 0), with links to the first, last and next pages.
fn list_of<'a>(
    req: &HttpRequest,
    items: impl Iterator<Item = &'a Map<String, Value>>,
    filter: &BTreeMap<String, String>,
) -> HttpResponse {
    const PER_PAGE: usize = 100;
    let page: usize = filter.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let matching: Vec<&Map<String, Value>> = items
        .filter(|item| {
            filter.iter().filter(|(k, _)| *k != "page").all(|(k, v)| {
                item.get(k).is_some_and(|x| match x {
                    Value::String(s) => s.eq_ignore_ascii_case(v),
                    other => v.as_str() == other.to_string().as_str(),
                })
            })
        })
        .collect();
    let list: Vec<Value> = matching
        .iter()
        .skip(page.saturating_mul(PER_PAGE))
        .take(PER_PAGE)
        .map(|m| Value::Object((*m).clone()))
        .collect();
    let last = matching.len().saturating_sub(1) / PER_PAGE;
    let host = req.connection_info().host().to_string();
    let link = |p: usize| format!("http://{host}{}?page={p}", req.path());
    let mut body = json!({"self": link(page), "first": link(0), "last": link(last), "list": list});
    if page < last {
        body["next"] = json!(link(page + 1));
    }
    HttpResponse::Ok().json(body)
}

fn route(data: &mut Data, req: &HttpRequest, body: Option<Map<String, Value>>) -> HttpResponse {
    let path = req.path().trim_matches('/').to_string();
    let mut parts: Vec<&str> = path.split('/').collect();
    let last = parts.pop().unwrap_or_default();
    let last = last.strip_suffix(".json").unwrap_or(last);
    parts.push(last);
    let method = req.method().as_str();
    let body = body.unwrap_or_default();
    match (method, parts.as_slice()) {
        ("GET", ["user"]) => list_of(req, data.users.values(), &query(req)),
        ("GET", ["profile2"]) => list_of(req, data.profiles.values(), &query(req)),
        ("GET", ["authmap"]) => list_of(req, data.authmaps.values(), &query(req)),
        ("GET", ["user", id]) => match id.parse().ok().and_then(|i: u64| data.users.get(&i)) {
            Some(u) => HttpResponse::Ok().json(u),
            None => plain(StatusCode::NOT_FOUND, "Not Found"),
        },
        ("POST", ["user"]) => {
            if let Some(r) = unknown(&body, USER_PROPS) {
                return r;
            }
            if let Some(r) = roles_fatal(&body) {
                return r;
            }
            for field in ["name", "mail"] {
                if body
                    .get(field)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return plain(
                        StatusCode::NOT_ACCEPTABLE,
                        &format!("Missing data property {field}."),
                    );
                }
            }
            if taken(data, "name", &body["name"], None) {
                return duplicate_entry(body["name"].as_str().unwrap_or_default(), "name", "users");
            }
            data.next += 1;
            let uid = data.next + 99;
            let mut u = body;
            u.remove("pass");
            u.insert("uid".into(), json!(uid.to_string()));
            u.entry("status").or_insert(json!(1));
            u.entry("roles").or_insert(json!([]));
            data.users.insert(uid, u);
            reference(req, "user", uid)
        }
        ("PUT", ["user", id]) => {
            let mut body = body;
            // uid is the entity's own key: the same value is no change, another is refused.
            if let Some(v) = body.remove("uid") {
                if id.parse::<u64>().ok() != as_id(Some(&v)) {
                    return plain(StatusCode::UNPROCESSABLE_ENTITY, "Unable to change uid");
                }
            }
            if let Some(r) = unknown(&body, USER_PROPS) {
                return r;
            }
            let Some(uid) = id
                .parse::<u64>()
                .ok()
                .filter(|i| data.users.contains_key(i))
            else {
                return plain(StatusCode::NOT_FOUND, "Not Found");
            };
            if let Some(r) = roles_fatal(&body) {
                return r;
            }
            if let Some(v) = body.get("name") {
                if taken(data, "name", v, Some(uid)) {
                    return duplicate_entry(v.as_str().unwrap_or_default(), "name", "users");
                }
            }
            if let Some(u) = data.users.get_mut(&uid) {
                for (k, v) in body {
                    if k != "pass" {
                        u.insert(k, v);
                    }
                }
            }
            HttpResponse::Ok().json(json!([]))
        }
        ("DELETE", ["user", id]) => {
            match id.parse::<u64>().ok().and_then(|i| data.users.remove(&i)) {
                Some(_) => {
                    let uid = id.to_string();
                    data.profiles.retain(|_, p| {
                        p.get("user")
                            .map(|u| u.to_string().trim_matches('"').to_string())
                            != Some(uid.clone())
                    });
                    data.authmaps.retain(|_, a| {
                        a.get("uid")
                            .map(|u| u.to_string().trim_matches('"').to_string())
                            != Some(uid.clone())
                    });
                    HttpResponse::Ok().json(json!([]))
                }
                None => plain(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        ("POST", ["profile2"]) => {
            if let Some(r) = unknown(&body, PROFILE_PROPS) {
                return r;
            }
            if body
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return plain(StatusCode::NOT_ACCEPTABLE, "Missing bundle: type");
            }
            if let Some(Value::Object(loc)) = body.get("field_profile_location") {
                if let Some(r) = unknown(loc, LOCATION_PROPS) {
                    return r;
                }
            }
            let Some(uid) = as_id(body.get("user")).filter(|u| data.users.contains_key(u)) else {
                return plain(
                    StatusCode::NOT_ACCEPTABLE,
                    "Invalid value for the user property.",
                );
            };
            data.next += 1;
            let pid = data.next;
            let mut p = body;
            p.insert("pid".into(), json!(pid.to_string()));
            p.insert("user".into(), json!(uid.to_string()));
            data.profiles.insert(pid, p);
            reference(req, "profile2", pid)
        }
        ("PUT", ["profile2", id]) => {
            if let Some(r) = unknown(&body, PROFILE_PROPS) {
                return r;
            }
            let Some(p) = id
                .parse::<u64>()
                .ok()
                .and_then(|i| data.profiles.get_mut(&i))
            else {
                return plain(StatusCode::NOT_FOUND, "Not Found");
            };
            for (k, v) in body {
                p.insert(k, v);
            }
            HttpResponse::Ok().json(json!([]))
        }
        ("POST", ["authmap"]) => {
            if let Some(r) = unknown(&body, AUTHMAP_PROPS) {
                return r;
            }
            let Some(uid) = as_id(body.get("uid")).filter(|u| data.users.contains_key(u)) else {
                return plain(
                    StatusCode::NOT_ACCEPTABLE,
                    "Invalid value for the uid property.",
                );
            };
            let authname = body
                .get("authname")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let module = body
                .get("module")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if authname.is_empty() || module.is_empty() {
                return plain(
                    StatusCode::NOT_ACCEPTABLE,
                    "authname and module are required.",
                );
            }
            // A unique key under MySQL's default collation: letter case does not count.
            if data.authmaps.values().any(|a| {
                a["authname"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&authname))
            }) {
                return duplicate_entry(&authname, "authname", "authmap");
            }
            data.next += 1;
            let aid = data.next;
            let mut a = Map::new();
            a.insert("aid".into(), json!(aid.to_string()));
            a.insert("uid".into(), json!(uid.to_string()));
            a.insert("authname".into(), json!(authname));
            a.insert("module".into(), json!(module));
            data.authmaps.insert(aid, a);
            reference(req, "authmap", aid)
        }
        ("PUT", ["authmap", id]) => {
            if let Some(r) = unknown(&body, AUTHMAP_PROPS) {
                return r;
            }
            let Some(aid) = id
                .parse::<u64>()
                .ok()
                .filter(|i| data.authmaps.contains_key(i))
            else {
                return plain(StatusCode::NOT_FOUND, "Not Found");
            };
            if body.get("uid").is_some_and(|v| {
                as_id(Some(v)) != data.authmaps.get(&aid).and_then(|a| as_id(a.get("uid")))
            }) {
                return plain(StatusCode::UNPROCESSABLE_ENTITY, "Unable to change uid");
            }
            if let Some(name) = body.get("authname").and_then(Value::as_str) {
                if data.authmaps.iter().any(|(other, a)| {
                    *other != aid
                        && a["authname"]
                            .as_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case(name))
                }) {
                    return duplicate_entry(name, "authname", "authmap");
                }
            }
            if let Some(a) = data.authmaps.get_mut(&aid) {
                for (k, v) in body {
                    a.insert(k, v);
                }
            }
            HttpResponse::Ok().json(json!([]))
        }
        ("DELETE", ["authmap", id]) => {
            match id
                .parse::<u64>()
                .ok()
                .and_then(|i| data.authmaps.remove(&i))
            {
                Some(_) => HttpResponse::Ok().json(json!([])),
                None => plain(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        _ => plain(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// Where a SAML sign-in with this authname lands: the account its authmap row names, unless
/// that account is blocked; nowhere without a row.
async fn saml_login(e: web::Data<EthosCeEmulator>, body: web::Json<Value>) -> HttpResponse {
    let Some(authname) = body.get("authname").and_then(Value::as_str) else {
        return HttpResponse::BadRequest().json(json!({"error": "authname is required"}));
    };
    let data = lock(&e.data);
    let row = data.authmaps.values().find(|a| {
        a["authname"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(authname))
    });
    let Some(uid) = row.and_then(|a| as_id(a.get("uid"))) else {
        return HttpResponse::Forbidden()
            .json(json!({"signedIn": false, "why": "no account maps this SAML name"}));
    };
    let Some(user) = data.users.get(&uid) else {
        return HttpResponse::Forbidden()
            .json(json!({"signedIn": false, "why": "the mapped account is gone"}));
    };
    if user
        .get("status")
        .map(|s| s.to_string().trim_matches('"').to_string())
        == Some("0".into())
    {
        return HttpResponse::Forbidden().json(
            json!({"signedIn": false, "why": "the account is blocked", "uid": uid.to_string()}),
        );
    }
    HttpResponse::Ok()
        .json(json!({"signedIn": true, "uid": uid.to_string(), "name": user.get("name")}))
}

async fn endpoint(e: web::Data<EthosCeEmulator>, req: HttpRequest, body: String) -> HttpResponse {
    lock(&e.data).requests.push(json!({
        "method": req.method().as_str(), "path": req.path(), "query": req.query_string(),
        "body": serde_json::from_str::<Value>(&body).unwrap_or(Value::Null), "ignored": []
    }));
    // restws_basic_auth logs in only a `restws...` user with its password; anyone else is
    // anonymous, and anonymous may do nothing here.
    let signed_in =
        basic_of(&req).is_some_and(|(u, _)| u.starts_with("restws")) && e.creds.basic_ok(&req);
    if !signed_in {
        return HttpResponse::Forbidden()
            .content_type("text/plain")
            .body("403 Access Denied");
    }
    let op = format!(
        "{} {}",
        req.method(),
        req.path()
            .split('/')
            .nth(1)
            .unwrap_or("")
            .trim_end_matches(".json")
    );
    if let Some(f) = enter(&e.shared, &op).await {
        return fault_response(f);
    }
    // restws takes a POST or PUT as its own only with a format it knows in Content-Type;
    // otherwise it is Drupal's page for the path, which has none.
    let json_body = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if matches!(req.method().as_str(), "POST" | "PUT") && !json_body {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    }
    let body = if body.trim().is_empty() {
        None
    } else {
        match serde_json::from_str::<Value>(&body) {
            Ok(Value::Object(m)) => Some(m),
            _ => {
                return plain(
                    StatusCode::NOT_ACCEPTABLE,
                    "The request body is not a JSON object.",
                )
            }
        }
    };
    let mut data = lock(&e.data);
    route(&mut data, &req, body)
}

impl Emulator for EthosCeEmulator {
    fn shared(&self) -> &Mutex<Shared> {
        &self.shared
    }

    fn state(&self) -> Value {
        let data = lock(&self.data);
        json!({"kind": "ethosce", "requests": data.requests,
               "users": data.users.values().collect::<Vec<_>>(),
               "profiles": data.profiles.values().collect::<Vec<_>>(),
               "authmaps": data.authmaps.values().collect::<Vec<_>>()})
    }

    fn configure(self: Arc<Self>, cfg: &mut web::ServiceConfig) {
        cfg.route("/_emulator/saml_login", web::post().to(saml_login))
            .default_service(web::to(endpoint));
    }

    /// Changes a user found by its name, as an edit in Drupal's own pages would: a user
    /// property (`mail`, `status`, ...), a profile field (`field_...`), a part of the
    /// profile's location (`location_city`, ...) or the SAML `authname`. A delete takes
    /// the user's profile and authmaps with it.
    fn drift(&self, d: &Drift) -> Drifted {
        let mut data = lock(&self.data);
        let Some(uid) = data
            .users
            .iter()
            .find(|(_, u)| {
                u.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(&d.user))
            })
            .map(|(uid, _)| *uid)
        else {
            return Drifted::NoSuchUser;
        };
        let owned_by = |v: Option<&Value>| as_id(v) == Some(uid);
        if d.delete {
            data.users.remove(&uid);
            data.profiles.retain(|_, p| !owned_by(p.get("user")));
            data.authmaps.retain(|_, a| !owned_by(a.get("uid")));
            return Drifted::Done;
        }
        for (k, v) in &d.set {
            if USER_PROPS.contains(&k.as_str()) && k != "pass" {
                if let Some(u) = data.users.get_mut(&uid) {
                    u.insert(k.clone(), v.clone());
                }
            } else if k == "authname" {
                let Some(a) = data.authmaps.values_mut().find(|a| owned_by(a.get("uid"))) else {
                    return Drifted::Refused("the user has no authmap".into());
                };
                a.insert("authname".into(), v.clone());
            } else if PROFILE_PROPS.contains(&k.as_str()) || k.starts_with("location_") {
                let Some(p) = data.profiles.values_mut().find(|p| owned_by(p.get("user"))) else {
                    return Drifted::Refused("the user has no profile".into());
                };
                match k.strip_prefix("location_") {
                    Some(part) if LOCATION_PROPS.contains(&part) => {
                        let loc = p
                            .entry("field_profile_location")
                            .or_insert_with(|| json!({}));
                        if let Some(o) = loc.as_object_mut() {
                            o.insert(part.to_string(), v.clone());
                        }
                    }
                    Some(part) => {
                        return Drifted::Refused(format!("a location has no part '{part}'"))
                    }
                    None => {
                        p.insert(k.clone(), v.clone());
                    }
                }
            } else {
                return Drifted::Refused(format!("an EthosCE user has no field '{k}'"));
            }
        }
        Drifted::Done
    }
}
