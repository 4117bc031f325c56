//! Conditional GETs and gzip for metadata responses (routes 3, 4 and 5 of spec §2.1).
//!
//! The bytes of a metadata file are never changed; only how they travel:
//!
//! - **ETag.** Every successful metadata response carries a strong
//!   `ETag: "<sha256 hex of the stored bytes>"`, or `"<sha256>-gzip"` for the gzip
//!   variant, so that caches never mix the two encodings.
//! - **`If-None-Match`** (RFC 9110 §13.1.2): a list of entity tags or `*`, compared weakly
//!   (`W/"x"` matches `"x"`) against the ETag of the variant the request would get. A match
//!   answers `304 Not Modified` without a body and with the ETag, `Vary`, `Cache-Control`,
//!   `Pragma` and `Last-Modified` headers the 200 would have had. `If-Modified-Since` is
//!   not evaluated (RFC 9110 lets a server ignore it; `If-None-Match` wins over it anyway).
//! - **gzip** (RFC 9110 §12.5.3): a file of at least [`GZIP_MIN_BYTES`] goes out with
//!   `Content-Encoding: gzip` when the request's `Accept-Encoding` accepts gzip (q-values,
//!   `identity`, `*` and `x-gzip` understood; see [`accepts_gzip`]). Go's HTTP client (the
//!   notary and docker CLIs) sends `Accept-Encoding: gzip` by itself and decompresses
//!   transparently. Each file is compressed once, not per request: the compressed bytes are
//!   kept next to the file in the store's cache ([`crate::cache::MetaCache::gzip`]). A
//!   store without a cache, a file the cache does not hold, or one that another request
//!   is compressing at that moment goes out uncompressed.
//! - `Vary: Accept-Encoding` is on every successful metadata response, compressed or not.
//!
//! HEAD is not routed to metadata (spec §2.1, row 13: it gets the catch-all 404), so these
//! rules apply to GET only.

use std::io::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use chrono::{DateTime, Utc};

use crate::cache::GzipVariant;
use crate::http::handlers::cache_headers;
use crate::http::routes::CachePolicy;
use crate::http::AppState;
use crate::storage::StoredFile;

/// Files smaller than this are always sent as they are: below about 1 KiB gzip saves a
/// few hundred bytes at most, less than it costs.
pub const GZIP_MIN_BYTES: usize = 1024;

/// Suffix (inside the quotes) of the gzip variant's entity tag.
const GZIP_ETAG_SUFFIX: &str = "-gzip";

/// The strong entity tag of a file with this sha256 (hex) in one encoding, quotes included.
pub fn etag(sha256: &str, gzip: bool) -> String {
    let suffix = if gzip { GZIP_ETAG_SUFFIX } else { "" };
    format!("\"{sha256}{suffix}\"")
}

/// Whether the request's `If-None-Match` fields match `etag` (an entity tag with its
/// quotes, as from [`etag`]) by weak comparison, or are `*` (the file exists). A field that
/// does not parse matches nothing from the first bad element on (the request then gets a
/// full answer, which is always safe).
pub fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    let opaque = etag.trim_start_matches("W/").as_bytes();
    headers
        .get_all(header::IF_NONE_MATCH)
        .any(|value| list_matches(value.as_bytes(), opaque))
}

/// One `If-None-Match` field value: `*` or `1#entity-tag`, where
/// `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE` and `etagc` may include commas.
fn list_matches(mut s: &[u8], opaque: &[u8]) -> bool {
    loop {
        // Empty list elements and whitespace between them are allowed (RFC 9110 §5.6.1).
        while let [b' ' | b'\t' | b',', rest @ ..] = s {
            s = rest;
        }
        match s {
            [] => return false,
            [b'*', ..] => return true,
            _ => {}
        }
        let tag_start = s;
        if let [b'W', b'/', rest @ ..] = s {
            s = rest;
        }
        let [b'"', rest @ ..] = s else {
            return false;
        };
        let Some(end) = rest.iter().position(|&b| b == b'"') else {
            return false;
        };
        // `opaque` and the parsed tag both still have their quotes.
        let tag = &tag_start[tag_start.len() - rest.len() - 1..][..end + 2];
        s = &rest[end + 1..];
        while let [b' ' | b'\t', rest @ ..] = s {
            s = rest;
        }
        if !matches!(s, [] | [b',', ..]) {
            return false;
        }
        if tag == opaque {
            return true;
        }
    }
}

