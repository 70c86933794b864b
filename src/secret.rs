//! Secrets: a value that never prints itself, resolved from the forms a settings file may
//! give it (`env:VAR`, `file:PATH`, or literally), and URLs shown without their password.

use std::fmt;

use serde::Deserialize;

/// A value that must not be shown: `Debug` and `Display` print `***`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "***")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s)
    }
}

/// Why a secret reference cannot be resolved, in words that never hold the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the environment variable {0} is not set")]
    Unset(String),
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
}

/// Resolves a secret given literally, as `env:VAR` or as `file:PATH` (one trailing line
/// break dropped).
pub fn resolve_secret(value: &str) -> Result<Secret, SecretError> {
    if let Some(var) = value.strip_prefix("env:") {
        return std::env::var(var)
            .map(Secret::new)
            .map_err(|_| SecretError::Unset(var.to_string()));
    }
    if let Some(path) = value.strip_prefix("file:") {
        return std::fs::read_to_string(path)
            .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
            .map_err(|source| SecretError::Unreadable {
                path: path.to_string(),
                source,
            });
    }
    Ok(Secret::new(value))
}

/// A URL with its password, if any, replaced by `***`.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_itself() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
    }

    #[test]
    fn an_unset_variable_is_named_without_a_value() {
        let e = resolve_secret("env:SCIM_BRIDGE_SURELY_UNSET_VAR").map(|_| ());
        assert_eq!(
            e.map_err(|e| e.to_string()),
            Err("the environment variable SCIM_BRIDGE_SURELY_UNSET_VAR is not set".into())
        );
    }
}
