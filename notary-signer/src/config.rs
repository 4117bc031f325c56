//! The signer configuration: Go's signer JSON, accepted unchanged (spec signer-and-tuf §3.5).
//!
//! ```json
//! {
//!   "server": {"grpc_addr": ":7899", "tls_cert_file": "notary-signer.crt",
//!              "tls_key_file": "notary-signer.key", "client_ca_file": "root-ca.crt"},
//!   "storage": {"backend": "mysql", "db_url": "user:pw@tcp(mysql:3306)/notarysigner?parseTime=True",
//!               "default_alias": "passwordalias1"},
//!   "logging": {"level": "info"}
//! }
//! ```
//!
//! Every key in [`KNOWN_KEYS`] can be overridden by `NOTARY_SIGNER_<KEY, '.' -> '_', upper
//! case>`, e.g. `NOTARY_SIGNER_STORAGE_DB_URL`. Relative paths (TLS files, SQLite database)
//! resolve against the config file's directory. The passphrase of alias `A` comes from
//! `NOTARY_SIGNER_<A upper-cased>`.

use std::path::Path;

use notary_common::config::ConfigFile;
use notary_common::dsn::{sqlite_path, MysqlDsn, PostgresDsn};
use notary_common::logging::parse_level;
use notary_common::tls::ServerTlsFiles;
use tracing::level_filters::LevelFilter;

use crate::error::SetupError;
use crate::keystore::Backend;

/// Prefix of the environment overrides.
pub const ENV_PREFIX: &str = "NOTARY_SIGNER";

/// The settings the signer reads, as dotted paths; each can be overridden from the
/// environment. `default_alias` (top level) is Go's backwards-compatible fallback for
/// `storage.default_alias`.
pub const KNOWN_KEYS: &[&str] = &[
    "server.grpc_addr",
    "server.tls_cert_file",
    "server.tls_key_file",
    "server.client_ca_file",
    "server.insecure_no_client_auth",
    "storage.backend",
    "storage.db_url",
    "storage.default_alias",
    "default_alias",
    "logging.level",
    "pkcs11.module",
    "pkcs11.token_label",
    "pkcs11.slot",
    "pkcs11.pin_alias",
    "pkcs11.max_sessions",
];

/// The alias whose variable holds the token PIN when `pkcs11.pin_alias` is not set:
/// `NOTARY_SIGNER_PKCS11_PIN`.
pub const DEFAULT_PIN_ALIAS: &str = "pkcs11_pin";

/// Where keys are created when a PKCS#11 token is configured (the `pkcs11` section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Settings {
    /// The module (shared library) path.
    pub module: std::path::PathBuf,
    /// The token's label.
    pub token_label: Option<String>,
    /// The slot ID, when no label is given.
    pub slot: Option<u64>,
    /// The passphrase alias naming the PIN's variable (`NOTARY_SIGNER_<ALIAS>`).
    pub pin_alias: String,
    /// Sessions opened at most (default 8).
    pub max_sessions: usize,
}

/// Where keys are kept.
#[derive(Debug, Clone)]
pub enum StorageConfig {
    /// In process memory; keys are lost on exit.
    Memory,
    /// MySQL or SQLite.
    Sql(Backend),
}

/// The validated signer configuration.
#[derive(Debug, Clone)]
pub struct SignerConfig {
    /// Listen address as written (`":7899"` means all interfaces).
    pub grpc_addr: String,
    /// Server certificate, key and optional client CA.
    pub tls: ServerTlsFiles,
    /// Key storage.
    pub storage: StorageConfig,
    /// Alias whose passphrase encrypts new keys (required for SQL storage).
    pub default_alias: Option<String>,
    /// Log level (`logging.level`, default `error` as in Go).
    pub log_level: LevelFilter,
    /// `server.insecure_no_client_auth`: serve without client certificates. Only ever true
    /// when `server.client_ca_file` is unset.
    pub insecure_no_client_auth: bool,
    /// The PKCS#11 token new keys are created in (`pkcs11` section), if any.
    pub pkcs11: Option<Pkcs11Settings>,
}

impl SignerConfig {
    /// Loads the file and applies `NOTARY_SIGNER_*` overrides from the environment.
    pub fn load(path: &Path) -> Result<Self, SetupError> {
        let file = ConfigFile::load(path, ENV_PREFIX, KNOWN_KEYS)?;
        Self::from_config(&file)
    }

