//! The atomic update (spec server.md §6.3 V1–V6 and §6.4).

use std::collections::BTreeMap;

use notary_tuf::roles::{self, RoleName};
use notary_tuf::verify::RepoBuilder;
use notary_tuf::SignedFile;

use super::generate::{self, Base, ReadError, SignFailure};
use super::{Ctx, UpdateError, ValidationDetail};
use crate::storage::MetaUpdate;

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
pub async fn apply_update(
    ctx: &Ctx<'_>,
    gun: &str,
    parts: Vec<(String, Vec<u8>)>,
) -> Result<(), UpdateError> {
    let mut uploaded: BTreeMap<String, SignedFile> = BTreeMap::new();
    for (role, bytes) in parts {
        if !roles::is_valid_role(&role) {
            // The HTTP layer rejects these with INVALID_ROLE before we get here.
            return Err(UpdateError::Invalid(None));
        }
        let file = SignedFile::parse(&bytes).map_err(|_| UpdateError::Invalid(None))?;
        // The version columns are 32-bit (Go's schema): refuse what storage cannot hold as
        // the client's error rather than failing the commit with 500. The timestamp part is
        // ignored anyway.
        if role != roles::TIMESTAMP && i32::try_from(file.common.version).is_err() {
            return Err(UpdateError::invalid(out_of_range(
                &role,
                file.common.version,
            )));
        }
        uploaded.insert(role, file);
    }

    let base = Base::load(ctx, gun).await.map_err(read_error)?;
    let mut builder = RepoBuilder::new(gun, ctx.now);
    let mut writes: Vec<MetaUpdate> = Vec::new();

    // V1: the stored root must still validate; expiry is tolerated.
    if let Some(stored) = base
        .current(ctx, gun, roles::ROOT)
        .await
        .map_err(read_error)?
    {
        builder
            .load(roles::ROOT, &stored.data, 1, true)
            .map_err(|_| UpdateError::Invalid(None))?;
    }

    // V2: the new root, signed under the stored root's and its own root role.
    if let Some(root) = uploaded.get(roles::ROOT) {
        let current = builder.loaded_version(roles::ROOT);
        let version = root.common.version;
        if version != current && version != current + 1 {
            return Err(UpdateError::invalid(ValidationDetail::bad_root(format!(
                "Root modifications must increment the version. Current {current}, new {version}"
            ))));
        }
        builder = builder.bootstrap_new_builder();
        builder
            .load(roles::ROOT, &root.raw, current, false)
            .map_err(|e| UpdateError::invalid(ValidationDetail::bad_root(e.to_string())))?;
        writes.push(write_of(roles::ROOT, root));
    } else if !builder.is_loaded(roles::ROOT) {
        return Err(UpdateError::invalid(ValidationDetail::validation(
            NO_ROOT_MSG,
        )));
    }

    // V3: targets and delegations, parents before children; stored ancestors are loaded
    // so a delegation can be checked against its parent.
    let mut targets_roles: Vec<&String> = uploaded
        .keys()
        .filter(|r| r.as_str() == roles::TARGETS || roles::is_delegation(r))
        .collect();
    roles::sort_roles(&mut targets_roles);
    for role in targets_roles {
        let name = RoleName::new(role.as_str()).map_err(|_| UpdateError::Invalid(None))?;
        for ancestor in name.ancestors() {
            if builder.is_loaded(ancestor.as_str()) {
                continue;
            }
            // A missing ancestor is not an error here; loading the child then fails.
            if let Some(stored) = base
                .current(ctx, gun, ancestor.as_str())
                .await
                .map_err(read_error)?
            {
                builder
                    .load(ancestor.as_str(), &stored.data, 1, true)
                    .map_err(|_| UpdateError::Invalid(None))?;
            }
        }
        let file = &uploaded[role];
        builder
            .load(role, &file.raw, 1, false)
            .map_err(|e| UpdateError::invalid(ValidationDetail::bad_targets(e.to_string())))?;
        writes.push(write_of(role, file));
    }

    let root = builder
        .root()
        .map(|r| r.typed.clone())
        .ok_or(UpdateError::Invalid(None))?;

    // V4: the client's snapshot (checked for consistency with every file loaded above), or
    // one generated by the server.
    let snapshot_bytes = if let Some(snapshot) = uploaded.get(roles::SNAPSHOT) {
        builder
            .load(roles::SNAPSHOT, &snapshot.raw, 1, false)
            .map_err(|e| UpdateError::invalid(ValidationDetail::bad_snapshot(e.to_string())))?;
        writes.push(write_of(roles::SNAPSHOT, snapshot));
        snapshot.raw.clone()
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
            generate::make_snapshot(ctx, &root, prev.as_ref(), &builder.snapshot_meta_updates())
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
        generate::make_timestamp(ctx, &root, prev_timestamp.as_ref(), &snapshot_bytes)
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
    ctx.store.update_many(gun, writes).await?;
    Ok(())
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
        SignFailure::NotHeld(m) | SignFailure::Other(m) => {
            UpdateError::invalid(ValidationDetail::validation(m))
        }
        SignFailure::Crypto(e) => UpdateError::invalid(ValidationDetail::validation(e.to_string())),
    }
}
