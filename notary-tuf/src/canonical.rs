//! Canonical JSON exactly as Go Notary produces it
//! (`github.com/docker/go/canonical/json`, `MarshalCanonical`).
//!
//! Rules (spec signer-and-tuf §6.1):
//! - no whitespace;
//! - object keys sorted by their raw UTF-8 bytes (Rust `str` order, not UTF-16 order);
//! - strings escape only `"` and `\`; every other character is written raw, including
//!   `<>&`, non-ASCII, U+2028/U+2029 and even control characters;
//! - numbers print as plain decimal integers; a float is accepted only if it is integral
//!   (`1.0` prints `1`); anything beyond ±2^53 is refused because Go decodes numbers into
//!   `float64` before re-encoding and would silently lose precision there.
//!
//! The bytes stored in a file envelope are this output passed through Go's HTML-escaping
//! compactor, see [`go_html_escape`].
//!
//! ```
//! use notary_tuf::canonical::{go_html_escape, to_canonical_bytes};
//! let v = serde_json::json!({"b": "a<b>&c", "Z": 1.0});
//! let c = to_canonical_bytes(&v).unwrap();
//! assert_eq!(c, br#"{"Z":1,"b":"a<b>&c"}"#);
//! assert_eq!(go_html_escape(&c), br#"{"Z":1,"b":"a\u003cb\u003e\u0026c"}"#);
//! ```

use serde_json::Value;

/// Largest integer magnitude that survives Go's `float64` round trip exactly.
const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// Why a value cannot be canonicalized the way Go would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// A float with a fractional part (Go refuses these in canonical mode).
    #[error("json: unsupported value: non-integral number {0}")]
    NonIntegralNumber(String),
    /// An integer outside ±2^53, which Go's generic decode would round.
    #[error("json: number {0} is out of the range Go can re-encode exactly")]
    NumberOutOfRange(String),
}

/// Encodes `v` as Go's canonical JSON.
pub fn to_canonical_bytes(v: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, v)?;
    Ok(out)
}

