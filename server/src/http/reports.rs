//! `/api/territories/{id}/reports/hours…` and `…/hourly-rates…`: the
//! volunteer-hours report a régie gives funders, issued once and fetched by
//! its hash as JSON, CSV or a printable HTML page; and the hourly rates it
//! values hours at. `crate::reports` does the work.
//!
//! Régie auditors and coordinators (and admins) issue and read reports:
//! issuing one changes no data, it records what was reported. Coordinators
//! set the rates.

use axum::{
    extract::{rejection::QueryRejection, Path, Query, State},
    http::{header, HeaderName, HeaderValue, Method},
    response::{IntoResponse, Response},
    Json,
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    error::{BODY_TOO_LARGE, UNAUTHENTICATED},
    extractor::{self, AuthUser, JsonBody},
    territories::require_territory,
    ApiError, AppState, Routes,
};
use crate::{
    auth::Role,
    reports::{
        hours::{self, IssuedReport, IssuedReportSummary, MAX_PERIOD_DAYS},
        rates::{self, HourlyRate},
    },
};

const REPORTERS: &[Role] = &[Role::Coordinator, Role::RegieAuditor];
const RATE_SETTERS: &[Role] = &[Role::Coordinator];
/// The header every rendering of a report carries its hash in.
const REPORT_SHA256: HeaderName = HeaderName::from_static("report-sha256");

pub fn routes() -> Routes {
    Routes::new()
        .route(Method::GET, "/api/territories/{id}/reports/hours", list)
        .route(Method::POST, "/api/territories/{id}/reports/hours", issue)
        .route(
            Method::GET,
            "/api/territories/{id}/reports/hours/{sha256}",
            fetch,
        )
        .route(
            Method::GET,
            "/api/territories/{id}/hourly-rates",
            list_rates,
        )
        .route(
            Method::PUT,
            "/api/territories/{id}/hourly-rates/{effective_from}",
            set_rate,
        )
}

/// The period of a report, both days included.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Period {
    from: NaiveDate,
    to: NaiveDate,
}

/// A report as issued (documentation only: its content is built in
/// `reports::hours`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct IssuedReportBody {
    /// SHA-256 (hex) of the report's canonical JSON (`report`, keys sorted,
    /// no whitespace): what a funder checks a copy against.
    sha256: String,
    /// `territory`, `period`, `issuedAt`, `issuedBy`, `rates`, `approved`
    /// (entries, minutes, hours, euros, unvaluedMinutes), `byVolunteer`,
    /// `byActivity`, `bySite`, `byMonth`, `pending` and `returned` (not
    /// counted: their total and entries), `withUnresolvedConflicts`.
    #[schema(value_type = Object)]
    report: Value,
}

fn json_report(report: IssuedReport) -> Json<Value> {
    Json(serde_json::json!({ "sha256": report.sha256, "report": report.content }))
}

/// `GET …/reports/hours`: the reports issued so far, newest first.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/reports/hours",
    operation_id = "hoursReports",
    tag = "reports",
    params(("id" = Uuid, Path, description = "The territory")),
    responses(
        (status = 200, description = "The hours reports issued in the territory, newest first (the 200 latest)", body = Vec<IssuedReportSummary>),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's régie auditors and coordinators read its reports", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
) -> Result<Json<Vec<IssuedReportSummary>>, ApiError> {
    user.require_role(territory, REPORTERS, "read the territory's reports")?;
    require_territory(&state.pool, territory).await?;
    Ok(Json(hours::list(&state.pool, territory).await?))
}

