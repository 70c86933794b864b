//! SCIM resources and group memberships in SQL, for both backends: the
//! [`ResourceStore`] of [`SqlStore`].

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};

use super::db::{Backend, DbConn};
use super::error::{classify, StoreError, StoreResult};
use super::filter_sql;
use super::jobs::{enqueue, NewJob};
use super::raw::Frag;
use super::schema::{group_members, resources};
use super::sql::SqlStore;
use super::{
    Applied, GroupRef, JobStore, JobsFor, ListSpec, Listed, Member, MemberDelta, NewMember, Page,
    ResourceRow, ResourceStore, WaitState,
};
use crate::scim::schema::Registry;

/// How many ids go into one `IN (...)` list.
const CHUNK: usize = 500;

impl SqlStore {
    /// A write transaction that changes resources or memberships: once it is over, what
    /// the page cache remembers of lists is stale.
    fn write_resources<T>(&self, f: impl FnOnce(&mut DbConn) -> StoreResult<T>) -> StoreResult<T> {
        let out = self.write(f);
        self.pages.bump();
        out
    }

    /// Inserts many rows in large batches, one transaction each (benchmark seeding).
    pub fn seed_rows(&self, rows: &[ResourceRow]) -> StoreResult<()> {
        self.write_resources(|conn| {
            for chunk in rows.chunks(1000) {
                match conn {
                    DbConn::Sqlite(c) => diesel::insert_into(resources::table)
                        .values(chunk)
                        .execute(c)?,
                    DbConn::Pg(c) => diesel::insert_into(resources::table)
                        .values(chunk)
                        .execute(c)?,
                };
            }
            Ok(())
        })
    }

    /// Refreshes the planner's statistics and PostgreSQL's visibility map after a bulk load,
    /// as autovacuum would in time, so index-only scans work at once.
    pub fn analyze(&self) -> StoreResult<()> {
        let mut conn = self.conn()?;
        match &mut *conn {
            DbConn::Pg(c) => {
                diesel::sql_query("VACUUM ANALYZE resources, group_members").execute(c)?
            }
            DbConn::Sqlite(c) => diesel::sql_query("ANALYZE").execute(c)?,
        };
        Ok(())
    }

    /// Inserts memberships (group, member, type) in large batches (benchmark seeding).
    pub fn seed_members(&self, rows: &[(String, String, String)]) -> StoreResult<()> {
        for chunk in rows.chunks(20_000) {
            self.write_resources(|conn| insert_members(conn, chunk))?;
        }
        Ok(())
    }
}

/// Resolves members to their stored types, failing on the first that does not exist.
fn member_rows(
    conn: &mut DbConn,
    group_id: &str,
    members: &[NewMember],
) -> StoreResult<Vec<(String, String, String)>> {
    let mut types: HashMap<String, String> = HashMap::with_capacity(members.len());
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    for chunk in ids.chunks(CHUNK) {
        let found: Vec<(String, String)> = resources::table
            .filter(resources::id.eq_any(chunk))
            .select((resources::id, resources::resource_type))
            .load(conn)?;
        types.extend(found);
    }
    let mut rows = Vec::with_capacity(members.len());
    let mut seen = std::collections::HashSet::new();
    for m in members {
        let Some(kind) = types.get(&m.id) else {
            return Err(StoreError::MissingMember(m.id.clone()));
        };
        if seen.insert(m.id.clone()) {
            rows.push((group_id.to_string(), m.id.clone(), kind.clone()));
        }
    }
    Ok(rows)
}

/// Inserts members, leaving alone those already in the group; returns those it added.
fn add_members(conn: &mut DbConn, rows: &[(String, String, String)]) -> StoreResult<Vec<String>> {
    let mut added = Vec::new();
    for chunk in rows.chunks(CHUNK) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(g, m, t)| {
                (
                    group_members::group_id.eq(g),
                    group_members::member_id.eq(m),
                    group_members::member_type.eq(t),
                )
            })
            .collect();
        let ids: Vec<String> = match conn {
            DbConn::Sqlite(c) => diesel::insert_into(group_members::table)
                .values(&values)
                .on_conflict_do_nothing()
                .returning(group_members::member_id)
                .get_results(c)
                .map_err(classify)?,
            DbConn::Pg(c) => diesel::insert_into(group_members::table)
                .values(&values)
                .on_conflict_do_nothing()
                .returning(group_members::member_id)
                .get_results(c)
                .map_err(classify)?,
        };
        added.extend(ids);
    }
    Ok(added)
}

