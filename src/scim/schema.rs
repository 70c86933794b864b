//! The schema registry: RFC 7643 schema and resource-type documents (sections 6 and 7),
//! parsed into attribute definitions the rest of the protocol code consults.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::error::{ScimError, ScimResult};

pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    ReadOnly,
    #[default]
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    Always,
    Never,
    #[default]
    Default,
    Request,
}

/// One attribute definition (RFC 7643 section 7).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttrDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AttrType,
    #[serde(default)]
    pub multi_valued: bool,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub case_exact: bool,
    #[serde(default)]
    pub mutability: Mutability,
    #[serde(default)]
    pub returned: Returned,
    #[serde(default)]
    pub sub_attributes: Vec<AttrDef>,
}

impl AttrDef {
    /// The sub-attribute named `name`, compared without regard to case.
    pub fn sub(&self, name: &str) -> Option<&AttrDef> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// A schema (RFC 7643 section 7): its URN and attributes, and the document it came from.
#[derive(Debug, Clone)]
pub struct Schema {
    pub id: String,
    pub attributes: Vec<AttrDef>,
    pub document: Value,
}

impl Schema {
    pub fn attr(&self, name: &str) -> Option<&AttrDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaExtension {
    pub schema: String,
    #[serde(default)]
    pub required: bool,
}

/// A resource type (RFC 7643 section 6).
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub id: String,
    pub name: String,
    pub endpoint: String,
    pub schema: String,
    pub extensions: Vec<SchemaExtension>,
    pub document: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawResourceType {
    id: Option<String>,
    name: String,
    endpoint: String,
    schema: String,
    #[serde(default)]
    schema_extensions: Vec<SchemaExtension>,
}

#[derive(Deserialize)]
struct RawSchema {
    id: String,
    #[serde(default)]
    attributes: Vec<AttrDef>,
}

/// Every schema and resource type the server knows, plus the service provider config.
#[derive(Debug, Clone)]
pub struct Registry {
    schemas: BTreeMap<String, Schema>,
    resource_types: Vec<ResourceType>,
    service_provider_config: Value,
}

/// The documents a registry is built from: named JSON texts, so that both embedded
/// files and files read from a folder go through one path.
#[derive(Debug, Default, Clone)]
pub struct Documents {
    pub schemas: Vec<(String, String)>,
    pub resource_types: Vec<(String, String)>,
    pub service_provider_config: Option<(String, String)>,
}

impl Documents {
    /// Adds `other` on top of `self`: a document with the same id replaces the earlier one.
    pub fn overlay(&mut self, other: Documents) {
        self.schemas.extend(other.schemas);
        self.resource_types.extend(other.resource_types);
        if other.service_provider_config.is_some() {
            self.service_provider_config = other.service_provider_config;
        }
    }
}

fn parse_doc(name: &str, text: &str) -> ScimResult<Value> {
    serde_json::from_str(text)
        .map_err(|e| ScimError::Internal(format!("schema document {name} is not valid JSON: {e}")))
}

impl Registry {
    pub fn build(docs: &Documents) -> ScimResult<Registry> {
        let mut schemas = BTreeMap::new();
        for (name, text) in &docs.schemas {
            let document = parse_doc(name, text)?;
            let raw: RawSchema = serde_json::from_value(document.clone())
                .map_err(|e| ScimError::Internal(format!("schema document {name}: {e}")))?;
            schemas.insert(
                raw.id.to_ascii_lowercase(),
                Schema {
                    id: raw.id,
                    attributes: raw.attributes,
                    document,
                },
            );
        }
        let mut by_name: BTreeMap<String, ResourceType> = BTreeMap::new();
        for (name, text) in &docs.resource_types {
            let document = parse_doc(name, text)?;
            let raw: RawResourceType = serde_json::from_value(document.clone())
                .map_err(|e| ScimError::Internal(format!("resource type document {name}: {e}")))?;
            for urn in
                std::iter::once(&raw.schema).chain(raw.schema_extensions.iter().map(|e| &e.schema))
            {
                if !schemas.contains_key(&urn.to_ascii_lowercase()) {
                    return Err(ScimError::Internal(format!(
                        "resource type document {name} names schema {urn}, which no schema document defines"
                    )));
                }
            }
            by_name.insert(
                raw.name.clone(),
                ResourceType {
                    id: raw.id.unwrap_or_else(|| raw.name.clone()),
                    name: raw.name,
                    endpoint: raw.endpoint,
                    schema: raw.schema,
                    extensions: raw.schema_extensions,
                    document,
                },
            );
        }
        // `externalId` is a common attribute (RFC 7643 section 3.1) of every resource, not
        // listed by the schemas; it is added to each core schema's definitions (not to the
        // document /Schemas serves) so that input, filters and PATCH treat it like any other.
        for rt in by_name.values() {
            if let Some(core) = schemas.get_mut(&rt.schema.to_ascii_lowercase()) {
                if core.attr("externalId").is_none() {
                    core.attributes.push(AttrDef {
                        name: "externalId".into(),
                        kind: AttrType::String,
                        multi_valued: false,
                        required: false,
                        case_exact: true,
                        mutability: Mutability::ReadWrite,
                        returned: Returned::Default,
                        sub_attributes: vec![],
                    });
                }
            }
        }
        let service_provider_config = match &docs.service_provider_config {
            Some((name, text)) => parse_doc(name, text)?,
            None => {
                return Err(ScimError::Internal(
                    "no service-provider-config.json document".into(),
                ))
            }
        };
        // User first, then Group, then any others by name (the order clients read them in).
        let mut resource_types: Vec<ResourceType> = by_name.into_values().collect();
        resource_types.sort_by_key(|r| (r.name != "User", r.name != "Group", r.name.clone()));
        Ok(Registry {
            schemas,
            resource_types,
            service_provider_config,
        })
    }

