//! A one-member change to a large group costs one member: the PATCH path never reads the
//! group's membership. Shown with a store that counts what it is asked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;

use scim_bridge::bridge::etag::Precondition;
use scim_bridge::bridge::schemas::load_registry;
use scim_bridge::bridge::Resources;
use scim_bridge::clock::SystemClock;
use scim_bridge::scim::resource::Projection;
use scim_bridge::scim::schema::Registry;
use scim_bridge::store::{
    GroupRef, JobsFor, ListSpec, Member, MemberDelta, NewJob, NewMember, ResourceRow,
    ResourceStore, SqlStore, StoreResult,
};

/// Delegates to the real store and counts whole-membership reads.
struct Counting {
    inner: SqlStore,
    member_reads: AtomicUsize,
}

impl ResourceStore for Counting {
    fn insert(&self, row: &ResourceRow, members: &[NewMember], jobs: &[NewJob]) -> StoreResult<()> {
        self.inner.insert(row, members, jobs)
    }
    fn get(&self, rt: &str, id: &str) -> StoreResult<Option<ResourceRow>> {
        self.inner.get(rt, id)
    }
    fn replace(
        &self,
        row: &ResourceRow,
        base: i64,
        members: Option<&[NewMember]>,
        jobs: &[NewJob],
    ) -> StoreResult<()> {
        self.inner.replace(row, base, members, jobs)
    }
    fn change_group(
        &self,
        row: &ResourceRow,
        base: Option<i64>,
        write_doc: bool,
        deltas: &[MemberDelta],
        jobs: &JobsFor<'_>,
    ) -> StoreResult<(i64, bool)> {
        self.inner.change_group(row, base, write_doc, deltas, jobs)
    }
    fn delete(
        &self,
        rt: &str,
        id: &str,
        base: Option<i64>,
        now: &str,
        jobs: &[NewJob],
    ) -> StoreResult<()> {
        self.inner.delete(rt, id, base, now, jobs)
    }
    fn list(&self, spec: &ListSpec<'_>, reg: &Registry) -> StoreResult<scim_bridge::store::Listed> {
        self.inner.list(spec, reg)
    }
    fn members(&self, group_id: &str) -> StoreResult<Vec<Member>> {
        self.member_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.members(group_id)
    }
    fn groups_of(&self, ids: &[String]) -> StoreResult<Vec<GroupRef>> {
        self.inner.groups_of(ids)
    }
}

crate::tests! {
    fn a_one_member_patch_of_a_large_group_never_reads_its_members() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("cost.db").display());
        let store = Arc::new(Counting {
            inner: SqlStore::open(&url, 2).expect("store"),
            member_reads: AtomicUsize::new(0),
        });
        let reg = Arc::new(load_registry(None).expect("registry"));
        let resources = Resources::new(reg, store.clone(), Arc::new(SystemClock));
        let none = Projection::default();
        let base = "http://localhost/scim/v2";
        let mut members = Vec::new();
        for i in 0..3000 {
            let u = resources
                .create(
                    "User",
                    json!({"userName": format!("m{i}@example.com")}),
                    base,
                    &none,
                )
                .expect("user");
            members.push(json!({"value": u.body["id"]}));
        }
        let extra = resources
            .create(
                "User",
                json!({"userName": "extra@example.com"}),
                base,
                &none,
            )
            .expect("user");
        let extra_id = extra.body["id"].as_str().expect("id").to_string();
        let group = resources
            .create(
                "Group",
                json!({"displayName": "Big", "members": members}),
                base,
                &Projection::from_params(Some("displayName"), None),
            )
            .expect("group");
        let gid = group.body["id"].as_str().expect("id").to_string();
        store.member_reads.store(0, Ordering::SeqCst);

        let add =
            json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": extra_id}]}]});
        let (_, body) = resources
            .patch("Group", &gid, add, &Precondition::None, base, &none, false)
            .expect("add");
        assert!(body.is_none());
        let remove = json!({"Operations": [{"op": "remove", "path": format!("members[value eq \"{extra_id}\"]")}]});
        resources
            .patch(
                "Group",
                &gid,
                remove,
                &Precondition::None,
                base,
                &none,
                false,
            )
            .expect("remove");
        let entra_remove = json!({"Operations": [{"op": "Remove", "path": "members", "value": [{"value": extra_id}]}]});
        resources
            .patch(
                "Group",
                &gid,
                entra_remove,
                &Precondition::None,
                base,
                &none,
                false,
            )
            .expect("remove");
        assert_eq!(
            store.member_reads.load(Ordering::SeqCst),
            0,
            "no PATCH read the 3,000 members"
        );
        assert_eq!(store.inner.members(&gid).expect("members").len(), 3000);
    }
}
