//! Specification of degradation reports and of their follow-up history.

use chrono::{DateTime, Duration, Utc};
use fieldnotes_schemas::{
    check_status_history, DegradationCategory, DegradationReport, DegradationStatus, FieldProblem,
    FieldRecord, RecordKind, StatusChange,
};
use serde_json::{json, Value};
use uuid::Uuid;
use DegradationStatus::{ActionTaken, Closed, Received, UnderAnalysis};

fn sample() -> Value {
    serde_json::from_str(include_str!("samples/degradation_report.json")).unwrap()
}

fn with(changes: Value) -> Value {
    let mut raw = sample();
    for (key, value) in changes.as_object().unwrap() {
        raw[key] = value.clone();
    }
    raw
}

fn problems_of(raw: &Value) -> Vec<FieldProblem> {
    match DegradationReport::from_raw(raw) {
        Ok(report) => panic!("expected problems, but it parsed: {report:?}"),
        Err(problems) => problems,
    }
}

fn problem(field: &str, reason: &str) -> FieldProblem {
    FieldProblem::new(field, reason)
}

#[test]
fn a_valid_degradation_report_parses() {
    let report = DegradationReport::from_raw(&sample()).unwrap();
    assert_eq!(DegradationReport::KIND, RecordKind::DegradationReport);
    assert_eq!(
        report.id(),
        Uuid::parse_str("8a5de3a1-5c28-4958-bb51-7b760a7491e7").unwrap()
    );
    assert_eq!(report.category, DegradationCategory::WasteDumping);
    // Written with a +02:00 offset on the phone, held in UTC.
    assert_eq!(
        report.observed_at,
        "2024-06-02T07:05:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(report.site.as_deref(), Some("Ruisseau des Planches"));
}

#[test]
fn a_degradation_report_round_trips_through_json() {
    let report = DegradationReport::from_raw(&sample()).unwrap();
    let written = serde_json::to_value(&report).unwrap();
    assert_eq!(written["category"], "waste_dumping");
    assert!(written.get("categoryDetail").is_none());
    assert_eq!(DegradationReport::from_raw(&written).unwrap(), report);
}

#[test]
fn every_category_has_its_documented_name() {
    for name in [
        "waste_dumping",
        "felled_or_damaged_trees_or_hedges",
        "water_pollution",
        "damaged_wetland",
        "pesticide_use",
        "harm_to_protected_species_or_habitat",
        "invasive_alien_species",
        "light_pollution",
    ] {
        let report = DegradationReport::from_raw(&with(json!({ "category": name })));
        assert_eq!(
            serde_json::to_value(report.unwrap().category).unwrap(),
            name
        );
    }
}

#[test]
fn unknown_category_is_refused() {
    let problems = problems_of(&with(json!({"category": "graffiti"})));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "category");
    assert!(
        problems[0]
            .reason
            .starts_with("must be one of \"waste_dumping\", "),
        "{problems:?}"
    );
    assert!(
        problems[0].reason.ends_with("\"other\" (got \"graffiti\")"),
        "{problems:?}"
    );
}

#[test]
fn other_category_requires_detail() {
    assert_eq!(
        problems_of(&with(json!({"category": "other"}))),
        vec![problem(
            "categoryDetail",
            "is required when category is \"other\""
        )]
    );
    assert_eq!(
        problems_of(&with(json!({"category": "other", "categoryDetail": "  "}))),
        vec![problem(
            "categoryDetail",
            "is required when category is \"other\""
        )]
    );
}

#[test]
fn other_category_with_detail_is_accepted() {
    let raw =
        with(json!({"category": "other", "categoryDetail": "Fence cutting a wildlife corridor"}));
    let report = DegradationReport::from_raw(&raw).unwrap();
    assert_eq!(report.category, DegradationCategory::Other);
}

#[test]
fn empty_description_is_refused() {
    assert_eq!(
        problems_of(&with(json!({"description": ""}))),
        vec![problem("description", "must not be empty")]
    );
}

#[test]
fn description_longer_than_10000_characters_is_refused() {
    assert_eq!(
        problems_of(&with(json!({"description": "x".repeat(10_001)}))),
        vec![problem(
            "description",
            "must be at most 10000 characters long (got 10001)"
        )]
    );
}

#[test]
fn more_than_20_photos_are_refused() {
    let photos: Vec<String> = (0..21).map(|i| format!("{i:064x}")).collect();
    assert_eq!(
        problems_of(&with(json!({"photos": photos}))),
        vec![problem("photos", "must hold at most 20 items (got 21)")]
    );
}

#[test]
fn observed_more_than_a_day_ahead_is_refused() {
    let ahead = Utc::now() + Duration::days(3);
    let problems = problems_of(&with(json!({ "observedAt": ahead })));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "observedAt");
}

