//! Reading settings: the TOML file, then a `SCIM_BRIDGE_<KEY>` variable for any key, into
//! [`Settings`]. Every problem is found in one pass and reported where it is (the file's
//! line and key, or the variable), in words rather than Rust types, and without the value
//! (a line may hold a secret).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::{ConnectorConfig, JwtIssuerConfig, Settings};

/// Every top-level key a settings file may hold; each can also come from the environment
/// as `SCIM_BRIDGE_` and the key in capitals (a unit test keeps this list whole).
pub const KEYS: &[&str] = &[
    "listen",
    "database_url",
    "pool_size",
    "database_wait_secs",
    "max_body_bytes",
    "max_results",
    "max_page_bytes",
    "schemas_dir",
    "public_url",
    "token",
    "shutdown_timeout_secs",
    "workers",
    "group_patch_returns_resource",
    "bulk_max_operations",
    "bulk_max_payload_bytes",
    "admin_token",
    "outbox_workers",
    "outbox_max_attempts",
    "outbox_max_age_secs",
    "outbox_base_delay_ms",
    "outbox_max_delay_ms",
    "outbox_lease_secs",
    "outbox_key",
    "deleted_retention_days",
    "log_format",
    "tls_cert",
    "tls_key",
    "metrics_token",
    "metrics_listen",
    "audit_retention_days",
    "body_timeout_secs",
    "trusted_proxies",
    "connector",
    "jwt_issuer",
    "rate_limit_per_sec",
    "rate_limit_burst",
    "auth_failures_per_sec",
    "auth_failures_burst",
];

/// The variable a key is read from.
pub fn env_name(key: &str) -> String {
    format!("SCIM_BRIDGE_{}", key.to_ascii_uppercase())
}

/// Variables of the project's own scripts (CI, benchmarks), not settings.
const TOOLING: &[&str] = &["SCIM_BRIDGE_BIN", "SCIM_BRIDGE_CI_CACHE"];

/// The variables among `names` that look like settings (`SCIM_BRIDGE_...`) but that no
/// setting reads: a misspelling or a plural, which would otherwise be ignored in silence.
/// Each comes with the variable it most likely meant, when one is close.
pub fn unknown_variables(names: impl IntoIterator<Item = String>) -> Vec<(String, Option<String>)> {
    let known: Vec<String> = KEYS.iter().map(|k| env_name(k)).collect();
    let mut out: Vec<(String, Option<String>)> = names
        .into_iter()
        .filter(|n| n.starts_with("SCIM_BRIDGE_"))
        .filter(|n| !known.contains(n) && !TOOLING.contains(&n.as_str()))
        .map(|n| {
            let near = known
                .iter()
                .map(|k| (distance(k, &n), k))
                .filter(|(d, _)| *d <= 3)
                .min()
                .map(|(_, k)| k.clone());
            (n, near)
        })
        .collect();
    out.sort();
    out
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// One step of a path into the settings: a key, or a position in a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Where a setting is: `connector[1].password`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn key(k: &str) -> KeyPath {
        KeyPath(vec![Seg::Key(k.into())])
    }

    pub fn at(&self, k: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.into()));
        p
    }

    pub fn index(&self, i: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    fn top(&self) -> Option<&str> {
        match self.0.first() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Where a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// In the settings file.
    File { line: usize, key: KeyPath },
    /// In an environment variable.
    Env { var: String },
    /// A setting made some other way (a default, a flag).
    Setting { key: KeyPath },
}

/// One problem with the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub place: Place,
    pub message: String,
}

impl Problem {
    /// The file line it is on, when it is in the file.
    pub fn line(&self) -> Option<usize> {
        match &self.place {
            Place::File { line, .. } => Some(*line),
            _ => None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.place {
            Place::File { line, key } if key.0.is_empty() => {
                write!(f, "line {line}: {}", self.message)
            }
            Place::File { line, key } => write!(f, "line {line}: {key}: {}", self.message),
            Place::Env { var } => write!(f, "{var}: {}", self.message),
            Place::Setting { key } => write!(f, "{key}: {}", self.message),
        }
    }
}

/// Problems found together, one a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} problem{} in the settings:",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Where each setting came from, to say where a problem is.
pub struct Source {
    doc: Option<toml_edit::ImDocument<String>>,
    /// Top-level keys taken from the environment, and from which variable.
    from_env: BTreeMap<String, String>,
}

impl Source {
    /// The place of a key: its variable, its line in the file, or neither.
    pub fn place(&self, key: &KeyPath) -> Place {
        if let Some(var) = key.top().and_then(|k| self.from_env.get(k)) {
            return Place::Env { var: var.clone() };
        }
        match self.doc.as_ref().and_then(|d| line_in(d, key)) {
            Some(line) => Place::File {
                line,
                key: key.clone(),
            },
            None => Place::Setting { key: key.clone() },
        }
    }

