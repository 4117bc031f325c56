//! Fuzz targets for the parsers that face untrusted input, and a small stand-alone driver.
//!
//! Each target is one function that takes arbitrary bytes and panics only when it finds a
//! bug (a property below is violated, or the code under test panics):
//!
//! - [`canonical`]: JSON → Go canonical JSON → JSON round trip: canonicalizing is
//!   idempotent, keeps the value, sorts keys bytewise, and the HTML-escaped envelope form
//!   parses to the same value.
//! - [`metadata`]: `SignedFile::parse`, the typed views and structure checks, and
//!   `RepoBuilder::load` for every role against a fixed, validly signed repository. Since
//!   only the fixture's keys are trusted, any input the builder accepts must have exactly
//!   the signed content of the fixture file for that role (otherwise a signature check was
//!   bypassed).
//! - [`multipart`]: notary-server's upload parser (`http::upload::parse_parts`): every part
//!   it returns has a valid role name, roles are unique, and each part's bytes occur
//!   verbatim in the body (files are stored exactly as received).
//!
//! Built by `cargo fuzz` (nightly, `--cfg fuzzing`), the binaries in `fuzz_targets/` are
//! libFuzzer targets. Built normally (stable), they are drivers ([`driver::main`]) that
//! mutate built-in seeds with a seeded PRNG for a number of iterations or seconds, or
//! replay given files (crash reproduction and corpus regression).

pub mod driver;
pub mod seeds;

use std::sync::OnceLock;

use chrono::{DateTime, TimeZone as _, Utc};
use notary_tuf::canonical::{go_html_escape, to_canonical_bytes};
use notary_tuf::test_support::{RepoFiles, TestRepo};
use notary_tuf::verify::RepoBuilder;
use notary_tuf::SignedFile;
use serde_json::Value;

/// The GUN of the fixture repository.
pub const GUN: &str = "example.com/fuzz/app";
/// The boundary the multipart target parses with (seeds use it).
pub const BOUNDARY: &str = "XyZfuzz";

/// Canonical JSON round trip (see the crate docs).
pub fn canonical(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(canon) = to_canonical_bytes(&value) else {
        // Non-integral or out-of-range numbers: refused, as Go refuses them.
        return;
    };
    // Go writes control characters raw inside strings (so does our encoder); strict JSON
    // parsers refuse them, so escape them before parsing the output back.
    let reparsed: Value = serde_json::from_slice(&escape_controls(&canon)).unwrap_or_else(|e| {
        panic!(
            "canonical output is not JSON ({e}): {}",
            String::from_utf8_lossy(&canon)
        )
    });
    assert_eq!(
        normalize(&value),
        normalize(&reparsed),
        "canonicalization changed the value"
    );
    let again = to_canonical_bytes(&reparsed).expect("canonical output canonicalizes");
    assert_eq!(canon, again, "canonicalization is not idempotent");
    assert!(keys_sorted(&reparsed), "object keys not in byte order");
    // No whitespace outside strings: every raw newline is one that a string contained.
    let newlines_in_strings = count_newlines(&reparsed);
    assert_eq!(
        canon.iter().filter(|&&b| b == b'\n').count(),
        newlines_in_strings,
        "canonical output has whitespace outside strings"
    );

    let escaped = escape_controls(&go_html_escape(&canon));
    let from_escaped: Value =
        serde_json::from_slice(&escaped).expect("HTML-escaped canonical JSON parses");
    assert_eq!(
        normalize(&reparsed),
        normalize(&from_escaped),
        "HTML escaping changed the value"
    );
}

