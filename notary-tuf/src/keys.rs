//! TUF keys as Notary writes them: key types, public keys and key IDs, private keys
//! (ECDSA P-256 and Ed25519) with Go-compatible private serialization, signature methods.
//!
//! Spec: signer-and-tuf §7 (key types, key IDs, canonical IDs, methods) and §3.3 (private
//! key bytes).

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::EncodePublicKey as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::canonical;

/// Errors from key handling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The operation does not support this key type (e.g. generating RSA keys).
    #[error("unsupported key type: {0}")]
    UnsupportedKeyType(String),
    /// Key material could not be decoded.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// An X.509 certificate could not be used.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Short name used in the agreed API (`keys::Error`).
pub type Error = KeyError;

/// TUF key type (`keytype` in key objects).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyType {
    /// `ed25519`: 32 raw public key bytes.
    Ed25519,
    /// `ecdsa`: DER SubjectPublicKeyInfo.
    Ecdsa,
    /// `ecdsa-x509`: PEM certificate chain, ECDSA leaf.
    EcdsaX509,
    /// `rsa`: DER SubjectPublicKeyInfo.
    Rsa,
    /// `rsa-x509`: PEM certificate chain, RSA leaf.
    RsaX509,
    /// Any other string; preserved but never verifies anything.
    Other(String),
}

impl KeyType {
    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::Ecdsa => "ecdsa",
            KeyType::EcdsaX509 => "ecdsa-x509",
            KeyType::Rsa => "rsa",
            KeyType::RsaX509 => "rsa-x509",
            KeyType::Other(s) => s,
        }
    }

    /// Parses a wire string; exact and case-sensitive like Go, unknown values become `Other`.
    pub fn parse(s: &str) -> KeyType {
        match s {
            "ed25519" => KeyType::Ed25519,
            "ecdsa" => KeyType::Ecdsa,
            "ecdsa-x509" => KeyType::EcdsaX509,
            "rsa" => KeyType::Rsa,
            "rsa-x509" => KeyType::RsaX509,
            other => KeyType::Other(other.to_string()),
        }
    }

    /// True for the certificate-wrapped types (`ecdsa-x509`, `rsa-x509`).
    pub fn is_x509(&self) -> bool {
        matches!(self, KeyType::EcdsaX509 | KeyType::RsaX509)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for KeyType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for KeyType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(KeyType::parse(&s))
    }
}

/// TUF signature method (`method` in signature objects).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignatureMethod {
    /// `ecdsa`: raw r‖s over SHA-256.
    Ecdsa,
    /// `eddsa`: pure Ed25519.
    Eddsa,
    /// `rsapss`: RSASSA-PSS, SHA-256, salt 32.
    RsaPss,
    /// `rsapkcs1v15`: PKCS#1 v1.5 with SHA-256 (verify only).
    RsaPkcs1v15,
    /// `pycrypto-pkcs#1 pss`: legacy PSS with a PEM public key.
    PyCryptoPss,
    /// Anything else (already lower-cased); never verifies.
    Other(String),
}

impl SignatureMethod {
    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            SignatureMethod::Ecdsa => "ecdsa",
            SignatureMethod::Eddsa => "eddsa",
            SignatureMethod::RsaPss => "rsapss",
            SignatureMethod::RsaPkcs1v15 => "rsapkcs1v15",
            SignatureMethod::PyCryptoPss => "pycrypto-pkcs#1 pss",
            SignatureMethod::Other(s) => s,
        }
    }

    /// Parses a wire string after lower-casing it, as Go does on decode.
    pub fn parse(s: &str) -> SignatureMethod {
        let lower = s.to_lowercase();
        match lower.as_str() {
            "ecdsa" => SignatureMethod::Ecdsa,
            "eddsa" => SignatureMethod::Eddsa,
            "rsapss" => SignatureMethod::RsaPss,
            "rsapkcs1v15" => SignatureMethod::RsaPkcs1v15,
            "pycrypto-pkcs#1 pss" => SignatureMethod::PyCryptoPss,
            _ => SignatureMethod::Other(lower),
        }
    }
}

