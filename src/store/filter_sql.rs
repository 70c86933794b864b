//! SCIM filters and sort keys to SQL, bind parameters only. Attributes with a column of
//! their own (id, userName, externalId, displayName, active, meta.*) are compared on that
//! column, on its index; every other attribute on the JSON document, with each backend's
//! JSON functions. The semantics match [`crate::scim::filter::Evaluator`] exactly: a
//! property test holds the two to the same answers.

use crate::scim::filter::{is_meta_path, join, CompValue, CompareOp, Filter};
use crate::scim::path::{resolve, AttrPath};
use crate::scim::schema::{AttrDef, AttrType, Registry, ResourceType};
use crate::scim::ScimError;

use super::db::Backend;
use super::raw::Frag;

/// Where an attribute's values are in the row.
enum Target<'a> {
    /// A column. `lowered`: the column holds the value lowercased.
    Column {
        sql: &'static str,
        kind: AttrType,
        case_exact: bool,
        lowered: bool,
    },
    /// One value in the document, at these keys.
    Scalar { keys: Vec<String>, def: &'a AttrDef },
    /// The elements of an array in the document; `sub` names the element's sub-attribute
    /// compared (none: the element itself).
    Multi {
        keys: Vec<String>,
        sub: Option<&'a AttrDef>,
        leaf: &'a AttrDef,
    },
    /// A group's `members` or a user's `groups`: kept in the group_members table, not in
    /// the document; each element reads as `{"value", "type"[, "display"]}`.
    Membership {
        side: Side,
        sub: Option<&'a AttrDef>,
        leaf: &'a AttrDef,
    },
}

/// Which end of a membership a filter reads.
#[derive(Clone, Copy)]
enum Side {
    /// A group's members.
    Members,
    /// A user's groups.
    Groups,
}

/// A group's `members` or a user's `groups` (core schema), which live in group_members.
fn membership(rt: &ResourceType, r: &crate::scim::path::Resolved<'_>) -> Option<Side> {
    if r.extension.is_some() {
        return None;
    }
    match r.attr.name.as_str() {
        "members" if rt.schema == crate::scim::schema::GROUP_SCHEMA => Some(Side::Members),
        "groups" if rt.schema == crate::scim::schema::USER_SCHEMA => Some(Side::Groups),
        _ => None,
    }
}

fn invalid(msg: impl Into<String>) -> ScimError {
    ScimError::InvalidFilter(msg.into())
}

fn target<'a>(
    reg: &'a Registry,
    rt: &ResourceType,
    path: &AttrPath,
) -> Result<Target<'a>, ScimError> {
    if is_meta_path(path) {
        let col = |sql, kind| {
            Ok(Target::Column {
                sql,
                kind,
                case_exact: true,
                lowered: false,
            })
        };
        return match path.sub.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("created") => col("resources.created", AttrType::DateTime),
            Some("lastmodified") => col("resources.last_modified", AttrType::DateTime),
            Some("resourcetype") => col("resources.resource_type", AttrType::String),
            _ => Err(invalid(format!("filtering on '{path}' is not supported"))),
        };
    }
    if path.urn.is_none() && path.sub.is_none() && path.attr.eq_ignore_ascii_case("id") {
        return Ok(Target::Column {
            sql: "resources.id",
            kind: AttrType::String,
            case_exact: true,
            lowered: false,
        });
    }
    let r = resolve(reg, rt, path)
        .ok_or_else(|| invalid(format!("'{path}' is not an attribute of {}", rt.name)))?;
    let attr = r.attr;
    if r.extension.is_none() && r.sub.is_none() {
        let column = match attr.name.as_str() {
            "userName" if rt.schema == crate::scim::schema::USER_SCHEMA => {
                Some(("resources.user_name_ci", true))
            }
            "displayName" => Some(("resources.display_name_ci", true)),
            "externalId" => Some(("resources.external_id", false)),
            "active" if attr.kind == AttrType::Boolean => Some(("resources.active", false)),
            _ => None,
        };
        if let Some((sql, lowered)) = column {
            return Ok(Target::Column {
                sql,
                kind: attr.kind,
                case_exact: attr.case_exact,
                lowered,
            });
        }
    }
    let mut keys: Vec<String> = r.extension.iter().cloned().collect();
    keys.push(attr.name.clone());
    if attr.multi_valued {
        let sub = match (r.sub, attr.kind) {
            (Some(s), _) => Some(s),
            (None, AttrType::Complex) => attr.sub("value"),
            _ => None,
        };
        let leaf = sub.unwrap_or(attr);
        if let Some(side) = membership(rt, &r) {
            return Ok(Target::Membership { side, sub, leaf });
        }
        return Ok(Target::Multi { keys, sub, leaf });
    }
    match (r.sub, attr.kind) {
        (Some(s), _) => {
            keys.push(s.name.clone());
            Ok(Target::Scalar { keys, def: s })
        }
        (None, AttrType::Complex) => match attr.sub("value") {
            Some(v) => {
                keys.push(v.name.clone());
                Ok(Target::Scalar { keys, def: v })
            }
            None => Ok(Target::Scalar { keys, def: attr }),
        },
        (None, _) => Ok(Target::Scalar { keys, def: attr }),
    }
}

