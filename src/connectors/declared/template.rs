//! Templates and expressions of a connector definition, in MiniJinja: Jinja2's syntax,
//! which provisioning admins know from Ansible and Salt, in a crate with no I/O (no loader
//! is set, so a template cannot include a file) and with fuel: every evaluation is cut
//! off after a bounded number of steps, so a loop cannot run away. Undefined values chain
//! (`user.manager.id` of a user without a manager is undefined, not an error), print as
//! nothing, and leave a JSON key out.
//!
//! Filters besides MiniJinja's own (`lower`, `upper`, `default`, `join`, `first`, `tojson`
//! and the rest): `primary` (the primary value of a multi-valued attribute, else its
//! first), `fill_nulls(v)` (a table's nulls replaced by `v`) and `as_list` (a scalar as a
//! list of one, a list as it is, nothing as an empty list); `omit` is undefined, so
//! `"{{ x if c else omit }}"` leaves its key out; `random_password()` makes a strong
//! password nobody keeps (for a target that must not hold a login without one).

use std::collections::BTreeSet;

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};

/// The steps one evaluation may take.
const FUEL: u64 = 100_000;

/// Why a template or an expression gave no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// It took more steps than [`FUEL`]: a loop over too much, or one without end.
    #[error("the template ran out of fuel: it took more than {FUEL} steps")]
    OutOfFuel,
    /// It does not parse, or failed on the values it was given.
    #[error("{0}")]
    Invalid(String),
}

/// Where a rendered value goes, which decides how it is escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// As it is (a JSON string, a header, a query value).
    Plain,
    /// Inside a URL path: each value percent-encoded.
    Path,
    /// Inside XML (a SOAP body): each value escaped.
    Xml,
}

/// The environments templates are evaluated in.
pub struct Templates {
    plain: Environment<'static>,
    path: Environment<'static>,
    xml: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Templates {
        Templates::new()
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(50);
    // As Ansible has them: a block tag takes its line's newline and indentation with it.
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_filter("primary", primary);
    env.add_filter("fill_nulls", fill_nulls);
    env.add_filter("as_list", as_list);
    // Ansible's name for "leave this key out".
    env.add_global("omit", Value::UNDEFINED);
    env.add_function("random_password", random_password);
    env
}

/// A password for an account that must not be left without one (a target that keeps
/// NULL for a login made without a password may let anyone in): random, never kept,
/// with upper and lower case, digits and symbols, so the usual policies take it.
fn random_password() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    let body = Alphanumeric.sample_string(&mut rand::thread_rng(), 28);
    format!("Sb-{body}-7q")
}

/// The primary value of a multi-valued attribute, else its first; a single value as it is.
fn primary(v: Value) -> Result<Value, Error> {
    if v.kind() != ValueKind::Seq {
        return Ok(v);
    }
    let items: Vec<Value> = v.try_iter()?.collect();
    let chosen = items
        .iter()
        .find(|i| i.get_attr("primary").map(|p| p.is_true()).unwrap_or(false))
        .or_else(|| items.first())
        .cloned()
        .unwrap_or(Value::UNDEFINED);
    // An object with a value (an email, a phone) gives the value.
    match chosen.get_attr("value") {
        Ok(inner) if !inner.is_undefined() => Ok(inner),
        _ => Ok(chosen),
    }
}

fn fill_nulls(v: Value, with: Value) -> Result<Value, Error> {
    if v.kind() != ValueKind::Map {
        return Ok(if v.is_none() { with } else { v });
    }
    let mut out = indexmap_like(&v)?;
    for (_, x) in out.iter_mut() {
        if x.is_none() {
            *x = with.clone();
        }
    }
    Ok(Value::from_iter(out))
}

fn indexmap_like(v: &Value) -> Result<Vec<(Value, Value)>, Error> {
    v.try_iter()?
        .map(|k| {
            let x = v.get_item(&k)?;
            Ok((k, x))
        })
        .collect()
}

fn as_list(v: Value) -> Result<Value, Error> {
    Ok(match v.kind() {
        ValueKind::Seq => v,
        ValueKind::Undefined | ValueKind::None => Value::from(Vec::<Value>::new()),
        _ => Value::from(vec![v]),
    })
}

