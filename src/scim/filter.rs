//! SCIM filters (RFC 7644 section 3.4.2.2): a parser with length and depth limits, an AST
//! that prints back as a filter, and an in-memory evaluator used by PATCH value filters.
//! The store translates the same AST to SQL.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Number, Value};

use super::error::{ScimError, ScimResult};
use super::path::{resolve, AttrPath};
use super::schema::{AttrDef, AttrType, Registry, ResourceType};

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of parentheses, `not` and value filters accepted.
pub const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<CompareOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
}

/// A comparison value: `false`, `null`, `true`, a number or a string.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => write!(f, "null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::String(s) => write!(f, "{}", Value::String(s.clone())),
        }
    }
}

/// The filter AST.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: CompValue,
    },
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `emails[type eq "work"]`: the inner filter's paths are relative to `path`.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_in(f, Slot::Top)
    }
}

/// Where a sub-filter is printed, which decides whether it needs parentheses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Top,
    OrLeft,
    OrRight,
    AndLeft,
    AndRight,
}

impl Filter {
    /// Prints with only the parentheses the tree needs (`and` binds tighter than `or`, both
    /// lean left), so the text parses back to the same tree and is nested no deeper than
    /// the text it came from.
    fn write_in(&self, f: &mut fmt::Formatter<'_>, slot: Slot) -> fmt::Result {
        let wrap = match self {
            Filter::Or(..) => !matches!(slot, Slot::Top | Slot::OrLeft),
            Filter::And(..) => slot == Slot::AndRight,
            _ => false,
        };
        if wrap {
            f.write_str("(")?;
        }
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {} {value}", op.as_str())?,
            Filter::Present(path) => write!(f, "{path} pr")?,
            Filter::Or(a, b) => {
                a.write_in(f, Slot::OrLeft)?;
                f.write_str(" or ")?;
                b.write_in(f, Slot::OrRight)?;
            }
            Filter::And(a, b) => {
                a.write_in(f, Slot::AndLeft)?;
                f.write_str(" and ")?;
                b.write_in(f, Slot::AndRight)?;
            }
            Filter::Not(a) => {
                f.write_str("not (")?;
                a.write_in(f, Slot::Top)?;
                f.write_str(")")?;
            }
            Filter::ValuePath { path, filter } => {
                write!(f, "{path}[")?;
                filter.write_in(f, Slot::Top)?;
                f.write_str("]")?;
            }
        }
        if wrap {
            f.write_str(")")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    LBracket,
    RBracket,
    Str(String),
    Word(String),
}

struct Lexer<'a> {
    src: &'a str,
    toks: Vec<(usize, Tok)>,
}

fn invalid(pos: usize, msg: impl fmt::Display) -> ScimError {
    ScimError::InvalidFilter(format!("invalid filter at character {}: {msg}", pos + 1))
}

