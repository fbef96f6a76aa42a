//! Reading a TAXREF-style species list (CSV or TSV) into species, all or
//! nothing: the first problem is reported with its line and column, and
//! nothing is written until the whole file has been read.
//!
//! The header row is required; columns are found by name, case-insensitively:
//! `CD_NOM` (or `taxonId`), `LB_NOM` (or `scientificName`, required),
//! `NOM_VERN` (or `vernacularName`), `RANG` (or `rank`); other columns (TAXREF
//! has dozens) are ignored. The delimiter is the one the header line uses
//! most: tab (TAXREF's own files), `;` (spreadsheets in French locales) or
//! `,`. Tab-separated files are read without quoting, as TSV has none (a
//! TAXREF name may hold a `"`); the others follow RFC 4180 quotes.

use std::collections::HashMap;

use schemas::{
    limits::{max_chars_of, NAME_MAX_CHARS},
    RecordKind,
};
use sync::documents::species::Species;

/// Species one territory's list may hold. A territory's list is a few
/// thousand taxa; this is TAXREF's metropolitan species and subspecies
/// several times over, and what a phone can still hold and search offline.
pub const MAX_SPECIES: usize = 200_000;

/// Why a file cannot be imported: `field` is the column (or `body`),
/// `message` starts with the line when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ImportError {
    pub field: String,
    pub message: String,
}

fn error(field: &str, message: String) -> ImportError {
    ImportError {
        field: field.to_string(),
        message,
    }
}

/// The columns a list is read from: the name an error uses, and the names
/// the header may give it.
const TAXON_ID: (&str, &str) = ("CD_NOM", "taxonId");
const SCIENTIFIC_NAME: (&str, &str) = ("LB_NOM", "scientificName");
const VERNACULAR_NAME: (&str, &str) = ("NOM_VERN", "vernacularName");
const RANK: (&str, &str) = ("RANG", "rank");

