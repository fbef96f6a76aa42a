//! The review table: records of one territory and kind, filtered, in keyset
//! pages (newest first by `review_seq`, assigned when a row is first filed
//! and never changed), and the counts of a territory's dashboard.
//!
//! Keyset, not OFFSET: a page costs the same deep in millions of rows, and
//! rows that phones add between two pages come before the first page, so
//! paging on never skips nor repeats a row.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use sqlx::{postgres::PgRow, FromRow, PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use schemas::RecordKind;

use super::{
    decisions::follow_up_targets,
    parse_kind,
    rows::{self, DegradationReportRow, ReviewPage, ReviewRow, SightingRow, TimesheetEntryRow},
    ReviewError,
};
use crate::inventory::{
    kinds::Stored,
    warnings::{self, LocatedFacts},
};

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 500;

/// SINP validation statuses of a sighting's identification.
pub const VERIFICATION_STATUSES: [&str; 7] = ["0", "1", "2", "3", "4", "5", "6"];
/// Steps of a degradation report's follow-up, in order.
pub const FOLLOW_UP_STATUSES: [&str; 4] = ["received", "under_analysis", "action_taken", "closed"];
/// A timesheet entry's approval.
pub const APPROVAL_STATUSES: [&str; 3] = ["pending", "approved", "returned"];