impl fmt::Display for SignatureMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SignatureMethod {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SignatureMethod {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(SignatureMethod::parse(&s))
    }
}

/// The method a signer uses for a key type (Go `signed.Sign` / signer client):
/// ecdsa/ecdsa-x509 → `ecdsa`, rsa/rsa-x509 → `rsapss`, ed25519 → `eddsa`.
pub fn method_for_key_type(kt: &KeyType) -> SignatureMethod {
    match kt {
        KeyType::Ecdsa | KeyType::EcdsaX509 => SignatureMethod::Ecdsa,
        KeyType::Rsa | KeyType::RsaX509 => SignatureMethod::RsaPss,
        KeyType::Ed25519 => SignatureMethod::Eddsa,
        KeyType::Other(s) => SignatureMethod::Other(s.to_lowercase()),
    }
}

/// A TUF public key: type plus the raw bytes that `keyval.public` holds base64-encoded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey {
    /// Key type.
    pub key_type: KeyType,
    /// Raw public bytes: DER SPKI for ecdsa/rsa, 32 bytes for ed25519, PEM text for *-x509.
    pub public: Vec<u8>,
}

impl PublicKey {
    /// Wraps raw public bytes.
    pub fn new(key_type: KeyType, public: Vec<u8>) -> Self {
        PublicKey { key_type, public }
    }

    /// An ecdsa key from an uncompressed or compressed SEC1 P-256 point (what a PKCS#11
    /// token returns in `CKA_EC_POINT`), as DER SPKI like every ecdsa key here.
    pub fn from_p256_point(point: &[u8]) -> Result<PublicKey, KeyError> {
        let key = p256::PublicKey::from_sec1_bytes(point)
            .map_err(|e| KeyError::InvalidKey(format!("P-256 point: {e}")))?;
        let der = key
            .to_public_key_der()
            .map_err(|e| KeyError::InvalidKey(format!("P-256 point: {e}")))?;
        Ok(PublicKey::new(KeyType::Ecdsa, der.as_bytes().to_vec()))
    }

    /// The uncompressed SEC1 point of an ecdsa (DER SPKI) key: inverse of
    /// [`from_p256_point`](Self::from_p256_point).
    pub fn p256_point(&self) -> Result<Vec<u8>, KeyError> {
        use p256::pkcs8::DecodePublicKey as _;
        let key = p256::PublicKey::from_public_key_der(&self.public)
            .map_err(|e| KeyError::InvalidKey(format!("ecdsa public key: {e}")))?;
        Ok(key.to_encoded_point(false).as_bytes().to_vec())
    }

    /// TUF key ID: lowercase hex SHA-256 of
    /// `{"keytype":..,"keyval":{"private":null,"public":"<b64>"}}` (spec §7.2).
    pub fn key_id(&self) -> String {
        let bytes = canonical::to_canonical_bytes(&self.to_json_value())
            .expect("key objects hold only strings and null");
        hex::encode(Sha256::digest(&bytes))
    }

    /// The TUF key object `{"keytype":..,"keyval":{"private":null,"public":..}}`.
    pub fn to_json_value(&self) -> Value {
        json!({
            "keytype": self.key_type.as_str(),
            "keyval": {"private": null, "public": B64.encode(&self.public)},
        })
    }

    /// Exact body of `GET {role}.key`: Go's struct order, `public` before `private`.
    pub fn server_key_json(&self) -> Vec<u8> {
        let kt = serde_json::to_string(self.key_type.as_str()).expect("string encodes");
        format!(
            r#"{{"keytype":{kt},"keyval":{{"public":"{}","private":null}}}}"#,
            B64.encode(&self.public)
        )
        .into_bytes()
    }

