//! Notary's metadata model: the signed envelope kept as exact bytes beside a generic and a
//! typed view, plus builders for the files the server signs itself.
//!
//! Uploaded files are never re-serialized: [`SignedFile::raw`] is what gets stored, served
//! and hashed, and signatures are checked over the canonical form of the generic
//! [`SignedFile::signed_value`] (spec signer-and-tuf §6.2). The typed views ([`Root`],
//! [`Targets`], [`Snapshot`], [`Timestamp`]) are for reading; they decode like Go's
//! `encoding/json` (case-insensitive field names, `null` or missing fields take the zero
//! value, wrong JSON types are errors).
//!
//! Layouts (spec §5): envelope `{"signed":<S>,"signatures":[{"keyid","method","sig"}]}` with
//! `<S>` the HTML-escaped canonical JSON; binary values standard base64 with padding;
//! `expires` RFC 3339.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike as _, NaiveDate, Timelike as _, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256, Sha512};

use crate::bounded::{self, Budget};
use crate::canonical::{self, CanonicalError};
use crate::crypto::{CryptoError, CryptoService, HeldKey};
use crate::error::TufError;
use crate::keys::{self, method_for_key_type, PublicKey, SignatureMethod};
use crate::roles;

/// `_type` values.
pub const TYPE_ROOT: &str = "Root";
/// `_type` of targets and delegation files.
pub const TYPE_TARGETS: &str = "Targets";
/// `_type` of snapshot files.
pub const TYPE_SNAPSHOT: &str = "Snapshot";
/// `_type` of timestamp files.
pub const TYPE_TIMESTAMP: &str = "Timestamp";

/// `sha256`.
pub const SHA256: &str = "sha256";
/// `sha512`.
pub const SHA512: &str = "sha512";

/// The `_type` Go expects for a role (`Targets` for delegations); `None` for invalid names.
pub fn tuf_type_for_role(role: &str) -> Option<&'static str> {
    match role {
        roles::ROOT => Some(TYPE_ROOT),
        roles::TARGETS => Some(TYPE_TARGETS),
        roles::SNAPSHOT => Some(TYPE_SNAPSHOT),
        roles::TIMESTAMP => Some(TYPE_TIMESTAMP),
        r if roles::is_delegation(r) => Some(TYPE_TARGETS),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Time

/// Go's zero `time.Time` (0001-01-01T00:00:00Z): what a missing `expires` decodes to.
pub fn go_zero_time() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(1, 1, 1)
        .expect("valid date")
        .and_hms_opt(0, 0, 0)
        .expect("valid time")
        .and_utc()
}

/// Formats an expiry like Go's `time.Time` JSON for a UTC time: RFC 3339, `Z`, nanoseconds
/// with trailing zeros trimmed (no fraction when zero), e.g. `2026-12-06T20:58:42.5178177Z`.
pub fn format_expires(t: &DateTime<Utc>) -> String {
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    // chrono encodes a leap second as nanosecond >= 1e9; Go has no leap seconds.
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Parses an RFC 3339 timestamp as Go's `time.Time` JSON decoder does: `T` and `Z` upper
/// case, any numeric offset, any number of fraction digits (beyond nine are truncated).
pub fn parse_expires(s: &str) -> Result<DateTime<Utc>, String> {
    let err = || format!("parsing time {s:?} as RFC 3339: invalid format");
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Result<u32, String> {
        let part = b.get(range).ok_or_else(err)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(err());
        }
        Ok(part
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(err());
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos = 0u32;
    if b[i] == b'.' {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == start {
            return Err(err());
        }
        let digits = &b[start..end.min(start + 9)];
        nanos = digits
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
        nanos *= 10u32.pow(9 - digits.len() as u32);
        i = end;
    }
    let offset_secs: i64 = match b.get(i) {
        Some(b'Z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return Err(format!("parsing time {s:?}: time zone offset out of range"));
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return Err(err()),
    };
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!("parsing time {s:?}: time out of range"));
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)
        .ok_or_else(|| format!("parsing time {s:?}: day out of range"))?;
    let naive = date
        .and_hms_nano_opt(hour, minute, second, nanos)
        .ok_or_else(err)?;
    Ok((naive - chrono::Duration::seconds(offset_secs)).and_utc())
}

/// Renders a time as Go's `Mon Jan 2 15:04:05 MST 2006` layout in UTC (used in expiry
/// error messages).
pub fn go_expiry_display(t: &DateTime<Utc>) -> String {
    t.format("%a %b %-d %H:%M:%S UTC %Y").to_string()
}

// ---------------------------------------------------------------------------------------
// Go-like decoding helpers

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_err(v: &Value, ctx: &str, want: &str) -> TufError {
    TufError::Json(format!(
        "json: cannot unmarshal {} into Go struct field {ctx} of type {want}",
        kind(v)
    ))
}

/// Field lookup like Go's decoder: names match case-insensitively, the last match in the
/// document wins, and `null` counts as absent.
pub(crate) fn field<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let mut found = None;
    for (k, v) in m {
        if k.eq_ignore_ascii_case(name) {
            found = Some(v);
        }
    }
    found.filter(|v| !v.is_null())
}

fn obj_or_empty<'a>(v: &'a Value, ctx: &str) -> Result<Option<&'a Map<String, Value>>, TufError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(m) => Ok(Some(m)),
        other => Err(type_err(other, ctx, "object")),
    }
}