/// The filters as a client sends them (query string, or a bulk decision's
/// `filter`); [`Filter::check`] turns them into a [`Selection`].
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct Filter {
    /// `sighting` (default), `degradation_report` or `timesheet_entry`.
    pub kind: Option<String>,
    /// A site's name, exactly.
    pub site: Option<String>,
    /// A TAXREF id (digits) or a scientific name (any case).
    pub taxon: Option<String>,
    /// The author's account id.
    pub author: Option<Uuid>,
    /// The record's date at or after (RFC 3339, or a day `YYYY-MM-DD`).
    pub from: Option<String>,
    /// The record's date at or before (a day includes all of it).
    pub to: Option<String>,
    /// `minLon,minLat,maxLon,maxLat` (WGS 84).
    pub bbox: Option<String>,
    /// Validation status (0–6), follow-up step or approval status.
    pub status: Option<String>,
    /// Only records with (true) or without (false) conflicting edits.
    pub conflicts: Option<bool>,
    /// Sightings only: with (true) or without (false) a possible duplicate.
    pub duplicates: Option<bool>,
    /// Keyset cursor: the `nextCursor` of the previous page.
    pub after: Option<String>,
    /// Rows per page (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Debug, Clone)]
enum Taxon {
    Id(i64),
    Name(String),
}

/// Checked filters.
#[derive(Debug, Clone)]
pub struct Selection {
    pub kind: RecordKind,
    site: Option<String>,
    taxon: Option<Taxon>,
    author: Option<Uuid>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    bbox: Option<[f64; 4]>,
    status: Option<String>,
    conflicts: Option<bool>,
    duplicates: Option<bool>,
    after: Option<i64>,
    pub limit: i64,
}

/// Whether `t` (a sighting, with its territory's settings as `tr`) has
/// another sighting of its taxon within the territory's distance and time
/// window, neither marked duplicate nor dismissed as a pair. The probe reads
/// only `sightings_duplicate_probe_idx` (it covers id, duplicate_of, geom
/// and review_seq),
/// drops candidates outside the distance in latitude alone (a comparison of
/// two floats; 110 574 m is the shortest degree of latitude), then measures
/// the rest on the spheroid. Neither test can use a spatial index: with
/// `ST_DWithin` the planner ANDed the GiST index in, and scanned thousands of
/// rows per probe instead of the few dozen of the taxon's time window.
pub const HAS_POSSIBLE_DUPLICATE: &str = "(t.duplicate_of IS NULL AND EXISTS ( \
    SELECT 1 FROM sightings o \
    WHERE o.territory_id = t.territory_id AND o.taxon_key = t.taxon_key AND o.id <> t.id \
      AND o.event_date BETWEEN t.event_date - make_interval(secs => tr.duplicate_window_hours * 3600) \
                           AND t.event_date + make_interval(secs => tr.duplicate_window_hours * 3600) \
      AND o.duplicate_of IS NULL \
      AND abs(ST_Y(o.geom) - ST_Y(t.geom)) <= tr.duplicate_distance_m / 110574 \
      AND ST_Distance(o.geom::geography, t.geom::geography) <= tr.duplicate_distance_m \
      AND NOT EXISTS (SELECT 1 FROM duplicate_dismissals x \
                      WHERE x.record_a = LEAST(o.id, t.id) AND x.record_b = GREATEST(o.id, t.id))))";

impl Filter {
    pub fn check(&self) -> Result<Selection, ReviewError> {
        let kind = match &self.kind {
            Some(kind) => parse_kind("kind", kind)?,
            None => RecordKind::Sighting,
        };
        let taxon = self
            .taxon
            .as_deref()
            .map(str::trim)
            .map(|taxon| match taxon.parse::<i64>() {
                Ok(id) => Taxon::Id(id),
                Err(_) => Taxon::Name(taxon.to_lowercase()),
            });
        if taxon.is_some() && kind != RecordKind::Sighting {
            return Err(ReviewError::bad_request(
                "taxon",
                "only sightings have a taxon",
            ));
        }
        if self.duplicates.is_some() && kind != RecordKind::Sighting {
            return Err(ReviewError::bad_request(
                "duplicates",
                "only sightings are proposed as duplicates",
            ));
        }
        let from = self
            .from
            .as_deref()
            .map(|text| parse_instant("from", text, false))
            .transpose()?;
        let to = self
            .to
            .as_deref()
            .map(|text| parse_instant("to", text, true))
            .transpose()?;
        if let (Some(from), Some(to)) = (from, to) {
            if from > to {
                return Err(ReviewError::bad_request("to", "must not be before `from`"));
            }
        }
        let bbox = self.bbox.as_deref().map(parse_bbox).transpose()?;
        if let Some(status) = &self.status {
            let allowed: &[&str] = match kind {
                RecordKind::Sighting => &VERIFICATION_STATUSES,
                RecordKind::DegradationReport => &FOLLOW_UP_STATUSES,
                RecordKind::TimesheetEntry => &APPROVAL_STATUSES,
            };
            if !allowed.contains(&status.as_str()) {
                return Err(ReviewError::bad_request(
                    "status",
                    format!(
                        "a {} status is one of {} (got {status:?})",
                        kind.as_str(),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        let after = self
            .after
            .as_deref()
            .map(|cursor| {
                cursor
                    .parse::<i64>()
                    .map_err(|_| ReviewError::bad_request("after", "not a cursor this server gave"))
            })
            .transpose()?;
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ReviewError::bad_request(
                "limit",
                format!("must be between 1 and {MAX_PAGE} (got {limit})"),
            ));
        }
        Ok(Selection {
            kind,
            site: self.site.clone(),
            taxon,
            author: self.author,
            from,
            to,
            bbox,
            status: self.status.clone(),
            conflicts: self.conflicts,
            duplicates: self.duplicates,
            after,
            limit,
        })
    }
}

fn parse_instant(field: &str, text: &str, end_of_day: bool) -> Result<DateTime<Utc>, ReviewError> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ReviewError::bad_request(
            field,
            format!("must be RFC 3339 or YYYY-MM-DD (got {text:?})"),
        )
    })?;
    let time = if end_of_day {
        day.and_hms_milli_opt(23, 59, 59, 999)
    } else {
        day.and_hms_opt(0, 0, 0)
    };
    Ok(time.expect("a valid time of day").and_utc())
}

fn parse_bbox(text: &str) -> Result<[f64; 4], ReviewError> {
    let bad = |why: &str| ReviewError::bad_request("bbox", format!("{why} (got {text:?})"));
    let numbers: Vec<f64> = text
        .split(',')
        .map(|part| part.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad("must be four numbers minLon,minLat,maxLon,maxLat"))?;
    let [min_lon, min_lat, max_lon, max_lat] = numbers[..] else {
        return Err(bad("must be four numbers minLon,minLat,maxLon,maxLat"));
    };
    if !(-180.0..=180.0).contains(&min_lon)
        || !(-180.0..=180.0).contains(&max_lon)
        || !(-90.0..=90.0).contains(&min_lat)
        || !(-90.0..=90.0).contains(&max_lat)
    {
        return Err(bad("longitudes are within ±180 and latitudes within ±90"));
    }
    if min_lon > max_lon || min_lat > max_lat {
        return Err(bad("the minimum comes before the maximum"));
    }
    Ok([min_lon, min_lat, max_lon, max_lat])
}

impl Selection {
    /// `FROM … WHERE …` of the selected rows of `territory` (aliases: `t` the
    /// row, `tr` its territory, `au` its author's account).
    pub(crate) fn push_from_where<'a>(
        &'a self,
        sql: &mut QueryBuilder<'a, Postgres>,
        territory: Uuid,
    ) {
        let kind = self.kind;
        sql.push(format!(
            " FROM {} t JOIN territories tr ON tr.id = t.territory_id \
              LEFT JOIN accounts au ON au.id = t.{} WHERE t.territory_id = ",
            kind.table(),
            kind.volunteer_column()
        ));
        sql.push_bind(territory);
        if let Some(site) = &self.site {
            sql.push(" AND t.site = ").push_bind(site);
        }
        match &self.taxon {
            Some(Taxon::Id(id)) => {
                sql.push(" AND t.taxon_id = ").push_bind(*id);
            }
            Some(Taxon::Name(name)) => {
                sql.push(" AND lower(t.scientific_name) = ").push_bind(name);
            }
            None => {}
        }
        if let Some(author) = self.author {
            sql.push(format!(" AND t.{} = ", kind.volunteer_column()))
                .push_bind(author);
        }
        let date = kind.date_column();
        if let Some(from) = self.from {
            sql.push(format!(" AND t.{date} >= "));
            push_instant(sql, kind, from);
        }
        if let Some(to) = self.to {
            sql.push(format!(" AND t.{date} <= "));
            push_instant(sql, kind, to);
        }
        if let Some([min_lon, min_lat, max_lon, max_lat]) = self.bbox {
            if kind == RecordKind::TimesheetEntry {
                // Hours have no position: a box selects none.
                sql.push(" AND false");
            } else {
                sql.push(" AND t.geom && ST_MakeEnvelope(")
                    .push_bind(min_lon)
                    .push(", ")
                    .push_bind(min_lat)
                    .push(", ")
                    .push_bind(max_lon)
                    .push(", ")
                    .push_bind(max_lat)
                    .push(", 4326)");
                if kind == RecordKind::Sighting {
                    push_place_time_box(sql, [min_lon, min_lat, max_lon, max_lat], self);
                }
            }
        }
        if let Some(status) = &self.status {
            match kind {
                RecordKind::Sighting => sql
                    .push(" AND t.validation_status = ")
                    .push_bind(status.parse::<i16>().unwrap_or_default()),
                RecordKind::DegradationReport => sql.push(" AND t.status = ").push_bind(status),
                RecordKind::TimesheetEntry => {
                    sql.push(" AND t.approval_status = ").push_bind(status)
                }
            };
        }
        if let Some(conflicts) = self.conflicts {
            sql.push(" AND t.has_conflicts = ").push_bind(conflicts);
        }
        if let Some(duplicates) = self.duplicates {
            sql.push(if duplicates { " AND " } else { " AND NOT " })
                .push(HAS_POSSIBLE_DUPLICATE);
        }
    }

    /// One page of rows, newest first, and the cursor of the next page.
    pub async fn page(&self, pool: &PgPool, territory: Uuid) -> Result<ReviewPage, ReviewError> {
        let mut sql = QueryBuilder::new("SELECT ");
        sql.push(rows::columns(self.kind)).push(", t.review_seq");
        self.push_from_where(&mut sql, territory);
        if let Some(after) = self.after {
            sql.push(" AND t.review_seq < ").push_bind(after);
        }
        sql.push(" ORDER BY t.review_seq DESC LIMIT ")
            .push_bind(self.limit + 1);
        let mut fetched = sql.build().fetch_all(pool).await?;
        // The extra row only says that a next page exists.
        let more = fetched.len() as i64 > self.limit;
        fetched.truncate(self.limit as usize);
        let next_cursor = match fetched.last() {
            Some(last) if more => Some(last.try_get::<i64, _>("review_seq")?.to_string()),
            _ => None,
        };
        Ok(ReviewPage {
            kind: self.kind,
            items: fetched
                .iter()
                .map(|row| review_row(self.kind, row))
                .collect::<Result<_, _>>()?,
            next_cursor,
        })
    }
}