    pub fn problem(&self, key: &KeyPath, message: impl Into<String>) -> Problem {
        Problem {
            place: self.place(key),
            message: message.into(),
        }
    }
}

/// The line of the deepest part of `key` the file holds.
fn line_in(doc: &toml_edit::ImDocument<String>, key: &KeyPath) -> Option<usize> {
    let text = doc.raw();
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut item = doc.as_item();
    let mut best = None;
    for seg in &key.0 {
        let next = match seg {
            Seg::Key(k) => {
                if let Some(span) = item
                    .as_table_like()
                    .and_then(|t| t.get_key_value(k))
                    .and_then(|(key, _)| key.span())
                {
                    best = Some(span.start);
                }
                item.get(k.as_str())
            }
            Seg::Index(i) => item.get(*i),
        };
        let Some(next) = next else { break };
        if let Some(span) = next.span() {
            best = Some(span.start);
        } else if let Some(span) = next.as_table().and_then(|t| t.span()) {
            best = Some(span.start);
        }
        item = next;
    }
    best.map(line_of)
}

/// Reads the file's text (if any) and the environment into settings, with every problem
/// found. When there are problems the settings (if any) leave out the keys that had them,
/// so that the other checks can still run over the rest.
pub fn load(
    text: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Option<Settings>, Vec<Problem>, Source) {
    let mut source = Source {
        doc: None,
        from_env: BTreeMap::new(),
    };
    let mut table = toml::Table::new();
    if let Some(text) = text {
        match toml_edit::ImDocument::parse(text.to_string()) {
            Ok(doc) => source.doc = Some(doc),
            Err(e) => {
                // The message only: toml's own text quotes the line, which may hold a secret.
                let line = e
                    .span()
                    .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                    .unwrap_or(1);
                let problem = Problem {
                    place: Place::File {
                        line,
                        key: KeyPath::default(),
                    },
                    message: format!("not valid TOML: {}", e.message().trim()),
                };
                return (None, vec![problem], source);
            }
        }
        match toml::from_str::<toml::Table>(text) {
            Ok(t) => table = t,
            Err(e) => {
                let problem = Problem {
                    place: Place::File {
                        line: 1,
                        key: KeyPath::default(),
                    },
                    message: format!("not valid TOML: {}", e.message().trim()),
                };
                return (None, vec![problem], source);
            }
        }
    }
    let mut problems = Vec::new();
    for (key, value) in &table {
        for (path, message) in type_problems(key, value) {
            problems.push(source.problem(&path, message));
        }
    }
    for key in KEYS {
        let var = env_name(key);
        let raw = env(&var)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (var.clone(), v))
            .or_else(|| {
                (*key == "database_url")
                    .then(|| env("DATABASE_URL"))
                    .flatten()
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| ("DATABASE_URL".to_string(), v))
            });
        let Some((var, raw)) = raw else { continue };
        match from_env(key, &raw) {
            Ok(value) => {
                // A problem the file had with this key no longer counts: the variable wins.
                problems.retain(|p: &Problem| {
                    !matches!(&p.place, Place::File { key: k, .. } if k.top() == Some(key))
                });
                table.insert(key.to_string(), value);
                source.from_env.insert(key.to_string(), var);
            }
            Err(message) => problems.push(Problem {
                place: Place::Env { var },
                message,
            }),
        }
    }
    // A connector that cannot be read takes the whole list out of the checks below; what
    // can be told of each from its raw table (its URL, a name used twice) is told now, so
    // one pass reports it all.
    let connectors_failed = problems.iter().any(|p| match &p.place {
        Place::File { key, .. } | Place::Setting { key } => key.top() == Some("connector"),
        Place::Env { var } => *var == env_name("connector"),
    });
    if connectors_failed {
        if let Some(toml::Value::Array(list)) = table.get("connector") {
            let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
            for (i, c) in list.iter().enumerate() {
                let at = KeyPath::key("connector").index(i);
                if let Some(url) = c.get("url").and_then(toml::Value::as_str) {
                    let ldap = c.get("kind").and_then(toml::Value::as_str) == Some("ldap");
                    if !ldap
                        && !matches!(url::Url::parse(url), Ok(u) if u.scheme() == "http" || u.scheme() == "https")
                    {
                        problems.push(source.problem(&at.at("url"), "an http(s) URL".to_string()));
                    }
                }
                if let Some(name) = c.get("name").and_then(toml::Value::as_str) {
                    if let Some(first) = seen.insert(name, i) {
                        problems.push(source.problem(
                            &at.at("name"),
                            format!("the name '{name}' is already used by connector[{first}]"),
                        ));
                    }
                }
            }
        }
    }
    // The keys that failed are left out, so the rest can still be checked in this pass.
    for p in &problems {
        let key = match &p.place {
            Place::File { key, .. } | Place::Setting { key } => key.top().map(str::to_string),
            Place::Env { var } => KEYS
                .iter()
                .find(|k| env_name(k) == *var)
                .map(|k| k.to_string()),
        };
        if let Some(k) = key {
            table.remove(&k);
        }
    }
    problems.sort_by_key(|p| p.line().unwrap_or(usize::MAX));
    match Settings::deserialize(toml::Value::Table(table)) {
        Ok(s) => (Some(s), problems, source),
        Err(e) => {
            problems.push(Problem {
                place: Place::Setting {
                    key: KeyPath::default(),
                },
                message: in_words(e.message()),
            });
            (None, problems, source)
        }
    }
}

