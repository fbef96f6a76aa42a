//! The one mapping from a record kind to where the inventory keeps it: its
//! table, the column naming whose record it is, and the column of its own
//! date. The write side (`materialise`), the readers (`rows`) and the review
//! queries (`review::filter`, `review::decisions`) all ask here, so a kind's
//! storage is named once.

use schemas::RecordKind;

/// How the kinds are listed in an error about an unknown one.
pub const KIND_NAMES: &str = "sighting, degradation_report or timesheet_entry";

/// A kind by its snake_case name (`sighting`, …), as clients send it.
pub fn parse(text: &str) -> Option<RecordKind> {
    RecordKind::ALL
        .into_iter()
        .find(|kind| kind.as_str() == text)
}

/// Where the inventory stores a kind of record.
pub trait Stored {
    /// The table of its valid records.
    fn table(self) -> &'static str;
    /// The column naming whose record it is (the volunteer's account).
    fn volunteer_column(self) -> &'static str;
    /// The column of the record's own date (what the review's "from"/"to" filter).
    fn date_column(self) -> &'static str;
}

impl Stored for RecordKind {
    fn table(self) -> &'static str {
        match self {
            RecordKind::Sighting => "sightings",
            RecordKind::DegradationReport => "degradation_reports",
            RecordKind::TimesheetEntry => "timesheet_entries",
        }
    }

    fn volunteer_column(self) -> &'static str {
        match self {
            RecordKind::TimesheetEntry => "volunteer_id",
            RecordKind::Sighting | RecordKind::DegradationReport => "author_id",
        }
    }

    fn date_column(self) -> &'static str {
        match self {
            RecordKind::Sighting => "event_date",
            RecordKind::DegradationReport => "observed_at",
            RecordKind::TimesheetEntry => "work_date",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_name() {
        for kind in RecordKind::ALL {
            assert_eq!(parse(kind.as_str()), Some(kind));
        }
        assert_eq!(parse("sightings"), None);
    }
}
