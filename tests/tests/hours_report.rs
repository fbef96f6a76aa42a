//! The volunteer-hours report (issue 12): totals by volunteer, activity,
//! site and month match a hand-computed fixture whose entries came from real
//! phones — one edited on two phones offline (two fields: both kept), one
//! left in conflict and resolved by the coordinator, one returned, one not
//! yet decided, one outside the period — valued at the rate in force on each
//! day. The report is kept as issued: its hash, recomputed independently,
//! is on every rendering, a funder's copy is checked by it, and a report
//! rewritten in the database is no longer answered as issued.

use std::{process::Stdio, time::Duration};

use fieldnotes_tests::{eventually, world::World, ServerProcess};
use mobile_bridge::Phone;
use schemas::RecordKind;
use serde_json::{json, Value};
use sqlx::{Connection, PgPool};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A timesheet entry as a phone writes it: a duration, no start or end.
fn entry(
    volunteer: Uuid,
    work_date: &str,
    minutes: i64,
    activity: &str,
    site: Option<&str>,
) -> (Uuid, Value) {
    let id = Uuid::new_v4();
    let now = chrono::Utc::now().to_rfc3339();
    let mut entry = json!({
        "id": id,
        "volunteerId": volunteer,
        "workDate": work_date,
        "durationMinutes": minutes,
        "activity": activity,
        "authorId": volunteer,
        "deviceId": "phone-test",
        "createdAt": now,
        "modifiedAt": now,
    });
    if let Some(site) = site {
        entry["site"] = json!(site);
    }
    (id, entry)
}

