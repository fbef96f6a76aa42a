//! A territory's inventory in standard formats (issue 12), without HTTP: the
//! routes in `http::exports` hand each writer the write half of a pipe whose
//! read half is the response body, so rows go from PostgreSQL to the client
//! one by one and no export is ever whole in memory.
//!
//! - [`rows`]: the one query each kind of record is read with, in a
//!   read-only snapshot, sensitive species already generalised;
//! - [`dwca`]: the Darwin Core Archive (zip: meta.xml, eml.xml, the
//!   Occurrence core, the Simple Multimedia extension);
//! - [`flat`]: GeoJSON and CSV of sightings and of degradation reports, and
//!   the SINP-oriented CSV;
//! - [`settings`]: what an export says about the data (licence, contact)
//!   and which taxa it generalises, per territory.
//!
//! **Sensitive species**: a sighting of a taxon on the territory's list is
//! exported at the centre of its square of the territory's grid (1, 2, 5 or
//! 10 km) in Lambert-93 (EPSG:2154, the grid of French platforms), with the
//! uncertainty that covers the square, and without its site and notes; the
//! row says so in `dataGeneralizations` and `informationWithheld`.

pub mod dwca;
pub mod flat;
pub mod rows;
pub mod settings;

/// What a sighting export holds: the sightings of these SINP validation
/// statuses, duplicates left out (their reference record is exported).
#[derive(Debug, Clone)]
pub struct SightingScope {
    pub territory: uuid::Uuid,
    pub statuses: Vec<i16>,
}

/// Validated, by default: certain / very likely, and probable.
pub const DEFAULT_STATUSES: [i16; 2] = [1, 2];

/// The SINP validation status, coded and labelled as French platforms read it.
pub fn validation_label(status: i16) -> &'static str {
    match status {
        0 => "En attente de validation",
        1 => "Certain - très probable",
        2 => "Probable",
        3 => "Douteux",
        4 => "Invalide",
        5 => "Non réalisable",
        _ => "Inconnu",
    }
}

/// A value for a tab-separated file without quoting (DwC-A
/// `fieldsEnclosedBy=""`): tabs and line breaks become spaces.
pub fn tsv_value(value: &str) -> String {
    value.replace(['\t', '\r', '\n'], " ")
}

pub type ExportError = anyhow::Error;
