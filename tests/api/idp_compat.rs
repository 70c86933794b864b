//! The request sequences Okta and Microsoft Entra ID are documented to send
//! (../shared/reference/idp-compat.md), replayed as they send them.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_databases;
use crate::helpers::{json as body_json, TestApp, ENTERPRISE, GROUP, USER};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

async fn patch(app: &TestApp, path: &str, ops: Value) -> reqwest::Response {
    app.send(
        Method::PATCH,
        path,
        Some(json!({"schemas": [PATCH_OP], "Operations": ops})),
    )
    .await
}

both_databases! {
    async fn okta_spec_test_sequence_passes(app) {
        // Okta's SCIM spec test, in its order.
        let res = app.get("/Users?count=1&startIndex=1").await;
        assert_eq!(res.status(), 200);
        let page = body_json(res).await;
        assert!(page["totalResults"].is_u64() && page["startIndex"].is_u64() && page["itemsPerPage"].is_u64());
        let res = app.get("/Users?filter=userName%20eq%20%22unknown.okta.user%40example.com%22").await;
        assert_eq!(res.status(), 200);
        assert_eq!(body_json(res).await["totalResults"], 0);
        let res = app.get("/Users/010101001010101").await;
        let body = assert_scim_error(res, 404, None).await;
        assert!(body["detail"].is_string());
        // Create with the placeholder password Okta sends even with password sync off.
        let new_user = json!({
            "schemas": [USER], "userName": "Runscope.Okta@example.com",
            "name": {"givenName": "Runscope", "familyName": "Okta"},
            "emails": [{"primary": true, "value": "Runscope.Okta@example.com", "type": "work"}],
            "displayName": "Runscope Okta", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [], "password": "1mz050nq", "active": true
        });
        let res = app.post("/Users", new_user.clone()).await;
        assert_eq!(res.status(), 201);
        let created = body_json(res).await;
        let id = created["id"].as_str().expect("id").to_string();
        assert!(!id.contains("bulkId"));
        assert_eq!(body_json(app.get(&format!("/Users/{id}")).await).await["userName"], "Runscope.Okta@example.com");
        assert_scim_error(app.post("/Users", new_user).await, 409, Some("uniqueness")).await;
        let res = app.get("/Users?filter=userName%20eq%20%22runscope.okta%40EXAMPLE.com%22&startIndex=1&count=100").await;
        assert_eq!(body_json(res).await["Resources"][0]["id"], id.as_str());
        let res = app.client.get(format!("{}/Users", app.base)).send().await.expect("sent");
        assert_scim_error(res, 401, None).await;
        // OIN apps: profile by PUT (active omitted must not flip), deactivation by PATCH.
        let res = app.put(&format!("/Users/{id}"), json!({"schemas": [USER], "id": id, "userName": "Runscope.Okta@example.com",
            "name": {"givenName": "Run", "familyName": "Okta"}})).await;
        assert_eq!(body_json(res).await["active"], true);
        let res = patch(&app, &format!("/Users/{id}"), json!([{"op": "replace", "value": {"active": false}}])).await;
        assert_eq!(body_json(res).await["active"], false);
        // Wizard apps deactivate by PUT.
        let res = app.put(&format!("/Users/{id}"), json!({"schemas": [USER], "userName": "Runscope.Okta@example.com", "active": true})).await;
        assert_eq!(body_json(res).await["active"], true);
    }

    async fn okta_imports_page_by_100_in_a_stable_order(app) {
        for i in 0..205 {
            let res = app.post("/Users", json!({"schemas": [USER], "userName": format!("imp{i:03}@example.com")})).await;
            assert_eq!(res.status(), 201);
        }
        let mut seen = Vec::new();
        let mut start = 1;
        loop {
            let page = body_json(app.get(&format!("/Users?startIndex={start}&count=100")).await).await;
            assert_eq!(page["totalResults"], 205);
            let items = page["Resources"].as_array().expect("list");
            seen.extend(items.iter().map(|u| u["id"].as_str().expect("id").to_string()));
            if items.len() < 100 { break; }
            start += 100;
        }
        let mut unique = seen.clone(); unique.sort(); unique.dedup();
        assert_eq!((seen.len(), unique.len()), (205, 205));
    }

    async fn okta_group_push_sequence_passes(app) {
        let a = app.create_user("gp.a@example.com").await;
        let b = app.create_user("gp.b@example.com").await;
        assert_eq!(body_json(app.get("/Groups?filter=displayName%20eq%20%22Push%20Group%22").await).await["totalResults"], 0);
        // Memberships inside the POST, member objects without type.
        let res = app.post("/Groups", json!({"schemas": [GROUP], "displayName": "Push Group", "members": [{"value": a, "display": "gp.a"}]})).await;
        assert_eq!(res.status(), 201);
        let g = body_json(res).await["id"].as_str().expect("id").to_string();
        let path = format!("/Groups/{g}");
        assert_eq!(patch(&app, &path, json!([{"op": "add", "path": "members", "value": [{"value": b, "display": "gp.b"}]}])).await.status(), 204);
        assert_eq!(patch(&app, &path, json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}])).await.status(), 204);
        let members = body_json(app.get(&path).await).await["members"].clone();
        assert_eq!(members.as_array().expect("members").len(), 1);
        assert_eq!(members[0]["value"], b.as_str());
        assert_eq!(members[0]["type"], "User");
        assert_eq!(patch(&app, &path, json!([{"op": "replace", "path": "members", "value": []}])).await.status(), 204);
        // Wizard apps: PUT with memberships.
        let res = app.put(&path, json!({"schemas": [GROUP], "displayName": "Push Group", "members": [{"value": a}, {"value": b}]})).await;
        assert_eq!(body_json(res).await["members"].as_array().expect("members").len(), 2);
        assert_eq!(app.delete(&path).await.status(), 204);
    }

    async fn entra_validator_user_sequence_passes(app) {
        let user = json!({
            "schemas": [USER, ENTERPRISE], "externalId": "9d8b3e0e", "userName": "Test_User_ab6490ee@testuser.com",
            "active": true, "addresses": null, "displayName": "Test User",
            "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
            "meta": {"resourceType": "User"}, "name": {"familyName": "familyName", "givenName": "givenName"},
            "roles": [], ENTERPRISE: {"employeeNumber": "1", "department": "IT"}
        });
        let res = app.post("/Users", user.clone()).await;
        assert_eq!(res.status(), 201);
        let id = body_json(res).await["id"].as_str().expect("id").to_string();
        let res = app.get("/Users?filter=userName+eq+%22Test_User_ab6490ee%40testuser.com%22").await;
        assert_eq!(body_json(res).await["Resources"][0]["id"], id.as_str());
        let res = app.get("/Users?filter=externalId+eq+9d8b3e0e").await;
        assert_eq!(body_json(res).await["totalResults"], 1);
        assert_scim_error(app.post("/Users", user).await, 409, Some("uniqueness")).await;
        let path = format!("/Users/{id}");
        let res = patch(&app, &path, json!([
            {"op": "Add", "path": "nickName", "value": "Babs"},
            {"op": "Add", "path": "title", "value": "Tour Guide"}
        ])).await;
        assert_eq!(res.status(), 200);
        let res = patch(&app, &path, json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updated@testuser.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
            {"op": "Replace", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "2"},
            {"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": "mgr-id"},
            {"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Redmond"}
        ])).await;
        let body = body_json(res).await;
        assert_eq!(body["emails"][0]["value"], "updated@testuser.com");
        assert_eq!(body[ENTERPRISE]["employeeNumber"], "2");
        assert_eq!(body[ENTERPRISE]["manager"]["value"], "mgr-id");
        assert_eq!(body["addresses"], json!([{"type": "work", "locality": "Redmond"}]));
        // Change of the joining attribute.
        let res = patch(&app, &path, json!([{"op": "Replace", "path": "userName", "value": "renamed@testuser.com"}])).await;
        assert_eq!(res.status(), 200);
        let res = app.get("/Users?filter=userName+eq+%22renamed%40testuser.com%22").await;
        assert_eq!(body_json(res).await["totalResults"], 1);
        let res = patch(&app, &path, json!([{"op": "Replace", "path": "active", "value": "False"}])).await;
        assert_eq!(body_json(res).await["active"], false);
        // With aadOptscim062020: lowercase ops, real booleans, one path-less replace with dotted keys.
        let res = patch(&app, &path, json!([{"op": "replace", "value": {"name.givenName": "Flagged", "active": true, "title": "New"}}])).await;
        let body = body_json(res).await;
        assert_eq!((body["name"]["givenName"].clone(), body["active"].clone(), body["title"].clone()), (json!("Flagged"), json!(true), json!("New")));
    }

    async fn entra_validator_group_sequence_passes(app) {
        let u1 = app.create_user("eg1@example.com").await;
        let u2 = app.create_user("eg2@example.com").await;
        let res = app.post("/Groups", json!({"schemas": [GROUP], "externalId": "8aa1a0c0", "displayName": "Group1DisplayName", "members": []})).await;
        assert_eq!(res.status(), 201);
        let g = body_json(res).await["id"].as_str().expect("id").to_string();
        assert_scim_error(app.post("/Groups", json!({"schemas": [GROUP], "displayName": "Group1DisplayName"})).await, 409, Some("uniqueness")).await;
        let res = app.get("/Groups?excludedAttributes=members&filter=displayName+eq+%22Group1DisplayName%22").await;
        let list = body_json(res).await;
        assert_eq!(list["Resources"][0]["id"], g.as_str());
        assert!(list["Resources"][0].get("members").is_none());
        let path = format!("/Groups/{g}");
        let res = patch(&app, &path, json!([
            {"op": "Add", "path": "members", "value": [{"value": u1}]},
            {"op": "Add", "path": "members", "value": [{"value": u2}]}
        ])).await;
        assert_eq!(res.status(), 204);
        let res = patch(&app, &path, json!([{"op": "Replace", "path": "displayName", "value": "Renamed Group"}])).await;
        assert_eq!(res.status(), 204);
        // Without the flag: remove with a value array; with it: a filtered path.
        assert_eq!(patch(&app, &path, json!([{"op": "Remove", "path": "members", "value": [{"value": u1}]}])).await.status(), 204);
        let body = body_json(app.get(&format!("{path}?excludedAttributes=members")).await).await;
        assert_eq!(body["displayName"], "Renamed Group");
        assert_eq!(patch(&app, &path, json!([{"op": "remove", "path": format!("members[value eq \"{u2}\"]")}])).await.status(), 204);
        assert!(body_json(app.get(&path).await).await.get("members").is_none());
    }
}

both_databases! {
    async fn an_okta_custom_namespace_attribute_is_refused_until_its_schema_is_loaded_as_the_okta_guide_says(app) {
        let custom = "urn:ietf:params:scim:schemas:extension:CustomExtension:2.0:User";
        let body = json!({"schemas": [USER, custom], "userName": "custom@example.com",
                          "name": {"givenName": "C", "familyName": "U"}, custom: {"costCenter": "42"}});
        let err = assert_scim_error(app.post("/Users", body).await, 400, Some("invalidSyntax")).await;
        assert!(err["detail"].as_str().is_some_and(|d| d.contains(custom)), "{err}");
        // A core attribute no schema defines is dropped, not refused.
        let body = json!({"schemas": [USER], "userName": "dropped@example.com", "favouriteColour": "teal"});
        let made = body_json(app.post("/Users", body).await).await;
        assert!(made.get("favouriteColour").is_none(), "{made}");
    }
}
