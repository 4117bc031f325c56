//! Registry bearer tokens: parsing and verification as Go notary-server does it with
//! docker/distribution's `registry/auth/token` package and libtrust (spec §9).
//!
//! A token is a compact JWS (`header.claims.signature`, base64url with optional padding).
//! [`Token::parse`] fails with [`TokenError::Malformed`] where Go's `NewToken` fails;
//! [`TokenVerifier::verify`] fails with [`TokenError::Invalid`] where Go's `Verify` does,
//! checking in Go's order: `iss`, `aud`, `exp` and `nbf` (60 s leeway), a non-empty
//! signature, the signing key (header `x5c`, else `jwk`, else `kid`), the signature.
//!
//! Why not a JWT crate: `jsonwebtoken` cannot verify an `x5c` chain or resolve libtrust key
//! IDs, and Go's rules differ from RFC 7519 (e.g. `aud` must be one string). Only the JOSE
//! framing (splitting, base64url, JSON fields) and Go's chain rules on top of
//! rustls-webpki's path building are written here; every signature is checked by `ring`,
//! directly for the JWS and through webpki for certificates.
//!
//! Supported algorithms: ES256 (P-256), ES384 (P-384), RS256/RS384/RS512 (RSA ≥ 2048 bits).
//! ES512 (P-521) keys are accepted in the bundle but their tokens are refused as invalid,
//! because `ring` has no P-521; Go accepts them.
//!
//! Go's JSON decoding is followed where clients could notice: member names match
//! case-insensitively (last match wins), `null` leaves a field empty, and a member of the
//! wrong type (e.g. an `aud` array or a fractional `exp`) makes the token malformed.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use ring::signature::{self as sig, RsaPublicKeyComponents, UnparsedPublicKey};
use rustls::pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm,
    TrustAnchor, UnixTime,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter, VerifiedPath};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{
    Oid, OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::prelude::FromDer;
use x509_parser::time::ASN1Time;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Version};

/// Clock skew allowed on `exp` and `nbf` (Go's `token.Leeway`).
pub const LEEWAY_SECS: i64 = 60;

/// Why a token was refused. The challenge says `error="invalid_token"` for both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a decodable JWS (Go's `ErrMalformedToken`).
    #[error("malformed token: {0}")]
    Malformed(String),
    /// Decodable but not acceptable (Go's `ErrInvalidToken`).
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// A problem with `auth.options.rootcertbundle`, found at startup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BundleError(pub String);

/// One `access` entry of the claims.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceActions {
    /// `repository` or `registry`.
    pub resource_type: String,
    /// The GUN, or `catalog`.
    pub name: String,
    /// Granted actions; `*` grants every action.
    pub actions: Vec<String>,
}

/// The claims Go reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claims {
    /// `iss`
    pub issuer: String,
    /// `sub`: the account the token was issued to.
    pub subject: String,
    /// `aud` (one string, as in Go).
    pub audience: String,
    /// `exp`, Unix seconds (0 when absent, which is expired).
    pub expiration: i64,
    /// `nbf`, Unix seconds (0 when absent).
    pub not_before: i64,
    /// `access`
    pub access: Vec<ResourceActions>,
}

impl Claims {
    /// Whether the token grants `action` on (`resource_type`, `name`): the action itself
    /// or `*` must be listed. A required `*` is therefore only met by a literal `*`.
    pub fn grants(&self, resource_type: &str, name: &str, action: &str) -> bool {
        self.access
            .iter()
            .filter(|r| r.resource_type == resource_type && r.name == name)
            .flat_map(|r| r.actions.iter())
            .any(|a| a == "*" || a == action)
    }
}

/// The JOSE header members Go reads.
#[derive(Debug, Clone, PartialEq, Default)]
struct Header {
    alg: String,
    kid: String,
    x5c: Vec<String>,
    jwk: Option<Value>,
}

/// A parsed, not yet verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// `header.claims` as sent: the signed bytes.
    signing_input: String,
    header: Header,
    /// The decoded claims.
    pub claims: Claims,
    signature: Vec<u8>,
}

/// Go's `joseBase64UrlDecode`: base64url, padding optional, a length of 1 mod 4 refused.
fn b64url(s: &str) -> Result<Vec<u8>, String> {
    const URL: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    if s.len() % 4 == 1 {
        return Err("illegal base64url string".into());
    }
    URL.decode(s).map_err(|e| e.to_string())
}

/// The value of member `name` matched like Go's `encoding/json`: case-insensitively, the
/// last matching member winning. `null` counts as absent.
fn member<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .next_back()
        .filter(|v| !v.is_null())
}

fn string_member(obj: &Map<String, Value>, name: &str) -> Result<String, String> {
    match member(obj, name) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("{name}: expected a string, got {other}")),
    }
}

fn int_member(obj: &Map<String, Value>, name: &str) -> Result<i64, String> {
    match member(obj, name) {
        None => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("{name}: {n} is not a 64-bit integer")),
        Some(other) => Err(format!("{name}: expected a number, got {other}")),
    }
}

fn string_list(value: Option<&Value>, name: &str) -> Result<Vec<String>, String> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Null => Ok(String::new()),
                other => Err(format!("{name}: expected strings, got {other}")),
            })
            .collect(),
        Some(other) => Err(format!("{name}: expected an array, got {other}")),
    }
}

/// A JSON object, or `null` (which Go decodes into an empty struct).
fn object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(bytes).map_err(|e| format!("{what}: {e}"))? {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        other => Err(format!("{what}: expected an object, got {other}")),
    }
}

impl Token {
    /// Go's `NewToken`: three dot-separated parts, each decodable, header and claims JSON.
    pub fn parse(raw: &str) -> Result<Token, TokenError> {
        let malformed = TokenError::Malformed;
        let parts: Vec<&str> = raw.split('.').collect();
        let [header_b64, claims_b64, signature_b64] = parts[..] else {
            return Err(malformed(format!("{} parts, expected 3", parts.len())));
        };
        let header_json = b64url(header_b64).map_err(|e| malformed(format!("header: {e}")))?;
        let claims_json = b64url(claims_b64).map_err(|e| malformed(format!("claims: {e}")))?;
        let signature = b64url(signature_b64).map_err(|e| malformed(format!("signature: {e}")))?;

        let h = object(&header_json, "header").map_err(malformed)?;
        let header = Header {
            alg: string_member(&h, "alg").map_err(malformed)?,
            kid: string_member(&h, "kid").map_err(malformed)?,
            x5c: string_list(member(&h, "x5c"), "x5c").map_err(malformed)?,
            jwk: member(&h, "jwk").cloned(),
        };
        // `typ` is decoded (so a non-string fails as in Go) but not used.
        string_member(&h, "typ").map_err(malformed)?;

        let c = object(&claims_json, "claims").map_err(malformed)?;
        let access = match member(&c, "access") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| {
                    let Value::Object(o) = v else {
                        return Err(format!("access: expected objects, got {v}"));
                    };
                    string_member(o, "class")?;
                    Ok(ResourceActions {
                        resource_type: string_member(o, "type")?,
                        name: string_member(o, "name")?,
                        actions: string_list(member(o, "actions"), "actions")?,
                    })
                })
                .collect::<Result<_, String>>()
                .map_err(malformed)?,
            Some(other) => {
                return Err(malformed(format!("access: expected an array, got {other}")))
            }
        };
        // Decoded for type checking only, as in Go.
        int_member(&c, "iat").map_err(malformed)?;
        string_member(&c, "jti").map_err(malformed)?;
        let claims = Claims {
            issuer: string_member(&c, "iss").map_err(malformed)?,
            subject: string_member(&c, "sub").map_err(malformed)?,
            audience: string_member(&c, "aud").map_err(malformed)?,
            expiration: int_member(&c, "exp").map_err(malformed)?,
            not_before: int_member(&c, "nbf").map_err(malformed)?,
            access,
        };
        Ok(Token {
            signing_input: format!("{header_b64}.{claims_b64}"),
            header,
            claims,
            signature,
        })
    }
}

/// Elliptic curves libtrust knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn byte_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    fn oid(self) -> Oid<'static> {
        match self {
            Curve::P256 => OID_EC_P256,
            Curve::P384 => OID_NIST_EC_P384,
            Curve::P521 => OID_NIST_EC_P521,
        }
    }

    /// The only JWS algorithm libtrust accepts for a key on this curve.
    fn alg(self) -> &'static str {
        match self {
            Curve::P256 => "ES256",
            Curve::P384 => "ES384",
            Curve::P521 => "ES512",
        }
    }
}

/// A token signing key: what libtrust calls a `PublicKey`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey(KeyMaterial);

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyMaterial {
    /// Uncompressed SEC1 point.
    Ec { curve: Curve, point: Vec<u8> },
    /// Big-endian modulus and exponent, no leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b[first..].to_vec()
}

