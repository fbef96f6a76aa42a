//! Sample records as a phone would write them, built through the same
//! validation the server applies (`FieldRecord::from_raw`).

use chrono::{Duration, Utc};
use schemas::{FieldRecord, Sighting};
use serde_json::{json, Value};
use uuid::Uuid;

/// The JSON of a valid sighting near Lyon's Parc de la Tête d'Or.
pub fn sighting_json(author: Uuid, scientific_name: &str, count: i64) -> Value {
    let id = Uuid::new_v4();
    let now = Utc::now() - Duration::minutes(5);
    json!({
        "id": id.to_string(),
        "occurrenceID": format!("urn:uuid:{id}"),
        "scientificName": scientific_name,
        "eventDate": now.to_rfc3339(),
        "decimalLatitude": 45.7772 + (count as f64) * 1e-5,
        "decimalLongitude": 4.8550,
        "coordinateUncertaintyInMeters": 12.0,
        "individualCount": count,
        "occurrenceStatus": "present",
        "basisOfRecord": "HumanObservation",
        "recordedBy": "Camille Martin",
        "site": "Friche Saint-Vincent",
        "authorId": author.to_string(),
        "deviceId": "phone-test",
        "createdAt": now.to_rfc3339(),
        "modifiedAt": now.to_rfc3339(),
    })
}

/// A valid typed sighting.
pub fn sighting(author: Uuid, scientific_name: &str, count: i64) -> Sighting {
    Sighting::from_raw(&sighting_json(author, scientific_name, count))
        .expect("the sample sighting is valid")
}

/// The JSON of a valid timesheet entry: two hours of planting this morning.
pub fn timesheet_json(volunteer: Uuid) -> Value {
    let id = Uuid::new_v4();
    let now = Utc::now() - Duration::minutes(5);
    let started = now - Duration::hours(2);
    json!({
        "id": id.to_string(),
        "volunteerId": volunteer.to_string(),
        "workDate": now.date_naive().to_string(),
        "startedAt": started.to_rfc3339(),
        "endedAt": now.to_rfc3339(),
        "activity": "planting",
        "site": "Friche Saint-Vincent",
        "authorId": volunteer.to_string(),
        "deviceId": "phone-test",
        "createdAt": now.to_rfc3339(),
        "modifiedAt": now.to_rfc3339(),
    })
}
