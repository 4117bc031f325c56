//! Built-in seed inputs per target: the fixture repository's files, the Go-made fixture
//! files of notary-tuf's tests, and hand-written edge cases.

use std::path::Path;

use crate::{fixture, BOUNDARY};

/// Seeds for the target called `name` (`canonical`, `metadata` or `multipart`).
pub fn for_target(name: &str) -> Vec<Vec<u8>> {
    match name {
        "canonical" => canonical(),
        "metadata" => metadata(),
        "multipart" => multipart(),
        other => panic!("unknown target {other}"),
    }
}

fn fixture_files() -> Vec<Vec<u8>> {
    let f = &fixture().files;
    let mut out = vec![f.root.clone(), f.snapshot.clone(), f.timestamp.clone()];
    out.extend(f.targets.values().cloned());
    out
}

/// Every `.json` file under notary-tuf's Go fixtures (made by the Go notary tools).
fn go_fixtures() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../notary-tuf/tests/data/go-notary");
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "json") {
                if let Ok(bytes) = std::fs::read(&p) {
                    out.push(bytes);
                }
            }
        }
    }
    out
}

fn canonical() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = [
        r#"{"b":1,"a":[true,false,null],"c":{"z":"<>&","y":"\u2028\u2029"}}"#,
        r#"{"é":1,"e":2,"E":3,"😀":4,"\u0000":5}"#,
        r#"[1.0,-0,1e3,9007199254740992,-9007199254740992,0.5,1e400]"#,
        r#"{"a":1,"a":2}"#,
        r#""\"\\\/\b\f\n\r\t\u0001""#,
        r#"{"signed":{"_type":"Targets","expires":"2030-01-01T00:00:00Z","version":1,"targets":{"a b":{"length":1,"hashes":{"sha256":"AA=="}}}},"signatures":[]}"#,
        "[[[[[[[[[[]]]]]]]]]]",
        "{}",
        "\"\"",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    out.extend(fixture_files());
    out.extend(go_fixtures().into_iter().take(8));
    out
}

fn metadata() -> Vec<Vec<u8>> {
    let mut out = fixture_files();
    out.extend(go_fixtures());
    out.push(br#"{"signed":{"_type":"Root","expires":"2030-01-01T00:00:00Z","version":1,"keys":{},"roles":{}},"signatures":[{"keyid":"ab","method":"ecdsa","sig":"AAEC"}]}"#.to_vec());
    out
}

/// A multipart body in the notary CLI's layout with the given (disposition, data) parts.
pub fn body(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (cd, data) in parts {
        b.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: {cd}\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

fn multipart() -> Vec<Vec<u8>> {
    let f = &fixture().files;
    let cd = |role: &str| format!("form-data; name=\"files\"; filename=\"{role}\"");
    let (root, targets, releases, snapshot) = (
        cd("root"),
        cd("targets"),
        cd("targets/releases"),
        cd("snapshot.json"),
    );
    vec![
        body(&[
            (&root, &f.root),
            (&targets, f.get("targets").unwrap()),
            (&releases, f.get("targets/releases").unwrap()),
            (&snapshot, &f.snapshot),
        ]),
        body(&[(&targets, f.get("targets").unwrap())]),
        body(&[(&targets, b"{}"), (&targets, b"null")]),
        body(&[("form-data; name=\"files\"", b"{}")]),
        body(&[("form-data; filename*=UTF-8''targets", b"{}")]),
        body(&[(&cd("Targets"), b"{}")]),
        body(&[(&cd("targets//x"), b"{}")]),
        body(&[]),
        format!("preamble\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; filename=\"root\"\r\n\r\n{{}}\r\n--{BOUNDARY}--")
            .into_bytes(),
    ]
}
