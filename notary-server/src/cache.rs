//! In-process cache of stored metadata, used by [`crate::storage::SqlStore`].
//!
//! # What is cached
//! - the **latest timestamp row** of each GUN: the only lookup whose answer changes when a
//!   GUN is updated;
//! - **files by (role, sha256) and by (role, version)**: rows are never modified, only
//!   inserted or (with the whole GUN) deleted, so these answers change only on deletion;
//! - two **pure memos** keyed by content hashes: which sha256 a timestamp/snapshot lists for
//!   a role, and until when a timestamp + its snapshot need no regeneration. They depend
//!   only on file contents, so they never need invalidation.
//!
//! Misses are never cached (an unknown checksum costs one query, as without the cache).
//!
//! # Freshness
//! - **On the replica that accepted a write: never stale.** Every write and deletion made
//!   through the store updates the cache after its commit and before it returns, so a
//!   client that got `200` for an update reads it back from any request that starts after.
//!   Reads that raced with the write cannot put older data back: each read takes a
//!   [`Ticket`] before querying and its result is dropped if the GUN was invalidated since.
//! - **Across processes on one database: bounded.** Every update and deletion appends a
//!   changefeed row (ours and Go's alike). A background thread reads the new rows every
//!   `poll_interval` (default 100 ms) and invalidates their GUNs. The cache answers only
//!   while the last successful poll *started* less than `max_staleness` ago (default
//!   500 ms); otherwise every read goes to the database. A write committed by another
//!   process at time T is therefore never served after T + `max_staleness`, and typically
//!   not after T + one poll interval. Measured with `notary-bench staleness` (two server
//!   processes on one MariaDB, 2 cores, defaults): p50 53 ms, max 97 ms over 40 publishes.
//!   Changefeed ids are allocated at insert but become visible at commit, so an id below
//!   the highest one seen can appear later: such gaps are re-read until they show up or,
//!   after `GAP_GIVE_UP`, the whole cache is dropped to stay on the safe side.
//! - Edits made behind the server's back (SQL by hand, without changefeed rows) are seen
//!   after at most `ttl` (default 10 s): no entry is served once older than that.
//!
//! # Keys
//! The stores compare GUNs and roles byte for byte (see `storage`), so the SQL store builds
//! its cache without `fold_case`. With `fold_case` (for a store whose database equated names
//! differing in case) keys are ASCII-lowercased; names with anything but
//! printable ASCII are not cached at all, so the cache can never match two names the
//! database would tell apart, nor miss an invalidation for a name it would equate.
//!
//! # Compressed variants
//! Next to each cached file the cache can keep its gzip encoding ([`MetaCache::gzip`]),
//! keyed by the file's sha256, so a metadata GET that accepts gzip compresses a file once,
//! not once per request (see `http::conditional`). A variant lives exactly as long as its
//! file stays cached (it goes with older versions, deletions and evictions) and its bytes
//! count toward `max_bytes`. A file that is not cached gets no variant: nothing would
//! remember the work.
//!
//! # Size
//! Bounded by `max_bytes` of cached file data and compressed variants (default 64 MiB);
//! when full, whole GUN entries are dropped in arbitrary order until it is 3/4 full.
//!
//! # Configuration (environment, read by [`CacheOptions::from_env`])
//! `NOTARY_SERVER_CACHE` (`0`/`false`/`off` disables), `NOTARY_SERVER_CACHE_MAX_MB` [64],
//! `NOTARY_SERVER_CACHE_POLL_MS` [100], `NOTARY_SERVER_CACHE_MAX_STALENESS_MS` [500],
//! `NOTARY_SERVER_CACHE_TTL_MS` [10000].

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use notary_tuf::verify::TrustedRoot;

use crate::storage::StoredFile;

/// How long a changefeed gap (an id below the highest seen that has not shown up) is
/// re-read before the cache gives up on it and drops everything.
pub const GAP_GIVE_UP: Duration = Duration::from_secs(30);

/// How many recent invalidations are remembered for [`Ticket`] checks; a read whose ticket
/// is older than all of them is not cached (conservatively).
const RECENT_INVALIDATIONS: usize = 4096;

/// Entries of each pure memo before it is cleared. Each entry is a few hundred bytes and
/// every publish adds some, so this bounds what the memos add to the process (~10 MiB).
const MEMO_ENTRIES: usize = 16_384;

/// Validated roots kept by [`MetaCache::put_trusted_root`] before that memo is cleared. A
/// root with its decoded views takes about 15 KB, so this bounds it near 8 MiB; one entry
/// per GUN being published to is enough for the memo to pay off.
const TRUSTED_ROOT_ENTRIES: usize = 512;

/// Per-entry bookkeeping bytes added to the data length when accounting size.
const ENTRY_OVERHEAD: usize = 160;

/// Cache settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOptions {
    /// Whether the cache is used at all.
    pub enabled: bool,
    /// Upper bound for cached file data plus bookkeeping.
    pub max_bytes: usize,
    /// Changefeed polling period; zero means no background polling (tests call
    /// [`crate::storage::SqlStore::sync_cache`] themselves).
    pub poll_interval: Duration,
    /// The cache answers only while the last successful changefeed poll started less than
    /// this long ago.
    pub max_staleness: Duration,
    /// No entry is served once older than this (bounds out-of-band edits).
    pub ttl: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            enabled: true,
            max_bytes: 64 << 20,
            poll_interval: Duration::from_millis(100),
            max_staleness: Duration::from_millis(500),
            ttl: Duration::from_secs(10),
        }
    }
}

