//! Credentials: static bearer tokens, OAuth 2.0 clients (client credentials grant, RFC 6749
//! section 4.4) and the access tokens the bridge signs for them, each with scopes, a name,
//! a last use and a revocation that takes effect at once on every instance (each request
//! reads the store). Secrets are made at random, shown once, kept only as SHA-256 hashes
//! and compared in constant time; the keys that sign access tokens live in the store, so
//! every instance sharing it verifies every token, and a rotation keeps old tokens valid
//! until they expire.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::BridgeResult;
use crate::clock::{format_time, parse_time, Clock};
use crate::store::{ClientRow, SigningKeyRow, StoreError, TokenRow, TokenStore};

/// What a token lets its bearer do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Scim,
    Admin,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Scim => "scim",
            TokenKind::Admin => "admin",
        }
    }
}

/// A SCIM scope: `scim:read` (GET and `.search`) or `scim:write` (every other call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "scim:read",
            Scope::Write => "scim:write",
        }
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    pub read: bool,
    pub write: bool,
}

impl Scopes {
    pub const FULL: Scopes = Scopes {
        read: true,
        write: true,
    };

    /// Reads a space-separated list (RFC 6749 section 3.3); an unknown scope is an error.
    pub fn parse(text: &str) -> Result<Scopes, String> {
        let mut out = Scopes::default();
        for s in text.split_whitespace() {
            match s {
                "scim:read" => out.read = true,
                "scim:write" => out.write = true,
                other => {
                    return Err(format!(
                        "unknown scope '{other}' (known: scim:read, scim:write)"
                    ))
                }
            }
        }
        if out == Scopes::default() {
            return Err("no scope given (known: scim:read, scim:write)".into());
        }
        Ok(out)
    }

    pub fn allows(self, scope: Scope) -> bool {
        match scope {
            Scope::Read => self.read,
            Scope::Write => self.write,
        }
    }

    /// Whether every scope of `other` is in these.
    pub fn covers(self, other: Scopes) -> bool {
        (self.read || !other.read) && (self.write || !other.write)
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.read {
            parts.push(Scope::Read.as_str());
        }
        if self.write {
            parts.push(Scope::Write.as_str());
        }
        f.write_str(&parts.join(" "))
    }
}

/// What kind of credential a caller presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CallerKind {
    /// A token given by the environment or settings.
    Configured,
    /// A stored static token.
    Token,
    /// An access token the bridge issued to an OAuth client.
    Client,
    /// A JWT from a configured outside issuer.
    Jwt,
}

/// Who is calling, as far as authentication tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub kind: CallerKind,
    /// The credential's name (a token's or client's name, a JWT's issuer and subject).
    pub name: String,
    /// What a request budget is kept per.
    pub key: String,
    pub scopes: Scopes,
}

/// Why a credential was refused. The message names the check, never the credential.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An RFC 6749 section 5.2 error of the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("server_error: {0}")]
    Server(String),
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::Server(_) => "server_error",
        }
    }

    pub fn description(&self) -> &str {
        match self {
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidClient(d)
            | OAuthError::UnsupportedGrantType(d)
            | OAuthError::InvalidScope(d)
            | OAuthError::Server(d) => d,
        }
    }
}

/// An access token issued by the token endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
}

/// A client as made: its secret is shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct NewClient {
    pub client_id: String,
    pub client_secret: String,
}

/// A credential as an administrator sees it: never a secret.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialView {
    pub kind: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub scopes: String,
    pub created: String,
    pub last_used: Option<String>,
    pub revoked: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_lifetime_mins: Option<i32>,
}

/// The claims of the access tokens the bridge signs.
#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    iss: String,
    aud: String,
    sub: String,
    client_id: String,
    scope: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// The `iss` of the bridge's own access tokens.