impl Templates {
    pub fn new() -> Templates {
        let plain = environment();
        let mut path = environment();
        path.set_formatter(|out, _state, value| {
            if value.is_undefined() || value.is_none() {
                return Ok(());
            }
            let text = value.to_string();
            let encoded = percent_encoding::utf8_percent_encode(&text, SEGMENT).to_string();
            out.write_str(&encoded)
                .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
        });
        let mut xml = environment();
        xml.set_formatter(|out, _state, value| {
            if value.is_undefined() || value.is_none() {
                return Ok(());
            }
            let text = value.to_string();
            let mut escaped = String::with_capacity(text.len());
            for ch in text.chars() {
                match ch {
                    '&' => escaped.push_str("&amp;"),
                    '<' => escaped.push_str("&lt;"),
                    '>' => escaped.push_str("&gt;"),
                    '"' => escaped.push_str("&quot;"),
                    '\'' => escaped.push_str("&apos;"),
                    c => escaped.push(c),
                }
            }
            out.write_str(&escaped)
                .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
        });
        Templates { plain, path, xml }
    }

    fn env(&self, place: Place) -> &Environment<'static> {
        match place {
            Place::Plain => &self.plain,
            Place::Path => &self.path,
            Place::Xml => &self.xml,
        }
    }

    /// Renders a template to text.
    pub fn render(&self, place: Place, source: &str, ctx: &Value) -> Result<String, TemplateError> {
        self.env(place)
            .render_str(source, ctx)
            .map_err(|e| describe(&e))
    }

    /// Evaluates an expression.
    pub fn eval(&self, expr: &str, ctx: &Value) -> Result<Value, TemplateError> {
        self.plain
            .compile_expression(expr)
            .and_then(|e| e.eval(ctx))
            .map_err(|e| describe(&e))
    }

    /// Whether an expression is true.
    pub fn test(&self, expr: &str, ctx: &Value) -> Result<bool, TemplateError> {
        self.eval(expr, ctx).map(|v| v.is_true())
    }

    /// A template string's value: a string that is one `{{ … }}` gives its value as it is
    /// (None where it is undefined); any other is rendered to text.
    pub fn value(
        &self,
        source: &str,
        ctx: &Value,
    ) -> Result<Option<serde_json::Value>, TemplateError> {
        if let Some(expr) = whole_expression(source) {
            let v = self.eval(expr, ctx)?;
            if v.is_undefined() {
                return Ok(None);
            }
            return serde_json::to_value(&v).map(Some).map_err(|e| {
                TemplateError::Invalid(format!("the value cannot be sent as JSON: {e}"))
            });
        }
        self.render(Place::Plain, source, ctx)
            .map(|s| Some(serde_json::Value::String(s)))
    }

    /// A JSON body from a table whose strings are templates; keys whose value is undefined
    /// are left out.
    pub fn body(
        &self,
        v: &toml::Value,
        ctx: &Value,
    ) -> Result<Option<serde_json::Value>, TemplateError> {
        use serde_json::Value as J;
        Ok(match v {
            toml::Value::String(s) => self.value(s, ctx)?,
            toml::Value::Integer(i) => Some(J::from(*i)),
            toml::Value::Float(f) => Some(J::from(*f)),
            toml::Value::Boolean(b) => Some(J::Bool(*b)),
            toml::Value::Datetime(d) => Some(J::String(d.to_string())),
            toml::Value::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for x in a {
                    if let Some(x) = self.body(x, ctx)? {
                        out.push(x);
                    }
                }
                Some(J::Array(out))
            }
            toml::Value::Table(t) => {
                let mut out = serde_json::Map::new();
                // `"..." = "{{ a_table }}"` spreads the table's keys into this one first;
                // the keys named beside it win, and one that is undefined is left out.
                if let Some(spread) = t.get("...") {
                    match self.body(spread, ctx)? {
                        Some(J::Object(m)) => out.extend(m),
                        Some(J::Null) | None => {}
                        Some(other) => {
                            return Err(TemplateError::Invalid(format!(
                                "\"...\" spreads a table into the object; this gave {other}"
                            )))
                        }
                    }
                }
                for (k, x) in t.iter().filter(|(k, _)| k.as_str() != "...") {
                    match self.body(x, ctx)? {
                        Some(x) => out.insert(k.clone(), x),
                        None => out.remove(k),
                    };
                }
                Some(J::Object(out))
            }
        })
    }
}

