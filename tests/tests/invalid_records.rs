//! A record that violates its schema never enters the inventory as if valid:
//! what the volunteer typed is kept and listed, over HTTP, with field and reason.

use std::time::Duration;

use fieldnotes_tests::{eventually, records, world::World};
use mobile_bridge::Phone;
use schemas::RecordKind;
use serde_json::{json, Value};
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_sighting_is_kept_and_listed_with_field_and_reason() -> anyhow::Result<()> {
    let world = World::builder("Parc de Gerland")
        .volunteer("Inès")
        .build()
        .await?;
    let server = &world.server;
    let volunteer = world.volunteer("Inès");
    let header = volunteer.notebook();
    let mut phone = Phone::new_notebook(header, Some(volunteer.device.clone())).await?;
    let token = volunteer.device.secret.as_str();

    let mut typed = records::sighting_json(header.owner_id, "", 3);
    typed["decimalLatitude"] = json!(123.0);
    let key = typed["id"].as_str().unwrap().to_string();
    phone.record_raw(RecordKind::Sighting, &key, &typed)?;
    let valid = records::sighting(header.owner_id, "Parus major", 2);
    phone.record(&valid)?;
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;

    let listed = eventually(TIMEOUT, "the invalid record listed", || async {
        let (status, body) = server
            .as_(token)
            .get("/api/invalid-records?kind=sighting")
            .await?;
        assert_eq!(status, 200);
        Ok((body.as_array().map(Vec::len) == Some(1)).then_some(body))
    })
    .await?;
    let record = &listed[0];
    assert_eq!(record["recordKey"], key);
    assert_eq!(record["territoryId"], header.territory_id.to_string());
    assert_eq!(
        record["raw"], typed,
        "what the volunteer typed is kept whole"
    );
    let problems: Vec<(String, String)> = record["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["field"].as_str().unwrap().to_string(),
                p["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        problems
            .iter()
            .any(|(f, r)| f == "decimalLatitude" && r.contains("123")),
        "latitude named with its reason: {problems:?}"
    );
    assert!(
        problems.iter().any(|(f, _)| f == "scientificName"),
        "empty name named: {problems:?}"
    );

    // Only the valid record is in the inventory.
    let (_, sightings) = server.as_(token).get("/api/sightings").await?;
    let ids: Vec<&str> = sightings
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, vec![valid_id(&valid)]);

    // The volunteer fixes both fields: the record moves into the inventory.
    let id = Uuid::parse_str(&key)?;
    phone.edit(RecordKind::Sighting, id, "decimalLatitude", &json!(45.76))?;
    phone.edit(
        RecordKind::Sighting,
        id,
        "scientificName",
        &json!("Parus major"),
    )?;
    phone.wait_synced(TIMEOUT).await?;
    eventually(TIMEOUT, "the corrected record in the inventory", || async {
        let (_, invalid) = server.as_(token).get("/api/invalid-records").await?;
        let (_, sightings) = server.as_(token).get("/api/sightings").await?;
        Ok((invalid.as_array().map(Vec::len) == Some(0)
            && sightings.as_array().map(Vec::len) == Some(2))
        .then_some(()))
    })
    .await?;
    phone.shut_down().await;
    Ok(())
}

