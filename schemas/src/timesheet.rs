//! Volunteer timesheets (hours given, valued in grant and subsidy files) and the
//! coordinator's approval of them.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::checks::{self, NOT_BLANK};
use crate::limits::{NAME_MAX_CHARS, TEXT_MAX_CHARS};
use crate::{FieldProblem, FieldRecord, RecordKind};

/// No single entry covers more than a day; longer work is one entry per day.
const MAX_MINUTES: i64 = 24 * 60;
/// End minus start is cut to whole minutes while a typed duration is rounded, so they
/// may differ by one.
const DURATION_TOLERANCE_MINUTES: i64 = 1;

/// What the volunteer time was spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivityType {
    FieldSurvey,
    Planting,
    CleanUp,
    DataEntry,
    Training,
    Meeting,
    AwarenessEvent,
    Other,
}

/// Time a volunteer gave on one day: either a start and an end, or just a duration
/// (volunteers often only remember "about two hours").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimesheetEntry {
    pub id: Uuid,
    /// The account that wrote the entry: the notebook's owner (the server
    /// refuses any other).
    pub author_id: Uuid,
    #[schemars(regex(pattern = NOT_BLANK), length(max = NAME_MAX_CHARS))]
    pub device_id: String,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,

    /// Whose time this is: the notebook's owner too, since hours are valued in
    /// grant files and nobody may declare them in another's name.
    pub volunteer_id: Uuid,
    pub work_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_MINUTES))]
    pub duration_minutes: Option<i64>,
    pub activity: ActivityType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = NAME_MAX_CHARS))]
    pub site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TEXT_MAX_CHARS))]
    pub notes: Option<String>,
}

impl TimesheetEntry {
    /// Minutes worked: the typed `durationMinutes` when given (what the volunteer
    /// declared, checked against start and end when those are given too), else
    /// `endedAt − startedAt`; 0 for an entry with neither, which `problems` refuses.
    pub fn duration_minutes(&self) -> i64 {
        self.duration_minutes
            .or_else(|| self.span().map(|span| span.num_minutes()))
            .unwrap_or(0)
    }

    fn span(&self) -> Option<Duration> {
        Some(self.ended_at? - self.started_at?)
    }
}

impl FieldRecord for TimesheetEntry {
    const KIND: RecordKind = RecordKind::TimesheetEntry;

    fn id(&self) -> Uuid {
        self.id
    }

    fn problems(&self) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        checks::metadata(&mut out, &self.device_id, self.created_at, self.modified_at);

        let latest_work_date = Utc::now().date_naive() + Duration::days(1);
        if self.work_date > latest_work_date {
            out.push(FieldProblem::new(
                "workDate",
                format!(
                    "must not be more than 1 day in the future (got {})",
                    self.work_date
                ),
            ));
        }

        match (self.started_at, self.ended_at, self.duration_minutes) {
            (Some(_), None, _) => out.push(FieldProblem::new(
                "endedAt",
                "is required when startedAt is given",
            )),
            (None, Some(_), _) => out.push(FieldProblem::new(
                "startedAt",
                "is required when endedAt is given",
            )),
            (None, None, None) => out.push(FieldProblem::new(
                "durationMinutes",
                "is required unless both startedAt and endedAt are given",
            )),
            _ => {}
        }

        if let (Some(started), Some(ended)) = (self.started_at, self.ended_at) {
            let span = ended - started;
            if span <= Duration::zero() {
                out.push(FieldProblem::new(
                    "endedAt",
                    format!(
                        "must be after startedAt ({}) (got {})",
                        started.to_rfc3339(),
                        ended.to_rfc3339()
                    ),
                ));
            } else if span > Duration::minutes(MAX_MINUTES) {
                out.push(FieldProblem::new(
                    "endedAt",
                    format!(
                        "must be at most 24 hours after startedAt (got {} minutes)",
                        span.num_minutes()
                    ),
                ));
            } else if let Some(declared) = self.duration_minutes {
                let measured = span.num_minutes();
                if (declared - measured).abs() > DURATION_TOLERANCE_MINUTES {
                    out.push(FieldProblem::new(
                        "durationMinutes",
                        format!(
                            "must equal endedAt − startedAt, {measured} minutes, within \
                             {DURATION_TOLERANCE_MINUTES} (got {declared})"
                        ),
                    ));
                }
            }
        }

        if let Some(declared) = self.duration_minutes {
            checks::number_within(
                &mut out,
                "durationMinutes",
                declared as f64,
                Some(1.0),
                Some(MAX_MINUTES as f64),
            );
        }
        out
    }
}

/// A coordinator's decision on a timesheet entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    Approved,
    Rejected,
}

/// Approval of volunteer hours. Kept apart from [`TimesheetEntry`] because it is a
/// coordinator's decision: a volunteer's phone must not be able to approve its own hours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimesheetApproval {
    pub entry_id: Uuid,
    pub decision: ApprovalDecision,
    pub decided_by: Uuid,
    pub decided_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}