/// Replaces raw control bytes (which canonical output only has inside strings, since it
/// has no whitespace) with `\u00XX` escapes.
fn escape_controls(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    for &b in json {
        if b < 0x20 {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

fn count_newlines(v: &Value) -> usize {
    match v {
        Value::String(s) => s.matches('\n').count(),
        Value::Array(items) => items.iter().map(count_newlines).sum(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| k.matches('\n').count() + count_newlines(v))
            .sum(),
        _ => 0,
    }
}

/// Integral floats compare equal to integers (canonical JSON prints `1.0` as `1`).
fn normalize(v: &Value) -> Value {
    match v {
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (None, Some(u), _) => Value::from(u),
            (None, None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e18 => Value::from(f as i64),
            _ => v.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> =
                m.iter().map(|(k, v)| (k.clone(), normalize(v))).collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            Value::Object(entries.into_iter().collect())
        }
        other => other.clone(),
    }
}

fn keys_sorted(v: &Value) -> bool {
    match v {
        Value::Array(items) => items.iter().all(keys_sorted),
        Value::Object(m) => {
            let keys: Vec<&String> = m.keys().collect();
            keys.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes())
                && m.values().all(keys_sorted)
        }
        _ => true,
    }
}

/// The fixture repository: files and a builder with its root already loaded.
pub struct Fixture {
    /// The signed files (root, targets, `targets/releases`, snapshot, timestamp).
    pub files: RepoFiles,
    /// The builder's clock (the fixture's own "now", so nothing has expired).
    pub now: DateTime<Utc>,
}

/// The fixture, built once per process with fresh keys.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let mut repo = TestRepo::new_at(GUN, now);
        repo.add_target("targets", "app", b"payload");
        repo.add_delegation("targets", "targets/releases", &["releases/"]);
        repo.add_target("targets/releases", "releases/v1", b"v1");
        Fixture {
            files: repo.build(),
            now,
        }
    })
}

fn canonical_signed(bytes: &[u8]) -> Option<Vec<u8>> {
    SignedFile::parse(bytes).ok()?.canonical_signed().ok()
}

/// Metadata parsing and verification (see the crate docs).
pub fn metadata(data: &[u8]) {
    if let Ok(file) = SignedFile::parse(data) {
        let _ = file.canonical_signed();
        let _ = file.sha256_hex();
        let _ = file.file_meta();
        if let Ok(root) = file.root() {
            let _ = root.validate_structure();
            for role in ["root", "targets", "snapshot", "timestamp"] {
                let _ = root.build_base_role(role);
            }
        }
        if let Ok(targets) = file.targets() {
            let _ = targets.validate_structure("targets");
            let _ = targets.validate_structure("targets/releases");
        }
        if let Ok(snapshot) = file.snapshot() {
            let _ = snapshot.validate_structure();
        }
        if let Ok(timestamp) = file.timestamp() {
            let _ = timestamp.snapshot_meta();
        }
    }

    let fx = fixture();
    let files = &fx.files;
    let accepted_only_if_same = |role: &str, builder: &mut RepoBuilder, original: &[u8]| {
        if builder.load(role, data, 1, false).is_ok() {
            assert_eq!(
                canonical_signed(data),
                canonical_signed(original),
                "{role}: the builder accepted content the fixture keys never signed"
            );
        }
    };

    // A root signed by the fixture's root key (a rotation from the fixture's root).
    let mut with_root = RepoBuilder::new(GUN, fx.now);
    with_root
        .load("root", &files.root, 1, false)
        .expect("fixture root loads");
    accepted_only_if_same("root", &mut with_root.bootstrap_new_builder(), &files.root);
    // Trust on first use must not panic either (any self-signed root may pass).
    let _ = RepoBuilder::new(GUN, fx.now).load("root", data, 1, false);

    accepted_only_if_same(
        "targets",
        &mut with_root.clone(),
        files.get("targets").unwrap(),
    );
    accepted_only_if_same("timestamp", &mut with_root.clone(), &files.timestamp);

    let mut with_targets = with_root.clone();
    with_targets
        .load("targets", files.get("targets").unwrap(), 1, false)
        .expect("fixture targets load");
    accepted_only_if_same(
        "targets/releases",
        &mut with_targets.clone(),
        files.get("targets/releases").unwrap(),
    );
    let mut full = with_targets;
    full.load(
        "targets/releases",
        files.get("targets/releases").unwrap(),
        1,
        false,
    )
    .expect("fixture delegation loads");
    accepted_only_if_same("snapshot", &mut full, &files.snapshot);
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("tokio runtime")
    })
}

/// notary-server's multipart upload parser (see the crate docs).
pub fn multipart(data: &[u8]) {
    use notary_server::http::upload::{parse_parts, valid_role, UploadLimits};
    let body = bytes::Bytes::copy_from_slice(data);
    let Ok(parts) = runtime().block_on(parse_parts(BOUNDARY, body, UploadLimits::default())) else {
        return;
    };
    let mut seen = std::collections::HashSet::new();
    for (role, bytes) in &parts {
        assert!(valid_role(role), "parser returned invalid role {role:?}");
        assert!(seen.insert(role.clone()), "role {role:?} returned twice");
        assert!(
            bytes.is_empty() || data.windows(bytes.len()).any(|w| w == bytes.as_slice()),
            "part {role:?} is not a verbatim slice of the body"
        );
    }
}
