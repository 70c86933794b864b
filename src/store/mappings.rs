//! The mapping table: where each resource stands in each target (its id and principal
//! there, the last version delivered, the state of the last delivery).

use diesel::prelude::*;

use super::db::DbConn;
use super::error::{StoreError, StoreResult};
use super::schema::{mappings, notifications};
use super::sql::SqlStore;
use super::{MappingStore, NotificationRow};
use crate::model::{Mapping, MappingState, ResourceKind};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = mappings)]
pub struct MappingRow {
    pub resource_id: String,
    pub connector: String,
    pub resource_type: ResourceKind,
    pub target_id: Option<String>,
    pub principal: Option<String>,
    pub last_version: Option<i64>,
    pub state: MappingState,
    pub last_error: Option<String>,
    pub attempts: i32,
    pub created: String,
    pub updated: String,
    /// What the last delivery did besides succeeding (skipped, adopted, out of scope).
    pub note: Option<String>,
}

impl MappingRow {
    /// The mapping as connectors see it.
    pub fn to_model(&self) -> Mapping {
        Mapping {
            target_id: self.target_id.clone(),
            principal: self.principal.clone(),
            state: self.state,
            last_version: self.last_version,
        }
    }
}

impl MappingStore for SqlStore {
    fn deleted_resource(&self, resource_type: &str, key: &str) -> StoreResult<Option<String>> {
        let mut conn = self.conn()?;
        Ok(mappings::table
            .filter(mappings::resource_type.eq(resource_type))
            .filter(
                mappings::resource_id
                    .eq(key)
                    .or(mappings::principal.eq(key)),
            )
            .select(mappings::resource_id)
            .first(&mut *conn)
            .optional()?)
    }

    fn prune_deleted(&self, before: &str) -> StoreResult<usize> {
        self.write(|conn| {
            Ok(diesel::delete(
                mappings::table
                    .filter(mappings::state.eq(MappingState::Deleted.as_str()))
                    .filter(mappings::updated.lt(before)),
            )
            .execute(conn)?)
        })
    }

    fn mappings_of(&self, resource_id: &str) -> StoreResult<Vec<MappingRow>> {
        let mut conn = self.conn()?;
        Ok(mappings::table
            .filter(mappings::resource_id.eq(resource_id))
            .order(mappings::connector.asc())
            .select(MappingRow::as_select())
            .load(&mut *conn)?)
    }

    fn mappings_in(
        &self,
        resource_ids: &[String],
        connector: &str,
    ) -> StoreResult<Vec<MappingRow>> {
        let mut conn = self.conn()?;
        let mut out = Vec::new();
        for chunk in resource_ids.chunks(1000) {
            out.extend(
                mappings::table
                    .filter(mappings::connector.eq(connector))
                    .filter(mappings::resource_id.eq_any(chunk))
                    .select(MappingRow::as_select())
                    .load(&mut *conn)?,
            );
        }
        Ok(out)
    }

    fn mapping(&self, resource_id: &str, connector: &str) -> StoreResult<Option<MappingRow>> {
        let mut conn = self.conn()?;
        Ok(mappings::table
            .find((resource_id, connector))
            .select(MappingRow::as_select())
            .first(&mut *conn)
            .optional()?)
    }

    fn record_mapping(
        &self,
        resource_id: &str,
        connector: &str,
        resource_type: &str,
        target_id: Option<&str>,
        principal: Option<&str>,
        now: &str,
    ) -> StoreResult<()> {
        self.write(|conn| {
            let values = (
                mappings::resource_id.eq(resource_id),
                mappings::connector.eq(connector),
                mappings::resource_type.eq(resource_type),
                mappings::target_id.eq(target_id),
                mappings::principal.eq(principal),
                mappings::state.eq(MappingState::Synced.as_str()),
                mappings::attempts.eq(0),
                mappings::created.eq(now),
                mappings::updated.eq(now),
            );
            let update = (
                mappings::target_id.eq(target_id),
                mappings::principal.eq(principal),
                mappings::state.eq(MappingState::Synced.as_str()),
                mappings::last_error.eq(None::<String>),
                mappings::updated.eq(now),
            );
            match conn {
                DbConn::Sqlite(c) => diesel::insert_into(mappings::table)
                    .values(values)
                    .on_conflict((mappings::resource_id, mappings::connector))
                    .do_update()
                    .set(update)
                    .execute(c)?,
                DbConn::Pg(c) => diesel::insert_into(mappings::table)
                    .values(values)
                    .on_conflict((mappings::resource_id, mappings::connector))
                    .do_update()
                    .set(update)
                    .execute(c)?,
            };
            Ok(())
        })
    }

    fn standing_of(
        &self,
        resource_id: &str,
    ) -> StoreResult<(Vec<MappingRow>, Vec<NotificationRow>)> {
        let mut conn = self.conn()?;
        let conn: &mut DbConn = &mut conn;
        conn.transaction::<_, StoreError, _>(|conn| {
            if let DbConn::Pg(c) = conn {
                diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .execute(c)?;
            }
            let mappings = mappings::table
                .filter(mappings::resource_id.eq(resource_id))
                .order(mappings::connector.asc())
                .select(MappingRow::as_select())
                .load(conn)?;
            let notes = notifications::table
                .filter(notifications::resource_id.eq(resource_id))
                .order(notifications::created.asc())
                .select(NotificationRow::as_select())
                .load(conn)?;
            Ok((mappings, notes))
        })
    }
}