/// A row of `kind` read by its columns ([`rows::columns`]), with its
/// warnings worded by the inventory's own functions and, for a report, the
/// steps it may move to.
fn review_row(kind: RecordKind, row: &PgRow) -> Result<ReviewRow, sqlx::Error> {
    let located = |uncertainty_m: Option<f64>, date_field: &str| {
        Ok::<_, sqlx::Error>(warnings::of_located(
            &LocatedFacts {
                outside_by_m: row.try_get("outside_by_m")?,
                uncertainty_m,
                dated_after_receipt: row.try_get("dated_after_receipt")?,
            },
            date_field,
        ))
    };
    Ok(match kind {
        RecordKind::Sighting => {
            let mut sighting = SightingRow::from_row(row)?;
            sighting.warnings = located(sighting.coordinate_uncertainty_in_meters, "eventDate")?;
            ReviewRow::Sighting(sighting)
        }
        RecordKind::DegradationReport => {
            let mut report = DegradationReportRow::from_row(row)?;
            report.warnings = located(report.coordinate_uncertainty_in_meters, "observedAt")?;
            report.next_statuses = follow_up_targets(&report.status);
            ReviewRow::DegradationReport(report)
        }
        RecordKind::TimesheetEntry => {
            let mut entry = TimesheetEntryRow::from_row(row)?;
            entry.warnings = warnings::of_hours(row.try_get("day_minutes")?, entry.work_date);
            ReviewRow::TimesheetEntry(entry)
        }
    })
}

