//! PATCH in every path form, as RFC 7644 3.5.2 and Entra and Okta use it.

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_databases;
use crate::helpers::{json as body_json, TestApp};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn ops(list: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": list})
}

async fn patch(app: &TestApp, path: &str, list: Value) -> reqwest::Response {
    app.send(Method::PATCH, path, Some(ops(list))).await
}

async fn patch_ok(app: &TestApp, path: &str, list: Value) -> Value {
    let res = patch(app, path, list).await;
    assert_eq!(res.status(), 200, "{path}");
    body_json(res).await
}

async fn member_ids(app: &TestApp, g: &str) -> Vec<String> {
    let body = body_json(app.get(&format!("/Groups/{g}")).await).await;
    let mut ids: Vec<String> = body["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["value"].as_str().expect("value").to_string())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

both_databases! {
    async fn entra_replaces_with_capitalised_ops_and_string_booleans(app) {
        let id = app.create_user("entra1@example.com").await;
        let body = patch_ok(&app, &format!("/Users/{id}"), json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "title", "value": "Manager"},
            {"op": "Replace", "path": "name.familyName", "value": "Smith"}
        ])).await;
        assert_eq!(body["active"], false);
        assert_eq!(body["title"], "Manager");
        assert_eq!(body["name"]["familyName"], "Smith");
        assert_eq!(body["name"]["givenName"], "Barbara", "other sub-attributes are kept");
    }

    async fn a_path_less_replace_takes_entras_dotted_keys(app) {
        let id = app.create_user("entra2@example.com").await;
        let body = patch_ok(&app, &format!("/Users/{id}"), json!([
            {"op": "replace", "value": {"name.givenName": "Babs", "active": false, "displayName": "Babs J"}}
        ])).await;
        assert_eq!(body["name"]["givenName"], "Babs");
        assert_eq!(body["name"]["familyName"], "Jensen");
        assert_eq!(body["active"], false);
        assert_eq!(body["displayName"], "Babs J");
    }

    async fn a_filtered_value_path_replaces_only_the_matching_value(app) {
        let id = app.create_user("vp@example.com").await;
        patch_ok(&app, &format!("/Users/{id}"), json!([
            {"op": "add", "path": "emails", "value": [{"value": "home@example.org", "type": "home"}]}
        ])).await;
        let body = patch_ok(&app, &format!("/Users/{id}"), json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}
        ])).await;
        let emails = body["emails"].as_array().expect("emails");
        assert_eq!(emails.len(), 2);
        let work = emails.iter().find(|e| e["type"] == "work").expect("work");
        assert_eq!(work["value"], "new@example.com");
        assert_eq!(work["primary"], true, "the rest of the element stays");
        assert!(emails.iter().any(|e| e["value"] == "home@example.org"));
    }

    async fn replace_on_a_filter_that_matches_nothing_adds_the_value(app) {
        let res = app.post("/Users", json!({"schemas": [USER], "userName": "nowork@example.com"})).await;
        let id = json(res).await["id"].as_str().expect("id").to_string();
        let body = patch_ok(&app, &format!("/Users/{id}"), json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "w@example.com"},
            {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}
        ])).await;
        assert_eq!(body["emails"], json!([{"type": "work", "value": "w@example.com"}]));
        assert_eq!(body["phoneNumbers"], json!([{"type": "mobile", "value": "+1 555 0100"}]));
    }

    async fn urn_qualified_extension_paths_set_and_remove_values(app) {
        let id = app.create_user("ext@example.com").await;
        let body = patch_ok(&app, &format!("/Users/{id}"), json!([
            {"op": "Add", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "42"},
            {"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": {"value": "mgr-1"}},
            {"op": "add", "value": {ENTERPRISE: {"department": "Sales"}}}
        ])).await;
        assert_eq!(body["schemas"], json!([USER, ENTERPRISE]));
        assert_eq!(body[ENTERPRISE]["employeeNumber"], "42");
        assert_eq!(body[ENTERPRISE]["manager"]["value"], "mgr-1");
        assert_eq!(body[ENTERPRISE]["department"], "Sales");
        let body = patch_ok(&app, &format!("/Users/{id}"), json!([
            {"op": "remove", "path": format!("{ENTERPRISE}:employeeNumber")},
            {"op": "remove", "path": format!("{ENTERPRISE}:manager")},
            {"op": "remove", "path": format!("{ENTERPRISE}:department")}
        ])).await;
        assert!(body.get(ENTERPRISE).is_none(), "{body}");
        assert_eq!(body["schemas"], json!([USER]));
    }

    async fn remove_with_a_filter_removes_only_the_matching_values(app) {
        let id = app.create_user("rm@example.com").await;
        patch_ok(&app, &format!("/Users/{id}"), json!([
            {"op": "add", "path": "emails", "value": [{"value": "b@example.org", "type": "home"}]}
        ])).await;
        let body = patch_ok(&app, &format!("/Users/{id}"), json!([
            {"op": "remove", "path": "emails[type eq \"home\"]"}
        ])).await;
        assert_eq!(body["emails"].as_array().expect("emails").len(), 1);
        assert_eq!(body["emails"][0]["type"], "work");
    }

    async fn read_only_and_unknown_paths_and_bad_values_are_refused_and_nothing_applies(app) {
        let id = app.create_user("guard@example.com").await;
        let path = format!("/Users/{id}");
        let before = json(app.get(&path).await).await;
        assert_scim_error(patch(&app, &path, json!([{"op": "replace", "path": "groups", "value": []}])).await, 400, Some("mutability")).await;
        assert_scim_error(patch(&app, &path, json!([
            {"op": "replace", "path": "title", "value": "changed"},
            {"op": "replace", "path": "noSuchThing", "value": "x"}
        ])).await, 400, Some("invalidPath")).await;
        assert_scim_error(patch(&app, &path, json!([{"op": "remove"}])).await, 400, Some("noTarget")).await;
        assert_scim_error(patch(&app, &path, json!([{"op": "replace", "path": "active", "value": "perhaps"}])).await, 400, Some("invalidValue")).await;
        assert_scim_error(patch(&app, &path, json!([{"op": "remove", "path": "userName"}])).await, 400, Some("mutability")).await;
        assert_scim_error(patch(&app, &path, json!([{"op": "replace", "path": "emails[type eq ]", "value": "x"}])).await, 400, Some("invalidPath")).await;
        assert_scim_error(patch(&app, &path, json!([{"op": "jump", "path": "title"}])).await, 400, Some("invalidSyntax")).await;
        let after = json(app.get(&path).await).await;
        assert_eq!(before, after, "no operation of a failed request applied");
    }

    async fn patch_changes_the_version_and_honours_if_match(app) {
        let id = app.create_user("pv@example.com").await;
        let path = format!("/Users/{id}");
        let v1 = json(app.get(&path).await).await["meta"]["version"].clone();
        let res = app.request(Method::PATCH, &path).header("If-Match", "W/\"77\"").header("content-type", "application/scim+json")
            .body(ops(json!([{"op": "replace", "path": "title", "value": "x"}])).to_string()).send().await.expect("sent");
        assert_scim_error(res, 412, None).await;
        let body = patch_ok(&app, &path, json!([{"op": "replace", "path": "title", "value": "x"}])).await;
        assert_ne!(body["meta"]["version"], v1);
    }

    async fn okta_pushes_group_membership_with_add_remove_and_replace(app) {
        let a = app.create_user("oa@example.com").await;
        let b = app.create_user("ob@example.com").await;
        let c = app.create_user("oc@example.com").await;
        let g = app.create_group("Okta Group", &[]).await;
        let path = format!("/Groups/{g}");
        let res = patch(&app, &path, json!([{"op": "add", "path": "members", "value": [{"value": a, "display": "oa"}, {"value": b}]}])).await;
        assert_eq!(res.status(), 204);
        assert!(res.headers().get("etag").is_some());
        assert_eq!(member_ids(&app, &g).await, { let mut v = vec![a.clone(), b.clone()]; v.sort(); v });
        let res = patch(&app, &path, json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}])).await;
        assert_eq!(res.status(), 204);
        assert_eq!(member_ids(&app, &g).await, vec![b.clone()]);
        let res = patch(&app, &path, json!([{"op": "replace", "path": "members", "value": [{"value": c}]}])).await;
        assert_eq!(res.status(), 204);
        assert_eq!(member_ids(&app, &g).await, vec![c.clone()]);
        let res = patch(&app, &path, json!([{"op": "replace", "value": {"id": g, "displayName": "Renamed"}}])).await;
        assert_eq!(res.status(), 204);
        let res = patch(&app, &path, json!([{"op": "replace", "path": "members", "value": []}])).await;
        assert_eq!(res.status(), 204);
        let body = json(app.get(&path).await).await;
        assert_eq!(body["displayName"], "Renamed");
        assert!(body.get("members").is_none());
    }

    async fn entra_removes_only_the_named_members(app) {
        let a = app.create_user("ea@example.com").await;
        let b = app.create_user("eb@example.com").await;
        let c = app.create_user("ec@example.com").await;
        let g = app.create_group("Entra Group", &[&a, &b, &c]).await;
        let path = format!("/Groups/{g}");
        let res = patch(&app, &path, json!([{"op": "Remove", "path": "members", "value": [{"value": a}]}])).await;
        assert_eq!(res.status(), 204);
        assert_eq!(member_ids(&app, &g).await, { let mut v = vec![b.clone(), c.clone()]; v.sort(); v });
        // Several membership changes in one request.
        let res = patch(&app, &path, json!([
            {"op": "Add", "path": "members", "value": [{"value": a}]},
            {"op": "Remove", "path": "members", "value": [{"value": b}]}
        ])).await;
        assert_eq!(res.status(), 204);
        assert_eq!(member_ids(&app, &g).await, { let mut v = vec![a.clone(), c.clone()]; v.sort(); v });
    }

    async fn a_group_patch_with_attributes_answers_200_with_the_projection(app) {
        let a = app.create_user("pa@example.com").await;
        let g = app.create_group("Projected", &[]).await;
        let res = app.send(Method::PATCH, &format!("/Groups/{g}?attributes=displayName"),
            Some(ops(json!([{"op": "add", "path": "members", "value": [{"value": a}]}])))).await;
        assert_eq!(res.status(), 200);
        let body = json(res).await;
        assert_eq!(body["displayName"], "Projected");
        assert!(body.get("members").is_none());
    }

    async fn adding_a_member_that_does_not_exist_is_400_and_changes_nothing(app) {
        let a = app.create_user("na@example.com").await;
        let g = app.create_group("Strict", &[&a]).await;
        let res = patch(&app, &format!("/Groups/{g}"), json!([
            {"op": "remove", "path": "members"},
            {"op": "add", "path": "members", "value": [{"value": "ghost"}]}
        ])).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
        assert_eq!(member_ids(&app, &g).await, vec![a]);
    }

    async fn two_patches_racing_on_one_group_both_land(app) {
        let g = app.create_group("Race", &[]).await;
        let mut users = Vec::new();
        for i in 0..12 { users.push(app.create_user(&format!("race{i}@example.com")).await); }
        let mut tasks = Vec::new();
        for u in users.clone() {
            let req = app.request(Method::PATCH, &format!("/Groups/{g}")).header("content-type", "application/scim+json")
                .body(ops(json!([{"op": "add", "path": "members", "value": [{"value": u}]}])).to_string());
            tasks.push(tokio::spawn(async move { req.send().await.expect("sent").status().as_u16() }));
        }
        for t in tasks { assert_eq!(t.await.expect("task"), 204); }
        let mut want = users; want.sort();
        assert_eq!(member_ids(&app, &g).await, want, "no member lost");
    }

    async fn a_password_patch_is_accepted_and_never_returned(app) {
        let id = app.create_user("pwp@example.com").await;
        let body = patch_ok(&app, &format!("/Users/{id}"), json!([{"op": "replace", "path": "password", "value": "n3w-Secret"}])).await;
        assert!(body.get("password").is_none());
    }
}

