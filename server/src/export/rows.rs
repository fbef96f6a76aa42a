//! The rows every export format is written from, read as streams (one row
//! in memory at a time) inside one read-only snapshot, so that an archive's
//! files agree with each other whatever phones sync meanwhile.

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::SightingScope;

/// Opens the snapshot an export reads.
pub async fn snapshot(pool: &sqlx::PgPool) -> sqlx::Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// A sighting as exported: coordinates already generalised when its taxon
/// is sensitive (then `site` and `notes` are withheld too).
#[derive(Debug, sqlx::FromRow)]
pub struct SightingRow {
    pub id: Uuid,
    pub occurrence_id: String,
    pub scientific_name: String,
    pub taxon_id: Option<i64>,
    pub vernacular_name: Option<String>,
    pub event_date: DateTime<Utc>,
    pub individual_count: Option<i64>,
    pub occurrence_status: String,
    pub basis_of_record: String,
    pub recorded_by: String,
    pub site: Option<String>,
    pub notes: Option<String>,
    pub photo_count: i32,
    pub validation_status: i16,
    pub modified_at: DateTime<Utc>,
    pub sensitive: bool,
    /// The territory's grid for sensitive taxa, in metres.
    pub grid_m: i32,
    pub latitude: f64,
    pub longitude: f64,
    /// Lambert-93 (EPSG:2154), metres.
    pub x_l93: f64,
    pub y_l93: f64,
    pub uncertainty_m: Option<f64>,
}

impl SightingRow {
    /// Darwin Core `dataGeneralizations`: empty unless generalised.
    pub fn data_generalizations(&self) -> String {
        if self.sensitive {
            format!(
                "Coordinates generalised to the centre of a {} m square of the Lambert-93 (EPSG:2154) grid: sensitive species",
                self.grid_m
            )
        } else {
            String::new()
        }
    }

    /// Darwin Core `informationWithheld`: empty unless generalised.
    pub fn information_withheld(&self) -> String {
        if self.sensitive {
            "Exact coordinates, site and notes withheld (sensitive species); available from the territory's coordinators on request".to_string()
        } else {
            String::new()
        }
    }
}

/// The sightings filter shared by the core rows and their photos (a macro:
/// `concat!` takes literals only).
macro_rules! sightings_in_scope {
    () => {
        " WHERE s.territory_id = $1 AND s.validation_status = ANY($2) AND s.duplicate_of IS NULL "
    };
}

/// The exported sightings of `scope`, in the review's order.
pub fn sightings<'c>(
    conn: &'c mut PgConnection,
    scope: &'c SightingScope,
) -> BoxStream<'c, sqlx::Result<SightingRow>> {
    let sql = concat!(
        "SELECT s.id, s.occurrence_id, s.scientific_name, s.taxon_id, s.vernacular_name, s.event_date, \
                s.individual_count, s.occurrence_status, s.basis_of_record, s.recorded_by, \
                CASE WHEN z.sensitive THEN NULL ELSE s.site END AS site, \
                CASE WHEN z.sensitive THEN NULL ELSE s.notes END AS notes, \
                cardinality(s.photos) AS photo_count, s.validation_status, s.modified_at, \
                z.sensitive, t.sensitive_grid_m AS grid_m, \
                ST_Y(w.point) AS latitude, ST_X(w.point) AS longitude, \
                ST_X(g.point) AS x_l93, ST_Y(g.point) AS y_l93, \
                CASE WHEN z.sensitive THEN ceil(t.sensitive_grid_m * sqrt(2) / 2) \
                     ELSE s.coordinate_uncertainty_m END AS uncertainty_m \
         FROM sightings s \
         JOIN territories t ON t.id = s.territory_id \
         CROSS JOIN LATERAL (SELECT EXISTS (SELECT FROM sensitive_taxa st \
             WHERE st.territory_id = s.territory_id \
               AND (st.taxon_id = s.taxon_id OR lower(st.scientific_name) = lower(s.scientific_name))) \
             AS sensitive) z \
         CROSS JOIN LATERAL (SELECT ST_Transform(s.geom, 2154) AS point) e \
         CROSS JOIN LATERAL (SELECT CASE WHEN z.sensitive THEN ST_SetSRID(ST_MakePoint( \
               floor(ST_X(e.point) / t.sensitive_grid_m) * t.sensitive_grid_m + t.sensitive_grid_m / 2.0, \
               floor(ST_Y(e.point) / t.sensitive_grid_m) * t.sensitive_grid_m + t.sensitive_grid_m / 2.0), 2154) \
             ELSE e.point END AS point) g \
         CROSS JOIN LATERAL (SELECT CASE WHEN z.sensitive THEN ST_Transform(g.point, 4326) \
             ELSE s.geom END AS point) w",
        sightings_in_scope!(),
        "ORDER BY s.review_seq"
    );
    sqlx::query_as::<_, SightingRow>(sql)
        .bind(scope.territory)
        .bind(scope.statuses.clone())
        .fetch(conn)
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