impl CacheOptions {
    /// Defaults overridden by the `NOTARY_SERVER_CACHE*` environment variables (see the
    /// module docs). Unparsable values are ignored with a warning.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`CacheOptions::from_env`] over any variable source.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let mut opts = CacheOptions::default();
        if let Some(v) = get("NOTARY_SERVER_CACHE") {
            opts.enabled = !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "0" | "false" | "off" | "no"
            );
        }
        let number = |name: &str| -> Option<u64> {
            let v = get(name)?;
            match v.trim().parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    tracing::warn!(variable = name, value = %v, "ignoring unparsable cache setting");
                    None
                }
            }
        };
        if let Some(mb) = number("NOTARY_SERVER_CACHE_MAX_MB") {
            opts.max_bytes = usize::try_from(mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        }
        if let Some(ms) = number("NOTARY_SERVER_CACHE_POLL_MS") {
            opts.poll_interval = Duration::from_millis(ms);
        }
        if let Some(ms) = number("NOTARY_SERVER_CACHE_MAX_STALENESS_MS") {
            opts.max_staleness = Duration::from_millis(ms);
        }
        if let Some(ms) = number("NOTARY_SERVER_CACHE_TTL_MS") {
            opts.ttl = Duration::from_millis(ms);
        }
        if opts.max_bytes == 0 {
            opts.enabled = false;
        }
        opts
    }
}

/// Taken before a database read; the read's result is cached only if its GUN was not
/// invalidated after the ticket was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// What an invalidation drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    /// The GUN got a new timestamp: drop its latest timestamp.
    Update,
    /// The GUN was deleted: drop everything cached for it.
    Deletion,
}

/// Counters, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that went to the database.
    pub misses: u64,
    /// GUN invalidations (local writes and changefeed rows).
    pub invalidations: u64,
    /// GUN entries dropped to stay within `max_bytes`.
    pub evictions: u64,
    /// Bytes currently accounted.
    pub bytes: usize,
    /// Compressions handed out by [`MetaCache::gzip`] (each file is compressed once while
    /// it stays cached).
    pub gzip_compressions: u64,
}

#[derive(Debug)]
struct Cached {
    file: Arc<StoredFile>,
    at: Instant,
}

/// The gzip variant of one cached file.
#[derive(Debug)]
enum GzipSlot {
    /// One request (the claim with this number) is compressing it; the others serve the
    /// identity encoding meanwhile.
    Pending(u64),
    /// Done: the compressed bytes, or `None` when gzip did not make the file smaller.
    Ready(Option<Arc<[u8]>>),
}

impl GzipSlot {
    fn size(&self) -> usize {
        match self {
            GzipSlot::Pending(_) => 0,
            GzipSlot::Ready(gz) => ENTRY_OVERHEAD + gz.as_ref().map_or(0, |b| b.len()),
        }
    }
}

#[derive(Debug, Default)]
struct RoleFiles {
    by_sha: HashMap<String, Cached>,
    by_version: HashMap<i64, Cached>,
    /// Gzip variants by sha256, only for files this entry holds (in `by_sha`, or the latest
    /// timestamp for the timestamp role).
    gzip: HashMap<String, GzipSlot>,
}

/// What [`MetaCache::gzip`] has for a file.
#[derive(Debug)]
pub enum GzipVariant<'a> {
    /// The compressed bytes.
    Ready(Arc<[u8]>),
    /// Gzip does not make this file smaller: serve it as is.
    NotSmaller,
    /// Nobody has compressed it yet: the caller compresses it and hands the result to
    /// [`GzipClaim::complete`]. Dropping the claim uncompleted lets the next request try.
    Claimed(GzipClaim<'a>),
    /// The file is not cached (nothing would remember the work), or another request is
    /// compressing it right now: serve it as is.
    Unavailable,
}

/// The right (and duty) to compress one cached file; see [`GzipVariant::Claimed`].
#[derive(Debug)]
pub struct GzipClaim<'a> {
    cache: &'a MetaCache,
    gun: String,
    role: String,
    sha: String,
    id: u64,
    done: bool,
}

impl GzipClaim<'_> {
    /// Stores the compression result (`None`: not smaller than the file) for later
    /// requests and returns the bytes to serve now. The result is dropped if the file left
    /// the cache meanwhile.
    pub fn complete(mut self, gzip: Option<Vec<u8>>) -> Option<Arc<[u8]>> {
        self.done = true;
        let gzip: Option<Arc<[u8]>> = gzip.map(Arc::from);
        let slot = GzipSlot::Ready(gzip.clone());
        let size = slot.size();
        let mut guard = lock(&self.cache.inner);
        let inner = &mut *guard;
        if let Some(entry) = inner.guns.get_mut(&self.gun) {
            if let Some(current) = entry
                .files
                .get_mut(&self.role)
                .and_then(|r| r.gzip.get_mut(&self.sha))
                .filter(|s| matches!(s, GzipSlot::Pending(id) if *id == self.id))
            {
                *current = slot;
                entry.bytes += size;
                inner.bytes += size;
                self.cache.evict(inner);
            }
        }
        gzip
    }
}

impl Drop for GzipClaim<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut inner = lock(&self.cache.inner);
        if let Some(role) = inner
            .guns
            .get_mut(&self.gun)
            .and_then(|e| e.files.get_mut(&self.role))
        {
            if matches!(role.gzip.get(&self.sha), Some(GzipSlot::Pending(id)) if *id == self.id) {
                role.gzip.remove(&self.sha);
            }
        }
    }
}

#[derive(Debug, Default)]
struct GunEntry {
    latest_timestamp: Option<Cached>,
    /// Immutable rows by role key.
    files: HashMap<String, RoleFiles>,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    seq: u64,
    recent: VecDeque<(u64, String)>,
    guns: HashMap<String, GunEntry>,
    bytes: usize,
    stats: CacheStats,
}

#[derive(Debug, Default)]
struct Memo {
    /// file sha256 → role → sha256 listed for the role (None: not listed). Nested so that
    /// lookups by `&str` need no allocation.
    refs: HashMap<String, HashMap<String, Option<String>>>,
    refs_len: usize,
    /// timestamp sha256 → (snapshot sha256, time until which neither needs regeneration).
    fresh: HashMap<String, (String, DateTime<Utc>)>,
    /// GUN → the root last validated for it (callers compare its bytes to the stored root).
    roots: HashMap<String, Arc<TrustedRoot>>,
}

