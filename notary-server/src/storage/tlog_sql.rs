//! SQL side of the transparency log ([`crate::tlog`]): the leaf written with each update, in
//! the update's transaction; the integrator that gives pending leaves their places in the
//! tree; and the reads behind checkpoints, proofs and tiles.
//!
//! Why two steps: a leaf row is inserted by every publish, next to its metadata rows, so an
//! accepted update without its leaf (or the reverse) cannot exist. Its index in the tree is
//! given later by the integrator, which runs under a lock on the single `tlog_state` row:
//! publishes never wait on that row, only the integrator does, once per interval and batch.
//! Tree order is integration order (pending rows by id), so interleaved or gapped
//! auto-increment ids do not matter: a row that commits late is simply integrated later.

use std::cell::RefCell;
use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use notary_tlog::store::{hashes_to_append, stored_hash_count};
use notary_tlog::{Hash, HashStore, LeafRecord};

use super::schema::{tlog_hashes, tlog_leaves, tlog_state, tuf_files};
use super::sql::{map_error, run_own_ddl, AnyConnection};
use super::{MetaUpdate, SqlStore, StoreError};

/// The encoded leaf record of one file of an update, whose hex SHA-256 the caller has
/// computed already (the write path hashes every file once, for its `sha256` column).
pub(crate) fn leaf_bytes(
    gun: &str,
    update: &MetaUpdate,
    sha256: &str,
    at: DateTime<Utc>,
) -> Result<Vec<u8>, StoreError> {
    let bad = |e: String| StoreError::Other(format!("transparency log leaf: {e}"));
    let digest: [u8; 32] = hex::decode(sha256)
        .ok()
        .and_then(|d| d.try_into().ok())
        .ok_or_else(|| bad(format!("{sha256:?} is not a SHA-256")))?;
    let record = LeafRecord {
        gun: gun.to_owned(),
        role: update.role.clone(),
        version: u64::try_from(update.version).unwrap_or(0),
        sha256: digest,
        length: update.data.len() as u64,
        time: at,
    };
    record
        .encode()
        .map(String::into_bytes)
        .map_err(|e| bad(e.to_string()))
}

/// Appends the leaves' INSERT to a MySQL text batch (hex literals only, as the batch does).
pub(crate) fn push_leaf_inserts(
    sql: &mut String,
    gun: &str,
    updates: &[MetaUpdate],
    hashes: &[String],
    leaves: &[Vec<u8>],
    at: &str,
) {
    use std::fmt::Write as _;
    sql.push_str("INSERT INTO tlog_leaves (created_at,gun,role,version,sha256,leaf) VALUES ");
    for (i, ((u, sha256), leaf)) in updates.iter().zip(hashes).zip(leaves).enumerate() {
        if i > 0 {
            sql.push(',');
        }
        let _ = write!(
            sql,
            "('{at}',X'{}',X'{}',{},X'{}',X'{}')",
            hex::encode(gun),
            hex::encode(&u.role),
            i32::try_from(u.version).unwrap_or(i32::MAX),
            hex::encode(sha256),
            hex::encode(leaf),
        );
    }
    sql.push(';');
}

#[derive(Insertable)]
#[diesel(table_name = tlog_leaves)]
struct NewLeaf<'a> {
    created_at: NaiveDateTime,
    gun: &'a str,
    role: &'a str,
    version: i32,
    sha256: &'a str,
    leaf: &'a [u8],
}

/// Inserts the leaves of an update (the diesel path of `update_many`).
pub(crate) fn insert_leaves(
    conn: &mut AnyConnection,
    gun: &str,
    updates: &[MetaUpdate],
    hashes: &[String],
    leaves: &[Vec<u8>],
    at: NaiveDateTime,
) -> QueryResult<()> {
    for ((u, sha256), leaf) in updates.iter().zip(hashes).zip(leaves) {
        diesel::insert_into(tlog_leaves::table)
            .values(NewLeaf {
                created_at: at,
                gun,
                role: &u.role,
                version: i32::try_from(u.version).unwrap_or(i32::MAX),
                sha256,
                leaf,
            })
            .execute(conn)?;
    }
    Ok(())
}

