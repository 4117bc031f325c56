//! `monitor`: read the whole log, recompute its root, and check that every logged file is
//! still served with the logged bytes.

use std::fmt;

use futures_util::stream::{self, StreamExt as _};
use notary_tlog::tiles::TILE_WIDTH;
use notary_tlog::{Checkpoint, EntryBundle, LeafRecord, MemoryHashStore, NoteKey};
use sha2::{Digest, Sha256};

use crate::consistency::{check_extends, current_checkpoint, ConsistencyError};
use crate::source::{FetchError, LogSource};

/// Knobs of [`monitor`].
#[derive(Clone, Debug)]
pub struct MonitorOptions {
    /// Fetch every logged file by checksum and compare it with its leaf.
    pub fetch_files: bool,
    /// Files fetched at once.
    pub concurrency: usize,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        Self {
            fetch_files: true,
            concurrency: 8,
        }
    }
}

/// A problem with one log entry.
#[derive(Debug)]
pub enum EntryProblem {
    /// The entry is not a canonical leaf record (yet it is in the signed tree).
    Malformed { index: u64, reason: String },
    /// The server serves other bytes under the logged checksum.
    Tampered {
        index: u64,
        record: LeafRecord,
        sha256: [u8; 32],
        length: u64,
    },
    /// The server answers 404 for the logged checksum.
    Missing { index: u64, record: LeafRecord },
    /// The file could not be checked (network, 5xx, ...).
    Error {
        index: u64,
        record: LeafRecord,
        error: FetchError,
    },
}

impl fmt::Display for EntryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryProblem::Malformed { index, reason } => {
                write!(f, "MALFORMED entry {index}: {reason}")
            }
            EntryProblem::Tampered {
                index,
                record,
                sha256,
                length,
            } => write!(
                f,
                "TAMPERED entry {index} {} {} v{}: the log says sha256 {} length {}, the server returns sha256 {} length {length}",
                record.gun,
                record.role,
                record.version,
                hex::encode(record.sha256),
                record.length,
                hex::encode(sha256),
            ),
            EntryProblem::Missing { index, record } => write!(
                f,
                "MISSING entry {index} {} {} v{} sha256 {}: the server answers 404 (the file was removed behind the log's back, or the GUN was deleted through the API)",
                record.gun,
                record.role,
                record.version,
                hex::encode(record.sha256),
            ),
            EntryProblem::Error {
                index,
                record,
                error,
            } => write!(
                f,
                "ERROR entry {index} {} {} v{}: {error}",
                record.gun, record.role, record.version
            ),
        }
    }
}

/// Fatal failures: the monitor could not read the log at all.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("the saved state does not verify with the pinned key: {0}")]
    State(notary_tlog::Error),
    #[error(transparent)]
    Checkpoint(ConsistencyError),
    #[error("cannot read entry bundle {path}: {error}")]
    Bundle { path: String, error: FetchError },
    #[error("entry bundle {path} is malformed: {reason}")]
    MalformedBundle { path: String, reason: String },
}

impl MonitorError {
    /// Exit status: 3 when the log could not be read, 1 when what was read is wrong.
    pub fn exit_code(&self) -> i32 {
        match self {
            MonitorError::Bundle { .. } => 3,
            MonitorError::Checkpoint(ConsistencyError::Fetch(_)) => 3,
            _ => 1,
        }
    }
}

/// What a monitor run found.
#[derive(Debug)]
pub struct MonitorReport {
    /// The current checkpoint, opened with the pinned key.
    pub checkpoint: Checkpoint,
    /// Its signed note as received (the next state).
    pub note: Vec<u8>,
    /// The check from the saved state, when there was one.
    pub consistency: Option<Result<Checkpoint, ConsistencyError>>,
    /// The root recomputed from the entries.
    pub computed_root: notary_tlog::Hash,
    pub files_fetched: bool,
    /// Entries whose file matched (0 when files were not fetched).
    pub ok: u64,
    pub problems: Vec<EntryProblem>,
}

impl MonitorReport {
    pub fn entries(&self) -> u64 {
        self.checkpoint.size()
    }

    pub fn root_ok(&self) -> bool {
        self.computed_root == self.checkpoint.root()
    }

    fn count(&self, f: impl Fn(&EntryProblem) -> bool) -> usize {
        self.problems.iter().filter(|p| f(p)).count()
    }

    pub fn tampered(&self) -> usize {
        self.count(|p| matches!(p, EntryProblem::Tampered { .. }))
    }

    pub fn missing(&self) -> usize {
        self.count(|p| matches!(p, EntryProblem::Missing { .. }))
    }

    pub fn errors(&self) -> usize {
        self.count(|p| matches!(p, EntryProblem::Error { .. }))
    }

    pub fn malformed(&self) -> usize {
        self.count(|p| matches!(p, EntryProblem::Malformed { .. }))
    }

    /// True when the saved state showed a fork, rewrite or truncation.
    pub fn fork(&self) -> bool {
        matches!(&self.consistency, Some(Err(e)) if e.is_fork())
    }