/// The cache. Thread-safe; one per store.
#[derive(Debug)]
pub struct MetaCache {
    opts: CacheOptions,
    fold_case: bool,
    inner: Mutex<Inner>,
    memo: Mutex<Memo>,
    /// Start of the last successful changefeed sync.
    synced: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the maps consistent, so a poisoned lock is usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn file_size(f: &StoredFile) -> usize {
    f.data.len() + f.role.len() + f.sha256.len() + ENTRY_OVERHEAD
}

impl MetaCache {
    /// An empty cache. `fold_case` for databases that compare names case-insensitively.
    /// It answers nothing until [`MetaCache::mark_synced`] is called.
    pub fn new(opts: CacheOptions, fold_case: bool) -> Self {
        MetaCache {
            opts,
            fold_case,
            inner: Mutex::default(),
            memo: Mutex::default(),
            synced: Mutex::new(None),
        }
    }

    /// The settings.
    pub fn options(&self) -> &CacheOptions {
        &self.opts
    }

    /// The cache key of a name, or `None` if the name is not cacheable. Borrowed unless
    /// case folding changes it.
    fn key<'a>(&self, name: &'a str) -> Option<Cow<'a, str>> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        Some(
            if self.fold_case && name.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(name.to_ascii_lowercase())
            } else {
                Cow::Borrowed(name)
            },
        )
    }

    /// Whether cached answers may be served now (changefeed sync recent enough).
    pub fn is_serving(&self) -> bool {
        lock(&self.synced).is_some_and(|t| t.elapsed() < self.opts.max_staleness)
    }

    /// Records a successful changefeed sync that started at `started`.
    pub fn mark_synced(&self, started: Instant) {
        let mut s = lock(&self.synced);
        if s.is_none_or(|t| t < started) {
            *s = Some(started);
        }
    }

    /// A ticket for a read about to hit the database.
    pub fn ticket(&self) -> Ticket {
        Ticket(lock(&self.inner).seq)
    }

    fn usable<'c>(&self, c: Option<&'c Cached>) -> Option<&'c Cached> {
        c.filter(|c| c.at.elapsed() < self.opts.ttl)
    }

    fn count(inner: &mut Inner, found: Option<Arc<StoredFile>>) -> Option<Arc<StoredFile>> {
        if found.is_some() {
            inner.stats.hits += 1;
        } else {
            inner.stats.misses += 1;
        }
        found
    }

    /// The cached latest timestamp row of `gun`.
    pub fn latest_timestamp(&self, gun: &str) -> Option<Arc<StoredFile>> {
        if !self.is_serving() {
            return None;
        }
        let key = self.key(gun)?;
        let mut inner = lock(&self.inner);
        let found = self
            .usable(
                inner
                    .guns
                    .get(key.as_ref())
                    .and_then(|e| e.latest_timestamp.as_ref()),
            )
            .map(|c| c.file.clone());
        Self::count(&mut inner, found)
    }

    /// The cached row of (`gun`, `role`) with this sha256.
    pub fn by_checksum(&self, gun: &str, role: &str, sha256: &str) -> Option<Arc<StoredFile>> {
        if !self.is_serving() {
            return None;
        }
        let (key, role, sha) = (self.key(gun)?, self.key(role)?, self.key(sha256)?);
        let mut inner = lock(&self.inner);
        let found = self
            .usable(
                inner
                    .guns
                    .get(key.as_ref())
                    .and_then(|e| e.files.get(role.as_ref()))
                    .and_then(|r| r.by_sha.get(sha.as_ref())),
            )
            .map(|c| c.file.clone());
        Self::count(&mut inner, found)
    }

    /// The cached row of (`gun`, `role`) with this version.
    pub fn by_version(&self, gun: &str, role: &str, version: i64) -> Option<Arc<StoredFile>> {
        if !self.is_serving() {
            return None;
        }
        let (key, role) = (self.key(gun)?, self.key(role)?);
        let mut inner = lock(&self.inner);
        let found = self
            .usable(
                inner
                    .guns
                    .get(key.as_ref())
                    .and_then(|e| e.files.get(role.as_ref()))
                    .and_then(|r| r.by_version.get(&version)),
            )
            .map(|c| c.file.clone());
        Self::count(&mut inner, found)
    }

    /// The current `timestamp` or `snapshot` of `gun`, if everything needed is cached and
    /// the memo says neither needs regeneration at `now` (what
    /// [`crate::domain::current_timestamp_or_snapshot`] would serve). `None` means "ask the
    /// slow path", never "not found".
    pub fn current(&self, gun: &str, role: &str, now: DateTime<Utc>) -> Option<Arc<StoredFile>> {
        let ts = self.latest_timestamp(gun)?;
        let (snapshot_sha, until) = self.memo_fresh(&ts.sha256)?;
        if now >= until {
            return None;
        }
        // The snapshot must still be there even when only the timestamp is asked for.
        let snapshot = self.by_checksum(gun, crate::storage::SNAPSHOT_ROLE, &snapshot_sha)?;
        Some(if role == crate::storage::TIMESTAMP_ROLE {
            ts
        } else {
            snapshot
        })
    }

    /// The current file of a role other than timestamp/snapshot, resolved through the
    /// cached timestamp → snapshot → role chain (what [`crate::storage::get_current`]
    /// returns). `None` means "ask the slow path".
    pub fn current_role(&self, gun: &str, role: &str) -> Option<Arc<StoredFile>> {
        let ts = self.latest_timestamp(gun)?;
        let snapshot_sha = self.memo_reference(&ts.sha256, crate::storage::SNAPSHOT_ROLE)??;
        let snapshot = self.by_checksum(gun, crate::storage::SNAPSHOT_ROLE, &snapshot_sha)?;
        let sha = self.memo_reference(&snapshot.sha256, role)??;
        self.by_checksum(gun, role, &sha)
    }

    /// Whether `key` was invalidated after `ticket` (true when unknown).
    fn invalidated_since(inner: &Inner, key: &str, ticket: Ticket) -> bool {
        if inner.seq == ticket.0 {
            return false;
        }
        match inner.recent.front() {
            // The ring no longer reaches back to the ticket: assume the worst.
            Some((oldest, _)) if *oldest > ticket.0 + 1 => true,
            None => true,
            _ => inner
                .recent
                .iter()
                .any(|(seq, k)| *seq > ticket.0 && k == key),
        }
    }

    /// Caches the result of a latest-timestamp read made under `ticket`.
    pub fn put_latest_timestamp(&self, gun: &str, ticket: Ticket, file: &StoredFile) {
        let Some(key) = self.key(gun) else { return };
        let mut inner = lock(&self.inner);
        if Self::invalidated_since(&inner, &key, ticket) {
            return;
        }
        Self::set_latest(&mut inner, key.into_owned(), file);
        self.evict(&mut inner);
    }

    fn set_latest(inner: &mut Inner, key: String, file: &StoredFile) {
        let size = file_size(file);
        let entry = inner.guns.entry(key).or_default();
        let old = entry.latest_timestamp.replace(Cached {
            file: Arc::new(file.clone()),
            at: Instant::now(),
        });
        let freed = old.map_or(0, |c| file_size(&c.file));
        entry.bytes = entry.bytes + size - freed;
        inner.bytes = inner.bytes + size - freed;
        let freed = Self::prune_gzip(entry, crate::storage::TIMESTAMP_ROLE);
        inner.bytes -= freed;
    }

    /// Caches an immutable row read under `ticket` (by checksum or version lookups).
    pub fn put_file(&self, gun: &str, ticket: Ticket, file: &StoredFile) {
        let Some(key) = self.key(gun) else { return };
        let mut inner = lock(&self.inner);
        if Self::invalidated_since(&inner, &key, ticket) {
            return;
        }
        self.insert_file(&mut inner, key.into_owned(), file);
        self.evict(&mut inner);
    }

    fn insert_file(&self, inner: &mut Inner, key: String, file: &StoredFile) {
        let (Some(role), Some(sha)) = (self.key(&file.role), self.key(&file.sha256)) else {
            return;
        };
        let entry = inner.guns.entry(key).or_default();
        let files = entry.files.entry(role.into_owned()).or_default();
        let shared = Arc::new(file.clone());
        let now = Instant::now();
        let mut added = 0;
        let old = files.by_sha.insert(
            sha.into_owned(),
            Cached {
                file: shared.clone(),
                at: now,
            },
        );
        if old.is_none() {
            added += file_size(file);
        }
        // The version index shares the data; count only its bookkeeping.
        let old = files.by_version.insert(
            file.version,
            Cached {
                file: shared,
                at: now,
            },
        );
        if old.is_none() {
            added += ENTRY_OVERHEAD;
        }
        entry.bytes += added;
        inner.bytes += added;
    }

    /// Forgets the cached versions of `file`'s role below `file`'s: once a newer one is
    /// written, clients rarely ask for them (a miss costs one query), and keeping every
    /// written version would grow the cache, and the process, with the publish rate.
    fn drop_older_versions(&self, inner: &mut Inner, key: &str, file: &StoredFile) {
        let Some(role) = self.key(&file.role) else {
            return;
        };
        let Some(entry) = inner.guns.get_mut(key) else {
            return;
        };
        let Some(files) = entry.files.get_mut(role.as_ref()) else {
            return;
        };
        let mut freed = 0;
        files.by_version.retain(|version, _| {
            let keep = *version >= file.version;
            if !keep {
                freed += ENTRY_OVERHEAD;
            }
            keep
        });
        files.by_sha.retain(|_, cached| {
            let keep = cached.file.version >= file.version;
            if !keep {
                freed += file_size(&cached.file);
            }
            keep
        });
        entry.bytes -= freed;
        inner.bytes -= freed;
        let freed = Self::prune_gzip(entry, role.as_ref());
        inner.bytes -= freed;
    }

    /// Drops the gzip variants of `role` whose file `entry` no longer holds; returns the
    /// bytes freed (already taken off `entry.bytes`).
    fn prune_gzip(entry: &mut GunEntry, role: &str) -> usize {
        let latest = entry
            .latest_timestamp
            .as_ref()
            .filter(|_| role == crate::storage::TIMESTAMP_ROLE)
            .map(|c| c.file.sha256.to_ascii_lowercase());
        let Some(files) = entry.files.get_mut(role) else {
            return 0;
        };
        let mut freed = 0;
        let by_sha = &files.by_sha;
        files.gzip.retain(|sha, slot| {
            let keep = by_sha.contains_key(sha) || latest.as_deref() == Some(sha.as_str());
            if !keep {
                freed += slot.size();
            }
            keep
        });
        entry.bytes -= freed;
        freed
    }

    /// The gzip variant of `file` (a file of `gun` just read from the cache or the store),
    /// or a claim to compress it; see [`GzipVariant`]. The variant is keyed by the file's
    /// sha256 and does not depend on freshness, so this answers even when the cache is
    /// not serving; it is kept only while the file itself is cached.
    pub fn gzip(&self, gun: &str, file: &StoredFile) -> GzipVariant<'_> {
        let (Some(key), Some(role), Some(sha)) =
            (self.key(gun), self.key(&file.role), self.key(&file.sha256))
        else {
            return GzipVariant::Unavailable;
        };
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let Some(entry) = inner.guns.get_mut(key.as_ref()) else {
            return GzipVariant::Unavailable;
        };
        let is_latest = role.as_ref() == crate::storage::TIMESTAMP_ROLE
            && entry
                .latest_timestamp
                .as_ref()
                .is_some_and(|c| c.file.sha256.eq_ignore_ascii_case(&sha));
        let held = is_latest
            || entry
                .files
                .get(role.as_ref())
                .is_some_and(|r| r.by_sha.contains_key(sha.as_ref()));
        if !held {
            return GzipVariant::Unavailable;
        }
        let files = entry.files.entry(role.to_string()).or_default();
        match files.gzip.get(sha.as_ref()) {
            Some(GzipSlot::Ready(Some(gz))) => GzipVariant::Ready(gz.clone()),
            Some(GzipSlot::Ready(None)) => GzipVariant::NotSmaller,
            Some(GzipSlot::Pending(_)) => GzipVariant::Unavailable,
            None => {
                inner.stats.gzip_compressions += 1;
                let id = inner.stats.gzip_compressions;
                files.gzip.insert(sha.to_string(), GzipSlot::Pending(id));
                GzipVariant::Claimed(GzipClaim {
                    cache: self,
                    gun: key.into_owned(),
                    role: role.into_owned(),
                    sha: sha.into_owned(),
                    id,
                    done: false,
                })
            }
        }
    }

    /// After a committed write to `gun` (started under `ticket`): invalidates the GUN, then
    /// caches the written rows (they are immutable) and, if nothing else touched the GUN
    /// since the ticket, the newest written timestamp as the latest one.
    pub fn after_write(&self, gun: &str, ticket: Ticket, written: &[StoredFile]) {
        let Some(key) = self.key(gun) else {
            // Uncacheable name: nothing of it is cached.
            return;
        };
        let key = key.into_owned();
        let mut inner = lock(&self.inner);
        let clean = !Self::invalidated_since(&inner, &key, ticket);
        Self::invalidate_locked(&mut inner, &key, Invalidation::Update);
        for f in written {
            self.drop_older_versions(&mut inner, &key, f);
            self.insert_file(&mut inner, key.clone(), f);
        }
        if clean {
            if let Some(ts) = written
                .iter()
                .filter(|f| f.role == crate::storage::TIMESTAMP_ROLE)
                .max_by_key(|f| f.version)
            {
                Self::set_latest(&mut inner, key, ts);
            }
        }
        self.evict(&mut inner);
    }

    /// Drops what `kind` says for `gun` and records the invalidation for [`Ticket`] checks.
    pub fn invalidate(&self, gun: &str, kind: Invalidation) {
        let Some(key) = self.key(gun) else { return };
        let mut inner = lock(&self.inner);
        Self::invalidate_locked(&mut inner, &key, kind);
    }

    fn invalidate_locked(inner: &mut Inner, key: &str, kind: Invalidation) {
        inner.seq += 1;
        let seq = inner.seq;
        inner.recent.push_back((seq, key.to_string()));
        if inner.recent.len() > RECENT_INVALIDATIONS {
            inner.recent.pop_front();
        }
        inner.stats.invalidations += 1;
        let freed = match kind {
            Invalidation::Deletion => inner.guns.remove(key).map_or(0, |e| e.bytes),
            Invalidation::Update => match inner.guns.get_mut(key) {
                Some(e) => {
                    let freed = e.latest_timestamp.take().map_or(0, |c| file_size(&c.file));
                    e.bytes -= freed;
                    freed + Self::prune_gzip(e, crate::storage::TIMESTAMP_ROLE)
                }
                None => 0,
            },
        };
        inner.bytes -= freed;
    }

    /// Drops everything (and makes every outstanding ticket stale).
    pub fn clear(&self) {
        let mut inner = lock(&self.inner);
        inner.seq += 1;
        inner.recent.clear();
        inner.guns.clear();
        inner.bytes = 0;
    }

    fn evict(&self, inner: &mut Inner) {
        if inner.bytes <= self.opts.max_bytes {
            return;
        }
        let target = self.opts.max_bytes / 4 * 3;
        let mut victims = Vec::new();
        let mut bytes = inner.bytes;
        for (k, e) in &inner.guns {
            if bytes <= target {
                break;
            }
            bytes -= e.bytes;
            victims.push(k.clone());
        }
        for k in victims {
            if let Some(e) = inner.guns.remove(&k) {
                inner.bytes -= e.bytes;
                inner.stats.evictions += 1;
            }
        }
    }

    /// Memo: the sha256 that the file with hash `file_sha256` lists for `role`, if known.
    pub fn memo_reference(&self, file_sha256: &str, role: &str) -> Option<Option<String>> {
        lock(&self.memo)
            .refs
            .get(file_sha256)
            .and_then(|roles| roles.get(role))
            .cloned()
    }

    /// Memo: records what [`MetaCache::memo_reference`] returns.
    pub fn put_memo_reference(&self, file_sha256: &str, role: &str, listed: Option<String>) {
        let mut memo = lock(&self.memo);
        if memo.refs_len >= MEMO_ENTRIES {
            memo.refs.clear();
            memo.refs_len = 0;
        }
        let added = memo
            .refs
            .entry(file_sha256.to_string())
            .or_default()
            .insert(role.to_string(), listed)
            .is_none();
        if added {
            memo.refs_len += 1;
        }
    }

    /// Memo: for the timestamp with hash `ts_sha256`, the snapshot sha256 it names and the
    /// time until which neither it nor that snapshot needs regeneration.
    pub fn memo_fresh(&self, ts_sha256: &str) -> Option<(String, DateTime<Utc>)> {
        lock(&self.memo).fresh.get(ts_sha256).cloned()
    }

    /// Memo: records what [`MetaCache::memo_fresh`] returns.
    pub fn put_memo_fresh(&self, ts_sha256: &str, snapshot_sha256: &str, until: DateTime<Utc>) {
        let mut memo = lock(&self.memo);
        if memo.fresh.len() >= MEMO_ENTRIES {
            memo.fresh.clear();
        }
        memo.fresh
            .insert(ts_sha256.to_string(), (snapshot_sha256.to_string(), until));
    }

    /// Memo: the root last validated for `gun` by an update. It is only a shortcut for the
    /// same bytes: use it only when [`TrustedRoot::raw`] equals the stored root.
    pub fn trusted_root(&self, gun: &str) -> Option<Arc<TrustedRoot>> {
        lock(&self.memo).roots.get(gun).cloned()
    }

    /// Memo: records what [`MetaCache::trusted_root`] returns.
    pub fn put_trusted_root(&self, gun: &str, root: TrustedRoot) {
        let mut memo = lock(&self.memo);
        if memo.roots.len() >= TRUSTED_ROOT_ENTRIES && !memo.roots.contains_key(gun) {
            memo.roots.clear();
        }
        memo.roots.insert(gun.to_string(), Arc::new(root));
    }

    /// Current counters.
    pub fn stats(&self) -> CacheStats {
        let inner = lock(&self.inner);
        CacheStats {
            bytes: inner.bytes,
            ..inner.stats
        }
    }
}