impl<'a> Lexer<'a> {
    fn run(src: &'a str) -> ScimResult<Vec<(usize, Tok)>> {
        let mut lx = Lexer {
            src,
            toks: Vec::new(),
        };
        let bytes = src.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b' ' | b'\t' | b'\n' | b'\r' => i += 1,
                b'(' => {
                    lx.toks.push((i, Tok::Open));
                    i += 1
                }
                b')' => {
                    lx.toks.push((i, Tok::Close));
                    i += 1
                }
                b'[' => {
                    lx.toks.push((i, Tok::LBracket));
                    i += 1
                }
                b']' => {
                    lx.toks.push((i, Tok::RBracket));
                    i += 1
                }
                b'"' => {
                    let start = i;
                    i += 1;
                    let mut escaped = false;
                    loop {
                        match bytes.get(i) {
                            None => return Err(invalid(start, "a string is not closed")),
                            Some(b'\\') if !escaped => escaped = true,
                            Some(b'"') if !escaped => break,
                            Some(_) => escaped = false,
                        }
                        i += 1;
                    }
                    let lit = &lx.src[start..=i];
                    let s: String = serde_json::from_str(lit)
                        .map_err(|_| invalid(start, "a string has an invalid escape"))?;
                    if s.contains('\0') {
                        return Err(invalid(start, "a string holds U+0000, which no value can"));
                    }
                    lx.toks.push((start, Tok::Str(s)));
                    i += 1;
                }
                _ => {
                    let start = i;
                    while i < bytes.len()
                        && !matches!(
                            bytes[i],
                            b' ' | b'\t' | b'\n' | b'\r' | b'(' | b')' | b'[' | b']' | b'"'
                        )
                    {
                        i += 1;
                    }
                    lx.toks
                        .push((start, Tok::Word(lx.src[start..i].to_string())));
                }
            }
        }
        Ok(lx.toks)
    }
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map(|(p, _)| *p).unwrap_or(self.end)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        t
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn enter(&mut self) -> ScimResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(invalid(
                self.at(),
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> ScimResult<Filter> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> ScimResult<Filter> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn expect(&mut self, tok: Tok, what: &str) -> ScimResult<()> {
        let at = self.at();
        match self.next() {
            Some(t) if t == tok => Ok(()),
            _ => Err(invalid(at, format!("expected {what}"))),
        }
    }

    fn unary(&mut self) -> ScimResult<Filter> {
        if self.keyword("not") && matches!(self.toks.get(self.pos + 1), Some((_, Tok::Open))) {
            self.pos += 2;
            self.enter()?;
            let inner = self.or()?;
            self.expect(Tok::Close, "')'")?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.peek() == Some(&Tok::Open) {
            self.pos += 1;
            self.enter()?;
            let inner = self.or()?;
            self.expect(Tok::Close, "')'")?;
            self.depth -= 1;
            return Ok(inner);
        }
        self.attr_exp()
    }

    fn attr_exp(&mut self) -> ScimResult<Filter> {
        let at = self.at();
        let path = match self.next() {
            Some(Tok::Word(w)) => AttrPath::parse(&w)
                .map_err(|_| invalid(at, format!("'{w}' is not an attribute path")))?,
            Some(_) => return Err(invalid(at, "expected an attribute path")),
            None => {
                return Err(invalid(
                    at,
                    "the filter ends where an attribute path was expected",
                ))
            }
        };
        if self.peek() == Some(&Tok::LBracket) {
            self.pos += 1;
            self.enter()?;
            let inner = self.or()?;
            self.expect(Tok::RBracket, "']'")?;
            self.depth -= 1;
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(inner),
            });
        }
        let at = self.at();
        let op_word = match self.next() {
            Some(Tok::Word(w)) => w,
            _ => return Err(invalid(at, format!("expected an operator after '{path}'"))),
        };
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let op = CompareOp::parse(&op_word)
            .ok_or_else(|| invalid(at, format!("'{op_word}' is not an operator")))?;
        let at = self.at();
        let value = match self.next() {
            Some(Tok::Str(s)) => CompValue::String(s),
            Some(Tok::Word(w)) => word_value(&w),
            _ => {
                return Err(invalid(
                    at,
                    format!("expected a value after '{}'", op.as_str()),
                ))
            }
        };
        Ok(Filter::Compare { path, op, value })
    }
}

/// A bare word as a comparison value: a literal, a number, or (as Entra sends them) an
/// unquoted string.
fn word_value(w: &str) -> CompValue {
    match w {
        "true" => CompValue::Bool(true),
        "false" => CompValue::Bool(false),
        "null" => CompValue::Null,
        _ => match serde_json::from_str::<Number>(w) {
            Ok(n) => CompValue::Number(n),
            Err(_) => CompValue::String(w.to_string()),
        },
    }
}

impl Filter {
    /// Parses a filter expression.
    pub fn parse(text: &str) -> ScimResult<Filter> {
        if text.len() > MAX_FILTER_LEN {
            return Err(ScimError::InvalidFilter(format!(
                "the filter is longer than {MAX_FILTER_LEN} characters"
            )));
        }
        if text.contains('\0') {
            return Err(ScimError::InvalidFilter(
                "the filter holds U+0000, which no attribute or value can".into(),
            ));
        }
        if text.trim().is_empty() {
            return Err(ScimError::InvalidFilter("the filter is empty".into()));
        }
        let toks = Lexer::run(text)?;
        let mut p = Parser {
            toks,
            pos: 0,
            end: text.len(),
            depth: 0,
        };
        let f = p.or()?;
        if p.pos < p.toks.len() {
            return Err(invalid(
                p.at(),
                "unexpected text after the end of the filter",
            ));
        }
        Ok(f)
    }

