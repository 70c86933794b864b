//! The property that keeps the SQL translation honest: on generated resources and
//! generated filters, the database and the in-memory evaluator give the same answer.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use scim_bridge::bridge::schemas::load_registry;
use scim_bridge::scim::filter::{Evaluator, Filter};

use crate::helpers::*;

const EXT: &str = "urn:example:params:scim:schemas:extension:prop:2.0:User";

fn write_schemas(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("schemas")).expect("mkdir");
    std::fs::create_dir_all(dir.join("resource-types")).expect("mkdir");
    let attr = |name: &str, kind: &str, multi: bool| {
        json!({"name": name, "type": kind, "multiValued": multi, "required": false, "caseExact": false,
               "mutability": "readWrite", "returned": "default", "uniqueness": "none"})
    };
    std::fs::write(
        dir.join("schemas/prop.json"),
        json!({"id": EXT, "name": "Prop", "attributes": [
            attr("level", "integer", false), attr("score", "decimal", false),
            attr("hired", "dateTime", false), attr("tags", "string", true), attr("code", "string", false)
        ]})
        .to_string(),
    )
    .expect("write");
    let mut code = attr("code", "string", false);
    code["caseExact"] = json!(true);
    std::fs::write(
        dir.join("resource-types/User.json"),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"], "id": "User", "name": "User",
               "endpoint": "/Users", "schema": USER,
               "schemaExtensions": [{"schema": ENTERPRISE, "required": false}, {"schema": EXT, "required": false}]})
        .to_string(),
    )
    .expect("write");
}

const WORDS: &[&str] = &["alpha", "Beta", "gamma", "DELTA", "al", "be", "x_y", "50%"];
const TITLES: &[&str] = &["Engineer", "engineer", "Manager", "Intern"];
const TYPES: &[&str] = &["work", "home", "other"];
const DATES: &[&str] = &[
    "2020-01-01T00:00:00Z",
    "2021-06-15T12:30:00+02:00",
    "2019-12-31T23:59:59.500Z",
];

fn gen_user(rng: &mut StdRng, i: usize) -> Value {
    let mut u = json!({"schemas": [USER, EXT], "userName": format!("{}{i}@ex.com", WORDS.choose(rng).expect("w"))});
    if rng.gen_bool(0.7) {
        u["title"] = json!(TITLES.choose(rng).expect("t"));
    }
    if rng.gen_bool(0.7) {
        u["active"] = json!(rng.gen_bool(0.5));
    }
    if rng.gen_bool(0.8) {
        u["name"] = json!({"familyName": WORDS.choose(rng).expect("w")});
        if rng.gen_bool(0.5) {
            u["name"]["givenName"] = json!(WORDS.choose(rng).expect("w"));
        }
    }
    let n = rng.gen_range(0..3);
    let emails: Vec<Value> = (0..n)
        .map(|k| json!({"value": format!("{}{k}@{}.org", WORDS.choose(rng).expect("w"), WORDS.choose(rng).expect("w")),
                        "type": TYPES.choose(rng).expect("t"), "primary": k == 0}))
        .collect();
    if !emails.is_empty() {
        u["emails"] = json!(emails);
    }
    let mut ext = serde_json::Map::new();
    if rng.gen_bool(0.7) {
        ext.insert("level".into(), json!(rng.gen_range(-2..5)));
    }
    if rng.gen_bool(0.6) {
        ext.insert("score".into(), json!(rng.gen_range(0..40) as f64 / 4.0));
    }
    if rng.gen_bool(0.6) {
        ext.insert("hired".into(), json!(DATES.choose(rng).expect("d")));
    }
    if rng.gen_bool(0.6) {
        ext.insert("code".into(), json!(WORDS.choose(rng).expect("w")));
    }
    if rng.gen_bool(0.6) {
        let n = rng.gen_range(1..3);
        let tags: Vec<&str> = WORDS.choose_multiple(rng, n).copied().collect();
        ext.insert("tags".into(), json!(tags));
    }
    if !ext.is_empty() {
        u[EXT] = Value::Object(ext);
    }
    u
}

fn quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

fn gen_leaf(rng: &mut StdRng) -> String {
    let string_op = || ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];
    let word = |rng: &mut StdRng| {
        let w = WORDS.choose(rng).expect("w");
        // Sometimes a prefix, sometimes changed case.
        match rng.gen_range(0..3) {
            0 => w.to_string(),
            1 => w.to_uppercase(),
            _ => w.chars().take(2).collect(),
        }
    };
    match rng.gen_range(0..14) {
        0 => format!(
            "userName {} {}",
            string_op().choose(rng).expect("op"),
            quote(&word(rng))
        ),
        1 => format!(
            "title {} {}",
            string_op().choose(rng).expect("op"),
            quote(TITLES.choose(rng).expect("t"))
        ),
        2 => format!(
            "name.familyName {} {}",
            string_op().choose(rng).expect("op"),
            quote(&word(rng))
        ),
        3 => format!("active eq {}", rng.gen_bool(0.5)),
        4 => format!(
            "{} pr",
            [
                "title",
                "name",
                "name.givenName",
                "emails",
                "active",
                format!("{EXT}:tags").as_str()
            ]
            .choose(rng)
            .expect("a")
        ),
        5 => format!(
            "emails.value {} {}",
            string_op().choose(rng).expect("op"),
            quote(&word(rng))
        ),
        6 => format!(
            "emails[type eq {} and value {} {}]",
            quote(TYPES.choose(rng).expect("t")),
            string_op().choose(rng).expect("op"),
            quote(&word(rng))
        ),
        7 => format!(
            "emails[not (primary eq true) or type eq {}]",
            quote(TYPES.choose(rng).expect("t"))
        ),
        8 => format!(
            "{EXT}:level {} {}",
            ["eq", "ne", "gt", "ge", "lt", "le"]
                .choose(rng)
                .expect("op"),
            rng.gen_range(-2..5)
        ),
        9 => format!(
            "{EXT}:score {} {}",
            ["eq", "gt", "lt", "le"].choose(rng).expect("op"),
            rng.gen_range(0..40) as f64 / 4.0
        ),
        10 => format!(
            "{EXT}:hired {} {}",
            ["eq", "gt", "ge", "lt"].choose(rng).expect("op"),
            quote(DATES.choose(rng).expect("d"))
        ),
        11 => format!(
            "{EXT}:tags {} {}",
            string_op().choose(rng).expect("op"),
            quote(&word(rng))
        ),
        12 => format!(
            "{EXT}:code {} {}",
            string_op().choose(rng).expect("op"),
            quote(&word(rng))
        ),
        _ => format!(
            "{} eq null",
            ["title", "name.givenName", format!("{EXT}:level").as_str()]
                .choose(rng)
                .expect("a")
        ),
    }
}