/// Reads stored hashes inside the integrator's transaction, plus the ones it wrote so far.
struct TxHashes<'a> {
    conn: RefCell<&'a mut AnyConnection>,
    written: RefCell<HashMap<u64, Hash>>,
}

fn read_hash_rows(
    conn: &mut AnyConnection,
    indexes: &[u64],
) -> Result<HashMap<u64, Hash>, DieselError> {
    let wanted: Vec<i64> = indexes.iter().map(|&i| i as i64).collect();
    let rows: Vec<(i64, Vec<u8>)> = tlog_hashes::table
        .filter(tlog_hashes::idx.eq_any(&wanted))
        .select((tlog_hashes::idx, tlog_hashes::hash))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(i, h)| Some((i as u64, Hash(h.try_into().ok()?))))
        .collect())
}

fn assemble(
    indexes: &[u64],
    found: &HashMap<u64, Hash>,
) -> Result<Vec<Hash>, notary_tlog::StoreError> {
    indexes
        .iter()
        .map(|i| {
            found
                .get(i)
                .copied()
                .ok_or(notary_tlog::StoreError::Missing(*i))
        })
        .collect()
}

impl HashStore for TxHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, notary_tlog::StoreError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let written = self.written.borrow();
            for &i in indexes {
                match written.get(&i) {
                    Some(h) => {
                        found.insert(i, *h);
                    }
                    None => missing.push(i),
                }
            }
        }
        if !missing.is_empty() {
            let mut conn = self.conn.borrow_mut();
            let rows = read_hash_rows(&mut conn, &missing)
                .map_err(|e| notary_tlog::StoreError::Backend(Box::new(e)))?;
            found.extend(rows);
        }
        assemble(indexes, &found)
    }
}

/// Hashes read through a pooled connection (proofs and tiles outside any transaction).
struct ConnHashes<'a> {
    conn: RefCell<&'a mut AnyConnection>,
}

impl HashStore for ConnHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, notary_tlog::StoreError> {
        let mut conn = self.conn.borrow_mut();
        let found = read_hash_rows(&mut conn, indexes)
            .map_err(|e| notary_tlog::StoreError::Backend(Box::new(e)))?;
        assemble(indexes, &found)
    }
}

/// An integrator transaction's failure.
#[derive(Debug)]
enum TxError {
    Db(DieselError),
    Log(String),
}

impl From<DieselError> for TxError {
    fn from(e: DieselError) -> Self {
        TxError::Db(e)
    }
}

/// What one integration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Integrated {
    /// Tree size before.
    pub old_size: u64,
    /// Tree size after.
    pub size: u64,
}

/// The log's stored state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogState {
    /// Leaves in the tree.
    pub tree_size: u64,
    /// Size of the latest stored checkpoint (0: none yet).
    pub checkpoint_size: u64,
    /// The latest signed checkpoint note.
    pub checkpoint: Option<String>,
    /// The signer key the log signs with, once chosen.
    pub key_id: Option<String>,
    /// Its Ed25519 public key.
    pub public_key: Option<Vec<u8>>,
}

/// An integrated leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLeaf {
    /// Its index in the tree.
    pub index: u64,
    /// The leaf record bytes.
    pub leaf: Vec<u8>,
}

const STATE_ID: i32 = 1;

