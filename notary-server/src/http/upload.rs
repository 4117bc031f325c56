//! Parsing of the multipart body of `POST /v2/{gun}/_trust/tuf/` (spec §6.1, §6.2).
//!
//! Crate choice: `multer`. It takes the boundary from us, so both
//! `multipart/form-data` and `multipart/mixed` work (as in Go); it does not
//! require a form field `name` (Go ignores it, actix-multipart refuses form-data
//! parts without one); and `Field::file_name` is the raw `filename` parameter,
//! without the directory stripping some libraries do, so delegation names such
//! as `targets/releases` survive.

use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use actix_web::HttpRequest;
use std::collections::HashMap;

use futures_util::StreamExt;
use notary_tuf::bounded::{Budget, Skip};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::config::{DEFAULT_MAX_UPLOAD_DELEGATIONS, DEFAULT_MAX_UPLOAD_PARTS};
use crate::http::error::ApiError;

/// One uploaded metadata file: the role (from the part's filename) and the exact
/// bytes of the part.
pub type Part = (String, Vec<u8>);

/// The boundary of a `multipart/form-data` or `multipart/mixed` request, or
/// `MALFORMED_UPLOAD` (Go's `Request.MultipartReader` accepts exactly these two).
pub fn multipart_boundary(req: &HttpRequest) -> Result<String, ApiError> {
    let mime: actix_web::mime::Mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or(ApiError::MalformedUpload)?;
    let subtype_ok = mime.type_() == actix_web::mime::MULTIPART
        && matches!(mime.subtype().as_str(), "form-data" | "mixed");
    let boundary = mime
        .get_param(actix_web::mime::BOUNDARY)
        .map(|b| b.as_str().to_owned())
        .unwrap_or_default();
    if !subtype_ok || boundary.is_empty() {
        return Err(ApiError::MalformedUpload);
    }
    Ok(boundary)
}

/// Reads a request body of at most `limit` bytes; more gives `REQUEST_TOO_LARGE`.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: actix_web::web::Payload,
    limit: u64,
) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::RequestTooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| {
            tracing::info!(error = %err, "400 POST unable to read request body");
            ApiError::MalformedUpload
        })?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::RequestTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Per-upload limits of [`parse_parts`] (`server.max_upload_parts`,
/// `server.max_upload_delegations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Most parts in one body, repeated roles included.
    pub max_parts: usize,
    /// Most distinct delegation roles (`targets/...`) in one body.
    pub max_delegations: usize,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            max_parts: DEFAULT_MAX_UPLOAD_PARTS,
            max_delegations: DEFAULT_MAX_UPLOAD_DELEGATIONS,
        }
    }
}

/// The body goes to the multipart parser in slices of this size (no copy): fed as one
/// chunk, the parser would copy the whole body into its own buffer.
const FEED_CHUNK: usize = 64 * 1024;

