//! OAuth 2.0 client credentials, outside JWT issuers, scopes, revocation across instances,
//! and the request budget, over HTTP on both databases.

use std::process::Command;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpResponse, HttpServer};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};

use scim_bridge::config::{JwtIssuerConfig, Secret, Settings};

use crate::helpers::*;

const ADMIN: &str = "admin-token-credentials";
const ISSUER: &str = "https://issuer.test/tenant/";
const AUDIENCE: &str = "api://scim-bridge";

use crate::each_database as on_both;

/// The app with an admin token and these settings changed.
async fn app_with(db: Db, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let first = spawn_app(db).await;
    let mut settings = first.settings.clone();
    let dbh = first.stop().await;
    settings.admin_token = Some(Secret::new(ADMIN));
    tweak(&mut settings);
    spawn_with(dbh, settings).await
}

fn root(app: &TestApp) -> String {
    format!("http://127.0.0.1:{}", app.port)
}

async fn admin(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, format!("{}/admin/v1{path}", root(app)))
        .bearer_auth(ADMIN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("sent")
}

async fn new_client(app: &TestApp, name: &str, scope: &str) -> (String, String) {
    let res = admin(
        app,
        Method::POST,
        "/credentials/clients",
        Some(json!({"name": name, "scope": scope})),
    )
    .await;
    assert_eq!(res.status(), 201);
    let v = json(res).await;
    (
        v["client_id"].as_str().expect("id").into(),
        v["client_secret"].as_str().expect("secret").into(),
    )
}

/// POST /oauth/token with a form, and optionally HTTP Basic.
async fn token_call(
    app: &TestApp,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(format!("{}/oauth/token", root(app)))
        .form(form);
    if let Some((u, p)) = basic {
        req = req.basic_auth(u, Some(p));
    }
    req.send().await.expect("sent")
}

async fn access_token(app: &TestApp, id: &str, secret: &str) -> String {
    let res = token_call(
        app,
        &[("grant_type", "client_credentials")],
        Some((id, secret)),
    )
    .await;
    assert_eq!(res.status(), 200);
    json(res).await["access_token"]
        .as_str()
        .expect("token")
        .to_string()
}

async fn get_users(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/Users", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("sent")
}

async fn post_user(app: &TestApp, token: &str, name: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/Users", app.base))
        .bearer_auth(token)
        .header("Content-Type", "application/scim+json")
        .body(user(name).to_string())
        .send()
        .await
        .expect("sent")
}

/// A token request (form, HTTP Basic) and the status and RFC 6749 error it must get.
type TokenCase<'a> = (
    Vec<(&'a str, &'a str)>,
    Option<(&'a str, &'a str)>,
    u16,
    &'a str,
);

fn www(res: &reqwest::Response) -> String {
    res.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn assert_invalid_token(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), 401, "{what}");
    assert!(
        www(&res).contains("error=\"invalid_token\""),
        "{what}: {}",
        www(&res)
    );
    assert_scim_error(res, 401, None).await;
}