fn get_string(m: &Map<String, Value>, name: &str, ctx: &str) -> Result<String, TufError> {
    match field(m, name) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(type_err(other, &format!("{ctx}.{name}"), "string")),
    }
}

fn value_i64(v: &Value, ctx: &str) -> Result<i64, TufError> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            TufError::Json(format!(
                "json: cannot unmarshal number {n} into Go struct field {ctx} of type int"
            ))
        }),
        other => Err(type_err(other, ctx, "int")),
    }
}

fn get_i64(m: &Map<String, Value>, name: &str, ctx: &str) -> Result<i64, TufError> {
    match field(m, name) {
        None => Ok(0),
        Some(v) => value_i64(v, &format!("{ctx}.{name}")),
    }
}

fn get_bool(m: &Map<String, Value>, name: &str, ctx: &str) -> Result<bool, TufError> {
    match field(m, name) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(type_err(other, &format!("{ctx}.{name}"), "bool")),
    }
}

fn get_string_list(m: &Map<String, Value>, name: &str, ctx: &str) -> Result<Vec<String>, TufError> {
    match field(m, name) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::Null => Ok(String::new()),
                Value::String(s) => Ok(s.clone()),
                other => Err(type_err(other, &format!("{ctx}.{name}"), "string")),
            })
            .collect(),
        Some(other) => Err(type_err(other, &format!("{ctx}.{name}"), "[]string")),
    }
}

fn decode_b64(s: &str, ctx: &str) -> Result<Vec<u8>, TufError> {
    keys::decode_go_base64(s)
        .map_err(|e| TufError::Json(format!("{ctx}: illegal base64 data: {e}")))
}

fn map_of<'a>(
    m: &'a Map<String, Value>,
    name: &str,
    ctx: &str,
) -> Result<Option<&'a Map<String, Value>>, TufError> {
    match field(m, name) {
        None => Ok(None),
        Some(v) => obj_or_empty(v, &format!("{ctx}.{name}")),
    }
}

// ---------------------------------------------------------------------------------------
// Envelope

/// One entry of `signatures`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Key ID the signature claims.
    pub keyid: String,
    /// Method (lower-cased on decode).
    pub method: SignatureMethod,
    /// Raw signature bytes.
    pub sig: Vec<u8>,
}

impl Signature {
    /// `{"keyid":..,"method":..,"sig":"<b64>"}` in Go's field order.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let s = format!(
            r#"{{"keyid":{},"method":{},"sig":"{}"}}"#,
            serde_json::to_string(&self.keyid).expect("string encodes"),
            serde_json::to_string(self.method.as_str()).expect("string encodes"),
            keys::encode_base64(&self.sig)
        );
        canonical::go_html_escape(s.as_bytes())
    }
}

/// The fields every `signed` object has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCommon {
    /// `_type` (`""` when absent).
    pub type_: String,
    /// `version` (0 when absent).
    pub version: i64,
    /// `expires` ([`go_zero_time`] when absent).
    pub expires: DateTime<Utc>,
}

impl SignedCommon {
    /// Decodes the common fields of a `signed` object like Go's `SignedCommon`.
    pub fn from_value(v: &Value) -> Result<SignedCommon, TufError> {
        let empty = Map::new();
        let m = obj_or_empty(v, "signed")?.unwrap_or(&empty);
        let type_ = get_string(m, "_type", "SignedCommon")?;
        let version = get_i64(m, "version", "SignedCommon")?;
        let expires = match field(m, "expires") {
            None => go_zero_time(),
            Some(Value::String(s)) => parse_expires(s).map_err(TufError::Json)?,
            Some(other) => return Err(type_err(other, "SignedCommon.expires", "time.Time")),
        };
        Ok(SignedCommon {
            type_,
            version,
            expires,
        })
    }

    /// True when `expires` is before `now` (Go `IsExpired`).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires < now
    }
}

/// Why an upload is not decodable as signed metadata (→ `MALFORMED_JSON`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON at all.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// JSON, but not the envelope shape.
    #[error("{0}")]
    Shape(String),
    /// More JSON values than a file of this size may hold ([`bounded::max_json_values`]).
    #[error("more than {limit} JSON values")]
    TooManyValues {
        /// The file's limit.
        limit: usize,
    },
}

/// A metadata file: the exact bytes plus decoded views.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedFile {
    /// The exact bytes as received or generated; store, serve and hash these.
    pub raw: Vec<u8>,
    /// Generic decode of `signed` (duplicate keys: last wins); signatures are verified over
    /// its canonical form.
    pub signed_value: Value,
    /// The signatures.
    pub signatures: Vec<Signature>,
    /// `_type`, `version`, `expires`.
    pub common: SignedCommon,
}

impl SignedFile {
    /// Decodes an envelope (spec server.md §6.2 item 4): `signed` must be an object whose
    /// `_type` is a string, `expires` RFC 3339 and `version` an integer; `signatures` a list of
    /// `{keyid, method, sig}` with `sig` standard padded base64. The file may hold at most
    /// [`bounded::max_json_values`] values, which bounds the memory its decoding takes.
    pub fn parse(bytes: &[u8]) -> Result<SignedFile, ParseError> {
        let (signed_value, signatures, common) = Self::decode(bytes)?;
        Ok(SignedFile {
            raw: bytes.to_vec(),
            signed_value,
            signatures,
            common,
        })
    }

