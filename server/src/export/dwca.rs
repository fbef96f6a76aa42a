//! The Darwin Core Archive of a territory's validated sightings: a zip of
//! `occurrence.txt` (the Occurrence core), `multimedia.txt` (GBIF's Simple
//! Multimedia extension, one row per photo the server holds), `meta.xml`
//! (the text guide's descriptor) and `eml.xml` (GBIF's EML profile 1.3),
//! streamed entry by entry (each entry's sizes go in a data descriptor after
//! it, so nothing is held back to seek).
//!
//! The data files come first: the metadata then states what they hold (row
//! count, geographic and temporal coverage) without a second read.

use async_zip::{
    tokio::write::ZipFileWriter, AttributeCompatibility, Compression, ZipEntryBuilder,
};
use chrono::{DateTime, Utc};
use futures::{io::AsyncWriteExt as _, TryStreamExt};
use sqlx::PgConnection;
use tokio::io::AsyncWrite;

use crate::markup::escape;

use super::{
    rows,
    sensitive::SensitiveTaxa,
    settings::{licence_url, ExportSettings},
    tsv_value, validation_label, ExportError, SightingScope,
};

const DWC: &str = "http://rs.tdwg.org/dwc/terms/";
const DC: &str = "http://purl.org/dc/terms/";

/// The Occurrence core's columns: header and term, in file order. Column 0
/// (`occurrenceID`) is also the row's id.
const CORE: [(&str, &str); 21] = [
    ("occurrenceID", DWC),
    ("basisOfRecord", DWC),
    ("occurrenceStatus", DWC),
    ("eventDate", DWC),
    ("scientificName", DWC),
    ("taxonID", DWC),
    ("vernacularName", DWC),
    ("individualCount", DWC),
    ("recordedBy", DWC),
    ("decimalLatitude", DWC),
    ("decimalLongitude", DWC),
    ("geodeticDatum", DWC),
    ("coordinateUncertaintyInMeters", DWC),
    ("locality", DWC),
    ("occurrenceRemarks", DWC),
    ("identificationVerificationStatus", DWC),
    ("dataGeneralizations", DWC),
    ("informationWithheld", DWC),
    ("license", DC),
    ("rightsHolder", DC),
    ("modified", DC),
];

/// The Simple Multimedia extension's columns; column 0 is the core id.
const MULTIMEDIA: [(&str, &str); 6] = [
    ("occurrenceID", DWC),
    ("type", DC),
    ("format", DC),
    ("identifier", DC),
    ("license", DC),
    ("rightsHolder", DC),
];

/// What the metadata says about the rows written.
#[derive(Default)]
struct Coverage {
    rows: u64,
    photos: u64,
    west: f64,
    east: f64,
    south: f64,
    north: f64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

impl Coverage {
    fn add(&mut self, latitude: f64, longitude: f64, at: DateTime<Utc>) {
        if self.rows == 0 {
            (self.west, self.east, self.south, self.north) =
                (longitude, longitude, latitude, latitude);
        }
        self.rows += 1;
        self.west = self.west.min(longitude);
        self.east = self.east.max(longitude);
        self.south = self.south.min(latitude);
        self.north = self.north.max(latitude);
        self.first = Some(self.first.map_or(at, |first| first.min(at)));
        self.last = Some(self.last.map_or(at, |last| last.max(at)));
    }
}

fn tsv_line(fields: &[String]) -> Vec<u8> {
    let mut line = fields
        .iter()
        .map(|field| tsv_value(field))
        .collect::<Vec<_>>()
        .join("\t");
    line.push('\n');
    line.into_bytes()
}

fn header(columns: &[(&str, &str)]) -> Vec<u8> {
    tsv_line(
        &columns
            .iter()
            .map(|(name, _)| name.to_string())
            .collect::<Vec<_>>(),
    )
}

/// Who the archive names as its publisher.
pub struct Publisher<'a> {
    pub territory_id: uuid::Uuid,
    pub territory_name: &'a str,
    pub settings: &'a ExportSettings,
    /// The server's public address, for the photos' URLs.
    pub base_url: &'a str,
}

