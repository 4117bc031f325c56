//! The atomic update (spec server.md §6.3 V1–V6 and §6.4).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use notary_tuf::roles::{self, RoleName};
use notary_tuf::verify::{RepoBuilder, TrustedRoot};
use notary_tuf::SignedFile;

use super::generate::{self, Base, ReadError, SignFailure};
use super::{Ctx, UpdateError, ValidationDetail};
#[cfg(doc)]
use crate::cache::MetaCache;
use crate::storage::{MetaUpdate, StoredFile};

/// Go's message when the server cannot make the snapshot itself.
pub const NO_SNAPSHOT_KEY_MSG: &str =
    "no snapshot was included in update and server does not hold current snapshot key for repository";
/// Go's message when the server cannot sign the timestamp.
pub const NO_TIMESTAMP_KEY_MSG: &str = "no timestamp keys exist on the server";
/// Go's message for an update to a repository without any root.
pub const NO_ROOT_MSG: &str = "no pre-existing root and no root provided in update.";

/// Validates an update and commits it atomically (spec §6.3 V1–V6).
///
/// `parts` are (role, exact bytes) pairs whose role names the caller has already validated
/// and whose bodies it has checked to decode as signed metadata; if a role appears twice the
/// last part wins. An uploaded `timestamp` is ignored: the server always signs a fresh one.
/// When no snapshot is uploaded the server generates it, keeping the entries of the previous
/// snapshot. The root, targets roles (shallowest first), snapshot and timestamp are written
/// in one [`crate::storage::MetaStore::update_many`] call; since the new timestamp's version
/// is the version of the timestamp this validation started from plus one, exactly one of
/// several concurrent updates from the same state can commit, the others get
/// [`UpdateError::OldVersion`].
///
/// Decoding the uploads and checking their signatures (the [`RepoBuilder`] work) runs on
/// tokio's blocking pool: an upload can carry megabytes of metadata and many signatures,
/// and on the async worker that work would stall every other request the worker serves.
/// Storage reads, signing and the commit stay on the async side, interleaved with those
/// steps as before. Must be called within a tokio runtime.
pub async fn apply_update(
    ctx: &Ctx<'_>,
    gun: &str,
    parts: Vec<(String, Vec<u8>)>,
) -> Result<(), UpdateError> {
    let (gun_owned, now) = (gun.to_string(), ctx.now);
    let mut check = off_thread(move || Check::decode(&gun_owned, now, parts)).await?;

    let base = Base::load(ctx, gun).await.map_err(read_error)?;
    let stored_root = base
        .current(ctx, gun, roles::ROOT)
        .await
        .map_err(read_error)?;
    let cache = ctx.store.cache();
    let memo = cache.and_then(|c| c.trusted_root(gun));
    check = off_thread(move || check.root(stored_root, memo)).await?;
    if let (Some(cache), Some(trusted)) = (cache, check.newly_trusted.take()) {
        cache.put_trusted_root(gun, trusted);
    }

    // V3: targets and delegations, parents before children; stored ancestors are loaded
    // so a delegation can be checked against its parent.
    for role in check.targets_roles() {
        let name = RoleName::new(role.as_str()).map_err(|_| UpdateError::Invalid(None))?;
        let mut ancestors = Vec::new();
        for ancestor in name.ancestors() {
            if check.builder.is_loaded(ancestor.as_str()) {
                continue;
            }
            // A missing ancestor is not an error here; loading the child then fails.
            if let Some(stored) = base
                .current(ctx, gun, ancestor.as_str())
                .await
                .map_err(read_error)?
            {
                ancestors.push((ancestor.as_str().to_string(), stored));
            }
        }
        check = off_thread(move || check.targets(&role, ancestors)).await?;
    }

    // V4: the client's snapshot (checked for consistency with every file loaded above).
    let (mut writes, has_client_snapshot, root, snapshot_entries) = off_thread(move || {
        let root = check
            .builder
            .root()
            .map(|r| r.typed.clone())
            .ok_or(UpdateError::Invalid(None))?;
        let check = check.snapshot()?;
        // Hashing every loaded file is only needed when the server makes the snapshot.
        let has_client_snapshot = check.client_snapshot().is_some();
        let entries = if has_client_snapshot {
            Vec::new()
        } else {
            check.builder.snapshot_meta_updates()
        };
        // The decoded files (several times the size of the upload for a big targets file)
        // are freed here, on the blocking pool, before signing and the write: only the
        // uploaded bytes go on.
        let Check { writes, .. } = check;
        Ok::<_, UpdateError>((writes, has_client_snapshot, root, entries))
    })
    .await?;
    let client_snapshot = if has_client_snapshot {
        writes
            .iter()
            .find(|w| w.role == roles::SNAPSHOT)
            .map(|w| w.data.clone())
    } else {
        None
    };

    // Or the snapshot generated by the server.
    let snapshot_bytes = if let Some(snapshot) = client_snapshot {
        snapshot
    } else {
        let prev = match &base.snapshot {
            Some(stored) => {
                let file =
                    generate::parse_stored(stored).map_err(|_| UpdateError::Invalid(None))?;
                Some(file.snapshot().map_err(|_| UpdateError::Invalid(None))?)
            }
            None => None,
        };
        let (bytes, version) =
            generate::make_snapshot(ctx, gun, &root, prev.as_ref(), &snapshot_entries)
                .await
                .map_err(|f| match f {
                    SignFailure::NotHeld(_) => UpdateError::invalid(
                        ValidationDetail::bad_hierarchy(roles::SNAPSHOT, NO_SNAPSHOT_KEY_MSG),
                    ),
                    other => sign_failure(other),
                })?;
        writes.push(MetaUpdate {
            role: roles::SNAPSHOT.to_string(),
            version,
            data: bytes.clone(),
        });
        bytes
    };

    // V5: always a fresh timestamp, one version above the one this update started from.
    let prev_timestamp = match &base.timestamp {
        Some(stored) => {
            let file = generate::parse_stored(stored).map_err(|_| UpdateError::Invalid(None))?;
            Some(file.timestamp().map_err(|_| UpdateError::Invalid(None))?)
        }
        None => None,
    };
    let (bytes, version) =
        generate::make_timestamp(ctx, gun, &root, prev_timestamp.as_ref(), &snapshot_bytes)
            .await
            .map_err(|f| match f {
                SignFailure::NotHeld(_) => {
                    UpdateError::invalid(ValidationDetail::bad_root(NO_TIMESTAMP_KEY_MSG))
                }
                other => sign_failure(other),
            })?;
    writes.push(MetaUpdate {
        role: roles::TIMESTAMP.to_string(),
        version,
        data: bytes,
    });

    // V6: all or nothing.
    let audit = crate::audit::Audit::new(crate::audit::Action::Update, &ctx.actor);
    ctx.store.update_many_as(gun, writes, &audit).await?;
    Ok(())
}