fn integrate_blocking(conn: &mut AnyConnection, max: i64) -> Result<Integrated, StoreError> {
    let now = super::now_utc().naive_utc();
    let result = conn.transaction::<Integrated, TxError, _>(|c| {
        // Taking the row lock first makes concurrent integrators (other replicas) queue here;
        // on SQLite the write starts the write transaction before anything is read.
        diesel::update(tlog_state::table.filter(tlog_state::id.eq(STATE_ID)))
            .set(tlog_state::updated_at.eq(now))
            .execute(c)?;
        let size: i64 = tlog_state::table
            .filter(tlog_state::id.eq(STATE_ID))
            .select(tlog_state::tree_size)
            .first(c)?;
        let old_size = size as u64;
        let pending: Vec<(i64, Vec<u8>)> = tlog_leaves::table
            .filter(tlog_leaves::leaf_index.is_null())
            .order(tlog_leaves::id.asc())
            .select((tlog_leaves::id, tlog_leaves::leaf))
            .limit(max)
            .load(c)?;
        if pending.is_empty() {
            return Ok(Integrated {
                old_size,
                size: old_size,
            });
        }
        let store = TxHashes {
            conn: RefCell::new(c),
            written: RefCell::new(HashMap::new()),
        };
        let mut n = old_size;
        let mut placed = Vec::with_capacity(pending.len());
        for (row_id, leaf) in &pending {
            let hashes = hashes_to_append(n, notary_tlog::leaf_hash(leaf), &store)
                .map_err(|e| TxError::Log(e.to_string()))?;
            let start = stored_hash_count(n);
            let mut written = store.written.borrow_mut();
            for (k, h) in hashes.into_iter().enumerate() {
                written.insert(start + k as u64, h);
            }
            placed.push((*row_id, n));
            n += 1;
        }
        let written = store.written.into_inner();
        let c = store.conn.into_inner();
        // X'..' is a bytea on MySQL and SQLite but a bit string on PostgreSQL.
        let pg = matches!(c, AnyConnection::Pg(_));
        let mut rows: Vec<(i64, Vec<u8>)> = written
            .into_iter()
            .map(|(i, h)| (i as i64, h.0.to_vec()))
            .collect();
        rows.sort_unstable();
        // One multi-row INSERT per chunk (diesel's batch insert does not cover both backends
        // at once); indexes are integers and hashes hex literals, so nothing needs escaping.
        for chunk in rows.chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|(i, h)| {
                    if pg {
                        format!("({i},'\\x{}'::bytea)", hex::encode(h))
                    } else {
                        format!("({i},X'{}')", hex::encode(h))
                    }
                })
                .collect();
            diesel::sql_query(format!(
                "INSERT INTO tlog_hashes (idx, hash) VALUES {}",
                values.join(",")
            ))
            .execute(c)?;
        }
        // One UPDATE per chunk rather than per leaf: at a thousand publishes a second the
        // per-leaf statements were most of the integrator's cost. Integers only.
        for chunk in placed.chunks(500) {
            let cases: String = chunk
                .iter()
                .map(|(row_id, index)| format!(" WHEN {row_id} THEN {index}"))
                .collect();
            let ids: Vec<String> = chunk.iter().map(|(row_id, _)| row_id.to_string()).collect();
            diesel::sql_query(format!(
                "UPDATE tlog_leaves SET leaf_index = CASE id{cases} END WHERE id IN ({})",
                ids.join(",")
            ))
            .execute(c)?;
        }
        diesel::update(tlog_state::table.filter(tlog_state::id.eq(STATE_ID)))
            .set(tlog_state::tree_size.eq(n as i64))
            .execute(c)?;
        Ok(Integrated { old_size, size: n })
    });
    result.map_err(|e| match e {
        TxError::Db(e) => map_error(e),
        TxError::Log(m) => StoreError::Other(format!("transparency log: {m}")),
    })
}