/// Writes the archive of `scope` to `out`.
pub async fn write<W: AsyncWrite + Unpin>(
    conn: &mut PgConnection,
    scope: &SightingScope,
    publisher: &Publisher<'_>,
    out: W,
) -> Result<(), ExportError> {
    let mut zip = ZipFileWriter::with_tokio(out);
    let licence = licence_url(&publisher.settings.licence);
    let rights_holder = publisher
        .settings
        .organisation
        .as_deref()
        .unwrap_or(publisher.territory_name);
    let mut coverage = Coverage::default();
    let taxa = SensitiveTaxa::load(&mut *conn, scope.territory).await?;

    let mut entry = zip
        .write_entry_stream(readable_entry("occurrence.txt"))
        .await?;
    entry.write_all(&header(&CORE)).await?;
    {
        let mut sightings = rows::sightings(&mut *conn, scope, &taxa);
        while let Some(row) = sightings.try_next().await? {
            let location = &row.location;
            coverage.add(location.latitude, location.longitude, row.event_date);
            let opt = |value: Option<String>| value.unwrap_or_default();
            entry
                .write_all(&tsv_line(&[
                    row.occurrence_id.clone(),
                    row.basis_of_record.clone(),
                    row.occurrence_status.clone(),
                    row.event_date
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    row.scientific_name.clone(),
                    opt(row.taxon_id.map(|id| id.to_string())),
                    opt(row.vernacular_name.clone()),
                    opt(row.individual_count.map(|n| n.to_string())),
                    row.recorded_by.clone(),
                    format!("{:.6}", location.latitude),
                    format!("{:.6}", location.longitude),
                    "EPSG:4326".to_string(),
                    opt(location.uncertainty_m.map(|m| m.to_string())),
                    opt(location.site.clone()),
                    opt(location.notes.clone()),
                    format!(
                        "{} - {}",
                        row.validation_status,
                        validation_label(row.validation_status)
                    ),
                    location.data_generalizations(),
                    location.information_withheld(),
                    licence.to_string(),
                    rights_holder.to_string(),
                    row.modified_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                ]))
                .await?;
        }
    }
    entry.close().await?;

    let mut entry = zip
        .write_entry_stream(readable_entry("multimedia.txt"))
        .await?;
    entry.write_all(&header(&MULTIMEDIA)).await?;
    {
        let mut photos = rows::photos(&mut *conn, scope);
        while let Some(photo) = photos.try_next().await? {
            coverage.photos += 1;
            entry
                .write_all(&tsv_line(&[
                    photo.occurrence_id,
                    "StillImage".to_string(),
                    photo.content_type,
                    format!("{}/api/photos/{}", publisher.base_url, photo.sha256),
                    licence.to_string(),
                    photo.recorded_by,
                ]))
                .await?;
        }
    }
    entry.close().await?;

    zip.write_entry_whole(readable_entry("meta.xml"), meta_xml().as_bytes())
        .await?;
    let eml = eml_xml(publisher, &coverage, Utc::now());
    zip.write_entry_whole(readable_entry("eml.xml"), eml.as_bytes())
        .await?;
    let mut out = zip.close().await?.into_inner();
    tokio::io::AsyncWriteExt::shutdown(&mut out).await?;
    Ok(())
}

/// A deflated entry that unzips as a regular file readable by everyone and
/// writable by its owner (0644): without a mode, `unzip` on Unix creates
/// files nobody but root can read.
fn readable_entry(name: &str) -> ZipEntryBuilder {
    ZipEntryBuilder::new(name.into(), Compression::Deflate)
        .attribute_compatibility(AttributeCompatibility::Unix)
        .unix_permissions(REGULAR_FILE_0644)
}

/// `S_IFREG | 0o644`, the mode `unzip` gives the files it extracts.
const REGULAR_FILE_0644: u16 = 0o100644;

fn fields_xml(columns: &[(&str, &str)], skip_first: bool) -> String {
    columns
        .iter()
        .enumerate()
        .skip(usize::from(skip_first))
        .map(|(index, (name, namespace))| {
            format!("    <field index=\"{index}\" term=\"{namespace}{name}\"/>\n")
        })
        .collect()
}

/// The archive's descriptor (Darwin Core text guide).
pub fn meta_xml() -> String {
    let file_attributes =
        "encoding=\"UTF-8\" fieldsTerminatedBy=\"\\t\" linesTerminatedBy=\"\\n\" \
                           fieldsEnclosedBy=\"\" ignoreHeaderLines=\"1\"";
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <archive xmlns=\"http://rs.tdwg.org/dwc/text/\" metadata=\"eml.xml\">\n\
         \x20 <core {file_attributes} rowType=\"http://rs.tdwg.org/dwc/terms/Occurrence\">\n\
         \x20   <files><location>occurrence.txt</location></files>\n\
         \x20   <id index=\"0\"/>\n\
         {core}\
         \x20 </core>\n\
         \x20 <extension {file_attributes} rowType=\"http://rs.gbif.org/terms/1.0/Multimedia\">\n\
         \x20   <files><location>multimedia.txt</location></files>\n\
         \x20   <coreid index=\"0\"/>\n\
         {multimedia}\
         \x20 </extension>\n\
         </archive>\n",
        core = fields_xml(&CORE, false),
        multimedia = fields_xml(&MULTIMEDIA, true),
    )
}

fn licence_title(licence: &str) -> &'static str {
    match licence {
        "CC0-1.0" => "Public Domain (CC0 1.0)",
        "CC-BY-NC-4.0" => "Creative Commons Attribution Non Commercial (CC-BY-NC) 4.0 License",
        _ => "Creative Commons Attribution (CC-BY) 4.0 License",
    }
}

