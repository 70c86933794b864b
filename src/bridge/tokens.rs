//! Bearer tokens: made at random, shown once, kept only as SHA-256 hashes, compared in
//! constant time.

use std::sync::Arc;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::BridgeResult;
use crate::clock::{format_time, Clock};
use crate::store::TokenStore;

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

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token: 32 bytes from the OS generator, URL-safe base64, with a prefix
/// that secret scanners can recognise.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "scb_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub struct Tokens {
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    /// Hashes of tokens given by the environment (SCIM_BRIDGE_TOKEN, SCIM_BRIDGE_ADMIN_TOKEN).
    fixed: Vec<(TokenKind, [u8; 32])>,
}

impl Tokens {
    pub fn new(store: Arc<dyn TokenStore>, clock: Arc<dyn Clock>) -> Tokens {
        Tokens {
            store,
            clock,
            fixed: Vec::new(),
        }
    }

    /// Accepts `token` for `kind` without storing it (a token from the environment).
    pub fn allow_fixed(&mut self, kind: TokenKind, token: &str) {
        self.fixed
            .push((kind, Sha256::digest(token.as_bytes()).into()));
    }

    /// Creates and stores a token; returns the token itself, which is never kept.
    pub fn create(&self, name: &str, kind: TokenKind) -> BridgeResult<String> {
        let token = generate_token();
        let id = uuid::Uuid::new_v4().to_string();
        self.store.add_token(
            &id,
            name,
            &hash_token(&token),
            kind.as_str(),
            &format_time(self.clock.now()),
        )?;
        Ok(token)
    }

    /// Whether any token of `kind` exists, stored or fixed.
    pub fn any(&self, kind: TokenKind) -> BridgeResult<bool> {
        Ok(self.fixed.iter().any(|(k, _)| *k == kind)
            || self.store.count_tokens(kind.as_str())? > 0)
    }

    /// Whether `presented` is a valid token of `kind`.
    pub fn verify(&self, presented: &str, kind: TokenKind) -> BridgeResult<bool> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut ok = false;
        for (k, h) in &self.fixed {
            // Every fixed token is compared, so the time taken does not tell which matched.
            let same: bool = h.ct_eq(&digest).into();
            ok |= same && *k == kind;
        }
        if ok {
            return Ok(true);
        }
        // The lookup is by hash: the index reveals nothing about the token itself.
        Ok(self.store.token_kind(&hex::encode(digest))?.as_deref() == Some(kind.as_str()))
    }
}