/// Removes these members (or all, with None); returns those that were there.
fn remove_members(
    conn: &mut DbConn,
    group_id: &str,
    ids: Option<&[String]>,
) -> StoreResult<Vec<String>> {
    let mut removed = Vec::new();
    let mut run = |chunk: Option<&[String]>| -> StoreResult<()> {
        let target = group_members::table.filter(group_members::group_id.eq(group_id));
        let got: Vec<String> = match (&mut *conn, chunk) {
            (DbConn::Sqlite(c), Some(ids)) => {
                diesel::delete(target.filter(group_members::member_id.eq_any(ids)))
                    .returning(group_members::member_id)
                    .get_results(c)?
            }
            (DbConn::Sqlite(c), None) => diesel::delete(target)
                .returning(group_members::member_id)
                .get_results(c)?,
            (DbConn::Pg(c), Some(ids)) => {
                diesel::delete(target.filter(group_members::member_id.eq_any(ids)))
                    .returning(group_members::member_id)
                    .get_results(c)?
            }
            (DbConn::Pg(c), None) => diesel::delete(target)
                .returning(group_members::member_id)
                .get_results(c)?,
        };
        removed.extend(got);
        Ok(())
    };
    match ids {
        Some(ids) => {
            for chunk in ids.chunks(CHUNK) {
                run(Some(chunk))?;
            }
        }
        None => run(None)?,
    }
    Ok(removed)
}

fn insert_members(conn: &mut DbConn, rows: &[(String, String, String)]) -> StoreResult<()> {
    for chunk in rows.chunks(CHUNK) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(g, m, t)| {
                (
                    group_members::group_id.eq(g),
                    group_members::member_id.eq(m),
                    group_members::member_type.eq(t),
                )
            })
            .collect();
        // Multi-row inserts are per backend: diesel's multi-backend type has no batch insert.
        match conn {
            DbConn::Sqlite(c) => diesel::insert_into(group_members::table)
                .values(&values)
                .execute(c)
                .map_err(classify)?,
            DbConn::Pg(c) => diesel::insert_into(group_members::table)
                .values(&values)
                .execute(c)
                .map_err(classify)?,
        };
    }
    Ok(())
}

impl ResourceStore for SqlStore {
    fn wait_state(&self, token: &str) -> StoreResult<WaitState> {
        self.wait_state_of(token)
    }

    fn drop_dead_jobs(&self, token: &str) -> StoreResult<usize> {
        self.drop_dead_jobs_of(token)
    }

    fn insert(&self, row: &ResourceRow, members: &[NewMember], jobs: &[NewJob]) -> StoreResult<()> {
        self.write_resources(|conn| {
            diesel::insert_into(resources::table)
                .values(row)
                .execute(conn)
                .map_err(classify)?;
            let rows = member_rows(conn, &row.id, members)?;
            insert_members(conn, &rows)?;
            enqueue(conn, jobs, &row.last_modified)
        })
    }

    fn get(&self, resource_type: &str, id: &str) -> StoreResult<Option<ResourceRow>> {
        get_on(&mut *self.conn()?, resource_type, id)
    }

    fn replace(
        &self,
        row: &ResourceRow,
        base_version: i64,
        members: Option<&[NewMember]>,
        jobs: &[NewJob],
    ) -> StoreResult<()> {
        self.write_resources(|conn| {
            let n = diesel::update(
                resources::table
                    .filter(resources::id.eq(&row.id))
                    .filter(resources::resource_type.eq(&row.resource_type))
                    .filter(resources::version.eq(base_version)),
            )
            .set((
                resources::user_name.eq(&row.user_name),
                resources::user_name_ci.eq(&row.user_name_ci),
                resources::external_id.eq(&row.external_id),
                resources::display_name.eq(&row.display_name),
                resources::display_name_ci.eq(&row.display_name_ci),
                resources::active.eq(&row.active),
                resources::data.eq(&row.data),
                resources::version.eq(row.version),
                resources::last_modified.eq(&row.last_modified),
            ))
            .execute(conn)
            .map_err(classify)?;
            if n == 0 {
                let exists: i64 = resources::table
                    .filter(resources::id.eq(&row.id))
                    .filter(resources::resource_type.eq(&row.resource_type))
                    .count()
                    .get_result(conn)?;
                return Err(if exists == 0 {
                    StoreError::NotFound
                } else {
                    StoreError::VersionMismatch(base_version)
                });
            }
            if let Some(members) = members {
                let rows = member_rows(conn, &row.id, members)?;
                diesel::delete(group_members::table.filter(group_members::group_id.eq(&row.id)))
                    .execute(conn)?;
                insert_members(conn, &rows)?;
            }
            enqueue(conn, jobs, &row.last_modified)
        })
    }

