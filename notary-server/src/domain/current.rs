//! Serving the current timestamp or snapshot, regenerating expired ones (spec §5.2).

use notary_tuf::metadata::check_hashes;
use notary_tuf::roles;
use notary_tuf::verify::RepoBuilder;

use super::generate::{self, parse_stored, referenced_sha256, Corrupt, SignFailure};
use super::{Ctx, DomainError};
use crate::storage::{sha256_hex, MetaUpdate, StoreError, StoredFile};

/// How often a regeneration that lost the version race to a concurrent writer is retried
/// (from a fresh read) before giving up.
const MAX_ATTEMPTS: usize = 3;

/// The current `timestamp` or `snapshot` of `gun` (`role` must be one of the two), after
/// regenerating what has expired (spec §5.2).
///
/// `Ok(None)` when the GUN has no timestamp yet or its snapshot is not stored (404). When
/// nothing has expired no signer call is made, so reads keep working while the signer is
/// down. An expired snapshot is re-signed with the snapshot key(s) of the current root (its
/// `root` entry recomputed, version + 1, expiry now + 3 years); an expired timestamp, or one
/// whose snapshot was regenerated, is replaced (version + 1, expiry now + 14 days). Both are
/// written in one `update_many`. If a concurrent writer wins that write, the winner's files
/// are re-read and served.
pub async fn current_timestamp_or_snapshot(
    ctx: &Ctx<'_>,
    gun: &str,
    role: &str,
) -> Result<Option<StoredFile>, DomainError> {
    if role != roles::TIMESTAMP && role != roles::SNAPSHOT {
        return Err(DomainError::Other(format!(
            "{role} is neither timestamp nor snapshot"
        )));
    }
    let due = Due {
        timestamp: ctx.now,
        snapshot: ctx.now,
    };
    Ok(with_retries(ctx, gun, role, due).await?.0)
}

/// Thresholds: a timestamp or snapshot expiring at or before its threshold is re-signed.
/// Reads use "now"; re-signing ahead of expiry uses a later time.
#[derive(Debug, Clone, Copy)]
struct Due {
    timestamp: chrono::DateTime<chrono::Utc>,
    snapshot: chrono::DateTime<chrono::Utc>,
}

/// What a re-sign wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resigned {
    /// A new timestamp.
    pub timestamp: bool,
    /// A new snapshot (with it).
    pub snapshot: bool,
}

/// Re-signs `gun`'s timestamp if it expires before `timestamp_before`, and its snapshot if
/// that expires before `snapshot_before` and the server holds the snapshot key (a snapshot
/// the owner signs is left to the owner until it has actually expired, when reads fail
/// anyway). Returns what was written. The background task of
/// [`crate::expiry::resign`] calls this so that server-held roles never come close to expiry.
pub async fn resign_ahead(
    ctx: &Ctx<'_>,
    gun: &str,
    timestamp_before: chrono::DateTime<chrono::Utc>,
    snapshot_before: chrono::DateTime<chrono::Utc>,
) -> Result<Resigned, DomainError> {
    let due = Due {
        timestamp: timestamp_before.max(ctx.now),
        snapshot: snapshot_before.max(ctx.now),
    };
    Ok(with_retries(ctx, gun, roles::TIMESTAMP, due).await?.1)
}

async fn with_retries(
    ctx: &Ctx<'_>,
    gun: &str,
    role: &str,
    due: Due,
) -> Result<(Option<StoredFile>, Resigned), DomainError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match regenerate_once(ctx, gun, role, due).await {
            Err(DomainError::Store(StoreError::OldVersion)) if attempt < MAX_ATTEMPTS => continue,
            other => return other,
        }
    }
}

