//! Domain logic of notary-server, free of HTTP: validation of client updates, server-side
//! snapshot and timestamp generation, lazy regeneration on read, and the online-key
//! endpoints (spec server.md §5.2, §6, §7).
//!
//! Every function takes a [`Ctx`]: the metadata store, the signing service, the algorithm
//! for new keys and the current time. The clock is injected so expiry behaviour is testable
//! without waiting or hand-made expired fixtures.
//!
//! # Errors
//! - [`UpdateError`] is the outcome of [`apply_update`], already classified the way the HTTP
//!   layer answers: `Invalid` (400 `INVALID_UPDATE`, with a Go-shaped
//!   [`ValidationDetail`] when the failure is one of Go's five validation kinds), `OldVersion`
//!   (400 `VERSION`), `Storage` (500 `UPDATING`, or 503 when the store is unavailable) and
//!   `Unavailable` (503: the signer could not be reached).
//! - [`DomainError`] is the error of the read and key paths (500 `UNKNOWN`, or 503 for an
//!   unavailable store or signer, at the HTTP layer's discretion).
//!
//! # Deliberate differences from Go (spec §15)
//! - A signer that does not hold a key ([`CryptoError::NotFound`]) counts as "key not held"
//!   for local and remote signers alike, giving `ErrBadHierarchy` (snapshot) or `ErrBadRoot`
//!   (timestamp) where Go's remote path said `ErrValidation`.
//! - A signer that cannot be reached ([`CryptoError::Unavailable`]) during an update gives
//!   [`UpdateError::Unavailable`] (HTTP 503) instead of Go's 400 `ErrValidation` with the
//!   gRPC message: the update itself was not invalid, and 503 tells clients to retry.
//! - A GET-triggered regeneration that loses the version race to a concurrent writer re-reads
//!   and serves the winner's files instead of failing with 500.
//! - The server signs a GUN's snapshot/timestamp only with signer keys made for that GUN and
//!   role (`keys::GunKeyGate`); Go signs with any key the uploaded root names that the signer
//!   holds, so one repository's root could borrow another's timestamp key. A root naming
//!   such a key is refused with `ErrBadRoot` (400 `INVALID_UPDATE`), and `GET {role}.key`
//!   never hands one out.
//!
//! # Testing
//! `tests/domain_*.rs` run every rule on [`crate::storage::MemoryStore`] and
//! [`notary_tuf::MemoryCryptoService`] with repositories from notary-tuf's `test-support`
//! builder; nothing needs MySQL or a network.

mod current;
mod generate;
mod keys;
mod update;

use chrono::{DateTime, Utc};
use notary_tuf::{CryptoError, CryptoService, KeyType};
use serde::ser::SerializeMap;

use crate::storage::{MetaStore, StoreError};

pub use current::{current_timestamp_or_snapshot, resign_ahead, Resigned};
pub use keys::{get_or_create_key, rotate_key};
pub use update::{apply_update, NO_ROOT_MSG, NO_SNAPSHOT_KEY_MSG, NO_TIMESTAMP_KEY_MSG};

/// Everything a domain operation needs; built per request by the HTTP layer.
#[derive(Clone)]
pub struct Ctx<'a> {
    /// Metadata storage.
    pub store: &'a dyn MetaStore,
    /// Signing service holding the online (snapshot/timestamp) keys.
    pub crypto: &'a dyn CryptoService,
    /// Algorithm of keys created for `GET/POST {role}.key` (`trust_service.key_algorithm`).
    pub key_type: KeyType,
    /// "Now" for expiry checks and the expiry of generated files.
    pub now: DateTime<Utc>,
    /// Who is asking: the audit trail names them with every change ([`crate::audit`]).
    pub actor: crate::audit::Actor,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("key_type", &self.key_type)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// The serializable validation error Go puts in an `INVALID_UPDATE` detail.
