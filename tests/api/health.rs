//! /healthz and /readyz: no token; ready while the database answers and is migrated, with
//! failing connectors listed but not making the bridge unready.

use diesel::prelude::*;
use serde_json::Value;

use crate::helpers::*;

/// Forgets the newest migration, as a database left behind by an older bridge would be.
fn forget_newest_migration(db: &TestDb) {
    let sql = "DELETE FROM __diesel_schema_migrations WHERE version = \
               (SELECT MAX(version) FROM __diesel_schema_migrations)";
    let url = db.url();
    let n = match url.strip_prefix("sqlite://") {
        Some(path) => {
            let mut c = diesel::SqliteConnection::establish(path).expect("sqlite");
            diesel::sql_query(sql).execute(&mut c)
        }
        None => {
            let mut c = diesel::PgConnection::establish(&url).expect("postgres");
            diesel::sql_query(sql).execute(&mut c)
        }
    };
    assert_eq!(n.expect("delete"), 1);
}

crate::both_databases! {
    async fn health_answers_without_a_token_and_readiness_follows_the_database(app) {
        let anon = reqwest::Client::new();
        let live = anon.get(format!("http://127.0.0.1:{}/healthz", app.port)).send().await.expect("healthz");
        assert_eq!(live.status(), 200);
        let ready = anon.get(format!("http://127.0.0.1:{}/readyz", app.port)).send().await.expect("readyz");
        assert_eq!(ready.status(), 200);
        let body: Value = ready.json().await.expect("json");
        assert_eq!(body["status"], "ready");
        assert_eq!(body["failingConnectors"], 0);

        forget_newest_migration(&app.db);
        let unready = anon.get(format!("http://127.0.0.1:{}/readyz", app.port)).send().await.expect("readyz");
        assert_eq!(unready.status(), 503);
        let body: Value = unready.json().await.expect("json");
        assert_eq!(body["status"], "unready");
        assert!(body["reason"].as_str().is_some_and(|r| r.contains("not applied")), "{body}");
        // Liveness is not readiness: the process still answers.
        let live = anon.get(format!("http://127.0.0.1:{}/healthz", app.port)).send().await.expect("healthz");
        assert_eq!(live.status(), 200);
    }
}
