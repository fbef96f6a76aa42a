//! The inventory's write side: a stored document materialised into the
//! inventory tables, in the transaction that stores its chunk.
//!
//! The inventory tables are a projection of the automerge documents: a record is
//! either a row of its kind's table (valid) or a row of `invalid_records` (what the
//! volunteer typed and every problem, field by field), never both and never lost.
//! Fields that two phones set concurrently keep the winning value in the row and
//! every value in its `conflicts` column (bookkeeping fields such as
//! `modifiedAt` aside: see `schemas::BOOKKEEPING_FIELDS`). A sighting that
//! came without a taxon id is filed with the one its name has in the
//! territory's species list, if any (`crate::species::resolve`).

use std::{
    collections::{hash_map::DefaultHasher, HashMap, HashSet},
    hash::{Hash, Hasher},
};

use automerge::Automerge;
use schemas::{FieldProblem, RecordKind};
use serde_json::{json, Value as Json};
use sqlx::{PgConnection, Postgres, Transaction};
use sync::documents::{
    check_header_unchanged, read_notebook, NotebookHeader, ReadRecord, RecordState,
};
use uuid::Uuid;

use super::kinds::Stored;
use crate::species::resolve::TaxonIndex;

/// Territory for documents whose header names none (created by the first migration).
pub const DEFAULT_TERRITORY: Uuid = Uuid::nil();

/// What the inventory holds for each record of a document: a hash of the record
/// as last materialised, so an unchanged record is not rewritten.
#[derive(Debug, Default)]
pub struct Fingerprints(HashMap<(RecordKind, String), u64>);

/// What a document is, as its `documents` row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// A volunteer's notebook (or a document not yet known to be one).
    Notebook,
    /// A volunteer's review document (`sync::documents::review`): only the server writes it.
    Review,
    /// The species list of `territory` (`sync::documents::species`): only the server
    /// writes it, every member of the territory reads it.
    SpeciesList { territory: Uuid },
    /// A notebook replaced when its owner was erased
    /// (`crate::personal_data::erasure`): its chunks are gone, no peer reads
    /// or writes it.
    Retired,
}

/// A document as committed in PostgreSQL at `revision`, with what the
/// inventory holds of it.
pub struct CommittedDoc {
    pub doc: Automerge,
    pub kind: DocumentKind,
    /// `documents.revision` this state corresponds to (0: not stored yet). A
    /// different revision in the database means another server process
    /// wrote: reload before use.
    pub revision: i64,
    /// What the inventory holds for each record, so only changed records are rewritten.
    pub fingerprints: Fingerprints,
    /// The header established when the notebook was first stored, if any.
    pub header: Option<NotebookHeader>,
}

impl CommittedDoc {
    /// Whether PostgreSQL holds this document at all.
    pub fn is_stored(&self) -> bool {
        self.revision > 0
    }
}

/// Reads a document's committed chunks and revision; a document never stored
/// reads as empty at revision 0.
pub async fn load_committed(
    conn: &mut PgConnection,
    doc_id: &str,
) -> Result<CommittedDoc, sqlx::Error> {
    let (revision, owner, territory, kind): (i64, Option<Uuid>, Uuid, String) = sqlx::query_as(
        "SELECT revision, owner_id, territory_id, kind FROM documents WHERE doc_id = $1",
    )
    .bind(doc_id)
    .fetch_optional(&mut *conn)
    .await?
    .unwrap_or((0, None, DEFAULT_TERRITORY, String::new()));
    let chunks: Vec<(Vec<u8>,)> =
        sqlx::query_as("SELECT data FROM automerge_chunks WHERE doc_id = $1 ORDER BY key")
            .bind(doc_id)
            .fetch_all(&mut *conn)
            .await?;
    let mut doc = Automerge::new();
    for (data,) in chunks {
        if let Err(error) = doc.load_incremental(&data) {
            // Stored chunks hold only changes automerge produced and the
            // judge accepted; one that does not load is reported, not fatal.
            tracing::error!(doc_id, %error, "a stored chunk does not load");
        }
    }
    Ok(CommittedDoc {
        doc,
        kind: match kind.as_str() {
            "review" => DocumentKind::Review,
            // A list the territory moved away from is still one: read by
            // members, written by no peer.
            "species_list" | "species_list_inactive" => DocumentKind::SpeciesList { territory },
            "retired" => DocumentKind::Retired,
            _ => DocumentKind::Notebook,
        },
        revision,
        fingerprints: Fingerprints::default(),
        header: owner.map(|owner_id| NotebookHeader {
            territory_id: territory,
            owner_id,
        }),
    })
}