on_both! {
    async fn a_client_id_holding_u0000_is_an_unknown_client_not_a_server_error(db) {
        let app = app_with(db, |_| {}).await;
        for (form, basic) in [
            (vec![("grant_type", "client_credentials"), ("client_id", "a\u{0}b"), ("client_secret", "x")], None),
            (vec![("grant_type", "client_credentials")], Some(("\u{0}", "x"))),
        ] {
            let res = token_call(&app, &form, basic).await;
            assert_eq!(res.status(), 401);
            let body = json(res).await;
            assert_eq!(body["error"], "invalid_client", "{body}");
        }
    }

    async fn a_client_made_on_the_command_line_gets_a_token_from_the_endpoint_that_opens_scim(db) {
        let app = app_with(db, |_| {}).await;
        let out = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
            .args(["client", "create", "--name", "entra", "--scope", "scim:read scim:write", "--token-lifetime-mins", "90",
                   "--database-url", &app.db.url()])
            .output().expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let made: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        let (id, secret) = (made["client_id"].as_str().expect("id"), made["client_secret"].as_str().expect("secret"));
        let res = token_call(&app, &[("grant_type", "client_credentials")], Some((id, secret))).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers().get("cache-control").expect("no-store"), "no-store");
        let t = json(res).await;
        assert_eq!(t["token_type"], "Bearer");
        assert_eq!(t["expires_in"], 90 * 60);
        assert_eq!(t["scope"], "scim:read scim:write");
        let token = t["access_token"].as_str().expect("token");
        assert_eq!(get_users(&app, token).await.status(), 200);
        assert_eq!(post_user(&app, token, "oauth@example.com").await.status(), 201);
        // client_secret_post works the same.
        let res = token_call(&app, &[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)], None).await;
        assert_eq!(res.status(), 200);
        // Only a hash of the secret is stored; the listing shows when it was last used.
        let out = Command::new(env!("CARGO_BIN_EXE_scim-bridge")).args(["client", "list", "--database-url", &app.db.url()]).output().expect("runs");
        let listing = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(listing.contains("entra") && listing.contains(id) && !listing.contains(secret), "{listing}");
        assert!(!listing.contains("never"), "last use recorded: {listing}");
    }

    async fn the_token_endpoint_refuses_with_rfc_6749_errors(db) {
        let app = app_with(db, |_| {}).await;
        let (id, secret) = new_client(&app, "reader", "scim:read").await;
        let cases: Vec<TokenCase> = vec![
            (vec![], Some((&id, &secret)), 400, "invalid_request"),
            (vec![("grant_type", "password")], Some((&id, &secret)), 400, "unsupported_grant_type"),
            (vec![("grant_type", "client_credentials")], Some((&id, "wrong")), 401, "invalid_client"),
            (vec![("grant_type", "client_credentials")], Some(("nobody", "x")), 401, "invalid_client"),
            (vec![("grant_type", "client_credentials")], None, 401, "invalid_client"),
            (vec![("grant_type", "client_credentials"), ("client_secret", &secret)], Some((&id, &secret)), 400, "invalid_request"),
            (vec![("grant_type", "client_credentials"), ("scope", "scim:write")], Some((&id, &secret)), 400, "invalid_scope"),
            (vec![("grant_type", "client_credentials"), ("scope", "admin")], Some((&id, &secret)), 400, "invalid_scope"),
        ];
        for (form, basic, status, code) in cases {
            let res = token_call(&app, &form, basic).await;
            assert_eq!(res.status().as_u16(), status, "{form:?}");
            if status == 401 {
                assert!(www(&res).starts_with("Basic"), "{}", www(&res));
            }
            assert_eq!(json(res).await["error"], code, "{form:?}");
        }
        let res = app.client.post(format!("{}/oauth/token", root(&app))).basic_auth(&id, Some(&secret))
            .json(&json!({"grant_type": "client_credentials"})).send().await.expect("sent");
        assert_eq!(json(res).await["error"], "invalid_request", "a JSON body is not a form");
    }

    async fn a_read_only_credential_reads_and_searches_but_cannot_write(db) {
        let app = app_with(db, |_| {}).await;
        let (id, secret) = new_client(&app, "auditor", "scim:read scim:write").await;
        // A client may narrow its scopes when it asks for a token.
        let res = token_call(&app, &[("grant_type", "client_credentials"), ("scope", "scim:read")], Some((&id, &secret))).await;
        let narrowed = json(res).await["access_token"].as_str().expect("token").to_string();
        let res = admin(&app, Method::POST, "/credentials/tokens", Some(json!({"name": "ro", "scope": "scim:read"}))).await;
        assert_eq!(res.status(), 201);
        let static_ro = json(res).await["token"].as_str().expect("token").to_string();
        for token in [narrowed, static_ro] {
            assert_eq!(get_users(&app, &token).await.status(), 200);
            let res = app.client.post(format!("{}/Users/.search", app.base)).bearer_auth(&token)
                .header("Content-Type", "application/scim+json")
                .body(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}).to_string()).send().await.expect("sent");
            assert_eq!(res.status(), 200, ".search is a read");
            let res = post_user(&app, &token, "ro@example.com").await;
            assert_eq!(www(&res), "Bearer realm=\"scim-bridge\", error=\"insufficient_scope\", scope=\"scim:write\"");
            assert_scim_error(res, 403, None).await;
        }
        assert_eq!(json(app.get("/Users").await).await["totalResults"], 0, "nothing was written");
    }

    async fn a_revoked_credential_stops_at_once_on_another_instance_sharing_the_database(db) {
        let a = app_with(db, |_| {}).await;
        let mut settings = a.settings.clone();
        settings.listen = "127.0.0.1:0".into();
        let b = spawn_with(a.db.clone(), settings).await;
        let (id, secret) = new_client(&a, "okta", "scim:read scim:write").await;
        let from_a = access_token(&a, &id, &secret).await;
        assert_eq!(get_users(&b, &from_a).await.status(), 200, "the signing key is shared through the database");
        let from_b = access_token(&b, &id, &secret).await;
        assert_eq!(get_users(&a, &from_b).await.status(), 200);
        let res = admin(&a, Method::POST, "/credentials/tokens", Some(json!({"name": "legacy"}))).await;
        let legacy = json(res).await["token"].as_str().expect("token").to_string();
        assert_eq!(get_users(&b, &legacy).await.status(), 200);
        assert_eq!(admin(&a, Method::DELETE, "/credentials/clients/okta", None).await.status(), 204);
        assert_eq!(admin(&a, Method::DELETE, "/credentials/tokens/legacy", None).await.status(), 204);
        assert_invalid_token(get_users(&b, &from_a).await, "revoked client's token on b").await;
        assert_invalid_token(get_users(&b, &from_b).await, "revoked client's token on b").await;
        assert_invalid_token(get_users(&b, &legacy).await, "revoked static token on b").await;
        let res = token_call(&b, &[("grant_type", "client_credentials")], Some((&id, &secret))).await;
        assert_eq!(json(res).await["error"], "invalid_client");
        assert_eq!(admin(&a, Method::DELETE, "/credentials/clients/okta", None).await.status(), 404, "already revoked");
        let list = json(admin(&b, Method::GET, "/credentials", None).await).await;
        let okta = list["credentials"].as_array().expect("list").iter().find(|c| c["name"] == "okta").expect("okta").clone();
        assert!(okta["revoked"].is_string() && okta["lastUsed"].is_string(), "{okta}");
        assert!(!list.to_string().contains(&secret) && !list.to_string().contains(&legacy), "never a secret");
    }

    async fn a_rotated_signing_key_signs_new_tokens_and_old_ones_stay_valid(db) {
        let app = app_with(db, |_| {}).await;
        let (id, secret) = new_client(&app, "rotating", "scim:read").await;
        let old = access_token(&app, &id, &secret).await;
        let res = admin(&app, Method::POST, "/credentials/signing-key", None).await;
        assert_eq!(res.status(), 200);
        let kid = json(res).await["kid"].as_str().expect("kid").to_string();
        let new = access_token(&app, &id, &secret).await;
        assert_eq!(jsonwebtoken::decode_header(&new).expect("header").kid.as_deref(), Some(kid.as_str()));
        assert_ne!(jsonwebtoken::decode_header(&old).expect("header").kid.as_deref(), Some(kid.as_str()));
        assert_eq!(get_users(&app, &old).await.status(), 200);
        assert_eq!(get_users(&app, &new).await.status(), 200);
        // A token of ours with its signature tampered is refused.
        let mut parts: Vec<String> = new.split('.').map(str::to_string).collect();
        parts[2] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
        assert_invalid_token(get_users(&app, &parts.join(".")).await, "tampered").await;
    }

    async fn signing_keys_are_sealed_with_the_outbox_key_and_old_clear_ones_are_sealed_at_start(db) {
        // Without an outbox key the signing key is kept as it was.
        let app = app_with(db, |_| {}).await;
        let (id, secret) = new_client(&app, "sealed", "scim:read").await;
        let before = access_token(&app, &id, &secret).await;
        let clear = signing_key_texts(&app.db.url());
        assert!(clear.iter().all(|k| !k.starts_with("sealed:")), "{clear:?}");
        // Started with one, the bridge seals that key; tokens it signed stay valid, and keys
        // it makes are sealed too.
        let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        let mut settings = app.settings.clone();
        let dbh = app.stop().await;
        settings.outbox_key = Some(Secret::new(&key));
        let app = spawn_with(dbh, settings.clone()).await;
        assert_eq!(get_users(&app, &before).await.status(), 200);
        assert_eq!(admin(&app, Method::POST, "/credentials/signing-key", None).await.status(), 200);
        let after = access_token(&app, &id, &secret).await;
        assert_eq!(get_users(&app, &after).await.status(), 200);
        let stored = signing_key_texts(&app.db.url());
        assert_eq!(stored.len(), 2);
        assert!(stored.iter().all(|k| k.starts_with("sealed:")), "{stored:?}");
        assert!(stored.iter().all(|k| !clear.iter().any(|c| k.contains(c.as_str()))), "the clear key is gone");
        // A restart with the same key reads them.
        let dbh = app.stop().await;
        let app = spawn_with(dbh, settings.clone()).await;
        assert_eq!(get_users(&app, &after).await.status(), 200);
        // Started with another key, the bridge cannot open them: their tokens are refused
        // (401, not a server error) and a new key signs new tokens.
        let dbh = app.stop().await;
        settings.outbox_key = Some(Secret::new(base64::engine::general_purpose::STANDARD.encode([3u8; 32])));
        let app = spawn_with(dbh, settings).await;
        assert_invalid_token(get_users(&app, &after).await, "a key sealed with another outbox key").await;
        let fresh = access_token(&app, &id, &secret).await;
        assert_eq!(get_users(&app, &fresh).await.status(), 200);
    }

    async fn parallel_token_requests_and_client_creates_on_a_fresh_database_all_hold(db) {
        let app = app_with(db, |_| {}).await;
        let app = Arc::new(app);
        // Eight creates of one name: exactly one client is made.
        let creates = (0..8).map(|_| {
            let app = app.clone();
            tokio::spawn(async move { admin(&app, Method::POST, "/credentials/clients", Some(json!({"name": "same"}))).await.status().as_u16() })
        });
        let mut statuses: Vec<u16> = Vec::new();
        for c in creates {
            statuses.push(c.await.expect("joined"));
        }
        statuses.sort();
        assert_eq!(statuses, vec![201, 409, 409, 409, 409, 409, 409, 409]);
        // Sixteen token requests at once on a database with no signing key yet.
        let (id, secret) = new_client(&app, "burst", "scim:read").await;
        let calls = (0..16).map(|_| {
            let (app, id, secret) = (app.clone(), id.clone(), secret.clone());
            tokio::spawn(async move { access_token(&app, &id, &secret).await })
        });
        for c in calls {
            let token = c.await.expect("joined");
            assert_eq!(get_users(&app, &token).await.status(), 200);
        }
    }

    async fn a_credential_over_its_budget_gets_429_with_retry_after_and_others_do_not(db) {
        let app = app_with(db, |s| {
            s.rate_limit_per_sec = 0.5;
            s.rate_limit_burst = 3;
        }).await;
        let res = admin(&app, Method::POST, "/credentials/tokens", Some(json!({"name": "busy"}))).await;
        let busy = json(res).await["token"].as_str().expect("token").to_string();
        for _ in 0..3 {
            assert_eq!(get_users(&app, &busy).await.status(), 200);
        }
        let res = get_users(&app, &busy).await;
        let retry: u64 = res.headers().get("retry-after").expect("Retry-After").to_str().expect("text").parse().expect("seconds");
        assert!((1..=2).contains(&retry), "{retry}");
        assert_scim_error(res, 429, None).await;
        assert_eq!(get_users(&app, &app.token).await.status(), 200, "another credential has its own budget");
    }
}