    /// Checks every path against the resource type so that a filter on an attribute that
    /// does not exist is refused, not silently matched against nothing.
    pub fn check(&self, reg: &Registry, rt: &ResourceType) -> ScimResult<()> {
        self.check_in(reg, rt, None)
    }

    fn check_in(
        &self,
        reg: &Registry,
        rt: &ResourceType,
        parent: Option<&AttrPath>,
    ) -> ScimResult<()> {
        let check_path = |p: &AttrPath| -> ScimResult<()> {
            let full = join(parent, p);
            let is_id = parent.is_none() && is_id_path(&full);
            if is_id || is_meta_path(&full) || resolve(reg, rt, &full).is_some() {
                Ok(())
            } else {
                Err(ScimError::InvalidFilter(format!(
                    "'{full}' is not an attribute of {}",
                    rt.name
                )))
            }
        };
        match self {
            Filter::Compare { path, .. } | Filter::Present(path) => check_path(path),
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.check_in(reg, rt, parent)?;
                b.check_in(reg, rt, parent)
            }
            Filter::Not(a) => a.check_in(reg, rt, parent),
            Filter::ValuePath { path, filter } => {
                if parent.is_some() {
                    return Err(ScimError::InvalidFilter(
                        "value filters cannot be nested".into(),
                    ));
                }
                check_path(path)?;
                filter.check_in(reg, rt, Some(path))
            }
        }
    }
}

/// `meta.created`, `meta.lastModified`, `meta.resourceType`, `meta.version`,
/// `meta.location`: common attributes outside any schema's attribute list.
pub fn is_meta_path(p: &AttrPath) -> bool {
    p.urn.is_none()
        && p.attr.eq_ignore_ascii_case("meta")
        && p.sub.as_deref().is_some_and(|s| {
            [
                "created",
                "lastModified",
                "resourceType",
                "version",
                "location",
            ]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(s))
        })
}

/// `id`: a common attribute outside any schema's attribute list, a case-exact string.
pub fn is_id_path(p: &AttrPath) -> bool {
    p.urn.is_none() && p.sub.is_none() && p.attr.eq_ignore_ascii_case("id")
}

/// A common attribute's definition: single-valued, case-exact, read-only.
fn common(name: &str, kind: AttrType) -> AttrDef {
    AttrDef {
        name: name.into(),
        kind,
        multi_valued: false,
        required: false,
        case_exact: true,
        mutability: Default::default(),
        returned: Default::default(),
        sub_attributes: vec![],
    }
}

/// What `id` is: a case-exact string (RFC 7643 section 3.1).
fn id_def() -> &'static AttrDef {
    static ID: std::sync::OnceLock<AttrDef> = std::sync::OnceLock::new();
    ID.get_or_init(|| common("id", AttrType::String))
}

/// What a filterable `meta` sub-attribute is: `created` and `lastModified` are dateTimes,
/// `resourceType` a case-exact string. `version` and `location` are not filterable (the
/// bridge does not store them as they are shown).
fn meta_def(path: &AttrPath) -> ScimResult<&'static AttrDef> {
    static DEFS: std::sync::OnceLock<[AttrDef; 3]> = std::sync::OnceLock::new();
    let defs = DEFS.get_or_init(|| {
        [
            common("created", AttrType::DateTime),
            common("lastModified", AttrType::DateTime),
            common("resourceType", AttrType::String),
        ]
    });
    let sub = path.sub.as_deref().unwrap_or("");
    defs.iter()
        .find(|d| d.name.eq_ignore_ascii_case(sub))
        .ok_or_else(|| ScimError::InvalidFilter(format!("filtering on '{path}' is not supported")))
}

