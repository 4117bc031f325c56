//! The leaf record: what the log says about one accepted TUF metadata file.
//!
//! # Encoding (version 1)
//!
//! One line of ASCII, seven fields separated by single spaces, ending in one `\n`:
//!
//! ```text
//! notary-tlog-leaf/v1 <gun> <role> <version> <sha256> <length> <time>\n
//! ```
//!
//! - `notary-tlog-leaf/v1`: the format tag, so a later format can never collide with this one;
//! - `<gun>`, `<role>`: the GUN and the role name (`root`, `targets`, `targets/releases`, ...),
//!   UTF-8, percent-encoded: every byte except `A-Z a-z 0-9 - . _ ~ / :` becomes `%XX` with
//!   upper-case hex. GUNs may hold spaces or any other character but `*`, and this keeps the
//!   usual `docker.io/library/alpine` or `localhost:5000/app` readable as is. Neither is empty;
//! - `<version>`: the TUF `version` of the file, decimal, no leading zeros (`0` is `0`);
//! - `<sha256>`: SHA-256 of the exact bytes stored and served, 64 lower-case hex digits;
//! - `<length>`: the length of those bytes, decimal, no leading zeros;
//! - `<time>`: when the server accepted it, RFC 3339 in UTC at whole seconds,
//!   `YYYY-MM-DDTHH:MM:SSZ` (sub-second parts are dropped, years outside 0000–9999 refused).
//!
//! The Merkle leaf is these bytes, so its leaf hash is `SHA-256(0x00 || line)`.
//!
//! Why a line and not JSON: there is exactly one encoding of a record, and a third party can
//! re-derive it with `printf` and a percent-encoder, without a canonical-JSON library and its
//! number and escaping rules. [`LeafRecord::decode`] is strict: it accepts only the bytes that
//! [`LeafRecord::encode`] would produce, so two different lines never mean the same record.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use crate::merkle::{self, Hash};

/// The first field of every version-1 leaf.
pub const FORMAT_TAG: &str = "notary-tlog-leaf/v1";

/// Bytes kept as they are in GUN and role fields; everything else is `%XX`.
const FIELD_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/')
    .remove(b':');

/// Longest encoded leaf [`LeafRecord::decode`] looks at: generous for any GUN and role.
const MAX_LEAF_LEN: usize = 16 * 1024;

/// One accepted TUF metadata file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafRecord {
    pub gun: String,
    pub role: String,
    pub version: u64,
    /// SHA-256 of the exact stored bytes.
    pub sha256: [u8; 32],
    /// Length of the exact stored bytes.
    pub length: u64,
    /// Acceptance time; encoded at whole seconds.
    pub time: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("empty {0}")]
    Empty(&'static str),
    #[error("time {0} is outside years 0000-9999")]
    TimeOutOfRange(String),
    #[error("malformed leaf: {0}")]
    Malformed(String),
}

impl LeafRecord {
    /// The record for `bytes`, the metadata file exactly as stored. The time is truncated to
    /// whole seconds here, so the struct equals what [`decode`](Self::decode) gives back.
    pub fn for_metadata(
        gun: &str,
        role: &str,
        version: u64,
        bytes: &[u8],
        time: DateTime<Utc>,
    ) -> Self {
        Self {
            gun: gun.to_owned(),
            role: role.to_owned(),
            version,
            sha256: Sha256::digest(bytes).into(),
            length: bytes.len() as u64,
            time: time.with_nanosecond(0).unwrap_or(time),
        }
    }

    /// The canonical line (see the module documentation).
    pub fn encode(&self) -> Result<String, RecordError> {
        if self.gun.is_empty() {
            return Err(RecordError::Empty("GUN"));
        }
        if self.role.is_empty() {
            return Err(RecordError::Empty("role"));
        }
        if !(0..=9999).contains(&self.time.year()) {
            return Err(RecordError::TimeOutOfRange(self.time.to_rfc3339()));
        }
        Ok(format!(
            "{FORMAT_TAG} {} {} {} {} {} {}\n",
            utf8_percent_encode(&self.gun, FIELD_ESCAPES),
            utf8_percent_encode(&self.role, FIELD_ESCAPES),
            self.version,
            hex::encode(self.sha256),
            self.length,
            self.time.to_rfc3339_opts(SecondsFormat::Secs, true),
        ))
    }

    /// The Merkle leaf hash of the encoded record.
    pub fn leaf_hash(&self) -> Result<Hash, RecordError> {
        Ok(merkle::leaf_hash(self.encode()?.as_bytes()))
    }

