//! Secrets: `env:` and `file:` references resolved for the SCIM and admin tokens as for
//! connector secrets, an unresolvable one refused, and no secret in any error or Debug.

use std::process::Command;

use reqwest::Method;

use scim_bridge::config::{ConnectorConfig, ConnectorKind, Secret, Settings};

use crate::helpers::*;

use crate::each_database as on_both;

on_both! {
    async fn tokens_given_as_env_or_file_references_are_resolved_and_the_reference_is_no_token(db) {
        let first = spawn_app(db).await;
        let mut settings = first.settings.clone();
        let dbh = first.stop().await;
        let var = format!("SCIM_TEST_ADMIN_{}", uuid::Uuid::new_v4().simple());
        std::env::set_var(&var, "admin-from-the-environment");
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("scim-token");
        std::fs::write(&file, "scim-from-a-file\n").expect("write");
        settings.admin_token = Some(Secret::new(format!("env:{var}")));
        settings.token = Some(Secret::new(format!("file:{}", file.display())));
        let app = spawn_with(dbh, settings).await;
        let admin = |token: String| {
            let url = format!("http://127.0.0.1:{}/admin/v1/connectors", app.port);
            let client = app.client.clone();
            async move { client.get(url).bearer_auth(token).send().await.expect("sent").status().as_u16() }
        };
        assert_eq!(admin("admin-from-the-environment".into()).await, 200);
        assert_eq!(admin(format!("env:{var}")).await, 401, "the reference itself is not the token");
        let scim = |token: &str| app.client.request(Method::GET, format!("{}/Users", app.base)).bearer_auth(token).send();
        assert_eq!(scim("scim-from-a-file").await.expect("sent").status(), 200);
        assert_eq!(scim(&format!("file:{}", file.display())).await.expect("sent").status(), 401);
    }
}

crate::tests! {
    async fn an_unresolvable_token_reference_stops_the_start_and_check_config_reports_it() {
        let dir = tempfile::tempdir().expect("dir");
        let settings = Settings {
            listen: "127.0.0.1:0".into(),
            database_url: format!("sqlite://{}", dir.path().join("t.db").display()),
            admin_token: Some(Secret::new("env:SCIM_TEST_SURELY_UNSET_42")),
            ..Settings::default()
        };
        let err = scim_bridge::startup::Application::build(
            settings,
            std::sync::Arc::new(scim_bridge::clock::SystemClock),
        )
        .err()
        .expect("refused");
        let text = err.to_string();
        assert!(
            text.contains("admin_token") && text.contains("SCIM_TEST_SURELY_UNSET_42"),
            "{text}"
        );
        let problems = scim_bridge::config::check_file(
            "token = \"file:/nonexistent/token\"\nadmin_token = \"env:SCIM_TEST_SURELY_UNSET_42\"\n",
        );
        let lines: Vec<usize> = problems.iter().filter_map(|p| p.line()).collect();
        assert_eq!(lines, vec![1, 2], "{problems:?}");
        assert!(problems[1]
            .message
            .contains("SCIM_TEST_SURELY_UNSET_42 is not set"));
    }
}

crate::tests! {
    fn a_settings_file_that_does_not_parse_is_reported_without_the_line_that_holds_a_secret() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("bridge.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:0\"\nadmin_token = \"s3cr3t-never-shown\" extra\n",
        )
        .expect("write");
        let err = Settings::read(Some(&file), &|_| None, |_| ())
            .expect_err("does not parse")
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
        let out = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
            .args(["serve", "--config", file.to_str().expect("path")])
            .output()
            .expect("runs");
        assert!(!out.status.success());
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains("line 2") && !all.contains("s3cr3t"), "{all}");
    }
}

crate::tests! {
    fn debug_output_of_settings_and_connectors_shows_no_secret() {
        let mut c = ConnectorConfig::new(
            "sso",
            ConnectorKind::EntSso,
            "https://relay.example/SendNotification",
        )
        .with_credentials("svc", "p4ssw0rd-hidden");
        c.secret = Some(Secret::new("hmac-hidden"));
        c.options
            .insert("callback_token".into(), "callback-hidden".into());
        let settings = Settings {
            database_url: "postgres://bridge:db-pass-hidden@db.example/scim".into(),
            token: Some(Secret::new("token-hidden")),
            admin_token: Some(Secret::new("admin-hidden")),
            outbox_key: Some(Secret::new("key-hidden")),
            connectors: vec![c],
            ..Settings::default()
        };
        let text = format!("{settings:?} {}", Secret::new("display-hidden"));
        for secret in [
            "p4ssw0rd",
            "hmac-hidden",
            "callback-hidden",
            "db-pass",
            "token-hidden",
            "admin-hidden",
            "key-hidden",
            "display-hidden",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(
            text.contains("callback_token") && text.contains("db.example"),
            "{text}"
        );
    }
}
