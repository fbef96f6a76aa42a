//! The review API on a real PostgreSQL: every filter of the review table,
//! keyset pages while rows keep arriving, dashboard counts, decisions one by
//! one and in bulk (all or nothing, one history row per record), degradation
//! follow-up and hours approval, duplicates, and who may do what.
//!
//! Inventory rows are inserted as materialisation files them, so each test
//! controls positions and times exactly; the sync path of decisions and
//! resolutions is covered by `review_sync.rs`.

use chrono::{DateTime, Duration, Utc};
use fieldnotes_tests::{
    accounts::{self, Actor},
    init_test_logging, ServerProcess, TestDatabase,
};
use serde_json::{json, Value};
use server::auth::{admin, Role};
use sqlx::PgPool;
use uuid::Uuid;

/// Metres per degree of latitude, near enough for placing test points.
const METRES_PER_DEGREE: f64 = 111_320.0;

struct Place {
    pool: PgPool,
    territory: Uuid,
    coordinator: Actor,
    auditor: Actor,
    volunteer: Actor,
    other: Actor,
    doc: String,
    other_doc: String,
}

async fn place(db: &TestDatabase) -> anyhow::Result<Place> {
    let pool = db.pool().await?;
    server::MIGRATOR.run(&pool).await?;
    let territory = admin::create_territory(&pool, "Parc de la Feyssine", None).await?;
    let coordinator =
        accounts::password_actor(&pool, "Marie", Some((territory, Role::Coordinator)), false)
            .await?;
    let auditor =
        accounts::password_actor(&pool, "Régie", Some((territory, Role::RegieAuditor)), false)
            .await?;
    let volunteer =
        accounts::device_actor(&pool, territory, coordinator.account_id, "Camille").await?;
    let other = accounts::device_actor(&pool, territory, coordinator.account_id, "Lou").await?;
    let doc = accounts::seed_document(&pool, territory, volunteer.account_id).await?;
    let other_doc = accounts::seed_document(&pool, territory, other.account_id).await?;
    Ok(Place {
        pool,
        territory,
        coordinator,
        auditor,
        volunteer,
        other,
        doc,
        other_doc,
    })
}

struct NewSighting<'a> {
    doc: &'a str,
    author: Uuid,
    name: &'a str,
    taxon: Option<i64>,
    lat: f64,
    lon: f64,
    at: DateTime<Utc>,
    site: Option<&'a str>,
}

impl<'a> NewSighting<'a> {
    fn of(doc: &'a str, author: Uuid, name: &'a str) -> NewSighting<'a> {
        NewSighting {
            doc,
            author,
            name,
            taxon: None,
            lat: 45.78,
            lon: 4.87,
            at: Utc::now() - Duration::days(1),
            site: None,
        }
    }
}

/// A sighting row as materialisation files it.
async fn insert_sighting(
    pool: &PgPool,
    territory: Uuid,
    s: NewSighting<'_>,
) -> anyhow::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO sightings (id, territory_id, doc_id, occurrence_id, scientific_name, taxon_id, \
           event_date, geom, coordinate_uncertainty_m, individual_count, occurrence_status, \
           basis_of_record, recorded_by, site, author_id, device_id, created_at, modified_at) \
         VALUES ($1, $2, $3, 'urn:uuid:' || $1, $4, $5, $6, ST_SetSRID(ST_MakePoint($7, $8), 4326), \
           10, 1, 'present', 'HumanObservation', 'Camille', $9, $10, 'phone', now(), now())",
    )
    .bind(id)
    .bind(territory)
    .bind(s.doc)
    .bind(s.name)
    .bind(s.taxon)
    .bind(s.at)
    .bind(s.lon)
    .bind(s.lat)
    .bind(s.site)
    .bind(s.author)
    .execute(pool)
    .await?;
    Ok(id)
}

async fn insert_report(
    pool: &PgPool,
    territory: Uuid,
    doc: &str,
    author: Uuid,
) -> anyhow::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO degradation_reports (id, territory_id, doc_id, category, observed_at, geom, \
           description, author_id, device_id, created_at, modified_at) \
         VALUES ($1, $2, $3, 'illegal_dumping', now() - interval '1 day', \
           ST_SetSRID(ST_MakePoint(4.87, 45.78), 4326), 'Rubble by the pond', $4, 'phone', now(), now())",
    )
    .bind(id)
    .bind(territory)
    .bind(doc)
    .bind(author)
    .execute(pool)
    .await?;
    Ok(id)
}

