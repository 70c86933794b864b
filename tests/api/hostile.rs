//! Hostile input, as an attacker or a careless client sends it: U+0000, overlong indexed
//! values, blank names, a group in itself, names that differ only as Unicode allows, bulk
//! references that prefix each other. Each answers a SCIM error, never a 500, on both
//! databases.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_databases;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

both_databases! {
    async fn u0000_in_any_string_is_refused_and_in_a_filter_an_id_or_a_cursor_is_never_a_500(app) {
        let mut u = user("nul@example.com");
        u["name"]["givenName"] = json!("Bar\u{0}bara");
        assert_scim_error(app.post("/Users", u).await, 400, Some("invalidValue")).await;
        assert_scim_error(app.post("/Users", user("nul\u{0}@example.com")).await, 400, Some("invalidValue")).await;
        let id = app.create_user("clean@example.com").await;
        let res = app.send(Method::PATCH, &format!("/Users/{id}"), Some(patch(json!([{"op": "add", "path": "nickName", "value": "x\u{0}"}])))).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
        // In a filter, escaped or raw; in an id; in a cursor.
        for filter in ["userName eq \"a\\u0000b\"", "title eq \"a\u{0}b\""] {
            let res = app.request(Method::GET, "/Users").query(&[("filter", filter)]).send().await.expect("sent");
            assert_scim_error(res, 400, Some("invalidFilter")).await;
        }
        assert_scim_error(app.get("/Users/abc%00def").await, 404, None).await;
        use base64::Engine;
        let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("2026-01-01T00:00:00.000Z\n\u{0}");
        let res = app.request(Method::GET, "/Users").query(&[("cursor", cursor.as_str())]).send().await.expect("sent");
        assert_scim_error(res, 400, Some("invalidCursor")).await;
        // And a filter on the JSON document still works for everyone.
        let res = app.request(Method::GET, "/Users").query(&[("filter", "name.givenName eq \"Barbara\"")]).send().await.expect("sent");
        assert_eq!(json(res).await["totalResults"], 1);
    }

    async fn indexed_values_longer_than_the_limit_are_400_not_500(app) {
        let long: String = (0..3000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let wide: String = "é".repeat(600);
        for name in [long.as_str(), wide.as_str()] {
            assert_scim_error(app.post("/Users", user(name)).await, 400, Some("invalidValue")).await;
        }
        let mut u = user("ext@example.com");
        u["externalId"] = json!(long);
        assert_scim_error(app.post("/Users", u).await, 400, Some("invalidValue")).await;
        let res = app.post("/Groups", json!({"schemas": [GROUP], "displayName": long})).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
        let fits = "a".repeat(1024);
        assert_eq!(app.post("/Users", user(&fits)).await.status(), 201);
    }

    async fn blank_names_and_a_group_in_itself_are_refused(app) {
        for blank in ["", "   "] {
            assert_scim_error(app.post("/Users", user(blank)).await, 400, Some("invalidValue")).await;
            let res = app.post("/Groups", json!({"schemas": [GROUP], "displayName": blank})).await;
            assert_scim_error(res, 400, Some("invalidValue")).await;
        }
        let gid = app.create_group("Selfish", &[]).await;
        let res = app.send(Method::PATCH, &format!("/Groups/{gid}"), Some(patch(json!([{"op": "add", "path": "members", "value": [{"value": gid}]}])))).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
        let res = app.put(&format!("/Groups/{gid}"), json!({"schemas": [GROUP], "displayName": "Selfish", "members": [{"value": gid}]})).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
        let group = json(app.get(&format!("/Groups/{gid}")).await).await;
        assert!(group.get("members").is_none_or(|m| m == &json!([])), "{group}");
    }

    async fn user_names_that_fold_alike_are_one_name_even_when_created_at_once(app) {
        let app = Arc::new(app);
        let variants = ["STRASSE", "straße", "Strasse", "strasse", "STRAßE", "sTrAsSe", "STRASSE ", "strasse"];
        let tasks: Vec<_> = variants.iter().map(|v| {
            let (app, v) = (app.clone(), v.to_string());
            tokio::spawn(async move { app.post("/Users", user(&v)).await.status().as_u16() })
        }).collect();
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.expect("joined"));
        }
        // "STRASSE " (with its space) is another name; the seven others are one.
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 2, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 6, "{statuses:?}");
        for (a, b) in [("ΟΔΟΣ", "οδος"), ("caf\u{e9}@example.com", "cafe\u{301}@example.com")] {
            assert_eq!(app.post("/Users", user(a)).await.status(), 201);
            assert_scim_error(app.post("/Users", user(b)).await, 409, Some("uniqueness")).await;
        }
        let res = app.request(Method::GET, "/Users").query(&[("filter", "userName eq \"Straße\"")]).send().await.expect("sent");
        assert_eq!(json(res).await["totalResults"], 1, "an eq filter folds as uniqueness does");
        let res = app.request(Method::GET, "/Users").query(&[("filter", "userName eq \"CAFE\u{301}@EXAMPLE.COM\"")]).send().await.expect("sent");
        assert_eq!(json(res).await["totalResults"], 1);
    }

    async fn bulk_references_are_substituted_whole_so_u1_is_not_the_start_of_u10(app) {
        // The old substitution depended on the order ids came out of a map: three rounds.
        for round in 0..3 {
            let mut ops = Vec::new();
            for i in 1..=12 {
                ops.push(json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                                "data": {"schemas": [USER], "userName": format!("bulk{round}-{i}@example.com")}}));
            }
            for i in 1..=12 {
                ops.push(json!({"method": "PATCH", "path": format!("/Users/bulkId:u{i}"),
                                "data": {"Operations": [{"op": "replace", "path": "title", "value": format!("T{i}")}]}}));
            }
            let res = app.send(Method::POST, "/Bulk", Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}))).await;
            assert_eq!(res.status(), 200);
            let body = json(res).await;
            let statuses: Vec<&str> = body["Operations"].as_array().expect("ops").iter().map(|o| o["status"].as_str().expect("status")).collect();
            assert!(statuses[12..].iter().all(|s| *s == "200"), "{statuses:?}");
            for i in [1, 10, 12] {
                let res = app.request(Method::GET, "/Users").query(&[("filter", format!("userName eq \"bulk{round}-{i}@example.com\""))]).send().await.expect("sent");
                assert_eq!(json(res).await["Resources"][0]["title"], format!("T{i}"));
            }
        }
    }
}