/// The characters a path segment's value is encoded from: all but the unreserved ones.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The expression of a string that is one `{{ … }}` and nothing else.
fn whole_expression(source: &str) -> Option<&str> {
    let t = source.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%")).then_some(inner)
}

/// An error in words, with its line inside the template when it has more than one.
fn describe(e: &Error) -> TemplateError {
    if e.kind() == ErrorKind::OutOfFuel {
        return TemplateError::OutOfFuel;
    }
    let what = e
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.kind().to_string());
    TemplateError::Invalid(match e.line() {
        Some(l) if l > 1 => format!("{what} (line {l} of the template)"),
        _ => what,
    })
}

/// The variables a template uses (with their attributes: `user.email`), or why it does
/// not parse.
pub fn used_names(source: &str) -> Result<BTreeSet<String>, String> {
    if let Some(expr) = whole_expression(source) {
        return expression_names(expr);
    }
    let env = environment();
    let t = env
        .template_from_str(source)
        .map_err(|e| describe(&e).to_string())?;
    Ok(t.undeclared_variables(true).into_iter().collect())
}

/// The variables an expression uses, or why it does not parse.
pub fn expression_names(expr: &str) -> Result<BTreeSet<String>, String> {
    let env = environment();
    let e = env
        .compile_expression(expr)
        .map_err(|e| describe(&e).to_string())?;
    Ok(e.undeclared_variables(true).into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(v: serde_json::Value) -> Value {
        Value::from_serialize(v)
    }

    #[test]
    fn a_whole_expression_keeps_its_type_and_an_undefined_one_leaves_its_key_out() {
        let t = Templates::new();
        let c = ctx(json!({"user": {"ids": ["a", "b"], "n": 3}, "active": false}));
        let body: toml::Value = toml::from_str(
            r#"ids = "{{ user.ids }}"
n = "{{ user.n }}"
gone = "{{ user.missing.deeper }}"
text = "n is {{ user.n }}"
none = "{{ none }}"
empty = "{{ user.ids if active else [] }}""#,
        )
        .expect("ok");
        assert_eq!(
            t.body(&body, &c).expect("ok").expect("ok"),
            json!({"ids": ["a", "b"], "n": 3, "text": "n is 3", "none": null, "empty": []})
        );
    }

    #[test]
    fn the_filters_a_provisioning_admin_needs_work() {
        let t = Templates::new();
        let c = ctx(
            json!({"emails": [{"value": "a@x"}, {"value": "b@x", "primary": true}],
                           "m": {"a": null, "b": 1}, "s": "Ab"}),
        );
        let v = |s: &str| t.value(s, &c).expect("ok").expect("ok");
        assert_eq!(v("{{ emails | primary }}"), json!("b@x"));
        assert_eq!(v("{{ s | lower }}-{{ s | upper }}"), json!("ab-AB"));
        assert_eq!(v("{{ m | fill_nulls('') }}"), json!({"a": "", "b": 1}));
        assert_eq!(v("{{ s | as_list }}"), json!(["Ab"]));
        assert_eq!(v("{{ nothing | default('d') }}"), json!("d"));
    }

    #[test]
    fn a_path_value_is_percent_encoded() {
        let t = Templates::new();
        let c = ctx(json!({"principal": "a b/c?d"}));
        assert_eq!(
            t.render(Place::Path, "/users/{{ principal }}", &c)
                .expect("ok"),
            "/users/a%20b%2Fc%3Fd"
        );
    }

    #[test]
    fn a_value_placed_in_xml_is_escaped() {
        let t = Templates::new();
        let c = ctx(json!({"name": "<b>&'\""}));
        assert_eq!(
            t.render(Place::Xml, "<n>{{ name }}</n>", &c).expect("ok"),
            "<n>&lt;b&gt;&amp;&apos;&quot;</n>"
        );
    }

    #[test]
    fn a_runaway_loop_runs_out_of_fuel() {
        let t = Templates::new();
        let err = t
            .render(
                Place::Plain,
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
                &Value::UNDEFINED,
            )
            .expect_err("fails");
        assert_eq!(err, TemplateError::OutOfFuel);
    }

    #[test]
    fn the_names_a_template_uses_are_found() {
        let names = used_names("{{ user.email | lower }} {{ principal }}").expect("ok");
        assert!(names.contains("user.email") && names.contains("principal"));
        assert!(used_names("{{ user.email ").is_err());
    }
}
