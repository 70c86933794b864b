//! Generated users and groups written straight through the store, for benchmarks: a
//! million users in a minute instead of an hour of HTTP.

use std::sync::Arc;

use serde_json::json;

use super::error::{BridgeError, BridgeResult};
use super::resources::to_row;
use crate::clock::format_time;
use crate::scim::resource::normalize;
use crate::scim::schema::Registry;
use crate::scim::ScimError;
use crate::store::SqlStore;

/// The id of seeded user `i`: deterministic, so a load generator can address users
/// without listing them first.
pub fn seeded_user_id(i: u64) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

pub fn seeded_group_id(i: u64) -> String {
    format!("00000000-0000-4000-9000-{i:012}")
}

/// Writes `users` users (`user{i}@example.com`, externalId `ext{i}`) and `groups` groups,
/// the first of which has the first `big_group` users as members.
pub fn seed(
    store: &SqlStore,
    reg: &Arc<Registry>,
    users: u64,
    groups: u64,
    big_group: u64,
) -> BridgeResult<()> {
    let user_rt = reg
        .resource_type("User")
        .ok_or_else(|| ScimError::Internal("no User type".into()))?;
    let group_rt = reg
        .resource_type("Group")
        .ok_or_else(|| ScimError::Internal("no Group type".into()))?;
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .map_err(|e| ScimError::Internal(e.to_string()))?
        .with_timezone(&chrono::Utc);
    const BATCH: u64 = 1000;
    let mut i = 0;
    while i < users {
        let end = (i + BATCH).min(users);
        let mut rows = Vec::with_capacity((end - i) as usize);
        for n in i..end {
            let doc = json!({
                "userName": format!("user{n}@example.com"), "externalId": format!("ext{n}"),
                "name": {"givenName": "Given", "familyName": format!("Family{n}")},
                "displayName": format!("User {n}"), "active": true,
                "emails": [{"value": format!("user{n}@example.com"), "type": "work", "primary": true}]
            });
            let norm = normalize(reg, user_rt, doc)?;
            let at = format_time(start + chrono::Duration::milliseconds(n as i64));
            rows.push(to_row(
                user_rt,
                seeded_user_id(n),
                norm.data,
                1,
                at.clone(),
                at,
            )?);
        }
        store.seed_rows(&rows).map_err(BridgeError::Store)?;
        i = end;
    }
    let mut rows = Vec::new();
    for g in 0..groups {
        let norm = normalize(reg, group_rt, json!({"displayName": format!("Group {g}")}))?;
        let at = format_time(start);
        rows.push(to_row(
            group_rt,
            seeded_group_id(g),
            norm.data,
            1,
            at.clone(),
            at,
        )?);
    }
    store.seed_rows(&rows).map_err(BridgeError::Store)?;
    if groups > 0 {
        let members: Vec<(String, String, String)> = (0..big_group.min(users))
            .map(|n| (seeded_group_id(0), seeded_user_id(n), "User".to_string()))
            .collect();
        store.seed_members(&members).map_err(BridgeError::Store)?;
    }
    store.analyze().map_err(BridgeError::Store)?;
    Ok(())
}
