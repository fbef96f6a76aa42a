//! Erasing a person (RGPD art. 17), on an admin's request, in one
//! transaction:
//!
//! - the account keeps its row (records, decisions and the trail point to
//!   it by id) under a pseudonym, with no email, password, roles, sessions
//!   or phones; its invitations and devices take the pseudonym too;
//! - each of their notebooks is replaced by a history-free copy without
//!   their personal fields (`sync::documents::erasure`), under a new
//!   document id; the inventory rows move to the copy and are rewritten
//!   from it, and the old document is retired: its chunks deleted, no peer
//!   reading or writing it again, so a phone still holding its history
//!   cannot bring the erased values back;
//! - in each territory they worked in, the audit trail's values of those
//!   fields are redacted and the erasure appended to the chain, committing
//!   to every redacted entry (migration 0021, `audit::verify`).
//!
//! Before that transaction, the account is disabled (every connection of
//! it closes) and the trail is brought up to date, so that every commit of
//! the notebooks is an entry the erasure can redact.

use automerge::Automerge;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use sync::{
    documents::{erasure::erased_copy, read_notebook},
    protocol::DocumentId,
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    audit,
    auth::admin,
    inventory::materialise::{self, CommittedDoc, DocumentKind, Fingerprints},
    notifications::{DocumentCommitted, DOCUMENT_COMMITTED_CHANNEL},
};

/// How many times the erasure brings the trail up to date and tries again
/// when a commit of the notebooks arrived in between (a coordinator's
/// resolution written into one).
const ATTEMPTS: usize = 5;

/// What an erasure did.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErasureReport {
    pub account_id: Uuid,
    /// Names this erasure in the audit trail's markers and entries.
    pub erasure_id: Uuid,
    /// The display name the account has from now on.
    pub pseudonym: String,
    pub erased_at: DateTime<Utc>,
    pub notebooks: Vec<ReplacedNotebook>,
    /// The erasure's entry in each territory's audit trail.
    pub audit_entries: Vec<ErasureEntry>,
}

/// A notebook retired and the history-free copy that replaced it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplacedNotebook {
    pub territory_id: Uuid,
    pub retired: String,
    pub replacement: String,
    pub records: usize,
}

/// Where the erasure stands in one territory's chain.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErasureEntry {
    pub territory_id: Uuid,
    pub seq: i64,
    /// Entries whose personal values it replaced by its marker.
    pub entries_redacted: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("account {0} not found")]
    NotFound(Uuid),
    #[error("account {0} is already erased")]
    AlreadyErased(Uuid),
    #[error("the audit trail kept receiving commits of the person's notebooks; try again")]
    Busy,
    /// Stored data the erasure cannot work with (a notebook without a
    /// header); nothing was changed.
    #[error("the person's data could not be erased: {0}")]
    Unusable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Erases `account` on `by`'s request (made in web session `session`).
pub async fn erase(
    pool: &PgPool,
    account: Uuid,
    by: Uuid,
    session: Option<Uuid>,
) -> Result<ErasureReport, ErasureError> {
    match admin::disable_account(pool, account, by).await {
        Err(crate::auth::AuthError::NotFound(_)) => return Err(ErasureError::NotFound(account)),
        Err(crate::auth::AuthError::Database(error)) => return Err(error.into()),
        Err(other) => return Err(ErasureError::Unusable(other.to_string())),
        Ok(()) => {}
    }
    for attempt in 1..=ATTEMPTS {
        audit::chain::catch_up(pool).await?;
        let mut tx = pool.begin().await?;
        match erase_in(&mut tx, account, by, session).await {
            Ok(report) => {
                tx.commit().await?;
                tracing::info!(%account, by = %by, erasure = %report.erasure_id,
                    notebooks = report.notebooks.len(), "account erased");
                return Ok(report);
            }
            Err(ErasureError::Database(sqlx::Error::Database(error)))
                if error.code().as_deref() == Some(NOT_WRITTEN_OUT) =>
            {
                tracing::info!(%account, attempt, "erasure: commits arrived meanwhile; the trail is brought up to date again");
            }
            Err(error) => return Err(error),
        }
    }
    Err(ErasureError::Busy)
}

/// `audit_erase`'s refusal while commits of the notebooks wait to be
/// written out as entries (object_not_in_prerequisite_state).
const NOT_WRITTEN_OUT: &str = "55000";

