//! The one place where errors become HTTP responses.
//!
//! Every error the HTTP layer can return is an [`ApiError`]. Each variant is one
//! Notary error code (spec §4.2) with its fixed message and status; the body is
//! the docker-distribution envelope
//! `{"errors":[{"code":..,"message":..,"detail":..}]}` followed by a newline, served
//! as `application/json; charset=utf-8`.
//!
//! Internal failures (storage, signer, bugs) are logged here and reach the client
//! only as `UNKNOWN`/`UPDATING` with an empty `{}` detail, never with their text.
//!
//! Two codes are our additions, because Go has no equivalent:
//! - `UNAVAILABLE` (503, `The service is temporarily unavailable.`): the database
//!   or the signer cannot be reached. Clients treat any status other than
//!   400/401/404 as "server unavailable", so this keeps their behaviour while
//!   telling operators what happened.
//! - `REQUEST_TOO_LARGE` (413): the body exceeds `server.max_request_bytes`.
//! - `TOO_MANY_PARTS` (413): an update has more parts than `server.max_upload_parts`;
//!   detail `{"limit":N}`.
//! - `TOO_MANY_DELEGATIONS` (413): an update has more distinct delegation roles than
//!   `server.max_upload_delegations`; detail `{"limit":N}`.
//! - `TOO_MANY_JSON_VALUES` (413): a part holds more JSON values than its size allows
//!   (`notary_tuf::bounded::max_json_values`); detail `{"role":..,"limit":N}`.
//! - `REQUEST_TIMEOUT` (408): the request (reading its body included) took longer than
//!   `server.request_timeout_secs`; the connection is closed after the answer. Database
//!   work already handed to the blocking pool still finishes, so an update answered with
//!   408 may have been stored; clients see it on their next read.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{json, Value};

use notary_tuf::crypto::CryptoError;

use crate::domain::{DomainError, UpdateError};
use crate::storage::StoreError;

/// An error answered to the client with the Notary error envelope.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// `METADATA_NOT_FOUND` (404). `detail` is `{}` for storage misses and absent
    /// for route-level rejections (catch-all, GUN prefix mismatch).
    #[error("metadata not found")]
    MetadataNotFound {
        /// Optional detail, see above.
        detail: Option<Value>,
    },
    /// `INVALID_UPDATE` (400): the upload failed validation. The detail is a
    /// serializable validation error `{"Name":..,"Error":{..}}`, or absent.
    #[error("invalid update")]
    InvalidUpdate(Option<Value>),
    /// `VERSION` (400): storage refused a version that is not newer; detail `{}`.
    #[error("old version")]
    OldVersion,
    /// `MALFORMED_UPLOAD` (400): the POST body is not a readable multipart body.
    #[error("malformed upload")]
    MalformedUpload,
    /// `NO_FILENAME` (400): a part has no usable `filename`.
    #[error("no filename")]
    NoFilename,
    /// `INVALID_ROLE` (400): a part's filename is not a valid role; detail = name.
    #[error("invalid role {0:?}")]
    InvalidRole(String),
    /// `MALFORMED_JSON` (400): a part is not decodable as signed metadata.
    #[error("malformed JSON")]
    MalformedJson,
    /// `INVALID_GUN` (400): POST update on a GUN outside `gun_prefixes`;
    /// detail `"Require GUNs with prefix: [p1 p2]"`.
    #[error("invalid GUN: {0}")]
    InvalidGun(String),
    /// `INVALID_PARAMETERS` (400): bad changefeed parameters.
    #[error("invalid parameters")]
    InvalidParameters(Value),
    /// `UPDATING` (500): storage failed while committing an update.
    #[error("update failed")]
    Updating,
    /// `UNKNOWN` (500): any other internal failure; detail `{}` or a small object
    /// such as `{"Role":"targets/x"}`.
    #[error("unknown error")]
    Unknown(Option<Value>),
    /// `UNAUTHORIZED` (401): token auth failed. `challenge` is the complete
    /// `Www-Authenticate` value; `detail` lists the required accesses.
    #[error("unauthorized")]
    Unauthorized {
        /// `Www-Authenticate` header value.
        challenge: String,
        /// The required accesses, Go-style.
        detail: Value,
    },
    /// `NO_STORAGE` (500): misconfiguration; unreachable with a valid config.
    #[error("no storage")]
    NoStorage,
    /// `NO_CRYPTOSERVICE` (500): misconfiguration; unreachable with a valid config.
    #[error("no crypto service")]
    NoCryptoService,
    /// `NO_KEYALGORITHM` (500): misconfiguration; unreachable with a valid config.
    #[error("no key algorithm")]
    NoKeyAlgorithm,
    /// `GENERIC_NOT_FOUND` (404): kept for completeness; the router never emits it.
    #[error("generic not found")]
    GenericNotFound,
    /// `UNAVAILABLE` (503, our addition): database or signer unreachable.
    #[error("service unavailable")]
    Unavailable,
    /// `LOG_NOT_FOUND` (404, our addition): no such transparency-log entry, tile or
    /// checkpoint (yet); detail says which.
    #[error("not in the transparency log: {0}")]
    LogNotFound(String),
    /// `REQUEST_TOO_LARGE` (413, our addition): body above `server.max_request_bytes`.
    #[error("request too large")]
    RequestTooLarge {
        /// The configured limit in bytes, echoed as the detail.
        limit: u64,
    },
    /// `TOO_MANY_PARTS` (413, our addition): more parts than `server.max_upload_parts`.
    #[error("too many parts")]
    TooManyParts {
        /// The configured limit, echoed as the detail.
        limit: usize,
    },
    /// `TOO_MANY_DELEGATIONS` (413, our addition): more distinct delegation roles than
    /// `server.max_upload_delegations`.
    #[error("too many delegations")]
    TooManyDelegations {
        /// The configured limit, echoed as the detail.
        limit: usize,
    },
    /// `TOO_MANY_JSON_VALUES` (413, our addition): a part holds more JSON values than a
    /// file of its size may (`notary_tuf::bounded::max_json_values`).
    #[error("too many JSON values in {role}")]
    TooManyJsonValues {
        /// The part's role.
        role: String,
        /// The part's limit.
        limit: usize,
    },
    /// `REQUEST_TIMEOUT` (408, our addition): the request outlived
    /// `server.request_timeout_secs`.
    #[error("request timed out")]
    RequestTimeout {
        /// The configured limit in seconds, echoed as the detail.
        limit_secs: u64,
    },
}

