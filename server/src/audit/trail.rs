//! Audit entries for the changes a commit stores: one per change and record
//! it touched, with the fields it wrote before and after
//! (`sync::documents::audit::record_edits`) and the credential that delivered it.
//!
//! The accepting transaction queues the commit ([`queue`]: the document,
//! its chunk, its heads, the changes' hashes; their receipts name who
//! delivered each), and the background work writes it out as entries
//! ([`write_out`]) before chaining them. The entries are computed from the
//! commit's own chunk and the document at the commit's heads, both stored
//! with the commit and never rewritten, so they are exactly what the commit
//! would have computed, and a commit that is acknowledged is in the trail
//! whatever happens to the process after. Reading its fields back is
//! automerge work, and storing them a row per record: kept out of a storm's
//! commits, they no longer slow them (docs/PERFORMANCE.md).

use std::collections::HashMap;

use automerge::{Automerge, Change, ChangeHash};
use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::inventory::materialise;

/// Commits one write-out transaction takes at most: its entries are held
/// until they are inserted, and background work returns between batches
/// once phones sync again.
const WRITE_OUT_BATCH: i64 = 25;

/// A commit of notebook changes, as the accepting transaction queues it.
#[derive(Debug)]
pub struct AcceptedCommit {
    pub territory: Uuid,
    pub doc_id: String,
    /// `automerge_chunks.key` of the chunk holding the commit's changes.
    pub chunk_key: String,
    /// The document's heads once the commit's changes are applied.
    pub heads: Vec<String>,
    /// The changes the commit accepted (each has its receipt).
    pub changes: Vec<String>,
}