async fn regenerate_once(
    ctx: &Ctx<'_>,
    gun: &str,
    role: &str,
    due: Due,
) -> Result<(Option<StoredFile>, Resigned), DomainError> {
    let Some(timestamp) = ctx.store.get_latest(gun, roles::TIMESTAMP).await? else {
        return Ok((None, Resigned::default()));
    };
    let pick = |ts: StoredFile, snap: StoredFile| {
        if role == roles::TIMESTAMP {
            ts
        } else {
            snap
        }
    };
    // Fast path: this exact timestamp was checked before and nothing expires until then.
    let cache = ctx.store.cache();
    if let Some((snapshot_sha, until)) = cache.and_then(|c| c.memo_fresh(&timestamp.sha256)) {
        if due.timestamp.max(due.snapshot) < until {
            let snapshot = ctx
                .store
                .get_checksum(gun, roles::SNAPSHOT, &snapshot_sha)
                .await?;
            return Ok((snapshot.map(|s| pick(timestamp, s)), Resigned::default()));
        }
    }
    let ts = parse_stored(&timestamp)
        .and_then(|f| f.timestamp().map_err(|e| Corrupt(e.to_string())))
        .map_err(corrupt)?;
    let snapshot_sha = ts
        .snapshot_meta()
        .and_then(|m| m.sha256_hex())
        .ok_or_else(|| {
            DomainError::Other(format!(
                "timestamp version {} of {gun} lacks a snapshot sha256",
                timestamp.version
            ))
        })?;
    let Some(snapshot) = ctx
        .store
        .get_checksum(gun, roles::SNAPSHOT, &snapshot_sha)
        .await?
    else {
        return Ok((None, Resigned::default()));
    };
    let snap = parse_stored(&snapshot)
        .and_then(|f| f.snapshot().map_err(|e| Corrupt(e.to_string())))
        .map_err(corrupt)?;

    let snapshot_expired = snap.common.is_expired(ctx.now);
    let snapshot_due = snapshot_expired || snap.common.is_expired(due.snapshot);
    // A timestamp whose hashes do not match its snapshot is as good as expired (Go).
    let timestamp_stale = ts.common.is_expired(due.timestamp)
        || ts
            .snapshot_meta()
            .is_none_or(|m| check_hashes(&snapshot.data, roles::SNAPSHOT, &m.hashes).is_err());
    if !snapshot_due && !timestamp_stale {
        // The memo is keyed by content hash: only trust a key that matches the content.
        if let Some(cache) = cache.filter(|_| timestamp.sha256 == sha256_hex(&timestamp.data)) {
            let until = ts.common.expires.min(snap.common.expires);
            cache.put_memo_fresh(&timestamp.sha256, &snapshot_sha, until);
        }
        return Ok((Some(pick(timestamp, snapshot)), Resigned::default()));
    }

    // Sign with the keys named by the current root: the one the snapshot certifies.
    let root_sha = referenced_sha256(&snapshot, roles::ROOT)
        .map_err(corrupt)?
        .ok_or_else(|| DomainError::Other(format!("snapshot of {gun} lists no root")))?;
    let root_file = ctx
        .store
        .get_checksum(gun, roles::ROOT, &root_sha)
        .await?
        .ok_or_else(|| DomainError::Other(format!("current root of {gun} is not stored")))?;
    // The root was validated when it was accepted. Its expiry (or its certificates') is the
    // owner's to repair; the server keeps signing timestamps meanwhile, where Go answers 500
    // (notary #598) and readers lose even the stored bytes.
    let mut builder = RepoBuilder::new(gun, ctx.now);
    builder
        .load_stored_root(&root_file.data, 1)
        .map_err(|e| DomainError::Other(format!("current root of {gun} is not usable: {e}")))?;
    let root = builder
        .root()
        .map(|r| r.typed.clone())
        .ok_or_else(|| DomainError::Other("root not loaded".into()))?;

    let mut writes = Vec::new();
    let made = if snapshot_due {
        match generate::make_snapshot(
            ctx,
            gun,
            &root,
            Some(&snap),
            &builder.snapshot_meta_updates(),
        )
        .await
        {
            Ok(made) => Some(made),
            // Signed by its owner: not the server's to re-sign. An expired one is still
            // served (with a fresh timestamp when that is due): clients then report the
            // expired snapshot, where Go answers 500 and they learn nothing.
            Err(SignFailure::NotHeld(m)) => {
                if snapshot_expired {
                    tracing::info!(%gun, reason = %m, "snapshot expired and is signed by its owner; serving it as stored");
                }
                None
            }
            Err(e) => return Err(sign_error(e)),
        }
    } else {
        None
    };
    if made.is_none() && !timestamp_stale {
        return Ok((Some(pick(timestamp, snapshot)), Resigned::default()));
    }
    let written = Resigned {
        timestamp: true,
        snapshot: made.is_some(),
    };
    let snapshot_bytes = match made {
        Some((bytes, version)) => {
            writes.push(MetaUpdate {
                role: roles::SNAPSHOT.to_string(),
                version,
                data: bytes.clone(),
            });
            bytes
        }
        None => snapshot.data.clone(),
    };
    let (ts_bytes, ts_version) =
        generate::make_timestamp(ctx, gun, &root, Some(&ts), &snapshot_bytes)
            .await
            .map_err(sign_error)?;
    let ts_sha = sha256_hex(&ts_bytes);
    writes.push(MetaUpdate {
        role: roles::TIMESTAMP.to_string(),
        version: ts_version,
        data: ts_bytes,
    });
    let audit = crate::audit::Audit::new(crate::audit::Action::Resign, &ctx.actor.server_for());
    ctx.store.update_many_as(gun, writes, &audit).await?;

    let (wanted_role, sha) = if role == roles::TIMESTAMP {
        (roles::TIMESTAMP, ts_sha)
    } else {
        (roles::SNAPSHOT, sha256_hex(&snapshot_bytes))
    };
    // Read back what was written, so the caller gets the stored row (and its times).
    Ok((
        ctx.store.get_checksum(gun, wanted_role, &sha).await?,
        written,
    ))
}

fn corrupt(e: Corrupt) -> DomainError {
    DomainError::Other(e.0)
}

fn sign_error(f: SignFailure) -> DomainError {
    match f {
        SignFailure::NotHeld(m) | SignFailure::Refused(m) | SignFailure::Other(m) => {
            DomainError::Other(m)
        }
        SignFailure::Unavailable(m) => DomainError::Crypto(notary_tuf::CryptoError::Unavailable(m)),
        SignFailure::Crypto(e) => DomainError::Crypto(e),
    }
}