pub const OWN_ISSUER: &str = "scim-bridge";
const OWN_AUDIENCE: &str = "scim-bridge/scim/v2";
/// Access-token lifetimes a client may have, in minutes (Microsoft's validation asks for
/// 60 to 360).
pub const LIFETIME_MINS: std::ops::RangeInclusive<i32> = 60..=360;
/// How stale a credential's `last_used` may get before a use writes it again: a use does
/// not cost a write every time.
const TOUCH_EVERY_SECS: i64 = 60;

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_b64(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A new random token: 32 bytes from the OS generator, URL-safe base64, with a prefix
/// that secret scanners can recognise.
pub fn generate_token() -> String {
    format!("scb_{}", random_b64(32))
}

/// The name the audit trail gives the token from the settings (`token`, SCIM_BRIDGE_TOKEN).
const CONFIGURED: &str = "configured";

/// Characters that reorder the text around them (bidirectional embeddings, overrides and
/// isolates): a name holding one can read, in a list or the audit trail, as another.
fn reorders(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// A credential's name: 1 to 200 characters, no control character and none that reorders
/// text (names are shown in lists, logs and the audit trail, and PostgreSQL cannot store
/// U+0000), and not `configured`, the settings' token's name in the audit trail.
fn check_name(name: &str) -> BridgeResult<()> {
    if name.trim().is_empty()
        || name.chars().count() > 200
        || name.chars().any(|c| c.is_control() || reorders(c))
    {
        return Err(crate::scim::ScimError::InvalidValue(
            "a credential's name is 1 to 200 characters, none of them a control character or one that reorders text".into(),
        )
        .into());
    }
    if name.trim().eq_ignore_ascii_case(CONFIGURED) {
        return Err(crate::scim::ScimError::InvalidValue(format!(
            "'{CONFIGURED}' names the token from the settings in the audit trail: choose another name"
        ))
        .into());
    }
    Ok(())
}

/// Whether a token looks like a JWT (three base64url parts) rather than an opaque token.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("ey")
}

/// The `iss` of a JWT, read without verifying anything (to choose who verifies it).
pub fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iss")?.as_str().map(str::to_string)
}

pub struct Tokens {
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    /// Hashes of tokens given by the environment (SCIM_BRIDGE_TOKEN, SCIM_BRIDGE_ADMIN_TOKEN).
    fixed: Vec<(TokenKind, [u8; 32])>,
    /// Signing keys by kid, as read from the store (a key never changes once made).
    keys: RwLock<HashMap<String, Vec<u8>>>,
    /// Seals the signing keys at rest (the outbox key), when one is configured.
    sealer: Option<crate::outbox::seal::Sealer>,
}

/// How a sealed signing key's stored text begins; one without it is from before sealing.
const SEALED: &str = "sealed:";

/// What binds a sealed signing key to its row.
fn key_aad(kid: &str) -> String {
    format!("signing-key:{kid}")
}

impl Tokens {
    pub fn new(store: Arc<dyn TokenStore>, clock: Arc<dyn Clock>) -> Tokens {
        Tokens {
            store,
            clock,
            fixed: Vec::new(),
            keys: RwLock::new(HashMap::new()),
            sealer: None,
        }
    }

    /// Seals the signing keys it makes with `sealer`, opens sealed ones with it, and seals
    /// the keys stored before in the clear. Returns how many it sealed.
    pub fn with_sealer(
        mut self,
        sealer: crate::outbox::seal::Sealer,
    ) -> Result<(Tokens, usize), StoreError> {
        let mut sealed = 0;
        for row in self.store.signing_keys()? {
            if !row.secret.starts_with(SEALED) {
                let secret = format!("{SEALED}{}", sealer.seal(&row.secret, &key_aad(&row.kid)));
                self.store.reseal_signing_key(&row.kid, &secret)?;
                sealed += 1;
            }
        }
        self.sealer = Some(sealer);
        Ok((self, sealed))
    }

