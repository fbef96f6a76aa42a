//! Specification of volunteer timesheet entries and of their approval.

use chrono::{Duration, NaiveDate, Utc};
use fieldnotes_schemas::{
    ActivityType, ApprovalDecision, FieldProblem, FieldRecord, RecordKind, TimesheetApproval,
    TimesheetEntry,
};
use serde_json::{json, Value};
use uuid::Uuid;

fn sample() -> Value {
    serde_json::from_str(include_str!("samples/timesheet_entry.json")).unwrap()
}

fn with(changes: Value) -> Value {
    let mut raw = sample();
    for (key, value) in changes.as_object().unwrap() {
        raw[key] = value.clone();
    }
    raw
}

fn without(fields: &[&str]) -> Value {
    let mut raw = sample();
    for field in fields {
        raw.as_object_mut().unwrap().remove(*field);
    }
    raw
}

fn problems_of(raw: &Value) -> Vec<FieldProblem> {
    match TimesheetEntry::from_raw(raw) {
        Ok(entry) => panic!("expected problems, but it parsed: {entry:?}"),
        Err(problems) => problems,
    }
}

fn problem(field: &str, reason: &str) -> FieldProblem {
    FieldProblem::new(field, reason)
}

#[test]
fn a_timesheet_with_start_and_end_parses() {
    let entry = TimesheetEntry::from_raw(&sample()).unwrap();
    assert_eq!(TimesheetEntry::KIND, RecordKind::TimesheetEntry);
    assert_eq!(
        entry.id(),
        Uuid::parse_str("11ae97c4-37d6-4628-a4b8-3d4c402ce157").unwrap()
    );
    assert_eq!(
        entry.work_date,
        NaiveDate::from_ymd_opt(2024, 6, 8).unwrap()
    );
    assert_eq!(entry.activity, ActivityType::CleanUp);
    assert_eq!(entry.duration_minutes(), 90);
}

#[test]
fn a_timesheet_with_only_a_duration_parses() {
    let mut raw = without(&["startedAt", "endedAt"]);
    raw["durationMinutes"] = json!(120);
    let entry = TimesheetEntry::from_raw(&raw).unwrap();
    assert_eq!(entry.duration_minutes(), 120);
}

#[test]
fn a_timesheet_round_trips_through_json() {
    let entry = TimesheetEntry::from_raw(&sample()).unwrap();
    let written = serde_json::to_value(&entry).unwrap();
    assert_eq!(written["workDate"], "2024-06-08");
    assert_eq!(written["activity"], "clean_up");
    assert!(written.get("durationMinutes").is_none());
    assert_eq!(TimesheetEntry::from_raw(&written).unwrap(), entry);
}

#[test]
fn timesheet_needs_start_and_end_or_duration() {
    assert_eq!(
        problems_of(&without(&["startedAt", "endedAt"])),
        vec![problem(
            "durationMinutes",
            "is required unless both startedAt and endedAt are given"
        )]
    );
}

#[test]
fn a_start_without_an_end_is_refused_naming_ended_at() {
    assert_eq!(
        problems_of(&without(&["endedAt"])),
        vec![problem("endedAt", "is required when startedAt is given")]
    );
    assert_eq!(
        problems_of(&without(&["startedAt"])),
        vec![problem("startedAt", "is required when endedAt is given")]
    );
}

#[test]
fn timesheet_end_before_start_is_refused() {
    assert_eq!(
        problems_of(&with(json!({"endedAt": "2024-06-08T08:00:00Z"}))),
        vec![problem(
            "endedAt",
            "must be after startedAt (2024-06-08T08:30:00+00:00) \
             (got 2024-06-08T08:00:00+00:00)"
        )]
    );
}

#[test]
fn a_span_over_24_hours_is_refused() {
    assert_eq!(
        problems_of(&with(json!({"endedAt": "2024-06-09T09:00:00Z"}))),
        vec![problem(
            "endedAt",
            "must be at most 24 hours after startedAt (got 1470 minutes)"
        )]
    );
}