impl ApiError {
    /// `METADATA_NOT_FOUND` as produced by a storage miss (detail `{}`).
    pub fn not_found() -> Self {
        ApiError::MetadataNotFound {
            detail: Some(json!({})),
        }
    }

    /// `METADATA_NOT_FOUND` as produced by the router (no detail).
    pub fn route_not_found() -> Self {
        ApiError::MetadataNotFound { detail: None }
    }

    /// `UNKNOWN` with the usual empty-object detail.
    pub fn unknown() -> Self {
        ApiError::Unknown(Some(json!({})))
    }

    /// The Go error code string.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MetadataNotFound { .. } => "METADATA_NOT_FOUND",
            ApiError::InvalidUpdate(_) => "INVALID_UPDATE",
            ApiError::OldVersion => "VERSION",
            ApiError::MalformedUpload => "MALFORMED_UPLOAD",
            ApiError::NoFilename => "NO_FILENAME",
            ApiError::InvalidRole(_) => "INVALID_ROLE",
            ApiError::MalformedJson => "MALFORMED_JSON",
            ApiError::InvalidGun(_) => "INVALID_GUN",
            ApiError::InvalidParameters(_) => "INVALID_PARAMETERS",
            ApiError::Updating => "UPDATING",
            ApiError::Unknown(_) => "UNKNOWN",
            ApiError::Unauthorized { .. } => "UNAUTHORIZED",
            ApiError::NoStorage => "NO_STORAGE",
            ApiError::NoCryptoService => "NO_CRYPTOSERVICE",
            ApiError::NoKeyAlgorithm => "NO_KEYALGORITHM",
            ApiError::GenericNotFound => "GENERIC_NOT_FOUND",
            ApiError::Unavailable => "UNAVAILABLE",
            ApiError::LogNotFound(_) => "LOG_NOT_FOUND",
            ApiError::RequestTooLarge { .. } => "REQUEST_TOO_LARGE",
            ApiError::TooManyParts { .. } => "TOO_MANY_PARTS",
            ApiError::TooManyDelegations { .. } => "TOO_MANY_DELEGATIONS",
            ApiError::TooManyJsonValues { .. } => "TOO_MANY_JSON_VALUES",
            ApiError::RequestTimeout { .. } => "REQUEST_TIMEOUT",
        }
    }

    /// The fixed message Go registers for the code.
    pub fn message(&self) -> &'static str {
        match self {
            ApiError::MetadataNotFound { .. } => "You have requested metadata that does not exist.",
            ApiError::InvalidUpdate(_) => "Update sent by the client is invalid.",
            ApiError::OldVersion => "A newer version of metadata is already available.",
            ApiError::MalformedUpload => "The body of your request is malformed.",
            ApiError::NoFilename => "No file/role name provided.",
            ApiError::InvalidRole(_) => "The role you are attempting to operate on is invalid.",
            ApiError::MalformedJson => "JSON sent by the client could not be parsed by the server",
            ApiError::InvalidGun(_) => {
                "The server does not support actions on images of this name."
            }
            ApiError::InvalidParameters(_) => "The parameters provided are not valid.",
            ApiError::Updating => "An error has occurred while updating the TUF repository.",
            ApiError::Unknown(_) => "unknown error",
            ApiError::Unauthorized { .. } => "authentication required",
            ApiError::NoStorage => "The server is misconfigured and has no storage.",
            ApiError::NoCryptoService => "The server does not have a signing service configured.",
            ApiError::NoKeyAlgorithm => "The server does not have a key algorithm configured.",
            ApiError::GenericNotFound => "You have requested a resource that does not exist.",
            ApiError::Unavailable => "The service is temporarily unavailable.",
            ApiError::LogNotFound(_) => "The transparency log has no such entry, tile or checkpoint.",
            ApiError::RequestTooLarge { .. } => {
                "The request body is larger than this server accepts."
            }
            ApiError::TooManyParts { .. } => {
                "The upload has more parts than this server accepts (max_upload_parts)."
            }
            ApiError::TooManyDelegations { .. } => {
                "The upload has more delegation roles than this server accepts (max_upload_delegations)."
            }
            ApiError::TooManyJsonValues { .. } => {
                "A metadata file holds more JSON values than this server accepts for its size."
            }
            ApiError::RequestTimeout { .. } => "The request took longer than this server allows.",
        }
    }

    /// The HTTP status of the code.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MetadataNotFound { .. }
            | ApiError::GenericNotFound
            | ApiError::LogNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::InvalidUpdate(_)
            | ApiError::OldVersion
            | ApiError::MalformedUpload
            | ApiError::NoFilename
            | ApiError::InvalidRole(_)
            | ApiError::MalformedJson
            | ApiError::InvalidGun(_)
            | ApiError::InvalidParameters(_) => StatusCode::BAD_REQUEST,
            ApiError::Updating
            | ApiError::Unknown(_)
            | ApiError::NoStorage
            | ApiError::NoCryptoService
            | ApiError::NoKeyAlgorithm => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RequestTooLarge { .. }
            | ApiError::TooManyParts { .. }
            | ApiError::TooManyDelegations { .. }
            | ApiError::TooManyJsonValues { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The `detail` member, if any.
    pub fn detail(&self) -> Option<Value> {
        match self {
            ApiError::MetadataNotFound { detail } => detail.clone(),
            ApiError::InvalidUpdate(detail) | ApiError::Unknown(detail) => detail.clone(),
            ApiError::OldVersion => Some(json!({})),
            ApiError::InvalidRole(role) => Some(Value::String(role.clone())),
            ApiError::InvalidGun(msg) | ApiError::LogNotFound(msg) => {
                Some(Value::String(msg.clone()))
            }
            ApiError::InvalidParameters(detail) => Some(detail.clone()),
            ApiError::Unauthorized { detail, .. } => Some(detail.clone()),
            ApiError::RequestTooLarge { limit } => Some(json!({ "limit": limit })),
            ApiError::TooManyParts { limit } | ApiError::TooManyDelegations { limit } => {
                Some(json!({ "limit": limit }))
            }
            ApiError::TooManyJsonValues { role, limit } => {
                Some(json!({ "role": role, "limit": limit }))
            }
            ApiError::RequestTimeout { limit_secs } => Some(json!({ "limit_seconds": limit_secs })),
            ApiError::MalformedUpload
            | ApiError::NoFilename
            | ApiError::MalformedJson
            | ApiError::Updating
            | ApiError::NoStorage
            | ApiError::NoCryptoService
            | ApiError::NoKeyAlgorithm
            | ApiError::GenericNotFound
            | ApiError::Unavailable => None,
        }
    }

    /// The exact response body: the envelope plus a trailing newline.
    pub fn body(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Entry<'a> {
            code: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            detail: Option<Value>,
        }
        #[derive(Serialize)]
        struct Envelope<'a> {
            errors: [Entry<'a>; 1],
        }
        let envelope = Envelope {
            errors: [Entry {
                code: self.code(),
                message: self.message(),
                detail: self.detail(),
            }],
        };
        // Serializing plain strings and JSON values cannot fail.
        let json = serde_json::to_string(&envelope).unwrap_or_default();
        let mut body = go_html_escape(&json).into_bytes();
        body.push(b'\n');
        body
    }

    /// Maps a storage failure on a read path (GET, DELETE, key lookups).
    pub fn from_store_read(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(msg) => {
                tracing::error!(error = %msg, "storage unavailable");
                ApiError::Unavailable
            }
            other => {
                tracing::error!(error = %other, "storage read failed");
                ApiError::unknown()
            }
        }
    }
}