    /// Validates a loaded configuration. Errors name the setting.
    pub fn from_config(file: &ConfigFile) -> Result<Self, SetupError> {
        let grpc_addr = file.require_str("server.grpc_addr")?;
        let path_setting = |key: &str| -> Result<Option<(std::path::PathBuf, String)>, SetupError> {
            Ok(file.get_path(key)?.map(|p| (p, key.to_string())))
        };
        let cert = path_setting("server.tls_cert_file")?.ok_or_else(|| SetupError::Invalid {
            setting: "server.tls_cert_file".into(),
            reason: "is required: the signer only serves over TLS".into(),
        })?;
        let key = path_setting("server.tls_key_file")?.ok_or_else(|| SetupError::Invalid {
            setting: "server.tls_key_file".into(),
            reason: "is required: the signer only serves over TLS".into(),
        })?;
        let tls = ServerTlsFiles {
            cert,
            key,
            client_ca: path_setting("server.client_ca_file")?,
        };
        // Without a client CA anyone who can reach the port may sign with any key, so that
        // takes an explicit opt-out (Go silently serves every client then).
        let insecure = file
            .get_bool("server.insecure_no_client_auth")?
            .unwrap_or(false);
        if tls.client_ca.is_none() && !insecure {
            return Err(SetupError::Invalid {
                setting: "server.client_ca_file".into(),
                reason: "is required: without it any client could sign with any key \
                         (set server.insecure_no_client_auth to true to serve without client \
                         certificates, for tests only)"
                    .into(),
            });
        }
        let insecure_no_client_auth = insecure && tls.client_ca.is_none();

        let backend = file.require_str("storage.backend")?;
        let storage = match backend.as_str() {
            "memory" => StorageConfig::Memory,
            "mysql" => {
                let url = file.require_str("storage.db_url")?;
                StorageConfig::Sql(Backend::Mysql(MysqlDsn::parse("storage.db_url", &url)?))
            }
            "sqlite3" | "sqlite" => {
                let url = file.require_str("storage.db_url")?;
                StorageConfig::Sql(Backend::Sqlite(sqlite_path(file.dir(), &url)))
            }
            "postgres" => {
                let url = file.require_str("storage.db_url")?;
                StorageConfig::Sql(Backend::Postgres(PostgresDsn::parse(
                    "storage.db_url",
                    &url,
                )?))
            }
            other => {
                return Err(SetupError::Invalid {
                    setting: "storage.backend".into(),
                    reason: format!(
                        "{other:?} is not supported (use \"mysql\", \"postgres\", \"sqlite3\" or \"memory\")"
                    ),
                })
            }
        };

        let default_alias = match file.get_str("storage.default_alias")? {
            Some(a) => Some(a),
            None => file.get_str("default_alias")?,
        };

        let log_level = match file.get_str("logging.level")? {
            Some(name) => parse_level(&name).map_err(|e| SetupError::Invalid {
                setting: "logging.level".into(),
                reason: e.to_string(),
            })?,
            None => LevelFilter::ERROR,
        };

        let pkcs11 = pkcs11_settings(file)?;
        if pkcs11.is_some() && matches!(storage, StorageConfig::Memory) {
            return Err(SetupError::Invalid {
                setting: "storage.backend".into(),
                reason: "must be mysql or sqlite3 when a pkcs11 token is configured: the \
                         database lists the token's keys"
                    .into(),
            });
        }

        Ok(Self {
            grpc_addr,
            tls,
            storage,
            default_alias,
            log_level,
            insecure_no_client_auth,
            pkcs11,
        })
    }

    /// Whether the store needs the default alias and its passphrase: always for SQL
    /// storage, except that with a token only keys from before it need one.
    pub fn needs_default_alias(&self) -> bool {
        matches!(self.storage, StorageConfig::Sql(_)) && self.pkcs11.is_none()
    }

    /// The socket address to bind: Go's `":port"` form means all interfaces.
    pub fn bind_addr(&self) -> String {
        if self.grpc_addr.starts_with(':') {
            format!("0.0.0.0{}", self.grpc_addr)
        } else {
            self.grpc_addr.clone()
        }
    }

    /// The default alias, required for SQL storage (Go's message when it is missing).
    pub fn require_default_alias(&self) -> Result<&str, SetupError> {
        self.default_alias
            .as_deref()
            .ok_or(SetupError::MissingDefaultAlias)
    }
}

