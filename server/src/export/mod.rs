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
//! - [`sensitive`]: which sightings are sensitive, who sees them exactly
//!   (never an export) and the generalisation everyone else gets.
//!
//! **Sensitive species**: a sighting of a taxon on the territory's list is
//! exported at the centre of its square of the territory's grid (1, 2, 5 or
//! 10 km) in Lambert-93 (EPSG:2154, the grid of French platforms), with the
//! uncertainty that covers the square, and without its site and notes; the
//! row says so in `dataGeneralizations` and `informationWithheld`.
//!
//! **CSV cells**: every cell of every CSV or tab-separated file the service
//! writes goes through [`spreadsheet_safe`].

use std::borrow::Cow;

pub mod dwca;
pub mod flat;
pub mod rows;
pub mod sensitive;
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
/// `fieldsEnclosedBy=""`): tabs and line breaks become spaces, and the
/// cell is made [`spreadsheet_safe`].
pub fn tsv_value(value: &str) -> String {
    spreadsheet_safe(&value.replace(['\t', '\r', '\n'], " ")).into_owned()
}

/// First characters that make a spreadsheet read a cell as a formula
/// (OWASP "CSV Injection": `=`, `+`, `-`, `@`, tab, carriage return), and
/// their full-width forms, which some spreadsheets read alike.
const FORMULA_STARTS: [char; 10] = [
    '=', '+', '-', '@', '\t', '\r', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
];

/// A cell a spreadsheet shows as text, never evaluates (OWASP "CSV
/// Injection"): a cell whose first character — or first after leading
/// spaces, which spreadsheets skip — is one of [`FORMULA_STARTS`] gets a
/// single quote (`'`) in front. A plain number (`-3.5`, `+2`: optional
/// sign, digits, optional decimals) is left as it is, so coordinates and
/// counts stay numbers; `-2+3` is not one and is neutralised. Every CSV and
/// TSV writer of the service calls this on every cell.
pub fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    let starts_a_formula = cell.starts_with(['\t', '\r'])
        || cell
            .trim_start_matches(|c: char| c.is_whitespace() && c != '\t' && c != '\r')
            .starts_with(FORMULA_STARTS);
    if starts_a_formula && !is_plain_number(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Optional sign, at least one digit, optionally a point and more digits.
fn is_plain_number(cell: &str) -> bool {
    let unsigned = cell.strip_prefix(['-', '+']).unwrap_or(cell);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

pub type ExportError = anyhow::Error;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_evaluate_are_neutralised() {
        for (cell, safe) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("@SUM(1)", "'@SUM(1)"),
            ("-2+3", "'-2+3"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("  =1", "'  =1"),
            ("\u{FF1D}1+1", "'\u{FF1D}1+1"),
            ("-", "'-"),
            ("-3.5e2", "'-3.5e2"),
        ] {
            assert_eq!(spreadsheet_safe(cell), safe, "{cell:?}");
        }
        for plain in [
            "-3.5",
            "+2",
            "45.777200",
            "-0",
            "Bufo bufo",
            "",
            "a=b",
            "2026-05-01T10:00:00Z",
        ] {
            assert_eq!(spreadsheet_safe(plain), plain, "{plain:?}");
        }
    }

    #[test]
    fn a_tsv_value_has_no_separator_and_no_formula() {
        assert_eq!(tsv_value("\t=1+1\nx"), "' =1+1 x");
        assert_eq!(tsv_value("-4.8712"), "-4.8712");
    }
}