struct Sql {
    backend: Backend,
}

fn sqlite_path(keys: &[String]) -> String {
    let mut p = String::from("$");
    for k in keys {
        if k.chars().all(|c| c.is_ascii_digit()) {
            p.push_str(&format!("[{k}]"));
        } else {
            p.push_str(&format!(".\"{}\"", k.replace('"', "")));
        }
    }
    p
}

impl Sql {
    /// The text of the value at `keys` in the document.
    fn scalar(&self, keys: &[String]) -> Frag {
        match self.backend {
            Backend::Sqlite => {
                let mut f = Frag::sql("json_extract(resources.data, ");
                f.text(sqlite_path(keys)).push_sql(")");
                f
            }
            Backend::Postgres => {
                let mut f = Frag::sql("jsonb_extract_path_text(resources.data::jsonb");
                for k in keys {
                    f.push_sql(", ").text(k.clone());
                }
                f.push_sql(")");
                f
            }
        }
    }

    /// The value of an array element (alias `e`), or of its sub-attribute.
    fn element(&self, sub: Option<&AttrDef>) -> Frag {
        match (self.backend, sub) {
            (Backend::Sqlite, Some(s)) => {
                let mut f = Frag::sql("json_extract(e.value, ");
                f.text(sqlite_path(std::slice::from_ref(&s.name)))
                    .push_sql(")");
                f
            }
            (Backend::Sqlite, None) => Frag::sql("e.value"),
            (Backend::Postgres, Some(s)) => {
                let mut f = Frag::sql("jsonb_extract_path_text(e.v, ");
                f.text(s.name.clone()).push_sql(")");
                f
            }
            (Backend::Postgres, None) => Frag::sql("(e.v #>> '{}')"),
        }
    }

    /// The elements of the array at `keys`, as a FROM item aliased `e`.
    fn elements(&self, keys: &[String]) -> Frag {
        match self.backend {
            Backend::Sqlite => {
                let mut f = Frag::sql("json_each(resources.data, ");
                f.text(sqlite_path(keys)).push_sql(") AS e");
                f
            }
            Backend::Postgres => {
                let mut f = Frag::sql(
                    "jsonb_array_elements(COALESCE(jsonb_extract_path(resources.data::jsonb",
                );
                for k in keys {
                    f.push_sql(", ").text(k.clone());
                }
                f.push_sql("), '[]'::jsonb)) AS e(v)");
                f
            }
        }
    }

    /// `EXISTS (one element of the array at keys satisfies cond)`.
    fn exists(&self, keys: &[String], cond: Frag) -> Frag {
        let mut f = Frag::sql("EXISTS (SELECT 1 FROM ");
        f.append(self.elements(keys))
            .push_sql(" WHERE ")
            .append(cond)
            .push_sql(")");
        f
    }

    /// The `sub` of the array's element marked `primary` (RFC 7643 2.4), or NULL.
    fn primary(&self, keys: &[String], sub: &AttrDef) -> Frag {
        let mut f = Frag::sql("(SELECT ");
        f.append(self.element(Some(sub)))
            .push_sql(" FROM ")
            .append(self.elements(keys))
            .push_sql(match self.backend {
                Backend::Sqlite => " WHERE json_extract(e.value, '$.primary') = 1 LIMIT 1)",
                Backend::Postgres => {
                    " WHERE jsonb_extract_path_text(e.v, 'primary') = 'true' LIMIT 1)"
                }
            });
        f
    }