/// Tracks which changefeed ids have been seen, for the sync thread (see the module docs).
#[derive(Debug, Default)]
pub struct FeedCursor {
    /// Highest id seen.
    pub max_seen: i64,
    /// Ids below `max_seen` not seen yet, with when they were first missed.
    gaps: Vec<(i64, Instant)>,
    started: bool,
}

/// Ids to ask for in the next poll: everything above `after`, plus `gaps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedQuery {
    /// Lower bound (exclusive) of new ids.
    pub after: i64,
    /// Missing ids below it.
    pub gaps: Vec<i64>,
}

/// Most gaps tracked at once; beyond that the cache is cleared and tracking restarts.
const MAX_GAPS: usize = 512;

impl FeedCursor {
    /// A cursor that starts after `max_id` minus a margin, so rows of transactions still
    /// in flight when the process started are picked up as gaps.
    pub fn starting_at(max_id: i64) -> Self {
        FeedCursor {
            max_seen: (max_id - 1000).max(0),
            gaps: Vec::new(),
            started: true,
        }
    }

    /// Whether [`FeedCursor::starting_at`] has been called.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// What to query next.
    pub fn query(&self) -> FeedQuery {
        FeedQuery {
            after: self.max_seen,
            gaps: self.gaps.iter().map(|(id, _)| *id).collect(),
        }
    }

