//! The acknowledgement gate: a sync message leaves the server only when every
//! change it acknowledges is committed in PostgreSQL.
//!
//! In the automerge sync protocol the server acknowledges a phone's changes by
//! sending its new heads. samod generates that reply in the same step in which
//! it hands the changes to storage, so without a gate the reply can reach the
//! phone before the transaction commits, and a crash in between would lose
//! changes the phone believes delivered. The gate decodes each outgoing message,
//! and holds it until the document's committed state (see [`crate::committed`])
//! contains the heads it announces.

use std::time::Duration;

use automerge::ReadDoc;

use crate::committed::CommittedDocs;

/// How long a message may wait for its changes to commit before the connection
/// is closed instead (storage retries for longer, then stops the server).
const GATE_TIMEOUT: Duration = Duration::from_secs(90);
/// After this long, a waiting reply is reported in the log.
const SLOW_COMMIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("changes of document {0} were not committed in time; closing the connection")]
    NotCommitted(String),
    #[error("reading the committed state of document {doc_id}: {source}")]
    Database {
        doc_id: String,
        #[source]
        source: sqlx::Error,
    },
}

/// Waits until `outgoing` may be sent.
pub async fn wait_until_durable(
    committed: &CommittedDocs,
    outgoing: &[u8],
) -> Result<(), GateError> {
    let Some((doc_id, heads)) = sync::wire::announced_heads(outgoing) else {
        return Ok(());
    };
    if heads.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let mut reported = false;
    let durable = committed
        .wait_for(&doc_id, GATE_TIMEOUT, |doc| {
            let missing: Vec<_> = heads
                .iter()
                .filter(|head| doc.get_change_by_hash(head).is_none())
                .collect();
            if !missing.is_empty() && !reported && started.elapsed() > SLOW_COMMIT {
                reported = true;
                tracing::warn!(
                    doc_id,
                    ?missing,
                    "a sync reply waits for changes still not committed"
                );
            }
            missing.is_empty().then_some(())
        })
        .await
        .map_err(|source| GateError::Database {
            doc_id: doc_id.clone(),
            source,
        })?;
    durable.ok_or(GateError::NotCommitted(doc_id))
}