// --- Outside issuers -------------------------------------------------------------------

/// A signing key of the outside issuer, made by the test: its private PEM, public PEM and
/// JWK (kid `test-key-{name}`).
struct TestKey {
    private_pem: String,
    public_pem: String,
    jwk: Value,
}

/// The issuer's keys `a` and `b` (b for a rotation), made once for the whole test binary.
fn test_key(name: &str) -> &'static TestKey {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    static KEYS: std::sync::OnceLock<std::collections::HashMap<&'static str, TestKey>> =
        std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        ["a", "b"]
            .into_iter()
            .map(|n| {
                let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("key");
                let public = private.to_public_key();
                let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
                let key = TestKey {
                    private_pem: private.to_pkcs8_pem(LineEnding::LF).expect("pem").to_string(),
                    public_pem: public.to_public_key_pem(LineEnding::LF).expect("pem"),
                    jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": format!("test-key-{n}"),
                                "n": b64(public.n().to_bytes_be()), "e": b64(public.e().to_bytes_be())}),
                };
                (n, key)
            })
            .collect()
    });
    &keys[name]
}

fn jwk(name: &str) -> Value {
    test_key(name).jwk.clone()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

/// A token signed with test key `key_name`, naming `kid`, with these claims over the defaults.
fn mint(key_name: &str, kid: &str, claims: Value) -> String {
    let mut c = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "entra-sp", "iat": now(), "nbf": now() - 10, "exp": now() + 3600});
    for (k, v) in claims.as_object().expect("object") {
        c[k] = v.clone();
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        &c,
        &EncodingKey::from_rsa_pem(test_key(key_name).private_pem.as_bytes()).expect("pem"),
    )
    .expect("signed")
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A JWKS endpoint whose keys the test changes; counts its fetches.
struct Jwks {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<Mutex<u32>>,
    /// While set, each fetch says it started and then waits for a permit of `release`.
    hold: Arc<std::sync::atomic::AtomicBool>,
    started: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Semaphore>,
}

