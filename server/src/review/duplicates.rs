//! Possible duplicates: sightings of one taxon within the territory's
//! distance (default 50 m) and time window (default 2 h) of each other,
//! found with PostGIS on the indexed geography. The reviewer merges a pair
//! (one record is the reference, the other is marked duplicate of it; both
//! stay in the inventory) or dismisses it (never proposed again).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{json, Value as Json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::history::{self, HistoryRow};

use super::{
    decisions::mark_for_publishing,
    filter::{DEFAULT_PAGE, MAX_PAGE},
    rows::{PairSide, ProposalPage, ProposedPair},
    ReviewError,
};
use schemas::RecordKind;

/// A territory's duplicate settings.
#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    pub duplicate_distance_m: f64,
    pub duplicate_window_hours: f64,
}

/// A pair, as a reviewer names it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Pair {
    /// Merge: the record that stays the reference. Dismiss: either one.
    pub reference: Uuid,
    /// Merge: the record marked duplicate of the reference.
    pub duplicate: Uuid,
    pub reason: Option<String>,
}

/// The SQL of a page of proposals: `$1` territory, `$2`/`$3` the cursor's
/// review orders (NULL for the first page), `$4` the row limit. Public so
/// the review benchmark explains the very query the server runs.
///
/// The page's pairs are found first, reading indexes only (the walk in
/// review order starts at the cursor, each probe is index-only since the
/// probe index covers review_seq); the records are read for those pairs
/// alone, the sides by [`pair_sides`]. A cursor `a:b` resumes inside a's
/// pairs (`o.review_seq < b`), then walks on from a.
pub const PROPOSALS_SQL: &str =
        "WITH page AS ( \
           SELECT t.id AS a_id, o.id AS b_id, t.review_seq AS a_seq, o.review_seq AS b_seq \
           FROM sightings t JOIN territories tr ON tr.id = t.territory_id \
           JOIN LATERAL ( \
             SELECT o.id, o.review_seq FROM sightings o \
             WHERE o.territory_id = t.territory_id AND o.taxon_key = t.taxon_key \
               AND o.review_seq < t.review_seq \
               AND ($3::bigint IS NULL OR t.review_seq < $2 OR o.review_seq < $3) \
               AND o.event_date BETWEEN t.event_date - make_interval(secs => tr.duplicate_window_hours * 3600) \
                                    AND t.event_date + make_interval(secs => tr.duplicate_window_hours * 3600) \
               AND o.duplicate_of IS NULL \
               AND abs(ST_Y(o.geom) - ST_Y(t.geom)) <= tr.duplicate_distance_m / 110574 \
               AND ST_Distance(o.geom::geography, t.geom::geography) <= tr.duplicate_distance_m \
               AND NOT EXISTS (SELECT 1 FROM duplicate_dismissals x \
                               WHERE x.record_a = LEAST(o.id, t.id) AND x.record_b = GREATEST(o.id, t.id)) \
           ) o ON true \
           WHERE t.territory_id = $1 AND t.duplicate_of IS NULL \
             AND t.review_seq <= coalesce($2::bigint, 9223372036854775807) \
           ORDER BY t.review_seq DESC, o.review_seq DESC LIMIT $4) \
         SELECT page.a_id, page.b_id, \
           round(ST_Distance(t.geom::geography, o.geom::geography)::numeric, 1)::float8 AS distance_m, \
           round((abs(extract(epoch FROM t.event_date - o.event_date)) / 3600)::numeric, 2)::float8 AS hours_apart, \
           page.a_seq, page.b_seq \
         FROM page JOIN sightings t ON t.id = page.a_id JOIN sightings o ON o.id = page.b_id \
         ORDER BY page.a_seq DESC, page.b_seq DESC";