/// `POST …/reports/hours`: issues the report of a period.
#[utoipa::path(
    post,
    path = "/api/territories/{id}/reports/hours",
    operation_id = "issueHoursReport",
    tag = "reports",
    params(("id" = Uuid, Path, description = "The territory")),
    request_body = Period,
    responses(
        (status = 200, description = "The report, as issued and kept; its hash is in `sha256`", body = IssuedReportBody),
        (status = 400, description = "The period is malformed, reversed or longer than five years (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's régie auditors and coordinators issue its reports", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn issue(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
    JsonBody(period): JsonBody<Period>,
) -> Result<Json<Value>, ApiError> {
    user.require_role(territory, REPORTERS, "issue the territory's reports")?;
    require_territory(&state.pool, territory).await?;
    if period.to < period.from {
        return Err(ApiError::bad_request("to", "must not be before `from`"));
    }
    if (period.to - period.from).num_days() >= MAX_PERIOD_DAYS {
        return Err(ApiError::bad_request(
            "to",
            format!("a report covers at most {MAX_PERIOD_DAYS} days"),
        ));
    }
    let report = hours::issue(
        &state.pool,
        territory,
        period.from,
        period.to,
        user.0.account_id,
    )
    .await?;
    tracing::info!(%territory, sha256 = %report.sha256, "hours report issued");
    Ok(json_report(report))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct FormatQuery {
    /// `json` (the default), `csv` or `html` (a printable page).
    format: Option<String>,
    /// The printable page's language: `fr` (the default) or `en`.
    lang: Option<String>,
}

/// `GET …/reports/hours/{sha256}`: a report issued earlier, as it was.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/reports/hours/{sha256}",
    operation_id = "hoursReport",
    tag = "reports",
    params(
        ("id" = Uuid, Path, description = "The territory"),
        ("sha256" = String, Path, description = "The report's hash, as printed on it"),
        FormatQuery,
    ),
    responses(
        (status = 200, description = "The report as issued: JSON, CSV (`section` column, the hash on the last row) or a printable HTML page (in French unless `lang=en`, labels rather than codes); every rendering carries the hash in `Report-Sha256`", content(
            (IssuedReportBody = "application/json"),
            (String = "text/csv"),
            (String = "text/html"),
        )),
        (status = 400, description = "The hash is not a SHA-256 in hex, or `format` or `lang` is unknown (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's régie auditors and coordinators read its reports", body = ApiError),
        (status = 404, description = "The service issued no report with this hash for this territory", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn fetch(
    State(state): State<AppState>,
    user: AuthUser,
    Path((territory, sha256)): Path<(Uuid, String)>,
    query: Result<Query<FormatQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    user.require_role(territory, REPORTERS, "read the territory's reports")?;
    let query = extractor::query(query)?;
    let sha256 = sha256.to_ascii_lowercase();
    if !extractor::is_sha256_hex(&sha256) {
        return Err(ApiError::bad_request(
            "sha256",
            "must be a SHA-256 in hex (64 characters)",
        ));
    }
    let lang = hours::Language::from_code(query.lang.as_deref().unwrap_or("fr"))
        .ok_or_else(|| ApiError::bad_request("lang", "must be fr or en"))?;
    let format = query.format.as_deref().unwrap_or("json");
    if !["json", "csv", "html"].contains(&format) {
        return Err(ApiError::bad_request("format", "must be json, csv or html"));
    }
    let report = hours::fetch(&state.pool, territory, &sha256)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("report {sha256} of territory {territory}")))?;
    // Hex, checked above: always a valid header value.
    let hash = HeaderValue::from_str(&report.sha256)
        .unwrap_or_else(|_| HeaderValue::from_static("unreadable"));
    let file = |extension: &str| {
        HeaderValue::from_str(&format!(
            "attachment; filename=\"volunteer-hours-{}.{extension}\"",
            &report.sha256[..12]
        ))
        .unwrap_or(HeaderValue::from_static("attachment"))
    };
    Ok(match format {
        "csv" => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8"),
                ),
                (header::CONTENT_DISPOSITION, file("csv")),
                (REPORT_SHA256, hash),
            ],
            hours::csv(&report),
        )
            .into_response(),
        "html" => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
                ),
                (REPORT_SHA256, hash),
            ],
            hours::html(&report, lang),
        )
            .into_response(),
        _ => ([(REPORT_SHA256, hash)], json_report(report)).into_response(),
    })
}

/// `GET …/hourly-rates`.
#[utoipa::path(
    get,
    path = "/api/territories/{id}/hourly-rates",
    operation_id = "hourlyRates",
    tag = "reports",
    params(("id" = Uuid, Path, description = "The territory")),
    responses(
        (status = 200, description = "The rates, oldest first; each is in force until the next", body = Vec<HourlyRate>),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's régie auditors and coordinators read them", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn list_rates(
    State(state): State<AppState>,
    user: AuthUser,
    Path(territory): Path<Uuid>,
) -> Result<Json<Vec<HourlyRate>>, ApiError> {
    user.require_role(territory, REPORTERS, "read the hourly rates")?;
    require_territory(&state.pool, territory).await?;
    Ok(Json(rates::list(&state.pool, territory).await?))
}

