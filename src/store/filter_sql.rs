//! SCIM filter AST to SQL, with bind parameters only. Attributes with a column of their own
//! (id, externalId, userName, displayName, active, meta.created, meta.lastModified) are
//! compared on that column, on its index.

use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable};

use super::db::DbConn;
use super::error::StoreError;
use super::schema::resources;
use crate::scim::filter::{is_meta_path, CompValue, CompareOp, Filter};
use crate::scim::path::{resolve, AttrPath};
use crate::scim::schema::{Registry, ResourceType};
use crate::scim::ScimError;

type Db = <DbConn as Connection>::Backend;
pub type SqlCond = Box<dyn BoxableExpression<resources::table, Db, SqlType = Nullable<Bool>>>;

/// Why a filter could not be translated; the bridge reports it as `invalidFilter`.
#[derive(Debug)]
pub struct Untranslatable(pub ScimError);

impl From<Untranslatable> for StoreError {
    fn from(u: Untranslatable) -> StoreError {
        StoreError::Filter(u.0.to_string())
    }
}

enum Col {
    Id,
    ExternalId,
    UserNameCi,
    DisplayNameCi,
    Active,
    Created,
    LastModified,
}

fn column_of(reg: &Registry, rt: &ResourceType, path: &AttrPath) -> Result<Col, ScimError> {
    if is_meta_path(path) {
        return match path.sub.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("created") => Ok(Col::Created),
            Some("lastmodified") => Ok(Col::LastModified),
            _ => Err(ScimError::InvalidFilter(format!(
                "filtering on '{path}' is not supported"
            ))),
        };
    }
    if path.urn.is_none() && path.sub.is_none() && path.attr.eq_ignore_ascii_case("id") {
        return Ok(Col::Id);
    }
    if path.urn.is_none() && path.sub.is_none() && path.attr.eq_ignore_ascii_case("externalId") {
        return Ok(Col::ExternalId);
    }
    let r = resolve(reg, rt, path).ok_or_else(|| {
        ScimError::InvalidFilter(format!("'{path}' is not an attribute of {}", rt.name))
    })?;
    if r.extension.is_none() && r.sub.is_none() {
        match r.attr.name.as_str() {
            "userName" => return Ok(Col::UserNameCi),
            "displayName" => return Ok(Col::DisplayNameCi),
            "active" => return Ok(Col::Active),
            _ => {}
        }
    }
    Err(ScimError::InvalidFilter(format!(
        "filtering on '{path}' is not supported"
    )))
}

fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

macro_rules! text_cond {
    ($col:expr, $op:expr, $v:expr) => {{
        let v: String = $v;
        let present = $col.is_not_null().nullable();
        let cond: SqlCond = match $op {
            CompareOp::Eq => Box::new(present.and($col.eq(v))),
            CompareOp::Ne => Box::new(diesel::dsl::not(present.and($col.eq(v)))),
            CompareOp::Co => {
                Box::new(present.and($col.like(format!("%{}%", like_escape(&v))).escape('\\')))
            }
            CompareOp::Sw => {
                Box::new(present.and($col.like(format!("{}%", like_escape(&v))).escape('\\')))
            }
            CompareOp::Ew => {
                Box::new(present.and($col.like(format!("%{}", like_escape(&v))).escape('\\')))
            }
            CompareOp::Gt => Box::new(present.and($col.gt(v))),
            CompareOp::Ge => Box::new(present.and($col.ge(v))),
            CompareOp::Lt => Box::new(present.and($col.lt(v))),
            CompareOp::Le => Box::new(present.and($col.le(v))),
        };
        cond
    }};
}

fn not_supported(what: &str) -> Untranslatable {
    Untranslatable(ScimError::InvalidFilter(what.to_string()))
}

