//! A territory's dashboard counts, read from counters instead of counted
//! (migration 0011): statement triggers on the inventory tables append each
//! statement's net change to `review_count_deltas`, and [`fold`] moves the
//! deltas into `review_counts` in the background, so a count reads a few
//! dozen rows whatever the territory's size, and no commit waits on a
//! counter row held by another.

use std::time::Duration;

use serde_json::{json, Map, Value as Json};
use sqlx::PgPool;
use uuid::Uuid;

use super::error::ReviewError;

/// How often each process folds the deltas.
pub const FOLD_EVERY: Duration = Duration::from_secs(5);

/// Records by kind and status, open conflicts, hours by approval status,
/// invalid records. (Possible duplicates are listed, and counted, by
/// `duplicates`.)
pub async fn counts(pool: &PgPool, territory: Uuid) -> Result<Json, ReviewError> {
    let rows: Vec<(String, String, bool, i64, i64)> = sqlx::query_as(
        "SELECT kind, status, conflicted, sum(records)::bigint, sum(minutes)::bigint FROM ( \
           SELECT kind, status, conflicted, records, minutes FROM review_counts WHERE territory_id = $1 \
           UNION ALL \
           SELECT kind, status, conflicted, records, minutes FROM review_count_deltas WHERE territory_id = $1) c \
         GROUP BY 1, 2, 3",
    )
    .bind(territory)
    .fetch_all(pool)
    .await?;
    let invalid: i64 =
        sqlx::query_scalar("SELECT count(*) FROM invalid_records WHERE territory_id = $1")
            .bind(territory)
            .fetch_one(pool)
            .await?;
    let mut kinds: Map<String, Json> = Map::new();
    for (name, kind) in [
        ("sightings", "sighting"),
        ("degradationReports", "degradation_report"),
        ("timesheetEntries", "timesheet_entry"),
    ] {
        let (mut total, mut conflicts) = (0, 0);
        let (mut by_status, mut minutes_by_status) = (Map::new(), Map::new());
        for (_, status, conflicted, records, minutes) in rows.iter().filter(|r| r.0 == kind) {
            if *records == 0 {
                continue;
            }
            total += records;
            if *conflicted {
                conflicts += records;
            }
            let n = by_status.get(status).and_then(Json::as_i64).unwrap_or(0);
            by_status.insert(status.clone(), json!(n + records));
            let m = minutes_by_status
                .get(status)
                .and_then(Json::as_i64)
                .unwrap_or(0);
            minutes_by_status.insert(status.clone(), json!(m + minutes));
        }
        let mut counted = json!({"total": total, "byStatus": by_status, "conflicts": conflicts});
        if kind == "timesheet_entry" {
            counted["minutesByStatus"] = Json::Object(minutes_by_status);
        }
        kinds.insert(name.to_string(), counted);
    }
    kinds.insert("invalidRecords".to_string(), json!(invalid));
    Ok(Json::Object(kinds))
}

/// Moves every delta into the counters, in one transaction; skipped when
/// another process is folding (the advisory lock), so folds never contend.
pub async fn fold(pool: &PgPool) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let ours: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock(hashtext('fieldnotes review counts'))",
    )
    .fetch_one(&mut *tx)
    .await?;
    if !ours {
        return Ok(0);
    }
    let folded = sqlx::query(
        "WITH moved AS (DELETE FROM review_count_deltas RETURNING *), \
         summed AS (SELECT territory_id, kind, status, conflicted, sum(records) AS records, \
                           sum(minutes) AS minutes FROM moved GROUP BY 1, 2, 3, 4) \
         INSERT INTO review_counts SELECT * FROM summed \
         ON CONFLICT (territory_id, kind, status, conflicted) DO UPDATE \
           SET records = review_counts.records + EXCLUDED.records, \
               minutes = review_counts.minutes + EXCLUDED.minutes",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(folded)
}