    /// `EXISTS (one membership element satisfies cond)`: the elements built from
    /// group_members as the documents would hold them, so `element` reads them alike.
    fn exists_membership(&self, side: Side, cond: Frag) -> Frag {
        let rows = match (self.backend, side) {
            (Backend::Sqlite, Side::Members) => {
                "SELECT json_object('value', gm.member_id, 'type', gm.member_type) AS value \
                 FROM group_members gm WHERE gm.group_id = resources.id"
            }
            (Backend::Sqlite, Side::Groups) => {
                "SELECT json_object('value', gm.group_id, 'display', g.display_name, 'type', 'direct') AS value \
                 FROM group_members gm JOIN resources g ON g.id = gm.group_id WHERE gm.member_id = resources.id"
            }
            (Backend::Postgres, Side::Members) => {
                "SELECT jsonb_build_object('value', gm.member_id, 'type', gm.member_type) AS v \
                 FROM group_members gm WHERE gm.group_id = resources.id"
            }
            (Backend::Postgres, Side::Groups) => {
                "SELECT jsonb_build_object('value', gm.group_id, 'display', g.display_name, 'type', 'direct') AS v \
                 FROM group_members gm JOIN resources g ON g.id = gm.group_id WHERE gm.member_id = resources.id"
            }
        };
        let mut f = Frag::sql("EXISTS (SELECT 1 FROM (");
        f.push_sql(rows)
            .push_sql(") AS e WHERE ")
            .append(cond)
            .push_sql(")");
        f
    }

    /// `EXISTS (a membership whose other end is `id`)`, on the table's keys: how a
    /// `members[value eq "u"]` or `groups.value eq "g"` is answered without building
    /// every element.
    fn has_member(&self, side: Side, id: &str) -> Frag {
        let mut f = Frag::sql(match side {
            Side::Members => {
                "EXISTS (SELECT 1 FROM group_members gm WHERE gm.group_id = resources.id AND gm.member_id = "
            }
            Side::Groups => {
                "EXISTS (SELECT 1 FROM group_members gm WHERE gm.member_id = resources.id AND gm.group_id = "
            }
        });
        f.text(id.to_string()).push_sql(")");
        f
    }

    /// Compares an array element (alias `e`), or its sub-attribute, with a filter value.
    fn element_compare(
        &self,
        sub: Option<&AttrDef>,
        leaf: &AttrDef,
        op: CompareOp,
        value: &CompValue,
    ) -> Result<Frag, ScimError> {
        self.compare(
            self.element(sub),
            leaf.kind,
            leaf.case_exact,
            false,
            op,
            value,
        )
    }

    fn present(&self, x: Frag) -> Frag {
        let mut f = Frag::sql("COALESCE(");
        f.append(x).push_sql(", '') <> ''");
        f
    }

    fn not_null(&self, x: Frag) -> Frag {
        let mut f = x.wrapped();
        f.push_sql(" IS NOT NULL");
        f
    }