    /// [`SignedFile::parse`] of bytes the caller owns: they become `raw` without a copy
    /// (an upload's parts can be as large as the request body).
    pub fn parse_vec(bytes: Vec<u8>) -> Result<SignedFile, ParseError> {
        let (signed_value, signatures, common) = Self::decode(&bytes)?;
        Ok(SignedFile {
            raw: bytes,
            signed_value,
            signatures,
            common,
        })
    }

    /// The decoded parts of [`SignedFile::parse`].
    fn decode(bytes: &[u8]) -> Result<(Value, Vec<Signature>, SignedCommon), ParseError> {
        let budget = Budget::for_file(bytes.len());
        let top = bounded::value_from_slice(bytes, &budget).map_err(|e| {
            if budget.exceeded() {
                ParseError::TooManyValues {
                    limit: budget.limit(),
                }
            } else {
                ParseError::Json(e.to_string())
            }
        })?;
        let mut top = match top {
            Value::Object(m) => m,
            other => {
                return Err(ParseError::Shape(format!(
                    "metadata must be a JSON object, not {}",
                    kind(&other)
                )));
            }
        };
        // The member `field` would pick, by name, so that `signed` can be moved out of the
        // envelope below instead of cloned (it is most of the file).
        let signed_key = top
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case("signed"))
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k.clone());
        match signed_key.as_ref().map(|k| &top[k.as_str()]) {
            Some(Value::Object(_)) => {}
            Some(other) => {
                return Err(ParseError::Shape(format!(
                    "\"signed\" must be an object, not {}",
                    kind(other)
                )));
            }
            None => return Err(ParseError::Shape("missing \"signed\" object".into())),
        }
        let signed_key = signed_key.expect("checked above");
        let common = SignedCommon::from_value(&top[signed_key.as_str()])
            .map_err(|e| ParseError::Shape(e.to_string()))?;
        let signatures = match field(&top, "signatures") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(parse_signature)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ParseError::Shape(e.to_string()))?,
            Some(other) => {
                return Err(ParseError::Shape(format!(
                    "\"signatures\" must be a list, not {}",
                    kind(other)
                )));
            }
        };
        let signed_value = top.remove(&signed_key).expect("member found above");
        Ok((signed_value, signatures, common))
    }

    /// Canonical bytes of `signed`: what signatures are verified against.
    pub fn canonical_signed(&self) -> Result<Vec<u8>, CanonicalError> {
        canonical::to_canonical_bytes(&self.signed_value)
    }

    /// Lowercase hex SHA-256 of the exact bytes (the storage checksum).
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(&self.raw))
    }

    /// Length and sha256/sha512 of the exact bytes.
    pub fn file_meta(&self) -> FileMeta {
        FileMeta::from_bytes(&self.raw)
    }

    /// Typed root view (no structure validation; see [`Root::validate_structure`]).
    pub fn root(&self) -> Result<Root, TufError> {
        Root::from_signed_value(&self.signed_value)
    }

    /// Typed targets/delegation view.
    pub fn targets(&self) -> Result<Targets, TufError> {
        Targets::from_signed_value(&self.signed_value)
    }

    /// Typed snapshot view.
    pub fn snapshot(&self) -> Result<Snapshot, TufError> {
        Snapshot::from_signed_value(&self.signed_value)
    }

    /// Typed timestamp view.
    pub fn timestamp(&self) -> Result<Timestamp, TufError> {
        Timestamp::from_signed_value(&self.signed_value)
    }
}

fn parse_signature(v: &Value) -> Result<Signature, TufError> {
    let empty = Map::new();
    let m = obj_or_empty(v, "signatures")?.unwrap_or(&empty);
    let keyid = get_string(m, "keyid", "Signature")?;
    let method = SignatureMethod::parse(&get_string(m, "method", "Signature")?);
    let sig = match field(m, "sig") {
        None => Vec::new(),
        Some(Value::String(s)) => decode_b64(s, "Signature.sig")?,
        Some(other) => return Err(type_err(other, "Signature.sig", "[]byte")),
    };
    Ok(Signature { keyid, method, sig })
}

/// Assembles an envelope exactly as Go writes it:
/// `{"signed":<HTML-escaped canonical>,"signatures":[...]}`.
pub fn envelope_bytes(signed_canonical: &[u8], signatures: &[Signature]) -> Vec<u8> {
    let mut out = Vec::with_capacity(signed_canonical.len() + 64 + signatures.len() * 200);
    out.extend_from_slice(b"{\"signed\":");
    out.extend_from_slice(&canonical::go_html_escape(signed_canonical));
    out.extend_from_slice(b",\"signatures\":[");
    for (i, s) in signatures.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&s.to_json_bytes());
    }
    out.extend_from_slice(b"]}");
    out
}

/// Builds a signed file from a `signed` value and signatures already made over its
/// canonical bytes (see [`to_sign`]). Each key must be the key as listed in the root (its
/// TUF ID becomes `keyid`, its type picks `method`).
pub fn sign_metadata(
    signed: &Value,
    sigs: &[(&PublicKey, Vec<u8>)],
) -> Result<Vec<u8>, CanonicalError> {
    let canonical = canonical::to_canonical_bytes(signed)?;
    let signatures: Vec<Signature> = sigs
        .iter()
        .map(|(k, sig)| Signature {
            keyid: k.key_id(),
            method: method_for_key_type(&k.key_type),
            sig: sig.clone(),
        })
        .collect();
    Ok(envelope_bytes(&canonical, &signatures))
}

