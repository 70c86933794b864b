//! A target ends as the bridge holds each resource, whatever runs beside the live changes:
//! a sync or a reconcile repair reads a copy of a user, the identity provider deletes or
//! changes that user before the copy is queued, and the copy must not bring the user back
//! nor put the older value back in the target. Checked against the Pyramid emulator, whose
//! users carry their SCIM ids, so a user brought back would show.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use scim_bridge::clock::{format_time, Clock};
use scim_bridge::emulator::pyramid::PyramidEmulator;
use scim_bridge::store::BackfillStore;

use crate::helpers::*;
use crate::vendors::{creds, rig, Rig, ADMIN};

async fn pyramid(db: Db) -> Rig {
    rig(
        db,
        Arc::new(PyramidEmulator::new(creds())),
        "pyramid",
        "/API2",
        |_| {},
    )
    .await
}

/// The target's users: SCIM id to (principal, first name).
async fn target(r: &Rig) -> BTreeMap<String, (String, String)> {
    let s = r.state().await;
    s["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| {
            let text = |k: &str| u[k].as_str().unwrap_or_default().to_string();
            (text("id"), (text("principalName"), text("firstName")))
        })
        .collect()
}

/// The bridge's users, the same way.
async fn bridge(app: &TestApp) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let mut start = 1;
    loop {
        let page = json(
            app.get(&format!("/Users?startIndex={start}&count=500"))
                .await,
        )
        .await;
        let items = page["Resources"].as_array().cloned().unwrap_or_default();
        for u in &items {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            out.insert(
                text(&u["id"]),
                (text(&u["userName"]), text(&u["name"]["givenName"])),
            );
        }
        if items.is_empty() {
            return out;
        }
        start += items.len();
    }
}

/// `n` users, in /Bulk requests of 500, delivered to the target.
async fn seed(r: &Rig, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|i| {
                let mut u = user(&format!("snap{i}@example.com"));
                u["name"] = json!({"givenName": "First", "familyName": "Last"});
                json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"), "data": u})
            })
            .collect();
        let res = r
            .app
            .post(
                "/Bulk",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}),
            )
            .await;
        assert_eq!(res.status(), 200);
        for o in json(res).await["Operations"].as_array().expect("ops") {
            assert_eq!(o["status"], "201", "{o}");
            let location = o["location"].as_str().expect("location");
            ids.push(location.rsplit('/').next().expect("id").to_string());
        }
    }
    r.settle().await;
    r.no_dead_jobs().await;
    ids
}

async fn rename_first(r: &Rig, id: &str, first: &str) {
    let res = r
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "name.givenName", "value": first}]),
        )
        .await;
    assert_eq!(res.status(), 200);
}

/// Asserts the target holds exactly the bridge's users, with their current values.
async fn assert_target_is_bridge(r: &Rig) {
    let (t, b) = (target(r).await, bridge(&r.app).await);
    let extra: BTreeSet<_> = t.keys().filter(|k| !b.contains_key(*k)).collect();
    let missing: BTreeSet<_> = b.keys().filter(|k| !t.contains_key(*k)).collect();
    assert!(
        extra.is_empty(),
        "{} users deleted in the bridge are in the target: {extra:?}",
        extra.len()
    );
    assert!(
        missing.is_empty(),
        "{} users are missing from the target: {missing:?}",
        missing.len()
    );
    let stale: Vec<_> = b.iter().filter(|(k, v)| t.get(*k) != Some(v)).collect();
    assert!(
        stale.is_empty(),
        "{} users hold older values in the target: {stale:?}",
        stale.len()
    );
}