    /// Compares the value `x` (of type `kind`) with a filter value. `lowered`: `x` is
    /// already lowercase (a `_ci` column).
    fn compare(
        &self,
        x: Frag,
        kind: AttrType,
        case_exact: bool,
        lowered: bool,
        op: CompareOp,
        value: &CompValue,
    ) -> Result<Frag, ScimError> {
        match kind {
            AttrType::Binary | AttrType::Complex => Err(invalid(
                "binary and complex attributes can only be tested with pr",
            )),
            AttrType::Boolean => {
                if op != CompareOp::Eq {
                    return Err(invalid(format!(
                        "'{}' cannot compare booleans",
                        op.as_str()
                    )));
                }
                let b = match value {
                    CompValue::Bool(b) => Some(*b),
                    CompValue::String(s) => crate::scim::resource::coerce_bool(s),
                    _ => None,
                };
                let Some(b) = b else {
                    return Ok(Frag::sql("FALSE"));
                };
                let mut f = x.wrapped();
                // JSON text on PostgreSQL; 1/0 on SQLite and in the boolean column.
                let literal = match (self.backend, b) {
                    (Backend::Postgres, true) => " = 'true'",
                    (Backend::Postgres, false) => " = 'false'",
                    (Backend::Sqlite, true) => " = 1",
                    (Backend::Sqlite, false) => " = 0",
                };
                f.push_sql(literal);
                Ok(f)
            }
            AttrType::Integer | AttrType::Decimal => {
                let CompValue::Number(n) = value else {
                    return Ok(Frag::sql("FALSE"));
                };
                let Some(n) = n.as_f64() else {
                    return Ok(Frag::sql("FALSE"));
                };
                let sym = match op {
                    CompareOp::Eq => "=",
                    CompareOp::Ne => "<>",
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                    CompareOp::Lt => "<",
                    CompareOp::Le => "<=",
                    CompareOp::Co | CompareOp::Sw | CompareOp::Ew => return Ok(Frag::sql("FALSE")),
                };
                let mut f = match self.backend {
                    Backend::Sqlite => x.wrapped(),
                    Backend::Postgres => {
                        let mut f = x.wrapped();
                        f.push_sql("::double precision");
                        f
                    }
                };
                f.push_sql(&format!(" {sym} ")).double(n);
                Ok(f)
            }
            AttrType::String | AttrType::Reference | AttrType::DateTime => {
                if kind == AttrType::DateTime {
                    crate::scim::filter::date_time_comparison(op, value)?;
                }
                let CompValue::String(raw) = value else {
                    return Ok(Frag::sql("FALSE"));
                };
                let mut v = raw.clone();
                if kind == AttrType::DateTime {
                    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
                        v = crate::scim::resource::canonical_time(t);
                    }
                }
                let ci = !case_exact || lowered;
                let mut lhs = if ci && !lowered {
                    let mut f = Frag::sql("lower(");
                    f.append(x).push_sql(")");
                    f
                } else {
                    x.wrapped()
                };
                if ci {
                    // A `_ci` column holds the folded form (NFC, full case folding).
                    v = if lowered {
                        crate::scim::fold::fold(&v)
                    } else {
                        v.to_lowercase()
                    };
                }
                let like = |pattern: String, lhs: Frag| {
                    let mut f = lhs;
                    f.push_sql(" LIKE ").text(pattern).push_sql(" ESCAPE '\\'");
                    f
                };
                Ok(match op {
                    CompareOp::Eq => {
                        lhs.push_sql(" = ").text(v);
                        lhs
                    }
                    CompareOp::Ne => {
                        lhs.push_sql(" <> ").text(v);
                        lhs
                    }
                    CompareOp::Co => like(format!("%{}%", like_escape(&v)), lhs),
                    CompareOp::Sw => like(format!("{}%", like_escape(&v)), lhs),
                    CompareOp::Ew => like(format!("%{}", like_escape(&v)), lhs),
                    CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
                        if self.backend == Backend::Postgres {
                            // Code-point order, as the in-memory evaluator compares.
                            lhs.push_sql(" COLLATE \"C\"");
                        }
                        let sym = match op {
                            CompareOp::Gt => " > ",
                            CompareOp::Ge => " >= ",
                            CompareOp::Lt => " < ",
                            _ => " <= ",
                        };
                        lhs.push_sql(sym).text(v);
                        lhs
                    }
                })
            }
        }
    }
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

fn negate(f: Frag) -> Frag {
    // NOT of a NULL is NULL; the evaluator's `not` of "no value" is true.
    let mut out = Frag::sql("NOT COALESCE(");
    out.append(f).push_sql(", FALSE)");
    out
}

fn binary(a: Frag, word: &str, b: Frag) -> Frag {
    let mut f = Frag::sql("(");
    f.append(a).push_sql(word).append(b).push_sql(")");
    f
}

/// Translates `filter` for resources of type `rt`.
pub fn translate(
    reg: &Registry,
    rt: &ResourceType,
    backend: Backend,
    filter: &Filter,
) -> Result<Frag, ScimError> {
    let sql = Sql { backend };
    translate_in(reg, rt, &sql, filter)
}

