//! Filters, sorting, paging by index and by cursor, projection and .search.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_databases;
use crate::helpers::{json as body_json, TestApp, ENTERPRISE, USER};

async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let res = app.get(&format!("/Users?{query}")).await;
    assert_eq!(res.status(), 200, "{query}");
    body_json(res).await["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["userName"].as_str().expect("userName").to_string())
        .collect()
}

fn enc(filter: &str) -> String {
    url::form_urlencoded::byte_serialize(filter.as_bytes()).collect()
}

async fn seed(app: &TestApp) {
    for (user, family, title, work, active, emp) in [
        (
            "ann@example.com",
            "Zed",
            Some("Engineer"),
            "ann@work.example.com",
            true,
            Some("100"),
        ),
        (
            "bob@example.org",
            "Young",
            Some("Manager"),
            "bob@work.example.org",
            false,
            None,
        ),
        (
            "cat@example.com",
            "Xu",
            None,
            "cat@work.example.com",
            true,
            Some("300"),
        ),
        (
            "dan@example.net",
            "Adams",
            Some("engineer"),
            "dan@elsewhere.net",
            true,
            None,
        ),
    ] {
        let mut u = json!({
            "schemas": [USER, ENTERPRISE], "userName": user, "externalId": user.split('@').next(),
            "name": {"givenName": "G", "familyName": family}, "active": active,
            "emails": [{"value": work, "type": "work"}, {"value": format!("home-{user}"), "type": "home"}]
        });
        if let Some(t) = title {
            u["title"] = json!(t);
        }
        if let Some(e) = emp {
            u[ENTERPRISE] = json!({"employeeNumber": e});
        }
        assert_eq!(app.post("/Users", u).await.status(), 201);
    }
}

