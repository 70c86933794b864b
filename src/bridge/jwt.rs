//! JWT bearer tokens from outside issuers (`[[jwt_issuer]]`): Entra ID's own tokens, or
//! any issuer that publishes its keys as a JWKS. A token is taken by the issuer its `iss`
//! names, then checked: an algorithm the issuer is configured for (asymmetric only, so
//! neither `none` nor an HMAC signed with a public key gets through), a key the JWKS has by
//! `kid` (fetched again for an unknown kid, at most once per `jwks_min_refresh_secs`), the
//! signature, issuer, audience, exp and nbf with the configured leeway. Each refusal says
//! which check failed; the token itself is never logged.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::tokens::{describe, AuthError, Caller, CallerKind, Scopes};

enum KeySource {
    Url(String),
    File(std::path::PathBuf),
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

struct Issuer {
    iss: String,
    aud: String,
    source: KeySource,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    scopes: Scopes,
    floor: Duration,
    /// The keys, read without waiting: a token whose key is known never waits for a fetch.
    cache: std::sync::RwLock<KeyCache>,
    /// Held while the keys are fetched: one fetch at a time, and only tokens with a key not
    /// in the cache wait for it.
    fetching: tokio::sync::Mutex<()>,
}

/// The configured outside issuers.
pub struct Issuers {
    list: Vec<Issuer>,
    http: reqwest::Client,
}

impl Issuers {
    pub fn new(configs: &[JwtIssuerConfig]) -> Result<Issuers, String> {
        let mut list = Vec::new();
        for raw in configs {
            let c = raw.resolved()?;
            let algorithms = c
                .algorithms
                .iter()
                .map(|a| Algorithm::from_str(a).map_err(|e| format!("algorithm {a}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            list.push(Issuer {
                iss: c.issuer.clone().unwrap_or_default(),
                aud: c.audience.clone().unwrap_or_default(),
                source: match (&c.jwks_url, &c.jwks_file) {
                    (Some(u), _) => KeySource::Url(u.clone()),
                    (None, Some(f)) => KeySource::File(f.clone()),
                    (None, None) => return Err("jwks_url or jwks_file is required".into()),
                },
                algorithms,
                leeway: c.leeway_secs,
                scopes: Scopes::parse(&c.scope)?,
                floor: Duration::from_secs(c.jwks_min_refresh_secs),
                cache: std::sync::RwLock::new(KeyCache::default()),
                fetching: tokio::sync::Mutex::new(()),
            });
        }
        // Short: a token with an unknown key waits for this fetch.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Issuers { list, http })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether a configured issuer has this `iss`.
    pub fn knows(&self, iss: &str) -> bool {
        self.list.iter().any(|i| i.iss == iss)
    }

    /// Verifies a token from the issuer its (unverified) `iss` names.
    pub async fn verify(&self, token: &str, iss: &str) -> Result<Caller, AuthError> {
        let issuer = self
            .list
            .iter()
            .find(|i| i.iss == iss)
            .ok_or_else(|| AuthError::Invalid("the token's issuer is not configured".into()))?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Invalid(format!("malformed token header: {e}")))?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted from this issuer",
                header.alg
            )));
        }
        let key = self.key(issuer, header.kid.as_deref()).await?;
        let mut v = Validation::new(header.alg);
        v.algorithms = issuer.algorithms.clone();
        v.set_issuer(&[&issuer.iss]);
        v.set_audience(&[&issuer.aud]);
        v.leeway = issuer.leeway;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data =
            jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key, &v)
                .map_err(|e| AuthError::Invalid(describe(&e)))?;
        let claim = |k: &str| data.claims.get(k).and_then(|x| x.as_str());
        // Entra's app-only tokens name the client in appid/azp; sub is its service principal.
        let subject = claim("sub")
            .or_else(|| claim("appid"))
            .or_else(|| claim("azp"))
            .unwrap_or("unknown")
            .to_string();
        Ok(Caller {
            kind: CallerKind::Jwt,
            key: format!("jwt:{}:{subject}", issuer.iss),
            name: format!("{} {subject}", issuer.iss),
            scopes: issuer.scopes,
        })
    }

    async fn key(&self, issuer: &Issuer, kid: Option<&str>) -> Result<DecodingKey, AuthError> {
        let pick = |c: &KeyCache| match kid {
            Some(k) => c.keys.get(k).cloned(),
            // No kid: only a set of one key says which.
            None if c.keys.len() == 1 => c.keys.values().next().cloned(),
            None => None,
        };
        let read = |f: &dyn Fn(&KeyCache) -> Option<DecodingKey>| {
            f(&issuer.cache.read().unwrap_or_else(|p| p.into_inner()))
        };
        if let Some(k) = read(&pick) {
            return Ok(k);
        }
        // One fetch at a time; a token that waited for another's fetch looks again first.
        let fetched_before = issuer
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .fetched;
        let _fetching = issuer.fetching.lock().await;
        let (found, fetched) = {
            let c = issuer.cache.read().unwrap_or_else(|p| p.into_inner());
            (pick(&c), c.fetched)
        };
        if let Some(k) = found {
            return Ok(k);
        }
        let someone_fetched = fetched != fetched_before;
        let may_fetch = !someone_fetched && fetched.is_none_or(|t| t.elapsed() >= issuer.floor);
        if !may_fetch {
            return Err(AuthError::Invalid(
                "unknown signing key (the issuer's keys were fetched moments ago)".into(),
            ));
        }
        // The fetch runs with no lock on the keys: tokens with known keys go on meanwhile.
        let fetched = self.fetch(issuer).await;
        let mut cache = issuer.cache.write().unwrap_or_else(|p| p.into_inner());
        match fetched {
            Ok(keys) => cache.keys = keys,
            Err(why) => log::warn!("jwt issuer {}: cannot read its keys: {why}", issuer.iss),
        }
        cache.fetched = Some(Instant::now());
        pick(&cache).ok_or_else(|| AuthError::Invalid("unknown signing key".into()))
    }

    async fn fetch(&self, issuer: &Issuer) -> Result<HashMap<String, DecodingKey>, String> {
        let text = match &issuer.source {
            KeySource::Url(u) => {
                let res = self.http.get(u).send().await.map_err(|e| e.to_string())?;
                if !res.status().is_success() {
                    return Err(format!("{u} answered {}", res.status()));
                }
                res.text().await.map_err(|e| e.to_string())?
            }
            // A small file read once in a while: no need to leave the async thread.
            KeySource::File(p) => {
                std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?
            }
        };
        let set: JwkSet = serde_json::from_str(&text).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut out = HashMap::new();
        for jwk in &set.keys {
            // A symmetric key in a JWKS is refused: only keys that verify, never sign.
            if matches!(
                jwk.algorithm,
                jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
            ) {
                continue;
            }
            if let Ok(k) = DecodingKey::from_jwk(jwk) {
                out.insert(jwk.common.key_id.clone().unwrap_or_default(), k);
            }
        }
        Ok(out)
    }
}

