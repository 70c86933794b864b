use reqwest::Method;
use serde_json::{json, Value};

use crate::both_databases;

both_databases! {
    async fn create_returns_201_with_meta_location_and_a_weak_etag(app) {
        let res = app.post("/Users", user("bjensen@example.com")).await;
        assert_eq!(res.status(), 201);
        let etag = res.headers().get("etag").expect("etag").to_str().expect("ascii").to_string();
        let location = res.headers().get("location").expect("location").to_str().expect("ascii").to_string();
        assert_eq!(res.headers().get("content-type").expect("ct"), "application/scim+json");
        let body = json(res).await;
        let id = body["id"].as_str().expect("id");
        assert!(etag.starts_with("W/\""));
        assert_eq!(body["meta"]["version"], etag);
        assert_eq!(body["meta"]["resourceType"], "User");
        assert_eq!(body["meta"]["location"], location);
        assert!(location.ends_with(&format!("/scim/v2/Users/{id}")));
        assert_eq!(body["meta"]["created"], body["meta"]["lastModified"]);
        assert_eq!(body["userName"], "bjensen@example.com");
        assert_eq!(body["schemas"], json!([USER]));
    }

    async fn password_is_accepted_but_never_returned(app) {
        let mut u = user("pw@example.com");
        u["password"] = json!("t1meMa$heen");
        let res = app.post("/Users", u).await;
        assert_eq!(res.status(), 201);
        let body = json(res).await;
        assert!(body.get("password").is_none());
        let id = body["id"].as_str().expect("id");
        let got = json(app.get(&format!("/Users/{id}?attributes=password,userName")).await).await;
        assert!(got.get("password").is_none(), "{got}");
        assert_eq!(got["userName"], "pw@example.com");
    }

    async fn get_by_id_returns_the_user_and_an_unknown_id_is_404(app) {
        let id = app.create_user("alice@example.com").await;
        let body = json(app.get(&format!("/Users/{id}")).await).await;
        assert_eq!(body["id"], id.as_str());
        let res = app.get("/Users/does-not-exist").await;
        assert_scim_error(res, 404, None).await;
        // ids are case-sensitive
        let res = app.get(&format!("/Users/{}", id.to_uppercase())).await;
        assert_eq!(res.status(), 404);
    }

    async fn create_returns_409_when_user_name_differs_only_in_case(app) {
        app.create_user("Carol@Example.com").await;
        let res = app.post("/Users", user("carol@example.COM")).await;
        assert_scim_error(res, 409, Some("uniqueness")).await;
    }

    async fn racing_creates_of_one_user_name_give_exactly_one_201(app) {
        let mut tasks = Vec::new();
        for i in 0..8 {
            let client = app.client.clone();
            let url = format!("{}/Users", app.base);
            let token = app.token.clone();
            let name = if i % 2 == 0 { "race@example.com" } else { "RACE@example.com" };
            tasks.push(tokio::spawn(async move {
                client.post(url).bearer_auth(token).header("content-type", "application/scim+json")
                    .body(user(name).to_string()).send().await.expect("sent").status().as_u16()
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks { statuses.push(t.await.expect("task")); }
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 7, "{statuses:?}");
    }

    async fn filter_on_user_name_matches_without_regard_to_case(app) {
        let id = app.create_user("dave@example.com").await;
        let body = json(app.get("/Users?filter=userName%20eq%20%22DAVE@example.com%22&startIndex=1&count=100").await).await;
        assert_eq!(body["totalResults"], 1);
        assert_eq!(body["Resources"][0]["id"], id.as_str());
        assert_eq!(body["itemsPerPage"], 1);
        assert_eq!(body["startIndex"], 1);
    }

    async fn a_filter_that_matches_nothing_is_200_with_an_empty_list(app) {
        app.create_user("erin@example.com").await;
        let res = app.get("/Users?filter=userName%20eq%20%22nobody%40example.com%22").await;
        assert_eq!(res.status(), 200);
        let body = json(res).await;
        assert_eq!(body["totalResults"], 0);
        assert_eq!(body["Resources"], json!([]));
    }

    async fn an_unquoted_external_id_matches_as_the_quoted_one_does(app) {
        let mut u = user("jyoung@example.com");
        u["externalId"] = json!("jyoung");
        assert_eq!(app.post("/Users", u).await.status(), 201);
        let quoted = json(app.get("/Users?filter=externalId%20eq%20%22jyoung%22").await).await;
        let bare = json(app.get("/Users?filter=externalId%20eq%20jyoung").await).await;
        assert_eq!(quoted["totalResults"], 1);
        assert_eq!(bare["totalResults"], 1);
        assert_eq!(quoted["Resources"], bare["Resources"]);
    }

    async fn paging_is_one_based_exact_and_stable(app) {
        let mut ids = Vec::new();
        for i in 0..7 { ids.push(app.create_user(&format!("page{i}@example.com")).await); }
        let mut seen = Vec::new();
        for start in [1, 4, 7] {
            let body = json(app.get(&format!("/Users?startIndex={start}&count=3")).await).await;
            assert_eq!(body["totalResults"], 7);
            assert_eq!(body["startIndex"], start);
            for r in body["Resources"].as_array().expect("list") { seen.push(r["id"].as_str().expect("id").to_string()); }
        }
        assert_eq!(seen.len(), 7);
        let mut sorted = seen.clone(); sorted.sort(); sorted.dedup();
        assert_eq!(sorted.len(), 7, "no resource twice across pages");
        let again: Vec<String> = json(app.get("/Users?startIndex=1&count=7").await).await["Resources"]
            .as_array().expect("list").iter().map(|r| r["id"].as_str().expect("id").to_string()).collect();
        assert_eq!(again, seen, "the same order on every read");
        let zero = json(app.get("/Users?count=0").await).await;
        assert_eq!(zero["totalResults"], 7);
        assert_eq!(zero["itemsPerPage"], 0);
        assert_eq!(zero["Resources"], json!([]));
        let past = json(app.get("/Users?startIndex=50").await).await;
        assert_eq!(past["totalResults"], 7);
        assert_eq!(past["Resources"], json!([]));
    }

    async fn put_replaces_attributes_and_keeps_active_when_it_is_omitted(app) {
        let mut u = user("frank@example.com");
        u["active"] = json!(false);
        u["title"] = json!("Engineer");
        let created = json(app.post("/Users", u).await).await;
        let id = created["id"].as_str().expect("id");
        let res = app.put(&format!("/Users/{id}"), json!({"schemas": [USER], "userName": "frank@example.com", "displayName": "Frank"})).await;
        assert_eq!(res.status(), 200);
        let body = json(res).await;
        assert_eq!(body["active"], false, "PUT without active keeps it");
        assert!(body.get("title").is_none(), "PUT replaces: title is gone");
        assert_eq!(body["displayName"], "Frank");
        assert_ne!(body["meta"]["version"], created["meta"]["version"]);
        assert_eq!(body["meta"]["created"], created["meta"]["created"]);
    }

    async fn put_to_a_taken_user_name_is_409(app) {
        app.create_user("gina@example.com").await;
        let id = app.create_user("hank@example.com").await;
        let res = app.put(&format!("/Users/{id}"), user("GINA@example.com")).await;
        assert_scim_error(res, 409, Some("uniqueness")).await;
    }

    async fn if_match_guards_put_and_delete_and_if_none_match_gives_304(app) {
        let created = app.post("/Users", user("ivy@example.com")).await;
        let etag = created.headers().get("etag").expect("etag").to_str().expect("ascii").to_string();
        let id = json(created).await["id"].as_str().expect("id").to_string();
        let res = app.request(Method::GET, &format!("/Users/{id}")).header("If-None-Match", &etag).send().await.expect("sent");
        assert_eq!(res.status(), 304);
        let res = app.request(Method::PUT, &format!("/Users/{id}")).header("If-Match", "W/\"999\"")
            .header("content-type", "application/scim+json").body(user("ivy@example.com").to_string()).send().await.expect("sent");
        assert_scim_error(res, 412, None).await;
        let res = app.request(Method::PUT, &format!("/Users/{id}")).header("If-Match", &etag)
            .header("content-type", "application/scim+json").body(user("ivy@example.com").to_string()).send().await.expect("sent");
        assert_eq!(res.status(), 200);
        let res = app.request(Method::DELETE, &format!("/Users/{id}")).header("If-Match", &etag).send().await.expect("sent");
        assert_scim_error(res, 412, None).await;
        assert_eq!(app.delete(&format!("/Users/{id}")).await.status(), 204);
        assert_eq!(app.get(&format!("/Users/{id}")).await.status(), 404);
        assert_scim_error(app.delete(&format!("/Users/{id}")).await, 404, None).await;
    }

    async fn read_only_attributes_and_explicit_nulls_are_ignored_on_input(app) {
        let res = app.post("/Users", json!({
            "schemas": [USER], "userName": "jack@example.com", "id": "chosen-by-client",
            "meta": {"created": "2000-01-01T00:00:00Z"}, "groups": [{"value": "x"}],
            "addresses": null, "nickName": null, "name": {"givenName": "Jack", "familyName": null}
        })).await;
        assert_eq!(res.status(), 201);
        let body = json(res).await;
        assert_ne!(body["id"], "chosen-by-client");
        assert_ne!(body["meta"]["created"], "2000-01-01T00:00:00Z");
        assert!(body.get("groups").is_none());
        assert!(body.get("addresses").is_none());
        assert_eq!(body["name"], json!({"givenName": "Jack"}));
    }

    async fn the_enterprise_extension_is_stored_and_projected(app) {
        let mut u = user("kim@example.com");
        u["schemas"] = json!([USER, ENTERPRISE]);
        u[ENTERPRISE] = json!({"employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "boss"}});
        let body = json(app.post("/Users", u).await).await;
        assert_eq!(body["schemas"], json!([USER, ENTERPRISE]));
        assert_eq!(body[ENTERPRISE]["employeeNumber"], "701984");
        let id = body["id"].as_str().expect("id");
        let only = json(app.get(&format!("/Users/{id}?attributes=userName,{ENTERPRISE}:employeeNumber")).await).await;
        assert_eq!(only["userName"], "kim@example.com");
        assert_eq!(only[ENTERPRISE], json!({"employeeNumber": "701984"}));
        assert!(only.get("name").is_none());
        assert!(only.get("id").is_some(), "id is always returned");
        let without = json(app.get(&format!("/Users/{id}?excludedAttributes=emails,name.familyName")).await).await;
        assert!(without.get("emails").is_none());
        assert_eq!(without["name"], json!({"givenName": "Barbara"}));
        assert_eq!(without[ENTERPRISE]["department"], "Tour Operations");
    }

    async fn string_booleans_are_coerced(app) {
        let mut u = user("lee@example.com");
        u["active"] = json!("False");
        let body: Value = json(app.post("/Users", u).await).await;
        assert_eq!(body["active"], false);
    }
}