/// The bytes a signer must sign for `signed`: its canonical JSON.
pub fn to_sign(signed: &Value) -> Result<Vec<u8>, CanonicalError> {
    canonical::to_canonical_bytes(signed)
}

/// Failure of [`sign_with_service`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// Go `ErrInsufficientSignatures`: the service holds fewer of the role's keys than the
    /// threshold.
    #[error("{}", insufficient_msg(*.found, *.needed, .missing))]
    InsufficientSignatures {
        /// Keys held.
        found: usize,
        /// Threshold.
        needed: usize,
        /// Canonical IDs of role keys the service does not hold.
        missing: Vec<String>,
    },
    /// The signing service failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The value cannot be canonicalized.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// A role key is unusable (e.g. a certificate that cannot be parsed).
    #[error("{0}")]
    Key(String),
    /// The service holds a key of the role, but it may not sign for this role (see
    /// [`KeyGate`]).
    #[error("signing key {key_id} refused: {reason}")]
    KeyRefused {
        /// Canonical ID of the key.
        key_id: String,
        /// Why.
        reason: String,
    },
}

fn insufficient_msg(found: usize, needed: usize, missing: &[String]) -> String {
    let candidates = if missing.is_empty() {
        String::new()
    } else {
        format!(" ({})", missing.join(", "))
    };
    if found == 0 {
        format!(
            "signing keys not available: need {needed} keys from {} possible keys{candidates}",
            missing.len()
        )
    } else {
        format!(
            "not enough signing keys: found {found} of {needed} needed keys - {} other possible keys{candidates}",
            missing.len()
        )
    }
}

/// Decides whether a key the signing service holds may sign for the role being signed.
///
/// A signing service holds the online keys of every repository, and the role's key list
/// comes from a root the client uploaded, so without this check one repository's root could
/// name another repository's key and get signatures from it.
#[async_trait::async_trait]
pub trait KeyGate: Send + Sync {
    /// `Ok` to sign with `key_id` (held as `held`) for `role`. A refusal is
    /// [`SignError::KeyRefused`]; a failure to decide (e.g. storage down) any other error.
    async fn admit(&self, key_id: &str, held: &HeldKey, role: &str) -> Result<(), SignError>;
}

/// A [`KeyGate`] that admits every key held for the role (for callers that hold keys of a
/// single repository, such as tests and clients). [`sign_with_service`] checks the role itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyGun;

#[async_trait::async_trait]
impl KeyGate for AnyGun {
    async fn admit(&self, _: &str, _: &HeldKey, _: &str) -> Result<(), SignError> {
        Ok(())
    }
}

/// Signs `signed` with every key of `role` the service holds, like Go's `signed.Sign`: keys
/// are looked up by canonical key ID; unheld keys are skipped; fewer held keys than the
/// threshold is [`SignError::InsufficientSignatures`]; any other service error aborts.
/// Unlike Go, a held key must have been created for `role` and be admitted by `gate`,
/// otherwise the whole signing is refused ([`SignError::KeyRefused`]).
/// Returns the complete envelope bytes.
pub async fn sign_with_service(
    signed: &Value,
    role: &BaseRole,
    cs: &dyn CryptoService,
    gate: &dyn KeyGate,
) -> Result<Vec<u8>, SignError> {
    let msg = canonical::to_canonical_bytes(signed)?;
    let mut held: Vec<(&String, &PublicKey, String)> = Vec::new();
    let mut missing = Vec::new();
    for (tuf_id, key) in &role.keys {
        let canonical_id = key
            .canonical_key_id()
            .map_err(|e| SignError::Key(e.to_string()))?;
        match cs.get_key_info(&canonical_id).await {
            Ok(Some(info)) => {
                if info.role != role.name {
                    return Err(SignError::KeyRefused {
                        key_id: canonical_id,
                        reason: format!("it is a {:?} key, not a {:?} key", info.role, role.name),
                    });
                }
                gate.admit(&canonical_id, &info, &role.name).await?;
                held.push((tuf_id, key, canonical_id));
            }
            Ok(None) | Err(CryptoError::NotFound(_)) => missing.push(canonical_id),
            Err(e) => return Err(e.into()),
        }
    }
    let needed = usize::try_from(role.threshold).unwrap_or(0);
    if held.len() < needed {
        return Err(SignError::InsufficientSignatures {
            found: held.len(),
            needed,
            missing,
        });
    }
    let mut signatures = Vec::with_capacity(held.len());
    for (tuf_id, key, canonical_id) in held {
        let sig = cs.sign(&canonical_id, &msg).await?;
        signatures.push(Signature {
            keyid: tuf_id.clone(),
            method: method_for_key_type(&key.key_type),
            sig,
        });
    }
    Ok(envelope_bytes(&msg, &signatures))
}

// ---------------------------------------------------------------------------------------
// File meta

/// Length and hashes of a file (`{"custom"?,"hashes":{..},"length":N}`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileMeta {
    /// Length in bytes.
    pub length: i64,
    /// Algorithm → raw digest.
    pub hashes: BTreeMap<String, Vec<u8>>,
    /// Opaque `custom` data, if present and not null.
    pub custom: Option<Value>,
}