/// Runs CPU-bound validation on tokio's blocking pool and waits for it without holding
/// the async worker, inside the caller's tracing span. A panic in `f` is re-raised here,
/// as if `f` had run inline.
async fn off_thread<T, F>(f: F) -> Result<T, UpdateError>
where
    F: FnOnce() -> Result<T, UpdateError> + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    let task = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        f()
    });
    match task.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only when the runtime shuts down under us.
        Err(_) => Err(UpdateError::Unavailable("server is shutting down".into())),
    }
}

/// The synchronous part of an update: the decoded uploads, the builder they are loaded
/// into and the rows to write. Each step consumes and returns it, so it can move to the
/// blocking pool and back between the storage reads the async side does.
struct Check {
    /// Decoded uploads not loaded into the builder yet; each moves into it when checked.
    uploaded: BTreeMap<String, SignedFile>,
    builder: RepoBuilder,
    writes: Vec<MetaUpdate>,
    /// The stored root, validated by this update, for [`MetaCache::put_trusted_root`].
    newly_trusted: Option<TrustedRoot>,
}

impl Check {
    /// Decodes every uploaded part (the last part of a role wins).
    fn decode(
        gun: &str,
        now: DateTime<Utc>,
        parts: Vec<(String, Vec<u8>)>,
    ) -> Result<Check, UpdateError> {
        let mut uploaded: BTreeMap<String, SignedFile> = BTreeMap::new();
        for (role, bytes) in parts {
            if !roles::is_valid_role(&role) {
                // The HTTP layer rejects these with INVALID_ROLE before we get here.
                return Err(UpdateError::Invalid(None));
            }
            let file = SignedFile::parse_vec(bytes).map_err(|_| UpdateError::Invalid(None))?;
            // The version columns are 32-bit (Go's schema): refuse what storage cannot hold
            // as the client's error rather than failing the commit with 500. The timestamp
            // part is ignored anyway.
            if role != roles::TIMESTAMP && i32::try_from(file.common.version).is_err() {
                return Err(UpdateError::invalid(out_of_range(
                    &role,
                    file.common.version,
                )));
            }
            uploaded.insert(role, file);
        }
        Ok(Check {
            uploaded,
            builder: RepoBuilder::new(gun, now),
            writes: Vec::new(),
            newly_trusted: None,
        })
    }

    /// The bytes of the uploaded snapshot, once [`Check::snapshot`] accepted it.
    fn client_snapshot(&self) -> Option<&[u8]> {
        self.writes
            .iter()
            .find(|w| w.role == roles::SNAPSHOT)
            .map(|w| w.data.as_slice())
    }

