//! The SQL translation of filters against the in-memory evaluator: a filter built from the
//! fuzzer's bytes selects the same users from SQLite as the evaluator selects from the
//! same users in memory, or both refuse it.
#![no_main]

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use scim_bridge::bridge::Resources;
use scim_bridge::clock::SystemClock;
use scim_bridge::config::Settings;
use scim_bridge::scim::filter::{Evaluator, Filter};
use scim_bridge::scim::list::ListQuery;
use scim_bridge::scim::resource::Projection;
use scim_bridge::startup::Core;
use scim_bridge_fuzz::{registry, resource_type, Choices, ENTERPRISE};
use serde_json::{json, Value};

const WORDS: &[&str] = &[
    "alpha", "Beta", "gamma", "DELTA", "al", "be", "x_y", "50%", "straße", "STRASSE", "é", "",
];
const TITLES: &[&str] = &["Engineer", "engineer", "Manager", "Intern"];
const TYPES: &[&str] = &["work", "home", "other"];
const DATES: &[&str] = &[
    "2020-01-01T00:00:00Z",
    "2021-06-15T12:30:00+02:00",
    "2019-12-31T23:59:59.500Z",
];

struct World {
    _dir: tempfile::TempDir,
    resources: Arc<Resources>,
    all: Vec<Value>,
}

/// A small deterministic generator, so every run holds the same users.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }
    fn flip(&mut self) -> bool {
        self.below(2) == 0
    }
}

fn user(g: &mut Lcg, i: usize) -> Value {
    let mut u = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                       "userName": format!("{}{i}@ex.com", g.pick(WORDS))});
    if g.flip() {
        u["title"] = json!(g.pick(TITLES));
    }
    if g.flip() {
        u["active"] = json!(g.flip());
    }
    if g.flip() {
        u["name"] = json!({"familyName": g.pick(WORDS), "givenName": g.pick(WORDS)});
    }
    if g.flip() {
        u["externalId"] = json!(format!("{}-{i}", g.pick(WORDS)));
    }
    let n = g.below(3);
    if n > 0 {
        u["emails"] = json!((0..n)
            .map(
                |k| json!({"value": format!("{}{k}@{}.org", g.pick(WORDS), g.pick(WORDS)),
                            "type": g.pick(TYPES), "primary": k == 0})
            )
            .collect::<Vec<_>>());
    }
    if g.flip() {
        u[ENTERPRISE] = json!({"employeeNumber": format!("{}", g.below(20)),
                               "department": g.pick(WORDS),
                               "manager": {"value": format!("m{}", g.below(3))}});
    }
    if g.flip() {
        u["nickName"] = json!(g.pick(DATES));
    }
    u
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let settings = Settings {
            database_url: format!("sqlite://{}", dir.path().join("fuzz.db").display()),
            ..Settings::default()
        };
        let core = Core::build(&settings, Arc::new(SystemClock)).expect("the bridge starts");
        let mut g = Lcg(7643);
        for i in 0..48 {
            let _ = core
                .resources
                .create("User", user(&mut g, i), "", &Projection::default());
        }
        let query = ListQuery {
            filter: None,
            start_index: 1,
            count: 1000,
            projection: Projection::default(),
            sort: None,
            cursor: None,
        };
        let all = core.resources.list("User", &query, "").expect("list")["Resources"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        World {
            _dir: dir,
            resources: core.resources.clone(),
            all,
        }
    })
}

fn quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

const PATHS: &[&str] = &[
    "userName",
    "title",
    "name.familyName",
    "name.givenName",
    "externalId",
    "nickName",
    "emails.value",
    "emails.type",
    "emails.primary",
    "active",
    "id",
    "meta.created",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "emails",
    "name",
    "NAME.FAMILYNAME",
    "UserName",
];
const OPS: &[&str] = &["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];

fn value(c: &mut Choices) -> String {
    match c.below(8) {
        0 => "true".into(),
        1 => "false".into(),
        2 => "null".into(),
        3 => format!("{}", c.below(25) as i64 - 3),
        4 => quote(c.pick(DATES)),
        5 => quote(c.pick(TITLES)),
        6 => quote(c.pick(TYPES)),
        _ => {
            let w = c.pick(WORDS);
            quote(&match c.below(3) {
                0 => w.to_string(),
                1 => w.to_uppercase(),
                _ => w.chars().take(2).collect(),
            })
        }
    }
}

fn leaf(c: &mut Choices) -> String {
    let path = c.pick(PATHS);
    match c.below(6) {
        0 => format!("{path} pr"),
        1 => format!(
            "emails[type eq {} and value {} {}]",
            quote(c.pick(TYPES)),
            c.pick(OPS),
            value(c)
        ),
        _ => format!("{path} {} {}", c.pick(OPS), value(c)),
    }
}

fn filter(c: &mut Choices, depth: u32) -> String {
    if depth == 0 || c.is_empty() {
        return leaf(c);
    }
    match c.below(5) {
        0 => format!("({} and {})", filter(c, depth - 1), filter(c, depth - 1)),
        1 => format!("({} or {})", filter(c, depth - 1), filter(c, depth - 1)),
        2 => format!("not ({})", filter(c, depth - 1)),
        _ => leaf(c),
    }
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let text = filter(&mut Choices::new(data), 3);
    let Ok(parsed) = Filter::parse(&text) else {
        return;
    };
    let (reg, rt) = (registry(), resource_type("User"));
    let eval = Evaluator { reg, rt };
    let expected: Result<BTreeSet<String>, _> = w
        .all
        .iter()
        .map(|u| {
            eval.matches(&parsed, u)
                .map(|m| (m, u["id"].as_str().unwrap_or("").to_string()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|v| {
            v.into_iter()
                .filter(|(m, _)| *m)
                .map(|(_, id)| id)
                .collect()
        });
    let query = ListQuery {
        filter: Some(parsed.clone()),
        start_index: 1,
        count: 1000,
        projection: Projection::default(),
        sort: None,
        cursor: None,
    };
    let got = w.resources.list("User", &query, "").map(|r| {
        r["Resources"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|u| u["id"].as_str().unwrap_or("").to_string())
                    .collect::<BTreeSet<_>>()
            })
            .unwrap_or_default()
    });
    match (expected, got) {
        (Ok(want), Ok(got)) => assert_eq!(got, want, "filter {text}"),
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("filter {text}: the evaluator accepts it, SQL refuses: {e}"),
        (Err(e), Ok(_)) => panic!("filter {text}: SQL accepts it, the evaluator refuses: {e}"),
    }
});