impl FileMeta {
    /// Length, sha256 and sha512 of exact bytes (what the server writes into snapshot and
    /// timestamp entries).
    pub fn from_bytes(bytes: &[u8]) -> FileMeta {
        let mut hashes = BTreeMap::new();
        hashes.insert(SHA256.to_string(), Sha256::digest(bytes).to_vec());
        hashes.insert(SHA512.to_string(), Sha512::digest(bytes).to_vec());
        FileMeta {
            length: bytes.len() as i64,
            hashes,
            custom: None,
        }
    }

    /// JSON form; hashes base64, `custom` omitted when absent.
    pub fn to_json_value(&self) -> Value {
        let mut m = Map::new();
        if let Some(c) = &self.custom {
            m.insert("custom".into(), c.clone());
        }
        let hashes: Map<String, Value> = self
            .hashes
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(keys::encode_base64(v))))
            .collect();
        m.insert("hashes".into(), Value::Object(hashes));
        m.insert("length".into(), json!(self.length));
        Value::Object(m)
    }

    /// Decodes Go's `FileMeta`.
    pub fn from_json_value(v: &Value) -> Result<FileMeta, TufError> {
        let empty = Map::new();
        let m = obj_or_empty(v, "FileMeta")?.unwrap_or(&empty);
        let length = get_i64(m, "length", "FileMeta")?;
        let mut hashes = BTreeMap::new();
        if let Some(h) = map_of(m, "hashes", "FileMeta")? {
            for (alg, d) in h {
                let bytes = match d {
                    Value::Null => Vec::new(),
                    Value::String(s) => decode_b64(s, "FileMeta.hashes")?,
                    other => return Err(type_err(other, "FileMeta.hashes", "[]byte")),
                };
                hashes.insert(alg.clone(), bytes);
            }
        }
        let custom = field(m, "custom").cloned();
        Ok(FileMeta {
            length,
            hashes,
            custom,
        })
    }

    /// Hex sha256, if present.
    pub fn sha256_hex(&self) -> Option<String> {
        self.hashes.get(SHA256).map(hex::encode)
    }
}

/// Go `CheckHashes`: every known algorithm present must match the payload, unknown ones are
/// ignored, and at least one known algorithm must be present.
pub fn check_hashes(
    payload: &[u8],
    name: &str,
    hashes: &BTreeMap<String, Vec<u8>>,
) -> Result<(), TufError> {
    let mut count = 0;
    for (alg, expected) in hashes {
        let actual = match alg.as_str() {
            SHA256 => Sha256::digest(payload).to_vec(),
            SHA512 => Sha512::digest(payload).to_vec(),
            _ => continue,
        };
        if &actual != expected {
            return Err(TufError::MismatchedChecksum {
                alg: alg.clone(),
                name: name.to_string(),
                expected: hex::encode(expected),
            });
        }
        count += 1;
    }
    if count == 0 {
        return Err(TufError::MissingMeta {
            role: name.to_string(),
        });
    }
    Ok(())
}

/// Go `CheckValidHashStructures`: known digests have the right length, and at least one
/// known algorithm is present.
pub fn check_valid_hash_structures(hashes: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    let mut count = 0;
    for (alg, d) in hashes {
        let want = match alg.as_str() {
            SHA256 => 32,
            SHA512 => 64,
            _ => continue,
        };
        if d.len() != want {
            return Err(format!("{alg} checksum invalid"));
        }
        count += 1;
    }
    if count == 0 {
        return Err("at least one supported hash needed".into());
    }
    Ok(())
}