/// Writes the inventory rows of every record that changed since `current` was
/// last materialised, and the document's own row (at `current.revision`).
pub async fn materialise(
    tx: &mut Transaction<'_, Postgres>,
    doc_id: &str,
    current: &mut CommittedDoc,
) -> Result<(), sqlx::Error> {
    if current.kind != DocumentKind::Notebook {
        // Nothing to file: a review document's decisions are in
        // `review_decisions` already, a species list is reference data.
        sqlx::query("UPDATE documents SET revision = $2, updated_at = now() WHERE doc_id = $1")
            .bind(doc_id)
            .bind(current.revision)
            .execute(&mut **tx)
            .await?;
        return Ok(());
    }
    let read = read_notebook(&current.doc);
    let mut problems: Vec<Json> = Vec::new();

    let header = match (current.header, &read.header) {
        (Some(established), Ok(now)) => {
            for violation in check_header_unchanged(&established, now) {
                problems.push(json!({
                    "field": violation.field,
                    "reason": format!(
                        "a change tried to move the notebook from {} to {}; it stays filed under {}",
                        violation.established, violation.attempted, violation.established
                    ),
                }));
            }
            Some(established)
        }
        (Some(established), Err(header_problems)) => {
            problems.extend(header_problems.iter().map(problem_json));
            Some(established)
        }
        (None, Ok(now)) if territory_exists(tx, now.territory_id).await? => {
            // First usable header: everything is (re)filed under its territory.
            current.fingerprints = Fingerprints::default();
            Some(*now)
        }
        (None, Ok(now)) => {
            // The sync channel only admits notebooks in the writer's territories,
            // so this is a territory deleted since; file under the default one.
            problems.push(json!({
                "field": "territoryId",
                "reason": format!("territory {} does not exist", now.territory_id),
            }));
            None
        }
        (None, Err(header_problems)) => {
            problems.extend(header_problems.iter().map(problem_json));
            None
        }
    };
    current.header = header;
    let territory = header.map_or(DEFAULT_TERRITORY, |h| h.territory_id);

    let full_rewrite = current.fingerprints.0.is_empty();
    let mut batch = Batch::default();
    let mut seen = HashSet::new();
    let mut new_fingerprints = HashMap::new();
    for record in &read.records {
        let id = (record.kind, record.key.clone());
        let fingerprint = fingerprint(record);
        seen.insert(id.clone());
        new_fingerprints.insert(id.clone(), fingerprint);
        if current.fingerprints.0.get(&id) != Some(&fingerprint) {
            batch.add(record);
        }
    }
    let removed: Vec<(RecordKind, String)> = current
        .fingerprints
        .0
        .keys()
        .filter(|id| !seen.contains(*id))
        .cloned()
        .collect();

    if full_rewrite {
        delete_rows_not_in(tx, doc_id, &seen).await?;
    } else {
        for (kind, key) in &removed {
            delete_record(tx, doc_id, *kind, key).await?;
        }
    }
    batch.resolve_taxa(tx, territory).await?;
    let collisions = batch.write(tx, doc_id, territory).await?;
    for (kind, key) in &collisions {
        problems.push(json!({
            "field": format!("{}/{key}", kind.as_str()),
            "reason": "this record id is already used by a record of another notebook; kept here, not in the inventory",
        }));
    }

    sqlx::query(
        "UPDATE documents SET territory_id = $2, owner_id = $3, kind = $4, revision = $5, \
         problems = $6, updated_at = now() WHERE doc_id = $1",
    )
    .bind(doc_id)
    .bind(territory)
    .bind(header.map(|h| h.owner_id))
    .bind(if read.header.is_ok() || header.is_some() {
        "notebook"
    } else {
        "unknown"
    })
    .bind(current.revision)
    .bind(Json::Array(problems))
    .execute(&mut **tx)
    .await?;

    current.fingerprints = Fingerprints(new_fingerprints);
    Ok(())
}