    /// Accepts `token` for `kind` without storing it (a token from the environment).
    pub fn allow_fixed(&mut self, kind: TokenKind, token: &str) {
        self.fixed
            .push((kind, Sha256::digest(token.as_bytes()).into()));
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Creates and stores a token; returns the token itself, which is never kept.
    pub fn create(&self, name: &str, kind: TokenKind) -> BridgeResult<String> {
        self.create_scoped(name, kind, Scopes::FULL)
    }

    /// Creates a token with these scopes (they matter for SCIM tokens only).
    pub fn create_scoped(
        &self,
        name: &str,
        kind: TokenKind,
        scopes: Scopes,
    ) -> BridgeResult<String> {
        check_name(name)?;
        let token = generate_token();
        let row = TokenRow {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            kind: kind.as_str().to_string(),
            created: format_time(self.now()),
            scopes: scopes.to_string(),
            last_used: None,
            revoked: None,
        };
        self.store.add_token(&row, &hash_token(&token))?;
        Ok(token)
    }

    /// Whether any credential of `kind` exists, stored or fixed (an OAuth client or an
    /// outside issuer counts for SCIM at the caller's side).
    /// Whether an OAuth client that is not revoked exists.
    pub fn any_client(&self) -> BridgeResult<bool> {
        Ok(self
            .store
            .list_clients()?
            .iter()
            .any(|c| c.revoked.is_none()))
    }

    pub fn any(&self, kind: TokenKind) -> BridgeResult<bool> {
        Ok(self.fixed.iter().any(|(k, _)| *k == kind)
            || self.store.count_tokens(kind.as_str())? > 0)
    }

    /// The caller a static token stands for, or None when it is no live token of `kind`.
    pub fn caller(&self, presented: &str, kind: TokenKind) -> Result<Option<Caller>, AuthError> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut ok = false;
        for (k, h) in &self.fixed {
            // Every fixed token is compared, so the time taken does not tell which matched.
            let same: bool = h.ct_eq(&digest).into();
            ok |= same && *k == kind;
        }
        if ok {
            return Ok(Some(Caller {
                kind: CallerKind::Configured,
                name: CONFIGURED.into(),
                key: format!("configured:{}", kind.as_str()),
                scopes: Scopes::FULL,
            }));
        }
        // The lookup is by hash: the index reveals nothing about the token itself.
        let Some(row) = self.store.token_by_hash(&hex::encode(digest))? else {
            return Ok(None);
        };
        if row.kind != kind.as_str() || row.revoked.is_some() {
            return Ok(None);
        }
        if self.stale(row.last_used.as_deref()) {
            self.store.touch_token(&row.id, &format_time(self.now()))?;
        }
        Ok(Some(Caller {
            kind: CallerKind::Token,
            key: format!("token:{}", row.id),
            // A scope list that cannot be read grants nothing.
            scopes: Scopes::parse(&row.scopes).unwrap_or_default(),
            name: row.name,
        }))
    }

    fn stale(&self, last_used: Option<&str>) -> bool {
        match last_used.and_then(|t| parse_time(t).ok()) {
            Some(t) => self.now() - t > Duration::seconds(TOUCH_EVERY_SECS),
            None => true,
        }
    }

    /// Revokes the tokens with this name; how many were live.
    pub fn revoke(&self, name: &str) -> BridgeResult<usize> {
        if name.contains('\0') {
            return Ok(0); // no name holds one (check_name), and PostgreSQL cannot compare it
        }
        Ok(self.store.revoke_tokens(name, &format_time(self.now()))?)
    }

    /// Makes an OAuth client; its secret is returned this once.
    pub fn create_client(
        &self,
        name: &str,
        scopes: Scopes,
        lifetime_mins: i32,
    ) -> BridgeResult<NewClient> {
        check_name(name)?;
        if !LIFETIME_MINS.contains(&lifetime_mins) {
            return Err(crate::scim::ScimError::InvalidValue(format!(
                "the token lifetime is {} to {} minutes",
                LIFETIME_MINS.start(),
                LIFETIME_MINS.end()
            ))
            .into());
        }
        let client_id = format!("scbc_{}", random_b64(12));
        let client_secret = format!("scbs_{}", random_b64(32));
        self.store.add_client(&ClientRow {
            client_id: client_id.clone(),
            name: name.to_string(),
            secret_hash: hash_token(&client_secret),
            scopes: scopes.to_string(),
            token_lifetime_mins: lifetime_mins,
            created: format_time(self.now()),
            last_used: None,
            revoked: None,
        })?;
        Ok(NewClient {
            client_id,
            client_secret,
        })
    }

    /// Revokes a client: its access tokens stop working at once.
    pub fn revoke_client(&self, name: &str) -> BridgeResult<usize> {
        if name.contains('\0') {
            return Ok(0);
        }
        Ok(self.store.revoke_client(name, &format_time(self.now()))?)
    }

    /// Every token and client, never a secret.
    pub fn list(&self) -> BridgeResult<Vec<CredentialView>> {
        let mut out: Vec<CredentialView> = self
            .store
            .list_tokens()?
            .into_iter()
            .map(|t| CredentialView {
                kind: if t.kind == "admin" {
                    "adminToken"
                } else {
                    "token"
                },
                name: t.name,
                client_id: None,
                scopes: t.scopes,
                created: t.created,
                last_used: t.last_used,
                revoked: t.revoked,
                token_lifetime_mins: None,
            })
            .collect();
        out.extend(
            self.store
                .list_clients()?
                .into_iter()
                .map(|c| CredentialView {
                    kind: "client",
                    name: c.name,
                    client_id: Some(c.client_id),
                    scopes: c.scopes,
                    created: c.created,
                    last_used: c.last_used,
                    revoked: c.revoked,
                    token_lifetime_mins: Some(c.token_lifetime_mins),
                }),
        );
        Ok(out)
    }

