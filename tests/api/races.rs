//! Writes that race, on both databases: each request changes only what it changes, exactly
//! one of concurrent deletes succeeds, no request without If-Match gets 412, a member
//! deleted while being added is a 400, and member events name only real changes, with
//! versions that rise strictly.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::outbox::Hooked;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn ops(list: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": list})
}

async fn patch(app: &TestApp, path: &str, list: Value) -> reqwest::Response {
    app.send(Method::PATCH, path, Some(ops(list))).await
}

/// Every event the emulator received once the queue is empty.
async fn settled_events(h: &Hooked) -> Vec<Value> {
    h.wait_for(
        "an empty queue",
        |v| v["connectors"][0]["queueDepth"] == 0,
        "/connectors",
    )
    .await;
    h.events().await
}

crate::with_hook! {
    async fn a_membership_patch_never_undoes_a_concurrent_rename(h) {
        let app = Arc::new(h.app);
        let gid = app.create_group("Name-0", &[]).await;
        let mut users = Vec::new();
        for i in 0..96 {
            users.push(app.create_user(&format!("m{i}@example.com")).await);
        }
        // Renames one after another, each acknowledged, while members are added 32 at a
        // time, each PATCH reading the group before the rename that lands under it.
        let renames = {
            let (app, gid) = (app.clone(), gid.clone());
            tokio::spawn(async move {
                for i in 1..=40 {
                    let res = patch(&app, &format!("/Groups/{gid}"), json!([{"op": "replace", "path": "displayName", "value": format!("Name-{i}")}])).await;
                    assert!(res.status().is_success(), "rename {i}: {}", res.status());
                }
            })
        };
        for wave in users.chunks(32) {
            let adds: Vec<_> = wave.iter().map(|u| {
                let (app, gid, u) = (app.clone(), gid.clone(), u.clone());
                tokio::spawn(async move {
                    let res = patch(&app, &format!("/Groups/{gid}"), json!([{"op": "add", "path": "members", "value": [{"value": u}]}])).await;
                    assert!(res.status().is_success(), "{}", res.status());
                })
            }).collect();
            for a in adds {
                a.await.expect("add");
            }
        }
        renames.await.expect("renames");
        let group = json(app.get(&format!("/Groups/{gid}")).await).await;
        assert_eq!(group["displayName"], "Name-40", "the last acknowledged rename stands");
        assert_eq!(group["members"].as_array().expect("members").len(), 96);
    }

    async fn of_concurrent_deletes_of_one_user_exactly_one_succeeds_and_one_event_is_sent(h) {
        let app = Arc::new(h.app);
        let id = app.create_user("gone@example.com").await;
        let deletes: Vec<_> = (0..32).map(|_| {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move { app.delete(&format!("/Users/{id}")).await.status().as_u16() })
        }).collect();
        let mut statuses = Vec::new();
        for d in deletes {
            statuses.push(d.await.expect("joined"));
        }
        assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 404).count(), 31, "{statuses:?}");
        let h = Hooked { app: Arc::try_unwrap(app).ok().expect("sole owner"), emulator: h.emulator, admin: h.admin };
        let events = settled_events(&h).await;
        assert_eq!(events.iter().filter(|e| e["event"] == "user.deleted").count(), 1);
    }

    async fn writes_without_if_match_never_get_412_however_many_race(h) {
        let app = Arc::new(h.app);
        let id = app.create_user("busy@example.com").await;
        let writes: Vec<_> = (0..96).map(|i| {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move {
                if i % 2 == 0 {
                    patch(&app, &format!("/Users/{id}"), json!([{"op": "replace", "path": "title", "value": format!("T{i}")}])).await.status().as_u16()
                } else {
                    let mut body = user("busy@example.com");
                    body["title"] = json!(format!("T{i}"));
                    app.put(&format!("/Users/{id}"), body).await.status().as_u16()
                }
            })
        }).collect();
        for w in writes {
            assert_eq!(w.await.expect("joined"), 200);
        }
    }

    async fn a_user_deleted_while_being_added_to_a_group_is_a_400_or_a_success_never_a_500(h) {
        let app = Arc::new(h.app);
        let gid = app.create_group("Racing", &[]).await;
        for i in 0..16 {
            let id = app.create_user(&format!("race{i}@example.com")).await;
            let del = { let (app, id) = (app.clone(), id.clone()); tokio::spawn(async move { app.delete(&format!("/Users/{id}")).await.status().as_u16() }) };
            let add = { let (app, gid, id) = (app.clone(), gid.clone(), id.clone());
                tokio::spawn(async move { patch(&app, &format!("/Groups/{gid}"), json!([{"op": "add", "path": "members", "value": [{"value": id}]}])).await.status().as_u16() }) };
            assert_eq!(del.await.expect("joined"), 204);
            let added = add.await.expect("joined");
            assert!(added == 204 || added == 400, "the add answered {added}");
        }
        let group = json(app.get(&format!("/Groups/{gid}")).await).await;
        assert!(group.get("members").is_none_or(|m| m == &json!([])), "no member left behind: {group}");
    }

    async fn member_events_name_only_real_changes_and_versions_rise_strictly(h) {
        let app = Arc::new(h.app);
        let uid = app.create_user("joiner@example.com").await;
        let gid = app.create_group("Events", &[]).await;
        let adds: Vec<_> = (0..16).map(|_| {
            let (app, gid, uid) = (app.clone(), gid.clone(), uid.clone());
            tokio::spawn(async move { patch(&app, &format!("/Groups/{gid}"), json!([{"op": "add", "path": "members", "value": [{"value": uid}]}])).await.status().as_u16() })
        }).collect();
        for a in adds {
            assert_eq!(a.await.expect("joined"), 204);
        }
        let etag = |res: &reqwest::Response| res.headers().get("etag").map(|v| v.to_str().unwrap_or("").to_string());
        let before = etag(&app.get(&format!("/Groups/{gid}")).await);
        // Adding a member it has, removing one it has not: no change, no event, same ETag.
        assert_eq!(patch(&app, &format!("/Groups/{gid}"), json!([{"op": "add", "path": "members", "value": [{"value": uid}]}])).await.status(), 204);
        assert_eq!(patch(&app, &format!("/Groups/{gid}"), json!([{"op": "remove", "path": "members[value eq \"nobody\"]"}])).await.status(), 204);
        assert_eq!(etag(&app.get(&format!("/Groups/{gid}")).await), before);
        // Then a real removal and a rename, to see the versions.
        assert_eq!(patch(&app, &format!("/Groups/{gid}"), json!([{"op": "remove", "path": format!("members[value eq \"{uid}\"]")}])).await.status(), 204);
        assert_eq!(patch(&app, &format!("/Groups/{gid}"), json!([{"op": "replace", "path": "displayName", "value": "Events 2"}])).await.status(), 204);
        let h = Hooked { app: Arc::try_unwrap(app).ok().expect("sole owner"), emulator: h.emulator, admin: h.admin };
        let events: Vec<Value> = settled_events(&h).await.into_iter().filter(|e| e["id"] == gid.as_str()).collect();
        let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap_or("")).collect();
        assert_eq!(kinds, vec!["group.created", "group.members_added", "group.members_removed", "group.renamed"], "{events:?}");
        assert_eq!(events[1]["payload"]["members"], json!([uid]));
        assert_eq!(events[2]["payload"]["members"], json!([uid]), "only the member really removed");
        let versions: Vec<i64> = events.iter().map(|e| e["payload"]["version"].as_i64().expect("version")).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        let _ = Duration::ZERO;
    }

    async fn an_admin_retry_racing_new_changes_of_the_same_user_never_sends_an_older_state_after_a_newer_one(h) {
        let uid = h.app.create_user("retried@example.com").await;
        h.wait_events(1).await;
        h.faults(json!({"fail_next": {"count": 1, "status": 400, "error": "refused once"}})).await;
        assert_eq!(patch(&h.app, &format!("/Users/{uid}"), json!([{"op": "replace", "path": "title", "value": "t0"}])).await.status(), 200);
        let dead = h.wait_for("a dead job", |v| v["jobs"].as_array().is_some_and(|j| j.len() == 1), "/jobs?state=dead").await;
        let job = dead["jobs"][0]["id"].as_i64().expect("id");
        // Changes queued behind the dead job, older than the state its retry will send.
        for op in [json!({"op": "replace", "path": "active", "value": false}), json!({"op": "replace", "path": "title", "value": "behind"}), json!({"op": "replace", "path": "active", "value": true})] {
            assert_eq!(patch(&h.app, &format!("/Users/{uid}"), json!([op])).await.status(), 200);
        }
        let h = Arc::new(h);
        // Then more changes, the retry, and deliveries, all at once.
        let writers: Vec<_> = (1..=4).map(|w| {
            let (h, uid) = (h.clone(), uid.clone());
            tokio::spawn(async move {
                // Titles (coalesced) between deactivations and reactivations (never merged).
                for i in 0..6 {
                    let op = match i % 3 {
                        0 => json!([{"op": "replace", "path": "title", "value": format!("w{w}-{i}")}]),
                        1 => json!([{"op": "replace", "path": "active", "value": false}]),
                        _ => json!([{"op": "replace", "path": "active", "value": true}]),
                    };
                    let res = patch(&h.app, &format!("/Users/{uid}"), op).await;
                    assert_eq!(res.status(), 200);
                    h.app.deliver_due().await;
                }
            })
        }).collect();
        let retry = {
            let h = h.clone();
            tokio::spawn(async move { h.admin_post(&format!("/jobs/{job}/retry")).await.status().as_u16() })
        };
        for w in writers {
            w.await.expect("joined");
        }
        assert_eq!(retry.await.expect("joined"), 200);
        let h = Arc::try_unwrap(h).ok().expect("sole owner");
        let events: Vec<Value> = settled_events(&h).await.into_iter().filter(|e| e["id"] == uid.as_str()).collect();
        assert!(h.admin_get("/jobs?state=dead").await["jobs"].as_array().is_some_and(Vec::is_empty));
        let versions: Vec<i64> = events.iter().map(|e| e["payload"]["version"].as_i64().expect("version")).collect();
        assert!(versions.windows(2).all(|w| w[0] <= w[1]), "an older state after a newer one: {versions:?}");
        let now = json(h.app.get(&format!("/Users/{uid}")).await).await;
        let last = &events.last().expect("events")["payload"]["resource"];
        assert_eq!((&last["title"], &last["active"]), (&now["title"], &now["active"]), "the target ends as the bridge holds the user");
    }
}

