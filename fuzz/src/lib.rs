//! What the fuzz targets share: the schema registry and a few stored-looking resources.

use std::sync::OnceLock;

use serde_json::{json, Value};

use scim_bridge::bridge::schemas::load_registry;
use scim_bridge::scim::schema::{Registry, ResourceType};

pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The built-in registry (User with the enterprise extension, Group).
pub fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| load_registry(None).expect("the built-in schemas load"))
}

pub fn resource_type(name: &str) -> &'static ResourceType {
    registry()
        .resource_type(name)
        .expect("a built-in resource type")
}

/// A user with something of every kind: strings, a boolean, complex and multi-valued
/// attributes, an extension.
pub fn sample_user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "id": "u1",
        "userName": "Ada.Lovelace@example.com",
        "externalId": "00u1",
        "active": true,
        "title": "Engineer",
        "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
        "emails": [
            {"value": "ada@example.com", "type": "work", "primary": true},
            {"value": "ada@home.example", "type": "home"}
        ],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
        "addresses": [{"streetAddress": "1 Main St", "locality": "London", "type": "work"}],
        "roles": [{"value": "admin"}],
        "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z",
                 "lastModified": "2024-06-01T12:00:00Z", "version": "W/\"3\""},
        ENTERPRISE: {"employeeNumber": "7", "department": "R&D",
                     "manager": {"value": "u2", "displayName": "Charles"}}
    })
}

/// A group with two members.
pub fn sample_group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "g1",
        "displayName": "Analysts",
        "externalId": "00g1",
        "members": [{"value": "u1", "type": "User"}, {"value": "u2", "type": "User"}]
    })
}

/// A document as the store keeps it: no id, schemas, meta or (for groups) members.
pub fn stored(mut v: Value) -> serde_json::Map<String, Value> {
    if let Some(o) = v.as_object_mut() {
        for k in ["id", "schemas", "meta", "members"] {
            o.remove(k);
        }
    }
    v.as_object().cloned().unwrap_or_default()
}

/// Reads fuzz bytes as a sequence of small choices (a byte each; 0 when they run out).
pub struct Choices<'a> {
    bytes: &'a [u8],
}

impl<'a> Choices<'a> {
    pub fn new(bytes: &'a [u8]) -> Choices<'a> {
        Choices { bytes }
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        match self.bytes.split_first() {
            Some((b, rest)) => {
                self.bytes = rest;
                *b as usize % n
            }
            None => 0,
        }
    }

    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}