both_databases! {
    async fn filters_cover_operators_logic_sub_attributes_and_value_paths(app) {
        seed(&app).await;
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("userName sw \"A\"", vec!["ann@example.com"]),
            ("userName ew \".com\"", vec!["ann@example.com", "cat@example.com"]),
            ("userName co \"@EXAMPLE.\"", vec!["ann@example.com", "bob@example.org", "cat@example.com", "dan@example.net"]),
            ("title eq \"engineer\"", vec!["ann@example.com", "dan@example.net"]),
            ("title pr", vec!["ann@example.com", "bob@example.org", "dan@example.net"]),
            ("not (title pr)", vec!["cat@example.com"]),
            ("title ne \"manager\"", vec!["ann@example.com", "cat@example.com", "dan@example.net"]),
            ("name.familyName gt \"X\"", vec!["ann@example.com", "bob@example.org", "cat@example.com"]),
            ("name.familyName le \"Xu\"", vec!["cat@example.com", "dan@example.net"]),
            ("active eq false", vec!["bob@example.org"]),
            ("active eq \"True\" and title pr", vec!["ann@example.com", "dan@example.net"]),
            ("emails[type eq \"work\" and value co \"@work.example.com\"]", vec!["ann@example.com", "cat@example.com"]),
            ("emails.value ew \"elsewhere.net\"", vec!["dan@example.net"]),
            ("emails co \"home-bob\"", vec!["bob@example.org"]),
            ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"300\"", vec!["cat@example.com"]),
            ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber pr or userName eq \"bob@example.org\"",
             vec!["ann@example.com", "bob@example.org", "cat@example.com"]),
            ("(title eq \"Manager\" or title eq \"Engineer\") and not (active eq false)", vec!["ann@example.com", "dan@example.net"]),
            ("externalId eq dan", vec!["dan@example.net"]),
            ("externalId eq \"DAN\"", vec![]),
            ("meta.created gt \"2000-01-01T00:00:00Z\" and meta.resourceType eq \"User\"",
             vec!["ann@example.com", "bob@example.org", "cat@example.com", "dan@example.net"]),
            ("title eq null", vec!["cat@example.com"]),
        ];
        for (filter, want) in cases {
            let mut got = ids(&app, &format!("filter={}&sortBy=userName", enc(filter))).await;
            got.sort();
            assert_eq!(got, want, "{filter}");
        }
    }

    async fn sort_by_any_attribute_in_either_order(app) {
        seed(&app).await;
        assert_eq!(ids(&app, "sortBy=name.familyName").await, vec!["dan@example.net", "cat@example.com", "bob@example.org", "ann@example.com"]);
        assert_eq!(ids(&app, "sortBy=userName&sortOrder=descending").await, vec!["dan@example.net", "cat@example.com", "bob@example.org", "ann@example.com"]);
        // Without a title last, in either order.
        let by_title = ids(&app, "sortBy=title&sortOrder=descending").await;
        assert_eq!(by_title.last().map(String::as_str), Some("cat@example.com"));
        assert_eq!(ids(&app, "sortBy=emails.value&count=1").await, vec!["ann@example.com"]);
        assert_scim_error(app.get("/Users?sortBy=nope").await, 400, Some("invalidValue")).await;
        assert_scim_error(app.get("/Users?sortBy=userName&sortOrder=sideways").await, 400, Some("invalidValue")).await;
    }

    async fn total_results_counts_every_match_whether_or_not_the_page_holds_them(app) {
        for i in 0..3 { app.create_user(&format!("tot{i}@example.com")).await; }
        let filter = "filter=userName%20sw%20%22tot%22";
        for (query, total, len) in [
            (format!("/Users?{filter}"), 3, 3),
            (format!("/Users?{filter}&count=2"), 3, 2),
            (format!("/Users?{filter}&startIndex=3"), 3, 1),
            (format!("/Users?{filter}&startIndex=10"), 3, 0),
            (format!("/Users?{filter}&count=0"), 3, 0),
            ("/Users?filter=userName%20eq%20%22tot1@example.com%22".to_string(), 1, 1),
            ("/Users?filter=userName%20eq%20%22nobody@example.com%22".to_string(), 0, 0),
        ] {
            let body = body_json(app.get(&query).await).await;
            assert_eq!(body["totalResults"], total, "{query}: {body}");
            assert_eq!(body["Resources"].as_array().map_or(0, Vec::len), len, "{query}");
        }
    }

    async fn cursor_paging_walks_every_resource_once(app) {
        for i in 0..7 { app.create_user(&format!("cur{i}@example.com")).await; }
        let mut seen = Vec::new();
        let mut cursor = String::new();
        for _ in 0..10 {
            let body = body_json(app.get(&format!("/Users?cursor={cursor}&count=3")).await).await;
            if cursor.is_empty() {
                assert_eq!(body["totalResults"], 7);
            } else {
                assert!(body.get("totalResults").is_none(), "later pages are not counted");
            }
            assert!(body.get("startIndex").is_none());
            for r in body["Resources"].as_array().expect("list") { seen.push(r["userName"].as_str().expect("u").to_string()); }
            match body.get("nextCursor").and_then(Value::as_str) {
                Some(c) => cursor = c.to_string(),
                None => break,
            }
        }
        // Pages follow creation time, then id: users made in the same millisecond may come
        // in either order, but each comes exactly once.
        let mut want: Vec<String> = (0..7).map(|i| format!("cur{i}@example.com")).collect();
        want.sort();
        seen.sort();
        assert_eq!(seen, want);
        assert_scim_error(app.get("/Users?cursor=not-a-cursor!").await, 400, Some("invalidCursor")).await;
        assert_scim_error(app.get("/Users?cursor=&startIndex=2").await, 400, Some("invalidValue")).await;
    }

    async fn a_count_above_the_maximum_is_capped(app) {
        for i in 0..3 { app.create_user(&format!("cap{i}@example.com")).await; }
        let body = body_json(app.get("/Users?count=100000").await).await;
        assert_eq!(body["itemsPerPage"], 3);
        let spc = body_json(app.get("/ServiceProviderConfig").await).await;
        assert_eq!(spc["sort"]["supported"], true);
        assert_eq!(spc["patch"]["supported"], true);
        assert_eq!(spc["pagination"]["cursor"], true);
        assert_eq!(spc["pagination"]["maxPageSize"], 1000);
    }

    async fn search_posts_filter_and_projection_per_type_and_at_the_root(app) {
        seed(&app).await;
        let g = app.create_group("Engineers", &[]).await;
        let res = app.send(Method::POST, "/Users/.search", Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "title eq \"engineer\"", "attributes": ["userName"], "sortBy": "userName", "startIndex": 1, "count": 10
        }))).await;
        assert_eq!(res.status(), 200);
        let body = body_json(res).await;
        assert_eq!(body["totalResults"], 2);
        assert_eq!(body["Resources"][0], json!({"schemas": [USER], "id": body["Resources"][0]["id"], "userName": "ann@example.com"}));
        let root = body_json(app.send(Method::POST, "/.search", Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "displayName sw \"eng\""
        }))).await).await;
        assert_eq!(root["totalResults"], 1);
        assert_eq!(root["Resources"][0]["id"], g.as_str());
        let all = body_json(app.send(Method::POST, "/.search", Some(json!({"count": 3, "startIndex": 4}))).await).await;
        assert_eq!(all["totalResults"], 5);
        assert_eq!(all["itemsPerPage"], 2);
        assert_scim_error(app.send(Method::POST, "/Users/.search", Some(json!({"filter": "userName eq"}))).await, 400, Some("invalidFilter")).await;
        assert_scim_error(app.send(Method::POST, "/Users/.search", Some(json!({"schemas": ["urn:wrong"]}))).await, 400, Some("invalidSyntax")).await;
    }

    async fn attributes_apply_to_the_answers_of_writes(app) {
        let res = app.send(Method::POST, "/Users?attributes=userName", Some(user("proj@example.com"))).await;
        assert_eq!(res.status(), 201);
        let body = body_json(res).await;
        assert!(body.get("name").is_none());
        assert!(body.get("meta").is_none());
        assert_eq!(body["userName"], "proj@example.com");
    }

    async fn multi_valued_sort_uses_the_primary_value_before_the_first(app) {
        for (name, emails) in [
            ("first-a@example.com", json!([{"value": "a@x.example", "primary": false}, {"value": "z@x.example", "primary": true}])),
            ("primary-m@example.com", json!([{"value": "m@x.example", "primary": true}])),
            ("none-b@example.com", json!([{"value": "b@x.example"}])),
        ] {
            let res = app.post("/Users", json!({"schemas": [USER], "userName": name, "emails": emails})).await;
            assert_eq!(res.status(), 201);
        }
        assert_eq!(ids(&app, "sortBy=emails").await, vec!["none-b@example.com", "primary-m@example.com", "first-a@example.com"]);
        assert_eq!(ids(&app, "sortBy=emails.value&sortOrder=descending").await, vec!["first-a@example.com", "primary-m@example.com", "none-b@example.com"]);
        assert_scim_error(app.get("/Groups?sortBy=members").await, 400, Some("invalidValue")).await;
    }

    async fn membership_filters_find_groups_by_member_and_users_by_group(app) {
        let ann = app.create_user("member-ann@example.com").await;
        let bob = app.create_user("member-bob@example.com").await;
        let staff = app.create_group("Staff", &[&ann, &bob]).await;
        let admins = app.create_group("Admins", &[&ann]).await;
        let groups = |q: String| {
            let app = &app;
            async move {
                let res = app.get(&format!("/Groups?{q}")).await;
                assert_eq!(res.status(), 200, "{q}");
                let mut names: Vec<String> = body_json(res).await["Resources"].as_array().expect("Resources")
                    .iter().map(|g| g["displayName"].as_str().expect("name").to_string()).collect();
                names.sort();
                names
            }
        };
        // Entra's membership check, and its variants (RFC 7644 3.4.2.2).
        assert_eq!(groups(format!("filter={}", enc(&format!("id eq \"{admins}\" and members[value eq \"{ann}\"]")))).await, vec!["Admins"]);
        assert_eq!(groups(format!("filter={}", enc(&format!("id eq \"{admins}\" and members[value eq \"{bob}\"]")))).await, Vec::<String>::new());
        assert_eq!(groups(format!("filter={}", enc(&format!("members.value eq \"{ann}\"")))).await, vec!["Admins", "Staff"]);
        assert_eq!(groups(format!("filter={}", enc(&format!("members eq \"{bob}\"")))).await, vec!["Staff"]);
        assert_eq!(groups(format!("filter={}", enc("members[type eq \"User\" and value sw \"zzz\"]"))).await, Vec::<String>::new());
        assert_eq!(groups(format!("filter={}", enc("members pr"))).await, vec!["Admins", "Staff"]);
        assert_eq!(groups(format!("filter={}", enc(&format!("not (members.value eq \"{ann}\")")))).await, Vec::<String>::new());
        // A user's groups, by id or by name.
        assert_eq!(ids(&app, &format!("filter={}", enc(&format!("groups.value eq \"{admins}\"")))).await, vec!["member-ann@example.com"]);
        assert_eq!(ids(&app, &format!("filter={}&sortBy=userName", enc("groups[display eq \"staff\"]"))).await, vec!["member-ann@example.com", "member-bob@example.com"]);
        assert_eq!(ids(&app, &format!("filter={}", enc(&format!("groups.value eq \"{staff}\" and not (groups.value eq \"{admins}\")")))).await, vec!["member-bob@example.com"]);
    }
}