crate::both_databases! {
    async fn a_patch_of_id_or_meta_is_a_mutability_error_and_changes_nothing(app) {
        let id = app.create_user("common@example.com").await;
        let before = body_json(app.get(&format!("/Users/{id}")).await).await;
        for (op, path) in [("replace", "id"), ("replace", "meta.created"), ("remove", "meta"),
                           ("add", "meta.lastModified"), ("replace", "urn:ietf:params:scim:schemas:core:2.0:User:id")] {
            let res = patch(&app, &format!("/Users/{id}"), json!([{"op": op, "path": path, "value": "2000-01-01T00:00:00Z"}])).await;
            crate::helpers::assert_scim_error(res, 400, Some("mutability")).await;
        }
        let after = body_json(app.get(&format!("/Users/{id}")).await).await;
        assert_eq!(before, after, "nothing changed");
    }

    async fn adding_twenty_thousand_values_by_patch_keeps_each_once(app) {
        let id = app.create_user("many@example.com").await;
        let emails: Vec<serde_json::Value> = (0..20_000).map(|i| serde_json::json!({"value": format!("e{i}@example.com"), "type": "other"})).collect();
        let res = app.send(reqwest::Method::PATCH, &format!("/Users/{id}"), Some(serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "emails", "value": emails}]}))).await;
        assert_eq!(res.status(), 200);
        // The same values again, keys in another order: nothing is added twice.
        let again: Vec<serde_json::Value> = (0..20_000).map(|i| serde_json::json!({"type": "other", "value": format!("e{i}@example.com")})).collect();
        let res = app.send(reqwest::Method::PATCH, &format!("/Users/{id}"), Some(serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "emails", "value": again},
                           {"op": "remove", "path": "emails", "value": [{"value": "e7@example.com"}]}]}))).await;
        assert_eq!(res.status(), 200);
        let user = json(app.get(&format!("/Users/{id}?attributes=emails")).await).await;
        assert_eq!(user["emails"].as_array().expect("emails").len(), 20_000, "the first email plus 20,000, less e7");
    }
}

