//! Plausibility warnings: what the inventory accepted but a coordinator
//! should look at. A point outside its territory's boundary beyond its
//! uncertainty, a date later than when the server received the record, more
//! than 24 hours declared by one volunteer on one day, a sighting whose name
//! is not on its territory's species list.
//!
//! The queries of [`super::rows`] measure (PostGIS distances, a day's sum);
//! this module words the warnings, so each is phrased in one place.

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

/// Something accepted but implausible about a row, for a coordinator to look at.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Warning {
    /// `outsideTerritory`, `futureDate` (sightings, reports),
    /// `unknownName` (sightings) or `over24HoursADay` (timesheet entries).
    #[schema(example = "outsideTerritory")]
    pub code: String,
    /// The field the warning is about.
    pub field: String,
    pub message: String,
}

/// Minutes in a day: more declared by one volunteer on one day is implausible.
const MINUTES_A_DAY: i64 = 1440;

/// What the query measured of a located record (a sighting, a report).
pub struct LocatedFacts {
    /// How far its point is outside its territory's boundary, in whole
    /// metres, when that is beyond its uncertainty (None: inside, within its
    /// uncertainty, or the territory has no boundary).
    pub outside_by_m: Option<i64>,
    pub uncertainty_m: Option<f64>,
    /// Whether its own date is later than when the server received it.
    pub dated_after_receipt: bool,
}

/// The warnings of a located record whose date is the field `date_field`.
pub fn of_located(facts: &LocatedFacts, date_field: &str) -> Vec<Warning> {
    let mut warnings = Vec::new();
    if let Some(distance) = facts.outside_by_m {
        warnings.push(Warning {
            code: "outsideTerritory".to_string(),
            field: "decimalLatitude".to_string(),
            message: format!(
                "the point is {distance} m outside the territory's boundary, beyond its \
                 uncertainty ({} m)",
                facts.uncertainty_m.unwrap_or(0.0)
            ),
        });
    }
    if facts.dated_after_receipt {
        warnings.push(Warning {
            code: "futureDate".to_string(),
            field: date_field.to_string(),
            message: format!("{date_field} is later than when the server received the record"),
        });
    }
    warnings
}

/// The warning of a sighting named `scientific_name` that matched no taxon
/// of its territory's species list (`unknown`), even accents and case aside.
pub fn of_name(unknown: bool, scientific_name: &str) -> Option<Warning> {
    unknown.then(|| Warning {
        code: "unknownName".to_string(),
        field: "scientificName".to_string(),
        message: format!(
            "\"{scientific_name}\" is not on the territory's species list (a misspelling?)"
        ),
    })
}

/// The warnings of a timesheet entry whose volunteer declared `day_minutes`
/// in all on `work_date`.
pub fn of_hours(day_minutes: i64, work_date: NaiveDate) -> Vec<Warning> {
    if day_minutes <= MINUTES_A_DAY {
        return Vec::new();
    }
    vec![Warning {
        code: "over24HoursADay".to_string(),
        field: "durationMinutes".to_string(),
        message: format!(
            "{day_minutes} minutes declared by this volunteer on {work_date}, more than 24 hours"
        ),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_outside_and_a_future_date_are_worded_as_before() {
        let warnings = of_located(
            &LocatedFacts {
                outside_by_m: Some(1093),
                uncertainty_m: Some(12.5),
                dated_after_receipt: true,
            },
            "eventDate",
        );
        assert_eq!(
            warnings[0].message,
            "the point is 1093 m outside the territory's boundary, beyond its uncertainty (12.5 m)"
        );
        assert_eq!(
            warnings[1].message,
            "eventDate is later than when the server received the record"
        );
        let no_uncertainty = of_located(
            &LocatedFacts {
                outside_by_m: Some(5),
                uncertainty_m: None,
                dated_after_receipt: false,
            },
            "observedAt",
        );
        assert_eq!(
            no_uncertainty[0].message,
            "the point is 5 m outside the territory's boundary, beyond its uncertainty (0 m)"
        );
    }

    #[test]
    fn a_day_of_more_than_24_hours_is_flagged() {
        let day = NaiveDate::from_ymd_opt(2025, 5, 17).unwrap();
        assert!(of_hours(1440, day).is_empty());
        assert_eq!(
            of_hours(1500, day)[0].message,
            "1500 minutes declared by this volunteer on 2025-05-17, more than 24 hours"
        );
    }
}
