//! Weak ETags from resource versions, and If-Match / If-None-Match preconditions.

use crate::scim::ScimError;

/// The ETag of a resource version: `W/"<version>"`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// The opaque part of an entity tag, weak or strong: `W/"3"` and `"3"` both give `3`.
fn opaque(tag: &str) -> &str {
    let t = tag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.trim_matches('"')
}

/// An If-Match precondition on a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    None,
    Any,
    OneOf(Vec<String>),
}

impl Precondition {
    /// Reads an If-Match header value.
    pub fn from_if_match(header: Option<&str>) -> Precondition {
        match header.map(str::trim) {
            None | Some("") => Precondition::None,
            Some("*") => Precondition::Any,
            Some(list) => {
                Precondition::OneOf(list.split(',').map(|t| opaque(t).to_string()).collect())
            }
        }
    }

    pub fn is_none(&self) -> bool {
        matches!(self, Precondition::None)
    }

    /// 412 unless the current version satisfies the precondition.
    pub fn check(&self, version: i64) -> Result<(), ScimError> {
        match self {
            Precondition::None | Precondition::Any => Ok(()),
            Precondition::OneOf(tags) if tags.iter().any(|t| t == &version.to_string()) => Ok(()),
            Precondition::OneOf(_) => Err(ScimError::PreconditionFailed(format!(
                "If-Match does not match the current version {}",
                etag(version)
            ))),
        }
    }
}

/// Whether an If-None-Match header matches the current ETag (so a GET answers 304).
pub fn none_match_hits(header: &str, current: &str) -> bool {
    let cur = opaque(current);
    header.trim() == "*" || header.split(',').any(|t| opaque(t) == cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_and_strong_forms_of_a_tag_both_match() {
        assert!(Precondition::from_if_match(Some("W/\"3\""))
            .check(3)
            .is_ok());
        assert!(Precondition::from_if_match(Some("\"3\"")).check(3).is_ok());
        assert!(Precondition::from_if_match(Some("W/\"2\""))
            .check(3)
            .is_err());
        assert!(none_match_hits("W/\"3\", W/\"4\"", "W/\"4\""));
    }
}