#[test]
fn position_rules_are_those_of_sightings() {
    let mut fields: Vec<String> = problems_of(&with(json!({
        "decimalLatitude": -91,
        "decimalLongitude": 181,
        "coordinateUncertaintyInMeters": -5
    })))
    .into_iter()
    .map(|p| p.field)
    .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "coordinateUncertaintyInMeters",
            "decimalLatitude",
            "decimalLongitude"
        ]
    );
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let mut raw = with(json!({"category": 7, "photos": ["nope"], "description": ""}));
    raw.as_object_mut().unwrap().remove("observedAt");
    let mut fields: Vec<String> = problems_of(&raw).into_iter().map(|p| p.field).collect();
    fields.sort();
    assert_eq!(
        fields,
        ["category", "description", "observedAt", "photos[0]"]
    );
}

#[test]
fn unknown_extra_fields_are_ignored() {
    let raw = with(json!({"weather": "rainy"}));
    assert_eq!(
        DegradationReport::from_raw(&raw).unwrap(),
        DegradationReport::from_raw(&sample()).unwrap()
    );
}

fn at(minutes: i64) -> DateTime<Utc> {
    "2024-06-02T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minutes)
}

fn change(status: DegradationStatus, minutes: i64, reason: Option<&str>) -> StatusChange {
    StatusChange {
        status,
        reason: reason.map(str::to_owned),
        changed_by: Uuid::nil(),
        changed_at: at(minutes),
    }
}

#[test]
fn a_history_moving_forward_step_by_step_is_accepted() {
    let history = [
        change(Received, 0, None),
        change(UnderAnalysis, 60, None),
        change(ActionTaken, 120, Some("Rubble removed by the city")),
        change(Closed, 180, Some("Site checked clean")),
    ];
    assert_eq!(check_status_history(&history), vec![]);
}

#[test]
fn skipping_forward_is_allowed() {
    let history = [
        change(Received, 0, None),
        change(Closed, 10, Some("Duplicate of an earlier report")),
    ];
    assert_eq!(check_status_history(&history), vec![]);
}

#[test]
fn status_history_cannot_go_back() {
    let history = [
        change(Received, 0, None),
        change(ActionTaken, 10, None),
        change(UnderAnalysis, 20, None),
    ];
    assert_eq!(
        check_status_history(&history),
        vec![problem(
            "statusHistory[2].status",
            "cannot go back or stay: must move forward from \"action_taken\" \
             (got \"under_analysis\")"
        )]
    );
}

#[test]
fn status_history_cannot_repeat_a_status() {
    let history = [
        change(Received, 0, None),
        change(UnderAnalysis, 10, None),
        change(UnderAnalysis, 20, None),
    ];
    let problems = check_status_history(&history);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "statusHistory[2].status");
}

#[test]
fn status_history_must_start_with_received() {
    assert_eq!(
        check_status_history(&[change(UnderAnalysis, 0, None)]),
        vec![problem(
            "statusHistory[0].status",
            "must be \"received\", the first status (got \"under_analysis\")"
        )]
    );
    assert_eq!(
        check_status_history(&[]),
        vec![problem(
            "statusHistory",
            "must start with \"received\" (got no status at all)"
        )]
    );
}

#[test]
fn closing_requires_a_reason() {
    let history = [
        change(Received, 0, None),
        change(UnderAnalysis, 10, None),
        change(Closed, 20, Some(" ")),
    ];
    assert_eq!(
        check_status_history(&history),
        vec![problem(
            "statusHistory[2].reason",
            "is required when closing"
        )]
    );
}

#[test]
fn status_changes_cannot_go_back_in_time() {
    let history = [change(Received, 60, None), change(UnderAnalysis, 0, None)];
    assert_eq!(
        check_status_history(&history),
        vec![problem(
            "statusHistory[1].changedAt",
            "must not be before the previous change (2024-06-02T11:00:00+00:00) \
             (got 2024-06-02T10:00:00+00:00)"
        )]
    );
}

#[test]
fn every_history_problem_is_reported() {
    let history = [change(Closed, 60, None), change(Received, 0, None)];
    let fields: Vec<String> = check_status_history(&history)
        .into_iter()
        .map(|p| p.field)
        .collect();
    assert_eq!(
        fields,
        [
            "statusHistory[0].status",
            "statusHistory[0].reason",
            "statusHistory[1].status",
            "statusHistory[1].changedAt"
        ]
    );
}

#[test]
fn a_status_change_is_written_in_camel_case_with_snake_case_statuses() {
    let written = serde_json::to_value(change(UnderAnalysis, 0, None)).unwrap();
    assert_eq!(
        written,
        json!({
            "status": "under_analysis",
            "changedBy": "00000000-0000-0000-0000-000000000000",
            "changedAt": "2024-06-02T10:00:00Z"
        })
    );
    assert_eq!(
        serde_json::from_value::<StatusChange>(written).unwrap(),
        change(UnderAnalysis, 0, None)
    );
}
