use std::process::Command;

use reqwest::Method;

use crate::both_databases;

both_databases! {
    async fn a_request_without_a_token_is_401_with_www_authenticate(app) {
        let res = app.client.get(format!("{}/Users", app.base)).send().await.expect("sent");
        assert_eq!(res.headers().get("www-authenticate").expect("header"), "Bearer realm=\"scim-bridge\"");
        assert_scim_error(res, 401, None).await;
    }

    async fn a_wrong_token_is_401(app) {
        let res = app.client.get(format!("{}/Users", app.base)).bearer_auth("wrong").send().await.expect("sent");
        assert_scim_error(res, 401, None).await;
        let res = app.client.get(format!("{}/Users", app.base)).header("authorization", format!("Basic {}", app.token)).send().await.expect("sent");
        assert_scim_error(res, 401, None).await;
    }

    async fn a_token_made_by_token_create_is_accepted_and_stored_only_as_a_hash(app) {
        let out = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
            .args(["token", "create", "--name", "okta", "--database-url", &app.db.url()])
            .env_remove("SCIM_BRIDGE_TOKEN")
            .output().expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8(out.stdout).expect("utf8").trim().to_string();
        assert!(token.starts_with("scb_") && token.len() > 40);
        let res = app.client.request(Method::GET, format!("{}/Users", app.base)).bearer_auth(&token).send().await.expect("sent");
        assert_eq!(res.status(), 200);
        if let TestDb::Sqlite(dir) = &*app.db {
            let raw = std::fs::read(dir.path().join("test.db")).expect("db file");
            let wal = std::fs::read(dir.path().join("test.db-wal")).unwrap_or_default();
            let needle = token.as_bytes();
            assert!(!raw.windows(needle.len()).any(|w| w == needle) && !wal.windows(needle.len()).any(|w| w == needle));
        }
    }
}

crate::tests! {
    fn a_command_run_away_from_the_database_says_so_instead_of_making_an_empty_one() {
        let elsewhere = tempfile::tempdir().expect("dir");
        for args in [&["token", "create", "--name", "okta"][..], &["client", "list"], &["outbox", "list"]] {
            let out = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
                .args(args)
                .current_dir(elsewhere.path())
                .env_remove("SCIM_BRIDGE_DATABASE_URL")
                .env_remove("SCIM_BRIDGE_TOKEN")
                .output().expect("runs");
            assert!(!out.status.success(), "{args:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("no database at scim-bridge.db"), "{args:?}: {err}");
            assert!(!elsewhere.path().join("scim-bridge.db").exists(), "{args:?} made a database");
        }
        // migrate is asked to make one, and does.
        let out = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
            .arg("migrate").current_dir(elsewhere.path()).env_remove("SCIM_BRIDGE_DATABASE_URL")
            .output().expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(elsewhere.path().join("scim-bridge.db").exists());
    }

    fn a_misspelt_setting_variable_is_reported_not_ignored_in_silence() {
        let dir = tempfile::tempdir().expect("dir");
        let config = dir.path().join("bridge.toml");
        std::fs::write(&config, "listen = \"127.0.0.1:0\"\n").expect("config");
        let out = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
            .arg("check-config").arg(&config)
            .env("SCIM_BRIDGE_CONNECTORS", "[]")
            .output().expect("runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("warning: SCIM_BRIDGE_CONNECTORS is not a setting and is ignored: did you mean SCIM_BRIDGE_CONNECTOR?"), "{text}");
        assert!(out.status.success(), "a warning, not a problem: {text}");
    }
}

crate::each_database! {
    async fn an_address_past_its_failed_authentications_waits_and_other_addresses_do_not(db) {
        let app = crate::helpers::spawn_tweaked(db, |s| {
            s.auth_failures_per_sec = 0.01;
            s.auth_failures_burst = 3;
            s.trusted_proxies = vec!["127.0.0.1".into()];
        })
        .await;
        let from = |addr: &str, token: &str| {
            app.client.get(format!("{}/Users", app.base)).bearer_auth(token).header("X-Forwarded-For", addr).send()
        };
        for _ in 0..3 {
            assert_eq!(from("10.0.0.7", "wrong").await.expect("sent").status(), 401);
        }
        let over = from("10.0.0.7", "wrong").await.expect("sent");
        assert_eq!(over.status(), 429);
        assert!(over.headers().get("retry-after").is_some());
        // Past the budget the address is refused before its credential is looked at; one
        // that presents none is answered 401, as it costs nothing.
        assert_eq!(from("10.0.0.7", &app.token).await.expect("sent").status(), 429);
        let bare = app.client.get(format!("{}/Users", app.base)).header("X-Forwarded-For", "10.0.0.7").send().await.expect("sent");
        assert_eq!(bare.status(), 401);
        let res = app.client.post(format!("http://127.0.0.1:{}/oauth/token", app.port))
            .header("X-Forwarded-For", "10.0.0.7")
            .form(&[("grant_type", "client_credentials"), ("client_id", "x"), ("client_secret", "y")])
            .send().await.expect("sent");
        assert_eq!(res.status(), 429);
        // Another address is not held back by it.
        assert_eq!(from("10.0.0.8", &app.token).await.expect("sent").status(), 200);
        // Wrong client secrets at the token endpoint count as failures too.
        for _ in 0..3 {
            let res = app.client.post(format!("http://127.0.0.1:{}/oauth/token", app.port))
                .header("X-Forwarded-For", "10.0.0.9")
                .form(&[("grant_type", "client_credentials"), ("client_id", "x"), ("client_secret", "y")])
                .send().await.expect("sent");
            assert_eq!(res.status(), 401);
        }
        let res = app.client.post(format!("http://127.0.0.1:{}/oauth/token", app.port))
            .header("X-Forwarded-For", "10.0.0.9")
            .form(&[("grant_type", "client_credentials"), ("client_id", "x"), ("client_secret", "y")])
            .send().await.expect("sent");
        assert_eq!(res.status(), 429);
    }
}