fn oid_der(oid: &Oid<'_>) -> yasna::models::ObjectIdentifier {
    let arcs: Vec<u64> = oid.iter().map(|it| it.collect()).unwrap_or_default();
    yasna::models::ObjectIdentifier::from_slice(&arcs)
}

impl SigningKey {
    /// The key of a certificate's SubjectPublicKeyInfo (EC P-256/384/521 or RSA).
    fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<SigningKey, String> {
        use x509_parser::public_key::PublicKey as P;
        match spki.parsed().map_err(|e| format!("public key: {e}"))? {
            P::RSA(rsa) => Ok(SigningKey(KeyMaterial::Rsa {
                n: strip_zeros(rsa.modulus),
                e: strip_zeros(rsa.exponent),
            })),
            P::EC(point) if spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY => {
                let curve_oid = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .ok_or("EC key without a named curve")?;
                let curve = [Curve::P256, Curve::P384, Curve::P521]
                    .into_iter()
                    .find(|c| c.oid() == curve_oid)
                    .ok_or_else(|| format!("unsupported curve {curve_oid}"))?;
                let data = point.data();
                if data.len() != 1 + 2 * curve.byte_len() || data[0] != 4 {
                    return Err("EC point is not uncompressed".into());
                }
                Ok(SigningKey(KeyMaterial::Ec {
                    curve,
                    point: data.to_vec(),
                }))
            }
            _ => Err(format!(
                "unsupported key algorithm {}",
                spki.algorithm.algorithm
            )),
        }
    }

    /// libtrust's `UnmarshalPublicKeyJWK` (public keys only): `kty` `EC` with `crv`, `x`,
    /// `y`, or `RSA` with `n`, `e`; an optional `kid` must match the key.
    fn from_jwk(jwk: &Map<String, Value>) -> Result<SigningKey, String> {
        let text = |name: &str| match jwk.get(name) {
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(_) => Err(format!("JWK {name:?} value must be a string")),
            None => Err(format!("JWK {name:?} value not specified")),
        };
        let key = match text("kty")? {
            "EC" => {
                let curve = match text("crv")? {
                    "P-256" => Curve::P256,
                    "P-384" => Curve::P384,
                    "P-521" => Curve::P521,
                    other => return Err(format!("JWK EC curve not supported: {other:?}")),
                };
                let mut point = vec![4u8];
                for c in ["x", "y"] {
                    let bytes = b64url(text(c)?).map_err(|e| format!("JWK {c}: {e}"))?;
                    if bytes.len() != curve.byte_len() {
                        return Err(format!("JWK {c}: {} octets", bytes.len()));
                    }
                    point.extend_from_slice(&bytes);
                }
                SigningKey(KeyMaterial::Ec { curve, point })
            }
            "RSA" => {
                let n = b64url(text("n")?).map_err(|e| format!("JWK n: {e}"))?;
                let e = b64url(text("e")?).map_err(|e| format!("JWK e: {e}"))?;
                // Go reads `e` into 32 bits.
                if e.len() > 4 {
                    return Err("JWK e: exponent too large".into());
                }
                if jwk.contains_key("d") {
                    return Err("JWK RSA public key cannot contain private exponent".into());
                }
                SigningKey(KeyMaterial::Rsa {
                    n: strip_zeros(&n),
                    e: strip_zeros(&e),
                })
            }
            other => return Err(format!("JWK key type not supported: {other:?}")),
        };
        if jwk.contains_key("kid") && text("kid")? != key.key_id() {
            return Err("JWK key ID does not match the key".into());
        }
        Ok(key)
    }

    /// DER SubjectPublicKeyInfo, as Go's `x509.MarshalPKIXPublicKey` writes it.
    fn spki_der(&self) -> Vec<u8> {
        yasna::construct_der(|w| {
            w.write_sequence(|w| match &self.0 {
                KeyMaterial::Ec { curve, point } => {
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&oid_der(&OID_KEY_TYPE_EC_PUBLIC_KEY));
                        w.next().write_oid(&oid_der(&curve.oid()));
                    });
                    w.next().write_bitvec_bytes(point, point.len() * 8);
                }
                KeyMaterial::Rsa { n, e } => {
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&oid_der(&OID_PKCS1_RSAENCRYPTION));
                        w.next().write_null();
                    });
                    let inner = yasna::construct_der(|w| {
                        w.write_sequence(|w| {
                            w.next().write_bigint_bytes(n, true);
                            w.next().write_bigint_bytes(e, true);
                        })
                    });
                    w.next().write_bitvec_bytes(&inner, inner.len() * 8);
                }
            })
        })
    }

    /// The libtrust key ID: SHA-256 of the SubjectPublicKeyInfo, truncated to 240 bits,
    /// base32 in twelve colon-separated groups of four.
    pub fn key_id(&self) -> String {
        let digest = Sha256::digest(self.spki_der());
        let b32 = data_encoding::BASE32_NOPAD.encode(&digest[..30]);
        b32.as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// libtrust's `Verify` for a JWS algorithm name.
    fn verify(&self, alg: &str, msg: &[u8], signature: &[u8]) -> Result<(), String> {
        let bad = |_| format!("{alg} signature does not verify");
        match &self.0 {
            KeyMaterial::Ec { curve, point } => {
                if alg != curve.alg() {
                    return Err(format!("EC key on {curve:?} does not support {alg:?}"));
                }
                if signature.len() != 2 * curve.byte_len() {
                    return Err(format!("signature is {} octets", signature.len()));
                }
                let algorithm = match curve {
                    Curve::P256 => &sig::ECDSA_P256_SHA256_FIXED,
                    Curve::P384 => &sig::ECDSA_P384_SHA384_FIXED,
                    Curve::P521 => return Err("ES512 (P-521) is not supported".into()),
                };
                UnparsedPublicKey::new(algorithm, point)
                    .verify(msg, signature)
                    .map_err(bad)
            }
            KeyMaterial::Rsa { n, e } => {
                let params = match alg {
                    "RS256" => &sig::RSA_PKCS1_2048_8192_SHA256,
                    "RS384" => &sig::RSA_PKCS1_2048_8192_SHA384,
                    "RS512" => &sig::RSA_PKCS1_2048_8192_SHA512,
                    other => return Err(format!("RSA key does not support {other:?}")),
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, msg, signature)
                    .map_err(bad)
            }
        }
    }
}

/// Checks tokens against one issuer, service and root bundle (Go's `accessController`).
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    issuer: String,
    service: String,
    /// DER of every bundle certificate.
    roots: Vec<CertificateDer<'static>>,
    /// libtrust key ID → key, for the bundle certificates (header `kid`, trusted `jwk`).
    trusted_keys: HashMap<String, SigningKey>,
}

impl TokenVerifier {
    /// Reads the bundle: every `CERTIFICATE` PEM block must parse and carry an EC (P-256,
    /// P-384, P-521) or RSA key, and there must be at least one, as Go requires.
    pub fn new(issuer: &str, service: &str, bundle_pem: &[u8]) -> Result<Self, BundleError> {
        let mut roots = Vec::new();
        let mut trusted_keys = HashMap::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(bundle_pem) {
            let pem = pem.map_err(|e| BundleError(format!("bad PEM: {e}")))?;
            if pem.label != "CERTIFICATE" {
                continue;
            }
            let cert = pem.parse_x509().map_err(|e| {
                BundleError(format!("unable to parse token auth root certificate: {e}"))
            })?;
            let key = SigningKey::from_spki(cert.public_key()).map_err(|e| {
                BundleError(format!(
                    "unable to get public key from token auth root certificate: {e}"
                ))
            })?;
            trusted_keys.insert(key.key_id(), key);
            roots.push(CertificateDer::from(pem.contents.clone()));
        }
        if roots.is_empty() {
            return Err(BundleError(
                "token auth requires at least one token signing root certificate".into(),
            ));
        }
        Ok(TokenVerifier {
            issuer: issuer.to_owned(),
            service: service.to_owned(),
            roots,
            trusted_keys,
        })
    }

    /// libtrust key IDs of the bundle certificates' keys.
    pub fn trusted_key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.trusted_keys.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Parses and verifies `raw` at time `now`; returns the claims of a good token.
    pub fn verify(&self, raw: &str, now: SystemTime) -> Result<Claims, TokenError> {
        let token = Token::parse(raw)?;
        self.verify_parsed(&token, now)?;
        Ok(token.claims)
    }

