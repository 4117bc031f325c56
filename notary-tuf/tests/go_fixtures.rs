//! Interoperability with metadata written by the Go Notary (tests/data/go-notary, made by
//! make-fixtures.sh): canonical bytes, envelope layout, signatures, hashes, key IDs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use notary_tuf::canonical::{go_html_escape, to_canonical_bytes};
use notary_tuf::keys::{KeyType, PublicKey, SignatureMethod};
use notary_tuf::metadata::{self, envelope_bytes, Root, Snapshot, Targets, Timestamp};
use notary_tuf::verify::{self, RepoBuilder};
use notary_tuf::{SignedFile, TufError};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/go-notary")
}

struct Fixture {
    dir: PathBuf,
    gun: String,
}

fn fixtures() -> Vec<Fixture> {
    let mut out: Vec<Fixture> = std::fs::read_dir(data_dir())
        .expect("fixture dir exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("gun.txt").is_file())
        .map(|dir| Fixture {
            gun: std::fs::read_to_string(dir.join("gun.txt"))
                .unwrap()
                .trim()
                .to_string(),
            dir,
        })
        .collect();
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    assert!(out.len() >= 3, "expected the three Go fixture repositories");
    out
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return out;
    }
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(json_files(&p));
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn read(f: &Fixture, name: &str) -> Vec<u8> {
    std::fs::read(f.dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn parse(f: &Fixture, name: &str) -> SignedFile {
    SignedFile::parse(&read(f, name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A clock inside every validity window of the fixture: one day before the current
/// timestamp (14-day lifetime) expires, i.e. about 13 days after generation.
fn fixture_now(f: &Fixture) -> DateTime<Utc> {
    parse(f, "timestamp.json").common.expires - Duration::days(1)
}

fn delegation_roles(f: &Fixture) -> Vec<String> {
    let mut roles: Vec<String> = json_files(&f.dir.join("targets"))
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&f.dir)
                .unwrap()
                .to_string_lossy()
                .to_string();
            rel.trim_end_matches(".json").to_string()
        })
        .collect();
    notary_tuf::roles::sort_roles(&mut roles);
    roles
}

#[test]
fn signed_part_is_html_escaped_canonical_json_and_envelope_rebuilds() {
    let mut checked = 0;
    for f in fixtures() {
        for path in json_files(&f.dir) {
            let raw = std::fs::read(&path).unwrap();
            let file = SignedFile::parse(&raw).unwrap();
            let prefix = b"{\"signed\":";
            assert!(raw.starts_with(prefix), "{path:?}");
            let marker = b",\"signatures\":[";
            let end = raw
                .windows(marker.len())
                .rposition(|w| w == marker)
                .unwrap_or_else(|| panic!("{path:?} has no signatures list"));
            let raw_signed = &raw[prefix.len()..end];
            let canonical = to_canonical_bytes(&file.signed_value).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&go_html_escape(&canonical)),
                String::from_utf8_lossy(raw_signed),
                "{path:?}"
            );
            assert_eq!(
                envelope_bytes(&canonical, &file.signatures),
                raw,
                "{path:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 24, "only {checked} files checked");
}

#[test]
fn unusual_target_names_survive_and_are_escaped_in_the_envelope() {
    let f = fixtures()
        .into_iter()
        .find(|f| f.gun == "example.com/fixtures/app")
        .unwrap();
    let raw = read(&f, "targets.json");
    let targets = parse(&f, "targets.json").targets().unwrap();
    for name in [
        "plain.txt",
        "html <b>&amp; name",
        "café 😀 ünïcödé",
        "line\u{2028}separator",
        "with space/and \"quotes\" \\ backslash",
    ] {
        assert!(targets.targets.contains_key(name), "missing {name:?}");
    }
    let text = String::from_utf8(raw).unwrap();
    assert!(text.contains(r"html \u003cb\u003e\u0026amp; name"));
    assert!(text.contains(r"line\u2028separator"));
    assert!(
        text.contains("café 😀 ünïcödé"),
        "non-ASCII stays raw UTF-8"
    );
}

#[test]
fn every_key_id_matches_its_key() {
    let mut x509 = 0;
    for f in fixtures() {
        for path in json_files(&f.dir) {
            let file = SignedFile::parse(&std::fs::read(&path).unwrap()).unwrap();
            let keys = match file.common.type_.as_str() {
                "Root" => file.root().unwrap().keys,
                "Targets" => file.targets().unwrap().delegations.keys,
                _ => continue,
            };
            for (id, key) in keys {
                assert_eq!(key.key_id(), id, "{path:?}");
                if key.key_type.is_x509() {
                    x509 += 1;
                    let canonical = key.canonical_key_id().unwrap();
                    assert_ne!(canonical, id);
                    assert_eq!(canonical, key.certificate_public_key().unwrap().key_id());
                }
            }
        }
    }
    assert!(x509 > 0);
}

#[test]
fn timestamp_key_body_is_reproduced() {
    for f in fixtures() {
        let body = read(&f, "timestamp.key");
        let key = PublicKey::from_json_value(&serde_json::from_slice(&body).unwrap()).unwrap();
        assert_eq!(key.server_key_json(), body, "{}", f.gun);
        let root = parse(&f, "root.json").root().unwrap();
        assert!(
            root.roles["timestamp"].keyids.contains(&key.key_id()),
            "{}",
            f.gun
        );
    }
}

#[test]
fn full_repository_loads_with_all_checks() {
    let mut methods = BTreeSet::new();
    for f in fixtures() {
        let now = fixture_now(&f);
        let mut b = RepoBuilder::new(&f.gun, now);
        b.load("root", &read(&f, "root.json"), 1, false).unwrap();
        b.load("targets", &read(&f, "targets.json"), 1, false)
            .unwrap();
        for role in delegation_roles(&f) {
            b.load(&role, &read(&f, &format!("{role}.json")), 1, false)
                .unwrap_or_else(|e| panic!("{}: {role}: {e}", f.gun));
        }
        b.load("snapshot", &read(&f, "snapshot.json"), 1, false)
            .unwrap();
        b.load("timestamp", &read(&f, "timestamp.json"), 1, false)
            .unwrap();
        for path in json_files(&f.dir) {
            let file = SignedFile::parse(&std::fs::read(&path).unwrap()).unwrap();
            methods.extend(file.signatures.iter().map(|s| s.method.clone()));
        }
    }
    for m in [
        SignatureMethod::Ecdsa,
        SignatureMethod::RsaPss,
        SignatureMethod::Eddsa,
    ] {
        assert!(methods.contains(&m), "fixtures lack {m}");
    }
}

#[test]
fn root_versions_form_a_valid_rotation_chain() {
    for f in fixtures() {
        let now = fixture_now(&f);
        let mut prev: Option<Root> = None;
        let mut v = 1;
        while f.dir.join(format!("{v}.root.json")).exists() {
            let file = parse(&f, &format!("{v}.root.json"));
            let root = verify::validate_root(prev.as_ref(), &file, &f.gun, now)
                .unwrap_or_else(|e| panic!("{} v{v}: {e}", f.gun));
            assert_eq!(root.common.version, v);
            prev = Some(root);
            v += 1;
        }
        assert_eq!(
            read(&f, "root.json"),
            read(&f, &format!("{}.root.json", v - 1))
        );
    }
}

#[test]
fn root_rotation_needs_the_old_root_keys() {
    let f = fixtures()
        .into_iter()
        .find(|f| f.gun == "example.com/fixtures/app")
        .unwrap();
    let now = fixture_now(&f);
    let v3 = parse(&f, "3.root.json").root().unwrap();
    let v4 = parse(&f, "4.root.json");
    assert_ne!(
        v3.roles["root"].keyids,
        v4.root().unwrap().roles["root"].keyids
    );
    verify::validate_root(Some(&v3), &v4, &f.gun, now).unwrap();
    // Drop the old root key's signature: v4 is still self-consistent but not a valid rotation.
    let mut only_new = v4.clone();
    let new_ids = v4.root().unwrap().roles["root"].keyids.clone();
    only_new.signatures.retain(|s| new_ids.contains(&s.keyid));
    assert_eq!(only_new.signatures.len(), 1);
    verify::validate_root(None, &only_new, &f.gun, now).unwrap();
    assert!(matches!(
        verify::validate_root(Some(&v3), &only_new, &f.gun, now),
        Err(TufError::RootRotationFail(_))
    ));
    // And the GUN must match the certificate CN.
    assert!(matches!(
        verify::validate_root(None, &v4, "example.com/other", now),
        Err(TufError::RootValidationFail(_))
    ));
}

#[test]
fn first_client_snapshot_is_signed_by_the_first_root_snapshot_key() {
    for f in fixtures() {
        let root = parse(&f, "1.root.json").root().unwrap();
        let snap = parse(&f, "first-snapshot.json");
        verify::verify_signatures(&snap, &root.build_base_role("snapshot").unwrap()).unwrap();
        // The current (server) snapshot key is a different key once the snapshot moved.
        let current = parse(&f, "root.json").root().unwrap();
        if current.roles["snapshot"].keyids != root.roles["snapshot"].keyids {
            assert!(verify::verify_signatures(
                &snap,
                &current.build_base_role("snapshot").unwrap()
            )
            .is_err());
        }
    }
}

#[test]
fn snapshot_and_timestamp_hashes_cover_exact_bytes() {
    for f in fixtures() {
        let snap = parse(&f, "snapshot.json").snapshot().unwrap();
        let mut files = vec!["root".to_string(), "targets".to_string()];
        files.extend(delegation_roles(&f));
        for role in &files {
            let bytes = read(&f, &format!("{role}.json"));
            let meta = &snap.meta[role];
            assert_eq!(meta.length, bytes.len() as i64);
            metadata::check_hashes(&bytes, role, &meta.hashes).unwrap();
            assert_eq!(meta.hashes.len(), 2, "sha256 and sha512");
        }
        let ts = parse(&f, "timestamp.json").timestamp().unwrap();
        let snap_bytes = read(&f, "snapshot.json");
        assert_eq!(
            *ts.snapshot_meta().unwrap(),
            metadata::FileMeta::from_bytes(&snap_bytes)
        );
    }
}

#[test]
fn typed_views_rebuild_the_same_canonical_bytes() {
    // What the server generates (snapshot, timestamp) must be byte-identical to Go's output
    // for the same content; check every typed view round trip against Go's files.
    for f in fixtures() {
        for path in json_files(&f.dir) {
            let file = SignedFile::parse(&std::fs::read(&path).unwrap()).unwrap();
            if !file.signed_value["expires"]
                .as_str()
                .unwrap()
                .ends_with('Z')
            {
                continue;
            }
            let rebuilt = match file.common.type_.as_str() {
                "Root" => Root::from_signed_value(&file.signed_value)
                    .unwrap()
                    .to_signed_value(),
                "Targets" => Targets::from_signed_value(&file.signed_value)
                    .unwrap()
                    .to_signed_value(),
                "Snapshot" => Snapshot::from_signed_value(&file.signed_value)
                    .unwrap()
                    .to_signed_value(),
                "Timestamp" => Timestamp::from_signed_value(&file.signed_value)
                    .unwrap()
                    .to_signed_value(),
                other => panic!("unexpected type {other}"),
            };
            assert_eq!(
                String::from_utf8(to_canonical_bytes(&rebuilt).unwrap()).unwrap(),
                String::from_utf8(file.canonical_signed().unwrap()).unwrap(),
                "{path:?}"
            );
        }
    }
}

#[test]
fn expiry_and_tampering_are_detected_on_go_files() {
    let f = fixtures()
        .into_iter()
        .find(|f| f.gun == "example.com/fixtures/app")
        .unwrap();
    let now = fixture_now(&f);
    let load_all = |now: DateTime<Utc>, targets: &[u8]| -> Result<(), TufError> {
        let mut b = RepoBuilder::new(&f.gun, now);
        b.load("root", &read(&f, "root.json"), 1, false)?;
        b.load("targets", targets, 1, false)?;
        b.load("timestamp", &read(&f, "timestamp.json"), 1, false)
    };
    let targets = read(&f, "targets.json");
    load_all(now, &targets).unwrap();
    let later = parse(&f, "timestamp.json").common.expires + Duration::seconds(1);
    assert!(matches!(
        load_all(later, &targets),
        Err(TufError::Expired { .. })
    ));
    let tampered = String::from_utf8(targets)
        .unwrap()
        .replace("plain.txt", "plain.txx");
    assert!(matches!(
        load_all(now, tampered.as_bytes()),
        Err(TufError::RoleThreshold(_))
    ));
}

#[test]
fn go_rsa_root_uses_rsa_x509_and_rsapss() {
    let f = fixtures()
        .into_iter()
        .find(|f| f.gun == "example.com/fixtures/rsa-root")
        .unwrap();
    let file = parse(&f, "root.json");
    let root = file.root().unwrap();
    let root_key = &root.keys[&root.roles["root"].keyids[0]];
    assert_eq!(root_key.key_type, KeyType::RsaX509);
    assert!(file
        .signatures
        .iter()
        .all(|s| s.method == SignatureMethod::RsaPss));
}