/// Microsoft Entra ID's audience for the tokens it presents to SCIM apps.
pub const ENTRA_AUDIENCE: &str = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621";

/// One `[[jwt_issuer]]` table: an outside issuer whose tokens are accepted.
#[derive(Debug, Clone, serde::Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuerConfig {
    /// The `iss` its tokens carry (Entra's is filled in from `entra_tenant_id`).
    pub issuer: Option<String>,
    /// The `aud` its tokens must carry.
    pub audience: Option<String>,
    /// Where its keys are published (JWKS); fetched, cached, and fetched again when a token
    /// names a key not in the cache, at most once per `jwks_min_refresh_secs`.
    pub jwks_url: Option<String>,
    /// Its keys from a JWKS file instead.
    pub jwks_file: Option<std::path::PathBuf>,
    /// Signature algorithms accepted (default RS256); never `none` nor an HMAC one.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on exp and nbf, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// The scopes its tokens get.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// An Entra ID tenant: fills in issuer, audience and jwks_url (each overridable).
    pub entra_tenant_id: Option<String>,
    #[serde(default = "default_refresh_floor")]
    pub jwks_min_refresh_secs: u64,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into()]
}

fn default_leeway() -> u64 {
    60
}

fn default_scope() -> String {
    "scim:read scim:write".into()
}

fn default_refresh_floor() -> u64 {
    60
}

/// The asymmetric algorithms an outside issuer may use.
pub const JWT_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

impl JwtIssuerConfig {
    /// The issuer with Entra's values filled in, checked: issuer, audience, one key source,
    /// algorithms and scope.
    pub fn resolved(&self) -> Result<JwtIssuerConfig, String> {
        let mut c = self.clone();
        if let Some(t) = &self.entra_tenant_id {
            let t = t.trim();
            if t.is_empty()
                || !t
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '.')
            {
                return Err("entra_tenant_id is a tenant id (a GUID) or domain".into());
            }
            c.issuer
                .get_or_insert_with(|| format!("https://sts.windows.net/{t}/"));
            c.audience.get_or_insert_with(|| ENTRA_AUDIENCE.to_string());
            if c.jwks_file.is_none() {
                c.jwks_url.get_or_insert_with(|| {
                    format!("https://login.microsoftonline.com/{t}/discovery/keys")
                });
            }
        }
        if c.issuer.as_deref().is_none_or(|i| i.trim().is_empty()) {
            return Err("issuer is required (or entra_tenant_id)".into());
        }
        if c.audience.as_deref().is_none_or(|a| a.trim().is_empty()) {
            return Err("audience is required (or entra_tenant_id)".into());
        }
        match (&c.jwks_url, &c.jwks_file) {
            (Some(_), Some(_)) => return Err("give jwks_url or jwks_file, not both".into()),
            (None, None) => return Err("jwks_url or jwks_file is required".into()),
            (Some(u), None) => {
                url::Url::parse(u).map_err(|e| format!("jwks_url: {e}"))?;
            }
            (None, Some(_)) => {}
        }
        if c.algorithms.is_empty() {
            return Err("algorithms is empty".into());
        }
        for a in &c.algorithms {
            if !JWT_ALGORITHMS.contains(&a.as_str()) {
                return Err(format!(
                    "algorithm '{a}' is not accepted (an outside issuer signs with a private key: {})",
                    JWT_ALGORITHMS.join(", ")
                ));
            }
        }
        super::tokens::Scopes::parse(&c.scope).map_err(|e| format!("scope: {e}"))?;
        Ok(c)
    }
}