/// Whether a request with these headers prefers gzip to the identity encoding
/// (RFC 9110 §12.5.3). The q-value of gzip is that of a `gzip` (or `x-gzip`) element, else
/// that of `*`, else 0. Gzip is chosen when that is above 0 and not below the q-value
/// stated for `identity` (explicitly or through `*`); an `identity` nobody mentions is
/// acceptable but not preferred. No `Accept-Encoding` at all, or an empty one, means
/// identity. Elements that do not parse are ignored.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut gzip, mut identity, mut any) = (None::<u16>, None::<u16>, None::<u16>);
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for element in value.split(',') {
            let mut parts = element.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            if coding.is_empty() {
                continue;
            }
            let Some(q) = qvalue(parts) else { continue };
            let slot =
                if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                    &mut gzip
                } else if coding.eq_ignore_ascii_case("identity") {
                    &mut identity
                } else if coding == "*" {
                    &mut any
                } else {
                    continue;
                };
            // A coding listed twice counts with its best q-value.
            *slot = Some(slot.map_or(q, |old| old.max(q)));
        }
    }
    let gzip = gzip.or(any).unwrap_or(0);
    gzip > 0 && identity.or(any).is_none_or(|identity| gzip >= identity)
}

/// The q-value (in thousandths) among an element's parameters: 1000 when absent, `None`
/// when malformed. `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
fn qvalue<'a>(params: impl Iterator<Item = &'a str>) -> Option<u16> {
    let mut q = 1000;
    for param in params {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("q") {
            continue;
        }
        let value = value.trim();
        let (int, frac) = value.split_once('.').unwrap_or((value, ""));
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let thousandths = frac
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
        q = match int {
            "0" => thousandths,
            "1" if thousandths == 0 => 1000,
            _ => return None,
        };
    }
    Some(q)
}

/// `data` gzipped (best compression: each file is compressed once), or `None` when that is
/// not smaller than `data`.
pub fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::best(),
    );
    // Writing to a Vec cannot fail.
    encoder.write_all(data).ok()?;
    let compressed = encoder.finish().ok()?;
    (compressed.len() < data.len()).then_some(compressed)
}

/// Lets shared bytes be a response body without copying them.
struct Shared<T>(T);

impl AsRef<[u8]> for Shared<Arc<StoredFile>> {
    fn as_ref(&self) -> &[u8] {
        &self.0.data
    }
}

impl AsRef<[u8]> for Shared<Arc<[u8]>> {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Bodies larger than this go out in slices of this size (see [`Sliced`]).
const BODY_SLICE: usize = 64 * 1024;

/// A body handed to actix in slices of [`BODY_SLICE`] bytes, with its full length as
/// `Content-Length`. actix copies every polled chunk into the connection's write buffer
/// and polls the next one only when that buffer has drained; one whole-file chunk would put
/// a copy of the file in every connection downloading it (32 downloads of a 9 MB
/// `targets.json`: about 300 MB). The slices share the stored bytes.
struct Sliced {
    bytes: Bytes,
    sent: usize,
}

impl MessageBody for Sliced {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.bytes.len() as u64)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.sent >= this.bytes.len() {
            return Poll::Ready(None);
        }
        let end = (this.sent + BODY_SLICE).min(this.bytes.len());
        let slice = this.bytes.slice(this.sent..end);
        this.sent = end;
        Poll::Ready(Some(Ok(slice)))
    }
}

/// `bytes` as a response body: whole when small, [`Sliced`] when large.
fn body(builder: &mut HttpResponseBuilder, bytes: Bytes) -> HttpResponse {
    if bytes.len() > BODY_SLICE {
        builder.body(Sliced { bytes, sent: 0 })
    } else {
        builder.body(bytes)
    }
}