crate::both_databases! {
    async fn one_primary_value_at_most_and_a_patch_making_one_primary_clears_the_others(app) {
        let user = crate::helpers::USER;
        let two = json!({"schemas": [user], "userName": "two-primaries@example.com",
            "emails": [{"value": "a@x.example", "primary": true}, {"value": "b@x.example", "primary": true}]});
        crate::helpers::assert_scim_error(app.post("/Users", two).await, 400, Some("invalidValue")).await;
        let res = app.post("/Users", json!({"schemas": [user], "userName": "primary@example.com",
            "emails": [{"value": "a@x.example", "type": "work", "primary": true}, {"value": "b@x.example", "type": "home"}]})).await;
        assert_eq!(res.status(), 201);
        let id = body_json(res).await["id"].as_str().expect("id").to_string();
        let primaries = |doc: &Value| -> Vec<String> {
            doc["emails"].as_array().expect("emails").iter()
                .filter(|e| e["primary"] == true).map(|e| e["value"].as_str().expect("value").to_string()).collect()
        };
        // An added value marked primary takes it from the one that had it.
        let doc = patch_ok(&app, &format!("/Users/{id}"), json!([{"op": "add", "path": "emails", "value": [{"value": "c@x.example", "type": "other", "primary": true}]}])).await;
        assert_eq!(primaries(&doc), vec!["c@x.example"], "{doc}");
        // So does a value whose primary sub-attribute is set.
        let doc = patch_ok(&app, &format!("/Users/{id}"), json!([{"op": "replace", "path": "emails[value eq \"b@x.example\"].primary", "value": true}])).await;
        assert_eq!(primaries(&doc), vec!["b@x.example"], "{doc}");
        // A change that names no primary leaves the one there is.
        let doc = patch_ok(&app, &format!("/Users/{id}"), json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "w@x.example"}])).await;
        assert_eq!(primaries(&doc), vec!["b@x.example"], "{doc}");
        // A PUT with two is refused like a POST.
        let put = json!({"schemas": [user], "userName": "primary@example.com",
            "emails": [{"value": "a@x.example", "primary": true}, {"value": "b@x.example", "primary": "true"}]});
        crate::helpers::assert_scim_error(app.put(&format!("/Users/{id}"), put).await, 400, Some("invalidValue")).await;
    }
}