    /// V1 and V2: the stored root (if any) must still validate, expiry tolerated; an
    /// uploaded root must be signed under the stored root's and its own root role.
    /// `memo` is the root an earlier update validated for this GUN: when its bytes are the
    /// stored root's, its certificate and signature checks are not repeated.
    fn root(
        mut self,
        stored: Option<StoredFile>,
        memo: Option<Arc<TrustedRoot>>,
    ) -> Result<Check, UpdateError> {
        if let Some(stored) = stored {
            let memo = memo.filter(|t| t.raw() == stored.data.as_slice());
            let loaded = match &memo {
                Some(trusted) => self.builder.load_trusted_root(trusted, 1, true),
                None => self.builder.load(roles::ROOT, &stored.data, 1, true),
            }
            .or_else(|e| {
                // An expired root certificate: still the root this GUN's owner holds the keys
                // of, and the one a repair must be signed under (rescue, issue 14).
                tracing::info!(gun = %self.builder.gun(), error = %e, "stored root no longer validates at this time; loading it for the owner's repair");
                self.builder = RepoBuilder::new(self.builder.gun(), self.builder.now());
                self.builder.load_stored_root(&stored.data, 1)
            });
            loaded.map_err(|_| UpdateError::Invalid(None))?;
            if !memo.is_some_and(|t| t.holds_for(self.builder.gun(), self.builder.now())) {
                self.newly_trusted = self.builder.trusted_root();
            }
        }
        if let Some(root) = self.uploaded.remove(roles::ROOT) {
            let current = self.builder.loaded_version(roles::ROOT);
            let version = root.common.version;
            if version != current && version != current + 1 {
                return Err(UpdateError::invalid(ValidationDetail::bad_root(format!(
                    "Root modifications must increment the version. Current {current}, new {version}"
                ))));
            }
            self.builder = self.builder.bootstrap_new_builder();
            self.writes.push(write_of(roles::ROOT, &root));
            self.builder
                .load_parsed(roles::ROOT, root, current, false)
                .map_err(|e| UpdateError::invalid(ValidationDetail::bad_root(e.to_string())))?;
        } else if !self.builder.is_loaded(roles::ROOT) {
            return Err(UpdateError::invalid(ValidationDetail::validation(
                NO_ROOT_MSG,
            )));
        }
        Ok(self)
    }

    /// The uploaded targets roles, parents before children.
    fn targets_roles(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .uploaded
            .keys()
            .filter(|r| r.as_str() == roles::TARGETS || roles::is_delegation(r))
            .cloned()
            .collect();
        roles::sort_roles(&mut out);
        out
    }

    /// V3 for one role: its stored `ancestors` (those not loaded yet, shallowest first),
    /// then the uploaded file.
    fn targets(
        mut self,
        role: &str,
        ancestors: Vec<(String, StoredFile)>,
    ) -> Result<Check, UpdateError> {
        for (ancestor, stored) in ancestors {
            self.builder
                .load(&ancestor, &stored.data, 1, true)
                .map_err(|_| UpdateError::Invalid(None))?;
        }
        let file = self
            .uploaded
            .remove(role)
            .ok_or(UpdateError::Invalid(None))?;
        self.writes.push(write_of(role, &file));
        self.builder
            .load_parsed(role, file, 1, false)
            .map_err(|e| UpdateError::invalid(ValidationDetail::bad_targets(e.to_string())))?;
        Ok(self)
    }

    /// V4 for an uploaded snapshot: signatures, expiry, and consistency with every file
    /// loaded so far. Nothing to do without one.
    fn snapshot(mut self) -> Result<Check, UpdateError> {
        if let Some(snapshot) = self.uploaded.remove(roles::SNAPSHOT) {
            self.writes.push(write_of(roles::SNAPSHOT, &snapshot));
            self.builder
                .load_parsed(roles::SNAPSHOT, snapshot, 1, false)
                .map_err(|e| UpdateError::invalid(ValidationDetail::bad_snapshot(e.to_string())))?;
        }
        Ok(self)
    }
}

/// The validation error for a version the storage cannot hold, of the role's kind.
fn out_of_range(role: &str, version: i64) -> ValidationDetail {
    let msg = format!(
        "{role} version {version} is out of range (at most {})",
        i32::MAX
    );
    match role {
        roles::ROOT => ValidationDetail::bad_root(msg),
        roles::SNAPSHOT => ValidationDetail::bad_snapshot(msg),
        _ => ValidationDetail::bad_targets(msg),
    }
}

fn write_of(role: &str, file: &SignedFile) -> MetaUpdate {
    MetaUpdate {
        role: role.to_string(),
        version: file.common.version,
        data: file.raw.clone(),
    }
}

/// Read failures during validation: storage errors stay storage errors (500/503);
/// unusable stored data is an invalid update without detail, as in Go.
fn read_error(e: ReadError) -> UpdateError {
    match e {
        ReadError::Store(e) => UpdateError::from(e),
        ReadError::Corrupt(_) => UpdateError::Invalid(None),
    }
}

/// Signing failures other than "key not held".
fn sign_failure(f: SignFailure) -> UpdateError {
    match f {
        SignFailure::Unavailable(m) => UpdateError::Unavailable(m),
        // The uploaded root names a key the server may not use for this GUN and role.
        SignFailure::Refused(m) => UpdateError::invalid(ValidationDetail::bad_root(m)),
        SignFailure::NotHeld(m) | SignFailure::Other(m) => {
            UpdateError::invalid(ValidationDetail::validation(m))
        }
        SignFailure::Crypto(e) => UpdateError::invalid(ValidationDetail::validation(e.to_string())),
    }
}
