//! The hourly rates a territory values volunteer time at, each in force from
//! its effective date until the next one. Setting a rate changes the reports
//! issued after it, never one already issued (each carries the rates it used).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

/// One rate, as listed and as set.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct HourlyRate {
    pub effective_from: NaiveDate,
    pub cents_per_hour: i32,
    /// `smic` (the statutory minimum wage, the usual basis of *valorisation
    /// du bénévolat*) or `set` (a rate the territory chose).
    pub basis: String,
    pub note: Option<String>,
}

pub async fn list(pool: &PgPool, territory: Uuid) -> sqlx::Result<Vec<HourlyRate>> {
    sqlx::query_as(
        "SELECT effective_from, cents_per_hour, basis, note FROM hourly_rates \
         WHERE territory_id = $1 ORDER BY effective_from",
    )
    .bind(territory)
    .fetch_all(pool)
    .await
}

/// Sets (or replaces) the rate in force from `rate.effective_from`, and
/// records it in the audit trail in the same transaction.
pub async fn set(
    pool: &PgPool,
    territory: Uuid,
    rate: &HourlyRate,
    set_by: Uuid,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    let previous: Option<i32> = sqlx::query_scalar(
        "SELECT cents_per_hour FROM hourly_rates WHERE territory_id = $1 AND effective_from = $2",
    )
    .bind(territory)
    .bind(rate.effective_from)
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO hourly_rates (territory_id, effective_from, cents_per_hour, basis, note, set_by) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (territory_id, effective_from) DO UPDATE SET cents_per_hour = EXCLUDED.cents_per_hour, \
           basis = EXCLUDED.basis, note = EXCLUDED.note, set_by = EXCLUDED.set_by, set_at = now()",
    )
    .bind(territory)
    .bind(rate.effective_from)
    .bind(rate.cents_per_hour)
    .bind(&rate.basis)
    .bind(&rate.note)
    .bind(set_by)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO audit_pending (territory_id, action, actor_id, before, after, detail) \
         VALUES ($1, 'hourly_rate_set', $2, $3, $4, jsonb_build_object('effectiveFrom', $5::date))",
    )
    .bind(territory)
    .bind(set_by)
    .bind(serde_json::json!({ "centsPerHour": previous }))
    .bind(serde_json::json!({ "centsPerHour": rate.cents_per_hour, "basis": rate.basis, "note": rate.note }))
    .bind(rate.effective_from)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