crate::both_databases! {
    async fn many_adds_to_one_list_in_one_patch_keep_each_value_once_in_order(app) {
        let id = app.create_user("many-adds@example.com").await;
        // Five hundred one-value adds (as a client batching a list would send them), a
        // hundred repeating a value added before, and a filtered add among them.
        let mut ops: Vec<Value> = (0..500)
            .map(|i| json!({"op": "add", "path": "emails", "value": [{"value": format!("a{}@x.example", i % 400), "type": "other"}]}))
            .collect();
        ops.insert(250, json!({"op": "add", "path": "emails[type eq \"work\"].value", "value": "w@x.example"}));
        ops.push(json!({"op": "add", "path": "emails", "value": {"value": "last@x.example", "type": "other"}}));
        let doc = patch_ok(&app, &format!("/Users/{id}"), json!(ops)).await;
        let values: Vec<&str> = doc["emails"].as_array().expect("emails").iter().map(|e| e["value"].as_str().expect("value")).collect();
        assert_eq!(values.len(), 402, "the work address, 400 distinct, the last one");
        assert_eq!(values[0], "w@x.example", "the filtered add changed the work address");
        assert_eq!(values[1], "a0@x.example");
        assert_eq!(values[400], "a399@x.example");
        assert_eq!(values[401], "last@x.example");
        let unique: std::collections::HashSet<&str> = values.iter().copied().collect();
        assert_eq!(unique.len(), values.len());
    }
}