impl From<crate::tlog::LogError> for ApiError {
    fn from(err: crate::tlog::LogError) -> Self {
        use crate::tlog::LogError;
        match err {
            LogError::NotFound(what) => ApiError::LogNotFound(what),
            LogError::BadRequest(why) => ApiError::InvalidParameters(Value::String(why)),
            LogError::Store(e) => ApiError::from_store_read(e),
            LogError::Signer(e) => {
                tracing::error!(error = %e, "transparency log: signer failed");
                ApiError::Unavailable
            }
            LogError::Other(e) => {
                tracing::error!(error = %e, "transparency log failed");
                ApiError::unknown()
            }
        }
    }
}

/// Go's `encoding/json` escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings.
/// Outside strings these characters cannot occur in JSON, so a plain replacement
/// over the serialized text gives byte-identical envelopes.
pub(crate) fn go_html_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status());
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        ));
        if let ApiError::Unauthorized { challenge, .. } = self {
            // Bytes, not `from_str`: a GUN in the scope may be non-ASCII (Go sends it as is).
            if let Ok(value) = HeaderValue::from_bytes(challenge.as_bytes()) {
                response.insert_header((header::WWW_AUTHENTICATE, value));
            }
        }
        if let ApiError::RequestTimeout { .. } = self {
            // Part of the body may still be unread: the connection cannot be reused.
            response.force_close();
        }
        response.body(self.body())
    }
}