/// A party (creator, provider, contact): the contact person when the
/// territory names one, and the publishing organisation.
fn party(tag: &str, publisher: &Publisher<'_>) -> String {
    let settings = publisher.settings;
    let mut inner = String::new();
    if let Some(name) = &settings.contact_name {
        inner.push_str(&format!(
            "<individualName><surName>{}</surName></individualName>",
            escape(name)
        ));
    }
    inner.push_str(&format!(
        "<organizationName>{}</organizationName>",
        escape(
            settings
                .organisation
                .as_deref()
                .unwrap_or(publisher.territory_name)
        )
    ));
    if let Some(email) = &settings.contact_email {
        inner.push_str(&format!(
            "<electronicMailAddress>{}</electronicMailAddress>",
            escape(email)
        ));
    }
    format!("    <{tag}>{inner}</{tag}>\n")
}

/// The dataset's metadata (GBIF EML profile 1.3, EML 2.2.0).
fn eml_xml(publisher: &Publisher<'_>, coverage: &Coverage, now: DateTime<Utc>) -> String {
    let settings = publisher.settings;
    let territory = escape(publisher.territory_name);
    let licence = settings.licence.as_str();
    let coverage_xml = match (coverage.first, coverage.last) {
        (Some(first), Some(last)) => format!(
            "    <coverage>\n\
             \x20     <geographicCoverage>\n\
             \x20       <geographicDescription>Territory {territory}</geographicDescription>\n\
             \x20       <boundingCoordinates><westBoundingCoordinate>{:.6}</westBoundingCoordinate>\
             <eastBoundingCoordinate>{:.6}</eastBoundingCoordinate>\
             <northBoundingCoordinate>{:.6}</northBoundingCoordinate>\
             <southBoundingCoordinate>{:.6}</southBoundingCoordinate></boundingCoordinates>\n\
             \x20     </geographicCoverage>\n\
             \x20     <temporalCoverage><rangeOfDates>\
             <beginDate><calendarDate>{}</calendarDate></beginDate>\
             <endDate><calendarDate>{}</calendarDate></endDate>\
             </rangeOfDates></temporalCoverage>\n\
             \x20   </coverage>\n",
            coverage.west,
            coverage.east,
            coverage.north,
            coverage.south,
            first.date_naive(),
            last.date_naive(),
        ),
        _ => String::new(),
    };
    let generalised = if settings.sensitive_taxa.is_empty() {
        String::new()
    } else {
        format!(
            " Sightings of {} sensitive taxa are generalised to the centre of a {} m square of the \
             Lambert-93 grid, without their site and notes (see dataGeneralizations).",
            settings.sensitive_taxa.len(),
            settings.sensitive_grid_metres
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <eml:eml xmlns:eml=\"https://eml.ecoinformatics.org/eml-2.2.0\" \
         xmlns:dc=\"http://purl.org/dc/terms/\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"https://eml.ecoinformatics.org/eml-2.2.0 https://rs.gbif.org/schema/eml-gbif-profile/1.3/eml.xsd\" \
         packageId=\"{id}/{stamp}\" system=\"http://gbif.org\" scope=\"system\" xml:lang=\"en\">\n\
         \x20 <dataset>\n\
         \x20   <alternateIdentifier>{id}</alternateIdentifier>\n\
         \x20   <title xml:lang=\"en\">Urban nature inventory of {territory}</title>\n\
         {creator}{provider}\
         \x20   <pubDate>{date}</pubDate>\n\
         \x20   <abstract><para>{rows} sightings recorded by volunteers in {territory}, \
         validated by its coordinators (SINP validation status certain or probable unless stated \
         otherwise), with {photos} photos.{generalised}</para></abstract>\n\
         \x20   <intellectualRights><para>This work is licensed under a <ulink url=\"{licence_url}\">\
         <citetitle>{licence_title}</citetitle></ulink>.</para></intellectualRights>\n\
         \x20   <licensed><licenseName>{licence_title}</licenseName><url>https://spdx.org/licenses/{licence}.html</url>\
         <identifier>{licence}</identifier></licensed>\n\
         {coverage_xml}\
         {contact}\
         \x20 </dataset>\n\
         \x20 <additionalMetadata><metadata><gbif><dateStamp>{stamp}</dateStamp>\
         <hierarchyLevel>dataset</hierarchyLevel></gbif></metadata></additionalMetadata>\n\
         </eml:eml>\n",
        id = publisher.territory_id,
        stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        creator = party("creator", publisher),
        provider = party("metadataProvider", publisher),
        contact = party("contact", publisher),
        date = now.date_naive(),
        rows = coverage.rows,
        photos = coverage.photos,
        licence_url = licence_url(licence),
        licence_title = licence_title(licence),
    )
}
