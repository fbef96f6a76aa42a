//! GeoJSON and CSV of sightings and of degradation reports, and the
//! SINP-oriented CSV, written row by row.

use futures::TryStreamExt;
use serde_json::{json, Value};
use sqlx::PgConnection;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use uuid::Uuid;

use super::{
    rows::{self, DegradationRow, SightingRow},
    sensitive::SensitiveTaxa,
    spreadsheet_safe, validation_label, ExportError, SightingScope,
};

/// CSV records encoded one at a time, so that a row goes out as soon as it
/// is read.
struct CsvRows(csv::WriterBuilder);

impl CsvRows {
    fn new(delimiter: u8) -> CsvRows {
        let mut builder = csv::WriterBuilder::new();
        builder.delimiter(delimiter).buffer_capacity(1024);
        CsvRows(builder)
    }

    /// One record, each cell made [`spreadsheet_safe`].
    fn record<I, T>(&mut self, fields: I) -> Result<Vec<u8>, ExportError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut writer = self.0.from_writer(Vec::new());
        writer.write_record(
            fields
                .into_iter()
                .map(|field| spreadsheet_safe(field.as_ref()).into_owned()),
        )?;
        Ok(writer.into_inner().map_err(|error| error.into_error())?)
    }
}

fn opt<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn sighting_properties(row: &SightingRow) -> Value {
    json!({
        "id": row.id,
        "occurrenceID": row.occurrence_id,
        "scientificName": row.scientific_name,
        "taxonID": row.taxon_id,
        "vernacularName": row.vernacular_name,
        "eventDate": row.event_date,
        "individualCount": row.individual_count,
        "occurrenceStatus": row.occurrence_status,
        "basisOfRecord": row.basis_of_record,
        "recordedBy": row.recorded_by,
        "site": row.location.site,
        "notes": row.location.notes,
        "photoCount": row.photo_count,
        "validationStatus": row.validation_status,
        "validationLabel": validation_label(row.validation_status),
        "coordinateUncertaintyInMeters": row.location.uncertainty_m,
        "dataGeneralizations": row.location.data_generalizations(),
        "informationWithheld": row.location.information_withheld(),
        "modified": row.modified_at,
    })
}

fn degradation_properties(row: &DegradationRow) -> Value {
    json!({
        "id": row.id,
        "category": row.category,
        "categoryDetail": row.category_detail,
        "observedAt": row.observed_at,
        "description": row.description,
        "site": row.site,
        "status": row.status,
        "statusReason": row.status_reason,
        "photoCount": row.photo_count,
        "coordinateUncertaintyInMeters": row.uncertainty_m,
        "modified": row.modified_at,
    })
}

fn feature(longitude: f64, latitude: f64, properties: Value) -> Value {
    json!({
        "type": "Feature",
        "geometry": { "type": "Point", "coordinates": [longitude, latitude] },
        "properties": properties,
    })
}

