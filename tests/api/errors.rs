//! What happens to bad input: always an RFC 7644 error body with the right status.

use reqwest::Method;
use serde_json::json;

use crate::both_databases;

both_databases! {
    async fn malformed_json_is_400_invalid_syntax(app) {
        let res = app.request(Method::POST, "/Users").header("content-type", "application/scim+json")
            .body("{\"userName\": ").send().await.expect("sent");
        assert_scim_error(res, 400, Some("invalidSyntax")).await;
        let res = app.request(Method::POST, "/Users").header("content-type", "application/json")
            .body("[1,2]").send().await.expect("sent");
        assert_scim_error(res, 400, Some("invalidSyntax")).await;
    }

    async fn wrong_types_are_400_invalid_value(app) {
        for body in [
            json!({"schemas": [USER], "userName": 42}),
            json!({"schemas": [USER], "userName": "t@example.com", "active": "maybe"}),
            json!({"schemas": [USER], "userName": "t@example.com", "emails": {"value": "x"}}),
            json!({"schemas": [USER], "userName": "t@example.com", "name": "Barbara"}),
        ] {
            let res = app.post("/Users", body.clone()).await;
            assert_scim_error(res, 400, Some("invalidValue")).await;
        }
    }

    async fn a_missing_required_attribute_is_400_invalid_value(app) {
        let res = app.post("/Users", json!({"schemas": [USER], "displayName": "No Name"})).await;
        let body = assert_scim_error(res, 400, Some("invalidValue")).await;
        assert!(body["detail"].as_str().expect("detail").contains("userName"));
        let res = app.post("/Groups", json!({"schemas": [GROUP]})).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
    }

    async fn an_unknown_schema_urn_is_400_invalid_syntax(app) {
        let res = app.post("/Users", json!({"schemas": [USER, "urn:example:unknown"], "userName": "u@example.com"})).await;
        assert_scim_error(res, 400, Some("invalidSyntax")).await;
        let res = app.post("/Users", json!({"schemas": [USER], "userName": "u@example.com", "urn:example:unknown": {"a": 1}})).await;
        assert_scim_error(res, 400, Some("invalidSyntax")).await;
    }

    async fn unknown_attributes_are_dropped_not_stored(app) {
        let res = app.post("/Users", json!({"schemas": [USER], "userName": "x@example.com", "favouriteColour": "blue"})).await;
        assert_eq!(res.status(), 201);
        let body = json(res).await;
        assert!(body.get("favouriteColour").is_none());
    }

    async fn a_body_over_the_limit_is_413(app) {
        let big = "x".repeat(app.settings.max_body_bytes + 10);
        let res = app.post("/Users", json!({"schemas": [USER], "userName": "big@example.com", "title": big})).await;
        assert_scim_error(res, 413, None).await;
    }

    async fn a_body_that_is_not_json_is_415(app) {
        let res = app.request(Method::POST, "/Users").header("content-type", "text/plain")
            .body("userName=x").send().await.expect("sent");
        assert_scim_error(res, 415, None).await;
    }

    async fn unknown_endpoints_are_404_and_wrong_methods_405_both_as_scim_errors(app) {
        assert_scim_error(app.get("/Nothing").await, 404, None).await;
        assert_scim_error(app.delete("/Users").await, 405, None).await;
        assert_scim_error(app.send(Method::POST, "/ServiceProviderConfig", Some(json!({}))).await, 405, None).await;
        let res = app.client.get(format!("http://127.0.0.1:{}/elsewhere", app.port)).send().await.expect("sent");
        assert_scim_error(res, 404, None).await;
    }

    async fn an_invalid_filter_is_400_invalid_filter_naming_where_it_broke(app) {
        let res = app.get("/Users?filter=userName%20eq").await;
        let body = assert_scim_error(res, 400, Some("invalidFilter")).await;
        assert!(body["detail"].as_str().expect("detail").contains("character"));
        let res = app.get("/Users?filter=noSuchAttribute%20eq%20%22x%22").await;
        assert_scim_error(res, 400, Some("invalidFilter")).await;
    }

    async fn a_non_numeric_count_is_400(app) {
        assert_scim_error(app.get("/Users?count=many").await, 400, Some("invalidValue")).await;
    }
}

both_databases! {
    async fn head_answers_a_get_s_status_and_headers_without_a_body(app) {
        let id = app.create_user("head@example.com").await;
        let res = app.request(Method::HEAD, &format!("/Users/{id}")).send().await.expect("sent");
        assert_eq!(res.status(), 200);
        assert!(res.headers().get("etag").is_some(), "the ETag a GET would carry");
        assert_eq!(res.bytes().await.expect("body").len(), 0);
        let missing = app.request(Method::HEAD, "/Users/nobody").send().await.expect("sent");
        assert_eq!(missing.status(), 404);
        assert_eq!(app.request(Method::HEAD, "/Users").send().await.expect("sent").status(), 200);
        let unauthenticated = app.client.head(format!("http://127.0.0.1:{}/scim/v2/Users/{id}", app.port)).send().await.expect("sent");
        assert_eq!(unauthenticated.status(), 401);
    }

    async fn a_required_name_with_nothing_visible_is_refused(app) {
        for blank in ["\u{200B}", " \u{200D}\u{FEFF} ", "\u{202E}", "\t"] {
            let res = app.post("/Users", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": blank})).await;
            assert_scim_error(res, 400, Some("invalidValue")).await;
            let res = app.post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": blank})).await;
            assert_scim_error(res, 400, Some("invalidValue")).await;
        }
        let id = app.create_user("visible@example.com").await;
        let res = app.send(Method::PATCH, &format!("/Users/{id}"), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "userName", "value": "\u{200B}\u{200C}"}]}))).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
        // A name with a visible character among invisible ones is a name.
        assert_eq!(app.post("/Users", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "\u{200B}x"})).await.status(), 201);
    }

    async fn a_body_naming_a_key_twice_is_refused_not_read_as_its_last_value(app) {
        for body in [
            r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@example.com", "userName": "b@example.com"}"#,
            r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@example.com", "USERNAME": "b@example.com"}"#,
            r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@example.com", "name": {"givenName": "A", "givenName": "B"}}"#,
        ] {
            let res = app.request(Method::POST, "/Users").header("content-type", "application/scim+json").body(body).send().await.expect("sent");
            let err = assert_scim_error(res, 400, Some("invalidSyntax")).await;
            assert!(err["detail"].as_str().is_some_and(|d| d.contains("appears twice")), "{err}");
        }
        let found = crate::helpers::json(app.get("/Users?filter=userName%20eq%20%22a%40example.com%22").await).await;
        assert_eq!(found["totalResults"], 0, "nothing was created");
    }
}
