//! The inventory's read side: one typed row per record kind, built by the
//! query that reads it, with its [`warnings`](super::warnings). These types
//! are what `GET /api/sightings` and the other inventory routes answer, and
//! they describe themselves in the OpenAPI document (`ToSchema`).
//!
//! The static queries are checked against the schema at compile time
//! (`sqlx::query!`, offline data in `server/.sqlx/`). The sightings' is not:
//! it is composed with the location fragments `export::sensitive` shares
//! with the exports, so it is read with `query_as` into [`SightingRead`].

use std::collections::{hash_map::Entry, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{types::Json, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::warnings::{self, LocatedFacts, Warning};
use crate::{
    auth::Principal,
    export::sensitive::{self, Audience, Location, SensitiveTaxa, Subject},
};

/// Which rows of a list: every filter is optional; `readable`, when given,
/// the territories the reader may read (None: all, an admin).
#[derive(Debug, Clone)]
pub struct Listing {
    pub territory: Option<Uuid>,
    /// Only rows with (true) or without (false) concurrent edits.
    pub conflicts: Option<bool>,
    pub readable: Option<Vec<Uuid>>,
    pub limit: i64,
    pub offset: i64,
}

/// A field two phones set concurrently: the row holds `winner`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Conflict {
    /// The field's JSON name (`individualCount`).
    pub field: String,
    /// Any JSON value.
    pub winner: Value,
    /// Every concurrent value, the winner included.
    pub values: Vec<Value>,
}

/// Why a record or a document cannot be used as it is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// The field at fault (JSON name).
    pub field: String,
    pub reason: String,
}

/// A sighting of the inventory (Darwin Core terms).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sighting {
    pub id: Uuid,
    pub territory_id: Uuid,
    /// The notebook document it was synced in.
    pub document_id: String,
    #[serde(rename = "occurrenceID")]
    pub occurrence_id: String,
    pub scientific_name: String,
    #[serde(rename = "taxonID")]
    #[schema(required = true)]
    pub taxon_id: Option<i64>,
    #[schema(required = true)]
    pub vernacular_name: Option<String>,
    pub event_date: DateTime<Utc>,
    pub decimal_latitude: f64,
    pub decimal_longitude: f64,
    #[schema(required = true)]
    pub coordinate_uncertainty_in_meters: Option<f64>,
    #[schema(required = true)]
    pub individual_count: Option<i64>,
    pub occurrence_status: String,
    pub basis_of_record: String,
    pub recorded_by: String,
    #[schema(required = true)]
    pub site: Option<String>,
    #[schema(required = true)]
    pub notes: Option<String>,
    /// Empty, unless the position was generalised (sensitive species):
    /// then how.
    pub data_generalizations: String,
    /// Empty, unless something was withheld (sensitive species): then what.
    pub information_withheld: String,
    /// SHA-256 of each photo (`GET /api/photos/{sha256}`).
    pub photos: Vec<String>,
    pub author_id: Uuid,
    pub device_id: String,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    pub has_conflicts: bool,
    pub conflicts: Vec<Conflict>,
    pub warnings: Vec<Warning>,
}

/// A degradation report of the inventory, with its follow-up.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DegradationReport {
    pub id: Uuid,
    pub territory_id: Uuid,
    pub document_id: String,
    #[schema(example = "waste_dumping")]
    pub category: String,
    /// What `other` means here.
    #[schema(required = true)]
    pub category_detail: Option<String>,
    pub observed_at: DateTime<Utc>,
    pub decimal_latitude: f64,
    pub decimal_longitude: f64,
    #[schema(required = true)]
    pub coordinate_uncertainty_in_meters: Option<f64>,
    pub description: String,
    pub photos: Vec<String>,
    #[schema(required = true)]
    pub site: Option<String>,
    /// Follow-up set by coordinators (`received` at first).
    pub status: String,
    #[schema(required = true)]
    pub status_reason: Option<String>,
    /// Every status it had, oldest first.
    pub status_history: Vec<StatusChange>,
    pub author_id: Uuid,
    pub device_id: String,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    pub has_conflicts: bool,
    pub conflicts: Vec<Conflict>,
    pub warnings: Vec<Warning>,
}

/// One step of a report's follow-up.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: String,
    #[schema(required = true)]
    pub reason: Option<String>,
    #[schema(required = true)]
    pub changed_by: Option<Uuid>,
    pub changed_at: DateTime<Utc>,
}

