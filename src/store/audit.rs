//! The audit trail's rows: written one per SCIM write or admin action, read newest first,
//! and forgotten after the retention period.

use diesel::prelude::*;

use super::error::StoreResult;
use super::schema::audit;
use super::sql::SqlStore;
use super::AuditStore;

/// One recorded write.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = audit)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub credential: String,
    pub client: String,
    pub request_id: String,
    pub method: String,
    pub route: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// A JSON array of the attribute paths the write named.
    pub paths: String,
    pub status: i32,
}

/// A write to record.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit)]
pub struct NewAudit {
    pub at: String,
    pub credential: String,
    pub client: String,
    pub request_id: String,
    pub method: String,
    pub route: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub paths: String,
    pub status: i32,
}

/// Which records to read: each filter optional; `before` is the paging cursor (an id).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub resource_id: Option<String>,
    pub credential: Option<String>,
    pub since: Option<String>,
    pub before: Option<i64>,
    pub limit: i64,
}

impl AuditStore for SqlStore {
    fn add_audit(&self, row: &NewAudit) -> StoreResult<()> {
        let mut conn = self.conn()?;
        diesel::insert_into(audit::table)
            .values(row)
            .execute(&mut *conn)?;
        Ok(())
    }

    fn audit(&self, q: &AuditQuery) -> StoreResult<Vec<AuditRow>> {
        let mut conn = self.conn()?;
        let mut query = audit::table.into_boxed();
        if let Some(r) = &q.resource_id {
            // A Bulk request names the resources it touched in its paths.
            let escaped: String = r
                .chars()
                .flat_map(|c| match c {
                    '%' | '_' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            query = query.filter(
                audit::resource_id
                    .eq(r.clone())
                    .or(audit::paths.like(format!("%/{escaped}\"%")).escape('\\')),
            );
        }
        if let Some(c) = &q.credential {
            query = query.filter(audit::credential.eq(c.clone()));
        }
        if let Some(s) = &q.since {
            query = query.filter(audit::at.ge(s.clone()));
        }
        if let Some(b) = q.before {
            query = query.filter(audit::id.lt(b));
        }
        Ok(query
            .order(audit::id.desc())
            .limit(q.limit)
            .select(AuditRow::as_select())
            .load(&mut *conn)?)
    }

    fn prune_audit(&self, before: &str) -> StoreResult<usize> {
        let mut conn = self.conn()?;
        Ok(diesel::delete(audit::table.filter(audit::at.lt(before))).execute(&mut *conn)?)
    }
}
