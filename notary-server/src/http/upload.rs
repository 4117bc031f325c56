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
use futures_util::StreamExt;
use serde_json::{Map, Value};

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

/// Splits a multipart body into `(role, bytes)` parts, applying the checks of
/// spec §6.2 in order, per part: filename present, role valid, JSON decodable.
/// A broken multipart stream is `MALFORMED_UPLOAD`. When a role appears twice
/// the last part wins.
pub async fn parse_parts(boundary: &str, body: Bytes) -> Result<Vec<Part>, ApiError> {
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary.to_owned());
    let mut parts: Vec<Part> = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => {
                tracing::info!(error = %err, "400 POST broken multipart body");
                return Err(ApiError::MalformedUpload);
            }
        };
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
        if !decodes_as_signed_meta(&data) {
            tracing::info!(%role, "400 POST malformed update JSON");
            return Err(ApiError::MalformedJson);
        }
        parts.retain(|(r, _)| *r != role);
        parts.push((role, data.to_vec()));
    }
    Ok(parts)
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

/// The shape Go decodes each part into (`data.SignedMeta`): unknown members are
/// ignored, `null` and missing members are allowed, but present members must have
/// the right JSON type: `signed` an object with string `_type`, RFC 3339
/// `expires` and integer `version`; `signatures` an array of objects with string
/// `keyid` and `method` and standard-base64 `sig`. Member names match
/// case-insensitively, as in Go. Only the first JSON value of the part is
/// decoded, as Go's streaming decoder does.
fn decodes_as_signed_meta(data: &[u8]) -> bool {
    let Some(Ok(value)) = serde_json::Deserializer::from_slice(data)
        .into_iter::<Value>()
        .next()
    else {
        return false;
    };
    object_with(&value, |meta| {
        member(meta, "signed", |signed| {
            object_with(signed, |s| {
                member(s, "_type", Value::is_string)
                    && member(s, "expires", |e| e.as_str().is_some_and(is_rfc3339))
                    && member(s, "version", |v| v.as_i64().is_some())
            })
        }) && member(meta, "signatures", |sigs| {
            sigs.as_array().is_some_and(|items| {
                items.iter().all(|sig| {
                    object_with(sig, |g| {
                        member(g, "keyid", Value::is_string)
                            && member(g, "method", Value::is_string)
                            && member(g, "sig", |b| b.as_str().is_some_and(is_std_base64))
                    })
                })
            })
        })
    })
}

/// `null`, or an object satisfying `check`.
fn object_with(v: &Value, check: impl Fn(&Map<String, Value>) -> bool) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => check(m),
        _ => false,
    }
}

/// A member that is absent or `null`, or that satisfies `check`. The name is
/// matched exactly first, then case-insensitively.
fn member(m: &Map<String, Value>, name: &str, check: impl Fn(&Value) -> bool) -> bool {
    let found = m.get(name).or_else(|| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    });
    match found {
        None | Some(Value::Null) => true,
        Some(v) => check(v),
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
        block_on(parse_parts("XyZ", body(parts)))
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
            block_on(parse_parts("XyZ", garbage)),
            Err(ApiError::MalformedUpload)
        );
        let truncated = Bytes::from(format!(
            "--XyZ\r\nContent-Disposition: form-data; filename=\"root\"\r\n\r\n{META}"
        ));
        assert_eq!(
            block_on(parse_parts("XyZ", truncated)),
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