///
/// Serializes as `{"Name":"ErrBadRoot","Error":{"Msg":".."}}`, or for `ErrBadHierarchy`
/// `{"Name":"ErrBadHierarchy","Error":{"Missing":"snapshot","Msg":".."}}`. Go clients read at
/// most 1 KiB of a 400 body, so [`ValidationDetail::new`] shortens long messages until the
/// serialized detail fits in [`MAX_DETAIL_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationDetail {
    /// `ErrValidation`, `ErrBadRoot`, `ErrBadTargets`, `ErrBadSnapshot` or `ErrBadHierarchy`.
    pub name: &'static str,
    /// Message shown by clients.
    pub msg: String,
    /// The missing role, only for `ErrBadHierarchy`.
    pub missing: Option<String>,
}

/// Upper bound for a serialized [`ValidationDetail`]: leaves room for the error envelope
/// (code and message, about 100 bytes) inside the 1 KiB Go clients read.
pub const MAX_DETAIL_BYTES: usize = 850;

impl ValidationDetail {
    /// `ErrValidation`.
    pub const VALIDATION: &'static str = "ErrValidation";
    /// `ErrBadRoot`.
    pub const BAD_ROOT: &'static str = "ErrBadRoot";
    /// `ErrBadTargets`.
    pub const BAD_TARGETS: &'static str = "ErrBadTargets";
    /// `ErrBadSnapshot`.
    pub const BAD_SNAPSHOT: &'static str = "ErrBadSnapshot";
    /// `ErrBadHierarchy`.
    pub const BAD_HIERARCHY: &'static str = "ErrBadHierarchy";

    /// A detail of kind `name` whose message is shortened if needed (see
    /// [`MAX_DETAIL_BYTES`]).
    pub fn new(name: &'static str, msg: impl Into<String>, missing: Option<String>) -> Self {
        let mut detail = ValidationDetail {
            name,
            msg: msg.into(),
            missing,
        };
        detail.shorten();
        detail
    }

    /// `ErrValidation` with `msg`.
    pub fn validation(msg: impl Into<String>) -> Self {
        Self::new(Self::VALIDATION, msg, None)
    }

    /// `ErrBadRoot` with `msg`.
    pub fn bad_root(msg: impl Into<String>) -> Self {
        Self::new(Self::BAD_ROOT, msg, None)
    }

    /// `ErrBadTargets` with `msg`.
    pub fn bad_targets(msg: impl Into<String>) -> Self {
        Self::new(Self::BAD_TARGETS, msg, None)
    }

    /// `ErrBadSnapshot` with `msg`.
    pub fn bad_snapshot(msg: impl Into<String>) -> Self {
        Self::new(Self::BAD_SNAPSHOT, msg, None)
    }

    /// `ErrBadHierarchy` for the `missing` role.
    pub fn bad_hierarchy(missing: impl Into<String>, msg: impl Into<String>) -> Self {
        Self::new(Self::BAD_HIERARCHY, msg, Some(missing.into()))
    }

    fn serialized_len(&self) -> usize {
        serde_json::to_vec(self)
            .map(|v| v.len())
            .unwrap_or(usize::MAX)
    }

    /// Cuts the message (at a character boundary, marking the cut with `...`) so the
    /// serialized form fits; escaping can make the JSON much longer than the text, so the
    /// budget is counted in escaped bytes.
    fn shorten(&mut self) {
        if self.serialized_len() <= MAX_DETAIL_BYTES {
            return;
        }
        let full = std::mem::take(&mut self.msg);
        let budget = MAX_DETAIL_BYTES.saturating_sub(self.serialized_len() + "...".len());
        let mut used = 0;
        let mut keep = 0;
        for (i, c) in full.char_indices() {
            // Escaped size of this character inside a JSON string (quotes excluded).
            let escaped = serde_json::to_string(&c).map_or(6, |s| s.len() - 2);
            if used + escaped > budget {
                break;
            }
            used += escaped;
            keep = i + c.len_utf8();
        }
        self.msg = format!("{}...", &full[..keep]);
    }
}