/// One record of the territory as a review-table row, whatever its kind (the
/// record page opens it by id alone).
pub async fn record(pool: &PgPool, territory: Uuid, id: Uuid) -> Result<ReviewRow, ReviewError> {
    for kind in RecordKind::ALL {
        let sql = format!(
            "SELECT {} FROM {} t JOIN territories tr ON tr.id = t.territory_id \
             LEFT JOIN accounts au ON au.id = t.{} WHERE t.territory_id = $1 AND t.id = $2",
            rows::columns(kind),
            kind.table(),
            kind.volunteer_column()
        );
        let row = sqlx::query(&sql)
            .bind(territory)
            .bind(id)
            .fetch_optional(pool)
            .await?;
        if let Some(row) = row {
            return Ok(review_row(kind, &row)?);
        }
    }
    Err(ReviewError::NotFound(format!(
        "no record {id} in territory {territory}"
    )))
}

/// Days as the third dimension of `review_place_time` (migration 0012).
const PLACE_TIME_PER_DAY: f64 = 0.0001;

/// The place-and-period box of a sighting filter, tested against
/// `sightings_review_place_idx` so a small box and a short period are read
/// together. It only lets the index narrow the rows: the exact tests are the
/// box and date comparisons beside it, so the box's period is widened by a
/// minute each way (no rounding can drop a row: GiST keys are single-precision
/// boxes rounded outwards) and left unbounded (±10⁹) where the filter gives
/// no date.
fn push_place_time_box(
    sql: &mut QueryBuilder<'_, Postgres>,
    [min_lon, min_lat, max_lon, max_lat]: [f64; 4],
    selection: &Selection,
) {
    const MINUTE: f64 = 1.0 / 1440.0;
    let day = |instant: DateTime<Utc>| instant.timestamp() as f64 / 86_400.0;
    let from = selection
        .from
        .map_or(-1e9, |from| (day(from) - MINUTE) * PLACE_TIME_PER_DAY);
    let to = selection
        .to
        .map_or(1e9, |to| (day(to) + MINUTE) * PLACE_TIME_PER_DAY);
    sql.push(" AND review_place_time(t.geom, t.event_date) &&& ST_MakeLine(ST_MakePoint(")
        .push_bind(min_lon)
        .push(", ")
        .push_bind(min_lat)
        .push(", ")
        .push_bind(from)
        .push("), ST_MakePoint(")
        .push_bind(max_lon)
        .push(", ")
        .push_bind(max_lat)
        .push(", ")
        .push_bind(to)
        .push("))");
}

fn push_instant(sql: &mut QueryBuilder<'_, Postgres>, kind: RecordKind, instant: DateTime<Utc>) {
    if kind == RecordKind::TimesheetEntry {
        sql.push_bind(instant.date_naive());
    } else {
        sql.push_bind(instant);
    }
}
