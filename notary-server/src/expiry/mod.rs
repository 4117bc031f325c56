//! The expiry inventory: when each GUN's metadata and certificates expire.
//!
//! Every accepted file replaces its role's rows in our table `expiry_inventory` (one row for
//! the file's `expires`, one per x509 key certificate in a root or a targets/delegation
//! file's `delegations.keys`), so "what expires within N days" is one query on an index of
//! `expires`, whatever the number of GUNs. `notary-server admin expiry-backfill` fills it from
//! the current metadata of a database written before (by Go or by us).
//!
//! This module holds what is independent of storage: reading expiries out of a file, and
//! who can repair each entry. Its submodules keep the server's own roles away from expiry:
//! [`resign`] re-signs timestamps and server-managed snapshots ahead of time, one replica
//! at a time, and [`watch`] keeps the expiry metrics current.

pub mod resign;
pub mod watch;

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The file's `signed.expires`.
    Metadata,
    /// A key certificate's `notAfter`.
    Certificate,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Metadata => "metadata",
            Kind::Certificate => "certificate",
        }
    }

    /// From the stored name (`certificate`; anything else is metadata).
    pub fn parse(s: &str) -> Kind {
        if s == "certificate" {
            Kind::Certificate
        } else {
            Kind::Metadata
        }
    }
}

/// One expiring thing of one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryEntry {
    /// The role whose file holds it.
    pub role: String,
    /// Metadata or certificate.
    pub kind: Kind,
    /// The key ID for a certificate, "" for metadata.
    pub key_id: String,
    /// The certificate's subject common name, "" for metadata.
    pub subject: String,
    /// When it expires.
    pub expires: DateTime<Utc>,
    /// The file's version.
    pub version: i64,
}

/// Only what the inventory reads of a file; everything else (the target list above all) is
/// skipped by the parser without being built, so a 100k-target file costs one scan.
#[derive(Deserialize)]
struct Envelope {
    signed: Signed,
}

#[derive(Deserialize)]
struct Signed {
    #[serde(default)]
    version: i64,
    #[serde(default)]
    expires: Option<String>,
    /// Root: its keys.
    #[serde(default)]
    keys: Option<BTreeMap<String, KeyJson>>,
    /// Targets and delegations: the delegation keys.
    #[serde(default)]
    delegations: Option<DelegationsJson>,
}

#[derive(Deserialize)]
struct DelegationsJson {
    #[serde(default)]
    keys: BTreeMap<String, KeyJson>,
}

#[derive(Deserialize)]
struct KeyJson {
    keytype: String,
    keyval: KeyVal,
}

#[derive(Deserialize)]
struct KeyVal {
    #[serde(default)]
    public: Option<String>,
}

/// The expiries in one stored file of `role`. A file that does not parse gives none (it was
/// validated on upload; a row Go stored without validation must not stop the inventory).
pub fn entries_of(role: &str, data: &[u8]) -> Vec<ExpiryEntry> {
    let Ok(env) = serde_json::from_slice::<Envelope>(data) else {
        return Vec::new();
    };
    let signed = env.signed;
    let Some(expires) = signed
        .expires
        .as_deref()
        .and_then(|e| notary_tuf::metadata::parse_expires(e).ok())
    else {
        return Vec::new();
    };
    let mut out = vec![ExpiryEntry {
        role: role.to_owned(),
        kind: Kind::Metadata,
        key_id: String::new(),
        subject: String::new(),
        expires,
        version: signed.version,
    }];
    let keys = if role == notary_tuf::roles::ROOT {
        signed.keys.unwrap_or_default()
    } else {
        signed.delegations.map(|d| d.keys).unwrap_or_default()
    };
    for (key_id, key) in keys {
        if !key.keytype.ends_with("-x509") {
            continue;
        }
        let Some(pem) = key
            .keyval
            .public
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        else {
            continue;
        };
        let Some(info) = notary_tuf::certs::pem_certificates(&pem)
            .ok()
            .and_then(|ders| ders.into_iter().next())
            .and_then(|der| notary_tuf::certs::cert_info(&der).ok())
        else {
            continue;
        };
        out.push(ExpiryEntry {
            role: role.to_owned(),
            kind: Kind::Certificate,
            key_id,
            subject: info.common_name,
            expires: info.not_after,
            version: signed.version,
        });
    }
    out
}

/// What the inventory keeps of one file: its metadata expiry, and the earliest of its key
/// certificates (`None` when it lists none). `None` for a file that does not parse.
pub fn role_rows(role: &str, data: &[u8]) -> Option<(ExpiryEntry, Option<ExpiryEntry>)> {
    let mut entries = entries_of(role, data).into_iter();
    let metadata = entries.next()?;
    let earliest_cert = entries.min_by_key(|e| e.expires);
    Some((metadata, earliest_cert))
}

/// Who can repair an entry, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repair {
    /// `server` (it re-signs timestamps and server-managed snapshots itself) or `owner`.
    pub who_can_fix: &'static str,
    /// The stock `notary` command that repairs it (for `owner`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// `s` as one shell word: bare when it holds only characters no shell treats specially
/// (what GUNs are made of), else single-quoted. GUNs only exclude `*`, so a pasted repair
/// command must not let one run anything.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | ':' | '-' | '_' | '@' | '+')
        });
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The owner's repair of an expired (or soon expiring) root, targets or owner-signed
/// snapshot: the stock clients cannot publish over those once expired (see
/// `notary-migrate rescue`, docs/expiry.md).
fn rescue_command(gun: &str, days_left: i64) -> String {
    format!(
        "notary-migrate rescue -s https://<this-server> -d ~/.notary --within-days {} {gun}",
        days_left.max(0) + 1
    )
}