fn translate_in(
    reg: &Registry,
    rt: &ResourceType,
    sql: &Sql,
    filter: &Filter,
) -> Result<Frag, ScimError> {
    match filter {
        Filter::And(a, b) => Ok(binary(
            translate_in(reg, rt, sql, a)?,
            " AND ",
            translate_in(reg, rt, sql, b)?,
        )),
        Filter::Or(a, b) => Ok(binary(
            translate_in(reg, rt, sql, a)?,
            " OR ",
            translate_in(reg, rt, sql, b)?,
        )),
        Filter::Not(a) => Ok(negate(translate_in(reg, rt, sql, a)?)),
        Filter::Present(path) => match target(reg, rt, path)? {
            Target::Column { sql: col, kind, .. } => Ok(match kind {
                AttrType::String | AttrType::Reference => sql.present(Frag::sql(col)),
                _ => sql.not_null(Frag::sql(col)),
            }),
            Target::Scalar { keys, .. } => Ok(sql.present(sql.scalar(&keys))),
            Target::Multi { keys, sub, .. } => Ok(sql.exists(&keys, sql.present(sql.element(sub)))),
            Target::Membership { side, sub, .. } => {
                Ok(sql.exists_membership(side, sql.present(sql.element(sub))))
            }
        },
        Filter::Compare { path, op, value } => {
            if let CompValue::Null = value {
                let present = match target(reg, rt, path)? {
                    Target::Column { sql: col, .. } => sql.not_null(Frag::sql(col)),
                    Target::Scalar { keys, .. } => sql.not_null(sql.scalar(&keys)),
                    Target::Multi { keys, sub, .. } => {
                        sql.exists(&keys, sql.not_null(sql.element(sub)))
                    }
                    Target::Membership { side, sub, .. } => {
                        sql.exists_membership(side, sql.not_null(sql.element(sub)))
                    }
                };
                return match op {
                    CompareOp::Eq => Ok(negate(present)),
                    CompareOp::Ne => Ok(present),
                    _ => Err(invalid(format!(
                        "'{}' cannot compare with null",
                        op.as_str()
                    ))),
                };
            }
            if *op == CompareOp::Ne {
                let eq = Filter::Compare {
                    path: path.clone(),
                    op: CompareOp::Eq,
                    value: value.clone(),
                };
                return Ok(negate(translate_in(reg, rt, sql, &eq)?));
            }
            match target(reg, rt, path)? {
                Target::Column {
                    sql: col,
                    kind,
                    case_exact,
                    lowered,
                } => sql.compare(Frag::sql(col), kind, case_exact, lowered, *op, value),
                Target::Scalar { keys, def } => sql.compare(
                    sql.scalar(&keys),
                    def.kind,
                    def.case_exact,
                    false,
                    *op,
                    value,
                ),
                Target::Multi { keys, sub, leaf } => {
                    Ok(sql.exists(&keys, sql.element_compare(sub, leaf, *op, value)?))
                }
                Target::Membership { side, sub, leaf } => {
                    if let (Some("value"), CompareOp::Eq, CompValue::String(id)) =
                        (sub.map(|s| s.name.as_str()), op, value)
                    {
                        return Ok(sql.has_member(side, id));
                    }
                    let cond = sql.element_compare(sub, leaf, *op, value)?;
                    Ok(sql.exists_membership(side, cond))
                }
            }
        }
        Filter::ValuePath { path, filter } => {
            let r = resolve(reg, rt, path)
                .ok_or_else(|| invalid(format!("'{path}' is not an attribute of {}", rt.name)))?;
            if !r.attr.multi_valued || r.sub.is_some() {
                return Err(invalid(format!("'{path}' is not a multi-valued attribute")));
            }
            if let Some(side) = membership(rt, &r) {
                if let Filter::Compare {
                    path: inner,
                    op: CompareOp::Eq,
                    value: CompValue::String(id),
                } = filter.as_ref()
                {
                    if inner.urn.is_none()
                        && inner.sub.is_none()
                        && inner.attr.eq_ignore_ascii_case("value")
                    {
                        return Ok(sql.has_member(side, id));
                    }
                }
                let cond = element_filter(reg, rt, sql, path, filter)?;
                return Ok(sql.exists_membership(side, cond));
            }
            let mut keys: Vec<String> = r.extension.iter().cloned().collect();
            keys.push(r.attr.name.clone());
            let cond = element_filter(reg, rt, sql, path, filter)?;
            Ok(sql.exists(&keys, cond))
        }
    }
}