mod slow_and_forged {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    use crate::helpers::*;

    /// Sends headers and half a body, then nothing: the answer must be 408, soon.
    fn stall(port: u16) -> (String, Duration) {
        stall_at(port, &format!("POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\
                   Content-Type: application/scim+json\r\nContent-Length: 200\r\n\r\n{{\"schemas\":"))
    }

    /// Sends `head` (headers and the start of a body) and waits for the answer.
    fn stall_at(port: u16, head: &str) -> (String, Duration) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let started = Instant::now();
        s.write_all(head.as_bytes()).expect("write");
        let mut buf = [0u8; 2048];
        let n = s.read(&mut buf).unwrap_or(0);
        (
            String::from_utf8_lossy(&buf[..n]).to_string(),
            started.elapsed(),
        )
    }

    async fn stalled_body_is_cut_off_with_408_then(db: Db) {
        const ADMIN_TOKEN: &str = "stalling-admin-token-0123456789";
        let app = spawn_tweaked(db, |s| {
            s.body_timeout_secs = 1;
            s.admin_token = Some(scim_bridge::config::Secret::new(ADMIN_TOKEN));
        })
        .await;
        let port = app.port;
        let (answer, took) = tokio::task::spawn_blocking(move || stall(port))
            .await
            .expect("joined");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.contains("urn:ietf:params:scim:api:messages:2.0:Error"),
            "{answer}"
        );
        assert!(took < Duration::from_secs(10), "{took:?}");
        assert_eq!(
            app.get("/Users").await.status(),
            200,
            "the server still answers"
        );
        // The endpoints anyone may call before any credential is checked are cut off too,
        // and so are the admin API's bodies.
        let admin = format!("POST /admin/v1/credentials/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"name\":");
        for head in [
            "POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\ngrant_type=",
            "POST /callbacks/entsso/none HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"trackingId\":",
            admin.as_str(),
        ] {
            let head = head.to_string();
            let (answer, took) = tokio::task::spawn_blocking(move || stall_at(port, &head))
                .await
                .expect("joined");
            assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
            assert!(took < Duration::from_secs(10), "{took:?}");
        }
    }

    async fn forwarding_headers_are_believed_only_from_a_trusted_proxy_then(db: Db) {
        let forged = [
            ("X-Forwarded-Host", "evil.example"),
            ("Forwarded", "host=evil.example;proto=https"),
        ];
        let app = spawn_tweaked(db, |_| {}).await;
        let mut req = app
            .request(reqwest::Method::POST, "/Users")
            .header("Content-Type", "application/scim+json")
            .body(user("forged@example.com").to_string());
        for (k, v) in forged {
            req = req.header(k, v);
        }
        let res = req.send().await.expect("sent");
        assert_eq!(res.status(), 201);
        let location = res
            .headers()
            .get("location")
            .expect("location")
            .to_str()
            .expect("text")
            .to_string();
        let body = json(res).await;
        assert!(
            location.starts_with(&format!("http://127.0.0.1:{}/scim/v2/Users/", app.port)),
            "{location}"
        );
        assert_eq!(body["meta"]["location"], location.as_str());
        let proxied = spawn_tweaked(db, |s| s.trusted_proxies = vec!["127.0.0.1".into()]).await;
        let res = proxied
            .request(reqwest::Method::GET, "/ServiceProviderConfig")
            .header("X-Forwarded-Host", "scim.example.com")
            .header("X-Forwarded-Proto", "https")
            .send()
            .await
            .expect("sent");
        let body = json(res).await;
        assert_eq!(
            body["meta"]["location"], "https://scim.example.com/scim/v2/ServiceProviderConfig",
            "{body}"
        );
    }

    macro_rules! on_both {
        ($($name:ident => $f:ident;)*) => {
            $(
                mod $name {
                    use super::*;
                    fn on_sqlite() {
                        $crate::helpers::block_on($f(Db::Sqlite));
                    }
                    fn on_postgres() {
                        $crate::helpers::block_on($f(Db::Postgres));
                    }
                    $crate::register!(on_sqlite, $crate::helpers::Needs::Nothing);
                    $crate::register!(on_postgres, $crate::helpers::Needs::Postgres);
                }
            )*
        };
    }

    on_both! {
        a_stalled_body_is_cut_off_with_408 => stalled_body_is_cut_off_with_408_then;
        forwarding_headers_are_believed_only_from_a_trusted_proxy => forwarding_headers_are_believed_only_from_a_trusted_proxy_then;
    }
}

