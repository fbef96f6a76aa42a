//! Carrying decisions to the phones: each volunteer's review document
//! (`sync::documents::review`) is rewritten from `review_decisions` through the sync
//! core, which stores it and pushes it to the volunteer's connected phones.
//!
//! A decision's transaction marks its volunteers in `review_outbox`; the
//! request that took it then publishes them at once, and a sweep publishes
//! what a crash or a storage failure left behind. Publishing writes only what
//! the document lacks, so publishing twice (two processes, a retry) is
//! harmless.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::PgPool;
use sync::{
    documents::{
        review::{put_decisions, DecisionEntry},
        NotebookHeader,
    },
    protocol::DocumentId,
};
use uuid::Uuid;

use super::ReviewError;
use crate::sync::{EditError, ServerWrite, SyncCore, WriteFailure};

/// How often the outbox is swept, and how old an entry must be to be taken
/// by the sweep (younger ones are being published by their request).
const SWEEP_EVERY: Duration = Duration::from_secs(15);
const SWEEP_AFTER_SECS: f64 = 10.0;

/// A row of `review_decisions` with its coordinator's name: record, record
/// kind, decision, status, reason, decided by, decided at.
type StoredDecision = (
    Uuid,
    String,
    String,
    String,
    Option<String>,
    String,
    DateTime<Utc>,
);

/// Publishes review documents. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    pool: PgPool,
    sync: SyncCore,
}

impl Publisher {
    /// A publisher, and its sweep running until `stop`.
    pub fn start(
        pool: PgPool,
        sync: SyncCore,
        stop: tokio_util::sync::CancellationToken,
    ) -> Publisher {
        let publisher = Publisher { pool, sync };
        tokio::spawn(publisher.clone().sweep(stop));
        publisher
    }

    /// Brings the review documents of `volunteers` up to their decisions.
    /// A failure leaves them in the outbox for the sweep.
    pub async fn publish(&self, territory: Uuid, volunteers: &[Uuid]) -> Result<(), ReviewError> {
        let mut first_error = None;
        for volunteer in volunteers {
            if let Err(error) = self.publish_one(territory, *volunteer).await {
                tracing::warn!(%territory, %volunteer, %error, "publishing decisions failed; the sweep retries");
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn publish_one(&self, territory: Uuid, volunteer: Uuid) -> Result<(), ReviewError> {
        let doc_id = review_document(&self.pool, territory, volunteer).await?;
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM review_outbox WHERE territory_id = $1 AND volunteer_id = $2",
        )
        .bind(territory)
        .bind(volunteer)
        .fetch_optional(&self.pool)
        .await?;
        let rows: Vec<StoredDecision> = sqlx::query_as(
            "SELECT d.record_id, d.record_kind, d.decision, d.status, d.reason, \
                   a.display_name, d.decided_at \
                 FROM review_decisions d JOIN accounts a ON a.id = d.decided_by \
                 WHERE d.territory_id = $1 AND d.volunteer_id = $2 ORDER BY d.record_id",
        )
        .bind(territory)
        .bind(volunteer)
        .fetch_all(&self.pool)
        .await?;
        let entries: Vec<DecisionEntry> = rows
            .into_iter()
            .map(
                |(record_id, record_kind, decision, status, reason, decided_by, decided_at)| {
                    DecisionEntry {
                        record_id,
                        record_kind,
                        decision: document_key(&decision).to_string(),
                        status,
                        reason,
                        decided_by,
                        decided_at: decided_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    }
                },
            )
            .collect();
        let header = NotebookHeader {
            territory_id: territory,
            owner_id: volunteer,
        };
        let write = ServerWrite {
            edit: Box::new(move |doc| {
                put_decisions(doc, header, &entries)
                    .map(|_| ())
                    .map_err(|error| Box::new(error) as EditError)
            }),
            on_behalf_of: None,
            history: Vec::new(),
        };
        match self.sync.write(doc_id, write).await {
            Ok(_) => {}
            Err(WriteFailure::Refused(error)) => {
                return Err(ReviewError::Storage(error.to_string()))
            }
            Err(WriteFailure::Storage(reason)) => return Err(ReviewError::Storage(reason)),
        }
        if let Some(version) = version {
            sqlx::query(
                "DELETE FROM review_outbox \
                 WHERE territory_id = $1 AND volunteer_id = $2 AND version = $3",
            )
            .bind(territory)
            .bind(volunteer)
            .bind(version)
            .execute(&self.pool)
            .await?;
        }
        tracing::debug!(%territory, %volunteer, doc_id = %doc_id, "decisions published");
        Ok(())
    }

    async fn sweep(self, stop: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(SWEEP_EVERY) => {}
            }
            let lagging: Result<Vec<(Uuid, Uuid)>, _> = sqlx::query_as(
                "SELECT territory_id, volunteer_id FROM review_outbox \
                 WHERE since < now() - make_interval(secs => $1) ORDER BY since LIMIT 100",
            )
            .bind(SWEEP_AFTER_SECS)
            .fetch_all(&self.pool)
            .await;
            match lagging {
                Ok(lagging) => {
                    for (territory, volunteer) in lagging {
                        if let Err(error) = self.publish_one(territory, volunteer).await {
                            tracing::warn!(%territory, %volunteer, %error, "the sweep could not publish decisions");
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "reading the review outbox"),
            }
        }
    }
}

/// The key of a decision in the review document.
fn document_key(decision: &str) -> &str {
    match decision {
        "follow_up" => "followUp",
        other => other,
    }
}

/// The id of the review document of `volunteer` in `territory`, allocated on
/// first use. Its `documents` row is written before any change, so the id is
/// known to be a review document from the start and no peer can create
/// another document under it.
pub async fn review_document(
    pool: &PgPool,
    territory: Uuid,
    volunteer: Uuid,
) -> Result<DocumentId, sqlx::Error> {
    let fresh = DocumentId::from_bytes(*Uuid::new_v4().as_bytes()).to_string();
    sqlx::query(
        "INSERT INTO documents (doc_id, territory_id, owner_id, kind) VALUES ($1, $2, $3, 'review') \
         ON CONFLICT (territory_id, owner_id) WHERE kind = 'review' DO NOTHING",
    )
    .bind(&fresh)
    .bind(territory)
    .bind(volunteer)
    .execute(pool)
    .await?;
    let doc_id: String = sqlx::query_scalar(
        "SELECT doc_id FROM documents WHERE territory_id = $1 AND owner_id = $2 AND kind = 'review'",
    )
    .bind(territory)
    .bind(volunteer)
    .fetch_one(pool)
    .await?;
    DocumentId::parse(&doc_id).map_err(|reason| sqlx::Error::Decode(reason.into()))
}
