//! The volunteer-hours report of one territory and period.
//!
//! Only approved entries are counted; entries awaiting a decision and
//! entries returned to their volunteer are listed apart, with what they
//! would add. Each counted entry is valued at the rate in force on its work
//! date (`hourly_rates`); an entry before any rate counts in hours and in
//! `unvaluedMinutes`, not in euros. An entry two phones edited concurrently
//! counts with the value the inventory holds (automerge's winner, or the
//! coordinator's resolution) and is named in `withUnresolvedConflicts` while
//! its conflict stands.
//!
//! Issuing a report stores its canonical JSON and SHA-256 in
//! `issued_reports` and appends a `report_issued` entry to the audit trail,
//! in one transaction; renderings (CSV, HTML) are made from what was stored,
//! so they all carry the hash of the same content.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::{canonical_json, euros, hours, sha256_hex};
use crate::{export::spreadsheet_safe, markup::escape};

/// The longest period one report covers.
pub const MAX_PERIOD_DAYS: i64 = 366 * 5;

/// A report as issued: its content and the SHA-256 of its canonical JSON.
#[derive(Debug, Clone)]
pub struct IssuedReport {
    pub sha256: String,
    pub content: Value,
}

#[derive(sqlx::FromRow)]
struct Entry {
    id: Uuid,
    volunteer_id: Uuid,
    volunteer_name: Option<String>,
    work_date: NaiveDate,
    duration_minutes: i32,
    activity: String,
    site: Option<String>,
    approval_status: String,
    approval_reason: Option<String>,
    has_conflicts: bool,
    cents_per_hour: Option<i32>,
}

/// Sums of one group of approved entries.
#[derive(Default)]
struct Total {
    entries: i64,
    minutes: i64,
    /// Σ minutes × cents per hour, divided by 60 only when shown.
    cent_minutes: i64,
    unvalued_minutes: i64,
}

impl Total {
    fn add(&mut self, entry: &Entry) {
        let minutes = i64::from(entry.duration_minutes);
        self.entries += 1;
        self.minutes += minutes;
        match entry.cents_per_hour {
            Some(rate) => self.cent_minutes += minutes * i64::from(rate),
            None => self.unvalued_minutes += minutes,
        }
    }

    fn json(&self, extra: Value) -> Value {
        let mut value = json!({
            "entries": self.entries,
            "minutes": self.minutes,
            "hours": hours(self.minutes),
            "euros": euros((self.cent_minutes + 30) / 60),
            "unvaluedMinutes": self.unvalued_minutes,
        });
        if let (Value::Object(map), Value::Object(extra)) = (&mut value, extra) {
            map.extend(extra);
        }
        value
    }
}

fn volunteer_name(entry: &Entry) -> String {
    entry
        .volunteer_name
        .clone()
        .unwrap_or_else(|| entry.volunteer_id.to_string())
}

fn listed(entry: &Entry) -> Value {
    json!({
        "entryId": entry.id,
        "volunteerId": entry.volunteer_id,
        "volunteer": volunteer_name(entry),
        "workDate": entry.work_date,
        "minutes": entry.duration_minutes,
        "activity": entry.activity,
        "site": entry.site,
        "reason": entry.approval_reason,
    })
}