/// A timesheet entry of the inventory: a volunteer's hours.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimesheetEntry {
    pub id: Uuid,
    pub territory_id: Uuid,
    pub document_id: String,
    pub volunteer_id: Uuid,
    pub work_date: NaiveDate,
    #[schema(required = true)]
    pub started_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_minutes: i32,
    #[schema(example = "clean_up")]
    pub activity: String,
    #[schema(required = true)]
    pub site: Option<String>,
    #[schema(required = true)]
    pub notes: Option<String>,
    /// Coordinator decision (`pending` at first).
    pub approval_status: String,
    #[schema(required = true)]
    pub approved_by: Option<Uuid>,
    #[schema(required = true)]
    pub approved_at: Option<DateTime<Utc>>,
    pub author_id: Uuid,
    pub device_id: String,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    pub has_conflicts: bool,
    pub conflicts: Vec<Conflict>,
    pub warnings: Vec<Warning>,
}

/// A record that failed validation, kept as typed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvalidRecord {
    pub document_id: String,
    /// `sighting`, `degradation_report` or `timesheet_entry`.
    pub kind: String,
    /// The record's key in its notebook.
    pub record_key: String,
    pub territory_id: Uuid,
    /// The record as the phone wrote it.
    #[schema(value_type = Object)]
    pub raw: Value,
    /// Every problem found.
    pub problems: Vec<Problem>,
    pub conflicts: Vec<Conflict>,
    pub first_seen_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A synced document on the server.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub document_id: String,
    pub territory_id: Uuid,
    /// The notebook's owner; null until a header names one.
    #[schema(required = true)]
    pub owner_id: Option<Uuid>,
    /// `notebook`, or `unknown` until a header says so.
    pub kind: String,
    /// Increases with each stored change.
    pub revision: i64,
    /// Document-level problems (bad header, a change that rewrote it, a
    /// record that could not be filed).
    pub problems: Vec<Problem>,
    pub first_seen_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// One per stored change, in the order received.
    pub receipts: Vec<Receipt>,
}

/// Who delivered one stored change: the account, and the device or the
/// session whose connection carried it (exactly one of the two).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub change_hash: String,
    pub account_id: Uuid,
    #[schema(required = true)]
    pub device_id: Option<Uuid>,
    #[schema(required = true)]
    pub session_id: Option<Uuid>,
    pub received_at: DateTime<Utc>,
}

/// Fields of a sighting that a generalisation withholds or replaces: the
/// concurrent values of these, and warnings about them, are withheld too.
const LOCATED_FIELDS: [&str; 5] = [
    "decimalLatitude",
    "decimalLongitude",
    "coordinateUncertaintyInMeters",
    "site",
    "notes",
];

/// A sighting as read, before its location is shown to a reader.
#[derive(sqlx::FromRow)]
struct SightingRead {
    id: Uuid,
    territory_id: Uuid,
    doc_id: String,
    occurrence_id: String,
    scientific_name: String,
    taxon_id: Option<i64>,
    vernacular_name: Option<String>,
    event_date: DateTime<Utc>,
    individual_count: Option<i64>,
    occurrence_status: String,
    basis_of_record: String,
    recorded_by: String,
    photos: Vec<String>,
    author_id: Uuid,
    device_id: String,
    created_at: DateTime<Utc>,
    modified_at: DateTime<Utc>,
    has_conflicts: bool,
    conflicts: Json<Vec<Conflict>>,
    outside_by_m: Option<i64>,
    dated_after_receipt: bool,
    #[sqlx(flatten)]
    location: Location,
}

impl SightingRead {
    /// The row as `reader` may see it: a sensitive sighting generalised
    /// (`sensitive::Location::show_to`) unless they may see it exactly, and
    /// then neither the concurrent values of its location, site and notes
    /// nor a warning measuring its exact point go out either.
    fn shown_to(self, reader: &Principal, taxa: &SensitiveTaxa) -> Sighting {
        let mut location = self.location;
        let exact_uncertainty = location.uncertainty_m;
        let subject = Subject {
            territory: self.territory_id,
            author: self.author_id,
            taxon_id: self.taxon_id,
            scientific_name: &self.scientific_name,
        };
        location.show_to(Audience::Reader(reader), &subject, taxa);
        let mut conflicts = self.conflicts.0;
        let mut warnings = warnings::of_located(
            &LocatedFacts {
                outside_by_m: self.outside_by_m,
                uncertainty_m: exact_uncertainty,
                dated_after_receipt: self.dated_after_receipt,
            },
            "eventDate",
        );
        if location.generalised {
            conflicts.retain(|conflict| !LOCATED_FIELDS.contains(&conflict.field.as_str()));
            warnings.retain(|warning| !LOCATED_FIELDS.contains(&warning.field.as_str()));
        }
        Sighting {
            id: self.id,
            territory_id: self.territory_id,
            document_id: self.doc_id,
            occurrence_id: self.occurrence_id,
            scientific_name: self.scientific_name,
            taxon_id: self.taxon_id,
            vernacular_name: self.vernacular_name,
            event_date: self.event_date,
            decimal_latitude: location.latitude,
            decimal_longitude: location.longitude,
            coordinate_uncertainty_in_meters: location.uncertainty_m,
            individual_count: self.individual_count,
            occurrence_status: self.occurrence_status,
            basis_of_record: self.basis_of_record,
            recorded_by: self.recorded_by,
            data_generalizations: location.data_generalizations(),
            information_withheld: location.information_withheld(),
            site: location.site,
            notes: location.notes,
            photos: self.photos,
            author_id: self.author_id,
            device_id: self.device_id,
            created_at: self.created_at,
            modified_at: self.modified_at,
            has_conflicts: self.has_conflicts,
            conflicts,
            warnings,
        }
    }
}

