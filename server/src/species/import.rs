//! Reading a TAXREF-style species list (CSV or TSV) into species. Every row
//! is read, and each problem noted with its line and column, so a preview
//! shows them all; an import is all or nothing (nothing is written until the
//! whole file has been read, and not at all if a row has a problem).
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

/// Problems a preview lists; past these it counts them. A file with more is
/// not a list with a few typos but one saved with the wrong columns.
pub const MAX_LISTED_PROBLEMS: usize = 100;

/// A row that cannot be imported: its line, the column at fault (None when
/// the row itself is malformed) and why, starting with the line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct LineProblem {
    pub line: u64,
    #[schema(required = true)]
    pub column: Option<String>,
    pub message: String,
}

impl LineProblem {
    fn new(line: u64, column: &str, message: String) -> LineProblem {
        LineProblem {
            line,
            column: Some(column.to_string()),
            message,
        }
    }
}

/// A file read to its end: the species of its readable rows, in file order
/// with unique keys ([`Species::key`]), and the problems of the others.
#[derive(Debug, Default)]
pub struct SpeciesFile {
    pub species: Vec<Species>,
    /// The first [`MAX_LISTED_PROBLEMS`], in file order.
    pub problems: Vec<LineProblem>,
    /// Problems beyond those listed.
    pub unlisted_problems: usize,
}

impl SpeciesFile {
    fn note(&mut self, problem: LineProblem) {
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(problem);
        } else {
            self.unlisted_problems += 1;
        }
    }
}

/// Reads `body` into its species, all or nothing: the first problem, with
/// how many others there are, if any row cannot be imported.
pub fn parse_species_list(body: &[u8]) -> Result<Vec<Species>, ImportError> {
    let read = read_species_list(body)?;
    let Some(first) = read.problems.first() else {
        return Ok(read.species);
    };
    let others = read.problems.len() - 1 + read.unlisted_problems;
    let mut message = first.message.clone();
    if others > 0 {
        message.push_str(&format!(
            " (and {others} other problem{}: preview the file to see them all)",
            if others == 1 { "" } else { "s" }
        ));
    }
    Err(ImportError {
        field: first.column.clone().unwrap_or_else(|| "body".to_string()),
        message,
    })
}

/// Reads `body` (UTF-8, a byte-order mark tolerated) row by row, setting
/// aside the rows that cannot be imported; an error only for what stops the
/// whole file (its encoding, its header, its size).
pub fn read_species_list(body: &[u8]) -> Result<SpeciesFile, ImportError> {
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

    let mut read = SpeciesFile::default();
    let mut lines_of: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => match row_problem(&e) {
                // A row with too many or too few fields: the next one is read.
                Some(problem) => {
                    read.note(problem);
                    continue;
                }
                None => return Err(error("body", format!("line {}: {e}", line_of(&e)))),
            },
        };
        let line = record.position().map_or(0, |p| p.line());
        let cell = |index: Option<usize>| {
            index
                .and_then(|i| record.get(i))
                .filter(|value| !value.is_empty())
        };
        match species_of_row(
            line,
            &cell,
            scientific_name,
            taxon_id,
            vernacular_name,
            rank,
        ) {
            Ok(entry) => {
                let key = entry.key();
                if let Some(first) = lines_of.insert(key.clone(), line) {
                    read.note(match entry.taxon_id {
                        Some(id) => LineProblem::new(
                            line,
                            TAXON_ID.0,
                            format!(
                                "lines {first} and {line} both give {} {id}: one taxon, one line",
                                TAXON_ID.0
                            ),
                        ),
                        None => LineProblem::new(
                            line,
                            SCIENTIFIC_NAME.0,
                            format!(
                                "lines {first} and {line} both give the scientific name {key:?} without a {}: one taxon, one line",
                                TAXON_ID.0
                            ),
                        ),
                    });
                    continue;
                }
                if read.species.len() == MAX_SPECIES {
                    return Err(error(
                        "body",
                        format!(
                            "line {line}: the list holds more than {MAX_SPECIES} species, the most one territory's list may hold"
                        ),
                    ));
                }
                read.species.push(entry);
            }
            Err(problem) => read.note(problem),
        }
    }
    Ok(read)
}