/// A value filter's condition on one element (alias `e`).
fn element_filter(
    reg: &Registry,
    rt: &ResourceType,
    sql: &Sql,
    parent: &AttrPath,
    f: &Filter,
) -> Result<Frag, ScimError> {
    let sub_def = |p: &AttrPath| -> Result<&AttrDef, ScimError> {
        let full = join(Some(parent), p);
        resolve(reg, rt, &full)
            .map(|r| r.leaf())
            .ok_or_else(|| invalid(format!("'{full}' is not an attribute of {}", rt.name)))
    };
    match f {
        Filter::And(a, b) => Ok(binary(
            element_filter(reg, rt, sql, parent, a)?,
            " AND ",
            element_filter(reg, rt, sql, parent, b)?,
        )),
        Filter::Or(a, b) => Ok(binary(
            element_filter(reg, rt, sql, parent, a)?,
            " OR ",
            element_filter(reg, rt, sql, parent, b)?,
        )),
        Filter::Not(a) => Ok(negate(element_filter(reg, rt, sql, parent, a)?)),
        Filter::Present(p) => Ok(sql.present(sql.element(Some(sub_def(p)?)))),
        Filter::Compare { path, op, value } => {
            let def = sub_def(path)?;
            if let CompValue::Null = value {
                let present = sql.not_null(sql.element(Some(def)));
                return match op {
                    CompareOp::Eq => Ok(negate(present)),
                    CompareOp::Ne => Ok(present),
                    _ => Err(invalid(format!(
                        "'{}' cannot compare with null",
                        op.as_str()
                    ))),
                };
            }
            if *op == CompareOp::Ne {
                let eq = Filter::Compare {
                    path: path.clone(),
                    op: CompareOp::Eq,
                    value: value.clone(),
                };
                return Ok(negate(element_filter(reg, rt, sql, parent, &eq)?));
            }
            sql.compare(
                sql.element(Some(def)),
                def.kind,
                def.case_exact,
                false,
                *op,
                value,
            )
        }
        Filter::ValuePath { .. } => Err(invalid("value filters cannot be nested")),
    }
}

/// The expression a list is sorted by for `sortBy=path`.
pub fn sort_key(
    reg: &Registry,
    rt: &ResourceType,
    backend: Backend,
    path: &AttrPath,
) -> Result<Frag, ScimError> {
    let sql = Sql { backend };
    let bad = |e: ScimError| ScimError::InvalidValue(format!("cannot sort by '{path}': {e}"));
    let (x, kind, ci) = match target(reg, rt, path).map_err(bad)? {
        Target::Column {
            sql: col,
            kind,
            case_exact,
            lowered,
        } => (Frag::sql(col), kind, !case_exact && !lowered),
        Target::Scalar { keys, def } => (sql.scalar(&keys), def.kind, !def.case_exact),
        Target::Multi { keys, sub, leaf } => {
            // The primary value, else the first (RFC 7644 3.4.2.3).
            let mut first = keys.clone();
            first.push("0".into());
            if let Some(s) = sub {
                first.push(s.name.clone());
            }
            let mut x = Frag::sql("COALESCE(");
            if let Some(s) = sub {
                x.append(sql.primary(&keys, s)).push_sql(", ");
            }
            x.append(sql.scalar(&first)).push_sql(")");
            (x, leaf.kind, !leaf.case_exact)
        }
        Target::Membership { .. } => {
            return Err(bad(invalid(
                "members and groups have no order of their own",
            )))
        }
    };
    Ok(match kind {
        AttrType::Integer | AttrType::Decimal if backend == Backend::Postgres => {
            let mut f = x.wrapped();
            f.push_sql("::double precision");
            f
        }
        AttrType::String | AttrType::Reference | AttrType::DateTime => {
            let mut f = if ci {
                let mut f = Frag::sql("lower(");
                f.append(x).push_sql(")");
                f
            } else {
                x.wrapped()
            };
            if backend == Backend::Postgres {
                f.push_sql(" COLLATE \"C\"");
            }
            f
        }
        _ => x,
    })
}