async fn erase_in(
    tx: &mut Transaction<'_, Postgres>,
    account: Uuid,
    by: Uuid,
    session: Option<Uuid>,
) -> Result<ErasureReport, ErasureError> {
    let found: Option<(Option<String>, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT email, erased_at FROM accounts WHERE id = $1 FOR UPDATE")
            .bind(account)
            .fetch_optional(&mut **tx)
            .await?;
    let email = match found {
        None => return Err(ErasureError::NotFound(account)),
        Some((_, Some(_))) => return Err(ErasureError::AlreadyErased(account)),
        Some((email, None)) => email,
    };
    let erasure_id = Uuid::new_v4();
    // Not derived from the account id: nothing links the pseudonym to
    // anything the person was known by.
    let pseudonym = format!("Personne effacée {}", &erasure_id.simple().to_string()[..6]);

    // The notebooks, locked against any commit until this transaction ends.
    let notebooks: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT doc_id, territory_id FROM documents \
         WHERE owner_id = $1 AND kind = 'notebook' ORDER BY doc_id FOR UPDATE",
    )
    .bind(account)
    .fetch_all(&mut **tx)
    .await?;
    let mut replaced = Vec::new();
    let mut records: Vec<(Uuid, Vec<Uuid>)> = Vec::new();
    for (doc_id, territory) in &notebooks {
        let (notebook, keys) = replace_notebook(tx, doc_id, account, &pseudonym).await?;
        records.push((*territory, keys));
        replaced.push(notebook);
    }

    admin::close_account_connections(tx, account).await?;
    pseudonymise_account(tx, account, by, email.as_deref(), &pseudonym).await?;

    // An entry in every territory the person had a role or a notebook in:
    // where an auditor of that territory looks.
    let mut territories: Vec<Uuid> =
        sqlx::query_scalar("SELECT DISTINCT territory_id FROM memberships WHERE account_id = $1")
            .bind(account)
            .fetch_all(&mut **tx)
            .await?;
    territories.extend(notebooks.iter().map(|(_, territory)| *territory));
    territories.sort();
    territories.dedup();
    sqlx::query("DELETE FROM memberships WHERE account_id = $1")
        .bind(account)
        .execute(&mut **tx)
        .await?;
    let mut audit_entries = Vec::new();
    for territory in territories {
        let in_territory: Vec<&ReplacedNotebook> = replaced
            .iter()
            .filter(|n| n.territory_id == territory)
            .collect();
        let doc_ids: Vec<&str> = in_territory.iter().map(|n| n.retired.as_str()).collect();
        let record_ids: Vec<Uuid> = records
            .iter()
            .filter(|(t, _)| *t == territory)
            .flat_map(|(_, keys)| keys.iter().copied())
            .collect();
        let summary = json!({
            "pseudonym": pseudonym,
            "notebooks": in_territory.iter().map(|n| json!({
                "retired": n.retired, "replacement": n.replacement, "records": n.records,
            })).collect::<Vec<_>>(),
        });
        let seq: i64 = sqlx::query_scalar("SELECT audit_erase($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(territory)
            .bind(erasure_id)
            .bind(account)
            .bind(by)
            .bind(session)
            .bind(&doc_ids)
            .bind(&record_ids)
            .bind(summary)
            .fetch_one(&mut **tx)
            .await?;
        let entries_redacted: i64 = sqlx::query_scalar(
            "SELECT jsonb_array_length(detail -> 'redacted')::bigint FROM audit_log \
             WHERE territory_id = $1 AND seq = $2",
        )
        .bind(territory)
        .bind(seq)
        .fetch_one(&mut **tx)
        .await?;
        audit_entries.push(ErasureEntry {
            territory_id: territory,
            seq,
            entries_redacted,
        });
    }
    let erased_at: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut **tx)
        .await?;
    Ok(ErasureReport {
        account_id: account,
        erasure_id,
        pseudonym,
        erased_at,
        notebooks: replaced,
        audit_entries,
    })
}

