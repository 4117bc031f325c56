//! Go (Viper) style configuration files.
//!
//! The Go services read a JSON file whose keys are case-insensitive, let every scalar key be
//! overridden by `<PREFIX>_<KEY PATH upper-cased, '.' replaced by '_'>` (for example
//! `NOTARY_SIGNER_STORAGE_DB_URL`) and resolve relative file paths against the directory of
//! the config file. [`ConfigFile`] does the same.
//!
//! Environment names are ambiguous when keys contain underscores (`STORAGE_DB_URL` could be
//! `storage.db.url` or `storage.db_url`), so the caller lists the dotted key paths it knows
//! and only those are looked up. Like Viper, an empty variable counts as unset.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Errors from loading or reading a configuration file. Each names the file or the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid JSON or its top level is not an object.
    #[error("cannot parse config file {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A key holds a value of the wrong type.
    #[error("config setting {key}: expected {expected}, found {found}")]
    InvalidValue {
        /// Dotted key path.
        key: String,
        /// What was expected.
        expected: &'static str,
        /// What was found (the value, or its type for objects and arrays).
        found: String,
    },
    /// A required key is absent or empty.
    #[error("config setting {key} is required")]
    Missing {
        /// Dotted key path.
        key: String,
    },
}

/// A loaded configuration: the JSON tree (keys lower-cased, environment overrides applied)
/// and the directory relative paths resolve against.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    dir: PathBuf,
    root: Value,
}

/// The environment variable that overrides `key` under `prefix`:
/// `env_name("NOTARY_SIGNER", "storage.db_url") == "NOTARY_SIGNER_STORAGE_DB_URL"`.
pub fn env_name(prefix: &str, key: &str) -> String {
    format!("{}_{}", prefix, key.to_ascii_uppercase().replace('.', "_"))
}

impl ConfigFile {
    /// Reads the JSON file at `path` and applies overrides from the process environment for
    /// each of `known_keys` (dotted paths such as `"storage.db_url"`).
    pub fn load(path: &Path, env_prefix: &str, known_keys: &[&str]) -> Result<Self, ConfigError> {
        Self::load_with_env(path, env_prefix, known_keys, |name| {
            std::env::var(name).ok()
        })
    }

