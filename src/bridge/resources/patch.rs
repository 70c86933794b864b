//! PATCH: operations applied to the document, and group member changes applied to the
//! membership table by delta, so a membership change touches only the members it names.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Takes a Group's `members` out of its document: membership lives in its own table.
pub(super) fn take_members(
    rt: &ResourceType,
    data: &mut Map<String, Value>,
) -> BridgeResult<Option<Vec<NewMember>>> {
    if rt.schema != GROUP_SCHEMA {
        return Ok(None);
    }
    let Some(Value::Array(items)) = data.remove("members") else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(member_from_json)
        .collect::<BridgeResult<Vec<_>>>()
        .map(Some)
}

/// Reads one `members` element: `value` is required, `type` optional ("User" or "Group").
pub fn member_from_json(v: Value) -> BridgeResult<NewMember> {
    let id = v
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ScimError::InvalidValue("every member needs a 'value', the member's id".into())
        })?
        .to_string();
    let kind = match v.get("type").and_then(Value::as_str) {
        None => None,
        Some(t) if t.eq_ignore_ascii_case("user") => Some("User".to_string()),
        Some(t) if t.eq_ignore_ascii_case("group") => Some("Group".to_string()),
        Some(t) => {
            return Err(ScimError::InvalidValue(format!(
                "member type '{t}' is neither User nor Group"
            ))
            .into())
        }
    };
    Ok(NewMember { id, kind })
}

/// A group may not be its own member.
pub(super) fn not_self(group_id: &str, members: &[NewMember]) -> BridgeResult<()> {
    if members.iter().any(|m| m.id == group_id) {
        return Err(ScimError::InvalidValue("a group cannot be a member of itself".into()).into());
    }
    Ok(())
}

impl Resources {
    /// PATCH. Returns the new ETag, and the resource when `want_body` (a large group is
    /// never read in full for a one-member change otherwise).
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        rt_name: &str,
        id: &str,
        body: Value,
        pre: &Precondition,
        base: &str,
        projection: &Projection,
        want_body: bool,
    ) -> BridgeResult<(String, Option<Rendered>)> {
        let rt = self.rt(rt_name)?;
        let ops = parse_request(body)?;
        let _turn = self.turn(id);
        let is_group = rt.schema == GROUP_SCHEMA;
        let external: &[&str] = if is_group { &["members"] } else { &[] };
        let patcher = Patcher {
            reg: &self.reg,
            rt,
            external,
        };
        for attempt in 0.. {
            let current = self.load(rt, id)?;
            pre.check(current.version)?;
            let data: Map<String, Value> = serde_json::from_str(&current.data).map_err(|e| {
                BridgeError::Store(StoreError::Corrupt(format!("{}: {e}", current.id)))
            })?;
            let mut patched = patcher.apply(&data, &ops)?;
            crate::scim::resource::settle_primary(&data, &mut patched.data);
            // The result is checked as a whole, as a PUT body would be: types, required
            // attributes; so a PATCH can never store what a POST could not.
            let norm = normalize(&self.reg, rt, Value::Object(patched.data))?;
            let now = format_time(self.clock.now());
            let data_changed = norm.data != data;
            let token = self.sync_token();
            let result = if is_group {
                let deltas = self.member_deltas(id, patched.members)?;
                let row = to_row(
                    rt,
                    current.id.clone(),
                    norm.data,
                    0,
                    current.created.clone(),
                    now,
                )?;
                // A document built from the copy read is written only when it changed,
                // and then only if nobody wrote in between; a membership change alone
                // leaves the document as it is stored.
                let base_version = (data_changed || !pre.is_none()).then_some(current.version);
                // The members before are read only for the undo of a sync connector's
                // refusal; events name the members the store really added or removed.
                let old_members = if token.is_some() {
                    self.old_member_ids(rt, id)?
                } else {
                    vec![]
                };
                let make_jobs = |version: i64, stored: &str, applied: &[Applied]| {
                    let doc: Map<String, Value> = serde_json::from_str(stored).unwrap_or_default();
                    let members = applied.iter().map(member_event).collect();
                    let w = Write {
                        old: Some(if data_changed { &data } else { &doc }),
                        new: Some(&doc),
                        members,
                        ..Write::default()
                    };
                    self.jobs_for(rt, id, version, &w, token.as_deref(), None)
                };
                self.store
                    .change_group(&row, base_version, data_changed, &deltas, &make_jobs)
                    .map(|(v, _)| (ResourceRow { version: v, ..row }, old_members))
            } else {
                let row = to_row(
                    rt,
                    current.id.clone(),
                    norm.data,
                    current.version + 1,
                    current.created.clone(),
                    now,
                )?;
                let new_doc = norm_data_copy(&row);
                let w = Write {
                    old: Some(&data),
                    new: Some(&new_doc),
                    password: patched.password.as_deref(),
                    ..Write::default()
                };
                let jobs = self.jobs_for(rt, &row.id, row.version, &w, token.as_deref(), None);
                self.store
                    .replace(&row, current.version, None, &jobs)
                    .map(|()| (row, vec![]))
            };
            match result {
                Ok((row, old_members)) => {
                    self.fanout.wake();
                    self.await_sync(token.as_deref(), |failed| {
                        self.restore(rt, &current, &old_members, Some(row.version), failed)
                    })?;
                    let tag = etag(row.version);
                    let rendered = if want_body {
                        Some(self.render(rt, row, base, projection)?)
                    } else {
                        None
                    };
                    return Ok((tag, rendered));
                }
                Err(StoreError::VersionMismatch(_)) if pre.is_none() => {
                    conflict_retry(attempt, &self.metrics)?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ScimError::Internal("unreachable retry loop".into()).into())
    }

    /// Turns PATCH member changes into store deltas. A filtered remove on `value eq` is
    /// resolved without reading the group; any other filter reads its members.
    pub(super) fn member_deltas(
        &self,
        group_id: &str,
        changes: Vec<MemberChange>,
    ) -> BridgeResult<Vec<MemberDelta>> {
        let members_of = |list: Vec<Value>| {
            list.into_iter()
                .map(member_from_json)
                .collect::<BridgeResult<Vec<_>>>()
        };
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            out.push(match change {
                MemberChange::Add(list) => {
                    let m = members_of(list)?;
                    not_self(group_id, &m)?;
                    MemberDelta::Add(m)
                }
                MemberChange::ReplaceAll(list) => {
                    let m = members_of(list)?;
                    not_self(group_id, &m)?;
                    MemberDelta::ReplaceAll(m)
                }
                MemberChange::RemoveAll => MemberDelta::RemoveAll,
                MemberChange::Remove(ids) => MemberDelta::Remove(ids),
                MemberChange::RemoveWhere(filter) => match value_equalities(&filter) {
                    Some(ids) => MemberDelta::Remove(ids),
                    None => {
                        let rt = self.rt("Group")?;
                        let eval = Evaluator { reg: &self.reg, rt };
                        let parent = AttrPath {
                            urn: None,
                            attr: "members".into(),
                            sub: None,
                        };
                        let mut ids = Vec::new();
                        for m in self.store.members(group_id)? {
                            let el = json!({"value": m.id, "type": m.kind, "display": m.display});
                            if eval.matches_element(&parent, &filter, &el)? {
                                ids.push(m.id);
                            }
                        }
                        MemberDelta::Remove(ids)
                    }
                },
            });
        }
        Ok(out)
    }
}