/// A page of proposed pairs, newest first: each pair once, `a` the later
/// filed. The cursor is `<a's review_seq>:<b's review_seq>`.
pub async fn proposals(
    pool: &PgPool,
    territory: Uuid,
    after: Option<&str>,
    limit: Option<i64>,
) -> Result<ProposalPage, ReviewError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ReviewError::bad_request(
            "limit",
            format!("must be between 1 and {MAX_PAGE} (got {limit})"),
        ));
    }
    let cursor = after
        .map(|cursor| {
            cursor
                .split_once(':')
                .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)))
                .ok_or_else(|| ReviewError::bad_request("after", "not a cursor this server gave"))
        })
        .transpose()?;
    let mut pairs: Vec<PairOnPage> = sqlx::query_as(PROPOSALS_SQL)
        .bind(territory)
        .bind(cursor.map(|c| c.0))
        .bind(cursor.map(|c| c.1))
        .bind(limit + 1)
        .fetch_all(pool)
        .await?;
    let more = pairs.len() as i64 > limit;
    pairs.truncate(limit as usize);
    let next_cursor = more
        .then(|| pairs.last().map(|p| format!("{}:{}", p.a_seq, p.b_seq)))
        .flatten();
    let ids: Vec<Uuid> = pairs.iter().flat_map(|p| [p.a_id, p.b_id]).collect();
    let sides: HashMap<Uuid, PairSide> = pair_sides(pool, &ids)
        .await?
        .into_iter()
        .map(|side| (side.id, side))
        .collect();
    // A sighting removed from its notebook since the pairs were found takes
    // its pairs with it.
    let items = pairs
        .iter()
        .filter_map(|pair| {
            Some(ProposedPair {
                a: sides.get(&pair.a_id)?.clone(),
                b: sides.get(&pair.b_id)?.clone(),
                distance_m: pair.distance_m,
                hours_apart: pair.hours_apart,
            })
        })
        .collect();
    Ok(ProposalPage { items, next_cursor })
}

/// A pair as [`PROPOSALS_SQL`] finds it, before its sides are read.
#[derive(sqlx::FromRow)]
struct PairOnPage {
    a_id: Uuid,
    b_id: Uuid,
    distance_m: f64,
    hours_apart: f64,
    a_seq: i64,
    b_seq: i64,
}