async fn materialised(
    pool: &PgPool,
    id: Uuid,
) -> anyhow::Result<Option<(i32, Option<String>, bool)>> {
    Ok(sqlx::query_as(
        "SELECT duration_minutes, site, has_conflicts FROM timesheet_entries WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// SHA-256 of the report's canonical JSON (sorted keys, no whitespace),
/// computed as a funder would, with Python's standard library.
async fn python_sha256(report: &Value) -> anyhow::Result<String> {
    let mut child = tokio::process::Command::new("python3")
        .args([
            "-c",
            "import sys, json, hashlib; r = json.load(sys.stdin); \
             print(hashlib.sha256(json.dumps(r, sort_keys=True, separators=(',', ':'), \
             ensure_ascii=False).encode('utf-8')).hexdigest())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(&serde_json::to_vec(report)?).await?;
    drop(stdin);
    let output = child.wait_with_output().await?;
    anyhow::ensure!(output.status.success(), "python3 failed");
    Ok(String::from_utf8(output.stdout)?.trim().to_string())
}

async fn get_text(
    server: &ServerProcess,
    path: &str,
    token: &str,
) -> anyhow::Result<(u16, Option<String>, String)> {
    let response = reqwest::Client::new()
        .get(server.http_url(path))
        .bearer_auth(token)
        .send()
        .await?;
    let status = response.status().as_u16();
    let hash = response
        .headers()
        .get("report-sha256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok((status, hash, response.text().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hours_report_matches_a_hand_computed_fixture_and_is_checked_by_its_hash(
) -> anyhow::Result<()> {
    let world = World::builder("Berges du Rhône")
        .coordinator("Marie")
        .auditor("Régie des berges")
        .volunteer("Camille")
        .second_device("Camille")
        .volunteer("Dominique")
        .build()
        .await?;
    let (server, pool, t) = (&world.server, &world.pool, world.territory.id);
    let url = server.sync_url();
    let (coordinator, auditor) = (world.coordinator(), world.auditor());
    let camille = world.volunteer("Camille");
    let second_device = world.second_device("Camille");
    let dominique = world.volunteer("Dominique");

    // Rates: the SMIC from January, a set rate from May.
    for (from, euros, basis) in [
        ("2026-01-01", "11.65", "smic"),
        ("2026-05-01", "12.00", "set"),
    ] {
        let (status, body) = server
            .as_(&coordinator.token)
            .put(
                &format!("/api/territories/{t}/hourly-rates/{from}"),
                &json!({"euroPerHour": euros, "basis": basis}),
            )
            .await?;
        assert_eq!(status, 200, "{body}");
    }
    // Refusals: an amount that is not one, a date that is not one, an auditor.
    let (status, body) = server
        .as_(&coordinator.token)
        .put(
            &format!("/api/territories/{t}/hourly-rates/2026-02-01"),
            &json!({"euroPerHour": "11,655", "basis": "smic"}),
        )
        .await?;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("euroPerHour")),
        "{body}"
    );
    let (status, body) = server
        .as_(&coordinator.token)
        .put(
            &format!("/api/territories/{t}/hourly-rates/2026-02-30"),
            &json!({"euroPerHour": "11.65", "basis": "smic"}),
        )
        .await?;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("effective_from")),
        "{body}"
    );
    let (status, _) = server
        .as_(&auditor.token)
        .put(
            &format!("/api/territories/{t}/hourly-rates/2026-02-01"),
            &json!({"euroPerHour": "99.00", "basis": "set"}),
        )
        .await?;
    assert_eq!(status, 403);

    // Camille's entries, on her first phone.
    let c = camille.account_id;
    let (e1, e1_json) = entry(c, "2026-03-10", 120, "field_survey", Some("Mare"));
    let (e2, e2_json) = entry(c, "2026-05-12", 90, "field_survey", Some("Mare"));
    let (e3, e3_json) = entry(c, "2026-04-20", 20, "data_entry", None);
    let mut phone_a = Phone::new_notebook(camille.notebook(), Some(camille.device.clone())).await?;
    for (id, json) in [(e1, &e1_json), (e2, &e2_json), (e3, &e3_json)] {
        phone_a.record_raw(RecordKind::TimesheetEntry, &id.to_string(), json)?;
    }
    phone_a.go_online(&url).await?;
    phone_a.wait_synced(TIMEOUT).await?;
    // Her second phone; both go offline and edit.
    let mut phone_b =
        Phone::fetch_notebook(&url, Some(second_device.clone()), phone_a.notebook_id()).await?;
    phone_a.go_offline();
    phone_b.go_offline();
    // e2: different fields on each phone, both kept: 150 minutes at "Haie".
    phone_a.edit(
        RecordKind::TimesheetEntry,
        e2,
        "durationMinutes",
        &json!(150),
    )?;
    phone_b.edit(RecordKind::TimesheetEntry, e2, "site", &json!("Haie"))?;
    // e3: the same field on both: a conflict the coordinator settles at 45.
    phone_a.edit(
        RecordKind::TimesheetEntry,
        e3,
        "durationMinutes",
        &json!(30),
    )?;
    phone_b.edit(
        RecordKind::TimesheetEntry,
        e3,
        "durationMinutes",
        &json!(60),
    )?;
    phone_a.go_online(&url).await?;
    phone_a.wait_synced(TIMEOUT).await?;
    phone_b.go_online(&url).await?;
    phone_b.wait_synced(TIMEOUT).await?;

    // Dominique's: approved, returned, not yet decided, outside the period.
    let d = dominique.account_id;
    let (e4, e4_json) = entry(d, "2026-05-20", 60, "planting", Some("Mare"));
    let (e5, e5_json) = entry(d, "2026-06-01", 30, "clean_up", None);
    let (e6, e6_json) = entry(d, "2025-12-15", 300, "planting", Some("Mare"));
    let (e8, e8_json) = entry(d, "2026-07-14", 240, "planting", Some("Mare"));
    let mut phone_d =
        Phone::new_notebook(dominique.notebook(), Some(dominique.device.clone())).await?;
    for (id, json) in [
        (e4, &e4_json),
        (e5, &e5_json),
        (e6, &e6_json),
        (e8, &e8_json),
    ] {
        phone_d.record_raw(RecordKind::TimesheetEntry, &id.to_string(), json)?;
    }
    phone_d.go_online(&url).await?;
    phone_d.wait_synced(TIMEOUT).await?;

    eventually(
        TIMEOUT,
        "every entry in the inventory, e2 merged, e3 in conflict",
        || async {
            let all: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM timesheet_entries WHERE territory_id = $1",
            )
            .bind(t)
            .fetch_one(pool)
            .await?;
            let e2_now = materialised(pool, e2).await?;
            let e3_now = materialised(pool, e3).await?;
            Ok((all == 7
                && e2_now == Some((150, Some("Haie".into()), false))
                && e3_now.is_some_and(|(_, _, conflicted)| conflicted))
            .then_some(()))
        },
    )
    .await?;
    let (status, body) = server
        .as_(&coordinator.token)
        .post(
            &format!("/api/territories/{t}/review/conflicts/{e3}/resolution"),
            &json!({"field": "durationMinutes", "value": 45, "reason": "attendance sheet"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    eventually(TIMEOUT, "the resolution in the inventory", || async {
        Ok((materialised(pool, e3).await? == Some((45, None, false))).then_some(()))
    })
    .await?;
    let decide = |records: Vec<Uuid>, status: &'static str, reason: Option<&'static str>| {
        let body =
            json!({"decision": "approval", "status": status, "records": records, "reason": reason});
        let token = coordinator.token.clone();
        async move {
            server
                .as_(&token)
                .post(&format!("/api/territories/{t}/review/decisions"), &body)
                .await
        }
    };
    let (status, body) = decide(vec![e1, e2, e3, e8, e6], "approved", None).await?;
    assert_eq!(status, 200, "{body}");
    let (status, body) = decide(
        vec![e4],
        "returned",
        Some("no attendance sheet for that day"),
    )
    .await?;
    assert_eq!(status, 200, "{body}");

    // The period must be a period.
    let issue = format!("/api/territories/{t}/reports/hours");
    let (status, body) = server
        .as_(&auditor.token)
        .post(&issue, &json!({"from": "2026-12-31", "to": "2026-01-01"}))
        .await?;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("to")),
        "{body}"
    );
    let volunteer_token = dominique.device.secret.clone();
    let (status, _) = server
        .as_(&volunteer_token)
        .post(&issue, &json!({"from": "2026-01-01", "to": "2026-12-31"}))
        .await?;
    assert_eq!(status, 403, "a volunteer issues no report");

    // The régie issues the report of 2026.
    let (status, issued) = server
        .as_(&auditor.token)
        .post(&issue, &json!({"from": "2026-01-01", "to": "2026-12-31"}))
        .await?;
    assert_eq!(status, 200, "{issued}");
    let report = &issued["report"];
    // By hand: e1 120 min in March at 11.65 €/h = 23.30 €; e2 150 min in May
    // at 12.00 = 30.00; e3 45 min in April at 11.65 = 8.7375; e8 240 min in
    // July at 12.00 = 48.00. Total 555 min = 9.25 h, 110.0375 → 110.04 €.
    let group = |entries: i64, minutes: i64, hours: &str, euros: &str| json!({"entries": entries, "minutes": minutes, "hours": hours, "euros": euros, "unvaluedMinutes": 0});
    assert_eq!(
        report["approved"],
        group(4, 555, "9.25", "110.04"),
        "{report}"
    );
    let with = |mut value: Value, key: &str, label: Value| {
        value[key] = label;
        value
    };
    assert_eq!(
        report["byVolunteer"],
        json!([
            with(
                with(
                    group(3, 315, "5.25", "62.04"),
                    "volunteer",
                    json!("Camille")
                ),
                "volunteerId",
                json!(c)
            ),
            with(
                with(
                    group(1, 240, "4.00", "48.00"),
                    "volunteer",
                    json!("Dominique")
                ),
                "volunteerId",
                json!(d)
            ),
        ]),
        "{report}"
    );
    assert_eq!(
        report["byActivity"],
        json!([
            with(
                group(1, 45, "0.75", "8.74"),
                "activity",
                json!("data_entry")
            ),
            with(
                group(2, 270, "4.50", "53.30"),
                "activity",
                json!("field_survey")
            ),
            with(
                group(1, 240, "4.00", "48.00"),
                "activity",
                json!("planting")
            ),
        ]),
        "{report}"
    );
    assert_eq!(
        report["bySite"],
        json!([
            with(group(1, 45, "0.75", "8.74"), "site", Value::Null),
            with(group(1, 150, "2.50", "30.00"), "site", json!("Haie")),
            with(group(2, 360, "6.00", "71.30"), "site", json!("Mare")),
        ]),
        "{report}"
    );
    assert_eq!(
        report["byMonth"],
        json!([
            with(group(1, 120, "2.00", "23.30"), "month", json!("2026-03")),
            with(group(1, 45, "0.75", "8.74"), "month", json!("2026-04")),
            with(group(1, 150, "2.50", "30.00"), "month", json!("2026-05")),
            with(group(1, 240, "4.00", "48.00"), "month", json!("2026-07")),
        ]),
        "{report}"
    );
    // Not counted, listed apart: e5 pending, e4 returned with its reason.
    let ids = |list: &Value| -> Vec<Value> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|e| e["entryId"].clone())
            .collect()
    };
    assert_eq!(
        ids(&report["pending"]["entries"]),
        vec![json!(e5)],
        "{report}"
    );
    assert_eq!(report["pending"]["total"]["minutes"], 30, "{report}");
    assert_eq!(
        ids(&report["returned"]["entries"]),
        vec![json!(e4)],
        "{report}"
    );
    assert_eq!(
        report["returned"]["entries"][0]["reason"],
        "no attendance sheet for that day"
    );
    assert_eq!(report["withUnresolvedConflicts"], json!([]), "{report}");
    assert_eq!(
        report["rates"].as_array().map(Vec::len),
        Some(2),
        "{report}"
    );

    // The hash is the SHA-256 of the canonical JSON, as anyone recomputes it.
    let sha256 = issued["sha256"].as_str().expect("sha256").to_string();
    assert_eq!(python_sha256(report).await?, sha256);

    // Every rendering carries it; the JSON fetched by hash is the report issued.
    let by_hash = format!("/api/territories/{t}/reports/hours/{sha256}");
    // Listed among the reports issued, newest first.
    let (status, listed) = server
        .as_(&auditor.token)
        .get(&format!("/api/territories/{t}/reports/hours"))
        .await?;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed[0]["sha256"], sha256.as_str(), "{listed}");
    assert_eq!(
        listed[0]["issuedBy"],
        auditor.account_id.to_string(),
        "{listed}"
    );
    let (status, fetched) = server.as_(&coordinator.token).get(&by_hash).await?;
    assert_eq!(status, 200);
    assert_eq!(&fetched["report"], report);
    let (status, hash, csv) =
        get_text(server, &format!("{by_hash}?format=csv"), &auditor.token).await?;
    assert_eq!((status, hash.as_deref()), (200, Some(sha256.as_str())));
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
    let find = |section: &str, key: &str| {
        rows.iter()
            .find(|r| &r[0] == section && &r[1] == key)
            .map(|r| (r[4].to_string(), r[6].to_string()))
    };
    assert_eq!(
        find("volunteer", &c.to_string()),
        Some(("315".into(), "62.04".into())),
        "{csv}"
    );
    assert_eq!(
        find("site", "Mare"),
        Some(("360".into(), "71.30".into())),
        "{csv}"
    );
    assert_eq!(
        find("month", "2026-05"),
        Some(("150".into(), "30.00".into())),
        "{csv}"
    );
    assert!(
        rows.iter()
            .any(|r| &r[0] == "pending" && r[1] == e5.to_string()),
        "{csv}"
    );
    assert!(
        rows.iter()
            .any(|r| &r[0] == "returned" && r[1] == e4.to_string()),
        "{csv}"
    );
    assert!(
        rows.iter().any(|r| &r[0] == "report" && r[2] == sha256),
        "{csv}"
    );
    let (status, hash, html) =
        get_text(server, &format!("{by_hash}?format=html"), &auditor.token).await?;
    assert_eq!((status, hash.as_deref()), (200, Some(sha256.as_str())));
    assert!(
        html.contains(&format!("id=\"report-sha256\">{sha256}<")),
        "{html}"
    );
    // In French by default, in English on request.
    assert!(html.contains("9,25 h, valorisées à 110,04 €"), "{html}");
    let (_, _, english) = get_text(
        server,
        &format!("{by_hash}?format=html&lang=en"),
        &auditor.token,
    )
    .await?;
    assert!(
        english.contains("9.25 hours, valued at 110.04 €"),
        "{english}"
    );
    assert!(html.contains("no attendance sheet for that day"), "{html}");

    // The issue is in the audit trail.
    server::audit::chain::chain_pending(pool).await?;
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE territory_id = $1 AND action = 'report_issued' \
         AND detail->>'sha256' = $2 AND actor_id = $3",
    )
    .bind(t)
    .bind(&sha256)
    .bind(auditor.account_id)
    .fetch_one(pool)
    .await?;
    assert_eq!(audited, 1);

    // Wrong or unknown hashes and formats.
    let (status, body) = server
        .as_(&auditor.token)
        .get(&format!("/api/territories/{t}/reports/hours/abc"))
        .await?;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("sha256")),
        "{body}"
    );
    let (status, body) = server
        .as_(&auditor.token)
        .get(&format!("{by_hash}?format=pdf"))
        .await?;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("format")),
        "{body}"
    );
    let unknown = "0".repeat(64);
    let (status, _) = server
        .as_(&auditor.token)
        .get(&format!("/api/territories/{t}/reports/hours/{unknown}"))
        .await?;
    assert_eq!(status, 404);

    // The service's role cannot rewrite an issued report; a superuser who
    // does is found out: the report is no longer answered as issued.
    let mut service = sqlx::PgConnection::connect(&world.db.url).await?;
    sqlx::query("SET ROLE fieldnotes_service")
        .execute(&mut service)
        .await?;
    let refused = sqlx::query("UPDATE issued_reports SET content = '{}' WHERE sha256 = $1")
        .bind(&sha256)
        .execute(&mut service)
        .await
        .expect_err("the service role may not update an issued report");
    assert_eq!(
        refused
            .as_database_error()
            .and_then(|e| e.code())
            .as_deref(),
        Some("42501"),
        "{refused}"
    );
    let mut superuser = sqlx::PgConnection::connect(&world.db.url).await?;
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut superuser)
        .await?;
    sqlx::query("UPDATE issued_reports SET content = replace(content, '110.04', '210.04') WHERE sha256 = $1")
        .bind(&sha256)
        .execute(&mut superuser)
        .await?;
    let (status, _) = server.as_(&auditor.token).get(&by_hash).await?;
    assert_eq!(status, 404, "a rewritten report is not answered as issued");
    Ok(())
}