#[test]
fn duration_must_be_between_1_and_1440_minutes() {
    let mut raw = without(&["startedAt", "endedAt"]);
    raw["durationMinutes"] = json!(0);
    assert_eq!(
        problems_of(&raw),
        vec![problem(
            "durationMinutes",
            "must be between 1 and 1440 (got 0)"
        )]
    );
    raw["durationMinutes"] = json!(1441);
    assert_eq!(
        problems_of(&raw),
        vec![problem(
            "durationMinutes",
            "must be between 1 and 1440 (got 1441)"
        )]
    );
    raw["durationMinutes"] = json!(1440);
    assert!(TimesheetEntry::from_raw(&raw).is_ok());
}

#[test]
fn duration_must_agree_with_start_and_end() {
    assert_eq!(
        problems_of(&with(json!({"durationMinutes": 100}))),
        vec![problem(
            "durationMinutes",
            "must equal endedAt − startedAt, 90 minutes, within 1 (got 100)"
        )]
    );
}

#[test]
fn duration_may_differ_from_start_and_end_by_one_minute() {
    let entry = TimesheetEntry::from_raw(&with(json!({"durationMinutes": 91}))).unwrap();
    assert_eq!(entry.duration_minutes(), 91);
}

#[test]
fn typed_checks_refuse_an_out_of_range_duration() {
    let mut entry = TimesheetEntry::from_raw(&sample()).unwrap();
    entry.started_at = None;
    entry.ended_at = None;
    entry.duration_minutes = Some(-5);
    assert_eq!(
        entry.problems(),
        vec![problem(
            "durationMinutes",
            "must be between 1 and 1440 (got -5)"
        )]
    );
}

#[test]
fn work_date_more_than_a_day_ahead_is_refused() {
    let in_two_days = Utc::now().date_naive() + Duration::days(2);
    let problems = problems_of(&with(json!({ "workDate": in_two_days })));
    assert_eq!(
        problems,
        vec![problem(
            "workDate",
            &format!("must not be more than 1 day in the future (got {in_two_days})")
        )]
    );
}

#[test]
fn work_date_tomorrow_is_accepted_because_of_time_zones() {
    let tomorrow = Utc::now().date_naive() + Duration::days(1);
    let mut raw = without(&["startedAt", "endedAt"]);
    raw["workDate"] = json!(tomorrow);
    raw["durationMinutes"] = json!(60);
    assert!(TimesheetEntry::from_raw(&raw).is_ok());
}

#[test]
fn malformed_work_date_is_named() {
    assert_eq!(
        problems_of(&with(json!({"workDate": "08/06/2024"}))),
        vec![problem(
            "workDate",
            "must be a date in YYYY-MM-DD form (got \"08/06/2024\")"
        )]
    );
}

#[test]
fn unknown_activity_is_refused() {
    assert_eq!(
        problems_of(&with(json!({"activity": "picnic"}))),
        vec![problem(
            "activity",
            "must be one of \"field_survey\", \"planting\", \"clean_up\", \"data_entry\", \
             \"training\", \"meeting\", \"awareness_event\", \"other\" (got \"picnic\")"
        )]
    );
}

#[test]
fn missing_volunteer_is_named() {
    assert_eq!(
        problems_of(&without(&["volunteerId"])),
        vec![problem("volunteerId", "is required")]
    );
}

#[test]
fn unknown_extra_fields_are_ignored() {
    let raw = with(json!({"approved": true}));
    assert_eq!(
        TimesheetEntry::from_raw(&raw).unwrap(),
        TimesheetEntry::from_raw(&sample()).unwrap()
    );
}

#[test]
fn an_approval_is_a_separate_coordinator_document() {
    let approval = TimesheetApproval {
        entry_id: Uuid::nil(),
        decision: ApprovalDecision::Rejected,
        decided_by: Uuid::nil(),
        decided_at: "2024-06-10T09:00:00Z".parse().unwrap(),
        comment: Some("Same hours entered twice".to_owned()),
    };
    let written = serde_json::to_value(&approval).unwrap();
    assert_eq!(
        written,
        json!({
            "entryId": "00000000-0000-0000-0000-000000000000",
            "decision": "rejected",
            "decidedBy": "00000000-0000-0000-0000-000000000000",
            "decidedAt": "2024-06-10T09:00:00Z",
            "comment": "Same hours entered twice"
        })
    );
    assert_eq!(
        serde_json::from_value::<TimesheetApproval>(written).unwrap(),
        approval
    );
}