/// One row's species, or its first problem.
fn species_of_row<'r>(
    line: u64,
    cell: &dyn Fn(Option<usize>) -> Option<&'r str>,
    scientific_name: usize,
    taxon_id: Option<usize>,
    vernacular_name: Option<usize>,
    rank: Option<usize>,
) -> Result<Species, LineProblem> {
    for (name, value, limit) in [
        (
            SCIENTIFIC_NAME.0,
            cell(Some(scientific_name)),
            max_chars_of(RecordKind::Sighting, "scientificName"),
        ),
        (
            VERNACULAR_NAME.0,
            cell(vernacular_name),
            max_chars_of(RecordKind::Sighting, "vernacularName"),
        ),
        (RANK.0, cell(rank), NAME_MAX_CHARS),
    ] {
        if let Some(character) = value.and_then(schemas::text::forbidden_char) {
            return Err(LineProblem::new(
                line,
                name,
                format!(
                    "line {line}: {name} {}",
                    schemas::text::forbidden_reason(character)
                ),
            ));
        }
        if let Some(value) = value.filter(|v| v.chars().count() as u64 > limit) {
            return Err(LineProblem::new(
                line,
                name,
                format!(
                    "line {line}: {name} is {} characters long; the limit is {limit}",
                    value.chars().count()
                ),
            ));
        }
    }
    let Some(name) = cell(Some(scientific_name)) else {
        return Err(LineProblem::new(
            line,
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
                return Err(LineProblem::new(
                    line,
                    TAXON_ID.0,
                    format!(
                        "line {line}: {} {text:?} is not a TAXREF id (a positive integer)",
                        TAXON_ID.0
                    ),
                ))
            }
            Err(_) => {
                return Err(LineProblem::new(
                    line,
                    TAXON_ID.0,
                    format!("line {line}: {} {text:?} is not an integer", TAXON_ID.0),
                ))
            }
        },
    };
    Ok(Species {
        scientific_name: name.to_string(),
        vernacular_name: cell(vernacular_name).map(str::to_string),
        taxon_id: id,
        rank: cell(rank).map(str::to_string),
    })
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

fn line_of(e: &csv::Error) -> u64 {
    e.position().map_or(0, |p| p.line())
}

/// A row the reader could not split into the header's columns; None for an
/// error that stops the reading.
fn row_problem(e: &csv::Error) -> Option<LineProblem> {
    let line = line_of(e);
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => Some(LineProblem {
            line,
            column: None,
            message: format!("line {line} has {len} fields; the header row has {expected_len}"),
        }),
        _ => None,
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
    fn every_row_is_read_and_each_problem_listed_with_its_line_and_column() {
        let file = "CD_NOM\tLB_NOM\n\
                    3764\tParus major\n\
                    abc\tErithacus rubecula\n\
                    4001\t\n\
                    4002\tBufo bufo\textra\n\
                    3764\tParus major major\n\
                    5000\tRana temporaria\n";
        let read = read_species_list(file.as_bytes()).unwrap();
        let names: Vec<&str> = read
            .species
            .iter()
            .map(|s| s.scientific_name.as_str())
            .collect();
        assert_eq!(names, ["Parus major", "Rana temporaria"]);
        let problems: Vec<(u64, Option<&str>)> = read
            .problems
            .iter()
            .map(|p| (p.line, p.column.as_deref()))
            .collect();
        assert_eq!(
            problems,
            [
                (3, Some("CD_NOM")),
                (4, Some("LB_NOM")),
                (5, None),
                (6, Some("CD_NOM"))
            ]
        );
        assert_eq!(read.unlisted_problems, 0);
        let refused = parse_species_list(file.as_bytes()).unwrap_err();
        assert_eq!(refused.field, "CD_NOM");
        assert_eq!(
            refused.message,
            r#"line 3: CD_NOM "abc" is not an integer (and 3 other problems: preview the file to see them all)"#
        );
    }

    #[test]
    fn problems_past_the_listed_ones_are_counted() {
        let mut file = String::from("CD_NOM\tLB_NOM\n");
        for _ in 0..MAX_LISTED_PROBLEMS + 7 {
            file.push_str("x\tBufo\n");
        }
        let read = read_species_list(file.as_bytes()).unwrap();
        assert_eq!(read.problems.len(), MAX_LISTED_PROBLEMS);
        assert_eq!(read.unlisted_problems, 7);
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