/// Joins a value filter's relative path onto its parent: `emails` + `type` = `emails.type`.
pub fn join(parent: Option<&AttrPath>, p: &AttrPath) -> AttrPath {
    match parent {
        None => p.clone(),
        Some(parent) => AttrPath {
            urn: parent.urn.clone(),
            attr: parent.attr.clone(),
            sub: Some(p.attr.clone()),
        },
    }
}

/// Evaluates filters against JSON resources in memory.
pub struct Evaluator<'a> {
    pub reg: &'a Registry,
    pub rt: &'a ResourceType,
}

impl Evaluator<'_> {
    /// Whether `resource` (a full resource document) matches `filter`.
    /// A filter with a comparison that cannot be made (a dateTime compared with a word, a
    /// boolean ordered) is refused whatever the resource, as the SQL translation refuses
    /// it, even where `and` or `or` would not reach that comparison.
    pub fn matches(&self, filter: &Filter, resource: &Value) -> ScimResult<bool> {
        self.validate(filter, None)?;
        self.eval(filter, resource, None)
    }

    /// Every comparison of `f` checked against its attribute's type, without a resource.
    fn validate(&self, f: &Filter, parent: Option<&AttrPath>) -> ScimResult<()> {
        match f {
            Filter::And(a, b) | Filter::Or(a, b) => {
                self.validate(a, parent)?;
                self.validate(b, parent)
            }
            Filter::Not(a) => self.validate(a, parent),
            Filter::Present(p) => match parent {
                Some(parent) => self.def(&join(Some(parent), p)).map(|_| ()),
                None => self.values(&Value::Null, p).map(|_| ()),
            },
            Filter::Compare { path, op, value } => {
                let (def, case) = match parent {
                    Some(parent) => {
                        let def = self.def(&join(Some(parent), path))?;
                        (def, Case::of(def, false))
                    }
                    None => {
                        let (def, _) = self.values(&Value::Null, path)?;
                        (def, Case::of(def, self.is_folded_name(path)))
                    }
                };
                compare_any(def, case, &[], *op, value).map(|_| ())
            }
            Filter::ValuePath { .. } if parent.is_some() => Err(ScimError::InvalidFilter(
                "value filters cannot be nested".into(),
            )),
            Filter::ValuePath { path, filter } => self.validate(filter, Some(path)),
        }
    }

    /// Whether one element of the multi-valued attribute `parent` matches a value filter.
    pub fn matches_element(
        &self,
        parent: &AttrPath,
        filter: &Filter,
        element: &Value,
    ) -> ScimResult<bool> {
        self.eval_element(parent, filter, element)
    }

    fn eval(&self, f: &Filter, res: &Value, _parent: Option<&AttrPath>) -> ScimResult<bool> {
        match f {
            Filter::And(a, b) => Ok(self.eval(a, res, None)? && self.eval(b, res, None)?),
            Filter::Or(a, b) => Ok(self.eval(a, res, None)? || self.eval(b, res, None)?),
            Filter::Not(a) => Ok(!self.eval(a, res, None)?),
            Filter::Present(path) => {
                let (def, values) = self.values(res, path)?;
                Ok(values.iter().any(|v| is_present(v, def)))
            }
            Filter::Compare { path, op, value } => {
                let (def, values) = self.values(res, path)?;
                let case = Case::of(def, self.is_folded_name(path));
                compare_any(def, case, &values, *op, value)
            }
            Filter::ValuePath { path, filter } => {
                let container = self.container(res, path);
                let elements: Vec<&Value> = match container {
                    Some(Value::Array(items)) => items.iter().collect(),
                    Some(v @ Value::Object(_)) => vec![v],
                    _ => vec![],
                };
                for el in elements {
                    if self.eval_element(path, filter, el)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }

    fn eval_element(&self, parent: &AttrPath, f: &Filter, el: &Value) -> ScimResult<bool> {
        match f {
            Filter::And(a, b) => {
                Ok(self.eval_element(parent, a, el)? && self.eval_element(parent, b, el)?)
            }
            Filter::Or(a, b) => {
                Ok(self.eval_element(parent, a, el)? || self.eval_element(parent, b, el)?)
            }
            Filter::Not(a) => Ok(!self.eval_element(parent, a, el)?),
            Filter::Present(p) => {
                let full = join(Some(parent), p);
                let def = self.def(&full)?;
                Ok(get_ci(el, &p.attr).is_some_and(|v| is_present(v, def)))
            }
            Filter::Compare { path, op, value } => {
                let full = join(Some(parent), path);
                let def = self.def(&full)?;
                let vals: Vec<&Value> = get_ci(el, &path.attr).into_iter().collect();
                compare_any(def, Case::of(def, false), &vals, *op, value)
            }
            Filter::ValuePath { .. } => Err(ScimError::InvalidFilter(
                "value filters cannot be nested".into(),
            )),
        }
    }

    /// Whether `path` is a name the store keeps folded: a User's userName, a displayName.
    fn is_folded_name(&self, path: &AttrPath) -> bool {
        let core = path
            .urn
            .as_deref()
            .is_none_or(|u| u.eq_ignore_ascii_case(&self.rt.schema));
        core && path.sub.is_none()
            && (path.attr.eq_ignore_ascii_case("displayName")
                || (path.attr.eq_ignore_ascii_case("userName")
                    && self.rt.schema == super::schema::USER_SCHEMA))
    }

    fn def(&self, path: &AttrPath) -> ScimResult<Option<&AttrDef>> {
        if is_meta_path(path) {
            return meta_def(path).map(Some);
        }
        if is_id_path(path) {
            return Ok(Some(id_def()));
        }
        resolve(self.reg, self.rt, path)
            .map(|r| Some(r.leaf()))
            .ok_or_else(|| {
                ScimError::InvalidFilter(format!(
                    "'{path}' is not an attribute of {}",
                    self.rt.name
                ))
            })
    }

    /// The value at the attribute (not sub-attribute) level of `path`.
    fn container<'v>(&self, res: &'v Value, path: &AttrPath) -> Option<&'v Value> {
        let base = match &path.urn {
            Some(urn) if !urn.eq_ignore_ascii_case(&self.rt.schema) => get_ci(res, urn)?,
            _ => res,
        };
        get_ci(base, &path.attr)
    }

    /// Every value `path` reaches (flattening multi-valued attributes), and the definition
    /// of what it reaches. A complex attribute with no sub-attribute named means its `value`.
    fn values<'v>(
        &self,
        res: &'v Value,
        path: &AttrPath,
    ) -> ScimResult<(Option<&AttrDef>, Vec<&'v Value>)> {
        if is_meta_path(path) {
            let def = meta_def(path)?;
            let v = res
                .get("meta")
                .and_then(|m| get_ci(m, path.sub.as_deref().unwrap_or("")));
            return Ok((Some(def), v.into_iter().collect()));
        }
        if is_id_path(path) {
            return Ok((Some(id_def()), res.get("id").into_iter().collect()));
        }
        let r = resolve(self.reg, self.rt, path).ok_or_else(|| {
            ScimError::InvalidFilter(format!("'{path}' is not an attribute of {}", self.rt.name))
        })?;
        let container = self.container(res, path);
        let mut tops: Vec<&Value> = Vec::new();
        match container {
            Some(Value::Array(items)) => tops.extend(items.iter()),
            Some(v) => tops.push(v),
            None => {}
        }
        // A complex attribute named without a sub-attribute means its `value`, when it has
        // one; otherwise the attribute itself (which only `pr` can test).
        let sub_name = match (r.sub, r.attr.kind) {
            (Some(s), _) => Some(s.name.as_str()),
            (None, AttrType::Complex) if r.attr.sub("value").is_some() => Some("value"),
            _ => None,
        };
        let def = match sub_name {
            Some(n) => r.attr.sub(n),
            None => Some(r.attr),
        };
        let values = match sub_name {
            Some(n) => tops.into_iter().filter_map(|t| get_ci(t, n)).collect(),
            None => tops,
        };
        Ok((def, values))
    }
}

