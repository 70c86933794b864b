//! The schema and resource-type documents: those of scim-schemas/, embedded in the
//! binary, with a configured folder's documents on top.

use std::path::Path;

use include_dir::{include_dir, Dir};

use crate::scim::schema::{Documents, Registry};
use crate::scim::ScimError;

static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/scim-schemas");

#[derive(Debug, thiserror::Error)]
pub enum SchemaLoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(#[from] ScimError),
}

fn embedded() -> Documents {
    let mut docs = Documents::default();
    let text = |f: &include_dir::File<'_>| f.contents_utf8().unwrap_or_default().to_string();
    for (folder, slot) in [("schemas", 0), ("resource-types", 1)] {
        if let Some(dir) = EMBEDDED.get_dir(folder) {
            for f in dir.files() {
                let entry = (f.path().display().to_string(), text(f));
                if slot == 0 {
                    docs.schemas.push(entry)
                } else {
                    docs.resource_types.push(entry)
                }
            }
        }
    }
    if let Some(f) = EMBEDDED.get_file("service-provider-config.json") {
        docs.service_provider_config = Some((f.path().display().to_string(), text(f)));
    }
    docs
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SchemaLoadError + '_ {
    move |source| SchemaLoadError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn read_folder(dir: &Path) -> Result<Documents, SchemaLoadError> {
    let mut docs = Documents::default();
    for (folder, slot) in [("schemas", 0), ("resource-types", 1)] {
        let sub = dir.join(folder);
        if !sub.is_dir() {
            continue;
        }
        let mut entries: Vec<_> = std::fs::read_dir(&sub)
            .map_err(io(&sub))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for path in entries
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
        {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let entry = (path.display().to_string(), text);
            if slot == 0 {
                docs.schemas.push(entry)
            } else {
                docs.resource_types.push(entry)
            }
        }
    }
    let spc = dir.join("service-provider-config.json");
    if spc.is_file() {
        let text = std::fs::read_to_string(&spc).map_err(io(&spc))?;
        docs.service_provider_config = Some((spc.display().to_string(), text));
    }
    Ok(docs)
}

/// Builds the registry from the embedded documents and, if given, a folder laid out like
/// scim-schemas/ whose documents add to or override them (by id, by name).
pub fn load_registry(extra: Option<&Path>) -> Result<Registry, SchemaLoadError> {
    let mut docs = embedded();
    if let Some(dir) = extra {
        if !dir.is_dir() {
            return Err(SchemaLoadError::Io {
                path: dir.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a folder"),
            });
        }
        docs.overlay(read_folder(dir)?);
    }
    Ok(Registry::build(&docs)?)
}