/// Builds the report of `territory` from `from` to `to` (both included),
/// stores it and audits its issue. The caller checked the period.
pub async fn issue(
    pool: &PgPool,
    territory: Uuid,
    from: NaiveDate,
    to: NaiveDate,
    issued_by: Uuid,
) -> sqlx::Result<IssuedReport> {
    // One snapshot: the entries, the rates and the names agree.
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    let entries: Vec<Entry> = sqlx::query_as(
        "SELECT t.id, t.volunteer_id, a.display_name AS volunteer_name, t.work_date, \
                t.duration_minutes, t.activity, t.site, t.approval_status, t.approval_reason, \
                t.has_conflicts, r.cents_per_hour \
         FROM timesheet_entries t \
         LEFT JOIN accounts a ON a.id = t.volunteer_id \
         LEFT JOIN LATERAL (SELECT h.cents_per_hour FROM hourly_rates h \
             WHERE h.territory_id = t.territory_id AND h.effective_from <= t.work_date \
             ORDER BY h.effective_from DESC LIMIT 1) r ON true \
         WHERE t.territory_id = $1 AND t.work_date BETWEEN $2 AND $3 \
         ORDER BY t.work_date, t.id",
    )
    .bind(territory)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *tx)
    .await?;
    let (territory_name, issuer_name): (String, Option<String>) = sqlx::query_as(
        "SELECT t.name, (SELECT display_name FROM accounts WHERE id = $2) \
         FROM territories t WHERE t.id = $1",
    )
    .bind(territory)
    .bind(issued_by)
    .fetch_one(&mut *tx)
    .await?;
    let rates: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('effectiveFrom', effective_from, 'centsPerHour', cents_per_hour, \
                'euroPerHour', to_char(cents_per_hour / 100.0, 'FM999990.00'), 'basis', basis, 'note', note) \
         FROM hourly_rates WHERE territory_id = $1 AND effective_from <= $2 \
         ORDER BY effective_from",
    )
    .bind(territory)
    .bind(to)
    .fetch_all(&mut *tx)
    .await?;
    // To the millisecond, so that the time the JSON shows is the one stored.
    let issued_at: DateTime<Utc> = sqlx::query_scalar("SELECT date_trunc('milliseconds', now())")
        .fetch_one(&mut *tx)
        .await?;

    let content = build(
        territory,
        &territory_name,
        from,
        to,
        issued_at,
        issued_by,
        issuer_name,
        rates,
        &entries,
    );
    let text = canonical_json(&content);
    let sha256 = sha256_hex(&text);
    sqlx::query(
        "INSERT INTO issued_reports (sha256, territory_id, kind, period_from, period_to, issued_by, issued_at, content) \
         VALUES ($1, $2, 'hours', $3, $4, $5, $6, $7)",
    )
    .bind(&sha256)
    .bind(territory)
    .bind(from)
    .bind(to)
    .bind(issued_by)
    .bind(issued_at)
    .bind(&text)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO audit_pending (territory_id, action, actor_id, detail) \
         VALUES ($1, 'report_issued', $2, jsonb_build_object('kind', 'hours', 'sha256', $3::text, \
                 'from', $4::date, 'to', $5::date))",
    )
    .bind(territory)
    .bind(issued_by)
    .bind(&sha256)
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(IssuedReport { sha256, content })
}

#[allow(clippy::too_many_arguments)]
fn build(
    territory: Uuid,
    territory_name: &str,
    from: NaiveDate,
    to: NaiveDate,
    issued_at: DateTime<Utc>,
    issued_by: Uuid,
    issuer_name: Option<String>,
    rates: Vec<Value>,
    entries: &[Entry],
) -> Value {
    let mut total = Total::default();
    let mut by_volunteer: BTreeMap<(String, Uuid), Total> = BTreeMap::new();
    let mut by_activity: BTreeMap<&str, Total> = BTreeMap::new();
    let mut by_site: BTreeMap<Option<&str>, Total> = BTreeMap::new();
    let mut by_month: BTreeMap<String, Total> = BTreeMap::new();
    let (mut pending, mut returned, mut conflicted) = (Vec::new(), Vec::new(), Vec::new());
    let (mut pending_total, mut returned_total) = (Total::default(), Total::default());
    for entry in entries {
        match entry.approval_status.as_str() {
            "approved" => {
                total.add(entry);
                by_volunteer
                    .entry((volunteer_name(entry), entry.volunteer_id))
                    .or_default()
                    .add(entry);
                by_activity.entry(&entry.activity).or_default().add(entry);
                by_site.entry(entry.site.as_deref()).or_default().add(entry);
                let month = format!("{}-{:02}", entry.work_date.year(), entry.work_date.month());
                by_month.entry(month).or_default().add(entry);
                if entry.has_conflicts {
                    conflicted.push(listed(entry));
                }
            }
            "returned" => {
                returned_total.add(entry);
                returned.push(listed(entry));
            }
            _ => {
                pending_total.add(entry);
                pending.push(listed(entry));
            }
        }
    }
    json!({
        "kind": "volunteer-hours",
        "territory": { "id": territory, "name": territory_name },
        "period": { "from": from, "to": to },
        "issuedAt": issued_at,
        "issuedBy": { "id": issued_by, "name": issuer_name },
        "rates": rates,
        "approved": total.json(json!({})),
        "byVolunteer": by_volunteer.iter().map(|((name, id), t)| t.json(json!({"volunteerId": id, "volunteer": name}))).collect::<Vec<_>>(),
        "byActivity": by_activity.iter().map(|(activity, t)| t.json(json!({"activity": activity}))).collect::<Vec<_>>(),
        "bySite": by_site.iter().map(|(site, t)| t.json(json!({"site": site}))).collect::<Vec<_>>(),
        "byMonth": by_month.iter().map(|(month, t)| t.json(json!({"month": month}))).collect::<Vec<_>>(),
        "pending": { "total": pending_total.json(json!({})), "entries": pending },
        "returned": { "total": returned_total.json(json!({})), "entries": returned },
        "withUnresolvedConflicts": conflicted,
    })
}