/// Splits a multipart body into `(role, bytes)` parts, applying the checks of
/// spec §6.2 in order, per part: filename present, role valid, JSON decodable.
/// A broken multipart stream is `MALFORMED_UPLOAD`. When a role appears twice
/// the last part wins; the result lists each role once, in the order of its last part.
/// More than `limits.max_parts` parts is `TOO_MANY_PARTS`, more than
/// `limits.max_delegations` distinct delegation roles `TOO_MANY_DELEGATIONS`, a part with
/// more JSON values than its size allows `TOO_MANY_JSON_VALUES`; each is refused as soon as
/// it is seen, before the rest of the body is parsed.
pub async fn parse_parts(
    boundary: &str,
    body: Bytes,
    limits: UploadLimits,
) -> Result<Vec<Part>, ApiError> {
    let len = body.len();
    let chunks = (0..len)
        .step_by(FEED_CHUNK)
        .map(move |at| Ok::<Bytes, std::io::Error>(body.slice(at..len.min(at + FEED_CHUNK))));
    let mut multipart =
        multer::Multipart::new(futures_util::stream::iter(chunks), boundary.to_owned());
    // Slot of a role's latest part, so a repeated role replaces it in constant time (a
    // scan per part made a body of many small parts quadratic). Replaced slots become
    // `None` and are dropped at the end, which keeps the order of last parts.
    let mut slots: Vec<Option<Part>> = Vec::new();
    let mut latest: HashMap<String, usize> = HashMap::new();
    let mut delegations = 0usize;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => {
                tracing::info!(error = %err, "400 POST broken multipart body");
                return Err(ApiError::MalformedUpload);
            }
        };
        if slots.len() >= limits.max_parts {
            tracing::info!(limit = limits.max_parts, "413 POST too many parts");
            return Err(ApiError::TooManyParts {
                limit: limits.max_parts,
            });
        }
        let filename = field.file_name().unwrap_or_default();
        let role = filename
            .strip_suffix(".json")
            .unwrap_or(filename)
            .to_owned();
        if role.is_empty() {
            tracing::info!("400 POST empty role");
            return Err(ApiError::NoFilename);
        }
        if !valid_role(&role) {
            tracing::info!(%role, "400 POST invalid role");
            return Err(ApiError::InvalidRole(role));
        }
        let data = field.bytes().await.map_err(|err| {
            tracing::info!(error = %err, "400 POST broken multipart body");
            ApiError::MalformedUpload
        })?;
        check_signed_meta(&role, &data)?;
        match latest.insert(role.clone(), slots.len()) {
            Some(earlier) => slots[earlier] = None,
            None if role.starts_with("targets/") => {
                delegations += 1;
                if delegations > limits.max_delegations {
                    tracing::info!(
                        limit = limits.max_delegations,
                        "413 POST too many delegations"
                    );
                    return Err(ApiError::TooManyDelegations {
                        limit: limits.max_delegations,
                    });
                }
            }
            None => {}
        }
        slots.push(Some((role, Vec::from(data))));
    }
    Ok(slots.into_iter().flatten().collect())
}

/// `data.ValidRole` (spec §2.2): a base role, or `targets/...` made of
/// `[-a-z0-9_/]`, shorter than 256 bytes and path-clean.
pub fn valid_role(role: &str) -> bool {
    if matches!(role, "root" | "targets" | "snapshot" | "timestamp") {
        return true;
    }
    let Some(rest) = role.strip_prefix("targets/") else {
        return false;
    };
    role.len() < 256
        && role
            .bytes()
            .all(|b| matches!(b, b'-' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'/'))
        // Only `[-a-z0-9_/]` is allowed, so "clean" reduces to: no empty segment.
        && rest.split('/').all(|seg| !seg.is_empty())
}

/// Checks a part against the shape Go decodes it into (`data.SignedMeta`): unknown
/// members are ignored, `null` and missing members are allowed, but present members must
/// have the right JSON type: `signed` an object with string `_type`, RFC 3339 `expires` and
/// integer `version`; `signatures` an array of objects with string `keyid` and `method` and
/// standard-base64 `sig`. Member names match case-insensitively and every member whose name
/// matches is checked, as Go decodes each of them. Only the first JSON value of the part is
/// read, as Go's streaming decoder does.
///
/// The check streams: nothing of the part is kept, and the part may hold at most
/// [`notary_tuf::bounded::max_json_values`] values (`TOO_MANY_JSON_VALUES`), so that the decode into a
/// `Value` later (`SignedFile::parse`) stays within a small multiple of the part's size.
fn check_signed_meta(role: &str, data: &[u8]) -> Result<(), ApiError> {
    let budget = Budget::for_file(data.len());
    let mut de = serde_json::Deserializer::from_slice(data);
    match Shape::Meta.seed(&budget).deserialize(&mut de) {
        Ok(()) => Ok(()),
        Err(_) if budget.exceeded() => {
            tracing::info!(%role, limit = budget.limit(), "413 POST too many JSON values");
            Err(ApiError::TooManyJsonValues {
                role: role.to_owned(),
                limit: budget.limit(),
            })
        }
        Err(err) => {
            tracing::info!(%role, error = %err, "400 POST malformed update JSON");
            Err(ApiError::MalformedJson)
        }
    }
}