    /// The client credentials grant: checks the client and the scope asked for, and signs
    /// an access token.
    pub fn issue(
        &self,
        client_id: &str,
        secret: &str,
        scope: Option<&str>,
    ) -> Result<IssuedToken, OAuthError> {
        let server = |e: StoreError| {
            log::error!("token endpoint: {e}");
            OAuthError::Server("the token could not be issued".into())
        };
        // No client's id holds U+0000 (and PostgreSQL cannot compare one): unknown.
        let client = if client_id.contains('\0') {
            None
        } else {
            self.store.client(client_id).map_err(server)?
        };
        let given: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        // Compare against something even for an unknown client, so timing tells nothing.
        let expected = client
            .as_ref()
            .and_then(|c| hex::decode(&c.secret_hash).ok())
            .unwrap_or_else(|| vec![0u8; 32]);
        let same: bool = expected.ct_eq(&given).into();
        let client = match client {
            Some(c) if same && c.revoked.is_none() => c,
            _ => {
                log::info!("token endpoint: client authentication failed");
                return Err(OAuthError::InvalidClient(
                    "client authentication failed".into(),
                ));
            }
        };
        let allowed = Scopes::parse(&client.scopes).unwrap_or_default();
        let granted = match scope.map(str::trim).filter(|s| !s.is_empty()) {
            None => allowed,
            Some(s) => {
                let asked = Scopes::parse(s).map_err(OAuthError::InvalidScope)?;
                if !allowed.covers(asked) {
                    return Err(OAuthError::InvalidScope(format!(
                        "the client may ask for '{allowed}' only"
                    )));
                }
                asked
            }
        };
        let (kid, key) = self.current_key().map_err(server)?;
        let now = self.now();
        let lifetime = i64::from(client.token_lifetime_mins) * 60;
        let claims = AccessClaims {
            iss: OWN_ISSUER.into(),
            aud: OWN_AUDIENCE.into(),
            sub: client.client_id.clone(),
            client_id: client.client_id.clone(),
            scope: granted.to_string(),
            iat: now.timestamp(),
            exp: now.timestamp() + lifetime,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(kid);
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&key),
        )
        .map_err(|e| OAuthError::Server(format!("signing failed: {e}")))?;
        let _ = self
            .store
            .touch_client(&client.client_id, &format_time(now));
        Ok(IssuedToken {
            access_token: token,
            token_type: "Bearer",
            expires_in: lifetime,
            scope: granted.to_string(),
        })
    }

    /// The newest live signing key, made when there is none. Two instances starting together
    /// may each make one: both sign and both verify.
    fn current_key(&self) -> Result<(String, Vec<u8>), StoreError> {
        let live = self
            .store
            .signing_keys()?
            .into_iter()
            .rfind(|k| k.retired.is_none());
        // A key this process cannot open (sealed with another outbox key, or with one no
        // longer set) is passed over: a new one signs from now on, rather than every token
        // request failing.
        if let Some(row) = live {
            match self.decode_key(&row) {
                Ok(key) => return Ok((row.kid, key)),
                Err(e) => log::warn!("{e}: signing with a new key"),
            }
        }
        let row = self.add_key()?;
        let key = self.decode_key(&row)?;
        Ok((row.kid, key))
    }

    fn add_key(&self) -> Result<SigningKeyRow, StoreError> {
        let kid = uuid::Uuid::new_v4().simple().to_string();
        let clear = random_b64(32);
        let secret = match &self.sealer {
            Some(s) => format!("{SEALED}{}", s.seal(&clear, &key_aad(&kid))),
            None => clear,
        };
        let row = SigningKeyRow {
            kid,
            secret,
            created: format_time(self.now()),
            retired: None,
        };
        self.store.add_signing_key(&row)?;
        Ok(row)
    }

    /// A signing key's bytes: opened with the sealer when sealed.
    fn decode_key(&self, row: &SigningKeyRow) -> Result<Vec<u8>, StoreError> {
        let clear = match (row.secret.strip_prefix(SEALED), &self.sealer) {
            (Some(sealed), Some(s)) => s.open(sealed, &key_aad(&row.kid)).map_err(|_| {
                StoreError::Corrupt(format!(
                    "signing key {} cannot be opened with this outbox key (was it changed?)",
                    row.kid
                ))
            })?,
            (Some(_), None) => {
                return Err(StoreError::Corrupt(format!(
                    "signing key {} is sealed, and no outbox_key is set to open it",
                    row.kid
                )))
            }
            (None, _) => row.secret.clone(),
        };
        decode_key(&clear, &row.kid)
    }

    /// Starts signing with a new key. Tokens signed with the old ones stay valid until
    /// they expire; keys retired longer ago than the longest lifetime are removed.
    pub fn rotate_key(&self) -> BridgeResult<String> {
        let row = self.add_key()?;
        let now = self.now();
        self.store
            .retire_signing_keys(&row.kid, &format_time(now))?;
        let horizon = now - Duration::minutes(i64::from(*LIFETIME_MINS.end()) + 5);
        self.store.drop_signing_keys(&format_time(horizon))?;
        Ok(row.kid)
    }

    fn key(&self, kid: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(k) = self.keys.read().unwrap_or_else(|p| p.into_inner()).get(kid) {
            return Ok(Some(k.clone()));
        }
        let rows = self.store.signing_keys()?;
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        for r in &rows {
            // One that cannot be opened here verifies nothing: its tokens are refused (401).
            if let Ok(k) = self.decode_key(r) {
                keys.insert(r.kid.clone(), k);
            }
        }
        Ok(keys.get(kid).cloned())
    }

    /// Checks an access token the bridge issued: its signature, lifetime, and that its
    /// client still exists and is not revoked.
    pub fn verify_access_token(&self, token: &str) -> Result<Caller, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Invalid(format!("malformed token header: {e}")))?;
        if header.alg != jsonwebtoken::Algorithm::HS256 {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not the bridge's",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("no kid in the token header".into()))?;
        let key = self
            .key(&kid)?
            .ok_or_else(|| AuthError::Invalid("unknown signing key".into()))?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_issuer(&[OWN_ISSUER]);
        validation.set_audience(&[OWN_AUDIENCE]);
        validation.leeway = 5;
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<AccessClaims>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(&key),
            &validation,
        )
        .map_err(|e| AuthError::Invalid(describe(&e)))?;
        let claims = data.claims;
        // Expiry against the bridge's clock, which tests can fix.
        if claims.exp + 5 < self.now().timestamp() {
            return Err(AuthError::Invalid("the token has expired".into()));
        }
        let client = self
            .store
            .client(&claims.client_id)?
            .ok_or_else(|| AuthError::Invalid("the token's client does not exist".into()))?;
        if client.revoked.is_some() {
            return Err(AuthError::Invalid("the token's client is revoked".into()));
        }
        if self.stale(client.last_used.as_deref()) {
            self.store
                .touch_client(&client.client_id, &format_time(self.now()))?;
        }
        Ok(Caller {
            kind: CallerKind::Client,
            key: format!("client:{}", client.client_id),
            scopes: Scopes::parse(&claims.scope).map_err(AuthError::Invalid)?,
            name: client.name,
        })
    }
}