fn valid_id(sighting: &schemas::Sighting) -> &'static str {
    use schemas::FieldRecord;
    Box::leak(sighting.id().to_string().into_boxed_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_parameters_are_refused_naming_the_parameter() -> anyhow::Result<()> {
    let world = World::builder("Parc de Gerland")
        .volunteer("Inès")
        .build()
        .await?;
    let server = &world.server;
    let volunteer = world.volunteer("Inès");
    let token = volunteer.device.secret.as_str();
    for (path, field) in [
        ("/api/sightings?limit=0", "limit"),
        ("/api/sightings?offset=-3", "offset"),
        ("/api/invalid-records?kind=bird", "kind"),
        ("/api/sightings?territory=not-a-uuid", "query"),
    ] {
        let (status, body): (u16, Value) = server.as_(token).get(path).await?;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let (status, _) = server.as_(token).get("/api/documents/unknown-doc").await?;
    assert_eq!(status, 404);
    Ok(())
}

/// Two sightings can never share an `occurrenceID`: one copied from another
/// record is listed as a problem of that field, and the database refuses a
/// second row with the same identifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sightings_never_share_an_occurrence_id() -> anyhow::Result<()> {
    let world = World::builder("Berges du Rhône")
        .volunteer("Yanis")
        .build()
        .await?;
    let (server, pool) = (&world.server, &world.pool);
    let volunteer = world.volunteer("Yanis");
    let header = volunteer.notebook();
    let mut phone = Phone::new_notebook(header, Some(volunteer.device.clone())).await?;
    let first = records::sighting_json(header.owner_id, "Castor fiber", 1);
    let mut copy = records::sighting_json(header.owner_id, "Castor fiber", 2);
    copy["occurrenceID"] = first["occurrenceID"].clone();
    for record in [&first, &copy] {
        phone.record_raw(RecordKind::Sighting, record["id"].as_str().unwrap(), record)?;
    }
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;
    let token = volunteer.device.secret.as_str();
    let invalid = eventually(TIMEOUT, "the copy listed as invalid", || async {
        let (_, body) = server.as_(token).get("/api/invalid-records").await?;
        Ok((body.as_array().map(Vec::len) == Some(1)).then_some(body))
    })
    .await?;
    assert_eq!(invalid[0]["recordKey"], copy["id"]);
    assert_eq!(invalid[0]["problems"][0]["field"], "occurrenceID");
    let (_, sightings) = server.as_(token).get("/api/sightings").await?;
    assert_eq!(sightings.as_array().map(Vec::len), Some(1));
    assert_eq!(sightings[0]["occurrenceID"], first["occurrenceID"]);

    let duplicate = sqlx::query(
        "INSERT INTO sightings (id, territory_id, doc_id, occurrence_id, scientific_name, event_date, \
           geom, occurrence_status, basis_of_record, recorded_by, author_id, device_id, created_at, modified_at) \
         SELECT gen_random_uuid(), territory_id, doc_id, occurrence_id, scientific_name, event_date, \
           geom, occurrence_status, basis_of_record, recorded_by, author_id, device_id, created_at, modified_at \
         FROM sightings",
    )
    .execute(pool)
    .await;
    assert!(
        duplicate.is_err_and(|e| e.to_string().contains("sightings_occurrence_id_key")),
        "the database refuses a second row with the same occurrenceID"
    );
    phone.shut_down().await;
    Ok(())
}

/// What is accepted but implausible is kept, and shown with the record:
/// a point outside the territory (beyond its uncertainty), a date later than
/// its arrival on the server, more than 24 hours declared on one day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implausible_records_are_kept_with_their_warnings() -> anyhow::Result<()> {
    // A square around the Parc de la Tête d'Or, where the sample records are.
    let boundary = json!({"type": "MultiPolygon", "coordinates": [[[
        [4.84, 45.77], [4.87, 45.77], [4.87, 45.79], [4.84, 45.79], [4.84, 45.77]
    ]]]});
    let world = World::builder("Parc de la Tête d'Or")
        .boundary(boundary)
        .volunteer("Maëlle")
        .build()
        .await?;
    let server = &world.server;
    let volunteer = world.volunteer("Maëlle");
    let header = volunteer.notebook();
    let mut phone = Phone::new_notebook(header, Some(volunteer.device.clone())).await?;

    let inside = records::sighting_json(header.owner_id, "Parus major", 1);
    let mut outside = records::sighting_json(header.owner_id, "Parus major", 2);
    outside["decimalLatitude"] = json!(45.80); // about 1.1 km north of the boundary
    let mut ahead = records::sighting_json(header.owner_id, "Parus major", 3);
    ahead["eventDate"] = json!((chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339());
    for record in [&inside, &outside, &ahead] {
        phone.record_raw(RecordKind::Sighting, record["id"].as_str().unwrap(), record)?;
    }
    // Two entries of 13 hours today; one of 13 hours the day before.
    let mut entries_typed = Vec::new();
    for days_ago in [0, 0, 1] {
        let mut entry = records::timesheet_json(header.owner_id);
        let object = entry.as_object_mut().unwrap();
        object.remove("startedAt");
        object.remove("endedAt");
        object.insert("durationMinutes".into(), json!(13 * 60));
        let day = chrono::Utc::now().date_naive() - chrono::Duration::days(days_ago);
        object.insert("workDate".into(), json!(day.to_string()));
        phone.record_raw(
            RecordKind::TimesheetEntry,
            entry["id"].as_str().unwrap(),
            &entry,
        )?;
        entries_typed.push(entry);
    }
    phone.go_online(&server.sync_url()).await?;
    phone.wait_synced(TIMEOUT).await?;
    let token = volunteer.device.secret.as_str();
    let sightings = eventually(TIMEOUT, "the three sightings", || async {
        let (_, body) = server.as_(token).get("/api/sightings").await?;
        Ok((body.as_array().map(Vec::len) == Some(3)).then_some(body))
    })
    .await?;
    let warnings_of = |rows: &Value, id: &Value| -> Vec<String> {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|row| row["id"] == *id)
            .map(|row| {
                row["warnings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w["code"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap()
    };
    assert_eq!(warnings_of(&sightings, &inside["id"]), Vec::<String>::new());
    assert_eq!(
        warnings_of(&sightings, &outside["id"]),
        ["outsideTerritory"]
    );
    assert_eq!(warnings_of(&sightings, &ahead["id"]), ["futureDate"]);

    let (_, entries) = server.as_(token).get("/api/timesheet-entries").await?;
    assert_eq!(entries.as_array().map(Vec::len), Some(3));
    for entry in &entries_typed[..2] {
        assert_eq!(warnings_of(&entries, &entry["id"]), ["over24HoursADay"]);
    }
    assert_eq!(
        warnings_of(&entries, &entries_typed[2]["id"]),
        Vec::<String>::new()
    );
    phone.shut_down().await;
    Ok(())
}
