//! Pieces shared by the update and read paths: resolving "current" files from one fixed
//! timestamp, and signing server-generated snapshot/timestamp files (spec §6.4, §11.3).

use notary_tuf::metadata::{self, Root, SignError, Snapshot, Timestamp};
use notary_tuf::{CryptoError, SignedFile};
use serde_json::Value;

use super::keys::GunKeyGate;
use super::Ctx;
use crate::storage::{StoreError, StoredFile, SNAPSHOT_ROLE, TIMESTAMP_ROLE};

/// Stored data that cannot be used (unparsable JSON, broken checksum chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Corrupt(pub String);

/// A read failure while resolving current files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadError {
    Store(StoreError),
    Corrupt(Corrupt),
}

impl From<StoreError> for ReadError {
    fn from(e: StoreError) -> Self {
        ReadError::Store(e)
    }
}

/// The repository state certified by one timestamp (spec §11.3), captured once per
/// operation.
///
/// Resolving every role from the same timestamp row, and writing the next timestamp as
/// exactly that row's version + 1, means a concurrent writer that commits in between makes
/// our write collide on (gun, `timestamp`, version) and fail with `OldVersion`, instead of
/// our update being applied on top of state it never validated.
#[derive(Debug, Clone, Default)]
pub(crate) struct Base {
    /// Latest timestamp row, if any.
    pub timestamp: Option<StoredFile>,
    /// The snapshot that timestamp names, if stored.
    pub snapshot: Option<StoredFile>,
}

impl Base {
    /// Reads the latest timestamp and the snapshot it names.
    pub async fn load(ctx: &Ctx<'_>, gun: &str) -> Result<Base, ReadError> {
        let Some(timestamp) = ctx.store.get_latest(gun, TIMESTAMP_ROLE).await? else {
            return Ok(Base::default());
        };
        let sha = referenced_sha256(&timestamp, SNAPSHOT_ROLE)?.ok_or_else(|| {
            ReadError::Corrupt(Corrupt(format!(
                "timestamp version {} lacks a snapshot sha256",
                timestamp.version
            )))
        })?;
        let snapshot = ctx.store.get_checksum(gun, SNAPSHOT_ROLE, &sha).await?;
        Ok(Base {
            timestamp: Some(timestamp),
            snapshot,
        })
    }

    /// The current file of `role` (not timestamp/snapshot): the row whose sha256 the
    /// captured snapshot lists. `None` if there is no snapshot, the role is not listed, or
    /// the listed file is not stored.
    pub async fn current(
        &self,
        ctx: &Ctx<'_>,
        gun: &str,
        role: &str,
    ) -> Result<Option<StoredFile>, ReadError> {
        let Some(snapshot) = &self.snapshot else {
            return Ok(None);
        };
        match referenced_sha256(snapshot, role)? {
            Some(sha) => Ok(ctx.store.get_checksum(gun, role, &sha).await?),
            None => Ok(None),
        }
    }
}

/// Hex sha256 that a stored snapshot or timestamp lists for `role`; `None` if the role is
/// not listed or has no sha256.
pub(crate) fn referenced_sha256(file: &StoredFile, role: &str) -> Result<Option<String>, Corrupt> {
    let parsed = parse_stored(file)?;
    let meta = Snapshot::from_signed_value(&parsed.signed_value)
        .map_err(|e| {
            Corrupt(format!(
                "stored {} version {}: {e}",
                file.role, file.version
            ))
        })?
        .meta;
    Ok(meta.get(role).and_then(|m| m.sha256_hex()))
}

impl From<Corrupt> for ReadError {
    fn from(e: Corrupt) -> Self {
        ReadError::Corrupt(e)
    }
}

/// Parses a stored file's envelope.
pub(crate) fn parse_stored(file: &StoredFile) -> Result<SignedFile, Corrupt> {
    SignedFile::parse(&file.data).map_err(|e| {
        Corrupt(format!(
            "stored {} version {}: {e}",
            file.role, file.version
        ))
    })
}

/// Why signing a server-generated file failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignFailure {
    /// The signer holds fewer of the role's keys than its threshold (a key the signer
    /// reports as not found counts as not held).
    NotHeld(String),
    /// The signer could not be reached.
    Unavailable(String),
    /// Any other signer failure.
    Crypto(CryptoError),
    /// The root names a key the signer holds but that was not made for this GUN and role.
    Refused(String),
    /// The file could not be built or encoded.
    Other(String),
}

/// Signs `signed` with every key of `role` in `root` that the signer holds (at least the
/// role's threshold) and returns the envelope bytes exactly as Go writes them. Every held
/// key must have been made for (`gun`, `role`) ([`GunKeyGate`]).
pub(crate) async fn sign_role(
    ctx: &Ctx<'_>,
    gun: &str,
    root: &Root,
    role: &str,
    signed: &Value,
) -> Result<Vec<u8>, SignFailure> {
    let base = root
        .build_base_role(role)
        .map_err(|e| SignFailure::Other(e.to_string()))?;
    let gate = GunKeyGate { ctx, gun };
    match metadata::sign_with_service(signed, &base, ctx.crypto, &gate).await {
        Ok(bytes) => Ok(bytes),
        Err(SignError::KeyRefused { key_id, reason }) => Err(SignFailure::Refused(format!(
            "the server will not sign {role} of {gun} with signer key {key_id}: {reason}"
        ))),
        Err(SignError::InsufficientSignatures { .. }) => Err(SignFailure::NotHeld(format!(
            "no {role} keys held by the signer"
        ))),
        // The key vanished between lookup and signing: the same as not holding it.
        Err(SignError::Crypto(CryptoError::NotFound(id))) => {
            Err(SignFailure::NotHeld(format!("signing key not found: {id}")))
        }
        Err(SignError::Crypto(CryptoError::Unavailable(m))) => Err(SignFailure::Unavailable(m)),
        Err(SignError::Crypto(e)) => Err(SignFailure::Crypto(e)),
        Err(e) => Err(SignFailure::Other(e.to_string())),
    }
}

/// Builds and signs the next snapshot: `prev` (or a new one), with the given entries
/// replaced, version + 1, expiry now + 3 years.
pub(crate) async fn make_snapshot(
    ctx: &Ctx<'_>,
    gun: &str,
    root: &Root,
    prev: Option<&Snapshot>,
    entries: &[(String, metadata::FileMeta)],
) -> Result<(Vec<u8>, i64), SignFailure> {
    let next = notary_tuf::verify::next_snapshot(prev, entries, ctx.now)
        .map_err(|e| SignFailure::Other(e.to_string()))?;
    let bytes = sign_role(ctx, gun, root, SNAPSHOT_ROLE, &next.to_signed_value()).await?;
    Ok((bytes, next.common.version))
}

/// Builds and signs the next timestamp over `snapshot_bytes`: version = prev + 1 (or 1),
/// expiry now + 14 days.
pub(crate) async fn make_timestamp(
    ctx: &Ctx<'_>,
    gun: &str,
    root: &Root,
    prev: Option<&Timestamp>,
    snapshot_bytes: &[u8],
) -> Result<(Vec<u8>, i64), SignFailure> {
    let next = notary_tuf::verify::next_timestamp(prev, snapshot_bytes, ctx.now)
        .map_err(|e| SignFailure::Other(e.to_string()))?;
    let bytes = sign_role(ctx, gun, root, TIMESTAMP_ROLE, &next.to_signed_value()).await?;
    Ok((bytes, next.common.version))
}