    /// Reads a TUF key object as Go's typed decoder would: `keytype` string,
    /// `keyval.public` standard base64 (missing or null means empty), `keyval.private`
    /// decoded but ignored; field names match case-insensitively; other fields ignored.
    pub fn from_json_value(v: &Value) -> Result<PublicKey, KeyError> {
        use crate::metadata::field;
        let obj = v
            .as_object()
            .ok_or_else(|| KeyError::InvalidKey("key is not a JSON object".into()))?;
        let key_type = match field(obj, "keytype") {
            None => KeyType::Other(String::new()),
            Some(Value::String(s)) => KeyType::parse(s),
            Some(_) => return Err(KeyError::InvalidKey("keytype is not a string".into())),
        };
        let bytes = |kv: &serde_json::Map<String, Value>, name: &str| match field(kv, name) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => {
                decode_go_base64(s).map_err(|e| KeyError::InvalidKey(format!("keyval.{name}: {e}")))
            }
            Some(_) => Err(KeyError::InvalidKey(format!(
                "keyval.{name} is not a string"
            ))),
        };
        let public = match field(obj, "keyval") {
            None => Vec::new(),
            Some(Value::Object(kv)) => {
                bytes(kv, "private")?;
                bytes(kv, "public")?
            }
            Some(_) => return Err(KeyError::InvalidKey("keyval is not an object".into())),
        };
        Ok(PublicKey { key_type, public })
    }

    /// For `*-x509` keys, the ID of the bare public key inside the first certificate
    /// (keytype `ecdsa` or `rsa`, spec §7.3); otherwise the same as [`key_id`](Self::key_id).
    pub fn canonical_key_id(&self) -> Result<String, KeyError> {
        match self.key_type {
            KeyType::EcdsaX509 | KeyType::RsaX509 => Ok(self.certificate_public_key()?.key_id()),
            _ => Ok(self.key_id()),
        }
    }

    /// For `*-x509` keys: the leaf (first) certificate's public key as a bare `ecdsa` / `rsa`
    /// key (DER SPKI). Errors for other key types or unparsable PEM.
    pub fn certificate_public_key(&self) -> Result<PublicKey, KeyError> {
        let bare = match self.key_type {
            KeyType::EcdsaX509 => KeyType::Ecdsa,
            KeyType::RsaX509 => KeyType::Rsa,
            _ => return Err(KeyError::UnsupportedKeyType(self.key_type.to_string())),
        };
        let ders =
            crate::certs::pem_certificates(&self.public).map_err(KeyError::InvalidCertificate)?;
        let first = ders
            .first()
            .ok_or_else(|| KeyError::InvalidCertificate("no certificate in PEM".into()))?;
        let spki = crate::certs::spki_der(first).map_err(KeyError::InvalidCertificate)?;
        Ok(PublicKey::new(bare, spki))
    }
}

/// Decodes standard, padded base64 the way Go's `encoding/json` decodes `[]byte`
/// (it ignores CR and LF, nothing else).
pub fn decode_go_base64(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    if s.contains(['\r', '\n']) {
        let cleaned: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        B64.decode(cleaned)
    } else {
        B64.decode(s)
    }
}

/// Encodes bytes as standard padded base64 (what Go writes for `[]byte`).
pub fn encode_base64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// OID of the NIST P-256 curve (prime256v1).
const P256_OID: sec1::der::asn1::ObjectIdentifier =
    sec1::der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

#[derive(Clone)]
enum PrivateInner {
    Ecdsa(EcdsaPrivate),
    Ed25519(ed25519_dalek::SigningKey),
}

/// A P-256 key held twice: `p256` for the encodings (Go's SEC1, PKCS#8, the public SPKI),
/// ring for signing, which is several times cheaper there (assembly field arithmetic; the
/// signer signs every timestamp and server-managed snapshot).
#[derive(Clone)]
struct EcdsaPrivate {
    key: p256::ecdsa::SigningKey,
    signer: std::sync::Arc<ring::signature::EcdsaKeyPair>,
}

impl EcdsaPrivate {
    fn new(key: p256::ecdsa::SigningKey) -> Result<Self, KeyError> {
        let public = key.verifying_key().to_encoded_point(false);
        let signer = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.to_bytes(),
            public.as_bytes(),
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|e| KeyError::InvalidKey(format!("ecdsa private key: {e}")))?;
        Ok(EcdsaPrivate {
            key,
            signer: std::sync::Arc::new(signer),
        })
    }
}

