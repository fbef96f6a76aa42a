//! `review_history`: every decision, resolution, merge and dismissal as it
//! was taken. Rows are only ever inserted (migration 0006): by the review's
//! own transactions, and by the sync core's commits for a change the server
//! makes on a coordinator's behalf (a conflict resolution), so both write
//! through this module and neither depends on the other.

use serde::Serialize;
use serde_json::{json, Value as Json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// One row to append.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    pub territory_id: Uuid,
    pub record_id: Uuid,
    pub record_kind: &'static str,
    /// `verification`, `follow_up`, `approval`, `conflict_resolution`,
    /// `duplicate_merge` or `duplicate_dismissal`.
    pub action: &'static str,
    pub status: Option<String>,
    pub previous: Option<String>,
    pub reason: Option<String>,
    pub detail: Json,
    pub decided_by: Uuid,
}

impl HistoryRow {
    pub fn new(
        territory_id: Uuid,
        record_id: Uuid,
        record_kind: &'static str,
        action: &'static str,
        decided_by: Uuid,
    ) -> HistoryRow {
        HistoryRow {
            territory_id,
            record_id,
            record_kind,
            action,
            status: None,
            previous: None,
            reason: None,
            detail: json!({}),
            decided_by,
        }
    }

    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).expect("a history row serialises")
    }
}

/// Appends `rows` (as [`HistoryRow::to_json`] made them) in one statement.
pub async fn append(conn: &mut PgConnection, rows: &[Json]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO review_history (territory_id, record_id, record_kind, action, status, \
           previous, reason, detail, decided_by) \
         SELECT r.territory_id, r.record_id, r.record_kind, r.action, r.status, r.previous, \
           r.reason, COALESCE(r.detail, '{}'), r.decided_by \
         FROM jsonb_to_recordset($1) AS r(territory_id uuid, record_id uuid, record_kind text, \
           action text, status text, previous text, reason text, detail jsonb, decided_by uuid) \
         ORDER BY r.record_id",
    )
    .bind(Json::Array(rows.to_vec()))
    .execute(conn)
    .await?;
    Ok(())
}

/// A record's current decisions and its whole history, oldest first, each
/// step with who took it.
pub async fn of_record(pool: &PgPool, territory: Uuid, record: Uuid) -> Result<Json, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT jsonb_build_object(\
           'recordId', $2::uuid, \
           'decisions', (SELECT COALESCE(jsonb_agg(jsonb_build_object(\
               'decision', d.decision, 'status', d.status, 'reason', d.reason, \
               'decidedBy', d.decided_by, 'decidedByName', a.display_name, \
               'decidedAt', d.decided_at) ORDER BY d.decision), '[]') \
             FROM review_decisions d JOIN accounts a ON a.id = d.decided_by \
             WHERE d.record_id = $2 AND d.territory_id = $1), \
           'history', (SELECT COALESCE(jsonb_agg(jsonb_build_object(\
               'id', h.id, 'action', h.action, 'status', h.status, 'previous', h.previous, \
               'reason', h.reason, 'detail', h.detail, 'decidedBy', h.decided_by, \
               'decidedByName', a.display_name, 'decidedAt', h.decided_at) ORDER BY h.id), '[]') \
             FROM review_history h JOIN accounts a ON a.id = h.decided_by \
             WHERE h.record_id = $2 AND h.territory_id = $1))",
    )
    .bind(territory)
    .bind(record)
    .fetch_one(pool)
    .await
}
