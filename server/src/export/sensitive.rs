//! Sensitive species: which sightings are shown exactly, to whom, and the one
//! generalisation every other reader gets.
//!
//! - [`normalise_scientific_name`] is the one spelling of a name that
//!   matching compares: a territory's list and a sighting are both read
//!   through it, so case, spacing, invisible characters and authorship do not
//!   decide whether a bat roost is protected;
//! - [`SensitiveTaxa`] is a territory's list, matched in Rust (by taxon id,
//!   or by the normalised name or any of its leading words, so a genus on
//!   the list covers its species), which keeps each query a plain indexed
//!   scan and each export a stream;
//! - [`shown_exactly`] decides whether an audience may see a sighting's exact
//!   position, site and notes;
//! - [`Location`] is a sighting's position, site and notes as read with
//!   [`location_columns`]/[`location_joins`] (exact, and the centre of its
//!   square of the territory's Lambert-93 grid), and
//!   [`Location::show_to`] the one place the generalisation is applied.

use std::collections::HashSet;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::{Principal, Role};

/// Roles that see a sensitive sighting of their territory exactly (with
/// admins and the sighting's own observer). The review, audit and live-event
/// routes are open to these roles only, which is why they answer exact
/// positions; every route open to anyone else goes through [`Location::show_to`].
pub const EXACT_READERS: &[Role] = &[Role::Coordinator, Role::RegieAuditor];

/// Characters that show as nothing and are not whitespace either (soft
/// hyphen, Mongolian vowel separator, zero-width space/joiners, word joiner,
/// byte-order mark): a name holding one reads like one without it.
const INVISIBLE: [char; 7] = [
    '\u{00AD}', '\u{180E}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}',
];

/// Lower-case words that begin an author's name ("de Candolle", "van der
/// Hoeven") or join two ("L. ex DC."), never an epithet.
const AUTHOR_PARTICLES: [&str; 16] = [
    "da", "de", "del", "della", "den", "der", "di", "dos", "du", "et", "ex", "in", "la", "le",
    "van", "von",
];

/// Rank markers, kept: "Aus bus subsp. cus" is the subspecies.
const RANK_MARKERS: [&str; 14] = [
    "subsp.",
    "ssp.",
    "var.",
    "subvar.",
    "f.",
    "fo.",
    "forma",
    "subf.",
    "morph",
    "cv.",
    "nothosubsp.",
    "nothovar.",
    "sp.",
    "spp.",
];
/// Identification qualifiers, dropped: "Myotis cf. daubentonii" may be the
/// listed species and is protected as it.
const QUALIFIERS: [&str; 4] = ["cf.", "cf", "aff.", "aff"];

/// A scientific name as matching compares it: lower case, one plain space
/// between words (any Unicode whitespace, non-breaking ones included, counts
/// as a space; invisible characters are dropped), identification qualifiers
/// dropped, and the authorship stripped: from the first word after the
/// genus that is neither an epithet nor a rank marker — a parenthesis
/// ("(Kuhl, 1817)"), a word with a digit or punctuation ("Kuhl,", "L."), a
/// particle ("de Candolle"), or a capitalised word after the species
/// epithet ("Kuhl") when the name is written in mixed case (in a name all in
/// capitals case says nothing). A parenthesised subgenus right after the
/// genus ("Myotis (Myotis) daubentonii") is dropped.
///
/// "Myotis daubentonii (Kuhl, 1817)", "Myotis daubentonii Kuhl, 1817",
/// "MYOTIS  DAUBENTONII" and "Myotis\u{a0}daubentonii" are all
/// "myotis daubentonii"; "Myotis" is "myotis".
pub fn normalise_scientific_name(name: &str) -> String {
    let cleaned: String = name.chars().filter(|c| !INVISIBLE.contains(c)).collect();
    let case_meaningful = cleaned.chars().any(char::is_lowercase);
    let mut kept: Vec<String> = Vec::new();
    for (position, word) in cleaned
        .split(char::is_whitespace)
        .filter(|w| !w.is_empty())
        .enumerate()
    {
        let lower = word.to_lowercase();
        if position == 0 {
            kept.push(lower);
            continue;
        }
        if QUALIFIERS.contains(&lower.as_str()) {
            continue;
        }
        if position == 1 && is_subgenus(word) {
            continue;
        }
        if RANK_MARKERS.contains(&lower.as_str()) {
            kept.push(lower);
            continue;
        }
        let is_epithet = word.chars().all(|c| c.is_alphabetic() || c == '-')
            && !AUTHOR_PARTICLES.contains(&lower.as_str())
            // The species epithet may be capitalised ("Myotis Daubentonii"):
            // a capitalised author right after a genus is rare, and then the
            // name still matches its genus.
            && (kept.len() < 2 || !case_meaningful || !word.starts_with(char::is_uppercase));
        if !is_epithet {
            break;
        }
        kept.push(lower);
    }
    kept.join(" ")
}