/// The answer to a metadata GET for `file` (of `gun`, non-empty): 200 with the stored bytes
/// (gzipped when negotiated) or 304, with the cache headers of spec §3.2 (`modified` as
/// `Last-Modified`), `ETag` and `Vary`.
pub(super) async fn respond(
    req: &HttpRequest,
    state: &AppState,
    gun: &str,
    file: Arc<StoredFile>,
    modified: DateTime<Utc>,
    policy: CachePolicy,
) -> HttpResponse {
    let headers = req.headers();
    if file.data.len() >= GZIP_MIN_BYTES && accepts_gzip(headers) {
        let tag = etag(&file.sha256, true);
        if if_none_match(headers, &tag) {
            return not_modified(state, policy, modified, tag);
        }
        if let Some(gz) = gzip_variant(state, gun, &file).await {
            let mut builder = ok(state, policy, modified, tag);
            builder.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")));
            return body(&mut builder, Bytes::from_owner(Shared(gz)));
        }
    }
    let tag = etag(&file.sha256, false);
    if if_none_match(headers, &tag) {
        return not_modified(state, policy, modified, tag);
    }
    body(
        &mut ok(state, policy, modified, tag),
        Bytes::from_owner(Shared(file)),
    )
}

/// The remembered gzip variant of `file`, compressing it now if this request is the first
/// to ask; `None`: serve the identity encoding.
async fn gzip_variant(state: &AppState, gun: &str, file: &Arc<StoredFile>) -> Option<Arc<[u8]>> {
    let cache = state.store.cache()?;
    match cache.gzip(gun, file) {
        GzipVariant::Ready(gz) => Some(gz),
        GzipVariant::NotSmaller | GzipVariant::Unavailable => None,
        GzipVariant::Claimed(claim) => {
            // Tens of milliseconds for megabytes: off the actix worker. If this request is
            // dropped meanwhile, the claim is released and a later request compresses.
            let data = file.clone();
            let compressed = tokio::task::spawn_blocking(move || gzip(&data.data))
                .await
                .ok()?;
            claim.complete(compressed)
        }
    }
}

/// Headers shared by 200 and 304.
fn with_common(
    mut builder: HttpResponseBuilder,
    state: &AppState,
    policy: CachePolicy,
    modified: DateTime<Utc>,
    tag: String,
) -> HttpResponseBuilder {
    for (name, value) in cache_headers(policy, state, modified) {
        builder.insert_header((name, value));
    }
    builder
        .insert_header((header::ETAG, tag))
        .insert_header((header::VARY, HeaderValue::from_static("Accept-Encoding")));
    builder
}

fn ok(
    state: &AppState,
    policy: CachePolicy,
    modified: DateTime<Utc>,
    tag: String,
) -> HttpResponseBuilder {
    let mut builder = with_common(HttpResponse::Ok(), state, policy, modified, tag);
    builder.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    builder
}