/// The sightings of a page's pairs, as their sides.
async fn pair_sides(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<PairSide>, sqlx::Error> {
    sqlx::query_as!(
        PairSide,
        r#"SELECT s.id, s.scientific_name, s.taxon_id, s.event_date,
             ST_Y(s.geom) AS "decimal_latitude!", ST_X(s.geom) AS "decimal_longitude!",
             s.coordinate_uncertainty_m AS coordinate_uncertainty_in_meters,
             s.individual_count, s.site, s.photos, s.author_id,
             a.display_name AS "author_name?", s.validation_status
           FROM sightings s LEFT JOIN accounts a ON a.id = s.author_id
           WHERE s.id = ANY($1)"#,
        ids
    )
    .fetch_all(pool)
    .await
}

/// The two sightings of a pair, locked: (id, author, duplicate_of).
async fn lock_pair(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    territory: Uuid,
    pair: &Pair,
) -> Result<[(Uuid, Uuid, Option<Uuid>); 2], ReviewError> {
    if pair.reference == pair.duplicate {
        return Err(ReviewError::bad_request(
            "duplicate",
            "a record is not a duplicate of itself",
        ));
    }
    let rows: Vec<(Uuid, Uuid, Option<Uuid>)> = sqlx::query_as(
        "SELECT id, author_id, duplicate_of FROM sightings \
         WHERE territory_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE",
    )
    .bind(territory)
    .bind([pair.reference, pair.duplicate])
    .fetch_all(&mut **tx)
    .await?;
    let find = |field: &str, id: Uuid| {
        rows.iter().find(|row| row.0 == id).copied().ok_or_else(|| {
            ReviewError::unprocessable(
                field,
                format!("{id} is not a sighting of territory {territory}"),
            )
        })
    };
    Ok([
        find("reference", pair.reference)?,
        find("duplicate", pair.duplicate)?,
    ])
}

/// Marks `pair.duplicate` as a duplicate of `pair.reference`.
pub async fn merge(
    pool: &PgPool,
    territory: Uuid,
    coordinator: Uuid,
    pair: &Pair,
) -> Result<Vec<Uuid>, ReviewError> {
    let mut tx = pool.begin().await?;
    let [reference, duplicate] = lock_pair(&mut tx, territory, pair).await?;
    if let Some(of) = reference.2 {
        return Err(ReviewError::conflict(
            "reference",
            format!(
                "{} is itself marked duplicate of {of}; use that one as the reference",
                reference.0
            ),
        ));
    }
    if let Some(of) = duplicate.2 {
        if of == reference.0 {
            return Ok(Vec::new());
        }
        return Err(ReviewError::conflict(
            "duplicate",
            format!("{} is already marked duplicate of {of}", duplicate.0),
        ));
    }
    sqlx::query(
        "INSERT INTO review_decisions (record_id, decision, territory_id, record_kind, \
           volunteer_id, status, reason, decided_by) \
         VALUES ($1, 'duplicate', $2, 'sighting', $3, $4, $5, $6) \
         ON CONFLICT (record_id, decision) DO UPDATE SET status = EXCLUDED.status, \
           reason = EXCLUDED.reason, decided_by = EXCLUDED.decided_by, decided_at = now()",
    )
    .bind(duplicate.0)
    .bind(territory)
    .bind(duplicate.1)
    .bind(reference.0.to_string())
    .bind(&pair.reason)
    .bind(coordinator)
    .execute(&mut *tx)
    .await?;
    let detail = json!({ "reference": reference.0, "duplicate": duplicate.0 });
    let rows: Vec<Json> = [duplicate.0, reference.0]
        .into_iter()
        .map(|record| {
            let mut row = HistoryRow::new(
                territory,
                record,
                RecordKind::Sighting.as_str(),
                "duplicate_merge",
                coordinator,
            );
            row.reason = pair.reason.clone();
            row.detail = detail.clone();
            row.to_json()
        })
        .collect();
    history::append(&mut tx, &rows).await?;
    mark_for_publishing(&mut tx, territory, &[duplicate.1]).await?;
    tx.commit().await?;
    tracing::info!(%territory, reference = %reference.0, duplicate = %duplicate.0, "duplicates merged");
    Ok(vec![duplicate.1])
}

/// Records that the two sightings of `pair` are not duplicates.
pub async fn dismiss(
    pool: &PgPool,
    territory: Uuid,
    coordinator: Uuid,
    pair: &Pair,
) -> Result<(), ReviewError> {
    let mut tx = pool.begin().await?;
    lock_pair(&mut tx, territory, pair).await?;
    let (a, b) = if pair.reference < pair.duplicate {
        (pair.reference, pair.duplicate)
    } else {
        (pair.duplicate, pair.reference)
    };
    let inserted = sqlx::query(
        "INSERT INTO duplicate_dismissals (record_a, record_b, territory_id, dismissed_by) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(a)
    .bind(b)
    .bind(territory)
    .bind(coordinator)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted > 0 {
        let rows: Vec<Json> = [a, b]
            .into_iter()
            .map(|record| {
                let mut row = HistoryRow::new(
                    territory,
                    record,
                    RecordKind::Sighting.as_str(),
                    "duplicate_dismissal",
                    coordinator,
                );
                row.reason = pair.reason.clone();
                row.detail = json!({ "pair": [a, b] });
                row.to_json()
            })
            .collect();
        history::append(&mut tx, &rows).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn settings(pool: &PgPool, territory: Uuid) -> Result<Settings, ReviewError> {
    let (duplicate_distance_m, duplicate_window_hours): (f64, f64) = sqlx::query_as(
        "SELECT duplicate_distance_m, duplicate_window_hours FROM territories WHERE id = $1",
    )
    .bind(territory)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ReviewError::NotFound(format!("territory {territory}")))?;
    Ok(Settings {
        duplicate_distance_m,
        duplicate_window_hours,
    })
}

pub async fn set_settings(
    pool: &PgPool,
    territory: Uuid,
    wanted: &Settings,
) -> Result<Settings, ReviewError> {
    if !(wanted.duplicate_distance_m > 0.0 && wanted.duplicate_distance_m <= 10_000.0) {
        return Err(ReviewError::bad_request(
            "duplicateDistanceM",
            "must be more than 0 and at most 10000 metres",
        ));
    }
    if !(wanted.duplicate_window_hours > 0.0 && wanted.duplicate_window_hours <= 720.0) {
        return Err(ReviewError::bad_request(
            "duplicateWindowHours",
            "must be more than 0 and at most 720 hours",
        ));
    }
    sqlx::query(
        "UPDATE territories SET duplicate_distance_m = $2, duplicate_window_hours = $3 WHERE id = $1",
    )
    .bind(territory)
    .bind(wanted.duplicate_distance_m)
    .bind(wanted.duplicate_window_hours)
    .execute(pool)
    .await?;
    settings(pool, territory).await
}