/// A private signing key: ECDSA P-256 or Ed25519 (what the signer and the local trust
/// service create). RSA private keys are never needed server-side.
#[derive(Clone)]
pub struct PrivateKey {
    inner: PrivateInner,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("PrivateKey")
            .field("key_type", &self.key_type())
            .field("key_id", &self.public_key().key_id())
            .finish()
    }
}

impl PrivateKey {
    /// Generates a fresh key: `ecdsa` → P-256, `ed25519`; any other type is an error.
    pub fn generate(key_type: &KeyType) -> Result<PrivateKey, KeyError> {
        let mut rng = rand_core::OsRng;
        let inner = match key_type {
            KeyType::Ecdsa => PrivateInner::Ecdsa(EcdsaPrivate::new(
                p256::ecdsa::SigningKey::random(&mut rng),
            )?),
            KeyType::Ed25519 => {
                PrivateInner::Ed25519(ed25519_dalek::SigningKey::generate(&mut rng))
            }
            other => return Err(KeyError::UnsupportedKeyType(other.to_string())),
        };
        Ok(PrivateKey { inner })
    }

    /// The key type (`ecdsa` or `ed25519`).
    pub fn key_type(&self) -> KeyType {
        match self.inner {
            PrivateInner::Ecdsa(_) => KeyType::Ecdsa,
            PrivateInner::Ed25519(_) => KeyType::Ed25519,
        }
    }

    /// The public half, in TUF form (DER SPKI for ecdsa, 32 bytes for ed25519).
    pub fn public_key(&self) -> PublicKey {
        match &self.inner {
            PrivateInner::Ecdsa(e) => {
                let der = e
                    .key
                    .verifying_key()
                    .to_public_key_der()
                    .expect("P-256 public keys always encode");
                PublicKey::new(KeyType::Ecdsa, der.as_bytes().to_vec())
            }
            PrivateInner::Ed25519(sk) => {
                PublicKey::new(KeyType::Ed25519, sk.verifying_key().to_bytes().to_vec())
            }
        }
    }