/// Who can repair `role` of `gun` (`server_snapshot`: the server holds the snapshot key), and
/// the command, given the entry's whole `days_left` and whether it has `expired`.
pub fn repair(
    gun: &str,
    role: &str,
    kind: Kind,
    server_snapshot: bool,
    days_left: i64,
    expired: bool,
) -> Repair {
    let server = Repair {
        who_can_fix: "server",
        command: None,
    };
    let owner = |command: String| Repair {
        who_can_fix: "owner",
        command: Some(command),
    };
    let quoted = shell_word(gun);
    let gun = quoted.as_str();
    let rescue = rescue_command(gun, days_left);
    match (role, kind) {
        ("timestamp", _) => server,
        ("snapshot", _) if server_snapshot => server,
        ("snapshot", _) if expired => owner(format!("{rescue}  # re-signs the snapshot")),
        ("snapshot", _) => owner(format!(
            "notary key rotate {gun} snapshot -r  # the server manages (and re-signs) it from then on"
        )),
        ("root", Kind::Certificate) => owner(format!(
            "{rescue}  # a new certificate for the same root key"
        )),
        ("root", Kind::Metadata) => owner(format!("{rescue}  # re-signs root")),
        ("targets", Kind::Metadata) if expired => {
            owner(format!("{rescue}  # re-signs targets"))
        }
        ("targets", Kind::Metadata) => owner(format!(
            "notary witness {gun} targets && notary publish {gun}  # re-signs targets"
        )),
        // A certificate of a delegation key the role lists.
        (role, Kind::Certificate) => owner(format!(
            "notary delegation add {gun} <delegation of {role}> NEW-CERT.pem --all-paths && \
             notary delegation remove {gun} <delegation> <old key ID> && notary publish {gun}"
        )),
        // Delegations: the client only warns about an expired one, so witness works.
        (role, Kind::Metadata) => owner(format!(
            "notary witness {gun} {role} && notary publish {gun}  # re-signs {role}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(signed: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"signed": signed, "signatures": []})).unwrap()
    }

    #[test]
    fn metadata_expiry_of_any_role() {
        let ts = file(
            json!({"_type": "Timestamp", "version": 7, "expires": "2027-01-02T03:04:05Z", "meta": {}}),
        );
        let e = entries_of("timestamp", &ts);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].kind, Kind::Metadata);
        assert_eq!(e[0].version, 7);
        assert_eq!(e[0].expires.to_rfc3339(), "2027-01-02T03:04:05+00:00");
        assert!(entries_of("timestamp", b"not json").is_empty());
    }

    #[test]
    fn root_certificates_are_listed_with_their_not_after() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "example.com/app");
        params.not_after = rcgen::date_time_ymd(2030, 6, 1);
        let cert = params.self_signed(&key).unwrap();
        let pem = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            cert.pem().as_bytes(),
        );
        let root = file(json!({
            "_type": "Root", "version": 1, "expires": "2036-01-01T00:00:00Z",
            "consistent_snapshot": false,
            "keys": {"abc": {"keytype": "ecdsa-x509", "keyval": {"public": pem, "private": null}}},
            "roles": {"root": {"keyids": ["abc"], "threshold": 1}},
        }));
        let e = entries_of("root", &root);
        assert_eq!(e.len(), 2, "{e:?}");
        let cert = e.iter().find(|x| x.kind == Kind::Certificate).unwrap();
        assert_eq!(cert.key_id, "abc");
        assert_eq!(cert.subject, "example.com/app");
        assert_eq!(cert.expires.date_naive().to_string(), "2030-06-01");
    }

    #[test]
    fn commands_quote_odd_guns() {
        assert_eq!(shell_word("docker.io/library/app"), "docker.io/library/app");
        assert_eq!(shell_word("a b;rm -rf x"), "'a b;rm -rf x'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        let fix = repair("a$(x)", "targets", Kind::Metadata, false, 1, false);
        assert!(fix
            .command
            .unwrap()
            .starts_with("notary witness 'a$(x)' targets"));
    }

    #[test]
    fn repair_names_who_and_how() {
        let r = |role: &str, kind: Kind, server_snapshot: bool, expired: bool| {
            repair("g", role, kind, server_snapshot, 3, expired)
        };
        assert_eq!(
            r("timestamp", Kind::Metadata, false, true).who_can_fix,
            "server"
        );
        assert_eq!(
            r("snapshot", Kind::Metadata, true, true).who_can_fix,
            "server"
        );
        let snapshot = r("snapshot", Kind::Metadata, false, false);
        assert_eq!(snapshot.who_can_fix, "owner");
        assert!(snapshot
            .command
            .unwrap()
            .contains("key rotate g snapshot -r"));
        assert!(r("root", Kind::Certificate, false, false)
            .command
            .unwrap()
            .starts_with(
                "notary-migrate rescue -s https://<this-server> -d ~/.notary --within-days 4 g"
            ));
        // Targets: the stock client while it can, the rescue once expired.
        assert!(r("targets", Kind::Metadata, false, false)
            .command
            .unwrap()
            .starts_with("notary witness g targets && notary publish g"));
        assert!(r("targets", Kind::Metadata, false, true)
            .command
            .unwrap()
            .starts_with("notary-migrate rescue"));
        assert!(r("targets/releases", Kind::Metadata, false, true)
            .command
            .unwrap()
            .starts_with("notary witness g targets/releases"));
    }
}