/// "(Myotis)": one alphabetic word in parentheses.
fn is_subgenus(word: &str) -> bool {
    word.strip_prefix('(')
        .and_then(|rest| rest.strip_suffix(')'))
        .is_some_and(|inner| !inner.is_empty() && inner.chars().all(char::is_alphabetic))
}

/// A territory's sensitive taxa, as matching reads them.
#[derive(Debug, Default, Clone)]
pub struct SensitiveTaxa {
    ids: HashSet<i64>,
    /// Normalised names: a species, or a genus (one word).
    names: HashSet<String>,
}

impl SensitiveTaxa {
    pub fn new<'a>(taxa: impl IntoIterator<Item = (Option<i64>, &'a str)>) -> SensitiveTaxa {
        let mut list = SensitiveTaxa::default();
        for (taxon_id, name) in taxa {
            list.ids.extend(taxon_id);
            let key = normalise_scientific_name(name);
            if !key.is_empty() {
                list.names.insert(key);
            }
        }
        list
    }

    /// The list of `territory` (5,000 taxa at most, see
    /// `settings::MAX_SENSITIVE_TAXA`).
    pub async fn load(conn: &mut PgConnection, territory: Uuid) -> sqlx::Result<SensitiveTaxa> {
        let rows: Vec<(Option<i64>, String)> = sqlx::query_as(
            "SELECT taxon_id, scientific_name FROM sensitive_taxa WHERE territory_id = $1",
        )
        .bind(territory)
        .fetch_all(conn)
        .await?;
        Ok(SensitiveTaxa::new(
            rows.iter().map(|(id, name)| (*id, name.as_str())),
        ))
    }

    /// Whether a sighting of this taxon is sensitive: its id is listed, or
    /// its normalised name or one of its leading words (its genus, its
    /// species for a subspecies) is.
    pub fn covers(&self, taxon_id: Option<i64>, scientific_name: &str) -> bool {
        if taxon_id.is_some_and(|id| self.ids.contains(&id)) {
            return true;
        }
        if self.names.is_empty() {
            return false;
        }
        let key = normalise_scientific_name(scientific_name);
        let mut prefix = String::new();
        for word in key.split(' ') {
            if !prefix.is_empty() {
                prefix.push(' ');
            }
            prefix.push_str(word);
            if self.names.contains(&prefix) {
                return true;
            }
        }
        false
    }
}

/// Who a sighting is shown to.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// An export: data leaves the service, sensitive sightings generalised
    /// whoever asked for it.
    Publication,
    /// An authenticated reader of the service.
    Reader(&'a Principal),
}

/// The sighting a decision is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub territory: Uuid,
    pub author: Uuid,
    pub taxon_id: Option<i64>,
    pub scientific_name: &'a str,
}

/// Whether `audience` may see `sighting`'s exact position, site and notes:
/// always when its taxon is not on `taxa` (its territory's list); else only
/// for the territory's coordinators and régie auditors, admins, and the
/// observer who recorded it — never in an export.
pub fn shown_exactly(audience: Audience<'_>, sighting: &Subject<'_>, taxa: &SensitiveTaxa) -> bool {
    if !taxa.covers(sighting.taxon_id, sighting.scientific_name) {
        return true;
    }
    match audience {
        Audience::Publication => false,
        Audience::Reader(principal) => {
            principal.is_admin
                || principal.account_id == sighting.author
                || EXACT_READERS
                    .iter()
                    .any(|&role| principal.has_role(sighting.territory, role))
        }
    }
}