/// Looks a key up in a JSON object without regard to case.
pub fn get_ci<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    let obj = v.as_object()?;
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn is_present(v: &Value, _def: Option<&AttrDef>) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// How two strings compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// As they are (a caseExact attribute).
    Exact,
    /// By Unicode lowercase, as SQL's `lower()` compares (SQLite's is given Unicode's).
    Lower,
    /// Unicode NFC and full case folding: the names kept folded in their own column
    /// (userName, displayName), compared the way identity systems compare names.
    Fold,
}

impl Case {
    fn of(def: Option<&AttrDef>, folded_name: bool) -> Case {
        match (def.is_some_and(|d| d.case_exact), folded_name) {
            (true, _) => Case::Exact,
            (false, true) => Case::Fold,
            (false, false) => Case::Lower,
        }
    }
}

fn compare_any(
    def: Option<&AttrDef>,
    case: Case,
    values: &[&Value],
    op: CompareOp,
    target: &CompValue,
) -> ScimResult<bool> {
    if let CompValue::Null = target {
        let present = values.iter().any(|v| !v.is_null());
        return match op {
            CompareOp::Eq => Ok(!present),
            CompareOp::Ne => Ok(present),
            _ => Err(ScimError::InvalidFilter(format!(
                "'{}' cannot compare with null",
                op.as_str()
            ))),
        };
    }
    if op == CompareOp::Ne {
        return Ok(!compare_any(def, case, values, CompareOp::Eq, target)?);
    }
    let kind = def.map(|d| d.kind).unwrap_or(AttrType::String);
    if kind == AttrType::DateTime {
        date_time_comparison(op, target)?;
    }
    if kind == AttrType::Boolean && op != CompareOp::Eq {
        return Err(ScimError::InvalidFilter(format!(
            "'{}' cannot compare booleans",
            op.as_str()
        )));
    }
    if matches!(kind, AttrType::Binary | AttrType::Complex) {
        return Err(ScimError::InvalidFilter(
            "binary and complex attributes can only be tested with pr".into(),
        ));
    }
    for v in values {
        if compare_one(kind, case, v, op, target) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `op` and `target` make sense for a dateTime: eq, ne and order, against a value
/// that is a dateTime (RFC 3339) when it is a string. The SQL translation checks the same.
pub fn date_time_comparison(op: CompareOp, target: &CompValue) -> ScimResult<()> {
    if matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
        return Err(ScimError::InvalidFilter(format!(
            "'{}' compares strings; a dateTime is compared with eq, ne, gt, ge, lt or le",
            op.as_str()
        )));
    }
    match target {
        CompValue::String(t) if chrono::DateTime::parse_from_rfc3339(t).is_err() => {
            Err(ScimError::InvalidFilter(format!("'{t}' is not a dateTime")))
        }
        _ => Ok(()),
    }
}

/// Compares one stored value with a filter value, as both SQL backends must too.
pub fn compare_one(
    kind: AttrType,
    case: Case,
    v: &Value,
    op: CompareOp,
    target: &CompValue,
) -> bool {
    match (kind, v, target) {
        (AttrType::Boolean, Value::Bool(b), CompValue::Bool(t)) => op == CompareOp::Eq && b == t,
        (AttrType::Boolean, Value::Bool(b), CompValue::String(t)) => {
            super::resource::coerce_bool(t).is_some_and(|t| op == CompareOp::Eq && *b == t)
        }
        (AttrType::Integer | AttrType::Decimal, Value::Number(n), CompValue::Number(t)) => {
            match (n.as_f64(), t.as_f64()) {
                (Some(a), Some(b)) => ordered(op, a.partial_cmp(&b)),
                _ => false,
            }
        }
        (AttrType::DateTime, Value::String(s), CompValue::String(t)) => {
            match (
                chrono::DateTime::parse_from_rfc3339(s),
                chrono::DateTime::parse_from_rfc3339(t),
            ) {
                (Ok(a), Ok(b)) => ordered(op, Some(a.cmp(&b))),
                _ => string_cmp(case, s, op, t),
            }
        }
        (_, Value::String(s), CompValue::String(t)) => string_cmp(case, s, op, t),
        _ => false,
    }
}

fn ordered(op: CompareOp, ord: Option<Ordering>) -> bool {
    let Some(ord) = ord else { return false };
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn string_cmp(case: Case, s: &str, op: CompareOp, t: &str) -> bool {
    let (s, t) = match case {
        Case::Exact => (s.to_string(), t.to_string()),
        Case::Lower => (s.to_lowercase(), t.to_lowercase()),
        Case::Fold => (super::fold::fold(s), super::fold::fold(t)),
    };
    match op {
        CompareOp::Co => s.contains(&t),
        CompareOp::Sw => s.starts_with(&t),
        CompareOp::Ew => s.ends_with(&t),
        _ => ordered(op, Some(s.cmp(&t))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_chain_prints_as_one_group_and_parses_back() {
        let text = (0..40)
            .map(|i| format!("a{i} eq {i}"))
            .collect::<Vec<_>>()
            .join(" and ");
        let f = Filter::parse(&text).expect("parses");
        let printed = f.to_string();
        assert_eq!(printed, text);
        assert_eq!(Filter::parse(&printed).ok(), Some(f));
        let f = Filter::parse("not (a eq 1 or b eq 2 or c eq 3)").expect("parses");
        assert_eq!(f.to_string(), "not (a eq 1 or b eq 2 or c eq 3)");
        assert!(Filter::parse("title eq nul\0l").is_err());
    }

    #[test]
    fn filters_parse_and_print_back() {
        let cases = [
            ("userName eq \"bjensen\"", "userName eq \"bjensen\""),
            ("externalId eq jyoung", "externalId eq \"jyoung\""),
            ("title pr and userType eq \"Employee\"", "title pr and userType eq \"Employee\""),
            ("a eq 1 or b eq 2 and c eq 3", "a eq 1 or b eq 2 and c eq 3"),
            ("(a eq 1 or b eq 2) and c eq 3", "(a eq 1 or b eq 2) and c eq 3"),
            ("a eq 1 and (b eq 2 and c eq 3)", "a eq 1 and (b eq 2 and c eq 3)"),
            ("not (active eq false)", "not (active eq false)"),
            ("emails[type eq \"work\" and value co \"@example.com\"]",
             "emails[type eq \"work\" and value co \"@example.com\"]"),
            ("name.familyName EQ \"O'Malley\"", "name.familyName eq \"O'Malley\""),
            ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"7\"",
             "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"7\""),
            ("meta.lastModified gt \"2011-05-13T04:42:34Z\"", "meta.lastModified gt \"2011-05-13T04:42:34Z\""),
            ("x eq null", "x eq null"),
        ];
        for (input, printed) in cases {
            let f = Filter::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(f.to_string(), printed, "{input}");
            assert_eq!(
                Filter::parse(&f.to_string()).ok(),
                Some(f),
                "{input} round trip"
            );
        }
    }

    #[test]
    fn invalid_filters_say_where_they_broke() {
        let cases = [
            ("userName eq", "character 12"),
            ("userName xx \"a\"", "character 10"),
            ("(userName eq \"a\"", "')'"),
            ("userName eq \"a", "not closed"),
            ("userName eq \"a\" garbage", "after the end"),
            ("", "empty"),
            ("emails[type eq \"work\"", "']'"),
        ];
        for (input, needle) in cases {
            match Filter::parse(input) {
                Err(ScimError::InvalidFilter(msg)) => {
                    assert!(msg.contains(needle), "{input}: {msg}")
                }
                other => panic!("{input}: {other:?}"),
            }
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}a eq 1{}", "(".repeat(40), ")".repeat(40));
        assert!(matches!(
            Filter::parse(&deep),
            Err(ScimError::InvalidFilter(_))
        ));
        let long = format!("a eq \"{}\"", "x".repeat(MAX_FILTER_LEN));
        assert!(matches!(
            Filter::parse(&long),
            Err(ScimError::InvalidFilter(_))
        ));
    }
}