fn write_value(out: &mut Vec<u8>, v: &Value) -> Result<(), CanonicalError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // The workspace enables serde_json's `preserve_order`, so the map iterates in
            // insertion order: sort here.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, k);
                out.push(b':');
                write_value(out, val)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) -> Result<(), CanonicalError> {
    if let Some(u) = n.as_u64() {
        if u > MAX_SAFE_INTEGER {
            return Err(CanonicalError::NumberOutOfRange(n.to_string()));
        }
        out.extend_from_slice(u.to_string().as_bytes());
        return Ok(());
    }
    if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(CanonicalError::NumberOutOfRange(n.to_string()));
        }
        out.extend_from_slice(i.to_string().as_bytes());
        return Ok(());
    }
    let f = n
        .as_f64()
        .ok_or_else(|| CanonicalError::NonIntegralNumber(n.to_string()))?;
    if !f.is_finite() || f.fract() != 0.0 {
        return Err(CanonicalError::NonIntegralNumber(n.to_string()));
    }
    if f.abs() > MAX_SAFE_INTEGER as f64 {
        return Err(CanonicalError::NumberOutOfRange(n.to_string()));
    }
    // Integral and within 2^53, so the cast is exact; `-0.0` prints as `0` like Go's int64.
    out.extend_from_slice((f as i64).to_string().as_bytes());
    Ok(())
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Applies Go's HTML-safe escaping (`json.Compact` of a `RawMessage` during `Marshal`) to
/// already compact JSON: `<`, `>`, `&` become `\u003c`, `\u003e`, `\u0026`, and U+2028 /
/// U+2029 become `\u2028` / `\u2029`. This turns canonical `signed` bytes into the form
/// that appears inside a file envelope. Those characters only occur inside strings in valid
/// JSON, so a plain byte substitution is exact.
pub fn go_html_escape(canonical: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(canonical.len() + 16);
    let mut i = 0;
    while i < canonical.len() {
        let b = canonical[i];
        match b {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            0xE2 if i + 2 < canonical.len()
                && canonical[i + 1] == 0x80
                && (canonical[i + 2] == 0xA8 || canonical[i + 2] == 0xA9) =>
            {
                out.extend_from_slice(if canonical[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
                continue;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

/// Canonical bytes of `v` in envelope form (canonical, then HTML-escaped).
pub fn to_envelope_bytes(v: &Value) -> Result<Vec<u8>, CanonicalError> {
    Ok(go_html_escape(&to_canonical_bytes(v)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(json: &str) -> Result<Vec<u8>, CanonicalError> {
        let v: Value = serde_json::from_str(json).expect("test input parses");
        to_canonical_bytes(&v)
    }

    fn canon_str(json: &str) -> String {
        String::from_utf8(canon(json).unwrap()).unwrap()
    }

    #[test]
    fn spec_example_html_chars_and_float() {
        let c = canon(r#"{"b":"a<b>&c","Z":1.0}"#).unwrap();
        assert_eq!(c, br#"{"Z":1,"b":"a<b>&c"}"#);
        assert_eq!(
            go_html_escape(&c),
            br#"{"Z":1,"b":"a\u003cb\u003e\u0026c"}"#
        );
    }

    #[test]
    fn spec_example_non_ascii_raw() {
        let c = canon(r#"{"a":"café 😀"}"#).unwrap();
        assert_eq!(c, "{\"a\":\"caf\u{e9} \u{1F600}\"}".as_bytes());
        let inner = &c[6..c.len() - 2];
        assert_eq!(
            inner,
            [0x63, 0x61, 0x66, 0xc3, 0xa9, 0x20, 0xf0, 0x9f, 0x98, 0x80]
        );
        // Non-ASCII other than U+2028/2029 is not touched by the HTML escaper.
        assert_eq!(go_html_escape(&c), c);
    }

    #[test]
    fn spec_example_line_separator() {
        let c = canon(r#"{"a":"x\u2028y"}"#).unwrap();
        assert_eq!(c, b"{\"a\":\"x\xe2\x80\xa8y\"}");
        assert_eq!(go_html_escape(&c), br#"{"a":"x\u2028y"}"#);
        let c = canon(r#"{"a":"x\u2029y"}"#).unwrap();
        assert_eq!(go_html_escape(&c), br#"{"a":"x\u2029y"}"#);
    }

    #[test]
    fn spec_example_quotes_and_backslashes() {
        assert_eq!(
            canon_str(r#"{"c":"say \"hi\" C:\\dir"}"#),
            r#"{"c":"say \"hi\" C:\\dir"}"#
        );
    }

    #[test]
    fn spec_example_key_byte_order() {
        assert_eq!(
            canon_str(r#"{"é":1,"z":2,"_type":3,"Z":4}"#),
            r#"{"Z":4,"_type":3,"z":2,"é":1}"#
        );
    }

    #[test]
    fn spec_example_key_id_input() {
        let v = serde_json::json!({"keyval":{"public":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","private":null},"keytype":"ed25519"});
        assert_eq!(
            String::from_utf8(to_canonical_bytes(&v).unwrap()).unwrap(),
            r#"{"keytype":"ed25519","keyval":{"private":null,"public":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}"#
        );
    }

    #[test]
    fn control_characters_are_written_raw() {
        let c = canon(r#"{"a":"t\tn\nz\u0000d\u007f"}"#).unwrap();
        assert_eq!(c, b"{\"a\":\"t\tn\nz\0d\x7f\"}");
    }

    #[test]
    fn nested_objects_and_arrays_sorted_recursively() {
        assert_eq!(
            canon_str(
                r#"{ "b" : [ {"y":1, "x":[true,false,null]}, "s" ], "a" : {"d":{}, "c":[]} }"#
            ),
            r#"{"a":{"c":[],"d":{}},"b":[{"x":[true,false,null],"y":1},"s"]}"#
        );
    }

    #[test]
    fn integers_print_plainly() {
        assert_eq!(
            canon_str("[0,-1,42,9007199254740992,-9007199254740992]"),
            "[0,-1,42,9007199254740992,-9007199254740992]"
        );
        assert_eq!(canon_str("[1e2,-0.0,2.0E1]"), "[100,0,20]");
    }

    #[test]
    fn non_integral_float_is_an_error() {
        assert!(matches!(
            canon("[1.5]"),
            Err(CanonicalError::NonIntegralNumber(_))
        ));
        assert!(matches!(
            canon(r#"{"a":{"b":0.1}}"#),
            Err(CanonicalError::NonIntegralNumber(_))
        ));
    }

    #[test]
    fn integers_beyond_2_pow_53_are_errors() {
        assert!(matches!(
            canon("[9007199254740993]"),
            Err(CanonicalError::NumberOutOfRange(_))
        ));
        assert!(matches!(
            canon("[-9007199254740993]"),
            Err(CanonicalError::NumberOutOfRange(_))
        ));
        assert!(matches!(
            canon("[18446744073709551615]"),
            Err(CanonicalError::NumberOutOfRange(_))
        ));
        assert!(matches!(
            canon("[1e300]"),
            Err(CanonicalError::NumberOutOfRange(_))
        ));
    }

    #[test]
    fn duplicate_keys_last_wins() {
        assert_eq!(canon_str(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
    }

    #[test]
    fn escaped_input_characters_are_decoded_then_written_raw() {
        // `\/` and `\u00e9` in the input are ordinary characters after decoding.
        assert_eq!(
            canon_str(r#"["a\/b","\u00e9","\u003c"]"#),
            "[\"a/b\",\"\u{e9}\",\"<\"]"
        );
    }

    #[test]
    fn html_escape_leaves_other_bytes() {
        assert_eq!(
            go_html_escape(b"{\"a\":\"\xe2\x80\xa7\"}"),
            b"{\"a\":\"\xe2\x80\xa7\"}"
        );
        assert_eq!(go_html_escape(b"&&"), br"\u0026\u0026");
        assert_eq!(
            to_envelope_bytes(&serde_json::json!({"k":">"})).unwrap(),
            br#"{"k":"\u003e"}"#
        );
    }
}