/// A variable's text as the value its key takes: text, or TOML (a number, `true`, a list,
/// an inline table), or a comma-separated list.
fn from_env(key: &str, raw: &str) -> Result<toml::Value, String> {
    let parsed = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    let list = toml::Value::Array(
        raw.split(',')
            .map(|s| toml::Value::String(s.trim().to_string()))
            .collect(),
    );
    let candidates = [
        Some(toml::Value::String(raw.to_string())),
        parsed,
        Some(list),
    ];
    let mut first_error = None;
    for value in candidates.into_iter().flatten() {
        match type_problems(key, &value).into_iter().next() {
            None => return Ok(value),
            Some((_, message)) => {
                first_error.get_or_insert(message);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| "not a value this setting takes".into()))
}

/// The type problems of one top-level key, each at its path, every one found.
fn type_problems(key: &str, value: &toml::Value) -> Vec<(KeyPath, String)> {
    let root = KeyPath::key(key);
    match (key, value) {
        ("connector", toml::Value::Array(items)) => items
            .iter()
            .enumerate()
            .flat_map(|(i, v)| each_problem::<ConnectorConfig>(root.index(i), v.clone()))
            .collect(),
        ("jwt_issuer", toml::Value::Array(items)) => items
            .iter()
            .enumerate()
            .flat_map(|(i, v)| each_problem::<JwtIssuerConfig>(root.index(i), v.clone()))
            .collect(),
        _ => {
            let mut t = toml::Table::new();
            t.insert(key.to_string(), value.clone());
            each_problem::<Settings>(KeyPath::default(), toml::Value::Table(t))
        }
    }
}

/// Deserializes `value` as `T` again and again, taking out each part that fails, so that
/// every problem is found rather than the first.
fn each_problem<T: serde::de::DeserializeOwned>(
    at: KeyPath,
    mut value: toml::Value,
) -> Vec<(KeyPath, String)> {
    let mut found = Vec::new();
    let mut removed: Vec<Vec<Seg>> = Vec::new();
    for _ in 0..64 {
        let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(_) => break,
            Err(e) => e,
        };
        let mut path = at.clone();
        for seg in err.path().iter() {
            match seg {
                serde_path_to_error::Segment::Map { key } => path.0.push(Seg::Key(key.clone())),
                serde_path_to_error::Segment::Seq { index } => path.0.push(Seg::Index(*index)),
                _ => {}
            }
        }
        let message = err.inner().message().to_string();
        let mut within = path.0[at.0.len()..].to_vec();
        if let Some(field) = quoted_after(&message, "unknown field `") {
            if within.last() != Some(&Seg::Key(field.clone())) {
                path.0.push(Seg::Key(field.clone()));
                within.push(Seg::Key(field));
            }
        }
        // A required key taken out below was reported already, in its own words.
        let taken_out = quoted_after(&message, "missing field `").is_some_and(|f| {
            let mut p = within.clone();
            p.push(Seg::Key(f));
            removed.contains(&p)
        });
        if taken_out {
            break;
        }
        found.push((path, in_words(&message)));
        // Take out the failing key (a whole list, when an item of it failed) and go on.
        let cut = within
            .iter()
            .position(|s| matches!(s, Seg::Index(_)))
            .unwrap_or(within.len());
        if cut == 0 || !remove(&mut value, &within[..cut]) {
            break;
        }
        removed.push(within[..cut].to_vec());
    }
    found
}