    /// Like [`ConfigFile::load`], with the environment given as a lookup function (for tests).
    pub fn load_with_env(
        path: &Path,
        env_prefix: &str,
        known_keys: &[&str],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let root: Value = serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if !root.is_object() {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                reason: "the top level must be a JSON object".into(),
            });
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut cfg = Self::from_value(root, dir);
        cfg.path = path.to_path_buf();
        cfg.apply_env(env_prefix, known_keys, env);
        Ok(cfg)
    }

    /// Builds a configuration from an in-memory JSON value; relative paths resolve against
    /// `dir`. No environment overrides are applied.
    pub fn from_value(root: Value, dir: PathBuf) -> Self {
        Self {
            path: dir.join("<inline>"),
            dir,
            root: lowercase_keys(root),
        }
    }

    /// Applies `<prefix>_<KEY>` overrides for `known_keys`, taking values from `env`.
    /// Values are stored as strings; the typed getters convert them.
    pub fn apply_env(
        &mut self,
        prefix: &str,
        known_keys: &[&str],
        env: impl Fn(&str) -> Option<String>,
    ) {
        for key in known_keys {
            if let Some(v) = env(&env_name(prefix, key)).filter(|v| !v.is_empty()) {
                self.set(key, Value::String(v));
            }
        }
    }

    /// Sets `key` (dotted path) to `value`, creating intermediate objects.
    pub fn set(&mut self, key: &str, value: Value) {
        let mut node = &mut self.root;
        let parts: Vec<String> = key.split('.').map(str::to_ascii_lowercase).collect();
        for (i, part) in parts.iter().enumerate() {
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
            let obj = node.as_object_mut().expect("just made an object");
            if i + 1 == parts.len() {
                obj.insert(part.clone(), value);
                return;
            }
            node = obj
                .entry(part.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }

    /// The config file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory relative paths resolve against.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The whole tree (keys lower-cased).
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// The raw value at a dotted key path (case-insensitive), if present and not `null`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let mut node = &self.root;
        for part in key.split('.') {
            node = node.as_object()?.get(&part.to_ascii_lowercase())?;
        }
        (!node.is_null()).then_some(node)
    }

    /// A string setting. Numbers and booleans are converted, as Viper's `GetString` does.
    /// An empty string counts as absent.
    pub fn get_str(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let s = match self.get(key) {
            None => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(other) => return Err(invalid(key, "a string", other)),
        };
        Ok((!s.is_empty()).then_some(s))
    }

    /// A required string setting.
    pub fn require_str(&self, key: &str) -> Result<String, ConfigError> {
        self.get_str(key)?.ok_or_else(|| ConfigError::Missing {
            key: key.to_string(),
        })
    }

    /// A boolean setting; strings use Go's `strconv.ParseBool` spellings.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => match s.as_str() {
                "" => Ok(None),
                "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Some(true)),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Some(false)),
                _ => Err(invalid(key, "a boolean", &Value::String(s.clone()))),
            },
            Some(other) => Err(invalid(key, "a boolean", other)),
        }
    }

    /// An integer setting; strings are parsed.
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| invalid(key, "an integer", &Value::Number(n.clone()))),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| invalid(key, "an integer", &Value::String(s.clone()))),
            Some(other) => Err(invalid(key, "an integer", other)),
        }
    }

    /// A list of strings (a JSON array, or a comma/space separated string from the
    /// environment).
    pub fn get_str_list(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(invalid(key, "a list of strings", other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(Value::String(s)) => Ok(Some(
                s.split([',', ' '])
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect(),
            )),
            Some(other) => Err(invalid(key, "a list of strings", other)),
        }
    }

    /// A file path setting, resolved against the config file's directory when relative.
    pub fn get_path(&self, key: &str) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self.get_str(key)?.map(|p| self.resolve(&p)))
    }

    /// Resolves `p` against the config file's directory unless it is absolute.
    pub fn resolve(&self, p: &str) -> PathBuf {
        resolve_relative(&self.dir, p)
    }
}

/// Resolves `p` against `dir` unless it is absolute.
pub fn resolve_relative(dir: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    }
}

fn invalid(key: &str, expected: &'static str, found: &Value) -> ConfigError {
    let found = match found {
        Value::Object(_) => "an object".to_string(),
        Value::Array(_) => "a list".to_string(),
        other => other.to_string(),
    };
    ConfigError::InvalidValue {
        key: key.to_string(),
        expected,
        found,
    }
}