fn decode_key(text: &str, kid: &str) -> Result<Vec<u8>, StoreError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| StoreError::Corrupt(format!("signing key {kid} is not base64")))
}

/// Which check a JWT failed, in words (never the token).
pub fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "the token has expired".into(),
        K::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        K::InvalidIssuer => "wrong issuer".into(),
        K::InvalidAudience => "wrong audience".into(),
        K::InvalidSignature => "bad signature".into(),
        K::InvalidAlgorithm => "the algorithm does not fit the key".into(),
        K::MissingRequiredClaim(c) => format!("the claim '{c}' is missing"),
        other => format!("the token cannot be read: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_print_and_cover() {
        let read = Scopes::parse("scim:read").expect("read");
        assert!(read.allows(Scope::Read) && !read.allows(Scope::Write));
        assert_eq!(
            Scopes::parse("scim:write  scim:read").expect("both"),
            Scopes::FULL
        );
        assert_eq!(Scopes::FULL.to_string(), "scim:read scim:write");
        assert!(Scopes::FULL.covers(read) && !read.covers(Scopes::FULL));
        assert!(Scopes::parse("admin").is_err());
        assert!(Scopes::parse("  ").is_err());
    }

    #[test]
    fn a_jwt_is_told_from_an_opaque_token_and_its_issuer_read_unverified() {
        assert!(!looks_like_jwt(&generate_token()));
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"iss":"x"}"#);
        let t = format!("eyJhbGciOiJub25lIn0.{payload}.");
        assert!(looks_like_jwt(&t));
        assert_eq!(unverified_issuer(&t).as_deref(), Some("x"));
    }
}