fn serve_jwks(initial: Vec<Value>) -> Jwks {
    let keys = Arc::new(Mutex::new(initial));
    let fetches = Arc::new(Mutex::new(0u32));
    let hold = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let (k, f) = (keys.clone(), fetches.clone());
    let (h, s, r) = (hold.clone(), started.clone(), release.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = HttpServer::new(move || {
        let (k, f) = (k.clone(), f.clone());
        let (h, s, r) = (h.clone(), s.clone(), r.clone());
        App::new().route(
            "/keys",
            web::get().to(move || {
                let (k, f) = (k.clone(), f.clone());
                let (h, s, r) = (h.clone(), s.clone(), r.clone());
                async move {
                    *f.lock().expect("lock") += 1;
                    if h.load(std::sync::atomic::Ordering::SeqCst) {
                        s.notify_one();
                        r.acquire().await.expect("open").forget();
                    }
                    let keys = k.lock().expect("lock").clone();
                    HttpResponse::Ok().json(json!({"keys": keys}))
                }
            }),
        )
    })
    .workers(2)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    Jwks {
        url: format!("http://127.0.0.1:{port}/keys"),
        keys,
        fetches,
        hold,
        started,
        release,
    }
}

fn issuer(jwks_url: &str, scope: &str) -> JwtIssuerConfig {
    JwtIssuerConfig {
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        jwks_url: Some(jwks_url.into()),
        algorithms: vec!["RS256".into()],
        leeway_secs: 30,
        scope: scope.into(),
        jwks_min_refresh_secs: 0,
        ..Default::default()
    }
}

on_both! {
    async fn a_credential_name_with_a_control_character_is_a_400_and_revoking_one_finds_nothing(db) {
        let app = app_with(db, |_| {}).await;
        for path in ["/credentials/clients", "/credentials/tokens"] {
            // Control characters, text-reordering ones (a right-to-left override makes
            // "admin\u{202E}nimda" read otherwise), and the settings' token's own name.
            for name in ["\u{de}\u{23a}\u{cf}\u{0}", "tab\there", " ", "ci\u{202E}txt.exe", "a\u{2066}b", "configured", "Configured"] {
                let res = admin(&app, Method::POST, path, Some(json!({"name": name}))).await;
                assert_scim_error(res, 400, Some("invalidValue")).await;
            }
        }
        for path in ["/credentials/clients/a%00b", "/credentials/tokens/a%00b"] {
            assert_eq!(admin(&app, Method::DELETE, path, None).await.status(), 404, "{path}");
        }
        let fine = admin(&app, Method::POST, "/credentials/clients", Some(json!({"name": "Ünïcode ok"}))).await;
        assert_eq!(fine.status(), 201);
        // Lookups by a value holding U+0000 find nothing, on PostgreSQL too (no 500).
        let audit = admin(&app, Method::GET, "/audit?resource=a%00b&credential=c%00", None).await;
        assert_eq!(audit.status(), 200);
        assert_eq!(json(audit).await["entries"], json!([]));
        let jobs = admin(&app, Method::GET, "/jobs?connector=a%00b", None).await;
        assert_eq!(jobs.status(), 200);
        assert_eq!(admin(&app, Method::GET, "/users/a%00b", None).await.status(), 404);
        assert_eq!(admin(&app, Method::GET, "/groups/a%00b", None).await.status(), 404);
    }
}

on_both! {
    async fn a_jwt_from_a_configured_issuer_is_accepted_and_every_bad_one_refused(db) {
        let jwks = serve_jwks(vec![jwk("a")]);
        let url = jwks.url.clone();
        let app = app_with(db, |s| s.jwt_issuers = vec![issuer(&url, "scim:read scim:write")]).await;
        let good = mint("a", "test-key-a", json!({}));
        assert_eq!(get_users(&app, &good).await.status(), 200);
        assert_eq!(post_user(&app, &good, "jwt@example.com").await.status(), 201);
        let public_pem = test_key("a").public_pem.as_bytes().to_vec();
        let hs_with_public_key = {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some("test-key-a".into());
            jsonwebtoken::encode(&h, &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now() + 600}), &EncodingKey::from_secret(&public_pem)).expect("hs")
        };
        let alg_none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT", "kid": "test-key-a"})),
                               b64(&json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now() + 600})));
        let wrong_key = mint("b", "test-key-a", json!({}));
        let bad = [
            ("expired", mint("a", "test-key-a", json!({"exp": now() - 600, "iat": now() - 4000}))),
            ("not yet valid", mint("a", "test-key-a", json!({"nbf": now() + 600}))),
            ("wrong issuer", mint("a", "test-key-a", json!({"iss": "https://elsewhere.test/"}))),
            ("wrong audience", mint("a", "test-key-a", json!({"aud": "api://another"}))),
            ("unknown key", mint("b", "test-key-unknown", json!({}))),
            ("bad signature", wrong_key),
            ("alg none", alg_none),
            ("HS256 signed with the public key", hs_with_public_key),
            ("garbage", "eyJub3QiOiJhIGp3dCJ9.e30.AAAA".to_string()),
        ];
        for (what, token) in bad {
            assert_invalid_token(get_users(&app, &token).await, what).await;
        }
        assert_eq!(json(app.get("/Users").await).await["totalResults"], 1);
    }

    async fn a_slow_key_fetch_for_an_unknown_kid_never_holds_up_tokens_whose_key_is_known(db) {
        let jwks = serve_jwks(vec![jwk("a")]);
        let url = jwks.url.clone();
        let app = app_with(db, |s| s.jwt_issuers = vec![issuer(&url, "scim:read")]).await;
        let known = mint("a", "test-key-a", json!({}));
        assert_eq!(get_users(&app, &known).await.status(), 200);
        // A token naming a key the issuer never published makes the bridge fetch again,
        // and the issuer is slow to answer: the fetch is held until the test lets it go.
        jwks.hold.store(true, std::sync::atomic::Ordering::SeqCst);
        let unknown = mint("b", "never-published", json!({}));
        let stranger = {
            let (client, base) = (app.client.clone(), app.base.clone());
            tokio::spawn(async move { client.get(format!("{base}/Users")).bearer_auth(unknown).send().await.expect("sent").status() })
        };
        jwks.started.notified().await;
        // Meanwhile a token whose key is cached is answered at once, not after the fetch.
        let answered = tokio::time::timeout(std::time::Duration::from_secs(4), get_users(&app, &known)).await;
        assert_eq!(answered.expect("answered while the fetch is held").status(), 200);
        jwks.release.add_permits(1);
        assert_eq!(stranger.await.expect("joined"), 401);
        assert_eq!(*jwks.fetches.lock().expect("lock"), 2, "one fetch for the unknown key");
    }

    async fn an_issuer_that_rotates_its_key_is_followed_with_one_fetch_and_its_scope_applies(db) {
        let jwks = serve_jwks(vec![jwk("a")]);
        let url = jwks.url.clone();
        let app = app_with(db, |s| s.jwt_issuers = vec![issuer(&url, "scim:read")]).await;
        assert_eq!(get_users(&app, &mint("a", "test-key-a", json!({}))).await.status(), 200);
        assert_eq!(get_users(&app, &mint("a", "test-key-a", json!({"sub": "other"}))).await.status(), 200);
        assert_eq!(*jwks.fetches.lock().expect("lock"), 1, "the keys are cached");
        // The issuer publishes a new key and signs with it: an unknown kid fetches again.
        jwks.keys.lock().expect("lock").push(jwk("b"));
        assert_eq!(get_users(&app, &mint("b", "test-key-b", json!({}))).await.status(), 200);
        assert_eq!(*jwks.fetches.lock().expect("lock"), 2);
        // This issuer's tokens may read only.
        let res = post_user(&app, &mint("b", "test-key-b", json!({})), "no@example.com").await;
        assert!(www(&res).contains("insufficient_scope"));
        assert_scim_error(res, 403, None).await;
    }
}

