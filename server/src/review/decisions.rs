//! Decisions on records: identification verification (sightings), follow-up
//! (degradation reports), approval (timesheet entries). One record or a
//! selection (ids, or a filter) in one transaction, all or nothing: the
//! first record that cannot take the decision fails the whole request,
//! named. Each record whose decision changes gets its row of history, and
//! its volunteer's review document is marked for publishing in the same
//! transaction (see [`super::publish`]).

use std::collections::BTreeSet;

use serde::Deserialize;
use sqlx::{PgPool, Postgres, QueryBuilder, Transaction};
use uuid::Uuid;

use crate::history::{self, HistoryRow};

use super::{
    filter::{Filter, APPROVAL_STATUSES, FOLLOW_UP_STATUSES, VERIFICATION_STATUSES},
    ReviewError,
};
use crate::inventory::kinds::Stored;
use schemas::RecordKind;

/// Records one decision takes at most.
pub const MAX_BULK: usize = 10_000;
/// Characters of a reason or comment.
pub const MAX_REASON_CHARS: usize = 2_000;

/// A decision, as a coordinator sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DecisionRequest {
    /// `verification`, `follow_up` or `approval`.
    pub decision: String,
    /// Verification: `0`–`6` (SINP); follow-up: `received`, `under_analysis`,
    /// `action_taken`, `closed`; approval: `approved`, `returned`.
    pub status: String,
    /// The comment, or why: required to return hours and to move a report.
    pub reason: Option<String>,
    /// The records, by id…
    pub records: Option<Vec<Uuid>>,
    /// …or every record the review table's filter selects.
    pub filter: Option<Filter>,
}

/// What a decision did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decided {
    /// Records whose decision changed (one history row each).
    pub changed: usize,
    /// Records that already had it.
    pub unchanged: usize,
    /// Volunteers whose review documents now lag: publish them.
    #[serde(skip)]
    pub volunteers: Vec<Uuid>,
}

/// The kinds of decision, what they apply to and what they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    Verification,
    FollowUp,
    Approval,
}