fn state_blocking(conn: &mut AnyConnection) -> Result<LogState, StoreError> {
    type Row = (i64, i64, Option<String>, Option<String>, Option<Vec<u8>>);
    let row: Option<Row> = tlog_state::table
        .filter(tlog_state::id.eq(STATE_ID))
        .select((
            tlog_state::tree_size,
            tlog_state::checkpoint_size,
            tlog_state::checkpoint,
            tlog_state::key_id,
            tlog_state::public_key,
        ))
        .first(conn)
        .optional()
        .map_err(map_error)?;
    let (tree_size, checkpoint_size, checkpoint, key_id, public_key) = row.ok_or_else(|| {
        StoreError::Other("transparency log tables missing: run notary-server -migrate".into())
    })?;
    Ok(LogState {
        tree_size: tree_size as u64,
        checkpoint_size: checkpoint_size as u64,
        checkpoint,
        key_id,
        public_key,
    })
}

impl SqlStore {
    /// Creates the log's tables if they are missing (the DDL of their migration, which is
    /// idempotent): a server started without `-migrate`, as Go's is, still gets its log.
    pub async fn tlog_ensure_tables(&self) -> Result<(), StoreError> {
        const MYSQL: &str =
            include_str!("../../../migrations/server/mysql/2026-12-07-000001_create_tlog/up.sql");
        const SQLITE: &str =
            include_str!("../../../migrations/server/sqlite/2026-12-07-000001_create_tlog/up.sql");
        const PG: &str = include_str!(
            "../../../migrations/server/postgres/2026-12-07-000001_create_tlog/up.sql"
        );
        self.run(|conn| run_own_ddl(conn, [MYSQL, SQLITE, PG], "the transparency log tables"))
            .await
    }

    /// Integrates up to `max` pending leaves into the tree (one transaction).
    pub async fn tlog_integrate(&self, max: i64) -> Result<Integrated, StoreError> {
        self.run(move |conn| integrate_blocking(conn, max)).await
    }

    /// The log's state row.
    pub async fn tlog_state(&self) -> Result<LogState, StoreError> {
        self.run(state_blocking).await
    }

    /// Records the log key unless one is recorded already; returns the recorded one (the
    /// first replica to get here wins, the others adopt its key).
    pub async fn tlog_set_key(
        &self,
        key_id: &str,
        public_key: &[u8],
    ) -> Result<LogState, StoreError> {
        let (key_id, public_key) = (key_id.to_owned(), public_key.to_vec());
        self.run(move |conn| {
            diesel::update(
                tlog_state::table
                    .filter(tlog_state::id.eq(STATE_ID))
                    .filter(tlog_state::key_id.is_null()),
            )
            .set((
                tlog_state::key_id.eq(&key_id),
                tlog_state::public_key.eq(&public_key),
            ))
            .execute(conn)
            .map_err(map_error)?;
            state_blocking(conn)
        })
        .await
    }