async fn insert_hours(
    pool: &PgPool,
    territory: Uuid,
    doc: &str,
    volunteer: Uuid,
    minutes: i32,
) -> anyhow::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO timesheet_entries (id, territory_id, doc_id, volunteer_id, work_date, \
           duration_minutes, activity, author_id, device_id, created_at, modified_at) \
         VALUES ($1, $2, $3, $4, current_date - 1, $5, 'planting', $4, 'phone', now(), now())",
    )
    .bind(id)
    .bind(territory)
    .bind(doc)
    .bind(volunteer)
    .bind(minutes)
    .execute(pool)
    .await?;
    Ok(id)
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// `POST path` with a JSON body as `actor`: the status and the answer.
async fn post(
    server: &ServerProcess,
    actor: &Actor,
    path: &str,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    server.as_(&actor.token).post(path, body).await
}

async fn put(
    server: &ServerProcess,
    actor: &Actor,
    path: &str,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    server.as_(&actor.token).put(path, body).await
}

async fn get(server: &ServerProcess, actor: &Actor, path: &str) -> anyhow::Result<Value> {
    let (status, body) = server.as_(&actor.token).get(path).await?;
    assert_eq!(status, 200, "GET {path}: {body}");
    Ok(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_of_the_review_table_selects_what_it_names() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let p = place(&db).await?;
    let server = ServerProcess::start(&db.url)?;
    let t = p.territory;
    let day = |d: i64| Utc::now() - Duration::days(d);

    let hedgehog = insert_sighting(
        &p.pool,
        t,
        NewSighting {
            taxon: Some(60015),
            at: day(10),
            site: Some("Pond"),
            ..NewSighting::of(&p.doc, p.volunteer.account_id, "Erinaceus europaeus")
        },
    )
    .await?;
    let toad = insert_sighting(
        &p.pool,
        t,
        NewSighting {
            at: day(5),
            lat: 45.70,
            ..NewSighting::of(&p.doc, p.volunteer.account_id, "Bufo bufo")
        },
    )
    .await?;
    let bat = insert_sighting(
        &p.pool,
        t,
        NewSighting {
            at: day(1),
            site: Some("Pond"),
            lat: 45.79,
            lon: 4.88,
            ..NewSighting::of(
                &p.other_doc,
                p.other.account_id,
                "Pipistrellus pipistrellus",
            )
        },
    )
    .await?;
    // Same taxon as the bat, 20 m and 30 minutes away: a possible duplicate.
    let bat_again = insert_sighting(
        &p.pool,
        t,
        NewSighting {
            at: day(1) + Duration::minutes(30),
            site: Some("Pond"),
            lat: 45.79 + 20.0 / METRES_PER_DEGREE,
            lon: 4.88,
            ..NewSighting::of(&p.doc, p.volunteer.account_id, "Pipistrellus pipistrellus")
        },
    )
    .await?;
    sqlx::query("UPDATE sightings SET conflicts = '[{\"field\": \"individualCount\", \"winner\": 2, \"values\": [1, 2]}]' WHERE id = $1")
        .bind(toad)
        .execute(&p.pool)
        .await?;
    // Another territory's sighting never shows.
    let elsewhere = admin::create_territory(&p.pool, "Elsewhere", None).await?;
    let elsewhere_doc = accounts::seed_document(&p.pool, elsewhere, p.volunteer.account_id).await?;
    insert_sighting(
        &p.pool,
        elsewhere,
        NewSighting::of(&elsewhere_doc, p.volunteer.account_id, "Bufo bufo"),
    )
    .await?;

    let base = format!("/api/territories/{t}/review/records");
    let select = |query: &str| format!("{base}?{query}");
    let cases: Vec<(String, Vec<Uuid>)> = vec![
        (
            select("kind=sighting"),
            vec![hedgehog, toad, bat, bat_again],
        ),
        (select("site=Pond"), vec![hedgehog, bat, bat_again]),
        (select("taxon=60015"), vec![hedgehog]),
        (select("taxon=bufo%20BUFO"), vec![toad]),
        (select(&format!("author={}", p.other.account_id)), vec![bat]),
        (
            select(&format!("from={}", (day(6)).format("%Y-%m-%d"))),
            vec![toad, bat, bat_again],
        ),
        (
            select(&format!("to={}", (day(6)).format("%Y-%m-%d"))),
            vec![hedgehog],
        ),
        (
            select("bbox=4.86,45.75,4.89,45.80"),
            vec![hedgehog, bat, bat_again],
        ),
        // A box with a period reads the place-and-period index: both narrow.
        (
            select(&format!(
                "bbox=4.86,45.75,4.89,45.80&from={}",
                day(6).format("%Y-%m-%d")
            )),
            vec![bat, bat_again],
        ),
        (
            select(&format!(
                "bbox=4.86,45.75,4.89,45.80&to={}",
                day(6).format("%Y-%m-%d")
            )),
            vec![hedgehog],
        ),
        (select("conflicts=true"), vec![toad]),
        (select("conflicts=false"), vec![hedgehog, bat, bat_again]),
        (select("duplicates=true"), vec![bat, bat_again]),
        (select("status=0"), vec![hedgehog, toad, bat, bat_again]),
        (select("status=1"), vec![]),
    ];
    for (path, expected) in &cases {
        let page = get(&server, &p.coordinator, path).await?;
        assert_eq!(
            sorted(ids(&page)),
            sorted(expected.iter().map(Uuid::to_string).collect()),
            "{path}"
        );
    }
    // Validation status filters once a decision is taken.
    let (status, body) = post(&server, &p.coordinator, &format!("/api/territories/{t}/review/decisions"), &json!({"decision": "verification", "status": "1", "records": [hedgehog], "reason": "photo"})).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ids(&get(&server, &p.coordinator, &select("status=1")).await?),
        vec![hedgehog.to_string()]
    );
    // The auditor reads the same table.
    assert_eq!(
        ids(&get(&server, &p.auditor, &select("status=1")).await?),
        vec![hedgehog.to_string()]
    );

    // Bad filters are named.
    for (query, field) in [
        ("kind=plant", "kind"),
        ("bbox=1,2,3", "bbox"),
        ("from=yesterday", "from"),
        ("status=9", "status"),
        ("limit=0", "limit"),
        ("after=abc", "after"),
        ("kind=timesheet_entry&taxon=1", "taxon"),
        ("colour=red", "query"),
    ] {
        let (status, body) = server.as_(&p.coordinator.token).get(&select(query)).await?;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_pages_skip_and_repeat_nothing_while_rows_arrive_and_counts_add_up(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let p = place(&db).await?;
    let server = ServerProcess::start(&db.url)?;
    let t = p.territory;
    let mut initial = Vec::new();
    for i in 0..10 {
        let name = if i % 2 == 0 {
            "Bufo bufo"
        } else {
            "Rana temporaria"
        };
        initial.push(
            insert_sighting(
                &p.pool,
                t,
                NewSighting {
                    lat: 45.78 + i as f64 * 0.001,
                    ..NewSighting::of(&p.doc, p.volunteer.account_id, name)
                },
            )
            .await?
            .to_string(),
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut arrived = Vec::new();
    loop {
        let path = match &cursor {
            Some(after) => format!("/api/territories/{t}/review/records?limit=3&after={after}"),
            None => format!("/api/territories/{t}/review/records?limit=3"),
        };
        let page = get(&server, &p.coordinator, &path).await?;
        assert!(ids(&page).len() <= 3);
        seen.extend(ids(&page));
        // A phone syncs between two pages, and an edit touches a seen row.
        arrived.push(
            insert_sighting(
                &p.pool,
                t,
                NewSighting::of(&p.doc, p.volunteer.account_id, "Bufo bufo"),
            )
            .await?
            .to_string(),
        );
        sqlx::query(
            "UPDATE sightings SET individual_count = 7, modified_at = now() WHERE id::text = $1",
        )
        .bind(&seen[0])
        .execute(&p.pool)
        .await?;
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 10, "no row repeated: {seen:?}");
    assert_eq!(sorted(seen), sorted(initial), "every row seen once");
    // The rows that arrived meanwhile are on a fresh first page.
    let first = get(
        &server,
        &p.coordinator,
        &format!("/api/territories/{t}/review/records?limit=20"),
    )
    .await?;
    for id in &arrived {
        assert!(ids(&first).contains(id));
    }

    let report = insert_report(&p.pool, t, &p.doc, p.volunteer.account_id).await?;
    insert_hours(&p.pool, t, &p.doc, p.volunteer.account_id, 90).await?;
    insert_hours(&p.pool, t, &p.doc, p.volunteer.account_id, 30).await?;
    accounts::seed_invalid_record(&p.pool, &p.doc, t).await?;
    let (status, _) = post(&server, &p.coordinator, &format!("/api/territories/{t}/review/decisions"), &json!({"decision": "follow_up", "status": "under_analysis", "reason": "seen by the régie", "records": [report]})).await?;
    assert_eq!(status, 200);
    let counts = get(
        &server,
        &p.auditor,
        &format!("/api/territories/{t}/review/counts"),
    )
    .await?;
    let total = 10 + arrived.len() as i64;
    assert_eq!(counts["sightings"]["total"], total, "{counts}");
    assert_eq!(counts["sightings"]["byStatus"]["0"], total, "{counts}");
    assert_eq!(
        counts["degradationReports"]["byStatus"]["under_analysis"], 1,
        "{counts}"
    );
    assert_eq!(
        counts["timesheetEntries"]["byStatus"]["pending"], 2,
        "{counts}"
    );
    assert_eq!(
        counts["timesheetEntries"]["minutesByStatus"]["pending"], 120,
        "{counts}"
    );
    assert_eq!(counts["invalidRecords"], 1, "{counts}");
    Ok(())
}

async fn history_rows(pool: &PgPool, territory: Uuid) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM review_history WHERE territory_id = $1")
            .bind(territory)
            .fetch_one(pool)
            .await?,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_decisions_are_all_or_nothing_and_every_decision_is_kept_in_history(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let p = place(&db).await?;
    let server = ServerProcess::start(&db.url)?;
    let t = p.territory;
    let decisions = format!("/api/territories/{t}/review/decisions");
    let mut sightings = Vec::new();
    for _ in 0..4 {
        sightings.push(
            insert_sighting(
                &p.pool,
                t,
                NewSighting::of(&p.doc, p.volunteer.account_id, "Bufo bufo"),
            )
            .await?,
        );
    }
    let stranger = Uuid::new_v4();

    // One id that is not a sighting of the territory: nothing is decided, the error names it.
    let (status, body) = post(&server, &p.coordinator, &decisions, &json!({
        "decision": "verification", "status": "2", "records": [sightings[0], sightings[1], stranger, sightings[2]],
    })).await?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "records[2]", "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&stranger.to_string()));
    assert_eq!(history_rows(&p.pool, t).await?, 0);
    let validated: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sightings WHERE validation_status <> 0")
            .fetch_one(&p.pool)
            .await?;
    assert_eq!(validated, 0, "nothing applied");

    // The régie auditor decides nothing; nor does a volunteer.
    for actor in [&p.auditor, &p.volunteer] {
        let (status, _) = post(
            &server,
            actor,
            &decisions,
            &json!({
                "decision": "verification", "status": "1", "records": [sightings[0]],
            }),
        )
        .await?;
        assert_eq!(status, 403);
    }

    // By ids, then by the current filter: one history row per record changed.
    let (status, body) = post(&server, &p.coordinator, &decisions, &json!({
        "decision": "verification", "status": "2", "reason": "probable from the call", "records": [sightings[0], sightings[1]],
    })).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], 2);
    let (status, body) = post(&server, &p.coordinator, &decisions, &json!({
        "decision": "verification", "status": "1", "filter": {"taxon": "Bufo bufo", "status": "0"},
    })).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], 2, "the two still pending");
    assert_eq!(history_rows(&p.pool, t).await?, 4);
    let (status, body) = post(&server, &p.coordinator, &decisions, &json!({
        "decision": "verification", "status": "4", "reason": "a common frog, see photo", "records": [sightings[0]],
    })).await?;
    assert_eq!(status, 200, "{body}");

    // The history of a record: each step, who, the previous status.
    let history = get(
        &server,
        &p.auditor,
        &format!(
            "/api/territories/{t}/review/records/{}/history",
            sightings[0]
        ),
    )
    .await?;
    let steps = history["history"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{history}");
    assert_eq!(
        (steps[0]["previous"].as_str(), steps[0]["status"].as_str()),
        (Some("0"), Some("2"))
    );
    assert_eq!(
        (steps[1]["previous"].as_str(), steps[1]["status"].as_str()),
        (Some("2"), Some("4"))
    );
    assert_eq!(steps[1]["decidedByName"], "Marie");
    assert_eq!(steps[1]["reason"], "a common frog, see photo");
    assert_eq!(history["decisions"][0]["status"], "4");

    // Hours: returned with a reason, then approved.
    let hours = insert_hours(&p.pool, t, &p.doc, p.volunteer.account_id, 600).await?;
    let (status, body) = post(
        &server,
        &p.coordinator,
        &decisions,
        &json!({"decision": "approval", "status": "returned", "records": [hours]}),
    )
    .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("reason")),
        "{body}"
    );
    let (status, _) = post(&server, &p.coordinator, &decisions, &json!({"decision": "approval", "status": "returned", "reason": "10 h in one morning?", "records": [hours]})).await?;
    assert_eq!(status, 200);
    let (approval, approval_reason, approved_by): (String, Option<String>, Option<Uuid>) =
        sqlx::query_as("SELECT approval_status, approval_reason, approved_by FROM timesheet_entries WHERE id = $1")
            .bind(hours).fetch_one(&p.pool).await?;
    assert_eq!(
        (approval.as_str(), approval_reason.as_deref(), approved_by),
        (
            "returned",
            Some("10 h in one morning?"),
            Some(p.coordinator.account_id)
        )
    );

    // The volunteer fixes the hours: the return is outdated, the entry is
    // pending again, and the history says why. So is a validation whose
    // identification the volunteer changes afterwards.
    sqlx::query("UPDATE timesheet_entries SET duration_minutes = 180 WHERE id = $1")
        .bind(hours)
        .execute(&p.pool)
        .await?;
    sqlx::query("UPDATE sightings SET scientific_name = 'Bufo spinosus' WHERE id = $1")
        .bind(sightings[1])
        .execute(&p.pool)
        .await?;
    let pending: (String, i16) = sqlx::query_as(
        "SELECT (SELECT approval_status FROM timesheet_entries WHERE id = $1), \
                (SELECT validation_status FROM sightings WHERE id = $2)",
    )
    .bind(hours)
    .bind(sightings[1])
    .fetch_one(&p.pool)
    .await?;
    assert_eq!(pending, ("pending".to_string(), 0));
    for (record, previous, reason) in [
        (hours, "returned", "the hours changed after the decision"),
        (
            sightings[1],
            "2",
            "the identification changed after the decision",
        ),
    ] {
        let history = get(
            &server,
            &p.auditor,
            &format!("/api/territories/{t}/review/records/{record}/history"),
        )
        .await?;
        let last = history["history"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["previous"], previous, "{history}");
        assert_eq!(last["reason"], reason, "{history}");
        assert_eq!(last["decidedBy"], p.volunteer.account_id.to_string());
    }
    let lagging: i64 =
        sqlx::query_scalar("SELECT count(*) FROM review_outbox WHERE volunteer_id = $1")
            .bind(p.volunteer.account_id)
            .fetch_one(&p.pool)
            .await?;
    assert_eq!(lagging, 1, "the volunteer's phone is told");

    // A decision kind applies to its own kind of record only.
    let (status, body) = post(
        &server,
        &p.coordinator,
        &decisions,
        &json!({"decision": "approval", "status": "approved", "records": [sightings[0]]}),
    )
    .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("records[0]")),
        "{body}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degradation_report_is_followed_up_with_a_reason_each_move_and_reopened_once_closed(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let p = place(&db).await?;
    let server = ServerProcess::start(&db.url)?;
    let t = p.territory;
    let decisions = format!("/api/territories/{t}/review/decisions");

    // Degradation follow-up: a reason each move, forward, reopened once closed.
    let report = insert_report(&p.pool, t, &p.doc, p.volunteer.account_id).await?;
    let follow = |status: &str, reason: Option<&str>| json!({"decision": "follow_up", "status": status, "reason": reason, "records": [report]});
    let (status, body) = post(
        &server,
        &p.coordinator,
        &decisions,
        &follow("action_taken", None),
    )
    .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("reason")),
        "{body}"
    );
    for (step, reason) in [
        ("under_analysis", "looking"),
        ("action_taken", "the commune removed it"),
    ] {
        let (status, body) = post(
            &server,
            &p.coordinator,
            &decisions,
            &follow(step, Some(reason)),
        )
        .await?;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = post(
        &server,
        &p.coordinator,
        &decisions,
        &follow("received", Some("oops")),
    )
    .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (409, Some("records[0]")),
        "{body}"
    );
    for (step, reason) in [("closed", "done"), ("under_analysis", "dumped again")] {
        let (status, body) = post(
            &server,
            &p.coordinator,
            &decisions,
            &follow(step, Some(reason)),
        )
        .await?;
        assert_eq!(status, 200, "{body}");
    }
    let (current, reason): (String, Option<String>) =
        sqlx::query_as("SELECT status, status_reason FROM degradation_reports WHERE id = $1")
            .bind(report)
            .fetch_one(&p.pool)
            .await?;
    assert_eq!(
        (current.as_str(), reason.as_deref()),
        ("under_analysis", Some("dumped again"))
    );
    let history = get(
        &server,
        &p.coordinator,
        &format!("/api/territories/{t}/review/records/{report}/history"),
    )
    .await?;
    let moves: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        moves,
        ["under_analysis", "action_taken", "closed", "under_analysis"]
    );
    // The inventory's own view of the report tells the same follow-up.
    let listed = get(
        &server,
        &p.auditor,
        &format!("/api/degradation-reports?territory={t}"),
    )
    .await?;
    let followed: Vec<(&str, &str)> = listed[0]["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["status"].as_str().unwrap(),
                h["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        followed,
        [
            ("under_analysis", "looking"),
            ("action_taken", "the commune removed it"),
            ("closed", "done"),
            ("under_analysis", "dumped again")
        ]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_sightings_of_one_taxon_are_proposed_and_merged_or_dismissed() -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let p = place(&db).await?;
    let server = ServerProcess::start(&db.url)?;
    let t = p.territory;
    let at = Utc::now() - Duration::days(2);
    let north = |metres: f64| 45.78 + metres / METRES_PER_DEGREE;
    let hedgehog = |doc, author, lat, minutes| NewSighting {
        lat,
        at: at + Duration::minutes(minutes),
        ..NewSighting::of(doc, author, "Erinaceus europaeus")
    };
    let first = insert_sighting(
        &p.pool,
        t,
        hedgehog(&p.doc, p.volunteer.account_id, north(0.0), 0),
    )
    .await?;
    let close = insert_sighting(
        &p.pool,
        t,
        hedgehog(&p.other_doc, p.other.account_id, north(20.0), 30),
    )
    .await?;
    let far = insert_sighting(
        &p.pool,
        t,
        hedgehog(&p.other_doc, p.other.account_id, north(400.0), 10),
    )
    .await?;
    // Close in space and time, but another taxon; and the same taxon a day later.
    insert_sighting(
        &p.pool,
        t,
        NewSighting {
            lat: north(5.0),
            at,
            ..NewSighting::of(&p.doc, p.volunteer.account_id, "Bufo bufo")
        },
    )
    .await?;
    insert_sighting(
        &p.pool,
        t,
        hedgehog(&p.doc, p.volunteer.account_id, north(10.0), 24 * 60),
    )
    .await?;

    let proposals = format!("/api/territories/{t}/review/duplicates");
    let pairs = |page: &Value| -> Vec<(String, String)> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                let (a, b) = (
                    pair["a"]["id"].as_str().unwrap().to_string(),
                    pair["b"]["id"].as_str().unwrap().to_string(),
                );
                if a < b {
                    (a, b)
                } else {
                    (b, a)
                }
            })
            .collect()
    };
    let pair_of = |a: Uuid, b: Uuid| {
        if a.to_string() < b.to_string() {
            (a.to_string(), b.to_string())
        } else {
            (b.to_string(), a.to_string())
        }
    };
    let page = get(&server, &p.auditor, &proposals).await?;
    assert_eq!(pairs(&page), vec![pair_of(first, close)], "{page}");
    let distance = page["items"][0]["distanceM"].as_f64().unwrap();
    assert!((19.0..21.0).contains(&distance), "{distance}");
    assert_eq!(page["items"][0]["hoursApart"].as_f64(), Some(0.5));

    // A wider distance for the territory proposes the 400 m one too.
    let settings = format!("/api/territories/{t}/review/settings");
    let (status, body) = put(
        &server,
        &p.coordinator,
        &settings,
        &json!({"duplicateDistanceM": 500.0, "duplicateWindowHours": 2.0}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let (status, _) = put(
        &server,
        &p.auditor,
        &settings,
        &json!({"duplicateDistanceM": 5.0, "duplicateWindowHours": 2.0}),
    )
    .await?;
    assert_eq!(status, 403);
    let (status, body) = put(
        &server,
        &p.coordinator,
        &settings,
        &json!({"duplicateDistanceM": -1.0, "duplicateWindowHours": 2.0}),
    )
    .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("duplicateDistanceM"))
    );
    let mut wide = pairs(&get(&server, &p.coordinator, &proposals).await?);
    wide.sort();
    let mut expected = vec![
        pair_of(first, close),
        pair_of(first, far),
        pair_of(close, far),
    ];
    expected.sort();
    assert_eq!(wide, expected);
    // Paged one pair at a time, the same pairs.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{proposals}?limit=1&after={c}"),
            None => format!("{proposals}?limit=1"),
        };
        let page = get(&server, &p.coordinator, &path).await?;
        paged.extend(pairs(&page));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    paged.sort();
    assert_eq!(paged, expected);
    put(
        &server,
        &p.coordinator,
        &settings,
        &json!({"duplicateDistanceM": 50.0, "duplicateWindowHours": 2.0}),
    )
    .await?;

    // Dismissed: not proposed again, and the auditor may not dismiss.
    let dismiss = format!("/api/territories/{t}/review/duplicates/dismiss");
    let (status, _) = post(
        &server,
        &p.auditor,
        &dismiss,
        &json!({"reference": first, "duplicate": close}),
    )
    .await?;
    assert_eq!(status, 403);
    let (status, body) = server
        .as_(&p.coordinator.token)
        .post(
            &dismiss,
            &json!({"reference": close, "duplicate": first, "reason": "two hedgehogs, see photos"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert!(pairs(&get(&server, &p.coordinator, &proposals).await?).is_empty());

    // Merged: both records kept, one marked duplicate of the other, no longer proposed.
    let second = insert_sighting(
        &p.pool,
        t,
        hedgehog(&p.other_doc, p.other.account_id, north(15.0), 5),
    )
    .await?;
    let page = get(&server, &p.coordinator, &proposals).await?;
    assert!(pairs(&page).contains(&pair_of(first, second)), "{page}");
    let merge = format!("/api/territories/{t}/review/duplicates/merge");
    let (status, body) = post(
        &server,
        &p.coordinator,
        &merge,
        &json!({"reference": first, "duplicate": first}),
    )
    .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("duplicate"))
    );
    let (status, body) = post(
        &server,
        &p.coordinator,
        &merge,
        &json!({"reference": first, "duplicate": second, "reason": "same animal"}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let kept: Vec<(Uuid, Option<Uuid>)> = sqlx::query_as(
        "SELECT id, duplicate_of FROM sightings WHERE id = ANY($1) ORDER BY id = $2 DESC",
    )
    .bind([first, second])
    .bind(first)
    .fetch_all(&p.pool)
    .await?;
    assert_eq!(kept, vec![(first, None), (second, Some(first))]);
    assert!(pairs(&get(&server, &p.coordinator, &proposals).await?).is_empty());
    let (status, body) = post(
        &server,
        &p.coordinator,
        &merge,
        &json!({"reference": second, "duplicate": close}),
    )
    .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (409, Some("reference")),
        "{body}"
    );
    let history = get(
        &server,
        &p.auditor,
        &format!("/api/territories/{t}/review/records/{second}/history"),
    )
    .await?;
    assert_eq!(history["history"][0]["action"], "duplicate_merge");
    assert_eq!(
        history["history"][0]["detail"]["reference"],
        first.to_string()
    );
    Ok(())
}

/// The dashboard's counts as counting the tables gives them.
async fn counted(pool: &PgPool, territory: Uuid) -> anyhow::Result<Value> {
    Ok(sqlx::query_scalar(
        "SELECT jsonb_build_object( \
           'sightings', (SELECT jsonb_build_object('total', count(*), 'conflicts', count(*) FILTER (WHERE has_conflicts), \
               'byStatus', COALESCE((SELECT jsonb_object_agg(s, n) FROM (SELECT validation_status::text s, count(*) n \
                 FROM sightings WHERE territory_id = $1 GROUP BY 1) g), '{}')) FROM sightings WHERE territory_id = $1), \
           'degradationReports', (SELECT jsonb_build_object('total', count(*), 'conflicts', count(*) FILTER (WHERE has_conflicts), \
               'byStatus', COALESCE((SELECT jsonb_object_agg(s, n) FROM (SELECT status s, count(*) n \
                 FROM degradation_reports WHERE territory_id = $1 GROUP BY 1) g), '{}')) FROM degradation_reports WHERE territory_id = $1), \
           'timesheetEntries', (SELECT jsonb_build_object('total', count(*), 'conflicts', count(*) FILTER (WHERE has_conflicts), \
               'byStatus', COALESCE((SELECT jsonb_object_agg(s, n) FROM (SELECT approval_status s, count(*) n \
                 FROM timesheet_entries WHERE territory_id = $1 GROUP BY 1) g), '{}'), \
               'minutesByStatus', COALESCE((SELECT jsonb_object_agg(s, m) FROM (SELECT approval_status s, sum(duration_minutes) m \
                 FROM timesheet_entries WHERE territory_id = $1 GROUP BY 1) g), '{}')) FROM timesheet_entries WHERE territory_id = $1), \
           'invalidRecords', (SELECT count(*) FROM invalid_records WHERE territory_id = $1))",
    )
    .bind(territory)
    .fetch_one(pool)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_counts_kept_by_triggers_follow_inserts_updates_upserts_and_deletes(
) -> anyhow::Result<()> {
    init_test_logging();
    let db = TestDatabase::create().await?;
    let p = place(&db).await?;
    let server = ServerProcess::start(&db.url)?;
    let t = p.territory;
    let path = format!("/api/territories/{t}/review/counts");
    let check = |what: &'static str| {
        let (server, p) = (&server, &p);
        let path = path.clone();
        async move {
            let shown = get(server, &p.auditor, &path).await?;
            let truth = counted(&p.pool, t).await?;
            assert_eq!(shown, truth, "after {what}");
            anyhow::Ok(())
        }
    };
    check("nothing").await?;
    let mut sightings = Vec::new();
    for name in [
        "Bufo bufo",
        "Rana temporaria",
        "Bufo bufo",
        "Erinaceus europaeus",
    ] {
        sightings.push(
            insert_sighting(
                &p.pool,
                t,
                NewSighting::of(&p.doc, p.volunteer.account_id, name),
            )
            .await?,
        );
    }
    let report = insert_report(&p.pool, t, &p.doc, p.volunteer.account_id).await?;
    let hours = insert_hours(&p.pool, t, &p.doc, p.volunteer.account_id, 90).await?;
    insert_hours(&p.pool, t, &p.doc, p.volunteer.account_id, 30).await?;
    accounts::seed_invalid_record(&p.pool, &p.doc, t).await?;
    check("inserts").await?;
    // Decisions move rows between statuses (through the review's own triggers).
    let (status, body) = post(&server, &p.coordinator, &format!("/api/territories/{t}/review/decisions"),
        &json!({"decision": "verification", "status": "1", "records": [sightings[0], sightings[1]]})).await?;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &server,
        &p.coordinator,
        &format!("/api/territories/{t}/review/decisions"),
        &json!({"decision": "approval", "status": "approved", "records": [hours]}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &server,
        &p.coordinator,
        &format!("/api/territories/{t}/review/decisions"),
        &json!({"decision": "follow_up", "status": "under_analysis", "records": [report], "reason": "seen on site"}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    check("decisions").await?;
    // A conflict appears, a duration changes, as materialisation's upsert does it.
    sqlx::query(
        "UPDATE sightings SET conflicts = '[{\"field\": \"individualCount\"}]' WHERE id = $1",
    )
    .bind(sightings[2])
    .execute(&p.pool)
    .await?;
    sqlx::query(
        "INSERT INTO timesheet_entries (id, territory_id, doc_id, volunteer_id, work_date, duration_minutes, \
           activity, author_id, device_id, created_at, modified_at) \
         SELECT id, territory_id, doc_id, volunteer_id, work_date, 150, activity, author_id, device_id, created_at, now() \
         FROM timesheet_entries WHERE id = $1 \
         ON CONFLICT (id) DO UPDATE SET duration_minutes = EXCLUDED.duration_minutes",
    )
    .bind(hours)
    .execute(&p.pool)
    .await?;
    check("a conflict and an upsert").await?;
    // A record leaves the inventory (it became invalid).
    sqlx::query("DELETE FROM sightings WHERE id = $1")
        .bind(sightings[3])
        .execute(&p.pool)
        .await?;
    check("a delete").await?;
    // Folding moves the deltas into the counters and changes no count.
    let folded = server::review::counts::fold(&p.pool).await?;
    assert!(folded > 0, "there were deltas to fold");
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM review_count_deltas WHERE territory_id = $1")
            .bind(t)
            .fetch_one(&p.pool)
            .await?;
    assert_eq!(left, 0);
    check("folding").await?;
    sqlx::query("UPDATE sightings SET validation_status = 4 WHERE id = $1")
        .bind(sightings[2])
        .execute(&p.pool)
        .await?;
    check("a change after folding").await?;
    Ok(())
}
