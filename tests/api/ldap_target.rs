//! `kind = "ldap"` against OpenLDAP's slapd, started by each test with a fresh tree on a
//! free port (ppolicy loaded, with a default policy that honours account locks). What
//! the directory holds is read back from it, and who can sign in is asked of it: a bind
//! as the user with its password.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ldap3::{LdapConn, Scope, SearchEntry};
use serde_json::{json, Value};

use scim_bridge::config::{ConnectorConfig, ConnectorKind, Secret};

use crate::helpers::{slapd_bin, spawn_app, spawn_with, Db, TestApp};
use crate::vendors::{full_user, ADMIN};

const SUFFIX: &str = "dc=example,dc=com";
const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
const ADMIN_PW: &str = "slapd-admin-pw";
const PEOPLE: &str = "ou=people,dc=example,dc=com";
const GROUPS: &str = "ou=groups,dc=example,dc=com";
const DISABLED: &str = "ou=disabled,dc=example,dc=com";

/// Runs blocking LDAP calls (ldap3's sync client runs a runtime of its own) off the
/// test's async runtime.
fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("the LDAP call ran"))
}

/// A slapd of the test's own.
struct Slapd {
    _dir: tempfile::TempDir,
    child: Child,
    url: String,
    ldaps: Option<String>,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Slapd {
    fn start() -> Slapd {
        blocking(|| Slapd::start_here(None))
    }

    /// With a certificate: ldaps:// on a second port, StartTLS on the first. Gives the
    /// ldaps URL and the certificate's PEM.
    fn start_tls() -> (Slapd, String, String) {
        blocking(|| {
            let certified =
                rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
                    .expect("a certificate");
            let pem = certified.cert.pem();
            let slapd =
                Slapd::start_here(Some((pem.clone(), certified.signing_key.serialize_pem())));
            let ldaps = slapd.ldaps.clone().expect("ldaps");
            (slapd, ldaps, pem)
        })
    }

    fn start_here(tls: Option<(String, String)>) -> Slapd {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("db");
        std::fs::create_dir(&db).expect("db dir");
        let conf = dir.path().join("slapd.conf");
        let tls_lines = match &tls {
            Some((cert, key)) => {
                let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
                std::fs::write(&c, cert).expect("cert");
                std::fs::write(&k, key).expect("key");
                format!(
                    "TLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                    c.display(),
                    k.display()
                )
            }
            None => String::new(),
        };
        std::fs::write(
            &conf,
            tls_lines
                + &format!(
                "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\nmodulepath /usr/lib/ldap\n\
                 moduleload back_mdb\nmoduleload ppolicy\npidfile {pid}\ndatabase mdb\n\
                 maxsize 104857600\nsuffix \"{SUFFIX}\"\nrootdn \"{ADMIN_DN}\"\nrootpw {ADMIN_PW}\n\
                 directory {db}\noverlay ppolicy\nppolicy_default \"cn=default,{SUFFIX}\"\n",
                pid = dir.path().join("slapd.pid").display(),
                db = db.display()
            ),
        )
        .expect("slapd.conf");
        let free_port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port()
        };
        let ldaps = tls
            .as_ref()
            .map(|_| format!("ldaps://127.0.0.1:{}", free_port()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let url = format!("ldap://127.0.0.1:{port}");
        let listen = match &ldaps {
            Some(s) => format!("{url}/ {s}/"),
            None => format!("{url}/"),
        };
        let child = Command::new(slapd_bin())
            .arg("-f")
            .arg(&conf)
            .args(["-h", &listen, "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd runs (Debian's slapd package; .ci/run installs it)");
        let slapd = Slapd {
            _dir: dir,
            child,
            url,
            ldaps,
        };
        let mut admin = None;
        for _ in 0..100 {
            if let Ok(mut c) = LdapConn::new(&slapd.url) {
                if c.simple_bind(ADMIN_DN, ADMIN_PW).is_ok_and(|r| r.rc == 0) {
                    admin = Some(c);
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut c = admin.expect("slapd answers");
        let s = |v: &str| std::collections::HashSet::from([v.to_string()]);
        for (dn, attrs) in [
            (
                SUFFIX.to_string(),
                vec![
                    ("objectClass", vec!["dcObject", "organization"]),
                    ("o", vec!["Example"]),
                    ("dc", vec!["example"]),
                ],
            ),
            (
                PEOPLE.to_string(),
                vec![
                    ("objectClass", vec!["organizationalUnit"]),
                    ("ou", vec!["people"]),
                ],
            ),
            (
                GROUPS.to_string(),
                vec![
                    ("objectClass", vec!["organizationalUnit"]),
                    ("ou", vec!["groups"]),
                ],
            ),
            (
                DISABLED.to_string(),
                vec![
                    ("objectClass", vec!["organizationalUnit"]),
                    ("ou", vec!["disabled"]),
                ],
            ),
            (
                format!("cn=default,{SUFFIX}"),
                vec![
                    ("objectClass", vec!["pwdPolicy", "device"]),
                    ("cn", vec!["default"]),
                    ("pwdAttribute", vec!["userPassword"]),
                    ("pwdLockout", vec!["TRUE"]),
                ],
            ),
        ] {
            let attrs: Vec<(String, std::collections::HashSet<String>)> = attrs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
                .collect();
            let r = c.add(&dn, attrs).expect("add");
            assert_eq!(r.rc, 0, "{dn}: {}", r.text);
        }
        let _ = s;
        slapd
    }

    fn admin(&self) -> LdapConn {
        let mut c = LdapConn::new(&self.url).expect("connect");
        assert_eq!(c.simple_bind(ADMIN_DN, ADMIN_PW).expect("bind").rc, 0);
        c
    }

    /// The entries matching `filter` under the suffix.
    fn find(&self, filter: &str) -> Vec<SearchEntry> {
        blocking(|| self.find_here(filter))
    }

    fn find_here(&self, filter: &str) -> Vec<SearchEntry> {
        let mut c = self.admin();
        let (rs, _) = c
            .search(
                SUFFIX,
                Scope::Subtree,
                filter,
                vec!["*", "entryUUID", "pwdAccountLockedTime"],
            )
            .expect("search")
            .success()
            .expect("searched");
        rs.into_iter().map(SearchEntry::construct).collect()
    }

    /// Whether this DN and password sign in.
    fn binds(&self, dn: &str, password: &str) -> bool {
        blocking(|| {
            let mut c = LdapConn::new(&self.url).expect("connect");
            c.simple_bind(dn, password).is_ok_and(|r| r.rc == 0)
        })
    }
}

fn attr(e: &SearchEntry, name: &str) -> Option<String> {
    e.attrs.get(name).and_then(|v| v.first()).cloned()
}

/// This bridge with an ldap connector to `slapd`.
async fn bridge(db: Db, slapd: &Slapd) -> TestApp {
    bridge_with(db, slapd, |_| {}).await
}

async fn bridge_with(db: Db, slapd: &Slapd, tweak: impl FnOnce(&mut ConnectorConfig)) -> TestApp {
    let first = spawn_app(db).await;
    let mut settings = first.settings.clone();
    let dbh = first.stop().await;
    settings.admin_token = Some(Secret::new(ADMIN));
    let mut c = ConnectorConfig::new("directory", ConnectorKind::Ldap, &slapd.url);
    c.password = Some(Secret::new(ADMIN_PW));
    c.options.insert("bind_dn".into(), ADMIN_DN.into());
    c.options.insert("base_dn".into(), PEOPLE.into());
    c.options.insert("groups_dn".into(), GROUPS.into());
    c.reconcile_requests_per_sec = 1000.0;
    tweak(&mut c);
    settings.connectors = vec![c];
    spawn_with(dbh, settings).await
}

async fn patch(up: &TestApp, path: &str, ops: Value) {
    crate::vendors::patch_ok(up, path, ops).await;
}

async fn no_dead_jobs(up: &TestApp) {
    crate::vendors::assert_no_dead_jobs(up).await;
}

fn members(g: &SearchEntry) -> Vec<String> {
    let mut m: Vec<String> = g
        .attrs
        .get("member")
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|v| !v.is_empty())
        .map(|v| v.to_lowercase())
        .collect();
    m.sort();
    m
}

crate::each_database_with_slapd! {
    async fn a_user_and_a_group_live_the_same_in_slapd_and_a_deactivated_user_cannot_bind(db) {
        let slapd = Slapd::start();
        let up = bridge(db, &slapd).await;
        let mut body = full_user("ann");
        body["password"] = json!("Ann-Passw0rd-1");
        let res = up.post("/Users", body).await;
        assert_eq!(res.status(), 201);
        let ann: String = res.json::<Value>().await.expect("json")["id"].as_str().expect("id").into();
        let bob: String = up.post("/Users", full_user("bob")).await.json::<Value>().await.expect("json")["id"].as_str().expect("id").into();
        let group = up.create_group("Analysts", &[&ann]).await;
        up.drain().await;
        let a = slapd.find("(uid=ann)").pop().expect("ann's entry");
        assert_eq!(a.dn.to_lowercase(), format!("uid=ann,{PEOPLE}"));
        assert_eq!(attr(&a, "sn").as_deref(), Some("Jensen"), "{a:?}");
        assert_eq!(attr(&a, "mail").as_deref(), Some("ann"), "{a:?}");
        assert!(slapd.binds(&a.dn, "Ann-Passw0rd-1"), "the identity provider's password signs in");
        assert!(!slapd.binds(&a.dn, "a guess"));
        let g = slapd.find("(cn=Analysts)").pop().expect("the group");
        assert_eq!(members(&g), [format!("uid=ann,{PEOPLE}")], "{g:?}");

        // Renamed: a modrdn, and the group follows the new DN.
        patch(&up, &format!("/Users/{ann}"), json!([{"op": "replace", "path": "userName", "value": "ann.lee"},
            {"op": "replace", "path": "name.familyName", "value": "Lee"}])).await;
        patch(&up, &format!("/Groups/{group}"), json!([{"op": "replace", "path": "displayName", "value": "Analysts EU"},
            {"op": "add", "path": "members", "value": [{"value": bob}]}])).await;
        up.drain().await;
        assert!(slapd.find("(uid=ann)").is_empty(), "the old name is gone");
        let a = slapd.find("(uid=ann.lee)").pop().expect("renamed");
        assert_eq!(attr(&a, "sn").as_deref(), Some("Lee"));
        assert!(slapd.binds(&a.dn, "Ann-Passw0rd-1"), "the same entry, its password kept");
        assert!(slapd.find("(cn=Analysts)").is_empty());
        let g = slapd.find("(cn=Analysts EU)").pop().expect("the group renamed");
        let mut both = vec![format!("uid=ann.lee,{PEOPLE}"), format!("uid=bob,{PEOPLE}")];
        both.sort();
        assert_eq!(members(&g), both, "{g:?}");

        // Deactivated: locked, so no bind; reactivated: binds again.
        patch(&up, &format!("/Users/{ann}"), json!([{"op": "replace", "path": "active", "value": false}])).await;
        up.drain().await;
        assert!(!slapd.binds(&a.dn, "Ann-Passw0rd-1"), "a deactivated user cannot sign in");
        patch(&up, &format!("/Users/{ann}"), json!([{"op": "replace", "path": "active", "value": true}])).await;
        up.drain().await;
        assert!(slapd.binds(&a.dn, "Ann-Passw0rd-1"));
        // A new password.
        patch(&up, &format!("/Users/{ann}"), json!([{"op": "replace", "path": "password", "value": "Ann-Passw0rd-2"}])).await;
        up.drain().await;
        assert!(slapd.binds(&a.dn, "Ann-Passw0rd-2") && !slapd.binds(&a.dn, "Ann-Passw0rd-1"));

        // A member removed, then the user and the group deleted.
        patch(&up, &format!("/Groups/{group}"), json!([{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}])).await;
        up.drain().await;
        let g = slapd.find("(cn=Analysts EU)").pop().expect("group");
        assert_eq!(members(&g), [format!("uid=ann.lee,{PEOPLE}")]);
        assert_eq!(up.delete(&format!("/Users/{ann}")).await.status(), 204);
        up.drain().await;
        assert!(slapd.find("(uid=ann.lee)").is_empty(), "deleted");
        let g = slapd.find("(cn=Analysts EU)").pop().expect("group");
        assert!(members(&g).is_empty(), "a deleted user is no member: {g:?}");
        assert_eq!(up.delete(&format!("/Groups/{group}")).await.status(), 204);
        up.drain().await;
        assert!(slapd.find("(cn=Analysts EU)").is_empty(), "the group is deleted");
        no_dead_jobs(&up).await;
    }

    async fn reconcile_finds_and_repairs_drift_made_in_slapd(db) {
        let slapd = Slapd::start();
        let up = bridge(db, &slapd).await;
        for i in 0..3 {
            assert_eq!(up.post("/Users", full_user(&format!("d{i}"))).await.status(), 201);
        }
        up.drain().await;
        // Behind the bridge's back: a title changed and the account locked; one made by hand.
        blocking(|| {
            let mut c = slapd.admin();
            let set = |v: &str| std::collections::HashSet::from([v.to_string()]);
            let r = c.modify(&format!("uid=d1,{PEOPLE}"), vec![ldap3::Mod::Replace("title".to_string(), set("Drifted")),
                ldap3::Mod::Replace("pwdAccountLockedTime".to_string(), set("000001010000Z"))]).expect("modify");
            assert_eq!(r.rc, 0, "{}", r.text);
            let r = c.add(&format!("uid=handmade,{PEOPLE}"), vec![("objectClass".to_string(), set("inetOrgPerson")),
                ("uid".to_string(), set("handmade")), ("cn".to_string(), set("h")), ("sn".to_string(), set("h"))]).expect("add");
            assert_eq!(r.rc, 0);
        });
        let reconcile = |repair: bool| {
            let up = &up;
            async move {
                let res = up.client
                    .post(format!("http://127.0.0.1:{}/admin/v1/connectors/directory/reconcile?repair={repair}", up.port))
                    .bearer_auth(ADMIN).send().await.expect("sent");
                assert_eq!(res.status(), 202);
                let p = up.reconciled("directory").await;
                assert_eq!(p["state"], "finished", "{p}");
                p["report"].clone()
            }
        };
        let found = reconcile(false).await;
        let line = found["results"].as_array().expect("results").iter()
            .find(|l| l["userName"] == "d1").expect("d1's line").clone();
        assert_eq!(line["state"], "different", "{line}");
        let fields: Vec<&str> = line["fields"].as_array().expect("fields").iter().filter_map(|f| f["field"].as_str()).collect();
        assert_eq!(fields, ["title", "active"], "{line}");
        assert_eq!(found["unknownToBridge"], json!(["handmade"]), "{found}");
        reconcile(true).await;
        up.drain().await;
        let d1 = slapd.find("(uid=d1)").pop().expect("d1");
        assert_eq!(attr(&d1, "title").as_deref(), Some("Analyst"), "{d1:?}");
        assert!(attr(&d1, "pwdAccountLockedTime").is_none(), "unlocked: {d1:?}");
        let after = reconcile(false).await;
        assert!(after["results"].as_array().expect("results").iter().all(|l| l["state"] == "in_sync"), "{after}");
    }

    async fn deactivate_move_takes_the_entry_out_of_the_user_base_and_back(db) {
        let slapd = Slapd::start();
        let up = bridge_with(db, &slapd, |c| {
            c.options.insert("deactivate".into(), "move".into());
            c.options.insert("disabled_dn".into(), DISABLED.into());
        }).await;
        let id: String = up.post("/Users", full_user("mo")).await.json::<Value>().await.expect("json")["id"].as_str().expect("id").into();
        up.drain().await;
        patch(&up, &format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": false}])).await;
        up.drain().await;
        let e = slapd.find("(uid=mo)").pop().expect("mo");
        assert_eq!(e.dn.to_lowercase(), format!("uid=mo,{DISABLED}"), "moved out");
        patch(&up, &format!("/Users/{id}"), json!([{"op": "replace", "path": "title", "value": "Moved"}])).await;
        patch(&up, &format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": true}])).await;
        up.drain().await;
        let e = slapd.find("(uid=mo)").pop().expect("mo");
        assert_eq!(e.dn.to_lowercase(), format!("uid=mo,{PEOPLE}"), "moved back");
        assert_eq!(attr(&e, "title").as_deref(), Some("Moved"), "changed while out: {e:?}");
        no_dead_jobs(&up).await;
    }

    async fn deactivate_groups_takes_the_user_out_of_every_group_and_gives_them_back(db) {
        let slapd = Slapd::start();
        let up = bridge_with(db, &slapd, |c| {
            c.options.insert("deactivate".into(), "groups".into());
        }).await;
        let id: String = up.post("/Users", full_user("gr")).await.json::<Value>().await.expect("json")["id"].as_str().expect("id").into();
        up.create_group("Readers", &[&id]).await;
        up.create_group("Writers", &[&id]).await;
        up.drain().await;
        let dn = format!("uid=gr,{PEOPLE}");
        for g in ["Readers", "Writers"] {
            assert_eq!(members(&slapd.find(&format!("(cn={g})")).pop().expect("group")), std::slice::from_ref(&dn));
        }
        patch(&up, &format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": false}])).await;
        up.drain().await;
        for g in ["Readers", "Writers"] {
            assert!(members(&slapd.find(&format!("(cn={g})")).pop().expect("group")).is_empty(), "{g}");
        }
        patch(&up, &format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": true}])).await;
        up.drain().await;
        for g in ["Readers", "Writers"] {
            assert_eq!(members(&slapd.find(&format!("(cn={g})")).pop().expect("group")), std::slice::from_ref(&dn), "{g}");
        }
        no_dead_jobs(&up).await;
    }

    async fn ldaps_and_starttls_are_verified_against_the_ca_file_and_refused_without_it(db) {
        let (slapd, ldaps, pem) = Slapd::start_tls();
        let dir = tempfile::tempdir().expect("dir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, pem).expect("ca");
        for (url, starttls, name) in [(ldaps.clone(), false, "tls1"), (slapd.url.clone(), true, "tls2")] {
            let ca = ca.display().to_string();
            let up = bridge_with(db, &slapd, |c| {
                c.url = url.clone();
                c.options.insert("starttls".into(), starttls.into());
                c.options.insert("ca_file".into(), ca.into());
            }).await;
            assert_eq!(up.post("/Users", full_user(name)).await.status(), 201);
            up.drain().await;
            assert!(slapd.find(&format!("(uid={name})")).pop().is_some(), "{url} starttls={starttls}");
            no_dead_jobs(&up).await;
        }
        // Without the CA the certificate is not trusted: nothing is sent in the clear
        // instead, and the job waits to be retried.
        let up = bridge_with(db, &slapd, |c| {
            c.url = ldaps.clone();
        }).await;
        assert_eq!(up.post("/Users", full_user("untrusted")).await.status(), 201);
        up.deliver_due().await;
        assert!(slapd.find("(uid=untrusted)").is_empty(), "an untrusted directory gets nothing");
    }

    async fn a_dn_template_names_entries_and_a_change_of_a_value_it_names_moves_them_with_their_groups(db) {
        let slapd = Slapd::start();
        let up = bridge_with(db, &slapd, |c| {
            c.options.insert("dn_template".into(), format!("mail={{mail}},{PEOPLE}").into());
        }).await;
        let mut body = full_user("tm");
        body["emails"] = json!([{"value": "tm@old.example", "primary": true}]);
        body["password"] = json!("Tm-Passw0rd-1");
        let id: String = up.post("/Users", body).await.json::<Value>().await.expect("json")["id"].as_str().expect("id").into();
        up.create_group("Team", &[&id]).await;
        up.drain().await;
        let e = slapd.find("(uid=tm)").pop().expect("tm");
        assert_eq!(e.dn.to_lowercase(), format!("mail=tm@old.example,{PEOPLE}"));
        patch(&up, &format!("/Users/{id}"), json!([{"op": "replace", "path": "emails", "value": [{"value": "tm@new.example", "primary": true}]}])).await;
        up.drain().await;
        let e = slapd.find("(uid=tm)").pop().expect("tm");
        assert_eq!(e.dn.to_lowercase(), format!("mail=tm@new.example,{PEOPLE}"), "moved with its email");
        assert!(slapd.binds(&e.dn, "Tm-Passw0rd-1"), "the same entry");
        let g = slapd.find("(cn=Team)").pop().expect("group");
        assert_eq!(members(&g), [format!("mail=tm@new.example,{PEOPLE}")], "the group follows: {g:?}");
        no_dead_jobs(&up).await;
    }
}
