//! The online-key endpoints `GET/POST {snapshot|timestamp}.key` (spec §7).

use notary_tuf::metadata::{KeyGate, SignError};
use notary_tuf::{CryptoError, HeldKey, PublicKey};

use super::{Ctx, DomainError};
use crate::storage::{get_current, StoreError};

/// `GET {role}.key`: the key of `role` that the current root names and the signer holds
/// for this GUN and role (the first one, in key-ID order; see [`GunKeyGate`]); when there
/// is no root yet, or the signer holds none of the root's keys for the role, a key created
/// by the signer for (`gun`, `role`, `ctx.key_type`).
///
/// A signer that reports a key as not found counts as not holding it; any other signer
/// error is returned. An unparsable current root or one without the role is
/// [`DomainError::Other`].
pub async fn get_or_create_key(
    ctx: &Ctx<'_>,
    gun: &str,
    role: &str,
) -> Result<PublicKey, DomainError> {
    if let Some(stored) = get_current(ctx.store, gun, notary_tuf::roles::ROOT).await? {
        let root = notary_tuf::SignedFile::parse(&stored.data)
            .map_err(|e| DomainError::Other(format!("current root of {gun}: {e}")))?
            .root()
            .map_err(|e| DomainError::Other(format!("current root of {gun}: {e}")))?;
        let base = root
            .build_base_role(role)
            .map_err(|e| DomainError::Other(format!("current root of {gun}: {e}")))?;
        let gate = GunKeyGate { ctx, gun };
        for key_id in base.keys.keys() {
            match ctx.crypto.get_key_info(key_id).await {
                // Another GUN's or role's key named by this root is never handed out.
                Ok(Some(held)) => match gate.check(key_id, &held, role).await {
                    Ok(()) => return Ok(held.public),
                    Err(SignError::KeyRefused { .. }) => {}
                    Err(SignError::Crypto(e)) => return Err(e.into()),
                    Err(e) => return Err(DomainError::Other(e.to_string())),
                },
                Ok(None) | Err(CryptoError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    make_key(ctx, gun, role, crate::audit::Action::KeyCreate).await
}

/// `POST {role}.key`: always asks the signer for a new key for (`gun`, `role`,
/// `ctx.key_type`). Metadata is not touched; the key takes effect once a client publishes a
/// root listing it.
/// The key is recorded as made for (`gun`, `role`) before it is returned, so it can sign only
/// for them.
pub async fn rotate_key(ctx: &Ctx<'_>, gun: &str, role: &str) -> Result<PublicKey, DomainError> {
    make_key(ctx, gun, role, crate::audit::Action::KeyRotate).await
}

/// Asks the signer for a key and records it (audited as `action` when the record is new).
async fn make_key(
    ctx: &Ctx<'_>,
    gun: &str,
    role: &str,
    action: crate::audit::Action,
) -> Result<PublicKey, DomainError> {
    let key = ctx.crypto.create_key(gun, role, &ctx.key_type).await?;
    let audit = crate::audit::Audit::new(action, &ctx.actor);
    ctx.store
        .record_key_as(gun, role, &key.key_id(), &audit)
        .await?;
    Ok(key)
}

/// Admits a signer key for a GUN's role only if it was made for that GUN and role.
///
/// The signer holds every repository's online keys and signs with any of them, and the
/// key IDs to sign with come from a root the client uploaded; without this a root for
/// `org/evil` could name `org/app`'s timestamp key and have the server sign a timestamp
/// with it (Go does). The key's role must be the role being signed (checked by
/// `sign_with_service`), and its GUN, in this order of authority:
/// 1. the GUN the signer reports (our signer does; Go's sends none) must be `gun`;
/// 2. the (gun, role) recorded when this server asked the signer for the key
///    ([`crate::storage::MetaStore::record_key`]) must be (`gun`, `role`);
/// 3. a key with neither, made before the record existed (e.g. by a Go server whose
///    database we adopted), is admitted only if the GUN's currently stored root, accepted
///    earlier, already lists it for the role; it is then recorded for the GUN.
pub(crate) struct GunKeyGate<'a> {
    pub ctx: &'a Ctx<'a>,
    pub gun: &'a str,
}

impl GunKeyGate<'_> {
    async fn check(&self, key_id: &str, held: &HeldKey, role: &str) -> Result<(), SignError> {
        let gun = self.gun;
        let refuse = |reason: String| SignError::KeyRefused {
            key_id: key_id.to_string(),
            reason,
        };
        if held.role != role {
            return Err(refuse(format!(
                "it is a {:?} key, not a {role:?} key",
                held.role
            )));
        }
        // The owner's name is left out of messages: it is another repository's business.
        let not_ours = || refuse(format!("it was not made for {role} of {gun}"));
        if held.gun.as_deref().is_some_and(|g| g != gun) {
            return Err(not_ours());
        }
        match self
            .ctx
            .store
            .key_owner(key_id)
            .await
            .map_err(store_error)?
        {
            Some((g, r)) if g == gun && r == role => return Ok(()),
            Some(_) => return Err(not_ours()),
            None => {}
        }
        if held.gun.is_none() && !self.listed_in_stored_root(key_id, role).await? {
            return Err(refuse(format!(
                "this server did not make it for {role} of {gun}, and {gun}'s current root \
                 does not list it for {role}"
            )));
        }
        // Remember the verdict so later checks need no root and no other GUN can claim it.
        self.ctx
            .store
            .record_key(gun, role, key_id)
            .await
            .map_err(store_error)
    }

    /// Whether the stored current root of the GUN lists `key_id` (canonical ID) for `role`.
    async fn listed_in_stored_root(&self, key_id: &str, role: &str) -> Result<bool, SignError> {
        let Some(stored) = get_current(self.ctx.store, self.gun, notary_tuf::roles::ROOT)
            .await
            .map_err(store_error)?
        else {
            return Ok(false);
        };
        let Ok(root) = notary_tuf::SignedFile::parse(&stored.data)
            .map_err(|e| e.to_string())
            .and_then(|f| f.root().map_err(|e| e.to_string()))
        else {
            return Ok(false);
        };
        let Ok(base) = root.build_base_role(role) else {
            return Ok(false);
        };
        Ok(base
            .keys
            .values()
            .any(|k| k.canonical_key_id().is_ok_and(|id| id == key_id)))
    }
}

#[async_trait::async_trait]
impl KeyGate for GunKeyGate<'_> {
    async fn admit(&self, key_id: &str, held: &HeldKey, role: &str) -> Result<(), SignError> {
        self.check(key_id, held, role).await
    }
}

/// Storage failures while deciding: unavailable stays unavailable (503), the rest is an
/// error of the signing path.
fn store_error(e: StoreError) -> SignError {
    match e {
        StoreError::Unavailable(m) => SignError::Crypto(CryptoError::Unavailable(m)),
        other => SignError::Crypto(CryptoError::Other(other.to_string())),
    }
}