    fn change_group(
        &self,
        row: &ResourceRow,
        base_version: Option<i64>,
        write_doc: bool,
        deltas: &[MemberDelta],
        jobs: &JobsFor<'_>,
    ) -> StoreResult<(i64, bool)> {
        self.write_resources(|conn| {
            let target = resources::table
                .filter(resources::id.eq(&row.id))
                .filter(resources::resource_type.eq(&row.resource_type));
            // Takes the row's lock (PostgreSQL) and checks the precondition, changing
            // nothing: concurrent changes of one group then apply one after the other.
            let locked = match base_version {
                Some(base) => diesel::update(target.filter(resources::version.eq(base)))
                    .set(resources::version.eq(resources::version))
                    .execute(conn),
                None => diesel::update(target)
                    .set(resources::version.eq(resources::version))
                    .execute(conn),
            }
            .map_err(classify)?;
            if locked == 0 {
                let exists: i64 = target.count().get_result(conn)?;
                return Err(match (exists, base_version) {
                    (0, _) => StoreError::NotFound,
                    (_, Some(b)) => StoreError::VersionMismatch(b),
                    _ => StoreError::NotFound,
                });
            }
            let mut applied = Vec::new();
            for delta in deltas {
                match delta {
                    MemberDelta::Add(members) => {
                        let rows = member_rows(conn, &row.id, members)?;
                        let added = add_members(conn, &rows)?;
                        if !added.is_empty() {
                            applied.push(Applied::Added(added));
                        }
                    }
                    MemberDelta::Remove(ids) => {
                        let removed = remove_members(conn, &row.id, Some(ids))?;
                        if !removed.is_empty() {
                            applied.push(Applied::Removed(removed));
                        }
                    }
                    MemberDelta::RemoveAll => {
                        let removed = remove_members(conn, &row.id, None)?;
                        if !removed.is_empty() {
                            applied.push(Applied::RemovedAll(removed));
                        }
                    }
                    MemberDelta::ReplaceAll(members) => {
                        let rows = member_rows(conn, &row.id, members)?;
                        let before = remove_members(conn, &row.id, None)?;
                        insert_members(conn, &rows)?;
                        let was: HashSet<&str> = before.iter().map(String::as_str).collect();
                        let now: Vec<String> = rows.iter().map(|(_, m, _)| m.clone()).collect();
                        let is: HashSet<&str> = now.iter().map(String::as_str).collect();
                        let added: Vec<String> = now
                            .iter()
                            .filter(|m| !was.contains(m.as_str()))
                            .cloned()
                            .collect();
                        let removed: Vec<String> = before
                            .iter()
                            .filter(|m| !is.contains(m.as_str()))
                            .cloned()
                            .collect();
                        if !added.is_empty() || !removed.is_empty() {
                            applied.push(Applied::Replaced {
                                members: now,
                                added,
                                removed,
                            });
                        }
                    }
                }
            }
            if !write_doc && applied.is_empty() {
                let v: i64 = target.select(resources::version).first(conn)?;
                return Ok((v, false));
            }
            let next = (
                resources::version.eq(resources::version + 1),
                resources::last_modified.eq(&row.last_modified),
            );
            if write_doc {
                diesel::update(target)
                    .set((
                        resources::display_name.eq(&row.display_name),
                        resources::display_name_ci.eq(&row.display_name_ci),
                        resources::external_id.eq(&row.external_id),
                        resources::data.eq(&row.data),
                        next,
                    ))
                    .execute(conn)
                    .map_err(classify)?;
            } else {
                diesel::update(target).set(next).execute(conn)?;
            }
            let (v, stored): (i64, String) = target
                .select((resources::version, resources::data))
                .first(conn)?;
            enqueue(conn, &jobs(v, &stored, &applied), &row.last_modified)?;
            Ok((v, true))
        })
    }