/// Reads `body` (UTF-8, a byte-order mark tolerated) into its species, in
/// file order; keys ([`Species::key`]) are unique.
pub fn parse_species_list(body: &[u8]) -> Result<Vec<Species>, ImportError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let text = std::str::from_utf8(body).map_err(|utf8| {
        let line = body[..utf8.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        error(
            "body",
            format!("line {line} is not UTF-8; save the list as UTF-8 text"),
        )
    })?;
    let header_line = text.lines().next().unwrap_or_default();
    if header_line.trim().is_empty() {
        return Err(error(
            "body",
            "the header row is missing: the first line must name the columns (CD_NOM, LB_NOM, NOM_VERN, RANG)".into(),
        ));
    }
    let delimiter = delimiter_of(header_line);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quoting(delimiter != b'\t')
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| error("body", format!("line 1: {e}")))?
        .clone();
    let column = |(name, alias): (&str, &str)| -> Result<Option<usize>, ImportError> {
        let found: Vec<usize> = header
            .iter()
            .enumerate()
            .filter(|(_, h)| h.eq_ignore_ascii_case(name) || h.eq_ignore_ascii_case(alias))
            .map(|(i, _)| i)
            .collect();
        match found[..] {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => Err(error(
                name,
                format!("line 1: the header names the {name} (or {alias}) column more than once"),
            )),
        }
    };
    let taxon_id = column(TAXON_ID)?;
    let Some(scientific_name) = column(SCIENTIFIC_NAME)? else {
        let found: Vec<&str> = header.iter().collect();
        return Err(error(
            SCIENTIFIC_NAME.0,
            format!(
                "line 1: the header has no {} (or {}) column, which every species needs; it names {}",
                SCIENTIFIC_NAME.0,
                SCIENTIFIC_NAME.1,
                found.join(", ")
            ),
        ));
    };
    let vernacular_name = column(VERNACULAR_NAME)?;
    let rank = column(RANK)?;

    let limits = [
        (
            SCIENTIFIC_NAME.0,
            max_chars_of(RecordKind::Sighting, "scientificName"),
        ),
        (
            VERNACULAR_NAME.0,
            max_chars_of(RecordKind::Sighting, "vernacularName"),
        ),
        (RANK.0, NAME_MAX_CHARS),
    ];
    let mut species = Vec::new();
    let mut lines_of: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| read_error(&e))?;
        let line = record.position().map_or(0, |p| p.line());
        let cell = |index: Option<usize>| {
            index
                .and_then(|i| record.get(i))
                .filter(|value| !value.is_empty())
        };
        for (name, value) in [
            (SCIENTIFIC_NAME.0, cell(Some(scientific_name))),
            (VERNACULAR_NAME.0, cell(vernacular_name)),
            (RANK.0, cell(rank)),
        ] {
            let limit = limits
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(NAME_MAX_CHARS, |(_, l)| *l);
            if let Some(character) = value.and_then(schemas::text::forbidden_char) {
                return Err(error(
                    name,
                    format!(
                        "line {line}: {name} {}",
                        schemas::text::forbidden_reason(character)
                    ),
                ));
            }
            if let Some(value) = value.filter(|v| v.chars().count() as u64 > limit) {
                return Err(error(
                    name,
                    format!(
                        "line {line}: {name} is {} characters long; the limit is {limit}",
                        value.chars().count()
                    ),
                ));
            }
        }
        let Some(name) = cell(Some(scientific_name)) else {
            return Err(error(
                SCIENTIFIC_NAME.0,
                format!(
                    "line {line}: {} is empty; every species needs its scientific name",
                    SCIENTIFIC_NAME.0
                ),
            ));
        };
        let id = match cell(taxon_id) {
            None => None,
            Some(text) => match text.parse::<i64>() {
                Ok(id) if id > 0 => Some(id),
                Ok(_) => {
                    return Err(error(
                        TAXON_ID.0,
                        format!(
                            "line {line}: {} {text:?} is not a TAXREF id (a positive integer)",
                            TAXON_ID.0
                        ),
                    ))
                }
                Err(_) => {
                    return Err(error(
                        TAXON_ID.0,
                        format!("line {line}: {} {text:?} is not an integer", TAXON_ID.0),
                    ))
                }
            },
        };
        let entry = Species {
            scientific_name: name.to_string(),
            vernacular_name: cell(vernacular_name).map(str::to_string),
            taxon_id: id,
            rank: cell(rank).map(str::to_string),
        };
        let key = entry.key();
        if let Some(first) = lines_of.insert(key.clone(), line) {
            return Err(match entry.taxon_id {
                Some(id) => error(
                    TAXON_ID.0,
                    format!(
                        "lines {first} and {line} both give {} {id}: one taxon, one line",
                        TAXON_ID.0
                    ),
                ),
                None => error(
                    SCIENTIFIC_NAME.0,
                    format!(
                        "lines {first} and {line} both give the scientific name {key:?} without a {}: one taxon, one line",
                        TAXON_ID.0
                    ),
                ),
            });
        }
        if species.len() == MAX_SPECIES {
            return Err(error(
                "body",
                format!(
                    "line {line}: the list holds more than {MAX_SPECIES} species, the most one territory's list may hold"
                ),
            ));
        }
        species.push(entry);
    }
    Ok(species)
}

/// The delimiter the header line uses most; tab on a tie or when it uses
/// none (a one-column list).
fn delimiter_of(header_line: &str) -> u8 {
    let mut best = (b'\t', header_line.matches('\t').count());
    for candidate in [b';', b','] {
        let count = header_line.matches(candidate as char).count();
        if count > best.1 {
            best = (candidate, count);
        }
    }
    best.0
}