/// Reports one listing gives at most.
pub const LISTED_REPORTS: i64 = 200;

/// A report issued earlier, as listed: what it covers, when and by whom.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct IssuedReportSummary {
    /// Its hash: how it is fetched and checked.
    pub sha256: String,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    pub issued_at: DateTime<Utc>,
    pub issued_by: Uuid,
    pub issued_by_name: Option<String>,
}

/// The hours reports issued in `territory`, newest first (at most [`LISTED_REPORTS`]).
pub async fn list(pool: &PgPool, territory: Uuid) -> sqlx::Result<Vec<IssuedReportSummary>> {
    sqlx::query_as(
        "SELECT r.sha256, r.period_from, r.period_to, r.issued_at, r.issued_by, \
                a.display_name AS issued_by_name \
         FROM issued_reports r LEFT JOIN accounts a ON a.id = r.issued_by \
         WHERE r.territory_id = $1 AND r.kind = 'hours' \
         ORDER BY r.issued_at DESC, r.sha256 LIMIT $2",
    )
    .bind(territory)
    .bind(LISTED_REPORTS)
    .fetch_all(pool)
    .await
}

/// A report issued in `territory` whose hash is `sha256`, as it was issued.
pub async fn fetch(
    pool: &PgPool,
    territory: Uuid,
    sha256: &str,
) -> sqlx::Result<Option<IssuedReport>> {
    let content: Option<String> = sqlx::query_scalar(
        "SELECT content FROM issued_reports WHERE territory_id = $1 AND sha256 = $2",
    )
    .bind(territory)
    .bind(sha256)
    .fetch_optional(pool)
    .await?;
    Ok(content.and_then(|text| {
        // Stored by `issue`: its hash is the key; a row whose text no longer
        // hashes to it was rewritten and is not answered as issued.
        (sha256_hex(&text) == sha256).then(|| IssuedReport {
            sha256: sha256.to_string(),
            content: serde_json::from_str(&text).unwrap_or(Value::Null),
        })
    }))
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The report as one CSV table: a `section` column (`total`, `volunteer`,
/// `activity`, `site`, `month`, `pending`, `returned`, `report`) and the
/// same columns for every row; the last row carries the hash.
pub fn csv(report: &IssuedReport) -> Vec<u8> {
    let mut out = ::csv::Writer::from_writer(Vec::new());
    let c = &report.content;
    let header = [
        "section",
        "key",
        "label",
        "entries",
        "minutes",
        "hours",
        "euros",
        "unvalued_minutes",
        "work_date",
        "reason",
    ];
    let mut rows: Vec<[String; 10]> = Vec::new();
    let group = |section: &str, key: String, label: String, t: &Value| -> [String; 10] {
        [
            section.to_string(),
            key,
            label,
            text(&t["entries"]),
            text(&t["minutes"]),
            text(&t["hours"]),
            text(&t["euros"]),
            text(&t["unvaluedMinutes"]),
            String::new(),
            String::new(),
        ]
    };
    rows.push(group(
        "total",
        format!(
            "{}..{}",
            text(&c["period"]["from"]),
            text(&c["period"]["to"])
        ),
        text(&c["territory"]["name"]),
        &c["approved"],
    ));
    for t in c["byVolunteer"].as_array().into_iter().flatten() {
        rows.push(group(
            "volunteer",
            text(&t["volunteerId"]),
            text(&t["volunteer"]),
            t,
        ));
    }
    for t in c["byActivity"].as_array().into_iter().flatten() {
        rows.push(group("activity", text(&t["activity"]), String::new(), t));
    }
    for t in c["bySite"].as_array().into_iter().flatten() {
        rows.push(group("site", text(&t["site"]), String::new(), t));
    }
    for t in c["byMonth"].as_array().into_iter().flatten() {
        rows.push(group("month", text(&t["month"]), String::new(), t));
    }
    for section in ["pending", "returned"] {
        for e in c[section]["entries"].as_array().into_iter().flatten() {
            rows.push([
                section.to_string(),
                text(&e["entryId"]),
                text(&e["volunteer"]),
                "1".into(),
                text(&e["minutes"]),
                e["minutes"].as_i64().map(hours).unwrap_or_default(),
                String::new(),
                String::new(),
                text(&e["workDate"]),
                text(&e["reason"]),
            ]);
        }
    }
    rows.push([
        "report".into(),
        "sha256".into(),
        report.sha256.clone(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        text(&c["issuedAt"]),
        String::new(),
    ]);
    // Writing to a Vec cannot fail.
    out.write_record(header).ok();
    for row in rows {
        // Names, sites and reasons are volunteers' and coordinators' text.
        out.write_record(row.iter().map(|cell| spreadsheet_safe(cell).into_owned()))
            .ok();
    }
    out.into_inner().unwrap_or_default()
}

/// The language a printable report is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    French,
    English,
}

impl Language {
    /// `fr` or `en`; None for any other code.
    pub fn from_code(code: &str) -> Option<Language> {
        match code {
            "fr" => Some(Language::French),
            "en" => Some(Language::English),
            _ => None,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Language::French => "fr",
            Language::English => "en",
        }
    }

    /// The text of `key` in this language.
    fn text(self, key: &str) -> &'static str {
        let (fr, en) = match key {
            "title" => ("Heures bénévoles", "Volunteer hours"),
            "entries" => ("Saisies", "Entries"),
            "hours" => ("Heures", "Hours"),
            "value" => ("Valeur (€)", "Value (€)"),
            "date" => ("Jour", "Date"),
            "volunteer" => ("Bénévole", "Volunteer"),
            "activity" => ("Activité", "Activity"),
            "site" => ("Site", "Site"),
            "month" => ("Mois", "Month"),
            "reason" => ("Motif", "Reason"),
            "none" => ("Aucune", "None"),
            "no_site" => ("(sans site)", "(no site)"),
            "by_volunteer" => ("Par bénévole", "By volunteer"),
            "by_activity" => ("Par activité", "By activity"),
            "by_site" => ("Par site", "By site"),
            "by_month" => ("Par mois", "By month"),
            "pending" => (
                "En attente d’approbation (non comptées)",
                "Awaiting approval (not counted)",
            ),
            "returned" => (
                "Renvoyées au bénévole (non comptées)",
                "Returned to the volunteer (not counted)",
            ),
            "rates" => ("Taux horaires", "Hourly rates"),
            "smic" => ("SMIC", "SMIC"),
            "set" => ("taux fixé", "set rate"),
            "no_rate" => (
                "Aucun taux horaire pour cette période : les heures ne sont pas valorisées.",
                "No hourly rate is set for this period: hours are not valued.",
            ),
            "check" => ("Contrôle de ce rapport", "Checking this report"),
            "sha" => ("Empreinte SHA-256 de ce rapport :", "SHA-256 of this report:"),
            "check_how" => (
                "Le service conserve chaque rapport émis. La régie ou la coordination du territoire \
                 peut retrouver celui-ci par son empreinte et le comparer à cette copie :",
                "The service keeps every report it issued. The territory's régie or coordinators \
                 can fetch this one by its hash and compare it with this copy:",
            ),
            "check_trail" => (
                "L’émission est aussi inscrite au journal d’audit du territoire.",
                "The issue is also recorded in the territory's audit trail.",
            ),
            _ => ("", ""),
        };
        match self {
            Language::French => fr,
            Language::English => en,
        }
    }

    /// An activity's label (the web apps' vocabulary), its code when unknown.
    fn activity(self, code: &str) -> String {
        let (fr, en) = match code {
            "field_survey" => ("Inventaire de terrain", "Field survey"),
            "planting" => ("Plantation", "Planting"),
            "clean_up" => ("Nettoyage", "Clean-up"),
            "data_entry" => ("Saisie de données", "Data entry"),
            "training" => ("Formation", "Training"),
            "meeting" => ("Réunion", "Meeting"),
            "awareness_event" => ("Sensibilisation", "Awareness event"),
            "other" => ("Autre", "Other"),
            unknown => (unknown, unknown),
        };
        match self {
            Language::French => fr,
            Language::English => en,
        }
        .to_string()
    }

    /// A decimal as written in this language ("3.50" → "3,50" in French).
    fn number(self, value: &Value) -> String {
        let text = text(value);
        match self {
            Language::French => text.replace('.', ","),
            Language::English => text,
        }
    }

    /// A day (`YYYY-MM-DD`): "01/05/2026" in French, as is in English.
    fn day(self, value: &Value) -> String {
        let text = text(value);
        match (self, NaiveDate::parse_from_str(&text, "%Y-%m-%d")) {
            (Language::French, Ok(day)) => day.format("%d/%m/%Y").to_string(),
            _ => text,
        }
    }

    /// A month (`YYYY-MM`) in words: "mai 2026", "May 2026".
    fn month(self, value: &Value) -> String {
        const FR: [&str; 12] = [
            "janvier",
            "février",
            "mars",
            "avril",
            "mai",
            "juin",
            "juillet",
            "août",
            "septembre",
            "octobre",
            "novembre",
            "décembre",
        ];
        const EN: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let text = text(value);
        let parsed = text
            .split_once('-')
            .and_then(|(year, month)| Some((year, month.parse::<usize>().ok()?)))
            .filter(|(_, month)| (1..=12).contains(month));
        match parsed {
            Some((year, month)) => {
                let names = if self == Language::French { FR } else { EN };
                format!("{} {year}", names[month - 1])
            }
            None => text,
        }
    }
}

fn html_table(
    lang: Language,
    title: &str,
    key: &str,
    rows: &[Value],
    label: impl Fn(&Value) -> String,
) -> String {
    let mut html = format!(
        "<h2>{}</h2>\n<table>\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
         <th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead>\n<tbody>\n",
        escape(lang.text(title)),
        escape(lang.text(key)),
        lang.text("entries"),
        lang.text("hours"),
        lang.text("value"),
    );
    for row in rows {
        html.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&label(row)),
            escape(&text(&row["entries"])),
            escape(&lang.number(&row["hours"])),
            escape(&lang.number(&row["euros"])),
        ));
    }
    html.push_str("</tbody>\n</table>\n");
    html
}