    /// Signs `msg`. ECDSA: SHA-256 of `msg`, randomized nonce, raw r‖s (64 bytes).
    /// Ed25519: pure Ed25519 over `msg` (64 bytes).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.inner {
            // Raw r||s (64 bytes), as Go writes ecdsa signatures.
            PrivateInner::Ecdsa(e) => e
                .signer
                .sign(&ring::rand::SystemRandom::new(), msg)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|e| KeyError::Signing(e.to_string())),
            PrivateInner::Ed25519(sk) => {
                use ed25519_dalek::Signer as _;
                Ok(sk.sign(msg).to_bytes().to_vec())
            }
        }
    }

    /// The method this key's signatures carry.
    pub fn signature_method(&self) -> SignatureMethod {
        method_for_key_type(&self.key_type())
    }

    /// Private bytes as the Go signer stores them (JWE plaintext, spec §3.3):
    /// ecdsa → SEC1 `ECPrivateKey` DER (121 bytes for P-256); ed25519 → pub ‖ seed ‖ pub.
    pub fn to_go_private_bytes(&self) -> Vec<u8> {
        match &self.inner {
            PrivateInner::Ecdsa(EcdsaPrivate { key: sk, .. }) => {
                // Go's MarshalECPrivateKey always writes the named-curve parameters and the
                // uncompressed public point; elliptic-curve's `to_sec1_der` omits the
                // parameters, so build the structure explicitly.
                use sec1::der::Encode as _;
                let secret = p256::SecretKey::from(sk);
                let private = secret.to_bytes();
                let point = secret.public_key().to_encoded_point(false);
                sec1::EcPrivateKey {
                    private_key: &private,
                    parameters: Some(sec1::EcParameters::NamedCurve(P256_OID)),
                    public_key: Some(point.as_bytes()),
                }
                .to_der()
                .expect("P-256 secret keys always encode")
            }
            PrivateInner::Ed25519(sk) => {
                let public = sk.verifying_key().to_bytes();
                let mut out = Vec::with_capacity(96);
                out.extend_from_slice(&public);
                out.extend_from_slice(&sk.to_bytes());
                out.extend_from_slice(&public);
                out
            }
        }
    }

    /// The bare secret: the P-256 scalar (32 bytes, big-endian) or the Ed25519 seed (32
    /// bytes), as a PKCS#11 token takes it in `CKA_VALUE` on import. Wiped on drop.
    pub fn secret_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(match &self.inner {
            PrivateInner::Ecdsa(e) => e.key.to_bytes().to_vec(),
            PrivateInner::Ed25519(sk) => sk.to_bytes().to_vec(),
        })
    }

    /// PKCS#8 DER of the private key (for tools that take standard key files, e.g. rcgen).
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, KeyError> {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let doc = match &self.inner {
            PrivateInner::Ecdsa(e) => e.key.to_pkcs8_der(),
            PrivateInner::Ed25519(sk) => sk.to_pkcs8_der(),
        }
        .map_err(|e| KeyError::InvalidKey(e.to_string()))?;
        Ok(doc.as_bytes().to_vec())
    }

    /// Inverse of [`to_go_private_bytes`](Self::to_go_private_bytes). Also accepts PKCS#8
    /// DER for ecdsa, and Go's 64-byte (seed ‖ pub) or a bare 32-byte seed for ed25519.
    pub fn from_go_private_bytes(key_type: &KeyType, bytes: &[u8]) -> Result<PrivateKey, KeyError> {
        let inner = match key_type {
            KeyType::Ecdsa => {
                use p256::pkcs8::DecodePrivateKey as _;
                let secret = p256::SecretKey::from_sec1_der(bytes)
                    .or_else(|_| p256::SecretKey::from_pkcs8_der(bytes))
                    .map_err(|e| KeyError::InvalidKey(format!("ecdsa private key: {e}")))?;
                PrivateInner::Ecdsa(EcdsaPrivate::new(p256::ecdsa::SigningKey::from(secret))?)
            }
            KeyType::Ed25519 => {
                let (seed, expected_pub): (&[u8], Option<&[u8]>) = match bytes.len() {
                    96 => (&bytes[32..64], Some(&bytes[64..96])),
                    64 => (&bytes[..32], Some(&bytes[32..])),
                    32 => (bytes, None),
                    n => {
                        return Err(KeyError::InvalidKey(format!(
                            "ed25519 private key has {n} bytes, expected 96"
                        )));
                    }
                };
                let seed: [u8; 32] = seed.try_into().expect("length checked");
                let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
                if let Some(p) = expected_pub {
                    if sk.verifying_key().as_bytes() != p {
                        return Err(KeyError::InvalidKey(
                            "ed25519 private key does not match its public key".into(),
                        ));
                    }
                }
                if bytes.len() == 96 && bytes[..32] != bytes[64..] {
                    return Err(KeyError::InvalidKey(
                        "ed25519 private key does not match its public key".into(),
                    ));
                }
                PrivateInner::Ed25519(sk)
            }
            other => return Err(KeyError::UnsupportedKeyType(other.to_string())),
        };
        Ok(PrivateKey { inner })
    }
}