async fn territory_exists(conn: &mut PgConnection, territory: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM territories WHERE id = $1)")
        .bind(territory)
        .fetch_one(conn)
        .await
}

fn fingerprint(record: &RecordState) -> u64 {
    let mut hasher = DefaultHasher::new();
    record.kind.hash(&mut hasher);
    record.raw.to_string().hash(&mut hasher);
    for conflict in &record.conflicts {
        conflict.field.hash(&mut hasher);
        Json::Array(conflict.values.clone())
            .to_string()
            .hash(&mut hasher);
    }
    hasher.finish()
}

fn problem_json(problem: &FieldProblem) -> Json {
    json!({ "field": problem.field, "reason": problem.reason })
}

/// After a cold load, rows of this document whose record is gone are removed.
async fn delete_rows_not_in(
    conn: &mut PgConnection,
    doc_id: &str,
    present: &HashSet<(RecordKind, String)>,
) -> Result<(), sqlx::Error> {
    for kind in RecordKind::ALL {
        let keys: Vec<String> = present
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, key)| key.to_ascii_lowercase())
            .collect();
        let sql = format!(
            "DELETE FROM {} WHERE doc_id = $1 AND NOT (id::text = ANY($2))",
            kind.table()
        );
        sqlx::query(&sql)
            .bind(doc_id)
            .bind(&keys)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "DELETE FROM invalid_records WHERE doc_id = $1 AND kind = $2 AND NOT (record_key = ANY($3))",
        )
        .bind(doc_id)
        .bind(kind.as_str())
        .bind(&keys)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn delete_record(
    conn: &mut PgConnection,
    doc_id: &str,
    kind: RecordKind,
    key: &str,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "DELETE FROM {} WHERE doc_id = $1 AND id::text = $2",
        kind.table()
    );
    sqlx::query(&sql)
        .bind(doc_id)
        .bind(key.to_ascii_lowercase())
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM invalid_records WHERE doc_id = $1 AND kind = $2 AND record_key = $3")
        .bind(doc_id)
        .bind(kind.as_str())
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The records of one materialisation, grouped so each table gets one statement.
#[derive(Default)]
struct Batch {
    valid: HashMap<RecordKind, Vec<Json>>,
    invalid: Vec<Json>,
}

impl Batch {
    fn add(&mut self, record: &RecordState) {
        let conflicts = serde_json::to_value(&record.conflicts).unwrap_or(Json::Array(vec![]));
        match &record.parsed {
            Ok(parsed) => {
                let mut row = match parsed {
                    ReadRecord::Sighting(r) => serde_json::to_value(r),
                    ReadRecord::DegradationReport(r) => serde_json::to_value(r),
                    ReadRecord::TimesheetEntry(r) => serde_json::to_value(r).map(|mut row| {
                        row["computedDurationMinutes"] = json!(r.duration_minutes());
                        row
                    }),
                }
                .expect("validated records serialise");
                row["conflicts"] = conflicts;
                self.valid.entry(record.kind).or_default().push(row);
            }
            Err(problems) => self.invalid.push(invalid_row(
                record.kind,
                &record.key,
                &record.raw,
                problems.iter().map(problem_json).collect(),
                conflicts,
            )),
        }
    }

