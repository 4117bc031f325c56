//! Error types. [`TufError`] carries the same messages Go Notary produces for each failure
//! (clients display them), [`ValidationError`] is the server-facing classification that is
//! rendered into `INVALID_UPDATE` details.

use serde_json::{json, Value};

use crate::canonical::CanonicalError;

/// A TUF-level failure, with Go Notary's message text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TufError {
    /// The file has no signatures at all.
    #[error("tuf: data has no signatures")]
    NoSignatures,
    /// Fewer distinct valid signatures than the threshold (or a threshold < 1).
    #[error("{}", if .0.is_empty() { "valid signatures did not meet threshold" } else { .0.as_str() })]
    RoleThreshold(String),
    /// A listed key's computed ID differs from the ID it is listed (and signed) under.
    #[error("key ID is not valid for key content")]
    InvalidKeyId,
    /// Metadata has expired (`expired` is rendered like Go's `Mon Jan 2 15:04:05 MST 2006`).
    #[error("{role} expired at {expired}")]
    Expired {
        /// Role name.
        role: String,
        /// Formatted expiry.
        expired: String,
    },
    /// Version below the required minimum.
    #[error("version {actual} is lower than current version {current}")]
    LowVersion {
        /// Version in the file.
        actual: i64,
        /// Minimum version.
        current: i64,
    },
    /// Structural problem in a role's metadata.
    #[error("{role} type metadata invalid: {msg}")]
    InvalidMetadata {
        /// Role whose file is invalid.
        role: String,
        /// What is wrong.
        msg: String,
    },
    /// No supported checksum for a role.
    #[error("no checksums for supported algorithms were provided for {role}")]
    MissingMeta {
        /// Role name.
        role: String,
    },
    /// A checksum does not match.
    #[error("{alg} checksum for {name} did not match: expected {expected}")]
    MismatchedChecksum {
        /// `sha256` or `sha512`.
        alg: String,
        /// Role name.
        name: String,
        /// Expected digest, hex.
        expected: String,
    },
    /// Role name or role definition problem.
    #[error("tuf: invalid role {role}.{}", if .reason.is_empty() { String::new() } else { format!(" {}", .reason) })]
    InvalidRole {
        /// Role name.
        role: String,
        /// Why ("" for none).
        reason: String,
    },
    /// A role the operation needs has not been loaded.
    #[error("{0} role has not been loaded")]
    NotLoaded(String),
    /// A role must be loaded before another (builder ordering).
    #[error("{0}")]
    BuilderInput(String),
    /// Root certificate validation failed (trust pinning / TOFU stage).
    #[error("could not validate the path to a trusted root: {0}")]
    RootValidationFail(String),
    /// The new root is not signed by the previous root's keys.
    #[error("could not rotate trust to a new trusted root: {0}")]
    RootRotationFail(String),
    /// A certificate failed the Notary certificate rules.
    #[error("{0}")]
    Certificate(String),
    /// The `signed` object cannot be canonicalized.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// JSON shape error while reading a typed view.
    #[error("{0}")]
    Json(String),
}

/// The five error kinds notary-server reports in `INVALID_UPDATE` details
/// (`{"Name":"<kind>","Error":{...}}`, spec server.md §4.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// `ErrValidation`: generic validation failure.
    #[error("{0}")]
    Validation(String),
    /// `ErrBadRoot`: the root (or the timestamp keys it names) is unusable.
    #[error("{0}")]
    BadRoot(String),
    /// `ErrBadTargets`: a targets or delegation file failed validation.
    #[error("{0}")]
    BadTargets(String),
    /// `ErrBadSnapshot`: the uploaded snapshot failed validation.
    #[error("{0}")]
    BadSnapshot(String),
    /// `ErrBadHierarchy`: a role is missing (e.g. the server cannot make a snapshot).
    #[error("{msg}")]
    BadHierarchy {
        /// The missing role.
        missing: String,
        /// Message.
        msg: String,
    },
}