    /// Stores a signed checkpoint of `size` unless a newer one is stored.
    pub async fn tlog_store_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        let note = note.to_owned();
        self.run(move |conn| {
            diesel::update(
                tlog_state::table
                    .filter(tlog_state::id.eq(STATE_ID))
                    .filter(tlog_state::checkpoint_size.lt(size as i64)),
            )
            .set((
                tlog_state::checkpoint.eq(&note),
                tlog_state::checkpoint_size.eq(size as i64),
            ))
            .execute(conn)
            .map_err(map_error)?;
            Ok(())
        })
        .await
    }

    /// Runs `f` over the tree's stored hashes (a proof, a tile, a tree head).
    pub async fn tlog_with_hashes<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn HashStore) -> Result<T, notary_tlog::Error> + Send + 'static,
    {
        self.run(move |conn| {
            let store = ConnHashes {
                conn: RefCell::new(conn),
            };
            f(&store).map_err(|e| match e {
                notary_tlog::Error::InvalidInput(m) => StoreError::Other(m),
                other => StoreError::Other(format!("transparency log: {other}")),
            })
        })
        .await
    }

    /// The newest integrated leaf of (gun, role, version) whose file hashes to `sha256`.
    pub async fn tlog_find_leaf(
        &self,
        gun: &str,
        role: &str,
        version: i64,
        sha256: &str,
    ) -> Result<Option<LogLeaf>, StoreError> {
        let (gun, role, sha256) = (gun.to_owned(), role.to_owned(), sha256.to_ascii_lowercase());
        let version = i32::try_from(version).unwrap_or(i32::MAX);
        self.run(move |conn| {
            let row: Option<(Option<i64>, Vec<u8>)> = tlog_leaves::table
                .filter(tlog_leaves::gun.eq(&gun))
                .filter(tlog_leaves::role.eq(&role))
                .filter(tlog_leaves::version.eq(version))
                .filter(tlog_leaves::sha256.eq(&sha256))
                .filter(tlog_leaves::leaf_index.is_not_null())
                .order(tlog_leaves::leaf_index.desc())
                .select((tlog_leaves::leaf_index, tlog_leaves::leaf))
                .first(conn)
                .optional()
                .map_err(map_error)?;
            Ok(row.and_then(|(index, leaf)| {
                Some(LogLeaf {
                    index: index? as u64,
                    leaf,
                })
            }))
        })
        .await
    }

    /// Leaves `start..end` of the tree, in order.
    pub async fn tlog_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.run(move |conn| {
            let rows: Vec<Vec<u8>> = tlog_leaves::table
                .filter(tlog_leaves::leaf_index.ge(start as i64))
                .filter(tlog_leaves::leaf_index.lt(end as i64))
                .order(tlog_leaves::leaf_index.asc())
                .select(tlog_leaves::leaf)
                .load(conn)
                .map_err(map_error)?;
            if rows.len() as u64 != end.saturating_sub(start) {
                return Err(StoreError::Other(format!(
                    "transparency log: leaves {start}..{end} are not all integrated"
                )));
            }
            Ok(rows)
        })
        .await
    }

    /// Appends a pending leaf for every stored file (oldest first, by row id, which is the
    /// order the changefeed recorded them in) that has none yet: a database filled before the
    /// log was on, by Go or by us. Returns how many were added. Deleted rows are skipped.
    pub async fn tlog_backfill(&self) -> Result<u64, StoreError> {
        self.run(|conn| {
            let mut after = 0i32;
            let mut added = 0u64;
            loop {
                type FileRow = (i32, String, String, i32, Vec<u8>, Option<NaiveDateTime>);
                let batch: Vec<FileRow> = tuf_files::table
                    .filter(tuf_files::id.gt(after))
                    .filter(tuf_files::deleted_at.is_null())
                    .order(tuf_files::id.asc())
                    .select((
                        tuf_files::id,
                        tuf_files::gun,
                        tuf_files::role,
                        tuf_files::version,
                        tuf_files::data,
                        tuf_files::created_at,
                    ))
                    .limit(500)
                    .load(conn)
                    .map_err(map_error)?;
                let Some(last) = batch.last() else {
                    return Ok(added);
                };
                after = last.0;
                for (_, gun, role, version, data, created_at) in batch {
                    let sha256 = super::sha256_hex(&data);
                    let logged: i64 = tlog_leaves::table
                        .filter(tlog_leaves::gun.eq(&gun))
                        .filter(tlog_leaves::role.eq(&role))
                        .filter(tlog_leaves::version.eq(version))
                        .filter(tlog_leaves::sha256.eq(&sha256))
                        .count()
                        .get_result(conn)
                        .map_err(map_error)?;
                    if logged > 0 {
                        continue;
                    }
                    let at = created_at.map_or_else(super::now_utc, |t| t.and_utc());
                    let update = MetaUpdate {
                        role,
                        version: i64::from(version),
                        data,
                    };
                    let leaf = leaf_bytes(&gun, &update, &sha256, at)?;
                    insert_leaves(
                        conn,
                        &gun,
                        std::slice::from_ref(&update),
                        std::slice::from_ref(&sha256),
                        std::slice::from_ref(&leaf),
                        at.naive_utc(),
                    )
                    .map_err(map_error)?;
                    added += 1;
                }
            }
        })
        .await
    }
}