crate::each_database! {
    async fn a_sync_copy_read_before_a_delete_and_a_change_brings_back_neither_the_user_nor_the_old_value(db) {
        let r = pyramid(db).await;
        let ids = seed(&r, 3).await;
        // The sync reads its copy of every user...
        let rows = r.app.core.store.backfill_page("pyramid", "User", true, None, 500).expect("read");
        assert_eq!(rows.len(), 3);
        // ...the identity provider deletes one and changes another, and both reach the target...
        assert_eq!(r.app.delete(&format!("/Users/{}", ids[0])).await.status(), 204);
        rename_first(&r, &ids[1], "Changed").await;
        r.settle().await;
        assert_eq!(target(&r).await.len(), 2);
        // ...and only then is the copy queued.
        let now = format_time(r.app.clock.now());
        let run = r.app.core.store.start_run("pyramid", true, &now).expect("run");
        let jobs = r.app.core.resources.backfill_jobs("pyramid", "User", &rows).expect("jobs");
        r.app.core.store.queue_backfill(run, &jobs, &now).expect("queued");
        r.settle().await;
        r.no_dead_jobs().await;
        assert_target_is_bridge(&r).await;
        assert_eq!(target(&r).await[&ids[1]].1, "Changed");
        let gone = r.admin(&format!("/users/{}", ids[0])).await;
        assert_eq!(gone["connectors"][0]["state"], "deleted", "{gone}");
        let changed = r.admin(&format!("/users/{}", ids[1])).await;
        assert_eq!(changed["connectors"][0]["state"], "synced", "{changed}");
    }

    async fn a_repair_read_before_a_change_leaves_that_user_to_its_own_newer_job(db) {
        let r = pyramid(db).await;
        let ids = seed(&r, 2).await;
        let rows = r.app.core.store.backfill_page("pyramid", "User", true, None, 500).expect("read");
        rename_first(&r, &ids[0], "Newer").await;
        assert_eq!(r.app.delete(&format!("/Users/{}", ids[1])).await.status(), 204);
        let now = format_time(r.app.clock.now());
        let run = r.app.core.store.start_run("pyramid", false, &now).expect("run");
        let jobs = r.app.core.resources.backfill_jobs("pyramid", "User", &rows).expect("jobs");
        let queued = r.app.core.store.queue_repair(run, &jobs, &now).expect("queued");
        assert_eq!(queued, 0, "both users moved on after the read");
        r.settle().await;
        r.no_dead_jobs().await;
        assert_target_is_bridge(&r).await;
        let standing = r.admin(&format!("/users/{}", ids[0])).await;
        assert!(standing["connectors"][0]["targetId"].is_string(), "the mapping keeps its target id: {standing}");
    }

    async fn deletes_and_changes_racing_a_sync_of_two_thousand_users_leave_the_target_as_the_bridge_holds_it(db) {
        let r = pyramid(db).await;
        let ids = seed(&r, 2000).await;
        let http = r.http.clone();
        let url = format!("http://127.0.0.1:{}/admin/v1/connectors/pyramid/sync?all=true", r.app.port);
        let sync = tokio::spawn(async move {
            http.request(Method::POST, url).bearer_auth(ADMIN).send().await.expect("sync").status()
        });
        // Deliveries run beside the race, as workers would, until the race is over (or
        // the test fails: the guard stops them, so a failure never leaves them spinning).
        let core = r.app.core.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for StopOnDrop {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let guard = StopOnDrop(stop.clone());
        let worker = {
            let stop = stop.clone();
            tokio::task::spawn_blocking(move || {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    if let Err(e) = core.dispatcher.deliver_due() {
                        eprintln!("delivery: {e}");
                    }
                }
            })
        };
        for i in (0..ids.len()).step_by(20) {
            assert_eq!(r.app.delete(&format!("/Users/{}", ids[i])).await.status(), 204);
            rename_first(&r, &ids[i + 10], &format!("Raced{i}")).await;
        }
        let synced = sync.await.expect("joined");
        drop(guard);
        worker.await.expect("joined");
        assert!(synced.is_success(), "{synced}");
        r.settle().await;
        r.no_dead_jobs().await;
        assert_target_is_bridge(&r).await;
        assert_eq!(target(&r).await.len(), 1900);
    }

    async fn deletes_and_changes_racing_a_reconcile_repair_leave_the_target_as_the_bridge_holds_it(db) {
        let r = pyramid(db).await;
        let ids = seed(&r, 600).await;
        // Every user drifts in the target, so the repair has each of them to put back.
        for (i, id) in ids.iter().enumerate() {
            let res = r.emu_post("/_emulator/drift", json!({"user": format!("snap{i}@example.com"), "set": {"firstName": "Drifted"}})).await;
            assert_eq!(res.status(), 200, "{id}");
        }
        let res = r.http.request(Method::POST, format!("http://127.0.0.1:{}/admin/v1/connectors/pyramid/reconcile?repair=true", r.app.port))
            .bearer_auth(ADMIN).send().await.expect("sent");
        assert_eq!(res.status(), 202);
        for i in (0..ids.len()).step_by(10) {
            assert_eq!(r.app.delete(&format!("/Users/{}", ids[i])).await.status(), 204);
            rename_first(&r, &ids[i + 5], &format!("Raced{i}")).await;
            r.app.deliver_due().await;
        }
        let done = r.app.reconciled("pyramid").await;
        assert_eq!(done["state"], "finished", "{done}");
        r.settle().await;
        r.no_dead_jobs().await;
        assert_target_is_bridge(&r).await;
        assert_eq!(target(&r).await.len(), 540);
    }
}