fn entry_table(lang: Language, title: &str, entries: &[Value]) -> String {
    let mut html = format!(
        "<h2>{}</h2>\n<table>\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
         <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead>\n<tbody>\n",
        escape(lang.text(title)),
        lang.text("date"),
        lang.text("volunteer"),
        lang.text("activity"),
        lang.text("hours"),
        lang.text("reason"),
    );
    if entries.is_empty() {
        html.push_str(&format!(
            "<tr><td colspan=\"5\">{}</td></tr>\n",
            lang.text("none")
        ));
    }
    for e in entries {
        let hours = e["minutes"]
            .as_i64()
            .map(|minutes| lang.number(&Value::String(hours(minutes))))
            .unwrap_or_default();
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&lang.day(&e["workDate"])),
            escape(&text(&e["volunteer"])),
            escape(&lang.activity(&text(&e["activity"]))),
            escape(&hours),
            escape(&text(&e["reason"])),
        ));
    }
    html.push_str("</tbody>\n</table>\n");
    html
}

/// A printable page (A4, no script, no outside resource) of the report in
/// `lang`, with labels rather than codes, its hash and how to check it.
pub fn html(report: &IssuedReport, lang: Language) -> String {
    let c = &report.content;
    let rows = |key: &str| c[key].as_array().cloned().unwrap_or_default();
    let territory = text(&c["territory"]["name"]);
    let french = lang == Language::French;
    let mut rates = String::new();
    for rate in rows("rates") {
        let from = escape(&lang.day(&rate["effectiveFrom"]));
        let euros = escape(&lang.number(&rate["euroPerHour"]));
        let basis = lang.text(if rate["basis"] == "smic" {
            "smic"
        } else {
            "set"
        });
        let note = rate["note"]
            .as_str()
            .map(|note| format!(" — {}", escape(note)))
            .unwrap_or_default();
        rates.push_str(&if french {
            format!("<li>À partir du {from} : {euros} € de l’heure ({basis}){note}</li>\n")
        } else {
            format!("<li>From {from}: {euros} € per hour ({basis}){note}</li>\n")
        });
    }
    if rates.is_empty() {
        rates.push_str(&format!("<li>{}</li>\n", lang.text("no_rate")));
    }
    let approved = &c["approved"];
    let (from, to) = (
        escape(&lang.day(&c["period"]["from"])),
        escape(&lang.day(&c["period"]["to"])),
    );
    let (issued_at, issuer) = (
        escape(&text(&c["issuedAt"])),
        escape(&text(&c["issuedBy"]["name"])),
    );
    let (entries, approved_hours, euros) = (
        escape(&text(&approved["entries"])),
        escape(&lang.number(&approved["hours"])),
        escape(&lang.number(&approved["euros"])),
    );
    let unvalued = match approved["unvaluedMinutes"].as_i64() {
        Some(minutes) if minutes > 0 => {
            let h = lang.number(&Value::String(hours(minutes)));
            if french {
                format!(" ({h} h avant tout taux horaire, non valorisées)")
            } else {
                format!(" ({h} hours before any rate, not valued)")
            }
        }
        _ => String::new(),
    };
    let (period, total) = if french {
        (
            format!("Période du {from} au {to} (inclus). Émis le {issued_at} par {issuer}."),
            format!(
                "Heures approuvées : {entries} saisies, {approved_hours} h, valorisées à {euros} €{unvalued}."
            ),
        )
    } else {
        (
            format!("Period: {from} to {to} (both included). Issued {issued_at} by {issuer}."),
            format!(
                "Approved: {entries} entries, {approved_hours} hours, valued at {euros} €{unvalued}."
            ),
        )
    };
    format!(
        "<!doctype html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title} — {territory}</title>\n<style>\n\
         @page {{ size: A4; margin: 18mm; }}\n\
         body {{ font: 11pt/1.4 system-ui, sans-serif; color: #111; max-width: 50em; margin: 1em auto; }}\n\
         table {{ border-collapse: collapse; width: 100%; margin-bottom: 1.2em; }}\n\
         th, td {{ border: 1px solid #999; padding: 0.2em 0.5em; text-align: left; }}\n\
         td:nth-child(n+2) {{ font-variant-numeric: tabular-nums; }}\n\
         .hash, code {{ font-family: monospace; overflow-wrap: anywhere; word-break: break-all; }}\n\
         h2 {{ break-after: avoid; }} table {{ break-inside: auto; }} tr {{ break-inside: avoid; }}\n\
         </style>\n</head>\n<body>\n<main>\n\
         <h1>{title} — {territory}</h1>\n\
         <p>{period}</p>\n\
         <p><strong>{total}</strong></p>\n\
         <h2>{rates_title}</h2>\n<ul>\n{rates}</ul>\n\
         {by_volunteer}{by_activity}{by_site}{by_month}\
         {pending}{returned}\
         <h2>{check}</h2>\n\
         <p>{sha_label} <span class=\"hash\" id=\"report-sha256\">{sha}</span></p>\n\
         <p>{check_how}</p>\n\
         <p><code>GET /api/territories/{territory_id}/reports/hours/{sha}</code></p>\n\
         <p>{check_trail}</p>\n\
         </main>\n</body>\n</html>\n",
        code = lang.code(),
        title = lang.text("title"),
        territory = escape(&territory),
        territory_id = escape(&text(&c["territory"]["id"])),
        rates_title = lang.text("rates"),
        by_volunteer = html_table(lang, "by_volunteer", "volunteer", &rows("byVolunteer"), |r| text(&r["volunteer"])),
        by_activity = html_table(lang, "by_activity", "activity", &rows("byActivity"), |r| lang.activity(&text(&r["activity"]))),
        by_site = html_table(lang, "by_site", "site", &rows("bySite"), |r| {
            r["site"].as_str().map(str::to_string).unwrap_or_else(|| lang.text("no_site").into())
        }),
        by_month = html_table(lang, "by_month", "month", &rows("byMonth"), |r| lang.month(&r["month"])),
        pending = entry_table(
            lang,
            "pending",
            c["pending"]["entries"].as_array().map(Vec::as_slice).unwrap_or_default()
        ),
        returned = entry_table(
            lang,
            "returned",
            c["returned"]["entries"].as_array().map(Vec::as_slice).unwrap_or_default()
        ),
        check = lang.text("check"),
        sha_label = lang.text("sha"),
        check_how = lang.text("check_how"),
        check_trail = lang.text("check_trail"),
        sha = escape(&report.sha256),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printable_page_follows_its_language_with_labels_not_codes() {
        let report = IssuedReport {
            sha256: "ab".repeat(32),
            content: json!({
                "territory": {"id": "t", "name": "Friche"},
                "period": {"from": "2026-05-01", "to": "2026-05-31"},
                "approved": {"entries": 1, "hours": "1.50", "euros": "17.82", "unvaluedMinutes": 0},
                "byActivity": [{"activity": "clean_up", "entries": 1, "hours": "1.50", "euros": "17.82"}],
                "byMonth": [{"month": "2026-05", "entries": 1, "hours": "1.50", "euros": "17.82"}],
            }),
        };
        let french = html(&report, Language::French);
        for expected in [
            "lang=\"fr\"",
            "Nettoyage",
            "1,50",
            "17,82 €",
            "mai 2026",
            "du 01/05/2026",
        ] {
            assert!(french.contains(expected), "{expected:?} not in {french}");
        }
        assert!(!french.contains("clean_up"), "{french}");
        let english = html(&report, Language::English);
        for expected in [
            "lang=\"en\"",
            "Clean-up",
            "1.50 hours, valued at 17.82 €",
            "May 2026",
        ] {
            assert!(english.contains(expected), "{expected:?} not in {english}");
        }
    }

    #[test]
    fn the_csv_neutralises_names_and_reasons_a_spreadsheet_would_evaluate() {
        let report = IssuedReport {
            sha256: "ab".repeat(32),
            content: json!({
                "byVolunteer": [{"volunteerId": "v1", "volunteer": "=HYPERLINK(\"http://x\",\"y\")",
                                 "entries": 1, "minutes": 90, "hours": "1.50", "euros": "-3.5"}],
                "bySite": [{"site": "@SUM(1)", "entries": 1, "minutes": 90}],
                "returned": {"entries": [{"entryId": "e1", "volunteer": "+cmd|' /C calc'!A0",
                                          "minutes": 30, "workDate": "2026-05-01", "reason": "-2+3"}]},
            }),
        };
        let text = String::from_utf8(csv(&report)).expect("UTF-8");
        let mut reader = ::csv::Reader::from_reader(text.as_bytes());
        let cells: Vec<String> = reader
            .records()
            .flat_map(|record| {
                record
                    .expect("a record")
                    .iter()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        for cell in [
            "'=HYPERLINK(\"http://x\",\"y\")",
            "'@SUM(1)",
            "'+cmd|' /C calc'!A0",
            "'-2+3",
            "-3.5",
        ] {
            assert!(cells.iter().any(|c| c == cell), "{cell:?} not in {text}");
        }
    }
}