/// A row the reader could not split, with its line.
fn read_error(e: &csv::Error) -> ImportError {
    let line = e.position().map_or(0, |p| p.line());
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => error(
            "body",
            format!("line {line} has {len} fields; the header row has {expected_len}"),
        ),
        _ => error("body", format!("line {line}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taxref_extract_is_read_by_column_name_whatever_the_delimiter() {
        let tsv = "\u{feff}REGNE\tCD_NOM\tCD_REF\tRANG\tLB_NOM\tLB_AUTEUR\tNOM_VERN\n\
                   Animalia\t3764\t3764\tES\tParus major\tLinnaeus, 1758\tMésange charbonnière\n\
                   Plantae\t\t\tES\tTaraxacum Sect. Ruderalia\t\"Kirschner\"\t\n";
        let read = parse_species_list(tsv.as_bytes()).unwrap();
        assert_eq!(
            read,
            vec![
                Species {
                    scientific_name: "Parus major".into(),
                    vernacular_name: Some("Mésange charbonnière".into()),
                    taxon_id: Some(3764),
                    rank: Some("ES".into()),
                },
                Species {
                    scientific_name: "Taraxacum Sect. Ruderalia".into(),
                    vernacular_name: None,
                    taxon_id: None,
                    rank: Some("ES".into()),
                },
            ]
        );
        let semicolons = "cd_nom;lb_nom;nom_vern\n3764;Parus major;\"Mésange; charbonnière\"\n";
        assert_eq!(
            parse_species_list(semicolons.as_bytes()).unwrap()[0].vernacular_name,
            Some("Mésange; charbonnière".into())
        );
        let commas = "taxonId,scientificName\n3764,Parus major\n";
        assert_eq!(
            parse_species_list(commas.as_bytes()).unwrap()[0].taxon_id,
            Some(3764)
        );
        let one_column = "LB_NOM\nParus major\n";
        assert_eq!(parse_species_list(one_column.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn every_problem_names_its_line_and_column() {
        let bad = |text: &str| parse_species_list(text.as_bytes()).unwrap_err();
        assert_eq!(
            bad("CD_NOM\tLB_NOM\n3764\tParus major\nabc\tErithacus rubecula\n"),
            error("CD_NOM", r#"line 3: CD_NOM "abc" is not an integer"#.into())
        );
        let missing = bad("CD_NOM\tNOM_VERN\n3764\tMésange\n");
        assert_eq!(missing.field, "LB_NOM");
        assert!(missing.message.contains("no LB_NOM"), "{missing}");
        let twice =
            bad("CD_NOM;LB_NOM\n3764;Parus major\n4001;Erithacus\n3764;Parus major major\n");
        assert_eq!(twice.field, "CD_NOM");
        assert!(twice.message.starts_with("lines 2 and 4"), "{twice}");
        let twice = bad("LB_NOM\nBufo bufo\nBUFO BUFO\n");
        assert_eq!(twice.field, "LB_NOM");
        assert!(twice.message.starts_with("lines 2 and 3"), "{twice}");
        assert_eq!(bad("CD_NOM\tLB_NOM\n-4\tBufo\n").field, "CD_NOM");
        assert_eq!(
            bad("CD_NOM\tLB_NOM\n4\t\n").message,
            "line 2: LB_NOM is empty; every species needs its scientific name"
        );
        assert_eq!(
            bad("CD_NOM\tLB_NOM\n4\tBufo\tbufo\n").message,
            "line 2 has 3 fields; the header row has 2"
        );
        let latin1 = b"LB_NOM\nM\xe9sange\n";
        assert_eq!(
            parse_species_list(latin1).unwrap_err().message,
            "line 2 is not UTF-8; save the list as UTF-8 text"
        );
        assert_eq!(bad("").field, "body");
    }

    #[test]
    fn a_nul_character_in_a_cell_is_refused_with_its_line_and_column() {
        let refused = parse_species_list(
            "CD_NOM\tLB_NOM\tNOM_VERN\n3764\tParus major\tMésange\0\n".as_bytes(),
        )
        .unwrap_err();
        assert_eq!(refused.field, "NOM_VERN");
        assert!(
            refused
                .message
                .starts_with("line 2: NOM_VERN holds the character U+0000"),
            "{refused}"
        );
    }
}