    /// Go's `Token.Verify`, in its order.
    pub fn verify_parsed(&self, token: &Token, now: SystemTime) -> Result<(), TokenError> {
        let invalid = TokenError::Invalid;
        let c = &token.claims;
        if c.issuer != self.issuer {
            return Err(invalid(format!("untrusted issuer {:?}", c.issuer)));
        }
        if c.audience != self.service {
            return Err(invalid(format!("intended for audience {:?}", c.audience)));
        }
        let now_ns = unix_nanos(now);
        let secs_ns = |s: i64| i128::from(s) * 1_000_000_000;
        if now_ns > secs_ns(c.expiration.saturating_add(LEEWAY_SECS)) {
            return Err(invalid(format!("expired at {}", c.expiration)));
        }
        if now_ns < secs_ns(c.not_before.saturating_sub(LEEWAY_SECS)) {
            return Err(invalid(format!("not valid before {}", c.not_before)));
        }
        if token.signature.is_empty() {
            return Err(invalid("no signature".into()));
        }
        let now_secs = i64::try_from(now_ns / 1_000_000_000).unwrap_or(i64::MAX);
        let key = self.signing_key(&token.header, now_secs).map_err(invalid)?;
        key.verify(
            &token.header.alg,
            token.signing_input.as_bytes(),
            &token.signature,
        )
        .map_err(invalid)
    }