/// Reads the `pkcs11` section: absent means no token.
fn pkcs11_settings(file: &ConfigFile) -> Result<Option<Pkcs11Settings>, SetupError> {
    let Some(module) = file.get_path("pkcs11.module")? else {
        for key in ["pkcs11.token_label", "pkcs11.slot", "pkcs11.pin_alias"] {
            if file.get(key).is_some() {
                return Err(SetupError::Invalid {
                    setting: "pkcs11.module".into(),
                    reason: format!("is required when {key} is set"),
                });
            }
        }
        return Ok(None);
    };
    let token_label = file
        .get_str("pkcs11.token_label")?
        .filter(|l| !l.is_empty());
    let slot = match file.get_i64("pkcs11.slot")? {
        Some(n) if n >= 0 => Some(n as u64),
        Some(n) => {
            return Err(SetupError::Invalid {
                setting: "pkcs11.slot".into(),
                reason: format!("{n} is not a slot ID"),
            })
        }
        None => None,
    };
    if token_label.is_none() && slot.is_none() {
        return Err(SetupError::Invalid {
            setting: "pkcs11.token_label".into(),
            reason: "is required (or pkcs11.slot): which token holds the keys".into(),
        });
    }
    let pin_alias = file
        .get_str("pkcs11.pin_alias")?
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| DEFAULT_PIN_ALIAS.to_string());
    let max_sessions = match file.get_i64("pkcs11.max_sessions")? {
        None => 8,
        Some(n) if (1..=1024).contains(&n) => n as usize,
        Some(n) => {
            return Err(SetupError::Invalid {
                setting: "pkcs11.max_sessions".into(),
                reason: format!("{n} is out of range (1 to 1024)"),
            })
        }
    };
    Ok(Some(Pkcs11Settings {
        module,
        token_label,
        slot,
        pin_alias,
        max_sessions,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    fn cfg(v: serde_json::Value) -> Result<SignerConfig, SetupError> {
        SignerConfig::from_config(&ConfigFile::from_value(v, PathBuf::from("/etc/notary")))
    }

    fn base() -> serde_json::Value {
        json!({
            "server": {"grpc_addr": ":7899", "tls_cert_file": "s.crt", "tls_key_file": "/k/s.key",
                       "client_ca_file": "ca.crt"},
            "storage": {"backend": "mysql", "db_url": "u:p@tcp(db:3306)/signer?parseTime=True",
                        "default_alias": "alias1"},
            "logging": {"level": "info"}
        })
    }

    #[test]
    fn go_config_is_accepted() {
        let c = cfg(base()).unwrap();
        assert_eq!(c.bind_addr(), "0.0.0.0:7899");
        assert_eq!(c.tls.cert.0, PathBuf::from("/etc/notary/s.crt"));
        assert_eq!(c.tls.key.0, PathBuf::from("/k/s.key"));
        assert_eq!(
            c.tls.client_ca.as_ref().unwrap().0,
            PathBuf::from("/etc/notary/ca.crt")
        );
        assert_eq!(c.default_alias.as_deref(), Some("alias1"));
        assert_eq!(c.log_level, LevelFilter::INFO);
        match c.storage {
            StorageConfig::Sql(Backend::Mysql(dsn)) => {
                assert_eq!(dsn.to_diesel_url(), "mysql://u:p@db:3306/signer")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sqlite_memory_and_fallback_alias() {
        let mut v = base();
        v["storage"] = json!({"backend": "sqlite3", "db_url": "keys.db"});
        v["DEFAULT_ALIAS"] = json!("legacy");
        let c = cfg(v).unwrap();
        assert_eq!(c.default_alias.as_deref(), Some("legacy"));
        match c.storage {
            StorageConfig::Sql(Backend::Sqlite(p)) => {
                assert_eq!(p, PathBuf::from("/etc/notary/keys.db"))
            }
            other => panic!("{other:?}"),
        }
        let mut v = base();
        v["storage"] = json!({"backend": "memory"});
        let c = cfg(v).unwrap();
        assert!(matches!(c.storage, StorageConfig::Memory));
        assert!(matches!(
            c.require_default_alias(),
            Err(SetupError::MissingDefaultAlias)
        ));
        assert_eq!(
            SetupError::MissingDefaultAlias.to_string(),
            "must provide a default alias for the key DB"
        );
    }

    #[test]
    fn errors_name_the_setting() {
        let cases: Vec<(&str, serde_json::Value)> = vec![
            ("server.grpc_addr", json!(null)),
            ("storage.backend", json!("rethinkdb")),
            ("storage.db_url", json!("nonsense")),
            ("logging.level", json!("2")),
            ("server.tls_cert_file", json!("")),
        ];
        for (setting, value) in cases {
            let mut v = base();
            let (section, key) = setting.split_once('.').unwrap();
            v[section][key] = value;
            let err = cfg(v).unwrap_err().to_string();
            assert!(err.contains(setting), "{setting}: {err}");
        }
    }

    #[test]
    fn client_ca_is_required_unless_insecure_is_explicit() {
        let mut v = base();
        v["server"]
            .as_object_mut()
            .unwrap()
            .remove("client_ca_file");
        let e = cfg(v.clone()).unwrap_err().to_string();
        assert!(
            e.starts_with("config setting server.client_ca_file: is required")
                && e.contains("server.insecure_no_client_auth"),
            "{e}"
        );
        v["server"]["client_ca_file"] = json!("");
        assert!(cfg(v.clone()).is_err());
        for off in [json!(false), json!("false")] {
            v["server"]["insecure_no_client_auth"] = off;
            assert!(cfg(v.clone()).is_err());
        }
        v["server"]["insecure_no_client_auth"] = json!("maybe");
        let e = cfg(v.clone()).unwrap_err().to_string();
        assert!(e.contains("server.insecure_no_client_auth"), "{e}");
        for on in [json!(true), json!("true")] {
            v["server"]["insecure_no_client_auth"] = on;
            let c = cfg(v.clone()).unwrap();
            assert!(c.tls.client_ca.is_none() && c.insecure_no_client_auth);
        }
        // With a client CA the opt-out changes nothing: clients are still checked.
        let mut v = base();
        v["server"]["insecure_no_client_auth"] = json!(true);
        let c = cfg(v).unwrap();
        assert!(c.tls.client_ca.is_some() && !c.insecure_no_client_auth);
        assert!(!cfg(base()).unwrap().insecure_no_client_auth);
    }

    #[test]
    fn pkcs11_section() {
        let mut v = base();
        v["pkcs11"] = json!({"module": "/usr/lib/softhsm/libsofthsm2.so", "token_label": "notary"});
        let c = cfg(v.clone()).unwrap();
        assert_eq!(
            c.pkcs11,
            Some(Pkcs11Settings {
                module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
                token_label: Some("notary".into()),
                slot: None,
                pin_alias: DEFAULT_PIN_ALIAS.into(),
                max_sessions: 8,
            })
        );
        assert!(!c.needs_default_alias());
        assert_eq!(
            crate::Passphrases::env_var(DEFAULT_PIN_ALIAS),
            "NOTARY_SIGNER_PKCS11_PIN"
        );
        assert!(cfg(base()).unwrap().needs_default_alias());
        let bad: Vec<(&str, serde_json::Value)> = vec![
            ("pkcs11.token_label", json!({"module": "m.so"})),
            ("pkcs11.module", json!({"token_label": "x"})),
            ("pkcs11.slot", json!({"module": "m.so", "slot": -1})),
            (
                "pkcs11.max_sessions",
                json!({"module": "m.so", "slot": 0, "max_sessions": 0}),
            ),
        ];
        for (setting, section) in bad {
            let mut v = base();
            v["pkcs11"] = section;
            let e = cfg(v).unwrap_err().to_string();
            assert!(e.contains(setting), "{setting}: {e}");
        }
        v["storage"] = json!({"backend": "memory"});
        let e = cfg(v).unwrap_err().to_string();
        assert!(e.contains("storage.backend"), "{e}");
    }

    #[test]
    fn env_overrides_apply() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("signer.json");
        std::fs::write(&path, base().to_string()).unwrap();
        let file = ConfigFile::load_with_env(&path, ENV_PREFIX, KNOWN_KEYS, |name| {
            (name == "NOTARY_SIGNER_STORAGE_DEFAULT_ALIAS").then(|| "from_env".to_string())
        })
        .unwrap();
        let c = SignerConfig::from_config(&file).unwrap();
        assert_eq!(c.default_alias.as_deref(), Some("from_env"));
        assert_eq!(c.tls.cert.0, tmp.path().join("s.crt"));
    }
}
