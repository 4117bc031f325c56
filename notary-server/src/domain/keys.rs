//! The online-key endpoints `GET/POST {snapshot|timestamp}.key` (spec §7).

use notary_tuf::{CryptoError, PublicKey};

use super::{Ctx, DomainError};
use crate::storage::get_current;

/// `GET {role}.key`: the key of `role` that the current root names and the signer holds
/// (the first one the signer knows, in key-ID order); when there is no root yet, or the
/// signer holds none of the root's keys for the role, a key created by the signer for
/// (`gun`, `role`, `ctx.key_type`).
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
        for key_id in base.keys.keys() {
            match ctx.crypto.get_key(key_id).await {
                Ok(Some((key, _role))) => return Ok(key),
                Ok(None) | Err(CryptoError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    rotate_key(ctx, gun, role).await
}

/// `POST {role}.key`: always asks the signer for a new key for (`gun`, `role`,
/// `ctx.key_type`). Metadata is not touched; the key takes effect once a client publishes a
/// root listing it.
pub async fn rotate_key(ctx: &Ctx<'_>, gun: &str, role: &str) -> Result<PublicKey, DomainError> {
    Ok(ctx.crypto.create_key(gun, role, &ctx.key_type).await?)
}