/// What a JSON value must be (each also accepts `null`).
#[derive(Clone, Copy)]
enum Shape {
    /// The envelope.
    Meta,
    /// `signed`.
    Signed,
    /// `signatures`.
    Signatures,
    /// One entry of `signatures`.
    Signature,
    /// A string.
    Str,
    /// An RFC 3339 string.
    Time,
    /// A standard base64 string.
    Base64,
    /// An integer that fits `i64`.
    Int,
}

impl Shape {
    fn seed(self, budget: &Budget) -> Check<'_> {
        Check {
            shape: self,
            budget,
        }
    }

    /// The checked members of an object of this shape.
    fn members(self) -> &'static [(&'static str, Shape)] {
        match self {
            Shape::Meta => &[("signed", Shape::Signed), ("signatures", Shape::Signatures)],
            Shape::Signed => &[
                ("_type", Shape::Str),
                ("expires", Shape::Time),
                ("version", Shape::Int),
            ],
            Shape::Signature => &[
                ("keyid", Shape::Str),
                ("method", Shape::Str),
                ("sig", Shape::Base64),
            ],
            _ => &[],
        }
    }
}

/// Streaming check of one value against a [`Shape`].
#[derive(Clone, Copy)]
struct Check<'b> {
    shape: Shape,
    budget: &'b Budget,
}

impl<'de> DeserializeSeed<'de> for Check<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("signed metadata")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.budget.take()
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.budget.take()?;
        Err(E::custom("unexpected bool"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.budget.take()?;
        match self.shape {
            Shape::Int => Ok(()),
            _ => Err(E::custom("unexpected number")),
        }
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<(), E> {
        self.budget.take()?;
        match self.shape {
            Shape::Int if i64::try_from(n).is_ok() => Ok(()),
            _ => Err(E::custom("unexpected number")),
        }
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.budget.take()?;
        Err(E::custom("unexpected number"))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.budget.take()?;
        let ok = match self.shape {
            Shape::Str => true,
            Shape::Time => is_rfc3339(s),
            Shape::Base64 => is_std_base64(s),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(E::custom("unexpected string"))
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.budget.take()?;
        if !matches!(self.shape, Shape::Signatures) {
            return Err(de::Error::custom("unexpected array"));
        }
        while seq
            .next_element_seed(Shape::Signature.seed(self.budget))?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.budget.take()?;
        let members = self.shape.members();
        if members.is_empty() {
            return Err(de::Error::custom("unexpected object"));
        }
        while let Some(matched) = map.next_key_seed(MemberName {
            members,
            budget: self.budget,
        })? {
            match matched {
                Some(shape) => map.next_value_seed(shape.seed(self.budget))?,
                None => map.next_value_seed(Skip(self.budget))?,
            }
        }
        Ok(())
    }
}

/// A member name: the shape of the checked member it names (case-insensitively), if any.
struct MemberName<'b> {
    members: &'static [(&'static str, Shape)],
    budget: &'b Budget,
}

impl<'de> DeserializeSeed<'de> for MemberName<'_> {
    type Value = Option<Shape>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Shape>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MemberName<'_> {
    type Value = Option<Shape>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Option<Shape>, E> {
        self.budget.take()?;
        Ok(self
            .members
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, shape)| *shape))
    }
}

