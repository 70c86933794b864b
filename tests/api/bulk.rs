//! /Bulk: bulkId references in any order, circular references, failOnErrors and limits.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_databases;
use crate::helpers::{json as body_json, GROUP, USER};

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

fn statuses(body: &Value) -> Vec<String> {
    body["Operations"]
        .as_array()
        .expect("ops")
        .iter()
        .map(|o| o["status"].as_str().expect("status").to_string())
        .collect()
}

both_databases! {
    async fn bulk_resolves_bulk_ids_whatever_the_order(app) {
        // The group comes first but names users created after it.
        let res = app.send(Method::POST, "/Bulk", Some(json!({
            "schemas": [BULK],
            "Operations": [
                {"method": "POST", "path": "/Groups", "bulkId": "g1",
                 "data": {"schemas": [GROUP], "displayName": "Bulk Group", "members": [{"value": "bulkId:u1"}, {"value": "bulkId:u2"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"schemas": [USER], "userName": "bulk1@example.com"}},
                {"method": "POST", "path": "/Users", "bulkId": "u2", "data": {"schemas": [USER], "userName": "bulk2@example.com"}},
                {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {"Operations": [{"op": "replace", "path": "title", "value": "Lead"}]}}
            ]
        }))).await;
        assert_eq!(res.status(), 200);
        let body = body_json(res).await;
        assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:BulkResponse");
        assert_eq!(statuses(&body), vec!["201", "201", "201", "200"]);
        let group_loc = body["Operations"][0]["location"].as_str().expect("location");
        let gid = group_loc.rsplit('/').next().expect("id");
        let group = body_json(app.get(&format!("/Groups/{gid}")).await).await;
        assert_eq!(group["members"].as_array().expect("members").len(), 2);
        let users = body_json(app.get("/Users?filter=title%20eq%20%22Lead%22").await).await;
        assert_eq!(users["Resources"][0]["userName"], "bulk1@example.com");
        assert!(!gid.contains("bulkId"));
    }

    async fn a_circular_reference_is_reported_as_such(app) {
        let body = body_json(app.send(Method::POST, "/Bulk", Some(json!({
            "schemas": [BULK],
            "Operations": [
                {"method": "POST", "path": "/Groups", "bulkId": "a", "data": {"schemas": [GROUP], "displayName": "A", "members": [{"value": "bulkId:b"}]}},
                {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {"schemas": [GROUP], "displayName": "B", "members": [{"value": "bulkId:a"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "c", "data": {"schemas": [USER], "userName": "free@example.com"}}
            ]
        }))).await).await;
        let ops = body["Operations"].as_array().expect("ops");
        assert_eq!(ops.len(), 3);
        let free = ops.iter().find(|o| o["bulkId"] == "c").expect("c");
        assert_eq!(free["status"], "201");
        for id in ["a", "b"] {
            let op = ops.iter().find(|o| o["bulkId"] == id).expect("op");
            assert_eq!(op["status"], "409");
            assert!(op["response"]["detail"].as_str().expect("detail").contains("circular"), "{op}");
        }
    }

    async fn fail_on_errors_stops_after_that_many_errors(app) {
        app.create_user("taken@example.com").await;
        let body = body_json(app.send(Method::POST, "/Bulk", Some(json!({
            "schemas": [BULK], "failOnErrors": 1,
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"schemas": [USER], "userName": "TAKEN@example.com"}},
                {"method": "POST", "path": "/Users", "bulkId": "y", "data": {"schemas": [USER], "userName": "never@example.com"}}
            ]
        }))).await).await;
        assert_eq!(statuses(&body), vec!["409"]);
        assert_eq!(body["Operations"][0]["response"]["scimType"], "uniqueness");
        let never = body_json(app.get("/Users?filter=userName%20eq%20%22never@example.com%22").await).await;
        assert_eq!(never["totalResults"], 0);
    }

    async fn bulk_put_delete_and_errors_per_operation(app) {
        let id = app.create_user("bp@example.com").await;
        let body = body_json(app.send(Method::POST, "/Bulk", Some(json!({
            "schemas": [BULK],
            "Operations": [
                {"method": "PUT", "path": format!("/Users/{id}"), "version": "W/\"1\"", "data": {"schemas": [USER], "userName": "bp@example.com", "title": "T"}},
                {"method": "PUT", "path": format!("/Users/{id}"), "version": "W/\"1\"", "data": {"schemas": [USER], "userName": "bp@example.com"}},
                {"method": "DELETE", "path": "/Users/nope"},
                {"method": "POST", "path": "/Users", "bulkId": "z", "data": {"schemas": [USER], "userName": "z@example.com", "members": "bulkId:q"}},
                {"method": "DELETE", "path": format!("/Users/{id}")}
            ]
        }))).await).await;
        assert_eq!(statuses(&body), vec!["200", "412", "404", "400", "204"]);
    }

    async fn bulk_limits_are_advertised_and_enforced(app) {
        let spc = body_json(app.get("/ServiceProviderConfig").await).await;
        assert_eq!(spc["bulk"]["supported"], true);
        let max = spc["bulk"]["maxOperations"].as_u64().expect("max") as usize;
        let ops: Vec<Value> = (0..=max).map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")})).collect();
        let res = app.send(Method::POST, "/Bulk", Some(json!({"schemas": [BULK], "Operations": ops}))).await;
        assert_scim_error(res, 413, None).await;
        let big = "x".repeat(spc["bulk"]["maxPayloadSize"].as_u64().expect("size") as usize);
        let res = app.send(Method::POST, "/Bulk", Some(json!({"schemas": [BULK], "Operations": [], "pad": big}))).await;
        assert_scim_error(res, 413, None).await;
        let res = app.send(Method::POST, "/Bulk", Some(json!({"schemas": [BULK], "Operations": [{"method": "GET", "path": "/Users"}]}))).await;
        assert_scim_error(res, 400, Some("invalidSyntax")).await;
    }
}
