//! Notifications a target accepted and completes later (ENTSSO's password changes), and
//! what their completion does to the resource's mapping.

use diesel::prelude::*;

use super::db::DbConn;
use super::error::StoreResult;
use super::schema::{mappings, notifications};
use super::sql::SqlStore;
use super::NotificationStore;
use crate::model::{Event, NotificationState};

/// A notification a target accepted and will complete later.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = notifications)]
pub struct NotificationRow {
    #[serde(rename = "trackingId")]
    pub tracking_id: String,
    pub connector: String,
    #[serde(rename = "resourceId")]
    pub resource_id: String,
    pub kind: Event,
    pub state: NotificationState,
    pub error: Option<String>,
    pub created: String,
    pub updated: String,
}

/// A mapping's state after its notification completed.
fn set_mapping_from(
    conn: &mut DbConn,
    resource_id: &str,
    connector: &str,
    state: NotificationState,
    error: Option<&str>,
    now: &str,
) -> StoreResult<()> {
    if state == NotificationState::Accepted {
        return Ok(());
    }
    let mapping_state = state.mapping_state().as_str();
    diesel::update(mappings::table.find((resource_id, connector)))
        .set((
            mappings::state.eq(mapping_state),
            mappings::last_error.eq(error),
            mappings::updated.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records a notification; a completion that raced ahead of it is kept.
pub(super) fn add_notification_in(conn: &mut DbConn, n: &NotificationRow) -> StoreResult<()> {
    let early: Option<NotificationRow> = notifications::table
        .find(&n.tracking_id)
        .select(NotificationRow::as_select())
        .first(conn)
        .optional()?;
    match early {
        Some(done) => {
            diesel::update(notifications::table.find(&n.tracking_id))
                .set((
                    notifications::resource_id.eq(&n.resource_id),
                    notifications::kind.eq(n.kind.as_str()),
                ))
                .execute(conn)?;
            set_mapping_from(
                conn,
                &n.resource_id,
                &n.connector,
                done.state,
                done.error.as_deref(),
                &n.updated,
            )?;
        }
        None => {
            diesel::insert_into(notifications::table)
                .values((
                    notifications::tracking_id.eq(&n.tracking_id),
                    notifications::connector.eq(&n.connector),
                    notifications::resource_id.eq(&n.resource_id),
                    notifications::kind.eq(n.kind.as_str()),
                    notifications::state.eq(n.state.as_str()),
                    notifications::error.eq(&n.error),
                    notifications::created.eq(&n.created),
                    notifications::updated.eq(&n.updated),
                ))
                .execute(conn)?;
        }
    }
    Ok(())
}

impl NotificationStore for SqlStore {
    fn complete_notification(
        &self,
        tracking_id: &str,
        connector: &str,
        state: NotificationState,
        error: Option<&str>,
        now: &str,
    ) -> StoreResult<Option<NotificationRow>> {
        self.write(|conn| {
            let n = diesel::update(
                notifications::table
                    .find(tracking_id)
                    .filter(notifications::connector.eq(connector)),
            )
            .set((
                notifications::state.eq(state.as_str()),
                notifications::error.eq(error),
                notifications::updated.eq(now),
            ))
            .execute(conn)?;
            if n == 0 {
                let exists: i64 = notifications::table
                    .find(tracking_id)
                    .count()
                    .get_result(conn)?;
                if exists > 0 {
                    return Ok(None);
                }
                diesel::insert_into(notifications::table)
                    .values((
                        notifications::tracking_id.eq(tracking_id),
                        notifications::connector.eq(connector),
                        notifications::resource_id.eq(""),
                        // Only password changes are completed later; the delivery's own
                        // record fills in the resource and its event.
                        notifications::kind.eq(Event::UserPasswordSet.as_str()),
                        notifications::state.eq(state.as_str()),
                        notifications::error.eq(error),
                        notifications::created.eq(now),
                        notifications::updated.eq(now),
                    ))
                    .execute(conn)?;
            }
            let row: NotificationRow = notifications::table
                .find(tracking_id)
                .select(NotificationRow::as_select())
                .first(conn)?;
            if !row.resource_id.is_empty() {
                set_mapping_from(conn, &row.resource_id, &row.connector, state, error, now)?;
            }
            Ok(Some(row))
        })
    }

    fn notifications_of(&self, resource_id: &str) -> StoreResult<Vec<NotificationRow>> {
        let mut conn = self.conn()?;
        Ok(notifications::table
            .filter(notifications::resource_id.eq(resource_id))
            .order(notifications::created.asc())
            .select(NotificationRow::as_select())
            .load(&mut *conn)?)
    }
}