/// The columns [`Location`] is read from, for the sighting aliased
/// `sighting`, with [`location_joins`] in the FROM clause.
pub fn location_columns(sighting: &str) -> String {
    format!(
        "ST_Y({sighting}.geom) AS latitude, ST_X({sighting}.geom) AS longitude, \
         ST_X(loc_l93.point) AS x_l93, ST_Y(loc_l93.point) AS y_l93, \
         {sighting}.coordinate_uncertainty_m AS uncertainty_m, {sighting}.site, {sighting}.notes, \
         loc_territory.sensitive_grid_m AS grid_m, \
         ST_X(loc_cell.point) AS grid_x_l93, ST_Y(loc_cell.point) AS grid_y_l93, \
         ST_Y(loc_cell_wgs84.point) AS grid_latitude, ST_X(loc_cell_wgs84.point) AS grid_longitude"
    )
}

/// The joins [`location_columns`] reads: the sighting's territory (for its
/// grid), its point in Lambert-93 (EPSG:2154, the grid of French platforms)
/// and the centre of its grid square, in Lambert-93 and WGS84.
pub fn location_joins(sighting: &str) -> String {
    format!(
        " JOIN territories loc_territory ON loc_territory.id = {sighting}.territory_id \
         CROSS JOIN LATERAL (SELECT ST_Transform({sighting}.geom, 2154) AS point) loc_l93 \
         CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint( \
             floor(ST_X(loc_l93.point) / loc_territory.sensitive_grid_m) * loc_territory.sensitive_grid_m \
               + loc_territory.sensitive_grid_m / 2.0, \
             floor(ST_Y(loc_l93.point) / loc_territory.sensitive_grid_m) * loc_territory.sensitive_grid_m \
               + loc_territory.sensitive_grid_m / 2.0), 2154) AS point) loc_cell \
         CROSS JOIN LATERAL (SELECT ST_Transform(loc_cell.point, 4326) AS point) loc_cell_wgs84 "
    )
}

/// A sighting's position, site and notes, exact until
/// [`Location::show_to`] generalises them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    /// Lambert-93 (EPSG:2154), metres.
    pub x_l93: f64,
    pub y_l93: f64,
    pub uncertainty_m: Option<f64>,
    pub site: Option<String>,
    pub notes: Option<String>,
    /// The territory's grid for sensitive taxa, in metres.
    pub grid_m: i32,
    grid_x_l93: f64,
    grid_y_l93: f64,
    grid_latitude: f64,
    grid_longitude: f64,
    /// Whether [`Location::show_to`] generalised it.
    #[sqlx(skip)]
    pub generalised: bool,
}

impl Location {
    /// Leaves the location exact if [`shown_exactly`] says so; else moves
    /// it to the centre of its grid square, with the uncertainty that covers
    /// the square (half its diagonal), and withholds its site and notes.
    pub fn show_to(
        &mut self,
        audience: Audience<'_>,
        sighting: &Subject<'_>,
        taxa: &SensitiveTaxa,
    ) {
        if shown_exactly(audience, sighting, taxa) {
            return;
        }
        self.latitude = self.grid_latitude;
        self.longitude = self.grid_longitude;
        self.x_l93 = self.grid_x_l93;
        self.y_l93 = self.grid_y_l93;
        self.uncertainty_m = Some((f64::from(self.grid_m) * std::f64::consts::SQRT_2 / 2.0).ceil());
        self.site = None;
        self.notes = None;
        self.generalised = true;
    }