impl DecisionKind {
    fn parse(text: &str) -> Result<DecisionKind, ReviewError> {
        match text {
            "verification" => Ok(DecisionKind::Verification),
            "follow_up" => Ok(DecisionKind::FollowUp),
            "approval" => Ok(DecisionKind::Approval),
            other => Err(ReviewError::bad_request(
                "decision",
                format!("must be verification, follow_up or approval (got {other:?})"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Verification => "verification",
            DecisionKind::FollowUp => "follow_up",
            DecisionKind::Approval => "approval",
        }
    }

    fn record_kind(self) -> RecordKind {
        match self {
            DecisionKind::Verification => RecordKind::Sighting,
            DecisionKind::FollowUp => RecordKind::DegradationReport,
            DecisionKind::Approval => RecordKind::TimesheetEntry,
        }
    }

    fn statuses(self) -> &'static [&'static str] {
        match self {
            DecisionKind::Verification => &VERIFICATION_STATUSES,
            DecisionKind::FollowUp => &FOLLOW_UP_STATUSES,
            // `pending` is where hours start; a decision approves or returns them.
            DecisionKind::Approval => &APPROVAL_STATUSES[1..],
        }
    }

    /// The row column holding the current status, as text.
    fn current_status_sql(self) -> &'static str {
        match self {
            DecisionKind::Verification => "t.validation_status::text",
            DecisionKind::FollowUp => "t.status",
            DecisionKind::Approval => "t.approval_status",
        }
    }
}

/// The follow-up steps a report at `from` may move to, in their order: what
/// the review rows offer (`nextStatuses`), by the rule decisions apply.
pub fn follow_up_targets(from: &str) -> Vec<String> {
    FOLLOW_UP_STATUSES
        .iter()
        .filter(|to| follow_up_allowed(from, to))
        .map(|to| to.to_string())
        .collect()
}

/// Whether a degradation report may move from `from` to `to`: forward along
/// received → under analysis → action taken → closed, or back once closed
/// (reopened).
fn follow_up_allowed(from: &str, to: &str) -> bool {
    let step = |status: &str| FOLLOW_UP_STATUSES.iter().position(|s| *s == status);
    match (step(from), step(to)) {
        (Some(from), Some(to)) => to > from || (from == 3 && to < 3),
        _ => false,
    }
}

/// Takes `request` on records of `territory`, as `coordinator`.
pub async fn decide(
    pool: &PgPool,
    territory: Uuid,
    coordinator: Uuid,
    request: &DecisionRequest,
) -> Result<Decided, ReviewError> {
    let kind = DecisionKind::parse(&request.decision)?;
    if !kind.statuses().contains(&request.status.as_str()) {
        return Err(ReviewError::bad_request(
            "status",
            format!(
                "a {} is one of {} (got {:?})",
                kind.as_str(),
                kind.statuses().join(", "),
                request.status
            ),
        ));
    }
    let reason = request
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|reason| !reason.is_empty());
    if let Some(reason) = reason {
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(ReviewError::bad_request(
                "reason",
                format!("at most {MAX_REASON_CHARS} characters"),
            ));
        }
    }
    let reason_required = match kind {
        DecisionKind::FollowUp => Some("a report moves with a reason"),
        DecisionKind::Approval if request.status == "returned" => {
            Some("hours are returned to the volunteer with a reason")
        }
        _ => None,
    };
    if let (Some(why), None) = (reason_required, reason) {
        return Err(ReviewError::bad_request("reason", why));
    }

    let mut tx = pool.begin().await?;
    let targets = match (&request.records, &request.filter) {
        (Some(records), None) => by_ids(&mut tx, territory, kind, records).await?,
        (None, Some(filter)) => by_filter(&mut tx, territory, kind, filter).await?,
        _ => {
            return Err(ReviewError::bad_request(
                "records",
                "give either `records` (ids) or `filter`, not both",
            ))
        }
    };

    let mut changed = Vec::new();
    let mut unchanged = 0;
    for (index, target) in targets.iter().enumerate() {
        if target.status == request.status {
            unchanged += 1;
            continue;
        }
        if kind == DecisionKind::FollowUp && !follow_up_allowed(&target.status, &request.status) {
            return Err(ReviewError::conflict(
                &target.field(index, request.records.is_some()),
                format!(
                    "report {} is {}: it moves forward (received, under_analysis, \
                     action_taken, closed), or back once closed",
                    target.id, target.status
                ),
            ));
        }
        changed.push(target);
    }

    let ids: Vec<Uuid> = changed.iter().map(|t| t.id).collect();
    let owners: Vec<Uuid> = changed.iter().map(|t| t.volunteer).collect();
    sqlx::query(
        "INSERT INTO review_decisions (record_id, decision, territory_id, record_kind, \
           volunteer_id, status, reason, decided_by) \
         SELECT x.record, $3, $4, $5, x.volunteer, $6, $7, $8 \
         FROM unnest($1::uuid[], $2::uuid[]) AS x(record, volunteer) \
         ON CONFLICT (record_id, decision) DO UPDATE SET status = EXCLUDED.status, \
           reason = EXCLUDED.reason, decided_by = EXCLUDED.decided_by, decided_at = now(), \
           volunteer_id = EXCLUDED.volunteer_id",
    )
    .bind(&ids)
    .bind(&owners)
    .bind(kind.as_str())
    .bind(territory)
    .bind(kind.record_kind().as_str())
    .bind(&request.status)
    .bind(reason)
    .bind(coordinator)
    .execute(&mut *tx)
    .await?;
    let rows: Vec<serde_json::Value> = changed
        .iter()
        .map(|target| {
            let mut row = HistoryRow::new(
                territory,
                target.id,
                kind.record_kind().as_str(),
                kind.as_str(),
                coordinator,
            );
            row.status = Some(request.status.clone());
            row.previous = Some(target.status.clone());
            row.reason = reason.map(str::to_string);
            row.to_json()
        })
        .collect();
    if !rows.is_empty() {
        history::append(&mut tx, &rows).await?;
    }
    let volunteers: BTreeSet<Uuid> = owners.iter().copied().collect();
    let volunteers: Vec<Uuid> = volunteers.into_iter().collect();
    mark_for_publishing(&mut tx, territory, &volunteers).await?;
    tx.commit().await?;
    tracing::info!(
        %territory, %coordinator, decision = kind.as_str(), status = %request.status,
        changed = changed.len(), unchanged, "decision taken"
    );
    Ok(Decided {
        changed: changed.len(),
        unchanged,
        volunteers,
    })
}

/// One record a decision targets, locked, with its current status.
#[derive(sqlx::FromRow)]
struct Target {
    id: Uuid,
    volunteer: Uuid,
    status: String,
}

impl Target {
    /// How an error names this record: its place in `records`, or its id.
    fn field(&self, index: usize, by_ids: bool) -> String {
        if by_ids {
            format!("records[{index}]")
        } else {
            format!("filter: record {}", self.id)
        }
    }
}