    /// Go's `VerifySigningKey`: `x5c`, else `jwk`, else `kid`.
    fn signing_key(&self, header: &Header, now: i64) -> Result<SigningKey, String> {
        if !header.x5c.is_empty() {
            return self.verify_chain(&header.x5c, now);
        }
        if let Some(jwk) = &header.jwk {
            let Value::Object(map) = jwk else {
                return Err("unable to decode raw JWK value: not an object".into());
            };
            let key = SigningKey::from_jwk(map)
                .map_err(|e| format!("unable to decode raw JWK value: {e}"))?;
            let Some(Value::Array(chain)) = map.get("x5c") else {
                return if self.trusted_keys.contains_key(&key.key_id()) {
                    Ok(key)
                } else {
                    Err("untrusted JWK with no certificate chain".into())
                };
            };
            let chain = chain
                .iter()
                .map(|v| match v {
                    Value::String(s) if !s.is_empty() => Ok(s.clone()),
                    _ => Err("malformed certificate chain".to_string()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let leaf = self
                .verify_chain(&chain, now)
                .map_err(|e| format!("could not verify JWK certificate chain: {e}"))?;
            if leaf.key_id() != key.key_id() {
                return Err("leaf certificate public key ID does not match JWK key ID".into());
            }
            return Ok(key);
        }
        if !header.kid.is_empty() {
            return self
                .trusted_keys
                .get(&header.kid)
                .cloned()
                .ok_or_else(|| format!("token signed by untrusted key with ID: {:?}", header.kid));
        }
        Err("unable to get token signing key".into())
    }

    /// Go's `parseAndVerifyCertChain` + `x509.Verify` with any extended key usage: the leaf
    /// (first entry) must be valid now and either be a bundle certificate or chain to one
    /// through the other entries.
    ///
    /// Path building is rustls-webpki's: it keeps a signature-check budget of 100 (Go's
    /// `maxChainSignatureChecks`, the CVE-2018-16875 fix) and a path-building budget, skips
    /// an issuer whose name and key are already on the path, refuses SHA-1 signatures (none
    /// of the algorithms given to it use SHA-1) and unknown critical extensions on every
    /// certificate, and honours name constraints (on intermediates and bundle roots).
    /// What Go checks and webpki does not is added here: any extended key usage (a
    /// validator that accepts all), the bundle leaf, and on each candidate path
    /// ([`Self::go_path_rules`]) the root's validity, critical extensions, path length and
    /// CA status, and the issuers' key usage.
    ///
    /// Known differences from Go, all refusals of rare chains: webpki refuses a leaf that
    /// is a CA certificate or X.509 v1 (unless it is itself in the bundle), paths of more
    /// than 6 intermediates, P-521 and SHA-512-with-ECDSA signatures (ring has neither),
    /// and critical extensions Go knows but webpki does not (e.g. certificate policies).
    fn verify_chain(&self, x5c: &[String], now: i64) -> Result<SigningKey, String> {
        // Each path-building step parses every intermediate, and Go parses every entry up
        // front: bound the work per token. Go has no bound, but real chains are a leaf and
        // one or two CAs.
        if x5c.len() > MAX_X5C_CERTS {
            return Err(format!(
                "x5c has {} certificates, more than {MAX_X5C_CERTS}",
                x5c.len()
            ));
        }
        let ders = x5c
            .iter()
            .enumerate()
            .map(|(i, b64)| {
                STANDARD
                    .decode(b64)
                    .map_err(|e| format!("unable to decode certificate {i}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Go parses every entry, so one that does not parse fails the token.
        let chain = ders
            .iter()
            .map(|d| parse_der(d))
            .collect::<Result<Vec<_>, _>>()?;
        let when = ASN1Time::from_timestamp(now).map_err(|e| e.to_string())?;
        let leaf = &chain[0];
        if !leaf.validity().is_valid_at(when) {
            return Err("leaf certificate has expired or is not yet valid".into());
        }
        if has_unhandled_critical_extension(leaf) {
            return Err("leaf certificate has an unhandled critical extension".into());
        }
        let leaf_key = SigningKey::from_spki(leaf.public_key())?;
        if self.roots.iter().any(|r| r.as_ref() == ders[0].as_slice()) {
            return Ok(leaf_key);
        }

        // Bundle certificates webpki cannot read as trust anchors cannot anchor a chain
        // (they still serve `kid` and `jwk`).
        let (anchors, anchor_roots): (Vec<TrustAnchor<'_>>, Vec<&CertificateDer<'static>>) = self
            .roots
            .iter()
            .filter_map(|r| Some((webpki::anchor_from_trusted_cert(r).ok()?, r)))
            .unzip();
        let intermediates: Vec<CertificateDer<'_>> = ders[1..]
            .iter()
            .map(|d| CertificateDer::from(d.as_slice()))
            .collect();
        let leaf_der = CertificateDer::from(ders[0].as_slice());
        let end_entity = EndEntityCert::try_from(&leaf_der)
            .map_err(|e| format!("leaf certificate not usable for a chain: {e}"))?;
        let algs: Vec<CountedAlg> = CERT_SIGNATURE_ALGS.iter().map(|a| CountedAlg(*a)).collect();
        let algs: Vec<&dyn SignatureVerificationAlgorithm> = algs
            .iter()
            .map(|a| a as &dyn SignatureVerificationAlgorithm)
            .collect();
        let time = UnixTime::since_unix_epoch(Duration::from_secs(now.max(0) as u64));
        let go_rules = |path: &VerifiedPath<'_>| {
            let root = anchors
                .iter()
                .position(|a| std::ptr::eq(a, path.anchor()))
                .map(|i| anchor_roots[i])
                .ok_or(webpki::Error::UnknownIssuer)?;
            Self::go_path_rules(path, root, when)
        };
        end_entity
            .verify_for_usage(
                &algs,
                &anchors,
                &intermediates,
                time,
                AnyExtendedKeyUsage::default(),
                None,
                Some(&go_rules),
            )
            .map_err(|e| match e {
                webpki::Error::MaximumSignatureChecksExceeded
                | webpki::Error::MaximumPathBuildCallsExceeded => {
                    format!("certificate chain search budget exhausted ({e})")
                }
                e => format!("certificate chain does not lead to a trusted root: {e}"),
            })?;
        Ok(leaf_key)
    }

    /// Go's rules for a path webpki has verified up to `root` that webpki does not apply
    /// itself (an error makes webpki try other paths).
    fn go_path_rules(
        path: &VerifiedPath<'_>,
        root: &CertificateDer<'_>,
        when: ASN1Time,
    ) -> Result<(), webpki::Error> {
        let root = parse_der(root).map_err(|_| webpki::Error::BadDer)?;
        // `isValid` on the root: validity, critical extensions, `pathLenConstraint`.
        if !root.validity().is_valid_at(when) {
            return Err(webpki::Error::InvalidCertValidity);
        }
        if has_unhandled_critical_extension(&root) {
            return Err(webpki::Error::UnsupportedCriticalExtension);
        }
        let intermediates = path.intermediate_certificates().count();
        if !within_path_len(&root, intermediates) {
            return Err(webpki::Error::PathLenConstraintViolated);
        }
        // `CheckSignatureFrom` on every issuer: a v3 issuer must be a CA, and one that
        // lists key usages must list certificate signing.
        let may_sign = |cert: &X509Certificate<'_>| {
            let ca = match cert.basic_constraints() {
                Ok(Some(bc)) => bc.value.ca,
                Ok(None) => cert.version() != X509Version::V3,
                Err(_) => false,
            };
            let cert_sign = match cert.key_usage() {
                Ok(Some(ku)) => ku.value.key_cert_sign(),
                Ok(None) => true,
                Err(_) => false,
            };
            ca && cert_sign
        };
        if !may_sign(&root) {
            return Err(webpki::Error::EndEntityUsedAsCa);
        }
        for cert in path.intermediate_certificates() {
            let der = cert.der();
            let parsed = parse_der(&der).map_err(|_| webpki::Error::BadDer)?;
            if !may_sign(&parsed) {
                return Err(webpki::Error::EndEntityUsedAsCa);
            }
        }
        Ok(())
    }
}

/// Longest `x5c` accepted: a leaf and 7 others (webpki uses at most 6 intermediates).
const MAX_X5C_CERTS: usize = 8;

/// Signature algorithms for certificates: Go's, less SHA-1 (which Go refuses too) and
/// what ring lacks (P-521, ECDSA with SHA-512).
const CERT_SIGNATURE_ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// A certificate signature algorithm that counts its verifications (for the tests'
/// budget checks; a no-op outside tests).
#[derive(Debug)]
struct CountedAlg(&'static dyn SignatureVerificationAlgorithm);

impl SignatureVerificationAlgorithm for CountedAlg {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        count_signature_check();
        self.0.verify_signature(public_key, message, signature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.0.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.0.signature_alg_id()
    }
}

/// Certificates (the leaf included) that path building may put on candidate paths.
const MAX_PATH_NODES: usize = 100;

/// Go verifies token chains with `ExtKeyUsageAny`: extended key usages are not checked.
///
/// It also bounds path building. webpki checks signatures only once a candidate path
/// reaches a root, so CAs sharing a name but not a key (which its "same name and key
/// already on the path" pruning does not catch) make it walk every ordering of them:
/// ~14,000 steps for 7 CAs, with no signature check to spend its budget of 100. It
/// validates extended key usages once per certificate it adds to a path, so counting
/// those calls caps the walk at [`MAX_PATH_NODES`], like Go's 100 candidate checks; the
/// error returned is one webpki treats as final.
#[derive(Default)]
struct AnyExtendedKeyUsage {
    path_nodes: Cell<usize>,
}

impl ExtendedKeyUsageValidator for AnyExtendedKeyUsage {
    fn validate(&self, usages: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let nodes = self.path_nodes.get() + 1;
        self.path_nodes.set(nodes);
        if nodes > MAX_PATH_NODES {
            return Err(webpki::Error::MaximumPathBuildCallsExceeded);
        }
        // Still refuse a malformed list, as Go's parser does.
        for usage in usages {
            usage?;
        }
        Ok(())
    }
}

/// Extensions Go's x509 parser handles, so it accepts them when critical: subject and
/// authority key IDs, key usage, subject alternative names, basic constraints, name
/// constraints, CRL distribution points, certificate policies, extended key usage,
/// authority information access.
fn has_unhandled_critical_extension(cert: &X509Certificate<'_>) -> bool {
    const HANDLED: &[&[u64]] = &[
        &[2, 5, 29, 14],
        &[2, 5, 29, 15],
        &[2, 5, 29, 17],
        &[2, 5, 29, 19],
        &[2, 5, 29, 30],
        &[2, 5, 29, 31],
        &[2, 5, 29, 32],
        &[2, 5, 29, 35],
        &[2, 5, 29, 37],
        &[1, 3, 6, 1, 5, 5, 7, 1, 1],
    ];
    cert.extensions().iter().any(|e| {
        e.critical && {
            let arcs: Option<Vec<u64>> = e.oid.iter().map(|it| it.collect());
            !arcs.is_some_and(|a| HANDLED.contains(&a.as_slice()))
        }
    })
}

/// One whole DER certificate (Go refuses trailing bytes).
fn parse_der(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err("trailing data after certificate".into()),
        Err(e) => Err(format!("unable to parse certificate: {e}")),
    }
}

/// Go: a CA with `pathLenConstraint` n may have at most n intermediates below it.
fn within_path_len(ca: &X509Certificate<'_>, intermediates_below: usize) -> bool {
    match ca.basic_constraints() {
        Ok(Some(bc)) => match bc.value.path_len_constraint {
            Some(n) => intermediates_below <= n as usize,
            None => true,
        },
        Ok(None) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
thread_local! {
    /// Certificate signature verifications made on this thread (tests check the budget).
    static SIGNATURE_CHECKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Tests fail here rather than run for hours when a chain search goes exponential.
#[cfg(test)]
const SIGNATURE_CHECK_TRIPWIRE: usize = 10_000;

#[cfg(test)]
fn count_signature_check() {
    SIGNATURE_CHECKS.with(|c| {
        let n = c.get() + 1;
        c.set(n);
        assert!(
            n <= SIGNATURE_CHECK_TRIPWIRE,
            "{n} certificate signature checks for one token"
        );
    });
}

#[cfg(not(test))]
fn count_signature_check() {}

fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, RsaKeyPair};
    use serde_json::json;
    use std::time::Duration;

    /// A 2048-bit RSA key made with `openssl genpkey` for these tests only (ring cannot
    /// generate RSA keys).
    const RSA_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDyM4cr5ng5mFa5\n\
SoBvwJyxHvtTIaFkhR3ZalwbwSMHOJfReqC6CeoXGEcCguTXzp3rUPrsHPdCMoIN\n\
bfWYt9ysC2/w06uFWm8AyhzHu9CQMJdpk2V4VsoamsYnDxa3q2nxRrgQrjG7RJkK\n\
5NWBdM8DQ+A4UewK43MRBZkiW2QLVLX/dEAaqs0fEWT/X+tuZfSgBuMlHtKt1Lyv\n\
fBhtYR4lR9DrqqwC+4lXwmNdMVXBiCYsX1kv3dsvm4Ocns8us+LjN/q+9rs8RU1/\n\
TtW7JaqLBePPtKro2+UY9jdNpsvmOjTu3snQfI2MwnCxciGqYsskdbhMh6+oxhp5\n\
Jm4Ka9yFAgMBAAECggEARY+sDl06gVwx6DSwD6iTuEEsMJOTnWGoEYX9H1GIpG3K\n\
GLVuDRCE5Y4o8t0yKZMjgu62qnKlRyNne8DtjSedXuJIC7RXakzvXZwuyOS1wXvb\n\
OMzHE1ll4V87cwNf5G98VXoYql3FVcIdbGYNtgkc3ZS0hKhusS/jH+vqL9ZstN3X\n\
/uqbnY38wXPZxR2Cdkd4ff3xS1thN9ysBzbk9kB7t/dQlcuwFXOJ5stiySzOgX32\n\
oXVXFgRnqwQ8j7ENQCE9LR6VrWDrqdvNepaYpuurWveT25Mq2ScOH/JNsYmO8djP\n\
pFK/KhNW+ZFIns78gTe8a5PbmiS042gtsV9FQrvy3wKBgQD70dqNA7z9OAqtmbKE\n\
u59EDUKTq3BPy4hH1ngZfij4XDxFJbI7IXcw/RHvUFlM/TBJi2dX9IA4MyiVtpNF\n\
NV9Kd+AC8peg77t0M+OXdWGgsPyg7wtyYrdY8XXxPd36iM0/pohRuw4xYIS8rfXO\n\
zEUw4g2WPESIkZYjSEcHriKe1wKBgQD2OMyX1piV7Fzy6hxcncOO0RfXopVjwWEq\n\
QYgVeAlotxywZE5+lq1d8kk6uOKetgrdyTGAWKztLeOR0NVLDe+LZEgCoAEpbQ7t\n\
cFSPjOLxQnvnf7isGwZNbXpVxc57l9gZICDxinAwTE7dYQe05+Qr60pMIW+UP6RR\n\
j3Pl05wAAwKBgQC+Bbdz3bRJKHb2VRrfCm2+fnsUz7Oqox2th+uM4SStdXyNeUqr\n\
UC+PKgjUm78nV4+Oj8FmH7x5rDEd+G3dNc84dIj38HP3H7BGmblOW2dWSPf5wSjU\n\
IiXU2jBz4ImXOpAXTeVkN1EYdYr0jhkE+iPkJVC3Y7cbjzDKYwomg4LgdQKBgQCs\n\
bVRhlMegXjktZ+NavKTBdA41VUc256qq099/4WL9cRZnNKd/oPdhzhWYSPdy29s6\n\
O/Ytgmv/YN54M/3apLS3Mg/3vqNxpk0I3FxrdudKuxtYICpsZDSCroM4Y+DYzppn\n\
5gcL/73XJOkpwRSLjMVOOGT8cYHZGMRy1Xn9XbZmjwKBgCOsoDSEeesimmPN0hdJ\n\
k/br1juyneotncf5a8tiZDQHy2lErAGJnBt+DmiZM1h9w7IuV9TQ+xg2+wkJRogG\n\
4QTrVr/O8ZhpJUFpZKYhhATrNnFT8y02ovLRwSRKC1phg4cHOzlrjIHdj+VxciPl\n\
/P1UsVlUL7PHhQez/AxZVmg6\n\
-----END PRIVATE KEY-----\n\
";

    const ISSUER: &str = "test-issuer";
    const SERVICE: &str = "notary-test";

    fn now() -> SystemTime {
        SystemTime::now()
    }

    fn unix(t: SystemTime) -> i64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
    }

    fn ca_params(name: &str, path_len: Option<u8>) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, name.to_owned());
        p.is_ca = IsCa::Ca(match path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        });
        p
    }

    fn leaf_params(name: &str) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, name.to_owned());
        p
    }

