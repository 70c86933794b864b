//! Attribute paths (RFC 7644 section 3.10): `userName`, `name.givenName`,
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`,
//! resolved against a resource type's schemas.

use std::fmt;

use super::error::{ScimError, ScimResult};
use super::schema::{AttrDef, Registry, ResourceType};

/// A syntactic attribute path, before it is resolved against a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        write!(f, "{}", self.attr)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '$' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

impl AttrPath {
    /// Parses `[URN ":"] attr ["." sub]`.
    pub fn parse(text: &str) -> ScimResult<AttrPath> {
        let text = text.trim();
        let (urn, rest) = match text.rfind(':') {
            Some(i) => (Some(text[..i].to_string()), &text[i + 1..]),
            None => (None, text),
        };
        let (attr, sub) = match rest.split_once('.') {
            Some((a, s)) => (a, Some(s)),
            None => (rest, None),
        };
        if !valid_name(attr) || !sub.is_none_or(valid_name) {
            return Err(ScimError::InvalidPath(format!(
                "'{text}' is not a valid attribute path"
            )));
        }
        Ok(AttrPath {
            urn,
            attr: attr.to_string(),
            sub: sub.map(str::to_string),
        })
    }
}

/// A path resolved against a resource type: the canonical names and definitions.
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    /// The extension URN when the attribute lives in an extension; `None` for the core schema.
    pub extension: Option<String>,
    pub attr: &'a AttrDef,
    pub sub: Option<&'a AttrDef>,
}

impl<'a> Resolved<'a> {
    /// The definition the path ends at.
    pub fn leaf(&self) -> &'a AttrDef {
        self.sub.unwrap_or(self.attr)
    }

    /// The canonical dotted path inside the stored document, e.g. `name.givenName`.
    pub fn canonical(&self) -> String {
        let mut s = String::new();
        if let Some(ext) = &self.extension {
            s.push_str(ext);
            s.push(':');
        }
        s.push_str(&self.attr.name);
        if let Some(sub) = self.sub {
            s.push('.');
            s.push_str(&sub.name);
        }
        s
    }
}

/// Resolves `path` against `rt`. `None` means the path names no attribute of the resource
/// type; the caller decides whether that is an error.
pub fn resolve<'a>(reg: &'a Registry, rt: &ResourceType, path: &AttrPath) -> Option<Resolved<'a>> {
    let (schema, extension) = match &path.urn {
        None => (reg.schema(&rt.schema)?, None),
        Some(urn) if urn.eq_ignore_ascii_case(&rt.schema) => (reg.schema(&rt.schema)?, None),
        Some(urn) => {
            let s = reg.extension(rt, urn)?;
            (s, Some(s.id.clone()))
        }
    };
    let attr = schema.attr(&path.attr)?;
    let sub = match &path.sub {
        Some(name) => Some(attr.sub(name)?),
        None => None,
    };
    Some(Resolved {
        extension,
        attr,
        sub,
    })
}

/// Resolves a path or reports it as `invalidPath`/`invalidFilter` via `err`.
pub fn resolve_or<'a>(
    reg: &'a Registry,
    rt: &ResourceType,
    path: &AttrPath,
    err: impl FnOnce(String) -> ScimError,
) -> ScimResult<Resolved<'a>> {
    resolve(reg, rt, path)
        .ok_or_else(|| err(format!("'{path}' is not an attribute of {}", rt.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urn_qualified_path_splits_at_its_last_colon() {
        let p = AttrPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .expect("parses");
        assert_eq!(
            p.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(p.attr, "manager");
        assert_eq!(p.sub.as_deref(), Some("value"));
    }

    #[test]
    fn a_path_with_a_space_is_invalid() {
        assert!(AttrPath::parse("user name").is_err());
    }
}