async fn by_ids(
    tx: &mut Transaction<'_, Postgres>,
    territory: Uuid,
    kind: DecisionKind,
    records: &[Uuid],
) -> Result<Vec<Target>, ReviewError> {
    if records.is_empty() {
        return Err(ReviewError::bad_request("records", "names no record"));
    }
    if records.len() > MAX_BULK {
        return Err(ReviewError::bad_request(
            "records",
            format!(
                "{} records; one decision takes at most {MAX_BULK}",
                records.len()
            ),
        ));
    }
    let record_kind = kind.record_kind();
    let found: Vec<Target> = sqlx::query_as(&format!(
        "SELECT t.id, t.{volunteer} AS volunteer, {status} AS status FROM {table} t \
         WHERE t.territory_id = $1 AND t.id = ANY($2) ORDER BY t.id FOR UPDATE",
        volunteer = record_kind.volunteer_column(),
        status = kind.current_status_sql(),
        table = record_kind.table(),
    ))
    .bind(territory)
    .bind(records)
    .fetch_all(&mut **tx)
    .await?;
    let mut ordered = Vec::with_capacity(records.len());
    let mut seen = BTreeSet::new();
    for (index, id) in records.iter().enumerate() {
        if !seen.insert(*id) {
            return Err(ReviewError::bad_request(
                &format!("records[{index}]"),
                format!("{id} is listed twice"),
            ));
        }
        match found.iter().find(|target| target.id == *id) {
            Some(target) => ordered.push(Target {
                id: target.id,
                volunteer: target.volunteer,
                status: target.status.clone(),
            }),
            None => {
                return Err(ReviewError::unprocessable(
                    &format!("records[{index}]"),
                    format!(
                        "{id} is not a {} of territory {territory}; nothing was decided",
                        record_kind.as_str()
                    ),
                ))
            }
        }
    }
    Ok(ordered)
}

async fn by_filter(
    tx: &mut Transaction<'_, Postgres>,
    territory: Uuid,
    kind: DecisionKind,
    filter: &Filter,
) -> Result<Vec<Target>, ReviewError> {
    let record_kind = kind.record_kind();
    if filter.after.is_some() || filter.limit.is_some() {
        return Err(ReviewError::bad_request(
            "filter",
            "a decision applies to everything the filter selects: no `after` or `limit`",
        ));
    }
    let mut filter = filter.clone();
    match &filter.kind {
        Some(given) if given != record_kind.as_str() => {
            return Err(ReviewError::bad_request(
                "filter.kind",
                format!(
                    "a {} applies to {} records",
                    kind.as_str(),
                    record_kind.as_str()
                ),
            ))
        }
        _ => filter.kind = Some(record_kind.as_str().to_string()),
    }
    let selection = filter.check()?;
    let mut sql = QueryBuilder::new(format!(
        "SELECT t.id, t.{} AS volunteer, {} AS status",
        record_kind.volunteer_column(),
        kind.current_status_sql()
    ));
    selection.push_from_where(&mut sql, territory);
    sql.push(" ORDER BY t.id LIMIT ")
        .push_bind(MAX_BULK as i64 + 1)
        .push(" FOR UPDATE OF t");
    let targets: Vec<Target> = sql.build_query_as().fetch_all(&mut **tx).await?;
    if targets.len() > MAX_BULK {
        return Err(ReviewError::unprocessable(
            "filter",
            format!("selects more than {MAX_BULK} records; narrow it"),
        ));
    }
    if targets.is_empty() {
        return Err(ReviewError::unprocessable("filter", "selects no record"));
    }
    Ok(targets)
}

/// Marks the review documents of `volunteers` as lagging their decisions.
pub(crate) async fn mark_for_publishing(
    tx: &mut Transaction<'_, Postgres>,
    territory: Uuid,
    volunteers: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO review_outbox (territory_id, volunteer_id) \
         SELECT $1, v FROM unnest($2::uuid[]) AS v \
         ON CONFLICT (territory_id, volunteer_id) DO UPDATE \
           SET version = review_outbox.version + 1",
    )
    .bind(territory)
    .bind(volunteers)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{follow_up_allowed, follow_up_targets};

    #[test]
    fn a_report_moves_forward_or_is_reopened_once_closed() {
        assert!(follow_up_allowed("received", "under_analysis"));
        assert!(follow_up_allowed("received", "action_taken"));
        assert!(follow_up_allowed("action_taken", "closed"));
        assert!(follow_up_allowed("closed", "under_analysis"));
        assert!(follow_up_allowed("closed", "received"));
        assert!(!follow_up_allowed("action_taken", "received"));
        assert!(!follow_up_allowed("under_analysis", "received"));
        assert!(!follow_up_allowed("closed", "closed"));
    }

    #[test]
    fn the_targets_offered_are_the_allowed_moves() {
        assert_eq!(
            follow_up_targets("under_analysis"),
            ["action_taken", "closed"]
        );
        assert_eq!(
            follow_up_targets("closed"),
            ["received", "under_analysis", "action_taken"]
        );
        assert_eq!(
            follow_up_targets("received"),
            ["under_analysis", "action_taken", "closed"]
        );
    }
}
