//! A person's own data, as they may ask for it (RGPD art. 15 and 20,
//! docs/PRIVACY.md): their account, roles and phones, every record of their
//! notebooks as the notebook holds it (what they typed, in the record
//! schemas' JSON), and the coordinators' decisions about those records.
//! Read from what the server stores; nothing is written.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::inventory::materialise::load_committed;

/// Everything the service holds that is about one person and theirs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersonalData {
    pub exported_at: DateTime<Utc>,
    pub account: AccountData,
    pub memberships: Vec<MembershipData>,
    pub devices: Vec<DeviceData>,
    /// The person's notebooks with their records (sightings, degradation
    /// reports, hours).
    pub notebooks: Vec<NotebookData>,
    /// Decisions coordinators took about the person's records, latest first.
    pub decisions: Vec<DecisionData>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AccountData {
    pub id: Uuid,
    pub display_name: String,
    #[schema(required = true)]
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct MembershipData {
    pub territory_id: Uuid,
    pub territory_name: String,
    pub role: String,
    pub granted_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct DeviceData {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub last_seen_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotebookData {
    /// The automerge-repo document id.
    pub document_id: String,
    pub territory_id: Uuid,
    pub records: Vec<RecordData>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordData {
    /// `sighting`, `degradation_report` or `timesheet_entry`.
    pub kind: String,
    /// The record as the notebook holds it (its JSON Schema in `schemas/json/`).
    #[schema(value_type = Object)]
    pub record: Value,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct DecisionData {
    pub record_id: Uuid,
    pub record_kind: String,
    /// `verification`, `follow_up`, `approval` or `duplicate`.
    pub decision: String,
    pub status: String,
    #[schema(required = true)]
    pub reason: Option<String>,
    /// Who decided: their display name.
    pub decided_by: String,
    pub decided_at: DateTime<Utc>,
}

/// `account`'s data; None if there is no such account.
pub async fn export(pool: &PgPool, account: Uuid) -> anyhow::Result<Option<PersonalData>> {
    let Some(account_data) = sqlx::query_as::<_, AccountData>(
        "SELECT id, display_name, email, created_at FROM accounts WHERE id = $1",
    )
    .bind(account)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let memberships = sqlx::query_as::<_, MembershipData>(
        "SELECT m.territory_id, t.name AS territory_name, m.role, m.granted_at \
         FROM memberships m JOIN territories t ON t.id = m.territory_id \
         WHERE m.account_id = $1 ORDER BY t.name, m.role",
    )
    .bind(account)
    .fetch_all(pool)
    .await?;
    let devices = sqlx::query_as::<_, DeviceData>(
        "SELECT id, name, created_at, last_seen_at, revoked_at FROM devices \
         WHERE account_id = $1 ORDER BY created_at",
    )
    .bind(account)
    .fetch_all(pool)
    .await?;
    let documents: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT doc_id, territory_id FROM documents \
         WHERE owner_id = $1 AND kind = 'notebook' ORDER BY first_seen_at, doc_id",
    )
    .bind(account)
    .fetch_all(pool)
    .await?;
    let mut notebooks = Vec::with_capacity(documents.len());
    let mut conn = pool.acquire().await?;
    for (doc_id, territory_id) in documents {
        let committed = load_committed(&mut conn, &doc_id).await?;
        let records = sync::documents::read_notebook(&committed.doc)
            .records
            .into_iter()
            .map(|state| RecordData {
                kind: state.kind.as_str().to_string(),
                record: state.raw,
            })
            .collect();
        notebooks.push(NotebookData {
            document_id: doc_id,
            territory_id,
            records,
        });
    }
    drop(conn);
    let decisions = sqlx::query_as::<_, DecisionData>(
        "SELECT d.record_id, d.record_kind, d.decision, d.status, d.reason, \
                a.display_name AS decided_by, d.decided_at \
         FROM review_decisions d JOIN accounts a ON a.id = d.decided_by \
         WHERE d.volunteer_id = $1 ORDER BY d.decided_at DESC, d.record_id",
    )
    .bind(account)
    .fetch_all(pool)
    .await?;
    Ok(Some(PersonalData {
        exported_at: Utc::now(),
        account: account_data,
        memberships,
        devices,
        notebooks,
        decisions,
    }))
}