    fn delete(
        &self,
        resource_type: &str,
        id: &str,
        base_version: Option<i64>,
        now: &str,
        jobs: &[NewJob],
    ) -> StoreResult<()> {
        self.write_resources(|conn| {
            let target = resources::table
                .filter(resources::id.eq(id))
                .filter(resources::resource_type.eq(resource_type));
            // Takes the row's lock first (PostgreSQL): of concurrent deletes one goes on,
            // and the others find no row once it commits (404), queueing nothing.
            let locked = match base_version {
                Some(b) => diesel::update(target.filter(resources::version.eq(b)))
                    .set(resources::version.eq(resources::version))
                    .execute(conn)?,
                None => diesel::update(target)
                    .set(resources::version.eq(resources::version))
                    .execute(conn)?,
            };
            if locked == 0 {
                let exists: i64 = target.count().get_result(conn)?;
                return Err(match (exists, base_version) {
                    (0, _) | (_, None) => StoreError::NotFound,
                    (_, Some(b)) => StoreError::VersionMismatch(b),
                });
            }
            // The groups that lose this member change too: their version moves on.
            let groups: Vec<String> = group_members::table
                .filter(group_members::member_id.eq(id))
                .select(group_members::group_id)
                .load(conn)?;
            for chunk in groups.chunks(CHUNK) {
                diesel::update(resources::table.filter(resources::id.eq_any(chunk)))
                    .set((
                        resources::version.eq(resources::version + 1),
                        resources::last_modified.eq(now),
                    ))
                    .execute(conn)?;
            }
            diesel::delete(
                group_members::table.filter(
                    group_members::member_id
                        .eq(id)
                        .or(group_members::group_id.eq(id)),
                ),
            )
            .execute(conn)?;
            diesel::delete(resources::table.filter(resources::id.eq(id))).execute(conn)?;
            enqueue(conn, jobs, now)
        })
    }