    /// Gives the sightings that came without a taxon id the one their name
    /// has in the territory's species list (`species::resolve`), if any.
    async fn resolve_taxa(
        &mut self,
        conn: &mut PgConnection,
        territory: Uuid,
    ) -> Result<(), sqlx::Error> {
        let Some(sightings) = self.valid.get_mut(&RecordKind::Sighting) else {
            return Ok(());
        };
        if sightings.iter().all(|row| !row["taxonID"].is_null()) {
            return Ok(());
        }
        let index = TaxonIndex::of_territory(conn, territory).await?;
        for row in sightings.iter_mut().filter(|row| row["taxonID"].is_null()) {
            if let Some(id) = row["scientificName"]
                .as_str()
                .and_then(|n| index.resolve(n))
            {
                row["taxonID"] = json!(id);
            }
        }
        Ok(())
    }

    /// Writes the batch; returns the valid records that could not be filed
    /// because another notebook already owns their id (they become invalid rows).
    async fn write(
        mut self,
        tx: &mut Transaction<'_, Postgres>,
        doc_id: &str,
        territory: Uuid,
    ) -> Result<Vec<(RecordKind, String)>, sqlx::Error> {
        let mut collisions = Vec::new();
        for kind in RecordKind::ALL {
            let Some(rows) = self.valid.remove(&kind) else {
                continue;
            };
            let attempted: Vec<String> = rows
                .iter()
                .filter_map(|row| row["id"].as_str().map(str::to_string))
                .collect();
            let written: Vec<Uuid> = sqlx::query_scalar(upsert_sql(kind))
                .bind(Json::Array(rows.clone()))
                .bind(territory)
                .bind(doc_id)
                .fetch_all(&mut **tx)
                .await?;
            let written: HashSet<String> = written.iter().map(Uuid::to_string).collect();
            for row in rows {
                let id = row["id"].as_str().unwrap_or_default().to_string();
                if !written.contains(&id) {
                    let conflicts = row["conflicts"].clone();
                    self.invalid.push(invalid_row(
                        kind,
                        &id,
                        &row,
                        vec![json!({"field": "id", "reason": "already used by a record of another notebook"})],
                        conflicts,
                    ));
                    collisions.push((kind, id));
                }
            }
            sqlx::query(
                "DELETE FROM invalid_records WHERE doc_id = $1 AND kind = $2 AND record_key = ANY($3)",
            )
            .bind(doc_id)
            .bind(kind.as_str())
            .bind(&attempted)
            .execute(&mut **tx)
            .await?;
            if kind == RecordKind::DegradationReport {
                sqlx::query(
                    "INSERT INTO degradation_status_history (report_id, seq, territory_id, status, changed_at) \
                     SELECT id, 1, territory_id, 'received', now() FROM degradation_reports \
                     WHERE doc_id = $1 AND id::text = ANY($2) ON CONFLICT DO NOTHING",
                )
                .bind(doc_id)
                .bind(&attempted)
                .execute(&mut **tx)
                .await?;
            }
        }
        if !self.invalid.is_empty() {
            for kind in RecordKind::ALL {
                let keys: Vec<String> = self
                    .invalid
                    .iter()
                    .filter(|row| row["kind"] == kind.as_str())
                    .filter_map(|row| row["key"].as_str().map(str::to_ascii_lowercase))
                    .collect();
                let sql = format!(
                    "DELETE FROM {} WHERE doc_id = $1 AND id::text = ANY($2)",
                    kind.table()
                );
                sqlx::query(&sql)
                    .bind(doc_id)
                    .bind(&keys)
                    .execute(&mut **tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO invalid_records (doc_id, kind, record_key, territory_id, raw, problems, conflicts) \
                 SELECT $2, r.kind, r.key, $3, r.raw, r.problems, r.conflicts \
                 FROM jsonb_to_recordset($1) AS r(kind text, key text, raw jsonb, problems jsonb, conflicts jsonb) \
                 ON CONFLICT (doc_id, kind, record_key) DO UPDATE SET \
                   territory_id = EXCLUDED.territory_id, raw = EXCLUDED.raw, problems = EXCLUDED.problems, \
                   conflicts = EXCLUDED.conflicts, updated_at = now()",
            )
            .bind(Json::Array(self.invalid))
            .bind(doc_id)
            .bind(territory)
            .execute(&mut **tx)
            .await?;
        }
        Ok(collisions)
    }
}

fn invalid_row(
    kind: RecordKind,
    key: &str,
    raw: &Json,
    problems: Vec<Json>,
    conflicts: Json,
) -> Json {
    json!({
        "kind": kind.as_str(),
        "key": key,
        "raw": raw,
        "problems": problems,
        "conflicts": conflicts,
    })
}

/// One `INSERT … SELECT FROM jsonb_to_recordset` per table: the column list of
/// the record set uses the records' JSON (Darwin Core) names. An id owned by
/// another document is not overwritten (the `WHERE` of the upsert) and is
/// missing from the returned ids.
fn upsert_sql(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Sighting => {
            "INSERT INTO sightings (id, territory_id, doc_id, occurrence_id, scientific_name, taxon_id, \
               vernacular_name, event_date, geom, coordinate_uncertainty_m, individual_count, \
               occurrence_status, basis_of_record, recorded_by, site, notes, photos, author_id, \
               device_id, created_at, modified_at, conflicts, materialised_at) \
             SELECT r.id, $2, $3, r.\"occurrenceID\", r.\"scientificName\", r.\"taxonID\", \
               r.\"vernacularName\", r.\"eventDate\", \
               ST_SetSRID(ST_MakePoint(r.\"decimalLongitude\", r.\"decimalLatitude\"), 4326), \
               r.\"coordinateUncertaintyInMeters\", r.\"individualCount\", r.\"occurrenceStatus\", \
               r.\"basisOfRecord\", r.\"recordedBy\", r.site, r.notes, \
               ARRAY(SELECT jsonb_array_elements_text(COALESCE(r.photos, '[]'))), r.\"authorId\", \
               r.\"deviceId\", r.\"createdAt\", r.\"modifiedAt\", r.conflicts, now() \
             FROM jsonb_to_recordset($1) AS r(id uuid, \"occurrenceID\" text, \"scientificName\" text, \
               \"taxonID\" bigint, \"vernacularName\" text, \"eventDate\" timestamptz, \
               \"decimalLatitude\" float8, \"decimalLongitude\" float8, \
               \"coordinateUncertaintyInMeters\" float8, \"individualCount\" bigint, \
               \"occurrenceStatus\" text, \"basisOfRecord\" text, \"recordedBy\" text, site text, \
               notes text, photos jsonb, \"authorId\" uuid, \"deviceId\" text, \
               \"createdAt\" timestamptz, \"modifiedAt\" timestamptz, conflicts jsonb) \
             ON CONFLICT (id) DO UPDATE SET territory_id = EXCLUDED.territory_id, \
               occurrence_id = EXCLUDED.occurrence_id, scientific_name = EXCLUDED.scientific_name, \
               taxon_id = EXCLUDED.taxon_id, vernacular_name = EXCLUDED.vernacular_name, \
               event_date = EXCLUDED.event_date, geom = EXCLUDED.geom, \
               coordinate_uncertainty_m = EXCLUDED.coordinate_uncertainty_m, \
               individual_count = EXCLUDED.individual_count, \
               occurrence_status = EXCLUDED.occurrence_status, \
               basis_of_record = EXCLUDED.basis_of_record, recorded_by = EXCLUDED.recorded_by, \
               site = EXCLUDED.site, notes = EXCLUDED.notes, photos = EXCLUDED.photos, \
               author_id = EXCLUDED.author_id, device_id = EXCLUDED.device_id, \
               created_at = EXCLUDED.created_at, modified_at = EXCLUDED.modified_at, \
               conflicts = EXCLUDED.conflicts, materialised_at = now() \
             WHERE sightings.doc_id = EXCLUDED.doc_id \
             RETURNING id"
        }
        RecordKind::DegradationReport => {
            "INSERT INTO degradation_reports (id, territory_id, doc_id, category, category_detail, \
               observed_at, geom, coordinate_uncertainty_m, description, photos, site, author_id, \
               device_id, created_at, modified_at, conflicts, materialised_at) \
             SELECT r.id, $2, $3, r.category, r.\"categoryDetail\", r.\"observedAt\", \
               ST_SetSRID(ST_MakePoint(r.\"decimalLongitude\", r.\"decimalLatitude\"), 4326), \
               r.\"coordinateUncertaintyInMeters\", r.description, \
               ARRAY(SELECT jsonb_array_elements_text(COALESCE(r.photos, '[]'))), r.site, \
               r.\"authorId\", r.\"deviceId\", r.\"createdAt\", r.\"modifiedAt\", r.conflicts, now() \
             FROM jsonb_to_recordset($1) AS r(id uuid, category text, \"categoryDetail\" text, \
               \"observedAt\" timestamptz, \"decimalLatitude\" float8, \"decimalLongitude\" float8, \
               \"coordinateUncertaintyInMeters\" float8, description text, photos jsonb, site text, \
               \"authorId\" uuid, \"deviceId\" text, \"createdAt\" timestamptz, \
               \"modifiedAt\" timestamptz, conflicts jsonb) \
             ON CONFLICT (id) DO UPDATE SET territory_id = EXCLUDED.territory_id, \
               category = EXCLUDED.category, category_detail = EXCLUDED.category_detail, \
               observed_at = EXCLUDED.observed_at, geom = EXCLUDED.geom, \
               coordinate_uncertainty_m = EXCLUDED.coordinate_uncertainty_m, \
               description = EXCLUDED.description, photos = EXCLUDED.photos, site = EXCLUDED.site, \
               author_id = EXCLUDED.author_id, device_id = EXCLUDED.device_id, \
               created_at = EXCLUDED.created_at, modified_at = EXCLUDED.modified_at, \
               conflicts = EXCLUDED.conflicts, materialised_at = now() \
             WHERE degradation_reports.doc_id = EXCLUDED.doc_id \
             RETURNING id"
        }
        RecordKind::TimesheetEntry => {
            "INSERT INTO timesheet_entries (id, territory_id, doc_id, volunteer_id, work_date, \
               started_at, ended_at, duration_minutes, activity, site, notes, author_id, device_id, \
               created_at, modified_at, conflicts, materialised_at) \
             SELECT r.id, $2, $3, r.\"volunteerId\", r.\"workDate\", r.\"startedAt\", r.\"endedAt\", \
               r.\"computedDurationMinutes\", r.activity, r.site, r.notes, r.\"authorId\", \
               r.\"deviceId\", r.\"createdAt\", r.\"modifiedAt\", r.conflicts, now() \
             FROM jsonb_to_recordset($1) AS r(id uuid, \"volunteerId\" uuid, \"workDate\" date, \
               \"startedAt\" timestamptz, \"endedAt\" timestamptz, \"computedDurationMinutes\" integer, \
               activity text, site text, notes text, \"authorId\" uuid, \"deviceId\" text, \
               \"createdAt\" timestamptz, \"modifiedAt\" timestamptz, conflicts jsonb) \
             ON CONFLICT (id) DO UPDATE SET territory_id = EXCLUDED.territory_id, \
               volunteer_id = EXCLUDED.volunteer_id, work_date = EXCLUDED.work_date, \
               started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at, \
               duration_minutes = EXCLUDED.duration_minutes, activity = EXCLUDED.activity, \
               site = EXCLUDED.site, notes = EXCLUDED.notes, author_id = EXCLUDED.author_id, \
               device_id = EXCLUDED.device_id, created_at = EXCLUDED.created_at, \
               modified_at = EXCLUDED.modified_at, conflicts = EXCLUDED.conflicts, \
               materialised_at = now() \
             WHERE timesheet_entries.doc_id = EXCLUDED.doc_id \
             RETURNING id"
        }
    }
}
