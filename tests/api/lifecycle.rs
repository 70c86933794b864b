//! The process: restarts keep data, bad database URLs are one-line errors, SIGTERM stops
//! the server cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::both_databases;

both_databases! {
    async fn a_restart_keeps_all_data(app) {
        let u = app.create_user("keep@example.com").await;
        let g = app.create_group("Keepers", &[&u]).await;
        let settings = app.settings.clone();
        let db = app.stop().await;
        let app = spawn_with(db, settings).await;
        let user = json(app.get(&format!("/Users/{u}")).await).await;
        assert_eq!(user["userName"], "keep@example.com");
        assert_eq!(user["groups"][0]["value"], g.as_str());
        let group = json(app.get(&format!("/Groups/{g}")).await).await;
        assert_eq!(group["members"][0]["value"], u.as_str());
    }
}

crate::tests! {
    fn an_unknown_database_scheme_is_a_one_line_error_and_a_failing_exit() {
        let out = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                "mysql://u:secret@localhost/db",
            ])
            .output()
            .expect("runs");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("scim-bridge:"))
            .collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(
            err.contains("database_url: the database is sqlite://PATH or postgres://"),
            "{err}"
        );
        assert!(!err.contains("secret"), "the password is not shown: {err}");
        assert!(!err.contains("panicked"));
    }
}

crate::tests! {
    fn a_database_that_refuses_connections_is_retried_with_one_line_each_then_a_failing_exit() {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
            .args([
                "migrate",
                "--database-url",
                "postgres://nobody@127.0.0.1:1/none",
            ])
            .env("SCIM_BRIDGE_DATABASE_WAIT_SECS", "2")
            .output()
            .expect("runs");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("scim-bridge: cannot connect to the database"),
            "{err}"
        );
        let retries = err
            .lines()
            .filter(|l| l.contains("trying again in"))
            .count();
        // 0.25 + 0.5 + 1 s of waits fit in 2 s: three retries, one line each, no pool noise.
        assert_eq!(retries, 3, "{err}");
        assert_eq!(err.lines().count(), retries + 1, "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(!err.contains("panicked"));
    }
}

crate::tests! {
    fn an_unknown_host_or_a_missing_database_fails_at_once_in_one_line() {
        let mut urls = vec!["postgres://nobody@no-such-host.invalid/none".to_string()];
        if let Ok(admin) = std::env::var("TEST_POSTGRES_URL") {
            let mut u = url::Url::parse(&admin).expect("url");
            u.set_path("/scim_no_such_database_at_all");
            urls.push(u.to_string());
        }
        for url in urls {
            let started = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
                .args(["migrate", "--database-url", &url])
                .output()
                .expect("runs");
            assert!(!out.status.success());
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(err.trim().lines().count(), 1, "{url}: {err}");
            assert!(err.contains("cannot connect to the database"), "{err}");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{url}: no waiting"
            );
        }
    }
}

crate::tests! {
    fn serve_makes_a_first_token_once_into_an_owner_only_file_and_stops_cleanly_on_sigterm() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let mut child = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
            .env_remove("SCIM_BRIDGE_TOKEN")
            .env_remove("STATE_DIRECTORY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        // Its output is not a terminal (a service's goes to the journal): the token goes to
        // a file beside the database that only its owner can read, and only its path is said.
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut port = None;
        let mut said_where = false;
        let mut log = Vec::new();
        for line in stderr.lines() {
            let line = line.expect("utf8");
            said_where |= line.contains("initial-token");
            log.push(line.clone());
            if let Some(rest) = line.split("(port ").nth(1) {
                port = rest.trim_end_matches(')').parse::<u16>().ok();
                break;
            }
        }
        assert!(said_where, "{log:?}");
        let file = dir.path().join("initial-token");
        let token = std::fs::read_to_string(&file).expect("the token file").trim().to_string();
        assert!(token.starts_with("scb_"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777, 0o600);
        assert!(log.iter().all(|l| !l.contains(&token)), "the token is never logged");
        let port = port.expect("the server says its port");
        let res = reqwest::blocking::Client::new()
            .get(format!("http://127.0.0.1:{port}/scim/v2/Users"))
            .bearer_auth(&token)
            .send()
            .expect("sent");
        assert_eq!(res.status(), 200);
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        use wait_timeout::ChildExt;
        let status = child
            .wait_timeout(Duration::from_secs(20))
            .expect("wait")
            .expect("the server stops");
        assert!(status.success(), "exit status {status:?}");
        let mut printed = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut printed).expect("read");
        assert!(!printed.contains(&token), "not on standard output either: {printed}");
        // A second start finds the token and makes no new one.
        let out = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
            .args([
                "token",
                "create",
                "--name",
                "second",
                "--database-url",
                &url,
            ])
            .output()
            .expect("runs");
        assert!(out.status.success());
    }

    fn serve_makes_no_token_when_an_oauth_client_can_already_reach_the_api() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let run = |args: &[&str]| {
            let out = Command::new(env!("CARGO_BIN_EXE_scim-bridge")).args(args).args(["--database-url", &url])
                .env_remove("SCIM_BRIDGE_TOKEN").output().expect("runs");
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        run(&["migrate"]);
        run(&["client", "create", "--name", "entra"]);
        let mut child = Command::new(env!("CARGO_BIN_EXE_scim-bridge"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
            .env_remove("SCIM_BRIDGE_TOKEN")
            .env_remove("STATE_DIRECTORY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        for line in stderr.lines() {
            if line.expect("utf8").contains("(port ") {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(!dir.path().join("initial-token").exists(), "no token was made");
    }
}