/// Translates `filter` for resources of type `rt`.
pub fn translate(
    reg: &Registry,
    rt: &ResourceType,
    filter: &Filter,
) -> Result<SqlCond, Untranslatable> {
    match filter {
        Filter::And(a, b) => Ok(Box::new(translate(reg, rt, a)?.and(translate(reg, rt, b)?))),
        Filter::Or(a, b) => Ok(Box::new(translate(reg, rt, a)?.or(translate(reg, rt, b)?))),
        Filter::Not(a) => Ok(Box::new(diesel::dsl::not(translate(reg, rt, a)?))),
        Filter::ValuePath { path, .. } => Err(not_supported(&format!(
            "value filters on '{path}' are not supported in queries"
        ))),
        Filter::Present(path) => {
            let col = column_of(reg, rt, path).map_err(Untranslatable)?;
            Ok(match col {
                Col::Id => Box::new(resources::id.is_not_null().nullable()),
                Col::ExternalId => Box::new(
                    resources::external_id
                        .is_not_null()
                        .and(resources::external_id.ne(""))
                        .nullable(),
                ),
                Col::UserNameCi => Box::new(
                    resources::user_name_ci
                        .is_not_null()
                        .and(resources::user_name_ci.ne(""))
                        .nullable(),
                ),
                Col::DisplayNameCi => Box::new(
                    resources::display_name_ci
                        .is_not_null()
                        .and(resources::display_name_ci.ne(""))
                        .nullable(),
                ),
                Col::Active => Box::new(resources::active.is_not_null().nullable()),
                Col::Created | Col::LastModified => {
                    Box::new(resources::id.is_not_null().nullable())
                }
            })
        }
        Filter::Compare { path, op, value } => {
            let col = column_of(reg, rt, path).map_err(Untranslatable)?;
            if let CompValue::Null = value {
                let absent: SqlCond = match col {
                    Col::Id | Col::Created | Col::LastModified => {
                        Box::new(resources::id.is_null().nullable())
                    }
                    Col::ExternalId => Box::new(resources::external_id.is_null().nullable()),
                    Col::UserNameCi => Box::new(resources::user_name_ci.is_null().nullable()),
                    Col::DisplayNameCi => Box::new(resources::display_name_ci.is_null().nullable()),
                    Col::Active => Box::new(resources::active.is_null().nullable()),
                };
                return match op {
                    CompareOp::Eq => Ok(absent),
                    CompareOp::Ne => Ok(Box::new(diesel::dsl::not(absent))),
                    _ => Err(not_supported(&format!(
                        "'{}' cannot compare with null",
                        op.as_str()
                    ))),
                };
            }
            let text = |v: &CompValue| -> Result<String, Untranslatable> {
                match v {
                    CompValue::String(s) => Ok(s.clone()),
                    CompValue::Number(n) => Ok(n.to_string()),
                    CompValue::Bool(b) => Ok(b.to_string()),
                    CompValue::Null => Ok(String::new()),
                }
            };
            match col {
                Col::Id => Ok(text_cond!(resources::id.nullable(), op, text(value)?)),
                Col::ExternalId => Ok(text_cond!(resources::external_id, op, text(value)?)),
                Col::UserNameCi => Ok(text_cond!(
                    resources::user_name_ci,
                    op,
                    text(value)?.to_lowercase()
                )),
                Col::DisplayNameCi => Ok(text_cond!(
                    resources::display_name_ci,
                    op,
                    text(value)?.to_lowercase()
                )),
                Col::Created | Col::LastModified => {
                    let raw = text(value)?;
                    let when = chrono::DateTime::parse_from_rfc3339(&raw)
                        .map_err(|_| not_supported(&format!("'{raw}' is not a dateTime")))?;
                    let v = crate::clock::format_time(when.with_timezone(&chrono::Utc));
                    Ok(match col {
                        Col::Created => text_cond!(resources::created.nullable(), op, v),
                        _ => text_cond!(resources::last_modified.nullable(), op, v),
                    })
                }
                Col::Active => {
                    let b = match value {
                        CompValue::Bool(b) => *b,
                        CompValue::String(s) => crate::scim::resource::coerce_bool(s)
                            .ok_or_else(|| not_supported("'active' compares with true or false"))?,
                        _ => return Err(not_supported("'active' compares with true or false")),
                    };
                    match op {
                        CompareOp::Eq => Ok(Box::new(
                            resources::active
                                .is_not_null()
                                .nullable()
                                .and(resources::active.eq(b)),
                        )),
                        CompareOp::Ne => Ok(Box::new(diesel::dsl::not(
                            resources::active
                                .is_not_null()
                                .nullable()
                                .and(resources::active.eq(b)),
                        ))),
                        _ => Err(not_supported(&format!(
                            "'{}' cannot compare booleans",
                            op.as_str()
                        ))),
                    }
                }
            }
        }
    }
}