/// Replaces notebook `doc_id` (locked by the caller) by its erased copy:
/// stored under a new id, the inventory rows moved to it and rewritten from
/// it, the old document retired. Returns the replacement and its records'
/// ids.
async fn replace_notebook(
    tx: &mut Transaction<'_, Postgres>,
    doc_id: &str,
    account: Uuid,
    pseudonym: &str,
) -> Result<(ReplacedNotebook, Vec<Uuid>), ErasureError> {
    let committed = materialise::load_committed(tx, doc_id).await?;
    let header = committed
        .header
        .ok_or_else(|| ErasureError::Unusable(format!("notebook {doc_id} has no header")))?;
    let (copy, records) = erased_copy(&committed.doc, header, pseudonym)
        .map_err(|error| ErasureError::Unusable(format!("notebook {doc_id}: {error}")))?;
    let keys: Vec<Uuid> = read_notebook(&copy)
        .records
        .iter()
        .filter_map(|record| record.key.parse().ok())
        .collect();
    let replacement = DocumentId::from_bytes(*Uuid::new_v4().as_bytes()).to_string();
    store_copy(tx, &replacement, header.territory_id, account, &copy).await?;
    for table in [
        "sightings",
        "degradation_reports",
        "timesheet_entries",
        "invalid_records",
    ] {
        sqlx::query(&format!("UPDATE {table} SET doc_id = $2 WHERE doc_id = $1"))
            .bind(doc_id)
            .bind(&replacement)
            .execute(&mut **tx)
            .await?;
    }
    let mut current = CommittedDoc {
        doc: copy,
        kind: DocumentKind::Notebook,
        revision: 1,
        fingerprints: Fingerprints::default(),
        header: Some(header),
    };
    materialise::materialise(tx, &replacement, &mut current).await?;

    sqlx::query("DELETE FROM automerge_chunks WHERE doc_id = $1")
        .bind(doc_id)
        .execute(&mut **tx)
        .await?;
    let revision: i64 = sqlx::query_scalar(
        "UPDATE documents SET kind = 'retired', replaced_by = $2, retired_at = now(), \
           revision = revision + 1, problems = '[]', updated_at = now() \
         WHERE doc_id = $1 RETURNING revision",
    )
    .bind(doc_id)
    .bind(&replacement)
    .fetch_one(&mut **tx)
    .await?;
    // Every process holding it live reloads it, retired: no peer reads or
    // writes it any more.
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(DOCUMENT_COMMITTED_CHANNEL)
        .bind(DocumentCommitted::payload(doc_id, revision, Uuid::nil()))
        .execute(&mut **tx)
        .await?;
    Ok((
        ReplacedNotebook {
            territory_id: header.territory_id,
            retired: doc_id.to_string(),
            replacement,
            records,
        },
        keys,
    ))
}

/// Stores a new notebook whole, as one snapshot chunk.
async fn store_copy(
    conn: &mut PgConnection,
    doc_id: &str,
    territory: Uuid,
    owner: Uuid,
    copy: &Automerge,
) -> Result<(), sqlx::Error> {
    let chunk = copy.save();
    sqlx::query(
        "INSERT INTO documents (doc_id, territory_id, owner_id, kind, revision) \
         VALUES ($1, $2, $3, 'notebook', 1)",
    )
    .bind(doc_id)
    .bind(territory)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO automerge_chunks (key, doc_id, data) VALUES ($1, $2, $3)")
        .bind(format!("{doc_id}/snapshot/{:x}", Sha256::digest(&chunk)))
        .bind(doc_id)
        .bind(chunk)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The account under its pseudonym, with nothing left to log in with.
async fn pseudonymise_account(
    tx: &mut Transaction<'_, Postgres>,
    account: Uuid,
    by: Uuid,
    email: Option<&str>,
    pseudonym: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE accounts SET display_name = $2, email = NULL, password_hash = NULL, \
           is_admin = false, disabled_at = COALESCE(disabled_at, now()), \
           disabled_by = COALESCE(disabled_by, $3), erased_at = now(), erased_by = $3 \
         WHERE id = $1",
    )
    .bind(account)
    .bind(pseudonym)
    .bind(by)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE invitations SET display_name = $2 \
         WHERE account_id = $1 OR redeemed_device_id IN (SELECT id FROM devices WHERE account_id = $1)",
    )
    .bind(account)
    .bind(pseudonym)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE devices SET name = $2, revoked_at = COALESCE(revoked_at, now()), \
           revoked_by = COALESCE(revoked_by, $3) \
         WHERE account_id = $1",
    )
    .bind(account)
    .bind(pseudonym)
    .bind(by)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE sessions SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL",
    )
    .bind(account)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM password_resets WHERE account_id = $1")
        .bind(account)
        .execute(&mut **tx)
        .await?;
    if let Some(email) = email {
        sqlx::query("DELETE FROM login_attempts WHERE email_key = $1")
            .bind(email.trim().to_lowercase())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