fn is_rfc3339(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

fn is_std_base64(s: &str) -> bool {
    use base64::Engine as _;
    // Go's decoder skips CR/LF inside base64 strings.
    let s: String = s.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    base64::engine::general_purpose::STANDARD.decode(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#"{"signed":{"_type":"Root","expires":"2030-01-01T00:00:00Z","version":1},"signatures":[{"keyid":"ab","method":"ecdsa","sig":"AAEC"}]}"#;

    fn body(parts: &[(&str, &str)]) -> Bytes {
        let mut b = String::new();
        for (cd, data) in parts {
            b.push_str("--XyZ\r\n");
            b.push_str(&format!("Content-Disposition: {cd}\r\n"));
            b.push_str("Content-Type: application/octet-stream\r\n\r\n");
            b.push_str(data);
            b.push_str("\r\n");
        }
        b.push_str("--XyZ--\r\n");
        Bytes::from(b)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn parse(parts: &[(&str, &str)]) -> Result<Vec<Part>, ApiError> {
        block_on(parse_parts("XyZ", body(parts), UploadLimits::default()))
    }

    #[test]
    fn delegation_filename_is_kept_whole_and_json_suffix_dropped() {
        let parts = parse(&[
            (
                r#"form-data; name="files"; filename="targets/releases""#,
                META,
            ),
            (r#"form-data; name="whatever"; filename="root.json""#, META),
        ])
        .unwrap();
        let roles: Vec<&str> = parts.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(roles, ["targets/releases", "root"]);
        assert_eq!(parts[0].1, META.as_bytes());
    }

    #[test]
    fn last_part_of_a_role_wins() {
        let other = META.replace("\"version\":1", "\"version\":2");
        let parts = parse(&[
            (r#"form-data; name="files"; filename="root""#, META),
            (r#"form-data; name="files"; filename="root""#, &other),
        ])
        .unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].1, other.as_bytes());
    }

    /// Issue 13 (2): deduplication keeps what the quadratic `retain` kept: one part per
    /// role, the last one, in the order of each role's last part.
    #[test]
    fn repeated_roles_keep_the_order_of_their_last_parts() {
        let v = |n: u8| META.replace("\"version\":1", &format!("\"version\":{n}"));
        let (v1, v2, v3, v4, v5) = (v(1), v(2), v(3), v(4), v(5));
        let parts = parse(&[
            (r#"form-data; filename="root""#, &v1),
            (r#"form-data; filename="targets""#, &v2),
            (r#"form-data; filename="root""#, &v3),
            (r#"form-data; filename="targets/a""#, &v4),
            (r#"form-data; filename="targets.json""#, &v5),
        ])
        .unwrap();
        let got: Vec<(&str, &[u8])> = parts
            .iter()
            .map(|(r, d)| (r.as_str(), d.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                ("root", v3.as_bytes()),
                ("targets/a", v4.as_bytes()),
                ("targets", v5.as_bytes())
            ]
        );
    }

    /// Issue 13 (2): the part after the limit is refused, whether it repeats a role or not;
    /// distinct delegation roles have their own limit (repeats and base roles don't count).
    #[test]
    fn part_and_delegation_limits() {
        let limits = UploadLimits {
            max_parts: 4,
            max_delegations: 2,
        };
        let run = |roles: &[&str]| {
            let cds: Vec<String> = roles
                .iter()
                .map(|r| format!(r#"form-data; filename="{r}""#))
                .collect();
            let parts: Vec<(&str, &str)> = cds.iter().map(|cd| (cd.as_str(), META)).collect();
            block_on(parse_parts("XyZ", body(&parts), limits))
        };
        assert_eq!(run(&["root"; 4]).map(|p| p.len()), Ok(1));
        assert_eq!(run(&["root"; 5]), Err(ApiError::TooManyParts { limit: 4 }));
        // The limit is checked before the part: even a part with a bad role is not read.
        assert_eq!(
            run(&["root", "root", "root", "root", "bad"]),
            Err(ApiError::TooManyParts { limit: 4 })
        );
        assert_eq!(
            run(&["targets/a", "targets/b", "targets/a", "root"]).map(|p| p.len()),
            Ok(3)
        );
        assert_eq!(
            run(&["targets/a", "targets/b", "targets/c"]),
            Err(ApiError::TooManyDelegations { limit: 2 })
        );
    }

    /// Issue 13 (3): the JSON check streams and counts values; a part denser than one value
    /// per 8 bytes (plus 4096) is refused, naming its role and limit.
    #[test]
    fn dense_parts_are_refused_while_streaming() {
        let zeros = vec!["0"; 20_000].join(",");
        let dense = format!(r#"{{"signed":{{"version":1,"x":[{zeros}]}}}}"#);
        assert_eq!(
            parse(&[(r#"form-data; filename="targets""#, &dense)]),
            Err(ApiError::TooManyJsonValues {
                role: "targets".into(),
                limit: dense.len() / 8 + 4096
            })
        );
        let sparse = format!(
            r#"{{"signed":{{"version":1,"x":"{}"}}}}"#,
            "0,".repeat(20_000)
        );
        assert!(parse(&[(r#"form-data; filename="targets""#, &sparse)]).is_ok());
    }

    #[test]
    fn missing_or_empty_filename() {
        assert_eq!(
            parse(&[(r#"form-data; name="files""#, META)]),
            Err(ApiError::NoFilename)
        );
        assert_eq!(
            parse(&[(r#"form-data; name="files"; filename="""#, META)]),
            Err(ApiError::NoFilename)
        );
        assert_eq!(
            parse(&[(r#"form-data; name="files"; filename=".json""#, META)]),
            Err(ApiError::NoFilename)
        );
    }

    #[test]
    fn invalid_role_has_the_name() {
        assert_eq!(
            parse(&[(r#"form-data; filename="foo""#, META)]),
            Err(ApiError::InvalidRole("foo".into()))
        );
    }

    #[test]
    fn checks_run_in_order_per_part() {
        // Part 1 is fine; part 2 has a bad role and bad JSON: the role wins.
        assert_eq!(
            parse(&[
                (r#"form-data; filename="root""#, META),
                (r#"form-data; filename="Targets""#, "nope"),
            ]),
            Err(ApiError::InvalidRole("Targets".into()))
        );
    }

    #[test]
    fn malformed_json_variants() {
        for bad in [
            "",
            "nope",
            "[]",
            r#"{"signed":[]}"#,
            r#"{"signed":{"version":"1"}}"#,
            r#"{"signed":{"version":1.5}}"#,
            r#"{"signed":{"expires":"tomorrow"}}"#,
            r#"{"signed":{"_type":5}}"#,
            r#"{"signatures":[{"sig":"***"}]}"#,
            r#"{"signatures":{}}"#,
            r#"{"signatures":[[]]}"#,
            r#"{"Signed":{"Version":"x"}}"#,
            // Go decodes every member whose name matches, so each must have the right type.
            r#"{"signed":{"version":1},"SIGNED":5}"#,
            r#"{"signed":{"version":1,"VERSION":true}}"#,
            "true",
            "5",
            r#"{"signatures":[{"keyid":1}]}"#,
            r#"{"signed":{"version":18446744073709551615}}"#,
        ] {
            assert_eq!(
                parse(&[(r#"form-data; filename="root""#, bad)]),
                Err(ApiError::MalformedJson),
                "{bad}"
            );
        }
        for good in [
            "{}",
            "null",
            r#"{"signed":null,"extra":1}"#,
            "{} trailing",
            r#"{"signed":{"_type":null,"version":-3},"signatures":[null,{"sig":"AA==\n"}]}"#,
            r#"{"other":[1,{"a":[true,null,1.5]}],"signed":{"_type":"Root","x":{}},"signatures":[]}"#,
            r#"{"signed":{"version":9223372036854775807,"expires":null},"sigNatures":null}"#,
        ] {
            assert!(
                parse(&[(r#"form-data; filename="root""#, good)]).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn garbage_is_malformed_upload() {
        let garbage = Bytes::from_static(b"\x00\x01 this is not multipart at all");
        assert_eq!(
            block_on(parse_parts("XyZ", garbage, UploadLimits::default())),
            Err(ApiError::MalformedUpload)
        );
        let truncated = Bytes::from(format!(
            "--XyZ\r\nContent-Disposition: form-data; filename=\"root\"\r\n\r\n{META}"
        ));
        assert_eq!(
            block_on(parse_parts("XyZ", truncated, UploadLimits::default())),
            Err(ApiError::MalformedUpload)
        );
    }

    #[test]
    fn role_validity() {
        for ok in [
            "root",
            "targets",
            "snapshot",
            "timestamp",
            "targets/a",
            "targets/a-b_c/0",
        ] {
            assert!(valid_role(ok), "{ok}");
        }
        let long = format!("targets/{}", "a".repeat(248));
        assert_eq!(long.len(), 256);
        for bad in [
            "",
            "foo",
            "targets/",
            "targets//a",
            "targets/a/",
            "targets/A",
            "targets/a.b",
            &long,
        ] {
            assert!(!valid_role(bad), "{bad}");
        }
        assert!(valid_role(&long[..255]));
    }
}