    /// Takes the ids a poll returned (ascending). Returns `false` when the cache must be
    /// cleared (a gap was given up on, or too many gaps).
    pub fn advance(&mut self, ids: &[i64], now: Instant) -> bool {
        let mut ok = true;
        self.gaps.retain(|(id, _)| !ids.contains(id));
        for &id in ids {
            if id > self.max_seen {
                for missing in self.max_seen + 1..id {
                    self.gaps.push((missing, now));
                }
                self.max_seen = id;
            }
        }
        let before = self.gaps.len();
        self.gaps
            .retain(|(_, since)| now.duration_since(*since) < GAP_GIVE_UP);
        if self.gaps.len() != before {
            ok = false;
        }
        if self.gaps.len() > MAX_GAPS {
            self.gaps.clear();
            ok = false;
        }
        ok
    }
}

/// A cache handle the sync thread holds without keeping the cache alive.
pub(crate) type WeakCache = std::sync::Weak<MetaCache>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sha256_hex;

    fn file(role: &str, version: i64, data: &str) -> StoredFile {
        StoredFile {
            role: role.into(),
            version,
            data: data.as_bytes().to_vec(),
            sha256: sha256_hex(data.as_bytes()),
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        }
    }

    fn serving(fold_case: bool) -> MetaCache {
        let c = MetaCache::new(CacheOptions::default(), fold_case);
        c.mark_synced(Instant::now());
        c
    }

    #[test]
    fn nothing_is_served_before_a_sync_or_after_it_is_too_old() {
        let opts = CacheOptions {
            max_staleness: Duration::from_millis(1),
            ..CacheOptions::default()
        };
        let c = MetaCache::new(opts, false);
        let t = c.ticket();
        c.put_latest_timestamp("g", t, &file("timestamp", 1, "a"));
        assert_eq!(c.latest_timestamp("g"), None);
        c.mark_synced(Instant::now() - Duration::from_secs(1));
        assert_eq!(c.latest_timestamp("g"), None);
    }

    #[test]
    fn a_read_that_raced_with_an_invalidation_is_not_cached() {
        let c = serving(false);
        let t = c.ticket();
        c.invalidate("g", Invalidation::Update);
        c.put_latest_timestamp("g", t, &file("timestamp", 1, "old"));
        assert_eq!(c.latest_timestamp("g"), None);
        // Other GUNs' invalidations do not matter.
        let t = c.ticket();
        c.invalidate("other", Invalidation::Update);
        c.put_latest_timestamp("g", t, &file("timestamp", 1, "old"));
        assert_eq!(c.latest_timestamp("g").unwrap().data, b"old");
    }

    #[test]
    fn writes_replace_the_latest_timestamp_and_keep_immutable_files() {
        let c = serving(false);
        let t = c.ticket();
        let snap = file("snapshot", 1, "s1");
        c.put_file("g", t, &snap);
        c.put_latest_timestamp("g", t, &file("timestamp", 1, "t1"));
        let t = c.ticket();
        c.after_write(
            "g",
            t,
            &[file("snapshot", 2, "s2"), file("timestamp", 2, "t2")],
        );
        assert_eq!(c.latest_timestamp("g").unwrap().data, b"t2");
        assert_eq!(c.by_version("g", "snapshot", 2).unwrap().data, b"s2");
        let s2 = file("snapshot", 2, "s2");
        assert_eq!(
            c.by_checksum("g", "snapshot", &s2.sha256).unwrap().data,
            b"s2"
        );
        // A written version replaces the older ones of its role (reads of those go to the
        // database); other roles' files stay.
        assert_eq!(c.by_checksum("g", "snapshot", &snap.sha256), None);
        assert_eq!(c.by_version("g", "snapshot", 1), None);
        c.put_file("g", c.ticket(), &file("targets", 1, "tg1"));
        let t = c.ticket();
        c.after_write("g", t, &[file("timestamp", 3, "t3")]);
        assert_eq!(c.by_version("g", "targets", 1).unwrap().data, b"tg1");
        c.invalidate("g", Invalidation::Deletion);
        assert_eq!(c.by_checksum("g", "snapshot", &s2.sha256), None);
        assert_eq!(c.latest_timestamp("g"), None);
    }

    #[test]
    fn publishing_does_not_grow_the_cache() {
        let c = serving(false);
        let mut sizes = Vec::new();
        for v in 1..=50 {
            let t = c.ticket();
            c.after_write(
                "g",
                t,
                &[
                    file("targets", v, &format!("targets {v} {}", "x".repeat(1000))),
                    file("snapshot", v, &format!("snapshot {v}")),
                    file("timestamp", v, &format!("timestamp {v}")),
                ],
            );
            sizes.push(c.stats().bytes);
        }
        assert_eq!(sizes[9], sizes[49], "{sizes:?}");
    }

    #[test]
    fn a_late_writer_does_not_overwrite_a_newer_one() {
        let c = serving(false);
        let t_a = c.ticket();
        let t_b = c.ticket();
        // B commits after A but reports first; A's report must not install version 6.
        c.after_write("g", t_b, &[file("timestamp", 7, "t7")]);
        c.after_write("g", t_a, &[file("timestamp", 6, "t6")]);
        assert_eq!(c.latest_timestamp("g"), None);
    }

    #[test]
    fn case_folding_and_uncacheable_names() {
        let c = serving(true);
        let t = c.ticket();
        c.put_latest_timestamp("Docker.io/App", t, &file("timestamp", 1, "t"));
        assert!(c.latest_timestamp("docker.io/app").is_some());
        c.invalidate("DOCKER.IO/APP", Invalidation::Update);
        assert!(c.latest_timestamp("docker.io/app").is_none());
        let t = c.ticket();
        c.put_latest_timestamp("caf\u{e9}", t, &file("timestamp", 1, "t"));
        assert!(c.latest_timestamp("caf\u{e9}").is_none());
        c.put_latest_timestamp("a b", t, &file("timestamp", 1, "t"));
        assert!(c.latest_timestamp("a b").is_none());
        let exact = serving(false);
        let t = exact.ticket();
        exact.put_latest_timestamp("A", t, &file("timestamp", 1, "t"));
        assert!(exact.latest_timestamp("a").is_none());
    }

    #[test]
    fn size_stays_bounded() {
        let opts = CacheOptions {
            max_bytes: 10_000,
            ..CacheOptions::default()
        };
        let c = MetaCache::new(opts, false);
        c.mark_synced(Instant::now());
        for i in 0..100 {
            let t = c.ticket();
            c.put_file(&format!("g{i}"), t, &file("targets", 1, &"x".repeat(500)));
        }
        let s = c.stats();
        assert!(s.bytes <= 10_000, "{s:?}");
        assert!(s.evictions > 0);
    }

    #[test]
    fn expired_entries_are_not_served() {
        let opts = CacheOptions {
            ttl: Duration::ZERO,
            ..CacheOptions::default()
        };
        let c = MetaCache::new(opts, false);
        c.mark_synced(Instant::now());
        let t = c.ticket();
        c.put_latest_timestamp("g", t, &file("timestamp", 1, "t"));
        assert!(c.latest_timestamp("g").is_none());
    }

    #[test]
    fn current_needs_every_piece_and_a_fresh_memo() {
        let c = serving(false);
        let (ts, snap, targets) = (
            file("timestamp", 3, "t3"),
            file("snapshot", 3, "s3"),
            file("targets", 2, "x2"),
        );
        let now = Utc::now();
        let t = c.ticket();
        c.put_latest_timestamp("g", t, &ts);
        assert!(c.current("g", "timestamp", now).is_none(), "no memo yet");
        c.put_memo_fresh(&ts.sha256, &snap.sha256, now + chrono::Duration::days(1));
        assert!(
            c.current("g", "timestamp", now).is_none(),
            "snapshot not cached"
        );
        c.put_file("g", t, &snap);
        assert_eq!(c.current("g", "timestamp", now).unwrap().data, b"t3");
        assert_eq!(c.current("g", "snapshot", now).unwrap().data, b"s3");
        // Once something expires the slow path must regenerate.
        assert!(c
            .current("g", "timestamp", now + chrono::Duration::days(2))
            .is_none());

        assert!(c.current_role("g", "targets").is_none());
        c.put_memo_reference(&ts.sha256, "snapshot", Some(snap.sha256.clone()));
        c.put_memo_reference(&snap.sha256, "targets", Some(targets.sha256.clone()));
        assert!(
            c.current_role("g", "targets").is_none(),
            "targets not cached"
        );
        c.put_file("g", t, &targets);
        assert_eq!(c.current_role("g", "targets").unwrap().data, b"x2");
        // A role the snapshot does not list is left to the slow path (404 there).
        c.put_memo_reference(&snap.sha256, "targets/x", None);
        assert!(c.current_role("g", "targets/x").is_none());
        assert_eq!(c.memo_reference(&snap.sha256, "targets/x"), Some(None));
    }

    fn is_unavailable(v: GzipVariant<'_>) -> bool {
        matches!(v, GzipVariant::Unavailable)
    }

    #[test]
    fn gzip_variants_are_claimed_once_and_kept_with_their_file() {
        let c = serving(false);
        let big = file("targets", 1, &"t1 ".repeat(1000));
        // Not cached: nobody would remember the work.
        assert!(is_unavailable(c.gzip("g", &big)));
        c.put_file("g", c.ticket(), &big);
        let before = c.stats().bytes;
        let GzipVariant::Claimed(claim) = c.gzip("g", &big) else {
            panic!("first request compresses");
        };
        // Meanwhile everybody else serves the identity encoding.
        assert!(is_unavailable(c.gzip("g", &big)));
        assert_eq!(c.stats().bytes, before);
        let served = claim.complete(Some(b"compressed".to_vec())).unwrap();
        assert_eq!(&served[..], b"compressed");
        assert_eq!(c.stats().gzip_compressions, 1);
        assert_eq!(c.stats().bytes, before + ENTRY_OVERHEAD + 10);
        for _ in 0..3 {
            let GzipVariant::Ready(gz) = c.gzip("g", &big) else {
                panic!("remembered");
            };
            assert_eq!(&gz[..], b"compressed");
        }
        assert_eq!(c.stats().gzip_compressions, 1);

        // An abandoned claim (request dropped) lets the next request compress.
        let other = file("root", 1, &"r1 ".repeat(1000));
        c.put_file("g", c.ticket(), &other);
        let GzipVariant::Claimed(claim) = c.gzip("g", &other) else {
            panic!()
        };
        drop(claim);
        let GzipVariant::Claimed(claim) = c.gzip("g", &other) else {
            panic!("claim released")
        };
        assert!(claim.complete(None).is_none());
        assert!(matches!(c.gzip("g", &other), GzipVariant::NotSmaller));
        assert_eq!(c.stats().gzip_compressions, 3);

        // A newer version drops the older file and its variant, and the bytes with them.
        let t = c.ticket();
        let newer = file("targets", 2, "t2");
        c.after_write("g", t, std::slice::from_ref(&newer));
        assert!(is_unavailable(c.gzip("g", &big)));
        let entry_bytes = |c: &MetaCache| lock(&c.inner).guns["g"].bytes;
        assert_eq!(c.stats().bytes, entry_bytes(&c));
        // A result completed after its file left the cache is served but not kept.
        let GzipVariant::Claimed(claim) = c.gzip("g", &newer) else {
            panic!()
        };
        c.invalidate("g", Invalidation::Deletion);
        assert!(claim.complete(Some(b"late".to_vec())).is_some());
        assert_eq!(c.stats().bytes, 0);
        assert!(is_unavailable(c.gzip("g", &newer)));
    }

    #[test]
    fn a_stale_claim_does_not_touch_a_newer_one() {
        let c = serving(false);
        let f = file("targets", 1, &"t1 ".repeat(1000));
        c.put_file("g", c.ticket(), &f);
        let GzipVariant::Claimed(old) = c.gzip("g", &f) else {
            panic!()
        };
        // The file leaves the cache and comes back while the first claim is out.
        c.invalidate("g", Invalidation::Deletion);
        c.put_file("g", c.ticket(), &f);
        let GzipVariant::Claimed(new) = c.gzip("g", &f) else {
            panic!()
        };
        drop(old);
        assert!(
            is_unavailable(c.gzip("g", &f)),
            "the newer claim still holds"
        );
        new.complete(Some(b"gz".to_vec()));
        assert!(matches!(c.gzip("g", &f), GzipVariant::Ready(_)));
        assert_eq!(c.stats().gzip_compressions, 2);
    }

    #[test]
    fn the_latest_timestamps_variant_goes_with_it() {
        let c = serving(false);
        let ts = file("timestamp", 1, &"ts1 ".repeat(400));
        c.put_latest_timestamp("g", c.ticket(), &ts);
        let GzipVariant::Claimed(claim) = c.gzip("g", &ts) else {
            panic!("the latest timestamp is held")
        };
        claim.complete(Some(vec![1; 100]));
        assert!(matches!(c.gzip("g", &ts), GzipVariant::Ready(_)));
        let with_variant = c.stats().bytes;
        assert_eq!(with_variant, file_size(&ts) + ENTRY_OVERHEAD + 100);
        // Replaced by a newer latest timestamp: the variant is dropped and unaccounted.
        c.put_latest_timestamp("g", c.ticket(), &file("timestamp", 2, "ts2"));
        assert_eq!(c.stats().bytes, file_size(&file("timestamp", 2, "ts2")));
        assert!(is_unavailable(c.gzip("g", &ts)));
        // Same on an update invalidation.
        let ts3 = file("timestamp", 3, &"ts3 ".repeat(400));
        c.put_latest_timestamp("g", c.ticket(), &ts3);
        let GzipVariant::Claimed(claim) = c.gzip("g", &ts3) else {
            panic!()
        };
        claim.complete(Some(vec![1; 100]));
        c.invalidate("g", Invalidation::Update);
        assert_eq!(c.stats().bytes, 0);
    }

    #[test]
    fn gzip_variants_count_toward_the_memory_bound() {
        let opts = CacheOptions {
            max_bytes: 20_000,
            ..CacheOptions::default()
        };
        let c = MetaCache::new(opts, false);
        c.mark_synced(Instant::now());
        for i in 0..50 {
            let gun = format!("g{i}");
            let f = file("targets", 1, &"x".repeat(500));
            c.put_file(&gun, c.ticket(), &f);
            if let GzipVariant::Claimed(claim) = c.gzip(&gun, &f) {
                claim.complete(Some(vec![0; 400]));
            }
            assert!(c.stats().bytes <= 20_000, "{:?}", c.stats());
        }
        assert!(c.stats().evictions > 0);
    }

    #[test]
    fn feed_cursor_tracks_gaps() {
        let mut cur = FeedCursor::starting_at(0);
        let now = Instant::now();
        assert!(cur.advance(&[1, 2, 5], now));
        assert_eq!(
            cur.query(),
            FeedQuery {
                after: 5,
                gaps: vec![3, 4]
            }
        );
        assert!(cur.advance(&[4, 6], now));
        assert_eq!(
            cur.query(),
            FeedQuery {
                after: 6,
                gaps: vec![3]
            }
        );
        // A gap that never fills is given up on, and the caller must clear the cache.
        assert!(!cur.advance(&[], now + GAP_GIVE_UP));
        assert_eq!(cur.query().gaps, Vec::<i64>::new());
        let cur = FeedCursor::starting_at(5000);
        assert_eq!(cur.query().after, 4000);
    }

    #[test]
    fn options_from_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(CacheOptions::from_lookup(env(&[])), CacheOptions::default());
        let o = CacheOptions::from_lookup(env(&[
            ("NOTARY_SERVER_CACHE_MAX_MB", "8"),
            ("NOTARY_SERVER_CACHE_POLL_MS", "50"),
            ("NOTARY_SERVER_CACHE_TTL_MS", "x"),
        ]));
        assert_eq!(o.max_bytes, 8 << 20);
        assert_eq!(o.poll_interval, Duration::from_millis(50));
        assert_eq!(o.ttl, CacheOptions::default().ttl);
        assert!(!CacheOptions::from_lookup(env(&[("NOTARY_SERVER_CACHE", "off")])).enabled);
    }
}