fn not_modified(
    state: &AppState,
    policy: CachePolicy,
    modified: DateTime<Utc>,
    tag: String,
) -> HttpResponse {
    with_common(HttpResponse::NotModified(), state, policy, modified, tag).finish()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use actix_web::http::header::HeaderName;

    use super::*;

    fn headers(name: HeaderName, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(name.clone(), HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn inm(values: &[&str], tag: &str) -> bool {
        if_none_match(&headers(header::IF_NONE_MATCH, values), tag)
    }

    fn ae(values: &[&str]) -> bool {
        accepts_gzip(&headers(header::ACCEPT_ENCODING, values))
    }

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn etags_are_strong_and_differ_by_encoding() {
        assert_eq!(etag(SHA, false), format!("\"{SHA}\""));
        assert_eq!(etag(SHA, true), format!("\"{SHA}-gzip\""));
    }

    #[test]
    fn if_none_match_lists_star_and_weak_tags() {
        let tag = etag(SHA, false);
        assert!(inm(&[&tag], &tag));
        assert!(inm(&["*"], &tag));
        assert!(inm(&[" * "], &tag));
        assert!(inm(&[&format!("W/{tag}")], &tag), "weak comparison");
        assert!(inm(&[&format!("\"a\", W/\"b\" ,{tag}")], &tag));
        assert!(inm(&[&format!(",, \"a\",\t{tag},")], &tag));
        assert!(inm(&["\"a\"", &tag], &tag), "several fields");
        assert!(inm(&["\"x,y\", \"a\"", &tag], &tag));
        // Commas may appear inside an entity tag.
        assert!(inm(&["\"x,y\""], "\"x,y\""));
        assert!(!inm(&["\"x\", \"y\""], "\"x,y\""));

        assert!(!inm(&[], &tag));
        assert!(!inm(&[""], &tag));
        assert!(!inm(&[SHA], &tag), "unquoted");
        assert!(!inm(&[&format!("w/{tag}")], &tag), "W/ is case-sensitive");
        assert!(!inm(&[&etag(SHA, true)], &tag), "other encoding");
        assert!(!inm(&[&tag], &etag(SHA, true)));
        assert!(!inm(&[&format!("\"{}\"", &SHA[1..])], &tag));
        assert!(!inm(&[&format!("\"{SHA}")], &tag), "unterminated");
        assert!(!inm(&[&format!("{tag}x")], &tag), "junk after the tag");
        // Parsing stops at the first bad element.
        assert!(!inm(&[&format!("bad, {tag}")], &tag));
        assert!(inm(&["bad", &tag], &tag), "another field still counts");
        // A weak ETag of ours (not sent, but well-formed) compares weakly too.
        assert!(inm(&[&tag], &format!("W/{tag}")));
    }

    #[test]
    fn accept_encoding_negotiation() {
        for yes in [
            &["gzip"][..],
            &["GZIP"],
            &["x-gzip"],
            &["gzip, deflate, br"],
            &["br;q=1.0, gzip;q=0.8, *;q=0.1"],
            &["*"],
            &["gzip;q=0.001"],
            &["gzip; q=1"],
            &["gzip;Q=0.5"],
            &["identity;q=0, gzip"],
            &["identity;q=0.5, gzip;q=0.5"],
            &["deflate", "gzip"],
            &["gzip;q=0, gzip;q=0.3"],
            &["*;q=0.5, identity;q=0.2"],
            &[" , gzip ,"],
        ] {
            assert!(ae(yes), "{yes:?}");
        }
        for no in [
            &[][..],
            &[""],
            &["identity"],
            &["deflate, br"],
            &["gzip;q=0"],
            &["gzip;q=0.0"],
            &["gzip;q=0.000"],
            &["GZIP;q=0, *"],
            &["*;q=0"],
            &["gzip;q=0.5, identity"],
            &["gzip;q=0.5, *"],
            &["gzip;q=2"],
            &["gzip;q=1.5"],
            &["gzip;q=0.1234"],
            &["gzip;q="],
            &["gzip;q=abc"],
            &["gzip;level"],
            &["gzipx"],
            &["br", "identity"],
        ] {
            assert!(!ae(no), "{no:?}");
        }
    }

    #[test]
    fn qvalues() {
        let q = |s: &'static str| qvalue(s.split(';').filter(|p| !p.is_empty()));
        assert_eq!(q(""), Some(1000));
        assert_eq!(q("q=1"), Some(1000));
        assert_eq!(q("q=1.000"), Some(1000));
        assert_eq!(q("q=0.5"), Some(500));
        assert_eq!(q("q=0.05"), Some(50));
        assert_eq!(q("q=0.123"), Some(123));
        assert_eq!(q("q=0."), Some(0));
        assert_eq!(q("other=x;q=0.2"), Some(200));
        assert_eq!(q("q=1.001"), None);
        assert_eq!(q("q=.5"), None);
        assert_eq!(q("q=-0"), None);
        assert_eq!(q("q"), None);
    }

    #[test]
    fn gzip_round_trips_and_refuses_to_grow() {
        let data = br#"{"signed":{"targets":{}}}"#.repeat(100);
        let gz = gzip(&data).unwrap();
        assert!(gz.len() < data.len() / 10);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        // Incompressible bytes are served as they are.
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(gzip(&noise[..16]), None);
        assert!(gzip(&noise).is_none_or(|gz| gz.len() < noise.len()));
    }

    /// A large body goes out whole, with its length, in slices that share its bytes; a
    /// small one in one piece.
    #[actix_web::test]
    async fn large_bodies_are_sliced_with_their_length() {
        for len in [0, 10, BODY_SLICE, BODY_SLICE + 1, 3 * BODY_SLICE + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let response = body(&mut HttpResponse::Ok(), Bytes::from(data.clone()));
            let mut sliced = response.into_body();
            assert_eq!(sliced.size(), BodySize::Sized(len as u64), "length {len}");
            let mut got = Vec::new();
            let mut chunks = 0;
            while let Some(chunk) =
                std::future::poll_fn(|cx| Pin::new(&mut sliced).poll_next(cx)).await
            {
                let chunk = chunk.unwrap();
                assert!(chunk.len() <= BODY_SLICE);
                got.extend_from_slice(&chunk);
                chunks += 1;
            }
            assert_eq!(got, data, "length {len}");
            if len > BODY_SLICE {
                assert_eq!(chunks, len.div_ceil(BODY_SLICE), "length {len}");
            }
        }
    }
}