/// Queues `accepted` for [`write_out`], in the accepting transaction, in one
/// statement.
pub async fn queue(
    conn: &mut PgConnection,
    accepted: Vec<AcceptedCommit>,
) -> Result<(), sqlx::Error> {
    if accepted.is_empty() {
        return Ok(());
    }
    // Arrays of arrays must be rectangular in PostgreSQL: heads and changes
    // travel as space-separated text.
    let mut territory = Vec::with_capacity(accepted.len());
    let mut doc_id = Vec::with_capacity(accepted.len());
    let mut chunk_key = Vec::with_capacity(accepted.len());
    let mut heads = Vec::with_capacity(accepted.len());
    let mut changes = Vec::with_capacity(accepted.len());
    for commit in accepted {
        territory.push(commit.territory);
        doc_id.push(commit.doc_id);
        chunk_key.push(commit.chunk_key);
        heads.push(commit.heads.join(" "));
        changes.push(commit.changes.join(" "));
    }
    sqlx::query(
        "INSERT INTO audit_commits_pending (territory_id, doc_id, chunk_key, heads, changes) \
         SELECT territory_id, doc_id, chunk_key, string_to_array(heads, ' '), \
           string_to_array(changes, ' ') \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY \
           AS c(territory_id, doc_id, chunk_key, heads, changes, n) \
         ORDER BY n",
    )
    .bind(territory)
    .bind(doc_id)
    .bind(chunk_key)
    .bind(heads)
    .bind(changes)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes every queued commit out as pending audit entries (batch after
/// batch), in the order they were queued, unless `interrupted` says to stop
/// between two batches; returns whether the queue was emptied. One process
/// at a time (an advisory lock; another waits for it), so a commit is
/// written out once.
pub async fn write_out(
    pool: &PgPool,
    interrupted: &(dyn Fn() -> bool + Sync),
) -> Result<bool, sqlx::Error> {
    loop {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('fieldnotes audit write-out'))")
            .execute(&mut *tx)
            .await?;
        let queued: Vec<QueuedCommit> = sqlx::query_as(
            "SELECT id, territory_id, doc_id, chunk_key, heads, changes, recorded_at \
             FROM audit_commits_pending ORDER BY id LIMIT $1",
        )
        .bind(WRITE_OUT_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if queued.is_empty() {
            return Ok(true);
        }
        // A document at a time, each loaded once: the chain orders entries by
        // when their commits began, not by the order they are written out.
        let ids: Vec<i64> = queued.iter().map(|commit| commit.id).collect();
        let mut queued = queued;
        queued.sort_by(|a, b| (&a.doc_id, a.id).cmp(&(&b.doc_id, b.id)));
        let mut written = Vec::new();
        let mut set_aside = Vec::new();
        let mut document: Option<(String, Automerge)> = None;
        for commit in queued {
            if document.as_ref().map(|(id, _)| id) != Some(&commit.doc_id) {
                let loaded = materialise::load_committed(&mut tx, &commit.doc_id).await?;
                document = Some((commit.doc_id.clone(), loaded.doc));
            }
            let (_, doc) = document.as_ref().expect("loaded above");
            let entries = commit.entries(&mut tx, doc).await?;
            match unstorable_text(&entries) {
                Some(reason) => set_aside.push((commit, reason)),
                None => written.push((commit, entries)),
            }
        }
        set_aside.extend(append_or_set_aside(&mut tx, written).await?);
        for (commit, reason) in &set_aside {
            tracing::error!(doc_id = %commit.doc_id, commit = commit.id, %reason, "audit: a commit that cannot be written out is set aside");
        }
        set_aside_commits(&mut tx, &set_aside).await?;
        sqlx::query("DELETE FROM audit_commits_pending WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::debug!(commits = ids.len(), "audit: commits written out");
        if (ids.len() as i64) < WRITE_OUT_BATCH {
            return Ok(true);
        }
        if interrupted() {
            return Ok(false);
        }
    }
}

/// Why `entries` cannot be stored, if a key or a value holds a character
/// PostgreSQL's `jsonb` cannot (`schemas::text`): named before the
/// database is asked, so the reason says where.
fn unstorable_text(entries: &[ChangeEntry]) -> Option<String> {
    entries.iter().find_map(|entry| {
        [
            ("before", &entry.before),
            ("after", &entry.after),
            ("detail", &entry.detail),
        ]
        .into_iter()
        .find_map(|(part, value)| {
            let found = schemas::text::forbidden_in_json(value).into_iter().next()?;
            Some(format!(
                "the entry of change {} ({part}.{}) {}",
                entry.change_hash,
                found.field,
                schemas::text::forbidden_reason(found.character)
            ))
        })
    })
}

/// Appends the entries of every commit in `written` in one statement; if
/// the database refuses the data, commit by commit, each in a savepoint,
/// so that only the commits it refuses are left out: returned with the
/// database's reason, to be set aside.
async fn append_or_set_aside(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    written: Vec<(QueuedCommit, Vec<ChangeEntry>)>,
) -> Result<Vec<(QueuedCommit, String)>, sqlx::Error> {
    let mut all = sqlx::Connection::begin(&mut **tx).await?;
    let everything: Vec<&ChangeEntry> = written.iter().flat_map(|(_, e)| e).collect();
    match append(&mut all, &everything).await {
        Ok(()) => {
            all.commit().await?;
            return Ok(Vec::new());
        }
        Err(error) if refuses_the_data(&error) => all.rollback().await?,
        Err(error) => return Err(error),
    }
    let mut refused = Vec::new();
    for (commit, entries) in written {
        let mut one = sqlx::Connection::begin(&mut **tx).await?;
        let entries: Vec<&ChangeEntry> = entries.iter().collect();
        match append(&mut one, &entries).await {
            Ok(()) => one.commit().await?,
            Err(error) if refuses_the_data(&error) => {
                one.rollback().await?;
                refused.push((commit, format!("the database refused its entries: {error}")));
            }
            Err(error) => return Err(error),
        }
    }
    Ok(refused)
}

/// Whether `error` is the database refusing a value (SQLSTATE class 22,
/// data exception: a character it cannot hold, a value out of range), which
/// no retry mends, rather than the database being unreachable or busy.
fn refuses_the_data(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => error.code().is_some_and(|code| code.starts_with("22")),
        sqlx::Error::Encode(_) => true,
        _ => false,
    }
}

/// Moves `commits` to `audit_commits_set_aside` with their reasons.
async fn set_aside_commits(
    conn: &mut PgConnection,
    commits: &[(QueuedCommit, String)],
) -> Result<(), sqlx::Error> {
    for (commit, reason) in commits {
        sqlx::query(
            "INSERT INTO audit_commits_set_aside \
               (id, territory_id, doc_id, chunk_key, heads, changes, recorded_at, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(commit.id)
        .bind(commit.territory_id)
        .bind(&commit.doc_id)
        .bind(&commit.chunk_key)
        .bind(&commit.heads)
        .bind(&commit.changes)
        .bind(commit.recorded_at)
        .bind(reason)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A row of `audit_commits_pending`.
#[derive(sqlx::FromRow)]
struct QueuedCommit {
    id: i64,
    territory_id: Uuid,
    doc_id: String,
    chunk_key: String,
    heads: Vec<String>,
    changes: Vec<String>,
    recorded_at: DateTime<Utc>,
}

impl QueuedCommit {
    /// The commit's entries, read from its chunk and from `doc` (the
    /// document as stored now) taken back to the commit's heads.
    async fn entries(
        &self,
        conn: &mut PgConnection,
        doc: &Automerge,
    ) -> Result<Vec<ChangeEntry>, sqlx::Error> {
        let chunk: Vec<u8> = sqlx::query_scalar("SELECT data FROM automerge_chunks WHERE key = $1")
            .bind(&self.chunk_key)
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or_default();
        let receipts: Vec<Receipt> = sqlx::query_as(
            "SELECT change_hash, account_id, device_id, session_id FROM change_receipts \
             WHERE doc_id = $1 AND change_hash = ANY($2)",
        )
        .bind(&self.doc_id)
        .bind(&self.changes)
        .fetch_all(&mut *conn)
        .await?;
        let mut receipts: HashMap<String, Receipt> = receipts
            .into_iter()
            .map(|receipt| (receipt.change_hash.clone(), receipt))
            .collect();
        let heads: Vec<ChangeHash> = self.heads.iter().filter_map(|h| h.parse().ok()).collect();
        let at_commit;
        let doc = if doc.get_heads() == heads {
            doc
        } else {
            match doc.fork_at(&heads) {
                Ok(fork) => {
                    at_commit = fork;
                    &at_commit
                }
                Err(error) => {
                    tracing::error!(doc_id = %self.doc_id, %error, "the commit's heads are not in the stored document");
                    doc
                }
            }
        };
        // In the order the commit received them.
        let delivered: Vec<Receipt> = self
            .changes
            .iter()
            .filter_map(|hash| receipts.remove(hash))
            .collect();
        if delivered.len() < self.changes.len() {
            tracing::error!(doc_id = %self.doc_id, "a queued change has no receipt: it is audited without its deliverer");
        }
        Ok(self.change_entries(doc, &chunk, &delivered))
    }

    /// The entries of the changes `delivered`, all stored in `doc` (the
    /// document at the commit's heads); `chunk` holds those changes as the
    /// commit stored them. A change that cannot be read is logged and
    /// audited without its fields, never dropped.
    ///
    /// The changes are parsed from the chunk, not asked of the document:
    /// automerge rebuilds a change it is asked for out of its operation set.
    fn change_entries(
        &self,
        doc: &Automerge,
        chunk: &[u8],
        delivered: &[Receipt],
    ) -> Vec<ChangeEntry> {
        let doc_id = self.doc_id.as_str();
        let changes: HashMap<ChangeHash, Change> = match sync::documents::wire::chunk_changes(chunk)
        {
            Ok(changes) => changes.into_iter().map(|c| (c.hash(), c)).collect(),
            Err(reason) => {
                tracing::error!(doc_id, %reason, "the committed chunk does not parse");
                HashMap::new()
            }
        };
        let mut entries = Vec::new();
        for receipt in delivered {
            let entry = |record, record_kind, before, after, detail| ChangeEntry {
                recorded_at: self.recorded_at,
                territory: self.territory_id,
                actor: receipt.account_id,
                device: receipt.device_id,
                session: receipt.session_id,
                doc_id: self.doc_id.clone(),
                record,
                record_kind,
                change_hash: receipt.change_hash.clone(),
                before,
                after,
                detail,
            };
            let edits = match receipt.change_hash.parse::<ChangeHash>() {
                Ok(hash) => match changes.get(&hash) {
                    Some(change) => sync::documents::audit::record_edits(doc, change),
                    None => Err("the change is not in its commit's chunk".to_string()),
                },
                Err(error) => Err(format!("the receipt's change hash does not parse: {error}")),
            };
            match edits {
                Ok(edits) => {
                    for edit in edits {
                        let record = Uuid::parse_str(&edit.record).ok();
                        // A key that is no UUID (a misbehaving client) is kept as written.
                        let detail = match record {
                            Some(_) => json!({}),
                            None => json!({"recordKey": edit.record}),
                        };
                        entries.push(entry(
                            record,
                            Some(edit.kind.as_str()),
                            Json::Object(edit.before),
                            Json::Object(edit.after),
                            detail,
                        ));
                    }
                }
                Err(reason) => {
                    tracing::error!(doc_id, change = %receipt.change_hash, %reason, "auditing a change without its fields");
                    entries.push(entry(
                        None,
                        None,
                        json!({}),
                        json!({}),
                        json!({"unread": reason}),
                    ));
                }
            }
        }
        entries
    }
}

/// Who delivered a change (`change_receipts`): a phone's device or a web
/// session, never both (the table's check).
#[derive(sqlx::FromRow)]
struct Receipt {
    change_hash: String,
    account_id: Uuid,
    device_id: Option<Uuid>,
    session_id: Option<Uuid>,
}

/// One change's edit of one record, as `audit_pending` keeps it.
#[derive(Debug)]
struct ChangeEntry {
    /// When the accepting transaction began.
    recorded_at: DateTime<Utc>,
    territory: Uuid,
    actor: Uuid,
    device: Option<Uuid>,
    session: Option<Uuid>,
    doc_id: String,
    record: Option<Uuid>,
    record_kind: Option<&'static str>,
    change_hash: String,
    before: Json,
    after: Json,
    detail: Json,
}

/// Appends `entries` (from [`QueuedCommit::change_entries`]) to the pending entries in one
/// statement, in their order: no lock is taken, the chaining gives them
/// their places later (`super::chain`). Bound column by column, so the
/// database parses only the fields' values.
async fn append(conn: &mut PgConnection, entries: &[&ChangeEntry]) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut columns = Columns::with_capacity(entries.len());
    for entry in entries {
        columns.push(entry);
    }
    sqlx::query(
        "INSERT INTO audit_pending (recorded_at, territory_id, action, actor_id, device_id, \
           session_id, doc_id, record_id, record_kind, change_hash, before, after, detail) \
         SELECT recorded_at, territory_id, 'change', actor_id, device_id, \
           session_id, doc_id, record_id, record_kind, change_hash, before, after, detail \
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::uuid[], \
           $7::text[], $8::text[], $9::jsonb[], $10::jsonb[], $11::jsonb[], $12::timestamptz[]) \
           WITH ORDINALITY AS e(territory_id, actor_id, device_id, session_id, doc_id, record_id, \
                record_kind, change_hash, before, after, detail, recorded_at, n) \
         ORDER BY n",
    )
    .bind(columns.territory)
    .bind(columns.actor)
    .bind(columns.device)
    .bind(columns.session)
    .bind(columns.doc_id)
    .bind(columns.record)
    .bind(columns.record_kind)
    .bind(columns.change_hash)
    .bind(columns.before)
    .bind(columns.after)
    .bind(columns.detail)
    .bind(columns.recorded_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// [`ChangeEntry`]s as one array per column.
struct Columns {
    territory: Vec<Uuid>,
    actor: Vec<Uuid>,
    device: Vec<Option<Uuid>>,
    session: Vec<Option<Uuid>>,
    doc_id: Vec<String>,
    record: Vec<Option<Uuid>>,
    record_kind: Vec<Option<&'static str>>,
    change_hash: Vec<String>,
    before: Vec<Json>,
    after: Vec<Json>,
    detail: Vec<Json>,
    recorded_at: Vec<DateTime<Utc>>,
}

impl Columns {
    fn with_capacity(n: usize) -> Columns {
        Columns {
            territory: Vec::with_capacity(n),
            actor: Vec::with_capacity(n),
            device: Vec::with_capacity(n),
            session: Vec::with_capacity(n),
            doc_id: Vec::with_capacity(n),
            record: Vec::with_capacity(n),
            record_kind: Vec::with_capacity(n),
            change_hash: Vec::with_capacity(n),
            before: Vec::with_capacity(n),
            after: Vec::with_capacity(n),
            detail: Vec::with_capacity(n),
            recorded_at: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, entry: &ChangeEntry) {
        self.territory.push(entry.territory);
        self.actor.push(entry.actor);
        self.device.push(entry.device);
        self.session.push(entry.session);
        self.doc_id.push(entry.doc_id.clone());
        self.record.push(entry.record);
        self.record_kind.push(entry.record_kind);
        self.change_hash.push(entry.change_hash.clone());
        self.before.push(entry.before.clone());
        self.after.push(entry.after.clone());
        self.detail.push(entry.detail.clone());
        self.recorded_at.push(entry.recorded_at);
    }
}
