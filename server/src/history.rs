//! `review_history`: every decision, resolution, merge and dismissal as it
//! was taken. Rows are only ever inserted (migration 0006): by the review's
//! own transactions, and by the sync core's commits for a change the server
//! makes on a coordinator's behalf (a conflict resolution), so both write
//! through this module and neither depends on the other.

use chrono::{DateTime, Utc};
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

/// A record's current decisions and its whole history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordHistory {
    pub record_id: Uuid,
    /// Its current decisions, one per kind of decision.
    pub decisions: Vec<Decision>,
    /// Every step, oldest first.
    pub history: Vec<Step>,
}

/// A decision in force about a record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// `verification`, `follow_up`, `approval` or `duplicate`.
    pub decision: String,
    pub status: String,
    #[schema(required = true)]
    pub reason: Option<String>,
    pub decided_by: Uuid,
    pub decided_by_name: String,
    pub decided_at: DateTime<Utc>,
}

/// One step of a record's review, as it was taken.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub id: i64,
    /// As [`HistoryRow::action`].
    pub action: String,
    #[schema(required = true)]
    pub status: Option<String>,
    #[schema(required = true)]
    pub previous: Option<String>,
    #[schema(required = true)]
    pub reason: Option<String>,
    /// The field and values of a resolved conflict, the other record of a
    /// duplicate pair.
    #[schema(value_type = Object)]
    pub detail: Json,
    pub decided_by: Uuid,
    pub decided_by_name: String,
    pub decided_at: DateTime<Utc>,
}

/// A record's current decisions and its whole history, oldest first, each
/// step with who took it.
pub async fn of_record(
    pool: &PgPool,
    territory: Uuid,
    record: Uuid,
) -> Result<RecordHistory, sqlx::Error> {
    let decisions = sqlx::query_as!(
        Decision,
        "SELECT d.decision, d.status, d.reason, d.decided_by, \
           a.display_name AS decided_by_name, d.decided_at \
         FROM review_decisions d JOIN accounts a ON a.id = d.decided_by \
         WHERE d.territory_id = $1 AND d.record_id = $2 ORDER BY d.decision",
        territory,
        record
    )
    .fetch_all(pool)
    .await?;
    let history = sqlx::query_as!(
        Step,
        "SELECT h.id, h.action, h.status, h.previous, h.reason, h.detail, h.decided_by, \
           a.display_name AS decided_by_name, h.decided_at \
         FROM review_history h JOIN accounts a ON a.id = h.decided_by \
         WHERE h.territory_id = $1 AND h.record_id = $2 ORDER BY h.id",
        territory,
        record
    )
    .fetch_all(pool)
    .await?;
    Ok(RecordHistory {
        record_id: record,
        decisions,
        history,
    })
}
