//! Request IDs: every request gets one, echoed in the `X-Request-Id` response header and
//! logged with the request's access-log line (and, through the `request` span, with every
//! event logged while it is served).
//!
//! A client's own `X-Request-Id` is kept when it is 1 to 128 characters of
//! `[A-Za-z0-9._:-]`, so a proxy's ID can be followed through; anything else is replaced
//! by 32 random hex digits, because the value goes into logs and a response header.

use actix_web::http::header::HeaderName;
use actix_web::HttpRequest;

/// `X-Request-Id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied ID that is kept.
pub const MAX_LEN: usize = 128;

/// The request's ID: the client's if acceptable, else a fresh one.
pub fn for_request(req: &HttpRequest) -> String {
    req.headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| acceptable(id))
        .map(str::to_owned)
        .unwrap_or_else(generate)
}

/// Whether a client-supplied ID is safe to echo and log.
pub fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// 128 random bits as 32 lower-case hex digits.
pub fn generate() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn client_ids_are_kept_only_when_safe() {
        let req = TestRequest::default()
            .insert_header(("X-Request-Id", "proxy-42:a.b_c"))
            .to_http_request();
        assert_eq!(for_request(&req), "proxy-42:a.b_c");
        for bad in ["", "has space", "quote\"", &"x".repeat(MAX_LEN + 1)] {
            assert!(!acceptable(bad), "{bad:?}");
        }
        let req = TestRequest::default()
            .insert_header(("X-Request-Id", "a b"))
            .to_http_request();
        let id = for_request(&req);
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(generate(), generate());
    }
}
