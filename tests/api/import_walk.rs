//! Okta's full import: `startIndex` pages of 100 walked from the start, each asking for
//! the one after the last. A page that starts where the last one ended seeks from its last
//! key, and totalResults is counted once until a write; both must give exactly what a
//! fresh offset query gives, writes or not.

use serde_json::{json, Value};

use crate::both_databases;
use crate::helpers::{json as body_json, user, TestApp};

async fn bulk_users(app: &TestApp, prefix: &str, n: usize) {
    let ops: Vec<Value> = (0..n)
        .map(|i| {
            json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                   "data": user(&format!("{prefix}{i:04}@example.com"))})
        })
        .collect();
    let res = app
        .post(
            "/Bulk",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}),
        )
        .await;
    assert_eq!(res.status(), 200);
}

/// One page: (totalResults, ids).
async fn page(app: &TestApp, query: &str) -> (u64, Vec<String>) {
    let res = app.get(&format!("/Users?{query}")).await;
    assert_eq!(res.status(), 200, "{query}");
    let body = body_json(res).await;
    let ids = body["Resources"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|u| u["id"].as_str().expect("id").to_string())
                .collect()
        })
        .unwrap_or_default();
    (body["totalResults"].as_u64().expect("totalResults"), ids)
}

/// Walks the collection as Okta does; every page's total and the ids in order.
async fn walk(app: &TestApp, filter: &str) -> (Vec<u64>, Vec<String>) {
    let (mut totals, mut ids) = (Vec::new(), Vec::new());
    let mut start = 1;
    loop {
        let (total, got) = page(app, &format!("{filter}startIndex={start}&count=100")).await;
        totals.push(total);
        if got.is_empty() {
            break;
        }
        start += got.len();
        ids.extend(got);
        if start as u64 > total {
            break;
        }
    }
    (totals, ids)
}

both_databases! {
    async fn an_okta_import_walk_reaches_each_user_once_with_the_exact_total_on_every_page(app) {
        bulk_users(&app, "walk", 250).await;
        let (_, all) = page(&app, "startIndex=1&count=1000").await;
        assert_eq!(all.len(), 250);
        for _ in 0..2 {
            // The second walk is served from the remembered boundaries and total.
            let (totals, ids) = walk(&app, "").await;
            assert_eq!(ids, all, "each user once, in the list's order");
            assert!(totals.iter().all(|t| *t == 250), "{totals:?}");
        }
        // A filtered walk remembers its own boundaries.
        let (totals, ids) = walk(&app, "filter=userName%20sw%20%22walk01%22&").await;
        assert_eq!(ids.len(), 100);
        assert!(totals.iter().all(|t| *t == 100), "{totals:?}");
    }

    async fn a_write_between_two_pages_gives_what_a_fresh_offset_query_gives(app) {
        bulk_users(&app, "shift", 250).await;
        // Pages 1 and 2 leave their boundaries behind.
        page(&app, "startIndex=1&count=100").await;
        page(&app, "startIndex=101&count=100").await;
        // A user before the boundary goes, and one is added at the end.
        let (_, all) = page(&app, "startIndex=1&count=1000").await;
        assert_eq!(app.delete(&format!("/Users/{}", all[5])).await.status(), 204);
        app.create_user("latecomer@example.com").await;
        let (_, fresh) = page(&app, "startIndex=1&count=1000").await;
        let (total, next) = page(&app, "startIndex=101&count=100").await;
        assert_eq!(total, 250, "one gone, one added");
        assert_eq!(next, fresh[100..200].to_vec(), "the offset as it stands now");
        let (total, last) = page(&app, "startIndex=201&count=100").await;
        assert_eq!(total, 250);
        assert_eq!(last, fresh[200..].to_vec());
    }

    async fn a_walk_while_users_are_created_in_parallel_misses_none_that_were_there_before(app) {
        bulk_users(&app, "base", 300).await;
        let (_, before) = page(&app, "startIndex=1&count=1000").await;
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (client, base, token) = (app.client.clone(), app.base.clone(), app.token.clone());
                tokio::spawn(async move {
                    for i in 0..25 {
                        let res = client
                            .post(format!("{base}/Users"))
                            .bearer_auth(&token)
                            .header("Content-Type", "application/scim+json")
                            .json(&user(&format!("racer{w}-{i}@example.com")))
                            .send()
                            .await
                            .expect("sent");
                        assert_eq!(res.status(), 201);
                    }
                })
            })
            .collect();
        let (totals, walked) = walk(&app, "").await;
        for w in writers {
            w.await.expect("writer");
        }
        let seen: std::collections::HashSet<&String> = walked.iter().collect();
        assert!(before.iter().all(|id| seen.contains(id)), "a user that was there all along was missed");
        // (A user created earlier but committed later lands before pages already read: an
        // offset walk may then see a user twice, which RFC 7644 allows; never miss one.)
        assert!(totals.windows(2).all(|w| w[0] <= w[1]), "totals only grow: {totals:?}");
        let (total, _) = page(&app, "startIndex=1&count=1").await;
        assert_eq!(total, 400, "exact once the writes are done");
    }
}
