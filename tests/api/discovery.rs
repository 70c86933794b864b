use serde_json::json;

use crate::both_databases;
use crate::helpers::*;

both_databases! {
    async fn service_provider_config_advertises_what_the_server_does(app) {
        let res = app.get("/ServiceProviderConfig").await;
        assert_eq!(res.status(), 200);
        let body = json(res).await;
        assert_eq!(body["schemas"][0], "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig");
        assert_eq!(body["filter"]["supported"], true);
        assert_eq!(body["filter"]["maxResults"], 1000);
        assert_eq!(body["etag"]["supported"], true);
        assert_eq!(body["authenticationSchemes"][0]["type"], "oauthbearertoken");
        assert!(body["meta"]["location"].as_str().expect("loc").ends_with("/ServiceProviderConfig"));
    }

    async fn resource_types_and_schemas_are_served_from_the_documents(app) {
        let rts = json(app.get("/ResourceTypes").await).await;
        assert_eq!(rts["totalResults"], 2);
        let user = json(app.get("/ResourceTypes/User").await).await;
        assert_eq!(user["endpoint"], "/Users");
        assert_eq!(user["schemaExtensions"][0]["schema"], ENTERPRISE);
        let schemas = json(app.get("/Schemas").await).await;
        // Core User and Group, the enterprise extension, and the Itron accounts extension.
        assert_eq!(schemas["totalResults"], 4);
        let s = json(app.get(&format!("/Schemas/{USER}")).await).await;
        assert_eq!(s["id"], USER);
        assert!(s["attributes"].as_array().expect("attrs").iter().any(|a| a["name"] == "userName"));
        assert_scim_error(app.get("/Schemas/urn:nope").await, 404, None).await;
        assert_scim_error(app.get("/ResourceTypes/Nope").await, 404, None).await;
    }
}

crate::tests! {
    async fn an_administrator_adds_an_extension_schema_by_adding_a_file() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(dir.path().join("schemas")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("resource-types")).expect("mkdir");
        let urn = "urn:example:params:scim:schemas:extension:acme:2.0:User";
        std::fs::write(dir.path().join("schemas/acme.json"), json!({
            "id": urn, "name": "AcmeUser",
            "attributes": [{"name": "badgeNumber", "type": "integer", "multiValued": false, "required": false,
                            "mutability": "readWrite", "returned": "default", "uniqueness": "none"}]
        }).to_string()).expect("write");
        std::fs::write(dir.path().join("resource-types/User.json"), json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User", "name": "User", "endpoint": "/Users", "schema": USER,
            "schemaExtensions": [{"schema": ENTERPRISE, "required": false}, {"schema": urn, "required": false}]
        }).to_string()).expect("write");
        let db = spawn_app(Db::Sqlite).await.stop().await;
        let mut settings = settings_for(&db);
        settings.schemas_dir = Some(dir.path().to_path_buf());
        let app = spawn_with(db, settings).await;
        let schema = app.get(&format!("/Schemas/{urn}")).await;
        assert_eq!(schema.status(), 200);
        let mut u = user("acme@example.com");
        u["schemas"] = json!([USER, urn]);
        u[urn] = json!({"badgeNumber": 1234});
        let body = json(app.post("/Users", u.clone()).await).await;
        assert_eq!(body[urn]["badgeNumber"], 1234);
        u[urn] = json!({"badgeNumber": "not a number"});
        u["userName"] = json!("acme2@example.com");
        assert_scim_error(app.post("/Users", u).await, 400, Some("invalidValue")).await;
    }
}