    /// Parses a line produced by [`encode`](Self::encode); anything else is refused.
    pub fn decode(line: &[u8]) -> Result<Self, RecordError> {
        let bad = |why: &str| RecordError::Malformed(why.to_owned());
        if line.len() > MAX_LEAF_LEN {
            return Err(bad("too long"));
        }
        let text = std::str::from_utf8(line).map_err(|_| bad("not UTF-8"))?;
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("no final newline"))?;
        let fields: Vec<&str> = body.split(' ').collect();
        let [tag, gun, role, version, sha256, length, time] = fields[..] else {
            return Err(bad("not seven fields"));
        };
        if tag != FORMAT_TAG {
            return Err(bad("unknown format tag"));
        }
        let text_field = |s: &str, what: &str| {
            percent_decode(s.as_bytes())
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| bad(&format!("{what} is not UTF-8")))
        };
        let number = |s: &str, what: &str| s.parse::<u64>().map_err(|_| bad(what));
        let mut sha = [0u8; 32];
        hex::decode_to_slice(sha256, &mut sha).map_err(|_| bad("sha256"))?;
        let time = DateTime::parse_from_rfc3339(time)
            .map_err(|_| bad("time"))?
            .with_timezone(&Utc);
        let record = Self {
            gun: text_field(gun, "GUN")?,
            role: text_field(role, "role")?,
            version: number(version, "version")?,
            sha256: sha,
            length: number(length, "length")?,
            time,
        };
        // Canonical form only: leading zeros, lower-case %xx, upper-case hex, other time
        // offsets, fractions of seconds and needless escapes all fail here.
        if record.encode()?.as_bytes() != line {
            return Err(bad("not in canonical form"));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample() -> LeafRecord {
        LeafRecord::for_metadata(
            "docker.io/library/alpine",
            "targets",
            3,
            b"{\"signed\":{}}",
            Utc.with_ymd_and_hms(2026, 12, 7, 15, 53, 1).unwrap(),
        )
    }

    #[test]
    fn encoding_is_the_documented_line() {
        let line = sample().encode().unwrap();
        assert_eq!(
            line,
            format!(
                "notary-tlog-leaf/v1 docker.io/library/alpine targets 3 {} 13 2026-12-07T15:53:01Z\n",
                hex::encode(Sha256::digest(b"{\"signed\":{}}"))
            )
        );
        assert_eq!(LeafRecord::decode(line.as_bytes()).unwrap(), sample());
        assert_eq!(
            sample().leaf_hash().unwrap(),
            merkle::leaf_hash(line.as_bytes())
        );
    }

    #[test]
    fn odd_names_are_escaped_and_round_trip() {
        let mut r = sample();
        r.gun = "localhost:5000/my app/ü*%".to_owned();
        r.role = "targets/rel eases".to_owned();
        let line = r.encode().unwrap();
        assert!(line.contains(" localhost:5000/my%20app/%C3%BC%2A%25 targets/rel%20eases "));
        assert_eq!(LeafRecord::decode(line.as_bytes()).unwrap(), r);
        r.gun = "a\nb".to_owned();
        assert_eq!(
            LeafRecord::decode(r.encode().unwrap().as_bytes()).unwrap(),
            r
        );
    }

    #[test]
    fn subseconds_are_dropped() {
        let t = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .unwrap()
            .with_nanosecond(123_456_789)
            .unwrap();
        let r = LeafRecord::for_metadata("g", "root", 1, b"", t);
        assert_eq!(r.time.nanosecond(), 0);
        assert!(r.encode().unwrap().ends_with(" 0 2026-01-02T03:04:05Z\n"));
    }

    #[test]
    fn non_canonical_lines_are_refused() {
        let good = sample().encode().unwrap();
        let variants = [
            good.replace(" 3 ", " 03 "),
            good.replace(" 13 ", " +13 "),
            good.replace("Z\n", "+00:00\n"),
            good.replace("01Z\n", "01.000Z\n"),
            good.replace("library", "%6Cibrary"),
            good.to_uppercase(),
            good.replace(" targets ", "  targets "),
            good.trim_end().to_owned(),
            good.clone() + "\n",
            good.replace("notary-tlog-leaf/v1", "notary-tlog-leaf/v2"),
            good.replace(" targets ", " "),
            good.replace("docker.io/library/alpine", ""),
        ];
        for v in variants {
            assert!(LeafRecord::decode(v.as_bytes()).is_err(), "accepted {v:?}");
        }
        let mut lower = sample();
        lower.gun = "a b".to_owned();
        let line = lower.encode().unwrap();
        assert!(LeafRecord::decode(line.replace("%20", "%2a").as_bytes()).is_err());
    }

    #[test]
    fn empty_names_and_far_years_are_refused() {
        let mut r = sample();
        r.gun.clear();
        assert_eq!(r.encode(), Err(RecordError::Empty("GUN")));
        let mut r = sample();
        r.role.clear();
        assert_eq!(r.encode(), Err(RecordError::Empty("role")));
        let mut r = sample();
        r.time = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
        assert!(matches!(r.encode(), Err(RecordError::TimeOutOfRange(_))));
    }
}
