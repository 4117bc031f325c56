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
//! - [`token`]: registry bearer tokens (`http::token::TokenVerifier`): parsing, the
//!   signing-key rules and `x5c` chain building against a fixed bundle, with hostile
//!   chains among the seeds. Only the fixture's leaf key can sign an accepted token, so an
//!   accepted input must carry the fixture's leaf certificate (or, given as a whole token,
//!   be one the fixture signed); a hang is a failure too (libFuzzer's `-timeout`).
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

/// `iss` and `aud` the token fixture's verifier expects.
pub const TOKEN_ISSUER: &str = "fuzz-issuer";
/// See [`TOKEN_ISSUER`].
pub const TOKEN_SERVICE: &str = "fuzz-service";

/// The token fixture: a bundle root, an intermediate and a signing leaf.
pub struct TokenFixture {
    /// Checks tokens against the root.
    pub verifier: notary_server::http::token::TokenVerifier,
    /// The clock every verification uses (inside the certificates' validity).
    pub now: std::time::SystemTime,
    /// `x5c` of the leaf and the intermediate (standard base64 DER).
    pub chain_b64: Vec<String>,
    /// The leaf's key, which signs header/claims inputs.
    leaf_key: ring::signature::EcdsaKeyPair,
}

/// base64url as tokens use it: padding optional, trailing bits allowed.
const B64URL: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

impl TokenFixture {
    /// A compact token: `header` and `claims` base64url-encoded and signed by the leaf key.
    pub fn sign(&self, header: &[u8], claims: &[u8]) -> String {
        use base64::Engine as _;
        let input = format!("{}.{}", B64URL.encode(header), B64URL.encode(claims));
        let sig = self
            .leaf_key
            .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
            .expect("ECDSA signing");
        format!("{input}.{}", B64URL.encode(sig.as_ref()))
    }

    /// Whether `signature` (base64url) over `input` is the leaf key's.
    fn leaf_signed(&self, input: &str, signature: &str) -> bool {
        use base64::Engine as _;
        use ring::signature::{KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
        let Ok(sig) = B64URL.decode(signature) else {
            return false;
        };
        UnparsedPublicKey::new(
            &ECDSA_P256_SHA256_FIXED,
            self.leaf_key.public_key().as_ref(),
        )
        .verify(input.as_bytes(), &sig)
        .is_ok()
    }

    /// The leaf's public key as a JWK (no `x5c`).
    pub fn leaf_jwk(&self) -> Value {
        use base64::Engine as _;
        use ring::signature::KeyPair as _;
        let point = self.leaf_key.public_key().as_ref();
        serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": B64URL.encode(&point[1..33]), "y": B64URL.encode(&point[33..65])})
    }

    /// Claims the verifier accepts at [`TokenFixture::now`].
    pub fn claims(&self) -> Value {
        let t = self
            .now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        serde_json::json!({"iss": TOKEN_ISSUER, "sub": "fuzz", "aud": TOKEN_SERVICE,
            "exp": t + 300, "nbf": t - 10, "iat": t - 10, "jti": "1",
            "access": [{"type": "repository", "name": "fuzz/app", "actions": ["pull"]}]})
    }
}

/// Parameters of a CA certificate named `cn` (no path length limit).
pub fn ca_params(cn: &str) -> rcgen::CertificateParams {
    let mut p = leaf_params(cn);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p
}

/// Parameters of an end-entity certificate named `cn`.
pub fn leaf_params(cn: &str) -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p
}

/// The token fixture, built once per process with fresh keys.
pub fn token_fixture() -> &'static TokenFixture {
    static FIXTURE: OnceLock<TokenFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine as _;
        use rcgen::{CertifiedIssuer, KeyPair};
        let root = CertifiedIssuer::self_signed(
            ca_params("fuzz token root"),
            KeyPair::generate().unwrap(),
        )
        .unwrap();
        let inter = CertifiedIssuer::signed_by(
            ca_params("fuzz token intermediate"),
            KeyPair::generate().unwrap(),
            &root,
        )
        .unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf_params("fuzz token signer")
            .signed_by(&leaf_key, &inter)
            .unwrap();
        TokenFixture {
            verifier: notary_server::http::token::TokenVerifier::new(
                TOKEN_ISSUER,
                TOKEN_SERVICE,
                root.pem().as_bytes(),
            )
            .unwrap(),
            // 2030-01-01; rcgen's certificates are valid from 1975 to 4096.
            now: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_893_456_000),
            chain_b64: vec![STANDARD.encode(leaf.der()), STANDARD.encode(inter.der())],
            leaf_key: ring::signature::EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &leaf_key.serialize_der(),
                &ring::rand::SystemRandom::new(),
            )
            .unwrap(),
        }
    })
}

/// Whether any string in `v` equals `s`.
fn contains_string(v: &Value, s: &str) -> bool {
    match v {
        Value::String(x) => x == s,
        Value::Array(items) => items.iter().any(|i| contains_string(i, s)),
        Value::Object(m) => m.values().any(|i| contains_string(i, s)),
        _ => false,
    }
}

/// Registry token verification (see the crate docs). An input starting with `{` is a
/// JSON header, a newline and JSON claims, which the fixture's leaf key signs (so chain
/// building and the signing-key rules run under a valid signature); any other input is
/// a compact token as a client sends it.
pub fn token(data: &[u8]) {
    token_accepted(data);
}

/// [`token`], returning whether the verifier accepted the input.
pub fn token_accepted(data: &[u8]) -> bool {
    let fx = token_fixture();
    if data.first() == Some(&b'{') {
        let (header, claims) = match data.iter().position(|&b| b == b'\n') {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &b"{}"[..]),
        };
        let token = fx.sign(header, claims);
        let accepted = fx.verifier.verify(&token, fx.now).is_ok();
        if accepted {
            // Only the leaf's certificate vouches for the leaf's key.
            let header: Value = serde_json::from_slice(header).expect("accepted header is JSON");
            assert!(
                contains_string(&header, &fx.chain_b64[0]),
                "accepted a token whose header does not carry the signing leaf"
            );
        }
        accepted
    } else {
        let Ok(raw) = std::str::from_utf8(data) else {
            return false;
        };
        let accepted = fx.verifier.verify(raw, fx.now).is_ok();
        if accepted {
            // The bundle trusts no key but the root's, which signs no tokens: an accepted
            // token must be signed by the fixture's leaf.
            let (input, signature) = raw.rsplit_once('.').expect("accepted token has parts");
            assert!(
                fx.leaf_signed(input, signature),
                "accepted a token the fixture's leaf did not sign"
            );
        }
        accepted
    }
}
