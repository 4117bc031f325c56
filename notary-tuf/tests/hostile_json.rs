//! Hostile JSON at the parsing/verification layer: nesting bombs, and edits an attacker
//! without keys can make to a validly signed file (duplicate and case-variant members).
//! Only edits that leave the signed content unchanged may keep verifying, and then the
//! typed view must agree with what the signature covers.

use chrono::{TimeZone as _, Utc};
use notary_tuf::test_support::TestRepo;
use notary_tuf::verify::RepoBuilder;
use notary_tuf::SignedFile;

const GUN: &str = "example.com/hostile/json";

fn repo() -> TestRepo {
    TestRepo::new_at(GUN, Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap())
}

/// A builder with the repo's root loaded.
fn with_root(r: &TestRepo, root: &[u8]) -> RepoBuilder {
    let mut b = RepoBuilder::new(GUN, r.now);
    b.load("root", root, 1, false).expect("root loads");
    b
}

/// Inserts `text` into `bytes` right after the first occurrence of `after`.
fn insert_after(bytes: &[u8], after: &str, text: &str) -> Vec<u8> {
    let pos = bytes
        .windows(after.len())
        .position(|w| w == after.as_bytes())
        .expect("anchor present")
        + after.len();
    let mut out = bytes[..pos].to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[pos..]);
    out
}

#[test]
fn nesting_bombs_are_refused_without_crashing() {
    let r = repo();
    let files = r.build();
    let bombs: Vec<Vec<u8>> = vec![
        "[".repeat(100_000).into_bytes(),
        "{\"a\":".repeat(100_000).into_bytes(),
        format!(
            "{{\"signed\":{{\"_type\":\"Targets\",\"x\":{}1{}}},\"signatures\":[]}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        )
        .into_bytes(),
        format!(
            "{{\"signed\":{{\"_type\":\"Targets\"}},\"signatures\":[{}]}}",
            "[".repeat(50_000)
        )
        .into_bytes(),
    ];
    for bomb in &bombs {
        assert!(SignedFile::parse(bomb).is_err());
        let mut b = with_root(&r, &files.root);
        assert!(b.load("targets", bomb, 1, false).is_err());
        assert!(RepoBuilder::new(GUN, r.now)
            .load("root", bomb, 1, false)
            .is_err());
    }
    // Moderate nesting inside `signed` (below the parser's limit) is fine to parse; it only
    // fails the signature check because nobody signed it.
    let nested = format!(
        "{{\"signed\":{{\"_type\":\"Targets\",\"expires\":\"2031-01-01T00:00:00Z\",\"version\":2,\"x\":{}1{}}},\"signatures\":[]}}",
        "[".repeat(100),
        "]".repeat(100)
    );
    let file = SignedFile::parse(nested.as_bytes()).expect("100 levels parse");
    assert!(file.canonical_signed().is_ok());
    let mut b = with_root(&r, &files.root);
    assert!(b.load("targets", nested.as_bytes(), 1, false).is_err());
}

#[test]
fn members_added_without_the_key_break_the_signature_unless_they_change_nothing() {
    let mut r = repo();
    r.bump_targets("targets");
    let files = r.build();
    let targets = files.get("targets").unwrap();
    assert!(with_root(&r, &files.root)
        .load("targets", targets, 1, false)
        .is_ok());

    // A case variant of a member is a different member: the signed content changes.
    for edit in [
        r#""Version":99,"#,
        r#""VERSION":99,"#,
        r#""Expires":"2099-01-01T00:00:00Z","#,
        r#""_TYPE":"Root","#,
        r#""Targets":{},"#,
    ] {
        let forged = insert_after(targets, r#""signed":{"#, edit);
        assert!(
            with_root(&r, &files.root)
                .load("targets", &forged, 1, false)
                .is_err(),
            "{edit} kept a valid signature"
        );
    }

    // A duplicate placed after the original wins (as in Go): the content changes and the
    // signature breaks.
    let after = insert_after(targets, r#""version":2"#, r#","version":99"#);
    assert_eq!(SignedFile::parse(&after).unwrap().common.version, 99);
    assert!(with_root(&r, &files.root)
        .load("targets", &after, 1, false)
        .is_err());

    // A duplicate placed before the original loses (as in Go): the signed content is the
    // same, the file still verifies, and every view of it says version 2.
    let before = insert_after(targets, r#""signed":{"#, r#""version":99,"#);
    assert_ne!(before, targets);
    let parsed = SignedFile::parse(&before).unwrap();
    assert_eq!(parsed.common.version, 2);
    assert_eq!(
        parsed.canonical_signed().unwrap(),
        SignedFile::parse(targets)
            .unwrap()
            .canonical_signed()
            .unwrap()
    );
    let mut b = with_root(&r, &files.root);
    b.load("targets", &before, 1, false)
        .expect("same signed content verifies");
    assert_eq!(b.targets("targets").unwrap().typed.common.version, 2);

    // Extra members outside `signed` are not covered by signatures but change nothing.
    let outside = insert_after(targets, "{", r#""signed_by":"someone else","#);
    assert!(with_root(&r, &files.root)
        .load("targets", &outside, 1, false)
        .is_ok());
}

/// Go's `encoding/json` assigns members to struct fields in document order, matching names
/// case-insensitively, so with `"version":1,"Version":5,"version":9` Go ends with 9, and
/// with `"version":3,"Version":null` it keeps 3 (null leaves a field unchanged).
///
/// Our typed view takes the last case-insensitive match in the decoded map, where a
/// repeated exact key keeps the position of its first occurrence: it reads 5 and "absent".
/// Such files only come from a key holder (the members are inside `signed`), so the
/// impact is a server and its Go clients disagreeing about a version or expiry the
/// signer chose to make ambiguous. Fixing it needs a decoder that keeps duplicate members
/// in document order (serde_json's `Value` cannot).
#[test]
#[ignore = "known divergence from Go on duplicate case-variant members; see the doc comment"]
fn duplicate_case_variant_members_resolve_like_go() {
    let env = |signed: &str| format!(r#"{{"signed":{signed},"signatures":[]}}"#).into_bytes();
    let f = SignedFile::parse(&env(
        r#"{"_type":"Targets","version":1,"Version":5,"version":9,"expires":"2030-01-01T00:00:00Z"}"#,
    ))
    .unwrap();
    assert_eq!(f.common.version, 9);
    let f = SignedFile::parse(&env(
        r#"{"_type":"Targets","version":3,"Version":null,"expires":"2030-01-01T00:00:00Z"}"#,
    ))
    .unwrap();
    assert_eq!(f.common.version, 3);
}