/// A rate to set: in euros, as typed ("11.88", or "11,88" as French write it).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewRate {
    /// Euros per hour, with at most two decimals after a point or a comma
    /// ("11.88", "11,88").
    euro_per_hour: String,
    /// `smic` or `set`.
    basis: String,
    note: Option<String>,
}

/// "11.88" or "11,88" → 1188 cents; None unless a positive amount with ≤ 2
/// decimals.
fn cents(euros: &str) -> Option<i32> {
    let (whole, fraction) = euros
        .trim()
        .split_once(['.', ','])
        .unwrap_or((euros.trim(), ""));
    if whole.is_empty()
        || whole.len() > 4
        || fraction.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let cents = whole.parse::<i32>().ok()? * 100 + format!("{fraction:0<2}").parse::<i32>().ok()?;
    (cents > 0).then_some(cents)
}

/// `PUT …/hourly-rates/{effective_from}`: the rate in force from that day.
#[utoipa::path(
    put,
    path = "/api/territories/{id}/hourly-rates/{effective_from}",
    operation_id = "setHourlyRate",
    tag = "reports",
    params(
        ("id" = Uuid, Path, description = "The territory"),
        ("effective_from" = NaiveDate, Path, description = "The first day the rate applies (YYYY-MM-DD)"),
    ),
    request_body = NewRate,
    responses(
        (status = 200, description = "Every rate now", body = Vec<HourlyRate>),
        (status = 400, description = "The date, amount or basis is not accepted (named in `field`)", body = ApiError),
        (status = 401, description = UNAUTHENTICATED, body = ApiError),
        (status = 403, description = "Only the territory's coordinators set its rates", body = ApiError),
        (status = 404, description = "No such territory", body = ApiError),
        (status = 413, description = BODY_TOO_LARGE, body = ApiError),
    ),
    security(("bearer" = [])),
)]
async fn set_rate(
    State(state): State<AppState>,
    user: AuthUser,
    Path((territory, effective_from)): Path<(Uuid, String)>,
    JsonBody(rate): JsonBody<NewRate>,
) -> Result<Json<Vec<HourlyRate>>, ApiError> {
    user.require_role(territory, RATE_SETTERS, "set the hourly rates")?;
    require_territory(&state.pool, territory).await?;
    let effective_from = NaiveDate::parse_from_str(&effective_from, "%Y-%m-%d")
        .map_err(|_| ApiError::bad_request("effective_from", "must be a date, YYYY-MM-DD"))?;
    let cents_per_hour = cents(&rate.euro_per_hour)
        .filter(|&cents| cents <= 100_000)
        .ok_or_else(|| {
            ApiError::bad_request(
                "euroPerHour",
                "must be an amount in euros above 0 and at most 1000, with at most two decimals (\"11.88\" or \"11,88\")",
            )
        })?;
    if !["smic", "set"].contains(&rate.basis.as_str()) {
        return Err(ApiError::bad_request("basis", "must be smic or set"));
    }
    if rate
        .note
        .as_ref()
        .is_some_and(|note| note.chars().count() > 200)
    {
        return Err(ApiError::bad_request("note", "at most 200 characters"));
    }
    let rate = HourlyRate {
        effective_from,
        cents_per_hour,
        basis: rate.basis,
        note: rate.note.filter(|note| !note.trim().is_empty()),
    };
    rates::set(&state.pool, territory, &rate, user.0.account_id).await?;
    Ok(Json(rates::list(&state.pool, territory).await?))
}

#[cfg(test)]
mod tests {
    use super::cents;

    #[test]
    fn amounts_in_euros_become_cents() {
        assert_eq!(cents("11.88"), Some(1188));
        assert_eq!(cents(" 11,88 "), Some(1188));
        assert_eq!(cents("11,5"), Some(1150));
        assert_eq!(cents("11,8,8"), None);
        assert_eq!(cents("1,234"), None);
        assert_eq!(cents("12"), Some(1200));
        assert_eq!(cents("12.5"), Some(1250));
        assert_eq!(cents("0"), None);
        assert_eq!(cents("-1"), None);
        assert_eq!(cents("1.234"), None);
        assert_eq!(cents("abc"), None);
        assert_eq!(cents(""), None);
    }
}
