//! The rows every export format is written from, read as streams (one row
//! in memory at a time) inside one read-only snapshot, so that an archive's
//! files agree with each other whatever phones sync meanwhile.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use futures::{stream::BoxStream, StreamExt, TryStreamExt};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::{
    sensitive::{location_columns, location_joins, Audience, Location, SensitiveTaxa, Subject},
    SightingScope,
};

/// Opens the snapshot an export reads.
pub async fn snapshot(pool: &sqlx::PgPool) -> sqlx::Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// A sighting as exported: its location already generalised when its taxon
/// is sensitive (`location.generalised`; site and notes withheld too).
#[derive(Debug, sqlx::FromRow)]
pub struct SightingRow {
    pub id: Uuid,
    pub territory_id: Uuid,
    pub author_id: Uuid,
    pub occurrence_id: String,
    pub scientific_name: String,
    pub taxon_id: Option<i64>,
    pub vernacular_name: Option<String>,
    pub event_date: DateTime<Utc>,
    pub individual_count: Option<i64>,
    pub occurrence_status: String,
    pub basis_of_record: String,
    pub recorded_by: String,
    pub photo_count: i32,
    pub validation_status: i16,
    pub modified_at: DateTime<Utc>,
    #[sqlx(flatten)]
    pub location: Location,
}

/// The sightings filter shared by the core rows and their photos (a macro:
/// `concat!` takes literals only).
macro_rules! sightings_in_scope {
    () => {
        " WHERE s.territory_id = $1 AND s.validation_status = ANY($2) AND s.duplicate_of IS NULL "
    };
}

/// The query of [`sightings`], built once.
static SIGHTINGS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT s.id, s.territory_id, s.author_id, s.occurrence_id, s.scientific_name, s.taxon_id, \
                s.vernacular_name, s.event_date, s.individual_count, s.occurrence_status, \
                s.basis_of_record, s.recorded_by, cardinality(s.photos) AS photo_count, \
                s.validation_status, s.modified_at, {columns} \
         FROM sightings s {joins} {scope} ORDER BY s.review_seq",
        columns = location_columns("s"),
        joins = location_joins("s"),
        scope = sightings_in_scope!(),
    )
});

/// The exported sightings of `scope`, in the review's order, each shown as
/// a publication (sensitive taxa of `taxa`, the territory's list,
/// generalised).
pub fn sightings<'c>(
    conn: &'c mut PgConnection,
    scope: &'c SightingScope,
    taxa: &'c SensitiveTaxa,
) -> BoxStream<'c, sqlx::Result<SightingRow>> {
    sqlx::query_as::<_, SightingRow>(SIGHTINGS_SQL.as_str())
        .bind(scope.territory)
        .bind(scope.statuses.clone())
        .fetch(conn)
        .map_ok(move |mut row| {
            let subject = Subject {
                territory: row.territory_id,
                author: row.author_id,
                taxon_id: row.taxon_id,
                scientific_name: &row.scientific_name,
            };
            row.location.show_to(Audience::Publication, &subject, taxa);
            row
        })
        .boxed()
}

/// One photo of an exported sighting, held by the server.
#[derive(Debug, sqlx::FromRow)]
pub struct PhotoRow {
    pub occurrence_id: String,
    pub sha256: String,
    pub content_type: String,
    pub recorded_by: String,
}

/// The photos of the sightings of `scope` that the server holds (a photo a
/// phone has not uploaded yet has no address to give).
pub fn photos<'c>(
    conn: &'c mut PgConnection,
    scope: &'c SightingScope,
) -> BoxStream<'c, sqlx::Result<PhotoRow>> {
    let sql = concat!(
        "SELECT s.occurrence_id, p.sha256, p.content_type, s.recorded_by \
         FROM sightings s \
         CROSS JOIN LATERAL unnest(s.photos) WITH ORDINALITY AS ph(sha256, n) \
         JOIN photos p ON p.sha256 = ph.sha256",
        sightings_in_scope!(),
        "ORDER BY s.review_seq, ph.n"
    );
    sqlx::query_as::<_, PhotoRow>(sql)
        .bind(scope.territory)
        .bind(scope.statuses.clone())
        .fetch(conn)
}

/// A degradation report as exported (no generalisation: a report is about a
/// place, not a species).
#[derive(Debug, sqlx::FromRow)]
pub struct DegradationRow {
    pub id: Uuid,
    pub category: String,
    pub category_detail: Option<String>,
    pub observed_at: DateTime<Utc>,
    pub latitude: f64,
    pub longitude: f64,
    pub uncertainty_m: Option<f64>,
    pub description: String,
    pub site: Option<String>,
    pub status: String,
    pub status_reason: Option<String>,
    pub photo_count: i32,
    pub modified_at: DateTime<Utc>,
}

/// Every degradation report of `territory`, in the review's order.
pub fn degradation_reports(
    conn: &mut PgConnection,
    territory: Uuid,
) -> BoxStream<'_, sqlx::Result<DegradationRow>> {
    sqlx::query_as::<_, DegradationRow>(
        "SELECT id, category, category_detail, observed_at, ST_Y(geom) AS latitude, \
                ST_X(geom) AS longitude, coordinate_uncertainty_m AS uncertainty_m, description, \
                site, status, status_reason, cardinality(photos) AS photo_count, modified_at \
         FROM degradation_reports WHERE territory_id = $1 ORDER BY review_seq",
    )
    .bind(territory)
    .fetch(conn)
}