impl serde::Serialize for ValidationDetail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Inner<'a>(&'a ValidationDetail);
        impl serde::Serialize for Inner<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(None)?;
                // Go's struct order: Missing before Msg.
                if let Some(missing) = &self.0.missing {
                    m.serialize_entry("Missing", missing)?;
                }
                m.serialize_entry("Msg", &self.0.msg)?;
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("Name", self.name)?;
        m.serialize_entry("Error", &Inner(self))?;
        m.end()
    }
}

impl std::fmt::Display for ValidationDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.msg)
    }
}

impl From<notary_tuf::error::ValidationError> for ValidationDetail {
    fn from(e: notary_tuf::error::ValidationError) -> Self {
        use notary_tuf::error::ValidationError as V;
        match e {
            V::Validation(m) => Self::validation(m),
            V::BadRoot(m) => Self::bad_root(m),
            V::BadTargets(m) => Self::bad_targets(m),
            V::BadSnapshot(m) => Self::bad_snapshot(m),
            V::BadHierarchy { missing, msg } => Self::bad_hierarchy(missing, msg),
        }
    }
}

/// Why [`apply_update`] refused or failed an update.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// 400 `INVALID_UPDATE`. `None` when the failure is not one of Go's validation kinds
    /// (e.g. the stored root no longer validates); the response then has no detail.
    #[error("invalid update{}", .0.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Invalid(Option<ValidationDetail>),
    /// 400 `VERSION`: a version is not newer than the stored one, or a concurrent update
    /// from the same base won.
    #[error("a newer version of metadata is already available")]
    OldVersion,
    /// 500 `UPDATING` (503 if the store is unavailable): reading or writing storage failed.
    #[error(transparent)]
    Storage(StoreError),
    /// 503: the signing service could not be reached.
    #[error("signing service unavailable: {0}")]
    Unavailable(String),
}

impl UpdateError {
    /// Validation failure with a detail.
    pub(crate) fn invalid(detail: ValidationDetail) -> Self {
        UpdateError::Invalid(Some(detail))
    }
}

impl From<StoreError> for UpdateError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::OldVersion => UpdateError::OldVersion,
            other => UpdateError::Storage(other),
        }
    }
}

/// Failure of the read and key paths.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signing service failed (including "key not held" while regenerating).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Stored metadata is unusable (unparsable, invalid, or cannot be re-signed).
    #[error("{0}")]
    Other(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_serializes_in_go_shape() {
        let d = ValidationDetail::bad_root("bad <root>");
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"Name":"ErrBadRoot","Error":{"Msg":"bad <root>"}}"#
        );
        let d = ValidationDetail::bad_hierarchy("snapshot", "m");
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"Name":"ErrBadHierarchy","Error":{"Missing":"snapshot","Msg":"m"}}"#
        );
    }

    #[test]
    fn long_details_are_shortened_below_limit() {
        for filler in ["x", "\"", "\u{1}", "é", "😀"] {
            let d = ValidationDetail::bad_targets(filler.repeat(5000));
            let len = serde_json::to_vec(&d).unwrap().len();
            assert!(len <= MAX_DETAIL_BYTES, "{filler}: {len}");
            assert!(d.msg.ends_with("..."), "{filler}");
            assert!(
                d.msg.len() > 100,
                "{filler}: cut too much ({})",
                d.msg.len()
            );
        }
        let short = ValidationDetail::bad_targets("short");
        assert_eq!(short.msg, "short");
    }

    #[test]
    fn store_errors_classify() {
        assert_eq!(
            UpdateError::from(StoreError::OldVersion),
            UpdateError::OldVersion
        );
        assert_eq!(
            UpdateError::from(StoreError::Other("x".into())),
            UpdateError::Storage(StoreError::Other("x".into()))
        );
    }
}