crate::both_databases! {
    async fn a_group_renamed_among_six_member_writers_waits_its_turn_and_never_answers_503(app) {
        let app = Arc::new(app);
        let gid = app.create_group("Busy-0", &[]).await;
        let mut users = Vec::new();
        for i in 0..6 {
            users.push(app.create_user(&format!("busy{i}@example.com")).await);
        }
        let writers: Vec<_> = users.iter().cloned().map(|u| {
            let (app, gid) = (app.clone(), gid.clone());
            tokio::spawn(async move {
                for i in 0..60 {
                    let op = if i % 2 == 0 { "add" } else { "remove" };
                    let res = patch(&app, &format!("/Groups/{gid}"), json!([{"op": op, "path": "members", "value": [{"value": u}]}])).await;
                    assert!(res.status().is_success(), "member {op}: {}", res.status());
                }
            })
        }).collect();
        // Renames from three clients at once, each racing the member writers.
        let renamers: Vec<_> = (0..3).map(|r| {
            let (app, gid) = (app.clone(), gid.clone());
            tokio::spawn(async move {
                for i in 1..=20 {
                    let res = patch(&app, &format!("/Groups/{gid}"), json!([{"op": "replace", "path": "displayName", "value": format!("Busy-{r}-{i}")}])).await;
                    assert!(res.status().is_success(), "rename {r}-{i}: {}", res.status());
                }
            })
        }).collect();
        for w in writers.into_iter().chain(renamers) {
            w.await.expect("joined");
        }
        let group = json(app.get(&format!("/Groups/{gid}")).await).await;
        assert!(group["displayName"].as_str().is_some_and(|n| n.ends_with("-20")), "{group}");
        // In one process the writers took turns: none found the group changed under it.
        let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", app.port)).await.expect("metrics").text().await.expect("text");
        assert!(metrics.contains("scim_bridge_write_conflicts_total 0"), "{}", metrics.lines().filter(|l| l.contains("conflicts")).collect::<Vec<_>>().join("\n"));
        assert!(group.get("members").is_none_or(|m| m == &json!([])), "every member added then removed: {group}");
    }
}

crate::each_database! {
    async fn gets_answered_on_the_request_thread_stay_consistent_while_writes_hold_every_connection(db) {
        // Two connections for 32 readers and 8 writers: a GET that finds none free goes
        // the ordinary way instead of waiting on the request thread.
        let app = spawn_tweaked(db, |s| s.pool_size = 2).await;
        let app = Arc::new(app);
        let id = app.create_user("steady@example.com").await;
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (app, id) = (app.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..5 {
                    let res = patch(&app, &format!("/Users/{id}"),
                        json!([{"op": "replace", "path": "displayName", "value": format!("w{w}-{i}")}])).await;
                    assert_eq!(res.status(), 200);
                }
            }));
        }
        for _ in 0..32 {
            let (app, id) = (app.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    let res = app.get(&format!("/Users/{id}")).await;
                    assert_eq!(res.status(), 200);
                    let etag = res.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_string);
                    let body = json(res).await;
                    assert_eq!(etag.as_deref(), body["meta"]["version"].as_str(), "the ETag is the body's version");
                    assert_eq!(body["userName"], "steady@example.com");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let missing = app.get("/Users/no-such-user").await;
        assert_scim_error(missing, 404, None).await;
    }
}