fn gen_filter(rng: &mut StdRng, depth: u32) -> String {
    if depth == 0 || rng.gen_bool(0.4) {
        return gen_leaf(rng);
    }
    match rng.gen_range(0..3) {
        0 => format!(
            "({} and {})",
            gen_filter(rng, depth - 1),
            gen_filter(rng, depth - 1)
        ),
        1 => format!(
            "({} or {})",
            gen_filter(rng, depth - 1),
            gen_filter(rng, depth - 1)
        ),
        _ => format!("not ({})", gen_filter(rng, depth - 1)),
    }
}

async fn database_and_evaluator_agree(kind: Db) {
    let dir = tempfile::tempdir().expect("dir");
    write_schemas(dir.path());
    let first = spawn_app(kind).await;
    let mut settings = first.settings.clone();
    let db = first.stop().await;
    settings.schemas_dir = Some(dir.path().to_path_buf());
    let app = spawn_with(db, settings).await;
    let reg = load_registry(Some(dir.path())).expect("registry");
    let rt = reg.resource_type("User").expect("User");
    let eval = Evaluator { reg: &reg, rt };

    let mut rng = StdRng::seed_from_u64(7_643);
    for i in 0..40 {
        let res = app.post("/Users", gen_user(&mut rng, i)).await;
        assert_eq!(res.status(), 201);
    }
    let all = json(app.get("/Users?count=1000").await).await["Resources"]
        .as_array()
        .expect("all")
        .clone();
    let mut checked = 0;
    let mut discerning = 0;
    for _ in 0..250 {
        let text = gen_filter(&mut rng, 3);
        let filter = Filter::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let expected: Result<BTreeSet<String>, _> = all
            .iter()
            .map(|u| {
                eval.matches(&filter, u)
                    .map(|m| (m, u["id"].as_str().expect("id").to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| {
                v.into_iter()
                    .filter(|(m, _)| *m)
                    .map(|(_, id)| id)
                    .collect()
            });
        let enc: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
        let res = app.get(&format!("/Users?count=1000&filter={enc}")).await;
        match expected {
            Ok(want) => {
                assert_eq!(res.status(), 200, "{text}");
                let got: BTreeSet<String> = json(res).await["Resources"]
                    .as_array()
                    .expect("list")
                    .iter()
                    .map(|u| u["id"].as_str().expect("id").to_string())
                    .collect();
                assert_eq!(got, want, "filter {text}");
                checked += 1;
                if !got.is_empty() && got.len() < all.len() {
                    discerning += 1;
                }
            }
            Err(e) => assert_eq!(
                res.status(),
                400,
                "{text}: the evaluator refused it ({e}), so must the database"
            ),
        }
    }
    assert!(
        checked > 150,
        "most generated filters are valid ({checked})"
    );
    assert!(
        discerning > 80,
        "most filters match some resources and not others ({discerning})"
    );
    eprintln!("{checked} filters agreed, {discerning} of them matching some but not all");
}

crate::each_database! {
    async fn the_database_and_the_evaluator_agree_on_generated_filters(db) {
        database_and_evaluator_agree(db).await;
    }
}

crate::each_database! {
    async fn the_evaluator_reads_id_as_the_database_does(db) {
        let app = spawn_app(db).await;
        let reg = load_registry(None).expect("registry");
        let rt = reg.resource_type("User").expect("User");
        let eval = Evaluator { reg: &reg, rt };
        for name in ["ada", "bob"] {
            let res = app.post("/Users", json!({"schemas": [USER], "userName": name})).await;
            assert_eq!(res.status(), 201);
        }
        let all = json(app.get("/Users").await).await["Resources"]
            .as_array()
            .expect("all")
            .clone();
        let first = all[0]["id"].as_str().expect("id").to_string();
        for text in [
            "id pr".to_string(),
            format!("id eq {}", quote(&first)),
            format!("id eq {}", quote(&first.to_uppercase())),
            format!("id ne {}", quote(&first)),
        ] {
            let filter = Filter::parse(&text).expect("parses");
            let want: BTreeSet<String> = all
                .iter()
                .filter(|u| eval.matches(&filter, u).expect("the evaluator reads id"))
                .map(|u| u["id"].as_str().expect("id").to_string())
                .collect();
            let enc: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
            let got: BTreeSet<String> = json(app.get(&format!("/Users?filter={enc}")).await).await
                ["Resources"]
                .as_array()
                .expect("list")
                .iter()
                .map(|u| u["id"].as_str().expect("id").to_string())
                .collect();
            assert_eq!(got, want, "{text}");
        }
    }
}
