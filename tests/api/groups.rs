use serde_json::json;

use crate::both_databases;

both_databases! {
    async fn a_group_lists_its_members_with_type_filled_in(app) {
        let u = app.create_user("m1@example.com").await;
        let g = app.create_group("Staff", &[&u]).await;
        let body = json(app.get(&format!("/Groups/{g}")).await).await;
        assert_eq!(body["displayName"], "Staff");
        let members = body["members"].as_array().expect("members");
        assert_eq!(members.len(), 1);
        assert_eq!(members[0]["value"], u.as_str());
        assert_eq!(members[0]["type"], "User");
        assert!(members[0]["$ref"].as_str().expect("ref").ends_with(&format!("/Users/{u}")));
    }

    async fn a_member_that_does_not_exist_is_400(app) {
        let res = app.post("/Groups", json!({"schemas": [GROUP], "displayName": "Ghosts", "members": [{"value": "nope"}]})).await;
        assert_scim_error(res, 400, Some("invalidValue")).await;
        let list = json(app.get("/Groups").await).await;
        assert_eq!(list["totalResults"], 0, "nothing half-created");
    }

    async fn a_users_groups_are_computed_from_membership(app) {
        let u = app.create_user("m2@example.com").await;
        let g1 = app.create_group("Alpha", &[&u]).await;
        let g2 = app.create_group("Beta", &[&u]).await;
        let body = json(app.get(&format!("/Users/{u}")).await).await;
        let mut groups: Vec<String> = body["groups"].as_array().expect("groups").iter()
            .map(|g| g["value"].as_str().expect("value").to_string()).collect();
        groups.sort();
        let mut want = vec![g1, g2]; want.sort();
        assert_eq!(groups, want);
        let alpha = body["groups"].as_array().expect("groups").iter().find(|g| g["display"] == "Alpha");
        assert!(alpha.is_some());
    }

    async fn deleting_a_user_removes_it_from_every_group(app) {
        let u = app.create_user("m3@example.com").await;
        let keep = app.create_user("m4@example.com").await;
        let g = app.create_group("Gamma", &[&u, &keep]).await;
        let before = json(app.get(&format!("/Groups/{g}")).await).await;
        assert_eq!(app.delete(&format!("/Users/{u}")).await.status(), 204);
        let after = json(app.get(&format!("/Groups/{g}")).await).await;
        assert_eq!(after["members"], json!([{"value": keep, "$ref": format!("{}/Users/{keep}", app.base), "type": "User", "display": "m4@example.com"}]));
        assert_ne!(before["meta"]["version"], after["meta"]["version"], "the group's version moves on");
    }

    async fn excluded_members_are_left_out_and_groups_filter_by_display_name(app) {
        let u = app.create_user("m5@example.com").await;
        let g = app.create_group("Delta Team", &[&u]).await;
        let body = json(app.get(&format!("/Groups/{g}?excludedAttributes=members")).await).await;
        assert!(body.get("members").is_none());
        assert_eq!(body["displayName"], "Delta Team");
        let list = json(app.get("/Groups?filter=displayName%20eq%20%22delta%20team%22&excludedAttributes=members").await).await;
        assert_eq!(list["totalResults"], 1);
        assert_eq!(list["Resources"][0]["id"], g.as_str());
        assert!(list["Resources"][0].get("members").is_none());
    }

    async fn put_replaces_a_groups_members(app) {
        let a = app.create_user("m6@example.com").await;
        let b = app.create_user("m7@example.com").await;
        let g = app.create_group("Epsilon", &[&a]).await;
        let res = app.put(&format!("/Groups/{g}"), json!({"schemas": [GROUP], "displayName": "Epsilon", "members": [{"value": b, "type": "User"}]})).await;
        assert_eq!(res.status(), 200);
        let body = json(res).await;
        let members: Vec<&str> = body["members"].as_array().expect("members").iter().map(|m| m["value"].as_str().expect("v")).collect();
        assert_eq!(members, vec![b.as_str()]);
        let user_a = json(app.get(&format!("/Users/{a}")).await).await;
        assert!(user_a.get("groups").is_none());
    }

    async fn a_group_can_contain_a_group(app) {
        let inner = app.create_group("Inner", &[]).await;
        let outer = app.create_group("Outer", &[&inner]).await;
        let body = json(app.get(&format!("/Groups/{outer}")).await).await;
        assert_eq!(body["members"][0]["type"], "Group");
        assert_eq!(body["members"][0]["display"], "Inner");
    }
}
