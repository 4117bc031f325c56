//! X.509 helpers: PEM bundles as Notary stores them in `*-x509` keys, and the certificate
//! rules Go applies to root and delegation keys (spec signer-and-tuf §7.5).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use x509_parser::prelude::*;

/// All PEM blocks of a buffer as (label, DER). Text around blocks is ignored, as Go's
/// `pem.Decode` loop does.
pub fn pem_blocks(pem: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| format!("invalid PEM: {e}"))?;
        out.push((block.label, block.contents));
    }
    Ok(out)
}

/// DER of every `CERTIFICATE` block, in order (other blocks skipped).
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    Ok(pem_blocks(pem)?
        .into_iter()
        .filter(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| der)
        .collect())
}

/// The SubjectPublicKeyInfo DER of a DER certificate.
pub fn spki_der(cert_der: &[u8]) -> Result<Vec<u8>, String> {
    let (_, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| format!("invalid certificate: {e}"))?;
    Ok(cert.public_key().raw.to_vec())
}

/// Encodes DER certificates the way Go's `pem.Encode` does: 64-character lines, each block
/// `-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n`.
pub fn go_pem_encode_certs<D: AsRef<[u8]>>(ders: &[D]) -> Vec<u8> {
    let mut out = String::new();
    for der in ders {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = B64.encode(der.as_ref());
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out.into_bytes()
}

/// Facts about one certificate that the Notary checks need.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// The DER bytes.
    pub der: Vec<u8>,
    /// Subject common name ("" if none).
    pub common_name: String,
    /// basicConstraints CA flag.
    pub is_ca: bool,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// True when signed with a SHA-1 based algorithm.
    pub sha1_signature: bool,
    /// RSA modulus size in bits, for RSA keys.
    pub rsa_bits: Option<usize>,
    /// SubjectPublicKeyInfo DER.
    pub spki: Vec<u8>,
    /// True for an EC public key, false for RSA or others.
    pub is_ec: bool,
}

const SHA1_SIG_OIDS: &[&str] = &[
    "1.2.840.113549.1.1.5", // sha1WithRSAEncryption
    "1.2.840.10045.4.1",    // ecdsa-with-SHA1
    "1.2.840.10040.4.3",    // dsa-with-sha1
    "1.3.14.3.2.29",        // sha1WithRSASignature (OIW)
];

/// Parses a DER certificate into [`CertInfo`].
pub fn cert_info(der: &[u8]) -> Result<CertInfo, String> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("invalid certificate: {e}"))?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .to_string();
    let is_ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .map(|bc| bc.value.ca)
        .unwrap_or(false);
    let to_chrono = |t: ASN1Time| {
        DateTime::<Utc>::from_timestamp(t.timestamp(), 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
    };
    let sig_oid = cert.signature_algorithm.algorithm.to_id_string();
    let sha1_signature = SHA1_SIG_OIDS.contains(&sig_oid.as_str());
    let spki = cert.public_key();
    let (rsa_bits, is_ec) = match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => (Some(rsa.key_size()), false),
        Ok(x509_parser::public_key::PublicKey::EC(_)) => (None, true),
        _ => (None, false),
    };
    Ok(CertInfo {
        der: der.to_vec(),
        common_name,
        is_ca,
        not_before: to_chrono(cert.validity().not_before),
        not_after: to_chrono(cert.validity().not_after),
        sha1_signature,
        rsa_bits,
        spki: spki.raw.to_vec(),
        is_ec,
    })
}

/// Go `ValidateCertificate`: NotBefore ≤ NotAfter, no SHA-1 signature, RSA ≥ 2048 bits and,
/// when `check_expiry`, valid at `now` (NotBefore may be up to one day in the future).
pub fn validate_certificate(
    c: &CertInfo,
    check_expiry: bool,
    now: DateTime<Utc>,
) -> Result<(), String> {
    if c.not_before > c.not_after {
        return Err("notBefore is after notAfter".into());
    }
    if c.sha1_signature {
        return Err("certificate uses a SHA-1 signature algorithm".into());
    }
    if let Some(bits) = c.rsa_bits {
        if bits < 2048 {
            return Err(format!("RSA key of {bits} bits is too short"));
        }
    }
    if check_expiry {
        if c.not_before > now + Duration::days(1) {
            return Err(format!("certificate not valid before {}", c.not_before));
        }
        if now > c.not_after {
            return Err(format!("certificate expired at {}", c.not_after));
        }
    }
    Ok(())
}

/// True if a certificate CN matches the GUN: equal, or a CN ending in `*` whose remaining
/// text is a prefix of the GUN.
pub fn cn_matches_gun(cn: &str, gun: &str) -> bool {
    if cn == gun {
        return true;
    }
    match cn.strip_suffix('*') {
        Some(prefix) => gun.starts_with(prefix),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cn_rules() {
        assert!(cn_matches_gun("docker.io/a", "docker.io/a"));
        assert!(!cn_matches_gun("docker.io/a", "docker.io/ab"));
        assert!(cn_matches_gun("docker.io/*", "docker.io/ab"));
        assert!(cn_matches_gun("*", "anything"));
        assert!(!cn_matches_gun("quay.io/*", "docker.io/ab"));
    }

    #[test]
    fn pem_encoding_wraps_at_64() {
        let der = vec![7u8; 100];
        let pem = String::from_utf8(go_pem_encode_certs(std::slice::from_ref(&der))).unwrap();
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2].len(), 64);
        assert_eq!(lines[3].len(), 136 - 128);
        assert_eq!(lines[4], "-----END CERTIFICATE-----");
        assert!(pem.ends_with("-----\n"));
        assert_eq!(pem_certificates(pem.as_bytes()).unwrap(), vec![der]);
    }

    #[test]
    fn pem_blocks_skip_text_and_keep_labels() {
        let pem = b"junk\n-----BEGIN FOO-----\nAAAA\n-----END FOO-----\ntrailer\n";
        assert_eq!(
            pem_blocks(pem).unwrap(),
            vec![("FOO".to_string(), vec![0, 0, 0])]
        );
        assert!(pem_certificates(pem).unwrap().is_empty());
        assert!(pem_blocks(b"-----BEGIN FOO-----\nAAAA\n").is_err());
    }
}