/// Go `CompareMultiHashes`: both sets well-formed, at least one common algorithm, and no
/// common algorithm with different digests.
pub fn compare_multi_hashes(
    a: &BTreeMap<String, Vec<u8>>,
    b: &BTreeMap<String, Vec<u8>>,
) -> Result<(), String> {
    check_valid_hash_structures(a)?;
    check_valid_hash_structures(b)?;
    let mut count = 0;
    for (alg, da) in a {
        if let Some(db) = b.get(alg) {
            if da != db {
                return Err(format!("mismatched {alg} checksum"));
            }
            count += 1;
        }
    }
    if count == 0 {
        return Err("at least one matching hash needed".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Roles with keys

/// A role's keys and threshold (Go `BaseRole`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRole {
    /// Role name.
    pub name: String,
    /// Key ID (as listed) → key.
    pub keys: BTreeMap<String, PublicKey>,
    /// Threshold.
    pub threshold: i64,
}

impl BaseRole {
    /// A role from keys, each listed under its own TUF ID.
    pub fn new(name: &str, threshold: i64, keys: impl IntoIterator<Item = PublicKey>) -> BaseRole {
        BaseRole {
            name: name.to_string(),
            keys: keys.into_iter().map(|k| (k.key_id(), k)).collect(),
            threshold,
        }
    }
}

/// `roles.<name>` of a root: key IDs and threshold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RootRole {
    /// Key IDs.
    pub keyids: Vec<String>,
    /// Threshold.
    pub threshold: i64,
}

impl RootRole {
    fn from_json(m: &Map<String, Value>, ctx: &str) -> Result<RootRole, TufError> {
        Ok(RootRole {
            keyids: get_string_list(m, "keyids", ctx)?,
            threshold: get_i64(m, "threshold", ctx)?,
        })
    }
}

fn keys_from_json(m: Option<&Map<String, Value>>) -> Result<BTreeMap<String, PublicKey>, TufError> {
    let mut out = BTreeMap::new();
    if let Some(m) = m {
        for (id, kv) in m {
            let key = match kv {
                Value::Null => PublicKey::new(keys::KeyType::Other(String::new()), Vec::new()),
                other => {
                    PublicKey::from_json_value(other).map_err(|e| TufError::Json(e.to_string()))?
                }
            };
            out.insert(id.clone(), key);
        }
    }
    Ok(out)
}

fn keys_to_json(keys: &BTreeMap<String, PublicKey>) -> Value {
    Value::Object(
        keys.iter()
            .map(|(id, k)| (id.clone(), k.to_json_value()))
            .collect(),
    )
}

/// Go `isValidRootRoleStructure`: threshold ≥ 1 and every key ID present in `keys`.
fn check_role_structure(
    containing: &str,
    role_name: &str,
    keyids: &[String],
    threshold: i64,
    keys: &BTreeMap<String, PublicKey>,
) -> Result<(), TufError> {
    if threshold < 1 {
        return Err(TufError::InvalidMetadata {
            role: containing.to_string(),
            msg: format!("invalid threshold specified for {role_name}: {threshold} "),
        });
    }
    for id in keyids {
        if !keys.contains_key(id) {
            return Err(TufError::InvalidMetadata {
                role: containing.to_string(),
                msg: format!("key ID {id} specified in {role_name} without corresponding key"),
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Root

/// Typed view of `root.json`'s `signed`.
#[derive(Debug, Clone, PartialEq)]
pub struct Root {
    /// Common fields.
    pub common: SignedCommon,
    /// Key ID → key.
    pub keys: BTreeMap<String, PublicKey>,
    /// Role name → role (roles given as `null` are left out).
    pub roles: BTreeMap<String, RootRole>,
    /// `consistent_snapshot`.
    pub consistent_snapshot: bool,
}

impl Root {
    /// Decodes a root `signed` value.
    pub fn from_signed_value(v: &Value) -> Result<Root, TufError> {
        let common = SignedCommon::from_value(v)?;
        let empty = Map::new();
        let m = obj_or_empty(v, "signed")?.unwrap_or(&empty);
        let keys = keys_from_json(map_of(m, "keys", "Root")?)?;
        let mut roles = BTreeMap::new();
        if let Some(rm) = map_of(m, "roles", "Root")? {
            for (name, rv) in rm {
                if let Some(r) = obj_or_empty(rv, "Root.roles")? {
                    roles.insert(name.clone(), RootRole::from_json(r, "RootRole")?);
                }
            }
        }
        let consistent_snapshot = get_bool(m, "consistent_snapshot", "Root")?;
        Ok(Root {
            common,
            keys,
            roles,
            consistent_snapshot,
        })
    }

    /// The `signed` value (for building roots in tests and tools).
    pub fn to_signed_value(&self) -> Value {
        let roles: Map<String, Value> = self
            .roles
            .iter()
            .map(|(n, r)| {
                (
                    n.clone(),
                    json!({"keyids": r.keyids, "threshold": r.threshold}),
                )
            })
            .collect();
        json!({
            "_type": self.common.type_,
            "consistent_snapshot": self.consistent_snapshot,
            "expires": format_expires(&self.common.expires),
            "keys": keys_to_json(&self.keys),
            "roles": roles,
            "version": self.common.version,
        })
    }

    /// Go `isValidRootStructure`: `_type` Root, version ≥ 1, all four base roles present,
    /// thresholds ≥ 1, every listed key present.
    pub fn validate_structure(&self) -> Result<(), TufError> {
        let invalid = |msg: String| TufError::InvalidMetadata {
            role: roles::ROOT.into(),
            msg,
        };
        if self.common.type_ != TYPE_ROOT {
            return Err(invalid(format!(
                "expected type {TYPE_ROOT}, not {}",
                self.common.type_
            )));
        }
        if self.common.version < 1 {
            return Err(invalid("version cannot be less than 1".into()));
        }
        for name in roles::BASE_ROLES {
            let r = self
                .roles
                .get(name)
                .ok_or_else(|| invalid(format!("missing {name} role specification")))?;
            check_role_structure(roles::ROOT, name, &r.keyids, r.threshold, &self.keys)?;
        }
        Ok(())
    }

    /// Go `BuildBaseRole`: the keys and threshold of a base role.
    pub fn build_base_role(&self, name: &str) -> Result<BaseRole, TufError> {
        let r = self.roles.get(name).ok_or_else(|| TufError::InvalidRole {
            role: name.to_string(),
            reason: "role not found in root file".into(),
        })?;
        let mut keys = BTreeMap::new();
        for id in &r.keyids {
            let k = self.keys.get(id).ok_or_else(|| TufError::InvalidRole {
                role: name.to_string(),
                reason: format!("key with ID {id} was not found in root metadata"),
            })?;
            keys.insert(id.clone(), k.clone());
        }
        Ok(BaseRole {
            name: name.to_string(),
            keys,
            threshold: r.threshold,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Targets

/// A delegation entry in `delegations.roles`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DelegationRole {
    /// Role name (`targets/...`).
    pub name: String,
    /// Key IDs (found in `delegations.keys`).
    pub keyids: Vec<String>,
    /// Threshold.
    pub threshold: i64,
    /// Path prefixes (`""` matches everything).
    pub paths: Vec<String>,
}

impl DelegationRole {
    /// JSON form as Notary writes it: `paths` omitted when empty.
    pub fn to_json_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("keyids".into(), json!(self.keyids));
        m.insert("name".into(), json!(self.name));
        if !self.paths.is_empty() {
            m.insert("paths".into(), json!(self.paths));
        }
        m.insert("threshold".into(), json!(self.threshold));
        Value::Object(m)
    }

    /// True if `target` starts with one of the paths.
    pub fn check_path(&self, target: &str) -> bool {
        self.paths.iter().any(|p| target.starts_with(p.as_str()))
    }
}

/// `delegations` of a targets file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delegations {
    /// Key ID → key.
    pub keys: BTreeMap<String, PublicKey>,
    /// Delegated roles in listed order.
    pub roles: Vec<DelegationRole>,
}

/// Typed view of a targets or delegation file's `signed`.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    /// Common fields.
    pub common: SignedCommon,
    /// Target name → meta.
    pub targets: BTreeMap<String, FileMeta>,
    /// Delegations.
    pub delegations: Delegations,
}

impl Targets {
    /// Decodes a targets `signed` value.
    pub fn from_signed_value(v: &Value) -> Result<Targets, TufError> {
        let common = SignedCommon::from_value(v)?;
        let empty = Map::new();
        let m = obj_or_empty(v, "signed")?.unwrap_or(&empty);
        let mut targets = BTreeMap::new();
        if let Some(tm) = map_of(m, "targets", "Targets")? {
            for (name, fm) in tm {
                targets.insert(name.clone(), FileMeta::from_json_value(fm)?);
            }
        }
        let mut delegations = Delegations::default();
        if let Some(dm) = map_of(m, "delegations", "Targets")? {
            delegations.keys = keys_from_json(map_of(dm, "keys", "Delegations")?)?;
            match field(dm, "roles") {
                None => {}
                Some(Value::Array(items)) => {
                    for item in items {
                        let r = match item {
                            Value::Object(r) => r,
                            other => return Err(type_err(other, "Delegations.roles", "Role")),
                        };
                        delegations.roles.push(DelegationRole {
                            name: get_string(r, "name", "Role")?,
                            keyids: get_string_list(r, "keyids", "Role")?,
                            threshold: get_i64(r, "threshold", "Role")?,
                            paths: get_string_list(r, "paths", "Role")?,
                        });
                    }
                }
                Some(other) => return Err(type_err(other, "Delegations.roles", "[]*Role")),
            }
        }
        Ok(Targets {
            common,
            targets,
            delegations,
        })
    }

    /// The `signed` value.
    pub fn to_signed_value(&self) -> Value {
        let targets: Map<String, Value> = self
            .targets
            .iter()
            .map(|(n, fm)| (n.clone(), fm.to_json_value()))
            .collect();
        json!({
            "_type": self.common.type_,
            "delegations": {
                "keys": keys_to_json(&self.delegations.keys),
                "roles": self.delegations.roles.iter().map(DelegationRole::to_json_value).collect::<Vec<_>>(),
            },
            "expires": format_expires(&self.common.expires),
            "targets": targets,
            "version": self.common.version,
        })
    }

    /// Go `isValidTargetsStructure` for the file of `role`: `_type` Targets, version ≥ 1,
    /// each delegation a valid direct child with threshold ≥ 1 and known keys.
    pub fn validate_structure(&self, role: &str) -> Result<(), TufError> {
        if role != roles::TARGETS && !roles::is_delegation(role) {
            return Err(TufError::InvalidRole {
                role: role.to_string(),
                reason: String::new(),
            });
        }
        let invalid = |msg: String| TufError::InvalidMetadata {
            role: role.to_string(),
            msg,
        };
        if self.common.type_ != TYPE_TARGETS {
            return Err(invalid(format!(
                "expected type {TYPE_TARGETS}, not {}",
                self.common.type_
            )));
        }
        if self.common.version < 1 {
            return Err(invalid("version cannot be less than one".into()));
        }
        for d in &self.delegations.roles {
            if !roles::is_delegation(&d.name) || roles::path_dir(&d.name) != role {
                return Err(invalid(format!("delegation role {} invalid", d.name)));
            }
            check_role_structure(
                role,
                &d.name,
                &d.keyids,
                d.threshold,
                &self.delegations.keys,
            )?;
        }
        Ok(())
    }

    /// Go `BuildDelegationRole`: keys and threshold for a listed child role.
    pub fn build_delegation_role(&self, name: &str) -> Result<(BaseRole, Vec<String>), TufError> {
        let d = self
            .delegations
            .roles
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| TufError::Json(format!("role does not exist: {name}")))?;
        let mut keys = BTreeMap::new();
        for id in &d.keyids {
            let k = self
                .delegations
                .keys
                .get(id)
                .ok_or_else(|| TufError::InvalidRole {
                    role: name.to_string(),
                    reason: format!("role lists unknown key {id} as a signing key"),
                })?;
            keys.insert(id.clone(), k.clone());
        }
        Ok((
            BaseRole {
                name: name.to_string(),
                keys,
                threshold: d.threshold,
            },
            d.paths.clone(),
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Snapshot and timestamp

/// Typed view of `snapshot.json`'s `signed`.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Common fields.
    pub common: SignedCommon,
    /// Role name → meta of that role's file.
    pub meta: BTreeMap<String, FileMeta>,
}

impl Snapshot {
    /// A new snapshot value.
    pub fn new(version: i64, expires: DateTime<Utc>, meta: BTreeMap<String, FileMeta>) -> Snapshot {
        Snapshot {
            common: SignedCommon {
                type_: TYPE_SNAPSHOT.into(),
                version,
                expires,
            },
            meta,
        }
    }

    /// Decodes a snapshot `signed` value.
    pub fn from_signed_value(v: &Value) -> Result<Snapshot, TufError> {
        let common = SignedCommon::from_value(v)?;
        let empty = Map::new();
        let m = obj_or_empty(v, "signed")?.unwrap_or(&empty);
        let mut meta = BTreeMap::new();
        if let Some(mm) = map_of(m, "meta", "Snapshot")? {
            for (name, fm) in mm {
                meta.insert(name.clone(), FileMeta::from_json_value(fm)?);
            }
        }
        Ok(Snapshot { common, meta })
    }

    /// The `signed` value: `{"_type":"Snapshot","expires":..,"meta":{..},"version":N}`.
    pub fn to_signed_value(&self) -> Value {
        let meta: Map<String, Value> = self
            .meta
            .iter()
            .map(|(n, fm)| (n.clone(), fm.to_json_value()))
            .collect();
        json!({
            "_type": self.common.type_,
            "expires": format_expires(&self.common.expires),
            "meta": meta,
            "version": self.common.version,
        })
    }

    /// Go `IsValidSnapshotStructure`: `_type`, version ≥ 1, root and targets entries with a
    /// sha256 and well-formed digests.
    pub fn validate_structure(&self) -> Result<(), TufError> {
        let invalid = |msg: String| TufError::InvalidMetadata {
            role: roles::SNAPSHOT.into(),
            msg,
        };
        if self.common.type_ != TYPE_SNAPSHOT {
            return Err(invalid(format!(
                "expected type {TYPE_SNAPSHOT}, not {}",
                self.common.type_
            )));
        }
        if self.common.version < 1 {
            return Err(invalid("version cannot be less than one".into()));
        }
        let empty = BTreeMap::new();
        for file in [roles::ROOT, roles::TARGETS] {
            let hashes = self.meta.get(file).map(|m| &m.hashes).unwrap_or(&empty);
            if !hashes.contains_key(SHA256) {
                return Err(invalid(format!(
                    "missing {file} sha256 checksum information"
                )));
            }
            check_valid_hash_structures(hashes)
                .map_err(|e| invalid(format!("invalid {file} checksum information, {e}")))?;
        }
        Ok(())
    }
}

/// Typed view of `timestamp.json`'s `signed`.
#[derive(Debug, Clone, PartialEq)]
pub struct Timestamp {
    /// Common fields.
    pub common: SignedCommon,
    /// `meta` (only `snapshot` matters).
    pub meta: BTreeMap<String, FileMeta>,
}

impl Timestamp {
    /// A new timestamp describing the snapshot file `snapshot_meta`.
    pub fn new(version: i64, expires: DateTime<Utc>, snapshot_meta: FileMeta) -> Timestamp {
        let mut meta = BTreeMap::new();
        meta.insert(roles::SNAPSHOT.to_string(), snapshot_meta);
        Timestamp {
            common: SignedCommon {
                type_: TYPE_TIMESTAMP.into(),
                version,
                expires,
            },
            meta,
        }
    }

    /// Decodes a timestamp `signed` value.
    pub fn from_signed_value(v: &Value) -> Result<Timestamp, TufError> {
        let s = Snapshot::from_signed_value(v)?;
        Ok(Timestamp {
            common: s.common,
            meta: s.meta,
        })
    }

    /// The `signed` value: `{"_type":"Timestamp","expires":..,"meta":{"snapshot":..},"version":N}`.
    pub fn to_signed_value(&self) -> Value {
        Snapshot {
            common: self.common.clone(),
            meta: self.meta.clone(),
        }
        .to_signed_value()
    }

    /// The snapshot entry.
    pub fn snapshot_meta(&self) -> Option<&FileMeta> {
        self.meta.get(roles::SNAPSHOT)
    }

    /// Go `IsValidTimestampStructure`.
    pub fn validate_structure(&self) -> Result<(), TufError> {
        let invalid = |msg: String| TufError::InvalidMetadata {
            role: roles::TIMESTAMP.into(),
            msg,
        };
        if self.common.type_ != TYPE_TIMESTAMP {
            return Err(invalid(format!(
                "expected type {TYPE_TIMESTAMP}, not {}",
                self.common.type_
            )));
        }
        if self.common.version < 1 {
            return Err(invalid("version cannot be less than one".into()));
        }
        let empty = BTreeMap::new();
        let hashes = self.snapshot_meta().map(|m| &m.hashes).unwrap_or(&empty);
        if !hashes.contains_key(SHA256) {
            return Err(invalid(
                "missing snapshot sha256 checksum information".into(),
            ));
        }
        check_valid_hash_structures(hashes)
            .map_err(|e| invalid(format!("invalid snapshot checksum information, {e}")))?;
        Ok(())
    }
}