/// Sightings of the listing, oldest first, each shown to `reader` as
/// [`SightingRead::shown_to`] says.
pub async fn sightings(
    pool: &PgPool,
    listing: &Listing,
    reader: &Principal,
) -> sqlx::Result<Vec<Sighting>> {
    let sql = format!(
        "SELECT t.id, t.territory_id, t.doc_id, t.occurrence_id, t.scientific_name, t.taxon_id, \
           t.vernacular_name, t.event_date, t.individual_count, t.occurrence_status, \
           t.basis_of_record, t.recorded_by, t.photos, t.author_id, t.device_id, t.created_at, \
           t.modified_at, t.has_conflicts, t.conflicts, \
           {outside} AS outside_by_m, t.event_date > t.materialised_at AS dated_after_receipt, \
           {location} \
         FROM sightings t {joins} \
         WHERE ($1::uuid IS NULL OR t.territory_id = $1) \
           AND ($2::boolean IS NULL OR t.has_conflicts = $2) \
           AND ($5::uuid[] IS NULL OR t.territory_id = ANY($5)) \
         ORDER BY t.created_at, t.id LIMIT $3 OFFSET $4",
        outside = OUTSIDE_BY_M,
        location = sensitive::location_columns("t"),
        joins = sensitive::location_joins("t"),
    );
    let rows: Vec<SightingRead> = sqlx::query_as(&sql)
        .bind(listing.territory)
        .bind(listing.conflicts)
        .bind(listing.limit)
        .bind(listing.offset)
        .bind(&listing.readable)
        .fetch_all(pool)
        .await?;
    // Each territory's list is read once, on its first row.
    let mut lists: HashMap<Uuid, SensitiveTaxa> = HashMap::new();
    let mut conn = pool.acquire().await?;
    let mut shown = Vec::with_capacity(rows.len());
    for row in rows {
        let taxa = match lists.entry(row.territory_id) {
            Entry::Occupied(list) => list.into_mut(),
            Entry::Vacant(slot) => {
                slot.insert(SensitiveTaxa::load(&mut conn, row.territory_id).await?)
            }
        };
        shown.push(row.shown_to(reader, taxa));
    }
    Ok(shown)
}

/// How far the located row `t` is outside its territory's boundary (whole
/// metres), when beyond its uncertainty; NULL inside it, or without a
/// boundary. Spelled out again in the checked queries below, which take
/// literals only; the review rows read it too (`review::rows::columns`).
pub(crate) const OUTSIDE_BY_M: &str =
    "(SELECT round(ST_Distance(t.geom::geography, b.boundary::geography)::numeric)::bigint \
     FROM territories b WHERE b.id = t.territory_id AND b.boundary IS NOT NULL \
       AND NOT ST_DWithin(t.geom::geography, b.boundary::geography, \
                          COALESCE(t.coordinate_uncertainty_m, 0)))";

