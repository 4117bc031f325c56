//! Built-in seed inputs per target: the fixture repository's files, the Go-made fixture
//! files of notary-tuf's tests, hand-written edge cases, and for tokens valid and hostile
//! `x5c` chains.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::{ca_params, fixture, leaf_params, token_fixture, BOUNDARY};

/// Seeds for the target called `name` (`canonical`, `metadata`, `multipart` or `token`).
pub fn for_target(name: &str) -> Vec<Vec<u8>> {
    match name {
        "canonical" => canonical(),
        "metadata" => metadata(),
        "multipart" => multipart(),
        "token" => token(),
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

/// A hostile `x5c`: a leaf and `n` CAs that all carry the name `ca_name`, are self-issued
/// and (with `same_key`) share one key, with distinct serials, so that each "issues" every
/// other one (issue 13: exponential path search).
pub fn hostile_x5c(ca_name: &str, n: u64, same_key: bool) -> Vec<String> {
    use rcgen::KeyPair;
    let first = KeyPair::generate().unwrap().serialize_pem();
    let key = |i: u64| match same_key || i == 0 {
        true => KeyPair::from_pem(&first).unwrap(),
        false => KeyPair::generate().unwrap(),
    };
    let issuer = rcgen::Issuer::new(ca_params(ca_name), key(0));
    let leaf = leaf_params("hostile token signer")
        .signed_by(&KeyPair::generate().unwrap(), &issuer)
        .unwrap();
    let mut x5c = vec![STANDARD.encode(leaf.der())];
    for i in 0..n {
        let mut p = ca_params(ca_name);
        p.serial_number = Some((1000 + i).into());
        x5c.push(STANDARD.encode(p.self_signed(&key(i)).unwrap().der()));
    }
    x5c
}

fn token() -> Vec<Vec<u8>> {
    let fx = token_fixture();
    let claims = fx.claims().to_string();
    // Header, newline, claims: the target signs these with the fixture's leaf key.
    let signed = |header: Value| format!("{header}\n{claims}").into_bytes();
    let chain = &fx.chain_b64;
    let valid = json!({"typ": "JWT", "alg": "ES256", "x5c": chain});
    let mut jwk_with_chain = fx.leaf_jwk();
    jwk_with_chain["x5c"] = json!(chain);
    vec![
        signed(valid.clone()),
        signed(json!({"alg": "ES256", "x5c": [chain[0]]})),
        signed(json!({"alg": "ES256", "x5c": [chain[0], chain[1], chain[1], chain[0]]})),
        signed(json!({"alg": "ES256", "jwk": jwk_with_chain})),
        signed(json!({"alg": "ES256", "jwk": fx.leaf_jwk()})),
        signed(json!({"alg": "ES256", "kid": "AAAA:BBBB:CCCC"})),
        signed(json!({"alg": "ES256", "x5c": hostile_x5c("evil CA", 7, true)})),
        signed(json!({"alg": "ES256", "x5c": hostile_x5c("evil CA", 7, false)})),
        signed(json!({"alg": "ES256", "x5c": hostile_x5c("fuzz token root", 7, true)})),
        signed(json!({"alg": "ES256", "x5c": hostile_x5c("evil CA", 12, true)})),
        fx.sign(valid.to_string().as_bytes(), claims.as_bytes())
            .into_bytes(),
        fx.sign(
            json!({"alg": "ES256", "x5c": hostile_x5c("evil CA", 7, true)})
                .to_string()
                .as_bytes(),
            claims.as_bytes(),
        )
        .into_bytes(),
        b"a.b.c".to_vec(),
        b"..".to_vec(),
    ]
}