    /// Darwin Core `dataGeneralizations`: empty unless generalised.
    pub fn data_generalizations(&self) -> String {
        if self.generalised {
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
        if self.generalised {
            "Exact coordinates, site and notes withheld (sensitive species); available from the territory's coordinators on request".to_string()
        } else {
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Credential, Membership};

    #[test]
    fn spellings_of_one_name_normalise_alike() {
        for spelling in [
            "Myotis daubentonii",
            "Myotis daubentonii (Kuhl, 1817)",
            "Myotis daubentonii Kuhl, 1817",
            "Myotis daubentonii Kuhl",
            "  Myotis   daubentonii  ",
            "Myotis\u{a0}daubentonii",
            "Myotis\u{202f}daubentonii\u{2003}(Kuhl,\u{a0}1817)",
            "Myotis\tdaubentonii\n",
            "Myo\u{200b}tis daubentonii",
            "MYOTIS DAUBENTONII",
            "myotis DAUBENTONII",
            "Myotis Daubentonii",
            "MYOTIS DAUBENTONII (KUHL, 1817)",
            "Myotis (Myotis) daubentonii Kuhl, 1817",
            "Myotis cf. daubentonii",
        ] {
            assert_eq!(
                normalise_scientific_name(spelling),
                "myotis daubentonii",
                "{spelling:?}"
            );
        }
    }

    #[test]
    fn authorship_particles_and_ranks_are_read_as_such() {
        assert_eq!(
            normalise_scientific_name("Rana dalmatina Fitzinger in Bonaparte, 1838"),
            "rana dalmatina"
        );
        assert_eq!(
            normalise_scientific_name("Ophrys apifera var. bicolor (Nägeli) E.Nelson"),
            "ophrys apifera var. bicolor"
        );
        assert_eq!(
            normalise_scientific_name("Centaurea jacea de Candolle"),
            "centaurea jacea"
        );
        assert_eq!(
            normalise_scientific_name("Myotis myotis nathalinae Tupinier, 1977"),
            "myotis myotis nathalinae"
        );
        assert_eq!(normalise_scientific_name("Myotis"), "myotis");
        assert_eq!(normalise_scientific_name("Myotis Kaup, 1829"), "myotis");
        assert_eq!(normalise_scientific_name(" \u{a0} "), "");
    }

    #[test]
    fn a_list_covers_by_id_by_name_and_by_genus() {
        let list = SensitiveTaxa::new([
            (Some(60461), "Myotis daubentonii (Kuhl, 1817)"),
            (None, "Rhinolophus"),
            (None, "Triturus  cristatus"),
        ]);
        assert!(list.covers(Some(60461), "Anything"));
        assert!(list.covers(None, "myotis\u{a0}DAUBENTONII Kuhl, 1817"));
        assert!(list.covers(None, "Rhinolophus hipposideros (Bechstein, 1800)"));
        assert!(list.covers(None, "RHINOLOPHUS FERRUMEQUINUM"));
        assert!(list.covers(None, "Triturus cristatus cristatus"));
        assert!(!list.covers(None, "Triturus marmoratus"));
        assert!(!list.covers(None, "Myotis myotis"));
        assert!(!list.covers(Some(1), "Rhinolophidae"));
        assert!(!SensitiveTaxa::default().covers(Some(60461), "Myotis daubentonii"));
    }

    fn principal(account: Uuid, memberships: Vec<Membership>) -> Principal {
        Principal {
            account_id: account,
            display_name: "x".to_string(),
            is_admin: false,
            memberships,
            credential: Credential::Device {
                device_id: Uuid::new_v4(),
            },
        }
    }

    #[test]
    fn exact_positions_go_to_the_territory_s_reviewers_admins_and_the_observer() {
        let territory = Uuid::new_v4();
        let observer = Uuid::new_v4();
        let list = SensitiveTaxa::new([(None, "Myotis")]);
        let bat = Subject {
            territory,
            author: observer,
            taxon_id: None,
            scientific_name: "Myotis daubentonii",
        };
        let toad = Subject {
            scientific_name: "Bufo bufo",
            ..bat
        };
        let member = |role| {
            principal(
                Uuid::new_v4(),
                vec![Membership {
                    territory_id: territory,
                    role,
                }],
            )
        };
        let volunteer = member(Role::Volunteer);
        let elsewhere_coordinator = principal(
            Uuid::new_v4(),
            vec![Membership {
                territory_id: Uuid::new_v4(),
                role: Role::Coordinator,
            }],
        );
        let mut admin = principal(Uuid::new_v4(), vec![]);
        admin.is_admin = true;
        assert!(!shown_exactly(Audience::Reader(&volunteer), &bat, &list));
        assert!(!shown_exactly(
            Audience::Reader(&elsewhere_coordinator),
            &bat,
            &list
        ));
        assert!(!shown_exactly(Audience::Publication, &bat, &list));
        assert!(shown_exactly(Audience::Reader(&volunteer), &toad, &list));
        assert!(shown_exactly(
            Audience::Reader(&member(Role::Coordinator)),
            &bat,
            &list
        ));
        assert!(shown_exactly(
            Audience::Reader(&member(Role::RegieAuditor)),
            &bat,
            &list
        ));
        assert!(shown_exactly(Audience::Reader(&admin), &bat, &list));
        assert!(shown_exactly(
            Audience::Reader(&principal(observer, vec![])),
            &bat,
            &list
        ));
    }
}
