//! CPU cost of verifying a registry token whose `x5c` is hostile: a leaf and `n` CA
//! certificates that share one subject name and (unless `--distinct-keys`) one key, with
//! distinct serials, so that each of them "issues" every other one. Issue 13: the old
//! depth-first chain search tried ~n·(n−1)^8 signature checks for this.
//!
//! ```sh
//! cargo run -p notary-server --example token_x5c_cpu -- 3 4 5          # CA counts
//! cargo run -p notary-server --example token_x5c_cpu -- --distinct-keys 7
//! ```
//!
//! Prints, per `n`, the header size and the thread CPU time of one `verify` call (read
//! from `/proc/thread-self/schedstat`, so other load on the machine does not count;
//! averaged over repeated calls when one takes less than 200 ms).

use std::time::SystemTime;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use notary_server::http::token::TokenVerifier;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

fn params(name: &str, ca: bool) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    p
}

/// Nanoseconds this thread has run on a CPU.
fn thread_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    s.split_whitespace().next().unwrap().parse().unwrap()
}

fn hostile_token(n: usize, distinct_keys: bool) -> String {
    let first = KeyPair::generate().unwrap().serialize_pem();
    let key = |i: usize| match distinct_keys && i > 0 {
        true => KeyPair::generate().unwrap(),
        false => KeyPair::from_pem(&first).unwrap(),
    };
    let leaf_key = KeyPair::generate().unwrap();
    let issuer = rcgen::Issuer::new(params("evil CA", true), key(0));
    let mut x5c = vec![STANDARD.encode(
        params("token signer", false)
            .signed_by(&leaf_key, &issuer)
            .unwrap()
            .der(),
    )];
    for i in 0..n {
        let mut p = params("evil CA", true);
        p.serial_number = Some((1000 + i as u64).into());
        x5c.push(STANDARD.encode(p.self_signed(&key(i)).unwrap().der()));
    }
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"alg": "ES256", "x5c": x5c});
    let claims = json!({"iss": "issuer", "aud": "service", "sub": "eve", "exp": t + 300,
                        "nbf": t - 10, "access": []});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let rng = SystemRandom::new();
    let signer = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &leaf_key.serialize_der(),
        &rng,
    )
    .unwrap();
    let sig = signer.sign(&rng, input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

fn main() {
    let mut distinct_keys = false;
    let mut counts = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--distinct-keys" => distinct_keys = true,
            n => counts.push(n.parse::<usize>().expect("a CA count")),
        }
    }
    if counts.is_empty() {
        counts = vec![10, 20, 50];
    }
    let root =
        CertifiedIssuer::self_signed(params("root", true), KeyPair::generate().unwrap()).unwrap();
    let verifier = TokenVerifier::new("issuer", "service", root.pem().as_bytes()).unwrap();
    for n in counts {
        let token = hostile_token(n, distinct_keys);
        let header_len = token.split('.').next().unwrap().len();
        // Repeat fast calls until 200 ms of CPU (the counter moves in scheduler ticks).
        let start = thread_cpu_ns();
        let mut calls = 0u32;
        let result = loop {
            let result = verifier.verify(&token, SystemTime::now());
            calls += 1;
            if thread_cpu_ns() - start >= 200_000_000 || calls == 100_000 {
                break result;
            }
        };
        let cpu = (thread_cpu_ns() - start) / u64::from(calls);
        println!(
            "n={n:3} CAs ({} keys), header {header_len} B: {:.3} ms CPU per token ({calls} \
             calls), {}",
            if distinct_keys { "distinct" } else { "one" },
            cpu as f64 / 1e6,
            match result {
                Ok(_) => "accepted".to_string(),
                Err(e) => format!("refused: {e}"),
            }
        );
    }
}