/// Point 20: a list page bounded in bytes.
mod page_budget {
    use crate::helpers::*;
    use serde_json::json;

    /// Ids of the resources of a list response.
    fn page_ids(page: &serde_json::Value) -> Vec<String> {
        page["Resources"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|r| r["id"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    crate::each_database! {
        async fn a_page_too_large_in_bytes_holds_fewer_resources_and_paging_on_reaches_each_once(db) {
            // Room for about three of these users a page, whatever count asks for.
            let app = spawn_tweaked(db, |s| s.max_page_bytes = 3 * 1300).await;
            let bio = "x".repeat(1000);
            for i in 0..10 {
                let res = app
                    .post("/Users", json!({"schemas": [USER], "userName": format!("u{i}"), "nickName": bio}))
                    .await;
                assert_eq!(res.status(), 201);
            }
            let first = json(app.get("/Users?count=10").await).await;
            assert_eq!(first["totalResults"], 10);
            let per_page = first["itemsPerPage"].as_u64().expect("itemsPerPage");
            assert!((1..10).contains(&per_page), "a smaller page: {first}");
            assert_eq!(page_ids(&first).len() as u64, per_page);

            // By startIndex, as Okta and Entra page: each user exactly once.
            let mut seen = Vec::new();
            let mut start = 1;
            while start <= 10 {
                let page = json(app.get(&format!("/Users?count=10&startIndex={start}")).await).await;
                let ids = page_ids(&page);
                assert!(!ids.is_empty(), "page at {start}: {page}");
                start += ids.len();
                seen.extend(ids);
            }
            let unique: std::collections::BTreeSet<_> = seen.iter().cloned().collect();
            assert_eq!((seen.len(), unique.len()), (10, 10));

            // By cursor: the same.
            let mut seen = Vec::new();
            let mut cursor = String::new();
            loop {
                let page = json(app.get(&format!("/Users?count=10&cursor={cursor}")).await).await;
                seen.extend(page_ids(&page));
                match page["nextCursor"].as_str() {
                    Some(next) => cursor = next.to_string(),
                    None => break,
                }
            }
            let unique: std::collections::BTreeSet<_> = seen.iter().cloned().collect();
            assert_eq!((seen.len(), unique.len()), (10, 10));
        }
    }
}