    pub fn schema(&self, urn: &str) -> Option<&Schema> {
        self.schemas.get(&urn.to_ascii_lowercase())
    }

    pub fn schemas(&self) -> impl Iterator<Item = &Schema> {
        self.schemas.values()
    }

    pub fn resource_types(&self) -> &[ResourceType] {
        &self.resource_types
    }

    pub fn resource_type(&self, name: &str) -> Option<&ResourceType> {
        self.resource_types
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name) || r.id.eq_ignore_ascii_case(name))
    }

    pub fn service_provider_config(&self) -> &Value {
        &self.service_provider_config
    }

    /// The core schema of a resource type.
    pub fn core_schema(&self, rt: &ResourceType) -> ScimResult<&Schema> {
        self.schema(&rt.schema)
            .ok_or_else(|| ScimError::Internal(format!("schema {} missing", rt.schema)))
    }

    /// The extension schema of `rt` whose URN is `urn`, if `rt` names it.
    pub fn extension(&self, rt: &ResourceType, urn: &str) -> Option<&Schema> {
        rt.extensions
            .iter()
            .find(|e| e.schema.eq_ignore_ascii_case(urn))
            .and_then(|e| self.schema(&e.schema))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> Documents {
        Documents {
            schemas: vec![(
                "s".into(),
                r#"{"id":"urn:x:Thing","attributes":[{"name":"title","type":"string"}]}"#.into(),
            )],
            resource_types: vec![(
                "r".into(),
                r#"{"name":"Thing","endpoint":"/Things","schema":"urn:x:Thing"}"#.into(),
            )],
            service_provider_config: Some(("spc".into(), "{}".into())),
        }
    }

    #[test]
    fn a_resource_type_naming_an_unknown_schema_is_refused() {
        let mut d = docs();
        d.resource_types = vec![(
            "r".into(),
            r#"{"name":"Thing","endpoint":"/Things","schema":"urn:x:Other"}"#.into(),
        )];
        assert!(Registry::build(&d).is_err());
    }

    #[test]
    fn attributes_are_found_without_regard_to_case() {
        let reg = Registry::build(&docs()).expect("registry");
        let s = reg.schema("URN:X:THING").expect("schema");
        assert_eq!(s.attr("TITLE").map(|a| a.kind), Some(AttrType::String));
    }
}
