//! PostgreSQL `db_url` values as Go Notary takes them (lib/pq), handed to libpq.
//!
//! lib/pq and libpq read the same two forms: a URL, `postgres://user:pw@host:port/db?
//! sslmode=verify-full&sslrootcert=ca.pem`, and `key=value` pairs, `host=h dbname=db`. The
//! parameter names of TLS to the database (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`) are
//! the same in both. One default differs: lib/pq's `sslmode` is `require`, libpq's `prefer`
//! (which silently falls back to plain text). A Go config without `sslmode` demanded TLS, so
//! [`PostgresDsn::parse`] adds `sslmode=require` to keep that demand.

use std::fmt;

use super::DsnError;

/// The `sslmode` values libpq knows (lib/pq knows all but `allow` and `prefer`).
const SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// What lib/pq uses when the connection string names no `sslmode`.
const GO_DEFAULT_SSL_MODE: &str = "require";

/// A checked PostgreSQL connection string.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresDsn {
    /// What libpq gets: the input, plus `sslmode` when it had none.
    conninfo: String,
    /// `user@host:port/db`, no password.
    redacted: String,
    ssl_mode: String,
}

// The connection string holds the password: never print it.
impl fmt::Debug for PostgresDsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresDsn")
            .field("target", &self.redacted)
            .field("ssl_mode", &self.ssl_mode)
            .finish()
    }
}

impl PostgresDsn {
    /// Parses a `postgres://` / `postgresql://` URL or a libpq `key=value` string.
    /// `setting` names the config key for error messages.
    pub fn parse(setting: &str, dsn: &str) -> Result<Self, DsnError> {
        let err = |reason: String| DsnError {
            database: "PostgreSQL",
            setting: setting.to_string(),
            reason,
        };
        let dsn = dsn.trim();
        if dsn.is_empty() {
            return Err(err("empty DSN".into()));
        }
        if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
            Self::parse_url(dsn).map_err(err)
        } else if dsn.contains('=') {
            Self::parse_pairs(dsn).map_err(err)
        } else {
            Err(err(
                "expected postgres://user:password@host:port/database?sslmode=... \
                 or key=value pairs (host=... dbname=...)"
                    .into(),
            ))
        }
    }

    fn parse_url(dsn: &str) -> Result<Self, String> {
        let mut url = url::Url::parse(dsn).map_err(|e| format!("not a valid URL: {e}"))?;
        let mut ssl_mode = None;
        for (key, value) in url.query_pairs() {
            if key == "sslmode" {
                ssl_mode = Some(check_ssl_mode(&value)?);
            }
        }
        let ssl_mode = match ssl_mode {
            Some(mode) => mode,
            None => {
                url.query_pairs_mut()
                    .append_pair("sslmode", GO_DEFAULT_SSL_MODE);
                GO_DEFAULT_SSL_MODE.to_owned()
            }
        };
        let host = url.host_str().unwrap_or("localhost");
        let port = url.port().unwrap_or(5432);
        let database = url.path().trim_start_matches('/');
        let user = url.username();
        Ok(PostgresDsn {
            redacted: redacted(user, host, port, database),
            conninfo: url.into(),
            ssl_mode,
        })
    }

    fn parse_pairs(dsn: &str) -> Result<Self, String> {
        let pairs = split_pairs(dsn)?;
        let get = |name: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let (ssl_mode, conninfo) = match get("sslmode") {
            Some(mode) => (check_ssl_mode(mode)?, dsn.to_owned()),
            None => (
                GO_DEFAULT_SSL_MODE.to_owned(),
                format!("{dsn} sslmode={GO_DEFAULT_SSL_MODE}"),
            ),
        };
        let port = match get("port") {
            Some(p) => p
                .parse()
                .map_err(|_| format!("port {p:?} is not a number"))?,
            None => 5432,
        };
        Ok(PostgresDsn {
            redacted: redacted(
                get("user").unwrap_or(""),
                get("host").unwrap_or("localhost"),
                port,
                get("dbname").unwrap_or(""),
            ),
            conninfo,
            ssl_mode,
        })
    }

    /// The string for libpq (`PQconnectdb`). Contains the password: never log it.
    pub fn conninfo(&self) -> &str {
        &self.conninfo
    }

    /// `user@host:port/database`, for logs and errors.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The effective `sslmode`.
    pub fn ssl_mode(&self) -> &str {
        &self.ssl_mode
    }
}

