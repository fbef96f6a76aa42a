//! Verifying a territory's audit chain: every entry in place (no seq
//! missing), following the one before (its `prev_hash` is that entry's
//! hash), holding what it held (its content still hashes to its `hash`), and
//! the last one being the chain head. The first entry that fails is named.
//!
//! An entry an erasure redacted (migration 0021) keeps its hash, so the
//! next entry still follows it; what it holds now is checked against the
//! hash the erasure's own entry, later in the chain, committed to. A
//! verification lists the erasures: which, when, by whom, how many entries.
//!
//! The chain shows any rewrite of the log that did not also recompute every
//! later hash and the head; against a superuser who does that, an auditor
//! keeps a head they were once shown (`anchor`) and checks it is still in
//! the chain.

use std::collections::HashMap;

use futures::TryStreamExt;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

/// What a verification found.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub territory_id: Uuid,
    /// Entries checked.
    pub entries: i64,
    /// The chain head as recorded (null: nothing audited yet).
    pub head: Option<ChainPoint>,
    /// True when every entry holds.
    pub intact: bool,
    /// The first entry that does not hold, and why.
    pub first_broken: Option<BrokenEntry>,
    /// When an anchor was given: whether that entry still has that hash.
    pub anchor_holds: Option<bool>,
    /// Commits of this territory the audit write-out could not write as
    /// entries, oldest first (at most [`SET_ASIDE_SHOWN`]): their changes
    /// are stored and in the inventory, their entries are missing from the
    /// chain, and this says why.
    pub set_aside: Vec<SetAsideCommit>,
    /// How many commits of this territory are set aside in all.
    pub set_aside_count: i64,
    /// The erasures of people recorded in the chain, oldest first: the
    /// values they replaced by `{"erased": <erasureId>}` are gone, and the
    /// entries that held them verify against what each erasure committed to.
    pub erasures: Vec<ErasureInTrail>,
    /// When the trail could not be brought up to date before the walk (the
    /// database failed meanwhile): why. What was chained until then was
    /// verified all the same.
    pub catch_up_failed: Option<String>,
}

/// An erasure (`crate::personal_data::erasure`) as the chain records it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ErasureInTrail {
    /// The erasure's own entry.
    pub seq: i64,
    pub erasure_id: Uuid,
    /// The erased account (now known by its pseudonym).
    pub subject: Uuid,
    /// The admin who erased them.
    pub erased_by: Uuid,
    pub erased_at: chrono::DateTime<chrono::Utc>,
    /// Entries whose personal values it replaced.
    pub entries_redacted: i64,
}

/// What an erasure committed to about one entry it redacted (hex hashes).
struct Redaction {
    erasure_seq: i64,
    original: String,
    redacted: String,
}

/// Set-aside commits a verification lists at most.
pub const SET_ASIDE_SHOWN: i64 = 100;

/// A commit the audit write-out set aside (migration 0014).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct SetAsideCommit {
    /// The document the commit changed.
    pub doc_id: String,
    /// The changes it accepted (hex hashes).
    pub changes: Vec<String>,
    /// When the accepting transaction began.
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    pub set_aside_at: chrono::DateTime<chrono::Utc>,
    /// Why its entries could not be written.
    pub reason: String,
}

/// An entry of the chain: its position and hash (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct ChainPoint {
    pub seq: i64,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BrokenEntry {
    pub seq: i64,
    pub problem: String,
}