/// Viper keys are case-insensitive; lower-casing once makes every lookup simple.
fn lowercase_keys(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), lowercase_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(lowercase_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const KEYS: &[&str] = &["server.grpc_addr", "storage.db_url", "default_alias"];

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("signer.json");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn loads_json_and_reads_typed_values_case_insensitively() {
        let tmp = tempfile::tempdir().unwrap();
        let p = write(
            tmp.path(),
            r#"{"Server":{"GRPC_Addr":":7899","port":4443,"debug":"true"},"storage":{"backend":"mysql"}}"#,
        );
        let cfg = ConfigFile::load_with_env(&p, "X", KEYS, |_| None).unwrap();
        assert_eq!(cfg.get_str("server.grpc_addr").unwrap().unwrap(), ":7899");
        assert_eq!(cfg.get_str("SERVER.PORT").unwrap().unwrap(), "4443");
        assert_eq!(cfg.get_i64("server.port").unwrap(), Some(4443));
        assert_eq!(cfg.get_bool("server.debug").unwrap(), Some(true));
        assert_eq!(cfg.get_str("storage.db_url").unwrap(), None);
        assert_eq!(cfg.dir(), tmp.path());
    }

    #[test]
    fn env_overrides_known_keys_only() {
        let tmp = tempfile::tempdir().unwrap();
        let p = write(tmp.path(), r#"{"storage":{"db_url":"file"}}"#);
        let env: HashMap<&str, &str> = [
            ("NOTARY_SIGNER_STORAGE_DB_URL", "override"),
            ("NOTARY_SIGNER_SERVER_GRPC_ADDR", "127.0.0.1:1"),
            ("NOTARY_SIGNER_DEFAULT_ALIAS", ""),
            ("NOTARY_SIGNER_STORAGE_BACKEND", "ignored: not a known key"),
        ]
        .into_iter()
        .collect();
        let cfg = ConfigFile::load_with_env(&p, "NOTARY_SIGNER", KEYS, |n| {
            env.get(n).map(|v| v.to_string())
        })
        .unwrap();
        assert_eq!(cfg.require_str("storage.db_url").unwrap(), "override");
        assert_eq!(cfg.require_str("server.grpc_addr").unwrap(), "127.0.0.1:1");
        // Empty variables count as unset, as in Viper.
        assert_eq!(cfg.get_str("default_alias").unwrap(), None);
        assert_eq!(cfg.get_str("storage.backend").unwrap(), None);
    }

    #[test]
    fn env_name_upper_cases_and_replaces_dots() {
        assert_eq!(
            env_name("NOTARY_SERVER", "trust_service.tls_ca_file"),
            "NOTARY_SERVER_TRUST_SERVICE_TLS_CA_FILE"
        );
    }

    #[test]
    fn paths_resolve_against_the_config_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let p = write(
            tmp.path(),
            r#"{"server":{"tls_cert_file":"certs/a.crt","tls_key_file":"/abs/a.key"}}"#,
        );
        let cfg = ConfigFile::load_with_env(&p, "X", KEYS, |_| None).unwrap();
        assert_eq!(
            cfg.get_path("server.tls_cert_file").unwrap().unwrap(),
            tmp.path().join("certs/a.crt")
        );
        assert_eq!(
            cfg.get_path("server.tls_key_file").unwrap().unwrap(),
            PathBuf::from("/abs/a.key")
        );
    }

    #[test]
    fn errors_name_the_file_or_the_key() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope.json");
        let err = ConfigFile::load_with_env(&missing, "X", KEYS, |_| None).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(err.to_string().contains("nope.json"));

        let p = write(tmp.path(), "{not json");
        let err = ConfigFile::load_with_env(&p, "X", KEYS, |_| None).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }));

        let p = write(tmp.path(), r#"{"server":{"grpc_addr":{"a":1}},"n":"x"}"#);
        let cfg = ConfigFile::load_with_env(&p, "X", KEYS, |_| None).unwrap();
        let err = cfg.get_str("server.grpc_addr").unwrap_err();
        assert!(err.to_string().contains("server.grpc_addr"), "{err}");
        assert!(matches!(
            cfg.get_i64("n").unwrap_err(),
            ConfigError::InvalidValue { .. }
        ));
        let err = cfg.require_str("storage.backend").unwrap_err();
        assert_eq!(
            err.to_string(),
            "config setting storage.backend is required"
        );
    }

    #[test]
    fn set_creates_nested_objects() {
        let mut cfg = ConfigFile::from_value(serde_json::json!({"a": 1}), PathBuf::from("/d"));
        cfg.set("a.b.c", Value::String("x".into()));
        cfg.set("list", serde_json::json!(["p", "q"]));
        assert_eq!(cfg.get_str("a.b.c").unwrap().unwrap(), "x");
        assert_eq!(
            cfg.get_str_list("list").unwrap().unwrap(),
            vec!["p".to_string(), "q".to_string()]
        );
    }
}