    fn list(&self, spec: &ListSpec<'_>, reg: &Registry) -> StoreResult<Listed> {
        let rt = reg.resource_type(spec.resource_type).ok_or_else(|| {
            StoreError::Corrupt(format!("unknown resource type {}", spec.resource_type))
        })?;
        let cond = match spec.filter {
            Some(f) => {
                Some(filter_sql::translate(reg, rt, self.backend(), f).map_err(StoreError::Query)?)
            }
            None => None,
        };
        let build = || {
            let mut q = resources::table
                .filter(resources::resource_type.eq(spec.resource_type.to_string()))
                .into_boxed();
            if let Some(c) = &cond {
                q = q.filter(c.clone().into_expr::<Nullable<Bool>>());
            }
            q
        };
        let mut conn = self.conn()?;
        // A first page that is not full holds every match: its length is the total, and
        // the COUNT is not needed (an IdP's existence check finds 0 or 1).
        let first_page = matches!(
            &spec.page,
            Page::Offset { offset: 0, .. } | Page::After { after: None, .. }
        );
        // The generation before any read: what is learnt is tagged with it (pages.rs).
        let generation = self.pages.generation();
        let list_key = (
            spec.resource_type.to_string(),
            spec.filter.map(|f| f.to_string()).unwrap_or_default(),
        );
        let unsorted = spec.sort.is_none();
        // An unsorted offset page that starts where an earlier page ended seeks from that
        // page's last key instead of skipping the rows before it.
        let page = match &spec.page {
            Page::Offset { offset, limit } if unsorted && *offset > 0 => {
                match self.pages.boundary(&list_key, *offset) {
                    Some(after) => Page::After {
                        after: Some(after),
                        limit: *limit,
                    },
                    None => spec.page.clone(),
                }
            }
            other => other.clone(),
        };
        let (limit, mut q) = match &page {
            Page::Offset { offset, limit } => (
                *limit,
                build().offset((*offset).min(i64::MAX as u64) as i64),
            ),
            Page::After { after, limit } => {
                let mut q = build();
                if let Some((created, id)) = after {
                    // One range of the (resource_type, created, id) index, so a deep page
                    // costs what a shallow one does. Each database needs its own form to
                    // see that: PostgreSQL seeks on `created >=` (a row comparison alone
                    // walked 600,000 entries there), SQLite on the row comparison alone
                    // (measured: `created >=` made its deep pages 40 times slower).
                    let mut f = match self.backend() {
                        Backend::Postgres => {
                            let mut f = Frag::sql("resources.created >= ");
                            f.text(created.clone()).push_sql(" AND ");
                            f
                        }
                        Backend::Sqlite => Frag::default(),
                    };
                    f.push_sql("(resources.created, resources.id) > (")
                        .text(created.clone())
                        .push_sql(", ")
                        .text(id.clone())
                        .push_sql(")");
                    q = q.filter(f.into_expr::<Nullable<Bool>>());
                }
                (*limit, q)
            }
        };
        // The total, counted once per list until a write changes the resources.
        let count = |conn: &mut DbConn| -> StoreResult<i64> {
            if !spec.count_total {
                return Ok(-1);
            }
            if let Some(n) = self.pages.count(&list_key) {
                return Ok(n);
            }
            let n: i64 = build().count().get_result(conn)?;
            self.pages.remember_count(&list_key, generation, n);
            Ok(n)
        };
        if limit == 0 {
            return Ok(Listed {
                total: count(&mut conn)?.max(0) as u64,
                rows: vec![],
                cut: false,
            });
        }
        if let Some((path, descending)) = spec.sort {
            let key =
                filter_sql::sort_key(reg, rt, self.backend(), path).map_err(StoreError::Query)?;
            let mut is_null = key.clone().wrapped();
            is_null.push_sql(" IS NULL");
            // Resources without the attribute go last, in either order.
            q = q.then_order_by(is_null.into_expr::<Bool>().asc());
            q = if descending {
                q.then_order_by(key.into_expr::<Text>().desc())
            } else {
                q.then_order_by(key.into_expr::<Text>().asc())
            };
        }
        let remember = |n: usize, last: Option<(&str, &str)>| {
            if let (Page::Offset { offset, .. }, true, Some((id, created))) =
                (&spec.page, unsorted, last)
            {
                let next = offset.saturating_add(n as u64);
                self.pages
                    .remember_boundary(&list_key, next, generation, created, id);
            }
        };
        // The page's keys and document sizes first, read without the documents (a deep
        // offset skips index entries, not documents); then the documents of the rows that
        // fit the page's bytes, so a page never holds more than its budget in memory.
        let size = Frag::sql(match self.backend() {
            Backend::Sqlite => "length(CAST(resources.data AS BLOB))",
            Backend::Postgres => "octet_length(resources.data)::bigint",
        });
        let keys: Vec<(String, String, i64)> = q
            .then_order_by((resources::created.asc(), resources::id.asc()))
            .limit(limit.min(i64::MAX as u64) as i64)
            .select((
                resources::id,
                resources::created,
                size.into_expr::<diesel::sql_types::BigInt>(),
            ))
            .load(&mut *conn)?;
        let total = if first_page && (keys.len() as u64) < limit {
            keys.len() as i64
        } else {
            count(&mut conn)?
        };
        let mut used = 0usize;
        let fit = keys
            .iter()
            .position(|(_, _, bytes)| {
                used = used
                    .saturating_add(usize::try_from(*bytes).unwrap_or(usize::MAX))
                    .saturating_add(super::PAGE_ROW_OVERHEAD);
                used > spec.max_bytes
            })
            .map_or(keys.len(), |i| i.max(1));
        let cut = fit < keys.len();
        let keys = &keys[..fit];
        remember(
            keys.len(),
            keys.last()
                .map(|(id, created, _)| (id.as_str(), created.as_str())),
        );
        let ids: Vec<String> = keys.iter().map(|(id, _, _)| id.clone()).collect();
        let mut rows: Vec<ResourceRow> = Vec::with_capacity(ids.len());
        if let [one] = ids.as_slice() {
            // `=` rather than `IN (...)`: the statement stays in diesel's cache.
            rows.extend(
                resources::table
                    .filter(resources::id.eq(one))
                    .select(ResourceRow::as_select())
                    .load::<ResourceRow>(&mut *conn)?,
            );
        }
        for chunk in ids.chunks(CHUNK).filter(|_| ids.len() > 1) {
            rows.extend(
                resources::table
                    .filter(resources::id.eq_any(chunk))
                    .select(ResourceRow::as_select())
                    .load::<ResourceRow>(&mut *conn)?,
            );
        }
        let position: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        rows.sort_by_key(|r| position.get(r.id.as_str()).copied().unwrap_or(usize::MAX));
        Ok(Listed {
            total: total.max(0) as u64,
            rows,
            cut,
        })
    }