/// Walks `territory`'s chain (streamed: a long log is never held whole).
pub async fn verify(
    pool: &PgPool,
    territory: Uuid,
    anchor: Option<&ChainPoint>,
) -> Result<Verification, sqlx::Error> {
    // Everything accepted until now is in the chain first. A commit that
    // cannot be written out is set aside, not a failure; a database that
    // fails meanwhile does not stop the walk over what is chained.
    let catch_up_failed = match super::chain::catch_up(pool).await {
        Ok(_) => None,
        Err(error) => {
            tracing::error!(%error, %territory, "audit: the trail could not be brought up to date before verifying");
            Some(format!(
                "the trail could not be brought up to date: {error}"
            ))
        }
    };
    let head: Option<(i64, String)> = sqlx::query_as(
        "SELECT seq, encode(hash, 'hex') FROM audit_chain_heads WHERE territory_id = $1",
    )
    .bind(territory)
    .fetch_optional(pool)
    .await?;
    let (erasures, redactions) = erasures(pool, territory).await?;
    let mut rows = sqlx::query_as::<_, (i64, String, String, String)>(
        "SELECT seq, encode(prev_hash, 'hex'), encode(hash, 'hex'), \
           encode(audit_entry_hash(prev_hash, a), 'hex') \
         FROM audit_log a WHERE territory_id = $1 ORDER BY seq",
    )
    .bind(territory)
    .fetch(pool);
    let mut entries = 0;
    let mut previous = String::new();
    let mut first_broken = None;
    let mut anchor_holds = anchor.map(|_| false);
    while let Some((seq, prev_hash, hash, recomputed)) = rows.try_next().await? {
        let expected = entries + 1;
        let problem = if seq != expected {
            Some((
                expected,
                format!("entry {expected} is missing (the next one is entry {seq})"),
            ))
        } else if prev_hash != previous {
            Some((
                seq,
                format!(
                    "entry {seq} does not follow entry {}: it names another entry before it",
                    seq - 1
                ),
            ))
        } else if let Some(redaction) = redactions.get(&seq) {
            redaction_problem(seq, &hash, &recomputed, redaction).map(|problem| (seq, problem))
        } else if recomputed != hash {
            Some((
                seq,
                format!(
                    "entry {seq} no longer holds what it held: its content does not match its hash"
                ),
            ))
        } else {
            None
        };
        if let Some((seq, problem)) = problem {
            first_broken = Some(BrokenEntry { seq, problem });
            break;
        }
        if let Some(anchor) = anchor.filter(|anchor| anchor.seq == seq) {
            anchor_holds = Some(anchor.hash.eq_ignore_ascii_case(&hash));
        }
        entries = seq;
        previous = hash;
    }
    drop(rows);
    if first_broken.is_none() {
        first_broken = match &head {
            Some((head_seq, _)) if *head_seq > entries => Some(BrokenEntry {
                seq: entries + 1,
                problem: format!(
                    "entries {} to {head_seq} are missing: the chain head is entry {head_seq}",
                    entries + 1
                ),
            }),
            Some((head_seq, head_hash)) if *head_seq < entries || *head_hash != previous => {
                Some(BrokenEntry {
                    seq: entries,
                    problem: format!("entry {entries} is not the chain head the log recorded"),
                })
            }
            None if entries > 0 => Some(BrokenEntry {
                seq: 1,
                problem: "the log has entries but no chain head".into(),
            }),
            _ => None,
        };
    }
    let set_aside: Vec<SetAsideCommit> = sqlx::query_as(
        "SELECT doc_id, changes, recorded_at, set_aside_at, reason FROM audit_commits_set_aside \
         WHERE territory_id = $1 ORDER BY id LIMIT $2",
    )
    .bind(territory)
    .bind(SET_ASIDE_SHOWN)
    .fetch_all(pool)
    .await?;
    let set_aside_count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_commits_set_aside WHERE territory_id = $1")
            .bind(territory)
            .fetch_one(pool)
            .await?;
    Ok(Verification {
        territory_id: territory,
        entries,
        head: head.map(|(seq, hash)| ChainPoint { seq, hash }),
        intact: first_broken.is_none(),
        first_broken,
        anchor_holds,
        set_aside,
        set_aside_count,
        erasures,
        catch_up_failed,
    })
}

/// The territory's erasures, and what each committed to about the entries
/// it redacted, by their seq.
async fn erasures(
    pool: &PgPool,
    territory: Uuid,
) -> Result<(Vec<ErasureInTrail>, HashMap<i64, Redaction>), sqlx::Error> {
    let rows: Vec<(i64, Uuid, Uuid, Uuid, chrono::DateTime<chrono::Utc>, serde_json::Value)> =
        sqlx::query_as(
            "SELECT seq, (detail ->> 'erasureId')::uuid, (detail ->> 'subject')::uuid, actor_id,                recorded_at, detail -> 'redacted'              FROM audit_log WHERE territory_id = $1 AND action = 'erasure' ORDER BY seq",
        )
        .bind(territory)
        .fetch_all(pool)
        .await?;
    let mut erasures = Vec::new();
    let mut redactions = HashMap::new();
    for (seq, erasure_id, subject, erased_by, erased_at, redacted) in rows {
        let redacted = redacted.as_array().cloned().unwrap_or_default();
        for item in &redacted {
            let (Some(entry), Some(original), Some(now)) =
                (item[0].as_i64(), item[1].as_str(), item[2].as_str())
            else {
                continue;
            };
            redactions.insert(
                entry,
                Redaction {
                    erasure_seq: seq,
                    original: original.to_string(),
                    redacted: now.to_string(),
                },
            );
        }
        erasures.push(ErasureInTrail {
            seq,
            erasure_id,
            subject,
            erased_by,
            erased_at,
            entries_redacted: redacted.len() as i64,
        });
    }
    Ok((erasures, redactions))
}

/// Why a redacted entry does not hold, if it does not: it must be the entry
/// the erasure redacted (its hash, which the next entry follows) and hold
/// what the erasure left of it; and an erasure redacts only entries before
/// its own.
fn redaction_problem(
    seq: i64,
    hash: &str,
    recomputed: &str,
    redaction: &Redaction,
) -> Option<String> {
    let erasure = redaction.erasure_seq;
    if erasure <= seq {
        Some(format!(
            "entry {seq} is said to be redacted by entry {erasure}, which does not come after it"
        ))
    } else if !redaction.original.eq_ignore_ascii_case(hash) {
        Some(format!(
            "entry {seq} is not the entry the erasure in entry {erasure} redacted: its hash differs"
        ))
    } else if !redaction.redacted.eq_ignore_ascii_case(recomputed) {
        Some(format!(
            "entry {seq} no longer holds what the erasure in entry {erasure} left of it: its content does not match"
        ))
    } else {
        None
    }
}