fn remove(value: &mut toml::Value, path: &[Seg]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut v = value;
    for seg in parents {
        v = match (seg, v) {
            (Seg::Key(k), toml::Value::Table(t)) => match t.get_mut(k) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, v) {
        (Seg::Key(k), toml::Value::Table(t)) => t.remove(k).is_some(),
        _ => false,
    }
}

fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    Some(rest[..rest.find('`')?].to_string())
}

/// serde's message for a settings value, in words a newcomer reads.
pub fn in_words(message: &str) -> String {
    let m = message.trim();
    if let Some(field) = quoted_after(m, "unknown field `") {
        let known: Vec<String> = m
            .split('`')
            .skip(3)
            .step_by(2)
            .map(str::to_string)
            .collect();
        let closest = known
            .iter()
            .map(|k| (strsim::jaro_winkler(k, &field), k))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| format!("; did you mean '{k}'?"));
        return match closest {
            Some(hint) => format!("'{field}' is not a setting here{hint}"),
            None if known.is_empty() => format!("'{field}' is not a setting here"),
            None => format!(
                "'{field}' is not a setting here (known: {})",
                known.join(", ")
            ),
        };
    }
    if let Some(field) = quoted_after(m, "missing field `") {
        return format!("'{field}' is required");
    }
    if let Some(found) = quoted_after(m, "unknown variant `") {
        let expected = m
            .split_once("expected ")
            .map(|(_, e)| e.replace('`', "'"))
            .unwrap_or_default();
        return format!("'{found}' is not one of the choices: {expected}");
    }
    let Some(rest) = m
        .strip_prefix("invalid type: ")
        .or_else(|| m.strip_prefix("invalid value: "))
    else {
        return m.to_string();
    };
    let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
    let expected = match expected.trim() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".to_string(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a boolean" => "true or false".to_string(),
        "a string" => "text in quotes".to_string(),
        "a sequence" => "a list, such as [\"a\", \"b\"]".to_string(),
        e if e.starts_with("struct ") || e == "a map" => "a table".to_string(),
        e => e.replace('`', "'"),
    };
    let found = if found.starts_with("string") {
        "text".to_string()
    } else if found.starts_with("integer") {
        format!(
            "the number {}",
            found.trim_start_matches("integer ").replace('`', "")
        )
    } else if found.starts_with("floating point") {
        format!(
            "the number {}",
            found.trim_start_matches("floating point ").replace('`', "")
        )
    } else if found.starts_with("boolean") {
        found.trim_start_matches("boolean ").replace('`', "")
    } else if found == "sequence" {
        "a list".to_string()
    } else if found == "map" {
        "a table".to_string()
    } else {
        found.replace('`', "'")
    };
    format!("expected {expected}, found {found}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_or_plural_setting_variable_is_named_with_the_one_it_likely_meant() {
        let names = [
            "SCIM_BRIDGE_CONNECTORS",
            "SCIM_BRIDGE_POOLSIZE",
            "SCIM_BRIDGE_LISTEN",
            "SCIM_BRIDGE_BIN",
            "SCIM_BRIDGE_SOMETHING_ELSE_ENTIRELY",
            "PATH",
        ]
        .map(String::from);
        assert_eq!(
            unknown_variables(names),
            vec![
                (
                    "SCIM_BRIDGE_CONNECTORS".into(),
                    Some("SCIM_BRIDGE_CONNECTOR".into())
                ),
                (
                    "SCIM_BRIDGE_POOLSIZE".into(),
                    Some("SCIM_BRIDGE_POOL_SIZE".into())
                ),
                ("SCIM_BRIDGE_SOMETHING_ELSE_ENTIRELY".into(), None),
            ]
        );
    }

    #[test]
    fn every_key_serde_knows_is_in_the_list_of_keys() {
        let Err(err) = toml::from_str::<Settings>("no_such_key_at_all = 1") else {
            panic!("an unknown key is refused");
        };
        let known: Vec<&str> = err
            .message()
            .split('`')
            .skip(3)
            .step_by(2)
            .collect::<Vec<_>>();
        assert_eq!(known, KEYS, "{}", err.message());
    }

    #[test]
    fn type_errors_name_their_key_and_speak_in_words() {
        let text = "workers = \"two\"\npool_size = -3\nlisen = \"x\"\n";
        let (_, got, _) = load(Some(text), &|_| None);
        let problems = got;
        let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            shown,
            vec![
                "line 1: workers: expected a whole number, 0 or more, found text",
                "line 2: pool_size: expected a whole number, 0 or more, found the number -3",
                "line 3: lisen: 'lisen' is not a setting here; did you mean 'listen'?",
            ],
        );
    }

    #[test]
    fn every_problem_of_every_connector_is_found_in_one_pass() {
        let text = "[[connector]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"http://x\"\ntimeout_secs = \"ten\"\nmode = \"sometimes\"\n\n[[connector]]\nname = \"b\"\nkind = \"webhook\"\n";
        let (_, got, _) = load(Some(text), &|_| None);
        let lines: Vec<(Option<usize>, String)> =
            got.iter().map(|p| (p.line(), p.message.clone())).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0].0, Some(5));
        assert_eq!(lines[1].0, Some(6));
        assert!(lines[1].1.contains("'sometimes' is not one of the choices"));
        assert_eq!(lines[2].0, Some(8));
        assert_eq!(lines[2].1, "'url' is required");
    }

    #[test]
    fn any_setting_comes_from_its_variable() {
        let env = |k: &str| match k {
            "SCIM_BRIDGE_POOL_SIZE" => Some("3".to_string()),
            "SCIM_BRIDGE_OUTBOX_MAX_ATTEMPTS" => Some("4".to_string()),
            "SCIM_BRIDGE_MAX_RESULTS" => Some("50".to_string()),
            "SCIM_BRIDGE_TRUSTED_PROXIES" => Some("10.0.0.1, 10.0.0.2".to_string()),
            "SCIM_BRIDGE_GROUP_PATCH_RETURNS_RESOURCE" => Some("true".to_string()),
            "SCIM_BRIDGE_LISTEN" => Some("0.0.0.0:9000".to_string()),
            "SCIM_BRIDGE_CONNECTOR" => {
                Some("[{name = \"w\", kind = \"webhook\", url = \"http://w\"}]".to_string())
            }
            "DATABASE_URL" => Some("sqlite://other.db".to_string()),
            _ => None,
        };
        let (got, problems, _) = load(Some("pool_size = 9\nlisten = \"127.0.0.1:1\"\n"), &env);
        assert!(problems.is_empty(), "{problems:?}");
        let s = got.expect("settings");
        assert_eq!(s.pool_size, 3);
        assert_eq!(s.outbox_max_attempts, 4);
        assert_eq!(s.max_results, 50);
        assert_eq!(s.trusted_proxies, vec!["10.0.0.1", "10.0.0.2"]);
        assert!(s.group_patch_returns_resource);
        assert_eq!(s.listen, "0.0.0.0:9000");
        assert_eq!(s.connectors.len(), 1);
        assert_eq!(s.database_url, "sqlite://other.db");
    }

    #[test]
    fn a_bad_variable_is_named_and_overrides_a_bad_file_value() {
        let env = |k: &str| (k == "SCIM_BRIDGE_POOL_SIZE").then(|| "many".to_string());
        let (_, got, _) = load(Some("workers = \"x\"\n"), &env);
        let problems = got;
        assert_eq!(problems.len(), 2);
        assert_eq!(
            problems[1].to_string(),
            "SCIM_BRIDGE_POOL_SIZE: expected a whole number, 0 or more, found text"
        );
        let env = |k: &str| (k == "SCIM_BRIDGE_WORKERS").then(|| "2".to_string());
        let (got, problems, _) = load(Some("workers = \"x\"\n"), &env);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(got.expect("the variable wins").workers, 2);
    }

    #[test]
    fn a_syntax_error_is_one_problem_without_the_line_text() {
        let (_, got, _) = load(Some("a = 1\ntoken = \"s3cret\" x\n"), &|_| None);
        let problems = got;
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line(), Some(2));
        assert!(!problems[0].to_string().contains("s3cret"));
    }
}