    fn members(&self, group_id: &str) -> StoreResult<Vec<Member>> {
        let mut conn = self.conn()?;
        let rows: Vec<(String, String, Option<String>, Option<String>)> = group_members::table
            .inner_join(resources::table.on(resources::id.eq(group_members::member_id)))
            .filter(group_members::group_id.eq(group_id))
            .order(group_members::member_id.asc())
            .select((
                group_members::member_id,
                group_members::member_type,
                resources::display_name,
                resources::user_name,
            ))
            .load(&mut *conn)?;
        Ok(rows
            .into_iter()
            .map(|(id, kind, display, user_name)| Member {
                id,
                kind,
                display: display.or(user_name),
            })
            .collect())
    }

    fn groups_of(&self, member_ids: &[String]) -> StoreResult<Vec<GroupRef>> {
        groups_of_on(&mut *self.conn()?, member_ids)
    }

    fn get_now(
        &self,
        resource_type: &str,
        id: &str,
        with_groups: bool,
    ) -> Option<StoreResult<(Option<ResourceRow>, Vec<GroupRef>)>> {
        // A primary-key read of a local SQLite file cannot take long; waiting for a
        // connection could, and a PostgreSQL read crosses the network: those go the
        // ordinary way.
        if self.backend() != Backend::Sqlite {
            return None;
        }
        let mut conn = self.free_conn()?;
        Some((|| {
            let row = get_on(&mut conn, resource_type, id)?;
            let groups = match (&row, with_groups) {
                (Some(r), true) => groups_of_on(&mut conn, std::slice::from_ref(&r.id))?,
                _ => Vec::new(),
            };
            Ok((row, groups))
        })())
    }
}

/// A resource by type and id, on a connection already held.
fn get_on(conn: &mut DbConn, resource_type: &str, id: &str) -> StoreResult<Option<ResourceRow>> {
    Ok(resources::table
        .filter(resources::id.eq(id))
        .filter(resources::resource_type.eq(resource_type))
        .select(ResourceRow::as_select())
        .first(conn)
        .optional()?)
}

/// The groups of these members, on a connection already held.
fn groups_of_on(conn: &mut DbConn, member_ids: &[String]) -> StoreResult<Vec<GroupRef>> {
    {
        if let [one] = member_ids {
            // One member (a GET by id): `=` instead of `IN (...)` keeps the statement in
            // diesel's prepared-statement cache.
            let rows: Vec<(String, Option<String>)> = group_members::table
                .inner_join(resources::table.on(resources::id.eq(group_members::group_id)))
                .filter(group_members::member_id.eq(one))
                .order(group_members::group_id.asc())
                .select((group_members::group_id, resources::display_name))
                .load(conn)?;
            return Ok(rows
                .into_iter()
                .map(|(group_id, display)| GroupRef {
                    member_id: one.clone(),
                    group_id,
                    display,
                })
                .collect());
        }
        let mut out = Vec::new();
        for chunk in member_ids.chunks(CHUNK) {
            let rows: Vec<(String, String, Option<String>)> = group_members::table
                .inner_join(resources::table.on(resources::id.eq(group_members::group_id)))
                .filter(group_members::member_id.eq_any(chunk))
                .order((
                    group_members::member_id.asc(),
                    group_members::group_id.asc(),
                ))
                .select((
                    group_members::member_id,
                    group_members::group_id,
                    resources::display_name,
                ))
                .load(conn)?;
            out.extend(
                rows.into_iter()
                    .map(|(member_id, group_id, display)| GroupRef {
                        member_id,
                        group_id,
                        display,
                    }),
            );
        }
        Ok(out)
    }
}
