//! Sync mode: waiting for the sync connectors, and undoing a write one of them refused
//! (the resource put back, with its memberships, for every other connector to hear of).

#[allow(clippy::wildcard_imports)]
use super::*;

impl Resources {
    /// A token for the jobs a request waits for, when a connector is in sync mode.
    pub(super) fn sync_token(&self) -> Option<String> {
        self.fanout
            .has_sync()
            .then(|| uuid::Uuid::new_v4().to_string())
    }

    /// In sync mode: waits until the sync connectors have the change, or the timeout. A
    /// connector that refused it has `undo` called with its name, and its refusal becomes
    /// the request's error; on timeout the change stays queued and the request succeeds.
    pub(super) fn await_sync(
        &self,
        token: Option<&str>,
        undo: impl FnOnce(&str) -> BridgeResult<()>,
    ) -> BridgeResult<()> {
        let Some(token) = token else { return Ok(()) };
        let deadline = std::time::Instant::now() + self.sync_timeout;
        loop {
            match self.store.wait_state(token)? {
                WaitState::Delivered => return Ok(()),
                WaitState::Dead {
                    connector,
                    failure,
                    error,
                } => {
                    self.store.drop_dead_jobs(token)?;
                    if let Err(e) = undo(&connector) {
                        log::error!("could not undo a change that {connector} refused: {e}");
                    }
                    return Err(BridgeError::Target {
                        connector,
                        failure,
                        error,
                    });
                }
                WaitState::Pending if std::time::Instant::now() >= deadline => {
                    log::info!("sync delivery still pending after the timeout; it stays queued");
                    return Ok(());
                }
                WaitState::Pending => {
                    self.fanout.wake();
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
    }

    /// Member ids of a group, read only when connectors need them (events that remove
    /// everyone or replace the list say who was there).
    pub(super) fn old_member_ids(&self, rt: &ResourceType, id: &str) -> BridgeResult<Vec<String>> {
        if self.fanout.is_empty() || rt.schema != GROUP_SCHEMA {
            return Ok(vec![]);
        }
        Ok(self.store.members(id)?.into_iter().map(|m| m.id).collect())
    }

    /// Puts a resource back as it was before a write a sync connector refused.
    pub(super) fn restore(
        &self,
        rt: &ResourceType,
        before: &ResourceRow,
        old_members: &[String],
        written_version: Option<i64>,
        except: &str,
    ) -> BridgeResult<()> {
        let now = format_time(self.clock.now());
        let old: Map<String, Value> = serde_json::from_str(&before.data).unwrap_or_default();
        let members: Vec<NewMember> = old_members
            .iter()
            .map(|m| NewMember {
                id: m.clone(),
                kind: None,
            })
            .collect();
        let is_group = rt.schema == GROUP_SCHEMA;
        match written_version {
            // The write deleted it: put it back.
            None => {
                let row = ResourceRow {
                    version: before.version + 1,
                    last_modified: now,
                    ..before.clone()
                };
                let w = Write {
                    new: Some(&old),
                    members: if old_members.is_empty() {
                        vec![]
                    } else {
                        vec![(Event::GroupMembersAdded, super::events::named(old_members))]
                    },
                    ..Write::default()
                };
                let jobs = self.jobs_for(rt, &row.id, row.version, &w, None, Some(except));
                self.store.insert(&row, &members, &jobs)?;
            }
            Some(v) => {
                let current = self.load(rt, &before.id)?;
                let now_doc: Map<String, Value> =
                    serde_json::from_str(&current.data).unwrap_or_default();
                let now_members = self.old_member_ids(rt, &before.id)?;
                let row = ResourceRow {
                    version: v + 1,
                    last_modified: now,
                    ..before.clone()
                };
                let w = Write {
                    old: Some(&now_doc),
                    new: Some(&old),
                    members: if is_group {
                        vec![members_replaced(&now_members, old_members.to_vec())]
                    } else {
                        vec![]
                    },
                    ..Write::default()
                };
                let jobs = self.jobs_for(rt, &row.id, row.version, &w, None, Some(except));
                self.store
                    .replace(&row, v, is_group.then_some(&members[..]), &jobs)?;
            }
        }
        self.fanout.wake();
        Ok(())
    }

    /// Undoes a create a sync connector refused.
    /// Puts a restored resource back in the groups it was in (those that still exist); the
    /// other connectors hear of it, the one that refused does not.
    pub(super) fn rejoin(
        &self,
        id: &str,
        kind: &str,
        groups: &[String],
        except: &str,
    ) -> BridgeResult<()> {
        let grt = self.rt("Group")?;
        for gid in groups {
            let Some(group) = self.store.get(&grt.name, gid)? else {
                continue;
            };
            let group = ResourceRow {
                last_modified: format_time(self.clock.now()),
                ..group
            };
            let make_jobs = |version: i64, stored: &str, applied: &[Applied]| {
                let doc: Map<String, Value> = serde_json::from_str(stored).unwrap_or_default();
                let w = Write {
                    old: Some(&doc),
                    new: Some(&doc),
                    members: applied.iter().map(member_event).collect(),
                    ..Write::default()
                };
                self.jobs_for(grt, gid, version, &w, None, Some(except))
            };
            let member = NewMember {
                id: id.to_string(),
                kind: Some(kind.to_string()),
            };
            match self.store.change_group(
                &group,
                None,
                false,
                &[MemberDelta::Add(vec![member])],
                &make_jobs,
            ) {
                Ok(_) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.fanout.wake();
        Ok(())
    }

    pub(super) fn unmake(
        &self,
        rt: &ResourceType,
        row: &ResourceRow,
        except: &str,
    ) -> BridgeResult<()> {
        let data: Map<String, Value> = serde_json::from_str(&row.data).unwrap_or_default();
        let w = Write {
            old: Some(&data),
            ..Write::default()
        };
        let jobs = self.jobs_for(rt, &row.id, row.version + 1, &w, None, Some(except));
        let now = format_time(self.clock.now());
        self.store
            .delete(&rt.name, &row.id, Some(row.version), &now, &jobs)?;
        self.fanout.wake();
        Ok(())
    }
}