crate::each_database! {
    async fn a_list_page_reads_only_the_documents_that_fit_its_bytes(db) {
        use scim_bridge::store::{ListSpec, Page, ResourceStore, PAGE_ROW_OVERHEAD};
        let app = crate::helpers::spawn_app(db).await;
        for i in 0..12 {
            let emails: Vec<Value> = (0..150).map(|k| json!({"value": format!("big{i}.{k}@example.com"), "type": "other"})).collect();
            let res = app.post("/Users", json!({"schemas": [USER], "userName": format!("big{i}@example.com"), "emails": emails})).await;
            assert_eq!(res.status(), 201);
        }
        let budget = 20_000;
        for page in [Page::Offset { offset: 0, limit: 1000 }, Page::After { after: None, limit: 1000 }] {
            let spec = ListSpec { resource_type: "User", filter: None, sort: None, page: page.clone(), count_total: true, max_bytes: budget };
            let listed = app.core.store.list(&spec, app.core.resources.registry()).expect("listed");
            let bytes: usize = listed.rows.iter().map(|r| r.data.len() + PAGE_ROW_OVERHEAD).sum();
            assert!(listed.cut, "{page:?}");
            assert!(!listed.rows.is_empty() && listed.rows.len() < 12, "{page:?}: {} rows", listed.rows.len());
            assert!(bytes <= budget, "{page:?}: {bytes} bytes read for a budget of {budget}");
            assert_eq!(listed.total, 12);
        }
        // A budget smaller than one document still reads that one.
        let spec = ListSpec { resource_type: "User", filter: None, sort: None, page: Page::Offset { offset: 0, limit: 5 }, count_total: true, max_bytes: 10 };
        assert_eq!(app.core.store.list(&spec, app.core.resources.registry()).expect("listed").rows.len(), 1);
    }
}