crate::tests! {
    fn an_entra_tenant_fills_in_issuer_audience_and_keys_and_hmac_or_none_are_refused() {
        let entra = JwtIssuerConfig {
            entra_tenant_id: Some("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0".into()),
            algorithms: vec!["RS256".into()],
            scope: "scim:read scim:write".into(),
            ..Default::default()
        }
        .resolved()
        .expect("valid");
        assert_eq!(
            entra.issuer.as_deref(),
            Some("https://sts.windows.net/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/")
        );
        assert_eq!(
            entra.audience.as_deref(),
            Some("8adf8e6e-67b2-4cf2-a259-e3dc5476c621")
        );
        assert_eq!(
            entra.jwks_url.as_deref(),
            Some(
                "https://login.microsoftonline.com/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/discovery/keys"
            )
        );
        let text = r#"
    [[jwt_issuer]]
    issuer = "https://a.test/"
    audience = "x"
    jwks_url = "https://a.test/keys"
    algorithms = ["HS256"]

    [[jwt_issuer]]
    issuer = "https://b.test/"
    jwks_url = "https://b.test/keys"

    [[jwt_issuer]]
    entra_tenant_id = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    algorithms = ["none"]
    "#;
        let problems = scim_bridge::config::check_file(text);
        let lines: Vec<usize> = problems.iter().filter_map(|p| p.line()).collect();
        assert_eq!(lines, vec![2, 8, 12], "{problems:?}");
        assert!(problems[0].message.contains("'HS256' is not accepted"));
        assert!(problems[1].message.contains("audience is required"));
    }
}

/// The signing keys' stored texts, as the database holds them.
fn signing_key_texts(url: &str) -> Vec<String> {
    use diesel::prelude::*;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        secret: String,
    }
    let q = "SELECT secret FROM signing_keys ORDER BY created";
    let rows: Vec<Row> = if let Some(path) = url.strip_prefix("sqlite://") {
        let mut c = diesel::SqliteConnection::establish(path).expect("sqlite");
        diesel::sql_query(q).load(&mut c).expect("rows")
    } else {
        let mut c = diesel::PgConnection::establish(url).expect("pg");
        diesel::sql_query(q).load(&mut c).expect("rows")
    };
    rows.into_iter().map(|r| r.secret).collect()
}