impl From<UpdateError> for ApiError {
    fn from(err: UpdateError) -> Self {
        match err {
            UpdateError::Invalid(detail) => {
                tracing::info!(?detail, "400 POST error validating update");
                ApiError::InvalidUpdate(detail.and_then(|d| serde_json::to_value(d).ok()))
            }
            UpdateError::OldVersion => ApiError::OldVersion,
            UpdateError::Storage(StoreError::Unavailable(msg)) | UpdateError::Unavailable(msg) => {
                tracing::error!(error = %msg, "update failed: backend unavailable");
                ApiError::Unavailable
            }
            UpdateError::Storage(StoreError::OldVersion) => ApiError::OldVersion,
            UpdateError::Storage(StoreError::GunCaseConflict(gun)) => {
                tracing::info!(%gun, "400 POST refused: GUN differs only in case from another");
                ApiError::InvalidGun(format!(
                    "{gun} differs only in letter case from an existing repository; \
                     repository names are case-sensitive but this database cannot store both"
                ))
            }
            UpdateError::Storage(other) => {
                tracing::error!(error = %other, "500 POST error applying update request");
                ApiError::Updating
            }
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::Store(store) => ApiError::from_store_read(store),
            DomainError::Crypto(CryptoError::Unavailable(msg)) => {
                tracing::error!(error = %msg, "signer unavailable");
                ApiError::Unavailable
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::unknown()
            }
        }
    }
}