/// Degradation reports of the listing, oldest first, with their follow-up.
pub async fn degradation_reports(
    pool: &PgPool,
    listing: &Listing,
) -> sqlx::Result<Vec<DegradationReport>> {
    let rows = sqlx::query!(
        r#"SELECT t.id, t.territory_id, t.doc_id, t.category, t.category_detail, t.observed_at,
             ST_Y(t.geom) AS "latitude!", ST_X(t.geom) AS "longitude!",
             t.coordinate_uncertainty_m, t.description, t.photos, t.site, t.status,
             t.status_reason, t.author_id, t.device_id, t.created_at, t.modified_at,
             t.has_conflicts AS "has_conflicts!",
             t.conflicts AS "conflicts: Json<Vec<Conflict>>",
             (SELECT round(ST_Distance(t.geom::geography, b.boundary::geography)::numeric)::bigint
              FROM territories b WHERE b.id = t.territory_id AND b.boundary IS NOT NULL
                AND NOT ST_DWithin(t.geom::geography, b.boundary::geography,
                                   COALESCE(t.coordinate_uncertainty_m, 0))) AS "outside_by_m?",
             t.observed_at > t.materialised_at AS "dated_after_receipt!"
           FROM degradation_reports t
           WHERE ($1::uuid IS NULL OR t.territory_id = $1)
             AND ($2::boolean IS NULL OR t.has_conflicts = $2)
             AND ($5::uuid[] IS NULL OR t.territory_id = ANY($5))
           ORDER BY t.created_at, t.id LIMIT $3 OFFSET $4"#,
        listing.territory,
        listing.conflicts,
        listing.limit,
        listing.offset,
        listing.readable.as_deref(),
    )
    .fetch_all(pool)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let mut histories = status_histories(pool, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| DegradationReport {
            warnings: warnings::of_located(
                &LocatedFacts {
                    outside_by_m: row.outside_by_m,
                    uncertainty_m: row.coordinate_uncertainty_m,
                    dated_after_receipt: row.dated_after_receipt,
                },
                "observedAt",
            ),
            status_history: histories.remove(&row.id).unwrap_or_default(),
            id: row.id,
            territory_id: row.territory_id,
            document_id: row.doc_id,
            category: row.category,
            category_detail: row.category_detail,
            observed_at: row.observed_at,
            decimal_latitude: row.latitude,
            decimal_longitude: row.longitude,
            coordinate_uncertainty_in_meters: row.coordinate_uncertainty_m,
            description: row.description,
            photos: row.photos,
            site: row.site,
            status: row.status,
            status_reason: row.status_reason,
            author_id: row.author_id,
            device_id: row.device_id,
            created_at: row.created_at,
            modified_at: row.modified_at,
            has_conflicts: row.has_conflicts,
            conflicts: row.conflicts.0,
        })
        .collect())
}

/// The follow-up of each report of `reports`, oldest first: the status it
/// was received with, then each coordinator's step (`review_history`).
async fn status_histories(
    pool: &PgPool,
    reports: &[Uuid],
) -> sqlx::Result<HashMap<Uuid, Vec<StatusChange>>> {
    let steps = sqlx::query!(
        r#"SELECT h.report_id AS "report_id!", h.status AS "status!", h.reason AS "reason?",
             h.changed_by AS "changed_by?", h.changed_at AS "changed_at!"
           FROM (SELECT report_id, status, reason, changed_by, changed_at, 0::bigint AS seq
                 FROM degradation_status_history WHERE report_id = ANY($1)
                 UNION ALL SELECT record_id, status, reason, decided_by, decided_at, id
                 FROM review_history WHERE record_id = ANY($1) AND action = 'follow_up') h
           ORDER BY h.report_id, h.changed_at, h.seq"#,
        reports,
    )
    .fetch_all(pool)
    .await?;
    let mut histories: HashMap<Uuid, Vec<StatusChange>> = HashMap::new();
    for step in steps {
        histories
            .entry(step.report_id)
            .or_default()
            .push(StatusChange {
                status: step.status,
                reason: step.reason,
                changed_by: step.changed_by,
                changed_at: step.changed_at,
            });
    }
    Ok(histories)
}

/// The minutes the volunteer of the timesheet entry `t` declared on its day,
/// all entries together (the measure of [`warnings::of_hours`]). Spelled out
/// again in the checked query below; the review rows read it too.
pub(crate) const DAY_MINUTES: &str = "(SELECT sum(o.duration_minutes) FROM timesheet_entries o \
     WHERE o.volunteer_id = t.volunteer_id AND o.work_date = t.work_date)";