fn check_ssl_mode(mode: &str) -> Result<String, String> {
    if SSL_MODES.contains(&mode) {
        Ok(mode.to_owned())
    } else {
        Err(format!(
            "sslmode {mode:?} is not one of {}",
            SSL_MODES.join(", ")
        ))
    }
}

fn redacted(user: &str, host: &str, port: u16, database: &str) -> String {
    let user = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    format!("{user}{host}:{port}/{database}")
}

/// Splits libpq `key=value` pairs; values may be single-quoted with `\'` and `\\` escapes.
fn split_pairs(dsn: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = dsn.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("{key:?} has no '=value'"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quoted value of {key:?}")),
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '\\' {
                    chars.next();
                    value.extend(chars.next());
                    continue;
                }
                value.push(c);
                chars.next();
            }
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_without_sslmode_gets_go_default_require() {
        let dsn = PostgresDsn::parse(
            "storage.db_url",
            "postgres://server:s3cret@postgresql:5432/notaryserver",
        )
        .unwrap();
        assert_eq!(dsn.ssl_mode(), "require");
        assert_eq!(
            dsn.conninfo(),
            "postgres://server:s3cret@postgresql:5432/notaryserver?sslmode=require"
        );
        assert_eq!(dsn.redacted(), "server@postgresql:5432/notaryserver");
        assert!(!format!("{dsn:?}").contains("s3cret"));
    }

    #[test]
    fn url_keeps_tls_parameters_as_given() {
        let url = "postgresql://signer@db:6000/notarysigner?sslmode=verify-ca&sslrootcert=/c/ca.pem&sslcert=/c/s.pem&sslkey=/c/s-key.pem";
        let dsn = PostgresDsn::parse("storage.db_url", url).unwrap();
        assert_eq!(dsn.ssl_mode(), "verify-ca");
        assert_eq!(dsn.conninfo(), url);
        assert_eq!(dsn.redacted(), "signer@db:6000/notarysigner");
    }

    #[test]
    fn key_value_form() {
        let dsn = PostgresDsn::parse(
            "storage.db_url",
            r"host=127.0.0.1 port=5433 user=server password='a b\'c' dbname=notaryserver",
        )
        .unwrap();
        assert_eq!(dsn.redacted(), "server@127.0.0.1:5433/notaryserver");
        assert!(dsn.conninfo().ends_with(" sslmode=require"));
        let dsn = PostgresDsn::parse("storage.db_url", "host=h dbname=d sslmode=disable").unwrap();
        assert_eq!(dsn.ssl_mode(), "disable");
        assert_eq!(dsn.conninfo(), "host=h dbname=d sslmode=disable");
    }

    #[test]
    fn bad_values_name_the_setting_and_problem() {
        let e = PostgresDsn::parse("storage.db_url", "postgres://u@h/db?sslmode=maybe")
            .unwrap_err()
            .to_string();
        assert!(e.contains("PostgreSQL") && e.contains("storage.db_url") && e.contains("maybe"));
        let e = PostgresDsn::parse("storage.db_url", "notaryserver")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected postgres://"), "{e}");
        let e = PostgresDsn::parse("storage.db_url", "host=h port=abc")
            .unwrap_err()
            .to_string();
        assert!(e.contains("port"), "{e}");
        assert!(PostgresDsn::parse("storage.db_url", "").is_err());
    }
}