    /// Lines to print before the summary: the consistency verdict, the root, each problem.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match &self.consistency {
            None => lines.push(format!(
                "no saved state: tree of {} entries taken as the starting point",
                self.entries()
            )),
            Some(Ok(old)) => lines.push(format!(
                "ok: tree of {} entries extends the saved tree of {}",
                self.entries(),
                old.size()
            )),
            Some(Err(e)) if e.is_fork() => lines.push(format!("FORK: {e}")),
            Some(Err(e)) => lines.push(format!("ERROR: consistency with the saved state: {e}")),
        }
        if !self.root_ok() {
            lines.push(format!(
                "ROOT MISMATCH: the entries hash to {} but the signed checkpoint of {} entries says {}: the log was rewritten",
                self.computed_root,
                self.entries(),
                self.checkpoint.root()
            ));
        }
        lines.extend(self.problems.iter().map(ToString::to_string));
        lines
    }

    /// `N entries, M ok, T tampered, X missing, tree root ok`.
    pub fn summary(&self) -> String {
        let root = if self.root_ok() {
            "tree root ok"
        } else {
            "tree root MISMATCH"
        };
        let mut parts = vec![format!("{} entries", self.entries())];
        if self.files_fetched {
            parts.push(format!("{} ok", self.ok));
            parts.push(format!("{} tampered", self.tampered()));
            parts.push(format!("{} missing", self.missing()));
            if self.errors() > 0 {
                parts.push(format!("{} errors", self.errors()));
            }
        } else {
            parts.push("files not fetched".to_owned());
        }
        if self.malformed() > 0 {
            parts.push(format!("{} malformed", self.malformed()));
        }
        if self.fork() {
            parts.push("FORK".to_owned());
        }
        parts.push(root.to_owned());
        parts.join(", ")
    }

    /// 0: all verified; 1: tampered, fork, root mismatch or malformed entry; 3: something could
    /// not be checked (network, 5xx); 2: files missing and nothing else wrong.
    pub fn exit_code(&self) -> i32 {
        let consistency_error = matches!(&self.consistency, Some(Err(e)) if !e.is_fork());
        if self.tampered() > 0 || self.fork() || !self.root_ok() || self.malformed() > 0 {
            1
        } else if self.errors() > 0 || consistency_error {
            3
        } else if self.missing() > 0 {
            2
        } else {
            0
        }
    }

    /// The checkpoint may become the saved state only when everything verified.
    pub fn all_verified(&self) -> bool {
        self.exit_code() == 0
    }
}

/// Runs the monitor: opens the current checkpoint, checks it extends `state` (a checkpoint note
/// saved by an earlier run), reads every entry, recomputes the root, and (optionally) fetches
/// every logged file by checksum.
pub async fn monitor(
    source: &dyn LogSource,
    key: &NoteKey,
    state: Option<&[u8]>,
    options: &MonitorOptions,
) -> Result<MonitorReport, MonitorError> {
    let old = state
        .map(|note| Checkpoint::open(note, key).map_err(MonitorError::State))
        .transpose()?;
    let (checkpoint, note) = current_checkpoint(source, key)
        .await
        .map_err(MonitorError::Checkpoint)?;
    let consistency = match old {
        None => None,
        Some(old) => Some(
            check_extends(source, key, &old, &checkpoint)
                .await
                .map(|()| old),
        ),
    };

    let mut problems = Vec::new();
    let mut records = Vec::new();
    let mut store = MemoryHashStore::new();
    let size = checkpoint.size();
    let width = u64::from(TILE_WIDTH);
    for n in 0..size.div_ceil(width) {
        let in_bundle = (size - n * width).min(width);
        let bundle =
            EntryBundle::new(n, u16::try_from(in_bundle).unwrap_or(TILE_WIDTH)).map_err(|e| {
                MonitorError::MalformedBundle {
                    path: format!("bundle {n}"),
                    reason: e.to_string(),
                }
            })?;
        let body = source
            .entry_bundle(&bundle)
            .await
            .map_err(|error| MonitorError::Bundle {
                path: bundle.path(),
                error,
            })?;
        let entries = bundle
            .decode(&body)
            .map_err(|e| MonitorError::MalformedBundle {
                path: bundle.path(),
                reason: e.to_string(),
            })?;
        for (i, entry) in entries.iter().enumerate() {
            let index = bundle.first_leaf() + i as u64;
            store
                .append(entry)
                .map_err(|e| MonitorError::MalformedBundle {
                    path: bundle.path(),
                    reason: e.to_string(),
                })?;
            match LeafRecord::decode(entry) {
                Ok(record) => records.push((index, record)),
                Err(e) => problems.push(EntryProblem::Malformed {
                    index,
                    reason: e.to_string(),
                }),
            }
        }
    }
    let computed_root = store.root().map_err(|e| MonitorError::MalformedBundle {
        path: "(all)".to_owned(),
        reason: e.to_string(),
    })?;

    let mut ok = 0;
    if options.fetch_files {
        let checks = stream::iter(records)
            .map(|(index, record)| check_file(source, index, record))
            .buffered(options.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        for check in checks {
            match check {
                None => ok += 1,
                Some(problem) => problems.push(problem),
            }
        }
    }
    problems.sort_by_key(|p| match p {
        EntryProblem::Malformed { index, .. }
        | EntryProblem::Tampered { index, .. }
        | EntryProblem::Missing { index, .. }
        | EntryProblem::Error { index, .. } => *index,
    });

    Ok(MonitorReport {
        checkpoint,
        note,
        consistency,
        computed_root,
        files_fetched: options.fetch_files,
        ok,
        problems,
    })
}

/// Fetches the file a record names and compares it; `None` when it matches.
async fn check_file(
    source: &dyn LogSource,
    index: u64,
    record: LeafRecord,
) -> Option<EntryProblem> {
    let sha = hex::encode(record.sha256);
    match source
        .metadata_by_checksum(&record.gun, &record.role, &sha)
        .await
    {
        Ok(bytes) => {
            let sha256: [u8; 32] = Sha256::digest(&bytes).into();
            let length = bytes.len() as u64;
            if sha256 == record.sha256 && length == record.length {
                None
            } else {
                Some(EntryProblem::Tampered {
                    index,
                    record,
                    sha256,
                    length,
                })
            }
        }
        Err(FetchError::NotFound { .. }) => Some(EntryProblem::Missing { index, record }),
        Err(error) => Some(EntryProblem::Error {
            index,
            record,
            error,
        }),
    }
}