/// Timesheet entries of the listing, oldest first.
pub async fn timesheet_entries(
    pool: &PgPool,
    listing: &Listing,
) -> sqlx::Result<Vec<TimesheetEntry>> {
    let rows = sqlx::query!(
        r#"SELECT t.id, t.territory_id, t.doc_id, t.volunteer_id, t.work_date, t.started_at,
             t.ended_at, t.duration_minutes, t.activity, t.site, t.notes, t.approval_status,
             t.approved_by, t.approved_at, t.author_id, t.device_id, t.created_at,
             t.modified_at, t.has_conflicts AS "has_conflicts!",
             t.conflicts AS "conflicts: Json<Vec<Conflict>>",
             (SELECT sum(o.duration_minutes) FROM timesheet_entries o
              WHERE o.volunteer_id = t.volunteer_id AND o.work_date = t.work_date)
               AS "day_minutes!"
           FROM timesheet_entries t
           WHERE ($1::uuid IS NULL OR t.territory_id = $1)
             AND ($2::boolean IS NULL OR t.has_conflicts = $2)
             AND ($5::uuid[] IS NULL OR t.territory_id = ANY($5))
           ORDER BY t.created_at, t.id LIMIT $3 OFFSET $4"#,
        listing.territory,
        listing.conflicts,
        listing.limit,
        listing.offset,
        listing.readable.as_deref(),
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| TimesheetEntry {
            warnings: warnings::of_hours(row.day_minutes, row.work_date),
            id: row.id,
            territory_id: row.territory_id,
            document_id: row.doc_id,
            volunteer_id: row.volunteer_id,
            work_date: row.work_date,
            started_at: row.started_at,
            ended_at: row.ended_at,
            duration_minutes: row.duration_minutes,
            activity: row.activity,
            site: row.site,
            notes: row.notes,
            approval_status: row.approval_status,
            approved_by: row.approved_by,
            approved_at: row.approved_at,
            author_id: row.author_id,
            device_id: row.device_id,
            created_at: row.created_at,
            modified_at: row.modified_at,
            has_conflicts: row.has_conflicts,
            conflicts: row.conflicts.0,
        })
        .collect())
}

/// Who reads invalid records: everything in `reviewed` (None: everything,
/// an admin), and in `drafted` the records of the documents `owner` owns.
pub struct InvalidRecordsReader {
    pub reviewed: Option<Vec<Uuid>>,
    pub drafted: Vec<Uuid>,
    pub owner: Uuid,
}

/// Invalid records of the listing (of one `kind` if given) that `reader`
/// may read, oldest first.
pub async fn invalid_records(
    pool: &PgPool,
    listing: &Listing,
    kind: Option<&str>,
    reader: &InvalidRecordsReader,
) -> sqlx::Result<Vec<InvalidRecord>> {
    let rows = sqlx::query!(
        r#"SELECT doc_id, kind, record_key, territory_id, raw,
             problems AS "problems: Json<Vec<Problem>>",
             conflicts AS "conflicts: Json<Vec<Conflict>>", first_seen_at, updated_at
           FROM invalid_records
           WHERE ($1::uuid IS NULL OR territory_id = $1) AND ($2::text IS NULL OR kind = $2)
             AND ($3::boolean IS NULL OR (jsonb_array_length(conflicts) > 0) = $3)
             AND ($6::uuid[] IS NULL OR territory_id = ANY($6)
                  OR (territory_id = ANY($7) AND doc_id IN (
                        SELECT doc_id FROM documents WHERE owner_id = $8)))
           ORDER BY first_seen_at, doc_id, record_key LIMIT $4 OFFSET $5"#,
        listing.territory,
        kind,
        listing.conflicts,
        listing.limit,
        listing.offset,
        reader.reviewed.as_deref(),
        &reader.drafted,
        reader.owner,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| InvalidRecord {
            document_id: row.doc_id,
            kind: row.kind,
            record_key: row.record_key,
            territory_id: row.territory_id,
            raw: row.raw,
            problems: row.problems.0,
            conflicts: row.conflicts.0,
            first_seen_at: row.first_seen_at,
            updated_at: row.updated_at,
        })
        .collect())
}

/// A document's state, with the receipt of every change; None when no such
/// document is stored.
pub async fn document(pool: &PgPool, doc_id: &str) -> sqlx::Result<Option<Document>> {
    let Some(row) = sqlx::query!(
        r#"SELECT doc_id, territory_id, owner_id, kind, revision,
             problems AS "problems: Json<Vec<Problem>>", first_seen_at, updated_at
           FROM documents WHERE doc_id = $1"#,
        doc_id,
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let receipts = sqlx::query_as!(
        Receipt,
        "SELECT change_hash, account_id, device_id, session_id, received_at \
         FROM change_receipts WHERE doc_id = $1 ORDER BY received_at, change_hash",
        doc_id,
    )
    .fetch_all(pool)
    .await?;
    Ok(Some(Document {
        document_id: row.doc_id,
        territory_id: row.territory_id,
        owner_id: row.owner_id,
        kind: row.kind,
        revision: row.revision,
        problems: row.problems.0,
        first_seen_at: row.first_seen_at,
        updated_at: row.updated_at,
        receipts,
    }))
}
