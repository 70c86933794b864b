//! The paths and filters clients really use: `id eq`, /Me, a trailing slash, another
//! letter case, and discovery in the order Microsoft's reference tests read it.

use reqwest::Method;

use crate::both_databases;

both_databases! {
    async fn a_filter_on_id_finds_the_resource_as_readme_says(app) {
        let id = app.create_user("byid@example.com").await;
        app.create_user("other@example.com").await;
        let res = app.request(Method::GET, "/Users").query(&[("filter", format!("id eq \"{id}\""))]).send().await.expect("sent");
        assert_eq!(res.status(), 200);
        let body = json(res).await;
        assert_eq!(body["totalResults"], 1);
        assert_eq!(body["Resources"][0]["id"], id.as_str());
        let res = app.request(Method::GET, "/Users").query(&[("filter", "id eq \"nobody\"")]).send().await.expect("sent");
        assert_eq!(json(res).await["totalResults"], 0);
    }

    async fn me_is_501_a_trailing_slash_and_another_case_reach_the_endpoint(app) {
        assert_scim_error(app.get("/Me").await, 501, None).await;
        assert_scim_error(app.send(Method::POST, "/Me", Some(user("me@example.com"))).await, 501, None).await;
        let id = app.create_user("slash@example.com").await;
        for path in ["/Users/", "/users", "/USERS/", "/users?count=1"] {
            let res = app.get(path).await;
            assert_eq!(res.status(), 200, "{path}");
            assert_eq!(json(res).await["totalResults"], 1, "{path}");
        }
        assert_eq!(app.get(&format!("/users/{id}")).await.status(), 200);
        assert_eq!(app.get(&format!("/Users/{id}/")).await.status(), 200);
        let res = app.post("/users", user("lower@example.com")).await;
        assert_eq!(res.status(), 201);
        assert_eq!(app.get("/groups").await.status(), 200);
        assert_eq!(app.get("/serviceproviderconfig").await.status(), 200);
        assert_scim_error(app.get("/Userz").await, 404, None).await;
    }

    async fn resource_types_list_user_before_group(app) {
        let body = json(app.get("/ResourceTypes").await).await;
        let names: Vec<&str> = body["Resources"].as_array().expect("list").iter().filter_map(|r| r["name"].as_str()).collect();
        assert_eq!(&names[..2], &["User", "Group"], "{names:?}");
    }
}