#[cfg(test)]
fn p256_from_spki(der: &[u8]) -> Result<p256::ecdsa::VerifyingKey, KeyError> {
    use p256::pkcs8::DecodePublicKey as _;
    p256::ecdsa::VerifyingKey::from_public_key_der(der)
        .map_err(|e| KeyError::InvalidKey(format!("ecdsa public key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p256_points_and_secrets_round_trip() {
        let key = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
        let public = key.public_key();
        let point = public.p256_point().unwrap();
        assert_eq!((point.len(), point[0]), (65, 4), "uncompressed SEC1");
        assert_eq!(PublicKey::from_p256_point(&point).unwrap(), public);
        assert!(PublicKey::from_p256_point(&point[..64]).is_err());
        // The secret rebuilds the same key.
        let secret = key.secret_bytes();
        let sk = p256::SecretKey::from_slice(&secret).unwrap();
        assert_eq!(
            sk.public_key().to_encoded_point(false).as_bytes(),
            point.as_slice()
        );
        let ed = PrivateKey::generate(&KeyType::Ed25519).unwrap();
        let again =
            PrivateKey::from_go_private_bytes(&KeyType::Ed25519, &ed.secret_bytes()).unwrap();
        assert_eq!(again.public_key(), ed.public_key());
    }

    #[test]
    fn key_type_round_trip() {
        for s in [
            "ed25519",
            "ecdsa",
            "ecdsa-x509",
            "rsa",
            "rsa-x509",
            "ECDSA",
            "x",
        ] {
            let kt = KeyType::parse(s);
            assert_eq!(kt.as_str(), s);
            assert_eq!(kt.to_string(), s);
            assert_eq!(serde_json::to_string(&kt).unwrap(), format!("\"{s}\""));
            let back: KeyType = serde_json::from_str(&format!("\"{s}\"")).unwrap();
            assert_eq!(back, kt);
        }
        assert_eq!(KeyType::parse("ECDSA"), KeyType::Other("ECDSA".into()));
        assert_eq!(KeyType::parse("rsa-x509"), KeyType::RsaX509);
    }

    #[test]
    fn method_parse_lowercases() {
        assert_eq!(SignatureMethod::parse("ECDSA"), SignatureMethod::Ecdsa);
        assert_eq!(SignatureMethod::parse("RSAPSS"), SignatureMethod::RsaPss);
        assert_eq!(
            SignatureMethod::parse("PyCrypto-PKCS#1 PSS"),
            SignatureMethod::PyCryptoPss
        );
        assert_eq!(
            SignatureMethod::parse("Foo"),
            SignatureMethod::Other("foo".into())
        );
        assert_eq!(SignatureMethod::PyCryptoPss.as_str(), "pycrypto-pkcs#1 pss");
        assert_eq!(SignatureMethod::RsaPkcs1v15.as_str(), "rsapkcs1v15");
    }

    #[test]
    fn methods_for_key_types() {
        assert_eq!(method_for_key_type(&KeyType::Ecdsa), SignatureMethod::Ecdsa);
        assert_eq!(
            method_for_key_type(&KeyType::EcdsaX509),
            SignatureMethod::Ecdsa
        );
        assert_eq!(method_for_key_type(&KeyType::Rsa), SignatureMethod::RsaPss);
        assert_eq!(
            method_for_key_type(&KeyType::RsaX509),
            SignatureMethod::RsaPss
        );
        assert_eq!(
            method_for_key_type(&KeyType::Ed25519),
            SignatureMethod::Eddsa
        );
    }

    #[test]
    fn key_id_of_spec_example() {
        // Spec §6.3: ed25519 key of 32 zero bytes; its canonical form is fixed, so the ID is
        // the SHA-256 of that exact string.
        let k = PublicKey::new(KeyType::Ed25519, vec![0; 32]);
        let expected = hex::encode(Sha256::digest(
            br#"{"keytype":"ed25519","keyval":{"private":null,"public":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}"#,
        ));
        assert_eq!(k.key_id(), expected);
        assert_eq!(k.canonical_key_id().unwrap(), expected);
        assert_eq!(k.key_id().len(), 64);
    }

    #[test]
    fn server_key_json_layout() {
        let k = PublicKey::new(KeyType::Ed25519, vec![0; 32]);
        assert_eq!(
            String::from_utf8(k.server_key_json()).unwrap(),
            r#"{"keytype":"ed25519","keyval":{"public":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","private":null}}"#
        );
        let v: Value = serde_json::from_slice(&k.server_key_json()).unwrap();
        assert_eq!(PublicKey::from_json_value(&v).unwrap(), k);
    }

    #[test]
    fn from_json_value_rejects_bad_base64() {
        let v = json!({"keytype":"ecdsa","keyval":{"public":"not base64!","private":null}});
        assert!(PublicKey::from_json_value(&v).is_err());
        let v = json!({"keytype":"ecdsa","keyval":{"public":"AAAA","private":"x"}});
        assert!(
            PublicKey::from_json_value(&v).is_err(),
            "private must be base64 too"
        );
        let v = json!({"KeyType":"ecdsa","KEYVAL":{"Public":"AAAA","private":"AAAA"}});
        let k = PublicKey::from_json_value(&v).unwrap();
        assert_eq!((k.key_type, k.public), (KeyType::Ecdsa, vec![0, 0, 0]));
        let v = json!({"keytype":null,"keyval":null});
        assert_eq!(
            PublicKey::from_json_value(&v).unwrap().public,
            Vec::<u8>::new()
        );
    }

    #[test]
    fn ecdsa_key_round_trips_go_bytes() {
        let k = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
        let der = k.to_go_private_bytes();
        assert_eq!(der.len(), 121);
        assert_eq!(&der[..7], &[0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20]);
        let back = PrivateKey::from_go_private_bytes(&KeyType::Ecdsa, &der).unwrap();
        assert_eq!(back.public_key(), k.public_key());
        assert_eq!(k.public_key().public.len(), 91);
        assert_eq!(k.signature_method(), SignatureMethod::Ecdsa);
    }

    #[test]
    fn ed25519_key_round_trips_go_bytes() {
        let k = PrivateKey::generate(&KeyType::Ed25519).unwrap();
        let b = k.to_go_private_bytes();
        assert_eq!(b.len(), 96);
        assert_eq!(&b[..32], k.public_key().public.as_slice());
        assert_eq!(&b[64..], k.public_key().public.as_slice());
        let back = PrivateKey::from_go_private_bytes(&KeyType::Ed25519, &b).unwrap();
        assert_eq!(back.public_key(), k.public_key());
        let mut bad = b.clone();
        bad[0] ^= 1;
        assert!(PrivateKey::from_go_private_bytes(&KeyType::Ed25519, &bad).is_err());
        assert!(PrivateKey::from_go_private_bytes(&KeyType::Ed25519, &b[..50]).is_err());
        assert_eq!(k.signature_method(), SignatureMethod::Eddsa);
    }

    #[test]
    fn generate_rejects_rsa_and_x509() {
        assert!(PrivateKey::generate(&KeyType::Rsa).is_err());
        assert!(PrivateKey::generate(&KeyType::EcdsaX509).is_err());
        assert!(PrivateKey::from_go_private_bytes(&KeyType::Rsa, &[1, 2]).is_err());
    }

    #[test]
    fn signatures_verify() {
        use p256::ecdsa::signature::Verifier as _;
        let k = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
        let sig = k.sign(b"hello").unwrap();
        assert_eq!(sig.len(), 64);
        let vk = p256_from_spki(&k.public_key().public).unwrap();
        let s = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        assert!(vk.verify(b"hello", &s).is_ok());
        assert!(vk.verify(b"hellO", &s).is_err());

        let k = PrivateKey::generate(&KeyType::Ed25519).unwrap();
        let sig = k.sign(b"hello").unwrap();
        assert_eq!(sig.len(), 64);
        let vk = ed25519_dalek::VerifyingKey::from_bytes(
            k.public_key().public.as_slice().try_into().unwrap(),
        )
        .unwrap();
        let s = ed25519_dalek::Signature::from_slice(&sig).unwrap();
        assert!(vk.verify_strict(b"hello", &s).is_ok());
        assert!(vk.verify_strict(b"hellO", &s).is_err());
    }

    #[test]
    fn debug_hides_key_material() {
        let k = PrivateKey::generate(&KeyType::Ed25519).unwrap();
        let dbg = format!("{k:?}");
        assert!(dbg.contains(&k.public_key().key_id()));
        assert!(!dbg.contains(&hex::encode(&k.to_go_private_bytes()[32..64])));
    }

    #[test]
    fn go_base64_ignores_newlines_only() {
        assert_eq!(decode_go_base64("AA\r\nAA").unwrap(), vec![0, 0, 0]);
        assert!(decode_go_base64("AA AA").is_err());
        assert!(decode_go_base64("AAA").is_err());
        assert!(decode_go_base64("-_-_").is_err());
    }
}
