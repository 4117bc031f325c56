//! Envelope decoding (server.md §6.2 item 4), time formats (spec §5.2), file meta and
//! hash rules (spec §5.6–§5.7), role names.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use notary_tuf::keys::SignatureMethod;
use notary_tuf::metadata::{
    self, check_hashes, check_valid_hash_structures, compare_multi_hashes, format_expires,
    go_expiry_display, parse_expires, FileMeta, ParseError, Snapshot,
};
use notary_tuf::{SignedFile, TufError, ValidationError};

const SIG: &str = r#"{"keyid":"ab","method":"ECDSA","sig":"AAAA"}"#;

fn envelope(signed: &str, sigs: &str) -> Vec<u8> {
    format!(r#"{{"signed":{signed},"signatures":[{sigs}]}}"#).into_bytes()
}

fn ok(signed: &str) -> SignedFile {
    SignedFile::parse(&envelope(signed, SIG)).unwrap()
}

fn err(bytes: &[u8]) -> ParseError {
    SignedFile::parse(bytes).unwrap_err()
}

#[test]
fn parses_a_well_formed_envelope() {
    let raw = envelope(
        r#"{"_type":"Targets","expires":"2030-01-02T03:04:05.5Z","version":3,"x":[1]}"#,
        SIG,
    );
    let f = SignedFile::parse(&raw).unwrap();
    assert_eq!(f.raw, raw);
    assert_eq!(SignedFile::parse_vec(raw.clone()).unwrap(), f);
    assert_eq!(f.common.type_, "Targets");
    assert_eq!(f.common.version, 3);
    assert_eq!(
        f.common.expires,
        Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::milliseconds(500)
    );
    assert_eq!(f.signatures.len(), 1);
    assert_eq!(f.signatures[0].keyid, "ab");
    assert_eq!(
        f.signatures[0].method,
        SignatureMethod::Ecdsa,
        "method is lower-cased"
    );
    assert_eq!(f.signatures[0].sig, vec![0, 0, 0]);
    assert_eq!(f.signed_value["x"][0], 1);
    assert_eq!(
        f.sha256_hex(),
        hex::encode(FileMeta::from_bytes(&raw).hashes["sha256"].clone())
    );
}

#[test]
fn rejects_what_is_not_an_envelope() {
    assert!(matches!(err(b"not json"), ParseError::Json(_)));
    assert!(matches!(
        err(b"{\"signed\":{}}trailing"),
        ParseError::Json(_)
    ));
    assert!(matches!(err(b"[]"), ParseError::Shape(_)));
    assert!(matches!(err(b"{\"signatures\":[]}"), ParseError::Shape(_)));
    assert!(matches!(
        err(b"{\"signed\":\"x\",\"signatures\":[]}"),
        ParseError::Shape(_)
    ));
    assert!(matches!(
        err(b"{\"signed\":null,\"signatures\":[]}"),
        ParseError::Shape(_)
    ));
    assert!(matches!(
        err(&envelope(r#"{"_type":"Root"}"#, "")[..20]),
        ParseError::Json(_)
    ));
    assert!(matches!(
        err(b"{\"signed\":{\"_type\":\"Root\",\"version\":1,\"expires\":\"2030-01-01T00:00:00Z\"},\"signatures\":{}}"),
        ParseError::Shape(_)
    ));
}

#[test]
fn common_field_types_are_enforced() {
    let e = |signed: &str| SignedFile::parse(&envelope(signed, SIG)).unwrap_err();
    for bad in [
        r#"{"_type":1,"expires":"2030-01-01T00:00:00Z","version":1}"#,
        r#"{"_type":"Root","expires":"2030-01-01T00:00:00Z","version":"1"}"#,
        r#"{"_type":"Root","expires":"2030-01-01T00:00:00Z","version":1.5}"#,
        r#"{"_type":"Root","expires":"2030-01-01T00:00:00Z","version":1.0}"#,
        r#"{"_type":"Root","expires":"2030-01-01T00:00:00Z","version":1e0}"#,
        r#"{"_type":"Root","expires":"2030-01-01T00:00:00Z","version":9223372036854775808}"#,
        r#"{"_type":"Root","expires":"2030-01-01","version":1}"#,
        r#"{"_type":"Root","expires":1893456000,"version":1}"#,
        r#"{"_type":"Root","expires":"2030-01-01 00:00:00Z","version":1}"#,
    ] {
        assert!(matches!(e(bad), ParseError::Shape(_)), "{bad}");
    }
}

#[test]
fn missing_or_null_common_fields_take_go_zero_values() {
    let f = ok(r#"{"expires":null}"#);
    assert_eq!(f.common.type_, "");
    assert_eq!(f.common.version, 0);
    assert_eq!(f.common.expires, metadata::go_zero_time());
    assert!(f.common.is_expired(Utc::now()));
    // Field names match case-insensitively, like Go's decoder.
    let f = ok(r#"{"_TYPE":"Root","Version":2,"EXPIRES":"2030-01-01T00:00:00Z"}"#);
    assert_eq!((f.common.type_.as_str(), f.common.version), ("Root", 2));
    // Duplicate keys: the last one wins.
    let f = ok(r#"{"version":1,"version":5}"#);
    assert_eq!(f.common.version, 5);
    // Negative versions decode (validation rejects them later).
    assert_eq!(ok(r#"{"version":-1}"#).common.version, -1);
}

#[test]
fn signature_entries_are_enforced() {
    let base = r#"{"_type":"Root","expires":"2030-01-01T00:00:00Z","version":1}"#;
    let parse = |sigs: &str| SignedFile::parse(&envelope(base, sigs));
    assert!(parse("").unwrap().signatures.is_empty());
    // Standard, padded base64 only.
    assert!(parse(r#"{"keyid":"a","method":"ecdsa","sig":"AA"}"#).is_err());
    assert!(parse(r#"{"keyid":"a","method":"ecdsa","sig":"-_8="}"#).is_err());
    assert!(parse(r#"{"keyid":"a","method":"ecdsa","sig":"+/8="}"#).is_ok());
    assert!(parse(r#"{"keyid":1,"method":"ecdsa","sig":"AAAA"}"#).is_err());
    assert!(parse(r#"{"keyid":"a","method":"ecdsa","sig":5}"#).is_err());
    assert!(parse(r#""x""#).is_err());
    // null and missing values are empty, as in Go.
    let f = parse(r#"{"keyid":"a"},null"#).unwrap();
    assert_eq!(f.signatures.len(), 2);
    assert!(f.signatures[0].sig.is_empty());
    assert_eq!(f.signatures[1].keyid, "");
    let none = SignedFile::parse(format!(r#"{{"signed":{base}}}"#).as_bytes()).unwrap();
    assert!(none.signatures.is_empty());
}

#[test]
fn expires_parsing_follows_rfc3339_like_go() {
    let utc = |y, mo, d, h, mi, s, ns| {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_nano_opt(h, mi, s, ns)
            .unwrap()
            .and_utc()
    };
    let cases: [(&str, DateTime<Utc>); 6] = [
        (
            "2116-07-03T18:08:08.41836542-05:00",
            utc(2116, 7, 3, 23, 8, 8, 418_365_420),
        ),
        (
            "2116-07-03T23:08:08.447842546Z",
            utc(2116, 7, 3, 23, 8, 8, 447_842_546),
        ),
        ("2026-12-06T20:59:55Z", utc(2026, 12, 6, 20, 59, 55, 0)),
        (
            "2026-12-06T20:59:55.1+01:30",
            utc(2026, 12, 6, 19, 29, 55, 100_000_000),
        ),
        (
            "2026-12-06T20:59:55.123456789123Z",
            utc(2026, 12, 6, 20, 59, 55, 123_456_789),
        ),
        ("2024-02-29T00:00:00-00:00", utc(2024, 2, 29, 0, 0, 0, 0)),
    ];
    for (s, want) in cases {
        assert_eq!(parse_expires(s).unwrap(), want, "{s}");
    }
    for bad in [
        "2026-12-06",
        "2026-12-06t20:59:55Z",
        "2026-12-06T20:59:55z",
        "2026-12-06T20:59:55",
        "2026-12-06T20:59:55.Z",
        "2026-12-06T20:59:60Z",
        "2026-12-06T24:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-12-06T20:59:55+0100",
        "2026-12-06T20:59:55+24:00",
        "2026-12-06 20:59:55Z",
        "26-12-06T20:59:55Z",
        "2026-12-06T20:59:55Z ",
    ] {
        assert!(parse_expires(bad).is_err(), "{bad}");
    }
}

#[test]
fn expires_formatting_trims_fraction_zeros() {
    let t = Utc.with_ymd_and_hms(2026, 12, 6, 20, 58, 42).unwrap();
    assert_eq!(format_expires(&t), "2026-12-06T20:58:42Z");
    assert_eq!(
        format_expires(&(t + chrono::Duration::nanoseconds(517_817_792))),
        "2026-12-06T20:58:42.517817792Z"
    );
    assert_eq!(
        format_expires(&(t + chrono::Duration::milliseconds(500))),
        "2026-12-06T20:58:42.5Z"
    );
    assert_eq!(
        format_expires(&(t + chrono::Duration::nanoseconds(1_000))),
        "2026-12-06T20:58:42.000001Z"
    );
    for s in [
        "2116-07-03T23:08:08.447842546Z",
        "2030-01-01T00:00:00Z",
        "2030-01-01T00:00:00.1Z",
    ] {
        assert_eq!(format_expires(&parse_expires(s).unwrap()), s);
    }
    assert_eq!(go_expiry_display(&t), "Sun Dec 6 20:58:42 UTC 2026");
}

#[test]
fn file_meta_layout_and_hashes() {
    let fm = FileMeta::from_bytes(b"hello");
    assert_eq!(fm.length, 5);
    assert_eq!(
        fm.sha256_hex().unwrap(),
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(fm.hashes["sha512"].len(), 64);
    let v = fm.to_json_value();
    assert_eq!(
        String::from_utf8(notary_tuf::canonical::to_canonical_bytes(&v).unwrap()).unwrap(),
        r#"{"hashes":{"sha256":"LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=","sha512":"m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw=="},"length":5}"#
    );
    assert_eq!(FileMeta::from_json_value(&v).unwrap(), fm);
    let with_custom = serde_json::json!({"custom":{"b":1,"a":"<"},"hashes":{},"length":1});
    let parsed = FileMeta::from_json_value(&with_custom).unwrap();
    assert_eq!(parsed.custom.as_ref().unwrap()["a"], "<");
    assert_eq!(parsed.to_json_value(), with_custom);
    assert!(FileMeta::from_json_value(&serde_json::json!({"length":"1"})).is_err());
    assert!(FileMeta::from_json_value(&serde_json::json!({"hashes":{"sha256":"!"}})).is_err());
    assert!(
        FileMeta::from_json_value(&serde_json::json!({"custom":null}))
            .unwrap()
            .custom
            .is_none()
    );
}

#[test]
fn check_hashes_rules() {
    let fm = FileMeta::from_bytes(b"payload");
    check_hashes(b"payload", "targets", &fm.hashes).unwrap();
    assert!(matches!(
        check_hashes(b"other", "targets", &fm.hashes),
        Err(TufError::MismatchedChecksum { .. })
    ));
    let only_unknown = BTreeMap::from([("md5".to_string(), vec![1u8; 16])]);
    assert_eq!(
        check_hashes(b"payload", "targets", &only_unknown),
        Err(TufError::MissingMeta {
            role: "targets".into()
        })
    );
    assert_eq!(
        check_hashes(b"payload", "targets", &BTreeMap::new())
            .unwrap_err()
            .to_string(),
        "no checksums for supported algorithms were provided for targets"
    );

    check_valid_hash_structures(&fm.hashes).unwrap();
    let mut short = fm.hashes.clone();
    short.get_mut("sha256").unwrap().pop();
    assert_eq!(
        check_valid_hash_structures(&short),
        Err("sha256 checksum invalid".into())
    );
    assert!(check_valid_hash_structures(&only_unknown).is_err());

    compare_multi_hashes(&fm.hashes, &fm.hashes).unwrap();
    let only256 = BTreeMap::from([("sha256".to_string(), fm.hashes["sha256"].clone())]);
    compare_multi_hashes(&fm.hashes, &only256).unwrap();
    let other = FileMeta::from_bytes(b"x").hashes;
    assert!(compare_multi_hashes(&fm.hashes, &other).is_err());
    let only512 = BTreeMap::from([("sha512".to_string(), fm.hashes["sha512"].clone())]);
    assert_eq!(
        compare_multi_hashes(&only256, &only512),
        Err("at least one matching hash needed".into())
    );
}

#[test]
fn typed_views_reject_wrong_json_types() {
    let s = ok(r#"{"_type":"Snapshot","meta":{"root":{"length":"x"}}}"#);
    assert!(s.snapshot().is_err());
    let t = ok(r#"{"_type":"Targets","delegations":{"roles":[null]}}"#);
    assert!(t.targets().is_err());
    let t = ok(r#"{"_type":"Targets","delegations":{"roles":{}}}"#);
    assert!(t.targets().is_err());
    let r = ok(r#"{"_type":"Root","roles":{"root":{"keyids":"x"}}}"#);
    assert!(r.root().is_err());
    let r = ok(r#"{"_type":"Root","keys":{"k":{"keytype":"ecdsa","keyval":{"public":"%%"}}}}"#);
    assert!(r.root().is_err());
    // Nulls are zero values.
    let r = ok(r#"{"_type":"Root","keys":null,"roles":{"root":null},"consistent_snapshot":null}"#)
        .root()
        .unwrap();
    assert!(r.keys.is_empty() && r.roles.is_empty() && !r.consistent_snapshot);
    let s = Snapshot::from_signed_value(&serde_json::json!({"_type":"Snapshot"})).unwrap();
    assert!(s.validate_structure().is_err());
}

#[test]
fn tuf_types_for_roles() {
    assert_eq!(metadata::tuf_type_for_role("root"), Some("Root"));
    assert_eq!(metadata::tuf_type_for_role("targets/a/b"), Some("Targets"));
    assert_eq!(metadata::tuf_type_for_role("timestamp"), Some("Timestamp"));
    assert_eq!(metadata::tuf_type_for_role("snapshot"), Some("Snapshot"));
    assert_eq!(metadata::tuf_type_for_role("targets/A"), None);
    assert_eq!(metadata::tuf_type_for_role("other"), None);
}

#[test]
fn validation_errors_render_like_go() {
    let e =
        ValidationError::Validation("no pre-existing root and no root provided in update.".into());
    assert_eq!(
        serde_json::to_string(&e.to_detail_json()).unwrap(),
        r#"{"Name":"ErrValidation","Error":{"Msg":"no pre-existing root and no root provided in update."}}"#
    );
    assert_eq!(e.name(), "ErrValidation");
    assert_eq!(e.to_string(), e.msg());
}

/// Issue 13 (3): an upload of `[0,0,...]` inside `signed` decoded into gigabytes. A file
/// may now hold one JSON value per 8 bytes (plus 4096): denser files are refused before
/// they are decoded in full, while real metadata (one value per 15-40 bytes) is untouched.
#[test]
fn absurdly_dense_files_are_refused() {
    let dense = |n: usize| {
        let zeros = vec!["0"; n].join(",");
        envelope(
            &format!(
                r#"{{"_type":"Root","expires":"2030-01-01T00:00:00Z","version":1,"x":[{zeros}]}}"#
            ),
            SIG,
        )
    };
    let small = dense(1000);
    assert!(
        SignedFile::parse(&small).is_ok(),
        "small files are never refused"
    );
    let big = dense(1_000_000);
    let limit = notary_tuf::bounded::max_json_values(big.len());
    assert_eq!(limit, big.len() / 8 + 4096);
    assert_eq!(err(&big), ParseError::TooManyValues { limit });

    // The same number of values, each a realistic 40-byte string: accepted.
    let strings = vec![format!("\"{}\"", "a".repeat(38)); 100_000].join(",");
    let sparse = envelope(
        &format!(
            r#"{{"_type":"Root","expires":"2030-01-01T00:00:00Z","version":1,"x":[{strings}]}}"#
        ),
        SIG,
    );
    assert_eq!(
        ok_bytes(&sparse).signed_value["x"]
            .as_array()
            .unwrap()
            .len(),
        100_000
    );
}

fn ok_bytes(bytes: &[u8]) -> SignedFile {
    SignedFile::parse(bytes).unwrap()
}