impl ValidationError {
    /// Go's kind name (`ErrValidation`, `ErrBadRoot`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            ValidationError::Validation(_) => "ErrValidation",
            ValidationError::BadRoot(_) => "ErrBadRoot",
            ValidationError::BadTargets(_) => "ErrBadTargets",
            ValidationError::BadSnapshot(_) => "ErrBadSnapshot",
            ValidationError::BadHierarchy { .. } => "ErrBadHierarchy",
        }
    }

    /// The message text.
    pub fn msg(&self) -> &str {
        match self {
            ValidationError::Validation(m)
            | ValidationError::BadRoot(m)
            | ValidationError::BadTargets(m)
            | ValidationError::BadSnapshot(m) => m,
            ValidationError::BadHierarchy { msg, .. } => msg,
        }
    }

    /// The serializable form Go puts in the error `detail`:
    /// `{"Name":"ErrBadRoot","Error":{"Msg":"..."}}`, or for `ErrBadHierarchy`
    /// `{"Name":"ErrBadHierarchy","Error":{"Missing":"snapshot","Msg":"..."}}`.
    pub fn to_detail_json(&self) -> Value {
        let inner = match self {
            ValidationError::BadHierarchy { missing, msg } => {
                json!({"Missing": missing, "Msg": msg})
            }
            other => json!({"Msg": other.msg()}),
        };
        json!({"Name": self.name(), "Error": inner})
    }

    /// Parses the detail form back (what the Go client does with a 400 body).
    pub fn from_detail_json(v: &Value) -> Option<ValidationError> {
        let name = v.get("Name")?.as_str()?;
        let err = v.get("Error")?;
        let msg = err
            .get("Msg")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        Some(match name {
            "ErrValidation" => ValidationError::Validation(msg),
            "ErrBadRoot" => ValidationError::BadRoot(msg),
            "ErrBadTargets" => ValidationError::BadTargets(msg),
            "ErrBadSnapshot" => ValidationError::BadSnapshot(msg),
            "ErrBadHierarchy" => ValidationError::BadHierarchy {
                missing: err
                    .get("Missing")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                msg,
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_json_layout() {
        let e = ValidationError::BadRoot("bad".into());
        assert_eq!(
            serde_json::to_string(&e.to_detail_json()).unwrap(),
            r#"{"Name":"ErrBadRoot","Error":{"Msg":"bad"}}"#
        );
        let e = ValidationError::BadHierarchy {
            missing: "snapshot".into(),
            msg: "m".into(),
        };
        assert_eq!(
            serde_json::to_string(&e.to_detail_json()).unwrap(),
            r#"{"Name":"ErrBadHierarchy","Error":{"Missing":"snapshot","Msg":"m"}}"#
        );
        assert_eq!(
            ValidationError::from_detail_json(&e.to_detail_json()),
            Some(e)
        );
        for e in [
            ValidationError::Validation("a".into()),
            ValidationError::BadTargets("b".into()),
            ValidationError::BadSnapshot("c".into()),
        ] {
            assert_eq!(
                ValidationError::from_detail_json(&e.to_detail_json()),
                Some(e)
            );
        }
        assert_eq!(
            ValidationError::from_detail_json(&json!({"Name":"X","Error":{}})),
            None
        );
    }

    #[test]
    fn go_messages() {
        assert_eq!(
            TufError::RoleThreshold(String::new()).to_string(),
            "valid signatures did not meet threshold"
        );
        assert_eq!(
            TufError::InvalidRole {
                role: "targets/x".into(),
                reason: String::new()
            }
            .to_string(),
            "tuf: invalid role targets/x."
        );
        assert_eq!(
            TufError::InvalidRole {
                role: "targets/x".into(),
                reason: "delegation does not exist".into()
            }
            .to_string(),
            "tuf: invalid role targets/x. delegation does not exist"
        );
        assert_eq!(
            TufError::InvalidMetadata {
                role: "root".into(),
                msg: "version cannot be less than 1".into()
            }
            .to_string(),
            "root type metadata invalid: version cannot be less than 1"
        );
    }
}