    /// How a test token is signed.
    enum Signer {
        Ec(EcdsaKeyPair),
        Rsa(RsaKeyPair),
    }

    impl Signer {
        fn p256(key: &KeyPair) -> Signer {
            Self::ec(key, &sig::ECDSA_P256_SHA256_FIXED_SIGNING)
        }
        fn p384(key: &KeyPair) -> Signer {
            Self::ec(key, &sig::ECDSA_P384_SHA384_FIXED_SIGNING)
        }
        fn ec(key: &KeyPair, alg: &'static sig::EcdsaSigningAlgorithm) -> Signer {
            Signer::Ec(
                EcdsaKeyPair::from_pkcs8(alg, &key.serialize_der(), &SystemRandom::new()).unwrap(),
            )
        }
        fn rsa() -> Signer {
            let der = x509_parser::pem::parse_x509_pem(RSA_KEY.as_bytes())
                .unwrap()
                .1
                .contents;
            Signer::Rsa(RsaKeyPair::from_pkcs8(&der).unwrap())
        }
        fn sign(&self, alg: &str, msg: &[u8]) -> Vec<u8> {
            let rng = SystemRandom::new();
            match self {
                Signer::Ec(k) => k.sign(&rng, msg).unwrap().as_ref().to_vec(),
                Signer::Rsa(k) => {
                    let enc: &'static dyn sig::RsaEncoding = match alg {
                        "RS384" => &sig::RSA_PKCS1_SHA384,
                        "RS512" => &sig::RSA_PKCS1_SHA512,
                        _ => &sig::RSA_PKCS1_SHA256,
                    };
                    let mut out = vec![0; k.public().modulus_len()];
                    k.sign(enc, &rng, msg, &mut out).unwrap();
                    out
                }
            }
        }
    }

    fn claims(access: Value) -> Value {
        let t = unix(now());
        json!({"iss": ISSUER, "sub": "alice", "aud": SERVICE, "exp": t + 300,
               "nbf": t - 10, "iat": t - 10, "jti": "1", "access": access})
    }

    fn push_pull(gun: &str) -> Value {
        json!([{"type": "repository", "name": gun, "actions": ["push", "pull"]}])
    }

    fn jws(header: &Value, claims: &Value, signer: &Signer) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let alg = header["alg"].as_str().unwrap_or_default();
        let s = signer.sign(alg, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(s))
    }

    fn b64(der: &[u8]) -> String {
        STANDARD.encode(der)
    }

    /// A root CA in the bundle and a P-256 leaf it signed.
    struct Pki {
        root: CertifiedIssuer<'static, KeyPair>,
        leaf_der: Vec<u8>,
        leaf_key: KeyPair,
    }

    fn new_pki() -> Pki {
        let root =
            CertifiedIssuer::self_signed(ca_params("root", None), KeyPair::generate().unwrap())
                .unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_der = leaf_params("token signer")
            .signed_by(&leaf_key, &root)
            .unwrap()
            .der()
            .to_vec();
        Pki {
            root,
            leaf_der,
            leaf_key,
        }
    }

    impl Pki {
        fn verifier(&self) -> TokenVerifier {
            TokenVerifier::new(ISSUER, SERVICE, self.root.pem().as_bytes()).unwrap()
        }
        fn token(&self, claims: &Value) -> String {
            let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [b64(&self.leaf_der)]});
            jws(&header, claims, &Signer::p256(&self.leaf_key))
        }
    }

    fn invalid(r: Result<Claims, TokenError>) -> String {
        match r {
            Err(TokenError::Invalid(reason)) => reason,
            other => panic!("expected an invalid token, got {other:?}"),
        }
    }

    fn malformed(r: Result<Claims, TokenError>) -> String {
        match r {
            Err(TokenError::Malformed(reason)) => reason,
            other => panic!("expected a malformed token, got {other:?}"),
        }
    }

    #[test]
    fn good_es256_token_with_x5c_chain_is_accepted() {
        let pki = new_pki();
        let c = pki
            .verifier()
            .verify(&pki.token(&claims(push_pull("docker.io/a"))), now())
            .unwrap();
        assert_eq!(c.subject, "alice");
        assert!(c.grants("repository", "docker.io/a", "push"));
        assert!(c.grants("repository", "docker.io/a", "pull"));
        assert!(!c.grants("repository", "docker.io/a", "*"));
        assert!(!c.grants("repository", "docker.io/b", "pull"));
        assert!(!c.grants("registry", "docker.io/a", "pull"));
    }

    #[test]
    fn star_action_grants_everything_but_star_is_only_met_by_star() {
        let c = Claims {
            access: vec![
                ResourceActions {
                    resource_type: "repository".into(),
                    name: "g".into(),
                    actions: vec!["*".into()],
                },
                ResourceActions {
                    resource_type: "repository".into(),
                    name: "h".into(),
                    actions: vec!["push".into(), "pull".into()],
                },
            ],
            ..Claims::default()
        };
        for action in ["pull", "push", "*"] {
            assert!(c.grants("repository", "g", action), "{action}");
        }
        assert!(!c.grants("repository", "h", "*"));
    }

    #[test]
    fn parts_and_base64_framing() {
        let pki = new_pki();
        let v = pki.verifier();
        let good = pki.token(&claims(push_pull("g")));
        assert!(malformed(v.verify("abc", now())).contains("1 parts"));
        assert!(malformed(v.verify(&format!("{good}.x"), now())).contains("4 parts"));
        // A part of length 1 mod 4 can never be base64.
        assert!(malformed(v.verify("a.b.c", now())).contains("header"));
        // Padding is optional: the padded form of the same token verifies too.
        let padded: Vec<String> = good
            .split('.')
            .map(|p| {
                let mut p = p.to_owned();
                while p.len() % 4 != 0 {
                    p.push('=');
                }
                p
            })
            .collect();
        v.verify(&padded.join("."), now()).unwrap();
        // Standard (non-URL) alphabet characters are refused.
        let plus = good.replacen(|c: char| c.is_ascii_alphanumeric(), "+", 1);
        malformed(v.verify(&plus, now()));
    }

    #[test]
    fn json_members_follow_go_decoding() {
        let pki = new_pki();
        let v = pki.verifier();
        let signer = Signer::p256(&pki.leaf_key);
        let header = json!({"alg": "ES256", "x5c": [b64(&pki.leaf_der)]});
        let mut c = claims(push_pull("g"));
        c["aud"] = json!([SERVICE]);
        assert!(malformed(v.verify(&jws(&header, &c, &signer), now())).contains("aud"));
        let mut c = claims(push_pull("g"));
        c["exp"] = json!(1.5e12);
        assert!(malformed(v.verify(&jws(&header, &c, &signer), now())).contains("exp"));
        let mut c = claims(push_pull("g"));
        c["access"] = json!({"type": "repository"});
        malformed(v.verify(&jws(&header, &c, &signer), now()));
        let not_json = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode("{"),
            URL_SAFE_NO_PAD.encode("{}"),
            URL_SAFE_NO_PAD.encode("sig")
        );
        assert!(malformed(v.verify(&not_json, now())).contains("header"));
        // Member names match case-insensitively, as in Go.
        let upper = json!({"ALG": "ES256", "X5C": [b64(&pki.leaf_der)]});
        let mut c = claims(json!([{"Type": "repository", "NAME": "g", "Actions": ["pull"]}]));
        c["ISS"] = c["iss"].take();
        let c = v.verify(&jws(&upper, &c, &signer), now()).unwrap();
        assert!(c.grants("repository", "g", "pull"));
    }

    #[test]
    fn issuer_and_audience_must_match() {
        let pki = new_pki();
        let v = pki.verifier();
        let mut c = claims(push_pull("g"));
        c["iss"] = json!("someone-else");
        assert!(invalid(v.verify(&pki.token(&c), now())).contains("issuer"));
        let mut c = claims(push_pull("g"));
        c["aud"] = json!("other-service");
        assert!(invalid(v.verify(&pki.token(&c), now())).contains("audience"));
    }

    #[test]
    fn expiry_and_not_before_allow_sixty_seconds_of_skew() {
        let pki = new_pki();
        let v = pki.verifier();
        let t = now();
        let at = |exp: i64, nbf: i64| {
            let mut c = claims(push_pull("g"));
            c["exp"] = json!(exp);
            c["nbf"] = json!(nbf);
            pki.token(&c)
        };
        let s = unix(t);
        // Expired 59 s ago: still inside the leeway; 61 s ago: refused.
        v.verify(&at(s - 59, s - 100), t).unwrap();
        assert!(invalid(v.verify(&at(s - 61, s - 100), t)).contains("expired"));
        // Valid from 59 s in the future: accepted; 61 s: refused.
        v.verify(&at(s + 300, s + 59), t).unwrap();
        assert!(invalid(v.verify(&at(s + 300, s + 61), t)).contains("before"));
        // No exp at all means 1970: expired.
        let mut c = claims(push_pull("g"));
        c.as_object_mut().unwrap().remove("exp");
        invalid(v.verify(&pki.token(&c), t));
        // The clock is the caller's: the same token is expired an hour later.
        let token = at(s + 60, s);
        v.verify(&token, t).unwrap();
        invalid(v.verify(&token, t + Duration::from_secs(3600)));
    }

    #[test]
    fn signature_must_be_present_and_valid() {
        let pki = new_pki();
        let v = pki.verifier();
        let good = pki.token(&claims(push_pull("g")));
        let (input, _) = good.rsplit_once('.').unwrap();
        assert!(invalid(v.verify(&format!("{input}."), now())).contains("no signature"));
        // Claims changed after signing.
        let forged = {
            let parts: Vec<&str> = good.split('.').collect();
            let c = claims(json!([{"type": "repository", "name": "g", "actions": ["*"]}]));
            format!(
                "{}.{}.{}",
                parts[0],
                URL_SAFE_NO_PAD.encode(c.to_string()),
                parts[2]
            )
        };
        assert!(invalid(v.verify(&forged, now())).contains("does not verify"));
    }

    #[test]
    fn algorithm_must_fit_the_key() {
        let pki = new_pki();
        let v = pki.verifier();
        let c = claims(push_pull("g"));
        for alg in ["ES384", "RS256", "HS256", "none", ""] {
            let header = json!({"alg": alg, "x5c": [b64(&pki.leaf_der)]});
            let token = jws(&header, &c, &Signer::p256(&pki.leaf_key));
            invalid(v.verify(&token, now()));
        }
    }

    #[test]
    fn es384_and_rsa_tokens_verify() {
        let root_key = KeyPair::generate().unwrap();
        let root = CertifiedIssuer::self_signed(ca_params("root", None), root_key).unwrap();
        let v = TokenVerifier::new(ISSUER, SERVICE, root.pem().as_bytes()).unwrap();
        let c = claims(push_pull("g"));

        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let cert = leaf_params("p384").signed_by(&p384, &root).unwrap();
        let header = json!({"alg": "ES384", "x5c": [b64(cert.der())]});
        v.verify(&jws(&header, &c, &Signer::p384(&p384)), now())
            .unwrap();

        let rsa = KeyPair::from_pem(RSA_KEY).unwrap();
        let cert = leaf_params("rsa").signed_by(&rsa, &root).unwrap();
        for alg in ["RS256", "RS384", "RS512"] {
            let header = json!({"alg": alg, "x5c": [b64(cert.der())]});
            v.verify(&jws(&header, &c, &Signer::rsa()), now()).unwrap();
        }
        let header = json!({"alg": "ES256", "x5c": [b64(cert.der())]});
        invalid(v.verify(&jws(&header, &c, &Signer::rsa()), now()));
    }

    #[test]
    fn x5c_chains_through_intermediates_to_a_bundle_root() {
        let root =
            CertifiedIssuer::self_signed(ca_params("root", None), KeyPair::generate().unwrap())
                .unwrap();
        let v = TokenVerifier::new(ISSUER, SERVICE, root.pem().as_bytes()).unwrap();
        let inter = CertifiedIssuer::signed_by(
            ca_params("intermediate", None),
            KeyPair::generate().unwrap(),
            &root,
        )
        .unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf_params("leaf").signed_by(&leaf_key, &inter).unwrap();
        let c = claims(push_pull("g"));
        let signer = Signer::p256(&leaf_key);
        let with = |chain: Vec<String>| jws(&json!({"alg": "ES256", "x5c": chain}), &c, &signer);

        v.verify(&with(vec![b64(leaf.der()), b64(inter.der())]), now())
            .unwrap();
        // Without the intermediate there is no path.
        assert!(invalid(v.verify(&with(vec![b64(leaf.der())]), now())).contains("chain"));
        // An intermediate that is not a CA cannot sign.
        let not_ca = CertifiedIssuer::signed_by(
            leaf_params("intermediate"),
            KeyPair::generate().unwrap(),
            &root,
        )
        .unwrap();
        let leaf2_key = KeyPair::generate().unwrap();
        let leaf2 = leaf_params("leaf").signed_by(&leaf2_key, &not_ca).unwrap();
        let token = jws(
            &json!({"alg": "ES256", "x5c": [b64(leaf2.der()), b64(not_ca.der())]}),
            &c,
            &Signer::p256(&leaf2_key),
        );
        invalid(v.verify(&token, now()));
        // A certificate that is not base64 or not DER.
        assert!(invalid(v.verify(&with(vec!["%%%".into()]), now())).contains("decode"));
        assert!(invalid(v.verify(&with(vec![b64(b"not der")]), now())).contains("parse"));
    }

    #[test]
    fn path_length_constraints_apply() {
        // Root allows no intermediates below it.
        let root =
            CertifiedIssuer::self_signed(ca_params("root", Some(0)), KeyPair::generate().unwrap())
                .unwrap();
        let v = TokenVerifier::new(ISSUER, SERVICE, root.pem().as_bytes()).unwrap();
        let inter = CertifiedIssuer::signed_by(
            ca_params("intermediate", None),
            KeyPair::generate().unwrap(),
            &root,
        )
        .unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let via_inter = leaf_params("leaf").signed_by(&leaf_key, &inter).unwrap();
        let direct = leaf_params("leaf").signed_by(&leaf_key, &root).unwrap();
        let c = claims(push_pull("g"));
        let signer = Signer::p256(&leaf_key);
        let with = |chain: Vec<String>| jws(&json!({"alg": "ES256", "x5c": chain}), &c, &signer);
        invalid(v.verify(&with(vec![b64(via_inter.der()), b64(inter.der())]), now()));
        v.verify(&with(vec![b64(direct.der())]), now()).unwrap();
    }

    #[test]
    fn untrusted_or_expired_certificates_are_refused() {
        let pki = new_pki();
        let other = new_pki();
        // Signed by another root.
        invalid(
            pki.verifier()
                .verify(&other.token(&claims(push_pull("g"))), now()),
        );
        // Expired leaf under the right root.
        let mut params = leaf_params("old");
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        let key = KeyPair::generate().unwrap();
        let old = params.signed_by(&key, &pki.root).unwrap();
        let token = jws(
            &json!({"alg": "ES256", "x5c": [b64(old.der())]}),
            &claims(push_pull("g")),
            &Signer::p256(&key),
        );
        assert!(invalid(pki.verifier().verify(&token, now())).contains("expired"));
    }

    #[test]
    fn a_bundle_certificate_may_sign_tokens_itself() {
        // The registry docs' setup: one self-signed (non-CA) certificate is both the bundle
        // and the token signer.
        let key = KeyPair::generate().unwrap();
        let cert = leaf_params("self").self_signed(&key).unwrap();
        let v = TokenVerifier::new(ISSUER, SERVICE, cert.pem().as_bytes()).unwrap();
        let token = jws(
            &json!({"alg": "ES256", "x5c": [b64(cert.der())]}),
            &claims(push_pull("g")),
            &Signer::p256(&key),
        );
        v.verify(&token, now()).unwrap();
    }

    fn public_jwk(key: &SigningKey) -> Map<String, Value> {
        let KeyMaterial::Ec { point, .. } = &key.0 else {
            panic!("EC only")
        };
        let map = json!({"kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])});
        map.as_object().unwrap().clone()
    }

    fn leaf_key_of(der: &[u8]) -> SigningKey {
        let (_, cert) = X509Certificate::from_der(der).unwrap();
        SigningKey::from_spki(cert.public_key()).unwrap()
    }

    #[test]
    fn kid_names_a_bundle_key_by_libtrust_fingerprint() {
        let key = KeyPair::generate().unwrap();
        let cert = leaf_params("self").self_signed(&key).unwrap();
        let v = TokenVerifier::new(ISSUER, SERVICE, cert.pem().as_bytes()).unwrap();
        let kid = leaf_key_of(cert.der()).key_id();
        assert_eq!(v.trusted_key_ids(), vec![kid.clone()]);
        let c = claims(push_pull("g"));
        let token = jws(
            &json!({"alg": "ES256", "kid": kid}),
            &c,
            &Signer::p256(&key),
        );
        v.verify(&token, now()).unwrap();
        let token = jws(
            &json!({"alg": "ES256", "kid": "AAAA:BBBB"}),
            &c,
            &Signer::p256(&key),
        );
        assert!(invalid(v.verify(&token, now())).contains("untrusted key"));
        let token = jws(&json!({"alg": "ES256"}), &c, &Signer::p256(&key));
        assert!(invalid(v.verify(&token, now())).contains("unable to get token signing key"));
    }

    #[test]
    fn libtrust_key_id_matches_a_go_vector() {
        // Public part of a dockerd /etc/docker/key.json, whose "kid" libtrust computed.
        let jwk = json!({"kty": "EC", "crv": "P-256",
            "kid": "J3MD:NS2M:DH3O:FWSA:SYFW:6JZB:IAW4:VMOQ:U23Z:4F2T:GCUH:Y6KW",
            "x": "skrmD71liWcQlpFd4h9SpuF-Yk-86DxiQJ6yXktvz4E",
            "y": "zpALR4ixTDgn8AHOoKQmid9xMBssywmx873Zl18sipQ"});
        let key = SigningKey::from_jwk(jwk.as_object().unwrap()).unwrap();
        assert_eq!(
            key.key_id(),
            "J3MD:NS2M:DH3O:FWSA:SYFW:6JZB:IAW4:VMOQ:U23Z:4F2T:GCUH:Y6KW"
        );
        let mut wrong = jwk.clone();
        wrong["kid"] = json!("J3MD:NS2M:DH3O:FWSA:SYFW:6JZB:IAW4:VMOQ:U23Z:4F2T:GCUH:Y6KX");
        assert!(SigningKey::from_jwk(wrong.as_object().unwrap()).is_err());
    }

    #[test]
    fn re_encoded_public_keys_equal_the_certificate_encoding() {
        // The key ID hashes our re-encoding, so it must be byte-identical to standard DER.
        let ec = leaf_params("ec")
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap();
        let p384 = leaf_params("p384")
            .self_signed(&KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap())
            .unwrap();
        let rsa = leaf_params("rsa")
            .self_signed(&KeyPair::from_pem(RSA_KEY).unwrap())
            .unwrap();
        for cert in [ec, p384, rsa] {
            let (_, parsed) = X509Certificate::from_der(cert.der()).unwrap();
            let key = SigningKey::from_spki(parsed.public_key()).unwrap();
            assert_eq!(key.spki_der(), parsed.public_key().raw);
        }
    }

    #[test]
    fn jwk_must_be_a_bundle_key_or_carry_a_chain() {
        let pki = new_pki();
        let v = pki.verifier();
        let c = claims(push_pull("g"));
        let signer = Signer::p256(&pki.leaf_key);
        let leaf_key = leaf_key_of(&pki.leaf_der);

        // The leaf's key alone is not in the bundle.
        let bare = Value::Object(public_jwk(&leaf_key));
        let token = jws(&json!({"alg": "ES256", "jwk": bare}), &c, &signer);
        assert!(invalid(v.verify(&token, now())).contains("untrusted JWK"));

        // With its certificate chain it is accepted.
        let mut chained = public_jwk(&leaf_key);
        chained.insert("x5c".into(), json!([b64(&pki.leaf_der)]));
        chained.insert("kid".into(), json!(leaf_key.key_id()));
        let token = jws(&json!({"alg": "ES256", "jwk": chained}), &c, &signer);
        v.verify(&token, now()).unwrap();

        // A chain for a different key does not vouch for this one.
        let other = new_pki();
        let mut mismatched = public_jwk(&leaf_key_of(&other.leaf_der));
        mismatched.insert("x5c".into(), json!([b64(&pki.leaf_der)]));
        let token = jws(
            &json!({"alg": "ES256", "jwk": mismatched}),
            &c,
            &Signer::p256(&other.leaf_key),
        );
        assert!(invalid(v.verify(&token, now())).contains("does not match"));

        // A bundle key given as a JWK is trusted directly.
        let self_key = KeyPair::generate().unwrap();
        let self_cert = leaf_params("self").self_signed(&self_key).unwrap();
        let v2 = TokenVerifier::new(ISSUER, SERVICE, self_cert.pem().as_bytes()).unwrap();
        let jwk = Value::Object(public_jwk(&leaf_key_of(self_cert.der())));
        let token = jws(
            &json!({"alg": "ES256", "jwk": jwk}),
            &c,
            &Signer::p256(&self_key),
        );
        v2.verify(&token, now()).unwrap();
        // A wrong kid inside the JWK is refused.
        let mut bad_kid = public_jwk(&leaf_key_of(self_cert.der()));
        bad_kid.insert("kid".into(), json!("AAAA"));
        let token = jws(
            &json!({"alg": "ES256", "jwk": bad_kid}),
            &c,
            &Signer::p256(&self_key),
        );
        invalid(v2.verify(&token, now()));
    }

    #[test]
    fn x5c_takes_precedence_over_jwk_and_kid() {
        let pki = new_pki();
        let v = pki.verifier();
        let token = jws(
            &json!({"alg": "ES256", "x5c": [b64(&pki.leaf_der)], "kid": "unknown", "jwk": "junk"}),
            &claims(push_pull("g")),
            &Signer::p256(&pki.leaf_key),
        );
        v.verify(&token, now()).unwrap();
    }

    #[test]
    fn bundle_needs_a_usable_certificate() {
        let e = TokenVerifier::new(ISSUER, SERVICE, b"no pem here").unwrap_err();
        assert!(e.0.contains("at least one"), "{e}");
        let key = KeyPair::generate().unwrap();
        let e = TokenVerifier::new(ISSUER, SERVICE, key.serialize_pem().as_bytes()).unwrap_err();
        assert!(e.0.contains("at least one"), "{e}");
        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let cert = leaf_params("ed").self_signed(&ed).unwrap();
        let e = TokenVerifier::new(ISSUER, SERVICE, cert.pem().as_bytes()).unwrap_err();
        assert!(e.0.contains("public key"), "{e}");
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(TokenVerifier::new(ISSUER, SERVICE, garbage.as_bytes()).is_err());
    }

    /// Runs `f` and returns its result with the certificate signature checks it made.
    fn counting<T>(f: impl FnOnce() -> T) -> (T, usize) {
        SIGNATURE_CHECKS.with(|c| c.set(0));
        let out = f();
        (out, SIGNATURE_CHECKS.with(|c| c.get()))
    }

    fn ca_with_serial(name: &str, serial: u64) -> CertificateParams {
        let mut p = ca_params(name, None);
        p.serial_number = Some(serial.into());
        p
    }

    /// A token whose `x5c` is a leaf and `n` CA certificates that all carry the subject
    /// `ca_name`, are self-issued and (with `same_key`) share one key: any of them
    /// "issues" any other, which made the old depth-first search try ~n·(n−1)^8 paths.
    fn hostile_token(ca_name: &str, n: u64, same_key: bool) -> String {
        let first = KeyPair::generate().unwrap().serialize_pem();
        let keys: Vec<KeyPair> = (0..n.max(1))
            .map(|i| match same_key || i == 0 {
                true => KeyPair::from_pem(&first).unwrap(),
                false => KeyPair::generate().unwrap(),
            })
            .collect();
        let mut x5c = Vec::new();
        let leaf_key = KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::new(ca_params(ca_name, None), &keys[0]);
        x5c.push(b64(leaf_params("token signer")
            .signed_by(&leaf_key, &issuer)
            .unwrap()
            .der()));
        for (i, key) in keys.iter().enumerate() {
            let cert = ca_with_serial(ca_name, 1000 + i as u64)
                .self_signed(key)
                .unwrap();
            x5c.push(b64(cert.der()));
        }
        jws(
            &json!({"alg": "ES256", "x5c": x5c}),
            &claims(push_pull("g")),
            &Signer::p256(&leaf_key),
        )
    }

    /// CAs in the largest hostile `x5c` accepted for path building.
    const HOSTILE_CAS: u64 = MAX_X5C_CERTS as u64 - 1;

    #[test]
    fn hostile_x5c_of_same_name_same_key_cas_stays_within_the_signature_budget() {
        // Leaf + 7 CAs: the old search needed ~7·6^8 ≈ 10^7 signature checks (about 15
        // minutes of CPU; leaf + 10: ~10^8 checks, hours).
        let pki = new_pki();
        let token = hostile_token("evil CA", HOSTILE_CAS, true);
        let (result, checks) = counting(|| pki.verifier().verify(&token, now()));
        assert!(invalid(result).contains("chain"));
        assert!(checks <= 100, "{checks} signature checks");
        // Longer ones are refused before any path building.
        let token = hostile_token("evil CA", 10, true);
        let (result, checks) = counting(|| pki.verifier().verify(&token, now()));
        assert!(invalid(result).contains("certificates"));
        assert_eq!(checks, 0);
    }

    #[test]
    fn hostile_x5c_named_like_the_root_stays_within_the_signature_budget() {
        // CAs that claim the bundle root's name: every step may end at the root, so each
        // candidate path costs a signature check against it.
        let pki = new_pki();
        for same_key in [true, false] {
            let token = hostile_token("root", HOSTILE_CAS, same_key);
            let (result, checks) = counting(|| pki.verifier().verify(&token, now()));
            assert!(invalid(result).contains("chain"));
            assert!(
                checks <= 100,
                "same key {same_key}: {checks} signature checks"
            );
        }
    }

    #[test]
    fn hostile_x5c_of_distinct_key_cas_is_refused() {
        // Distinct keys defeat the "same name and key already on the path" pruning: the
        // path-node budget stops the walk through the orderings of the CAs.
        let pki = new_pki();
        let token = hostile_token("evil CA", HOSTILE_CAS, false);
        let (result, checks) = counting(|| pki.verifier().verify(&token, now()));
        let reason = invalid(result);
        assert!(reason.contains("budget"), "{reason}");
        assert!(checks <= 100, "{checks} signature checks");
    }

    #[test]
    fn overlong_x5c_is_refused() {
        let pki = new_pki();
        let leaf = b64(&pki.leaf_der);
        let c = claims(push_pull("g"));
        let signer = Signer::p256(&pki.leaf_key);
        let with = |n: usize| {
            let chain = vec![leaf.clone(); n];
            jws(&json!({"alg": "ES256", "x5c": chain}), &c, &signer)
        };
        pki.verifier().verify(&with(MAX_X5C_CERTS), now()).unwrap();
        let reason = invalid(pki.verifier().verify(&with(MAX_X5C_CERTS + 1), now()));
        assert!(reason.contains("certificates"), "{reason}");
    }

    /// Root, intermediate and leaf made by OpenSSL (see `testdata/token-sha1/README.md`).
    const SHA1_ROOT: &str = include_str!("testdata/token-sha1/root.crt");
    const SHA1_INTER: &str = include_str!("testdata/token-sha1/inter-sha1.crt");
    const SHA256_INTER: &str = include_str!("testdata/token-sha1/inter-sha256.crt");
    const SHA1_LEAF: &str = include_str!("testdata/token-sha1/leaf.crt");
    const SHA1_LEAF_KEY: &str = include_str!("testdata/token-sha1/leaf.key");

    fn pem_der(pem: &str) -> Vec<u8> {
        x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .unwrap()
            .1
            .contents
    }

    #[test]
    fn sha1_signed_intermediate_is_refused() {
        let v = TokenVerifier::new(ISSUER, SERVICE, SHA1_ROOT.as_bytes()).unwrap();
        let key = KeyPair::from_pem(SHA1_LEAF_KEY).unwrap();
        let token = |inter: &str| {
            jws(
                &json!({"alg": "ES256", "x5c": [b64(&pem_der(SHA1_LEAF)), b64(&pem_der(inter))]}),
                &claims(push_pull("g")),
                &Signer::p256(&key),
            )
        };
        // The same intermediate signed with SHA-256 chains; signed with SHA-1 it does not
        // (Go refuses SHA-1 certificate signatures).
        v.verify(&token(SHA256_INTER), now()).unwrap();
        invalid(v.verify(&token(SHA1_INTER), now()));
    }

    /// Root (bundle) → intermediate → leaf, each shaped by a closure over its parameters.
    fn chain_with(
        root: impl FnOnce(&mut CertificateParams),
        inter: impl FnOnce(&mut CertificateParams),
        leaf: impl FnOnce(&mut CertificateParams),
    ) -> (TokenVerifier, String) {
        let mut rp = ca_params("root", None);
        root(&mut rp);
        let root = CertifiedIssuer::self_signed(rp, KeyPair::generate().unwrap()).unwrap();
        let mut ip = ca_params("intermediate", None);
        inter(&mut ip);
        let inter = CertifiedIssuer::signed_by(ip, KeyPair::generate().unwrap(), &root).unwrap();
        let mut lp = leaf_params("leaf");
        leaf(&mut lp);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = lp.signed_by(&leaf_key, &inter).unwrap();
        let v = TokenVerifier::new(ISSUER, SERVICE, root.pem().as_bytes()).unwrap();
        let token = jws(
            &json!({"alg": "ES256", "x5c": [b64(leaf.der()), b64(inter.der())]}),
            &claims(push_pull("g")),
            &Signer::p256(&leaf_key),
        );
        (v, token)
    }

    fn unknown_critical(p: &mut CertificateParams) {
        let mut ext =
            rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![5, 0]);
        ext.set_criticality(true);
        p.custom_extensions.push(ext);
    }

    #[test]
    fn unknown_critical_extension_anywhere_in_the_chain_is_refused() {
        let (v, token) = chain_with(|_| {}, |_| {}, |_| {});
        v.verify(&token, now()).unwrap();
        let (v, token) = chain_with(|_| {}, unknown_critical, |_| {});
        invalid(v.verify(&token, now()));
        let (v, token) = chain_with(unknown_critical, |_| {}, |_| {});
        invalid(v.verify(&token, now()));
        let (v, token) = chain_with(|_| {}, |_| {}, unknown_critical);
        invalid(v.verify(&token, now()));
        // Not critical: ignored, as in Go.
        let (v, token) = chain_with(
            |_| {},
            |p| {
                unknown_critical(p);
                p.custom_extensions[0].set_criticality(false);
            },
            |_| {},
        );
        v.verify(&token, now()).unwrap();
    }

    fn permit_example_com(p: &mut CertificateParams) {
        p.name_constraints = Some(rcgen::NameConstraints {
            permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("example.com".into())],
            excluded_subtrees: vec![],
        });
    }

    fn san(name: &'static str) -> impl FnOnce(&mut CertificateParams) {
        move |p| p.subject_alt_names = vec![rcgen::SanType::DnsName(name.try_into().unwrap())]
    }

    #[test]
    fn name_constraints_are_honoured() {
        // On the intermediate and on the bundle root alike.
        let (v, token) = chain_with(|_| {}, permit_example_com, san("signer.example.com"));
        v.verify(&token, now()).unwrap();
        let (v, token) = chain_with(|_| {}, permit_example_com, san("signer.evil.org"));
        invalid(v.verify(&token, now()));
        let (v, token) = chain_with(permit_example_com, |_| {}, san("signer.example.com"));
        v.verify(&token, now()).unwrap();
        let (v, token) = chain_with(permit_example_com, |_| {}, san("signer.evil.org"));
        invalid(v.verify(&token, now()));
    }

    #[test]
    fn any_extended_key_usage_is_accepted() {
        // Go verifies with ExtKeyUsageAny: EKUs anywhere in the chain do not matter.
        let (v, token) = chain_with(
            |p| p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::EmailProtection],
            |p| p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
            |p| p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning],
        );
        v.verify(&token, now()).unwrap();
    }

    #[test]
    fn issuers_need_cert_sign_key_usage_when_they_list_key_usages() {
        use rcgen::KeyUsagePurpose as Ku;
        let (v, token) = chain_with(
            |p| p.key_usages = vec![Ku::KeyCertSign],
            |p| p.key_usages = vec![Ku::KeyCertSign, Ku::DigitalSignature],
            |_| {},
        );
        v.verify(&token, now()).unwrap();
        // Go's CheckSignatureFrom: a parent whose key usage lacks certSign cannot sign.
        let (v, token) = chain_with(
            |p| p.key_usages = vec![Ku::DigitalSignature],
            |_| {},
            |_| {},
        );
        invalid(v.verify(&token, now()));
        let (v, token) = chain_with(
            |_| {},
            |p| p.key_usages = vec![Ku::DigitalSignature],
            |_| {},
        );
        invalid(v.verify(&token, now()));
    }

    #[test]
    fn a_ca_leaf_outside_the_bundle_is_refused_unlike_go() {
        // A known difference (see `verify_chain`): webpki will not take a CA certificate
        // as the end entity; Go does. Token signers are not CAs in practice.
        let (v, token) = chain_with(
            |_| {},
            |_| {},
            |p| p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained),
        );
        assert!(invalid(v.verify(&token, now())).contains("CaUsedAsEndEntity"));
    }

    #[test]
    fn expired_root_or_intermediate_is_refused() {
        let expired = |p: &mut CertificateParams| {
            p.not_before = rcgen::date_time_ymd(2019, 1, 1);
            p.not_after = rcgen::date_time_ymd(2020, 1, 1);
        };
        let (v, token) = chain_with(expired, |_| {}, |_| {});
        invalid(v.verify(&token, now()));
        let (v, token) = chain_with(|_| {}, expired, |_| {});
        invalid(v.verify(&token, now()));
    }
}