async fn write_features<W, S>(out: &mut W, features: S) -> Result<(), ExportError>
where
    W: AsyncWrite + Unpin,
    S: futures::Stream<Item = Result<Value, ExportError>>,
{
    out.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[\n")
        .await?;
    let mut features = std::pin::pin!(features);
    let mut first = true;
    while let Some(feature) = features.try_next().await? {
        if !first {
            out.write_all(b",\n").await?;
        }
        first = false;
        out.write_all(&serde_json::to_vec(&feature)?).await?;
    }
    out.write_all(b"\n]}\n").await?;
    Ok(())
}

pub async fn sightings_geojson<W: AsyncWrite + Unpin>(
    conn: &mut PgConnection,
    scope: &SightingScope,
    out: &mut W,
) -> Result<(), ExportError> {
    let taxa = SensitiveTaxa::load(conn, scope.territory).await?;
    let features = rows::sightings(conn, scope, &taxa)
        .map_err(ExportError::from)
        .map_ok(|row| {
            feature(
                row.location.longitude,
                row.location.latitude,
                sighting_properties(&row),
            )
        });
    write_features(out, features).await
}

pub async fn degradation_geojson<W: AsyncWrite + Unpin>(
    conn: &mut PgConnection,
    territory: Uuid,
    out: &mut W,
) -> Result<(), ExportError> {
    let features = rows::degradation_reports(conn, territory)
        .map_err(ExportError::from)
        .map_ok(|row| feature(row.longitude, row.latitude, degradation_properties(&row)));
    write_features(out, features).await
}

const SIGHTING_COLUMNS: [&str; 21] = [
    "id",
    "occurrenceID",
    "scientificName",
    "taxonID",
    "vernacularName",
    "eventDate",
    "individualCount",
    "occurrenceStatus",
    "basisOfRecord",
    "recordedBy",
    "site",
    "notes",
    "photoCount",
    "validationStatus",
    "validationLabel",
    "decimalLatitude",
    "decimalLongitude",
    "coordinateUncertaintyInMeters",
    "dataGeneralizations",
    "informationWithheld",
    "modified",
];

pub async fn sightings_csv<W: AsyncWrite + Unpin>(
    conn: &mut PgConnection,
    scope: &SightingScope,
    out: &mut W,
) -> Result<(), ExportError> {
    let mut csv = CsvRows::new(b',');
    out.write_all(&csv.record(SIGHTING_COLUMNS)?).await?;
    let taxa = SensitiveTaxa::load(conn, scope.territory).await?;
    let mut rows = rows::sightings(conn, scope, &taxa);
    while let Some(row) = rows.try_next().await? {
        let line = csv.record([
            row.id.to_string(),
            row.occurrence_id.clone(),
            row.scientific_name.clone(),
            opt(&row.taxon_id),
            opt(&row.vernacular_name),
            row.event_date.to_rfc3339(),
            opt(&row.individual_count),
            row.occurrence_status.clone(),
            row.basis_of_record.clone(),
            row.recorded_by.clone(),
            opt(&row.location.site),
            opt(&row.location.notes),
            row.photo_count.to_string(),
            row.validation_status.to_string(),
            validation_label(row.validation_status).to_string(),
            format!("{:.6}", row.location.latitude),
            format!("{:.6}", row.location.longitude),
            opt(&row.location.uncertainty_m),
            row.location.data_generalizations(),
            row.location.information_withheld(),
            row.modified_at.to_rfc3339(),
        ])?;
        out.write_all(&line).await?;
    }
    Ok(())
}

pub async fn degradation_csv<W: AsyncWrite + Unpin>(
    conn: &mut PgConnection,
    territory: Uuid,
    out: &mut W,
) -> Result<(), ExportError> {
    let mut csv = CsvRows::new(b',');
    out.write_all(&csv.record([
        "id",
        "category",
        "categoryDetail",
        "observedAt",
        "decimalLatitude",
        "decimalLongitude",
        "coordinateUncertaintyInMeters",
        "description",
        "site",
        "status",
        "statusReason",
        "photoCount",
        "modified",
    ])?)
    .await?;
    let mut rows = rows::degradation_reports(conn, territory);
    while let Some(row) = rows.try_next().await? {
        let line = csv.record([
            row.id.to_string(),
            row.category.clone(),
            opt(&row.category_detail),
            row.observed_at.to_rfc3339(),
            format!("{:.6}", row.latitude),
            format!("{:.6}", row.longitude),
            opt(&row.uncertainty_m),
            row.description.clone(),
            opt(&row.site),
            row.status.clone(),
            opt(&row.status_reason),
            row.photo_count.to_string(),
            row.modified_at.to_rfc3339(),
        ])?;
        out.write_all(&line).await?;
    }
    Ok(())
}

/// Columns of the SINP-oriented CSV: the names of the *Occurrences de
/// taxon* standard where it has one (`cdNom`, `nomCite`, `dateDebut`,
/// `dateFin`, `observateur`, `denombrementMin/Max`, `statutObservation`,
/// `idOrigine`), `;`-separated as French platforms import them.
pub const SINP_COLUMNS: [&str; 19] = [
    "idOrigine",
    "cdNom",
    "nomCite",
    "nomVernaculaire",
    "dateDebut",
    "dateFin",
    "observateur",
    "denombrementMin",
    "denombrementMax",
    "statutObservation",
    "statutValidation",
    "libelleValidation",
    "longitudeWGS84",
    "latitudeWGS84",
    "xLambert93",
    "yLambert93",
    "precisionMetres",
    "floutage",
    "commentaire",
];

pub async fn sinp_csv<W: AsyncWrite + Unpin>(
    conn: &mut PgConnection,
    scope: &SightingScope,
    out: &mut W,
) -> Result<(), ExportError> {
    let mut csv = CsvRows::new(b';');
    out.write_all(&csv.record(SINP_COLUMNS)?).await?;
    let taxa = SensitiveTaxa::load(conn, scope.territory).await?;
    let mut rows = rows::sightings(conn, scope, &taxa);
    while let Some(row) = rows.try_next().await? {
        let date = row
            .event_date
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let line = csv.record([
            row.occurrence_id.clone(),
            opt(&row.taxon_id),
            row.scientific_name.clone(),
            opt(&row.vernacular_name),
            date.clone(),
            date,
            row.recorded_by.clone(),
            opt(&row.individual_count),
            opt(&row.individual_count),
            if row.occurrence_status == "absent" {
                "No"
            } else {
                "Pr"
            }
            .to_string(),
            row.validation_status.to_string(),
            validation_label(row.validation_status).to_string(),
            format!("{:.6}", row.location.longitude),
            format!("{:.6}", row.location.latitude),
            format!("{:.0}", row.location.x_l93),
            format!("{:.0}", row.location.y_l93),
            opt(&row.location.uncertainty_m),
            if row.location.generalised {
                format!("OUI (maille {} m)", row.location.grid_m)
            } else {
                "NON".to_string()
            },
            opt(&row.location.notes),
        ])?;
        out.write_all(&line).await?;
    }
    Ok(())
}
