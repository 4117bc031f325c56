//! Database connection strings.
//!
//! Go Notary configures MySQL with go-sql-driver DSNs,
//! `[user[:password]@][net[(addr)]]/dbname[?param=value&...]`, for example
//! `server:pw@tcp(mysql:3306)/notaryserver?parseTime=True`. diesel wants a URL,
//! `mysql://user:pw@host:port/db`. [`MysqlDsn`] parses the former and renders the latter.
//! SQLite `db_url` values are file paths, relative to the config file ([`sqlite_path`]).

use std::fmt;
use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

mod postgres;
pub use postgres::PostgresDsn;

/// An invalid DSN. The message names the setting and never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {database} DSN in {setting}: {reason}")]
pub struct DsnError {
    /// `MySQL` or `PostgreSQL`.
    pub database: &'static str,
    /// The config setting the DSN came from, e.g. `storage.db_url`.
    pub setting: String,
    /// What is wrong.
    pub reason: String,
}

/// How to reach the MySQL server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MysqlAddr {
    /// TCP `host:port`.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// A unix socket path.
    Unix(String),
}

/// A parsed go-sql-driver DSN (or `mysql://` URL).
#[derive(Clone, PartialEq, Eq)]
pub struct MysqlDsn {
    /// User name (may be empty).
    pub user: String,
    /// Password, if one was given.
    pub password: Option<String>,
    /// Server address.
    pub addr: MysqlAddr,
    /// Database name.
    pub database: String,
    /// `tls` parameter mapped to diesel's `ssl_mode`, if given.
    pub ssl_mode: Option<&'static str>,
    /// Parameters that have no diesel equivalent and are ignored (e.g. `parseTime`).
    pub ignored_params: Vec<String>,
}

// Never print the password, not even in Debug output.
impl fmt::Debug for MysqlDsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlDsn")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("addr", &self.addr)
            .field("database", &self.database)
            .field("ssl_mode", &self.ssl_mode)
            .field("ignored_params", &self.ignored_params)
            .finish()
    }
}

/// Characters kept verbatim in URL user info; everything else is percent-encoded.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl MysqlDsn {
    /// Parses a go-sql-driver DSN. A value starting with `mysql://` is accepted as a URL.
    /// `setting` names the config key for error messages.
    pub fn parse(setting: &str, dsn: &str) -> Result<Self, DsnError> {
        let err = |reason: &str| DsnError {
            database: "MySQL",
            setting: setting.to_string(),
            reason: reason.to_string(),
        };
        if dsn.is_empty() {
            return Err(err("empty DSN"));
        }
        if dsn.starts_with("mysql://") {
            return Self::parse_url(setting, dsn);
        }
        // As in go-sql-driver: the database follows the LAST '/', so passwords may contain '/'
        // only if a database name follows; user info ends at the last '@' before it.
        let slash = dsn.rfind('/').ok_or_else(|| {
            err("missing the slash separating the database name (expected user:password@tcp(host:port)/dbname)")
        })?;
        let (head, tail) = (&dsn[..slash], &dsn[slash + 1..]);
        let (userinfo, netaddr) = match head.rfind('@') {
            Some(at) => (Some(&head[..at]), &head[at + 1..]),
            None => (None, head),
        };
        let (user, password) = match userinfo {
            None => (String::new(), None),
            Some(ui) => match ui.split_once(':') {
                Some((u, p)) => (u.to_string(), Some(p.to_string())),
                None => (ui.to_string(), None),
            },
        };
        let (net, addr) = match netaddr.find('(') {
            Some(open) => {
                if !netaddr.ends_with(')') {
                    return Err(err("unclosed '(' in the network address"));
                }
                (&netaddr[..open], &netaddr[open + 1..netaddr.len() - 1])
            }
            None => (netaddr, ""),
        };
        let addr = match net {
            "" | "tcp" | "tcp4" | "tcp6" => parse_tcp_addr(addr).map_err(|r| err(&r))?,
            "unix" => {
                if addr.is_empty() {
                    return Err(err("unix(...) needs a socket path"));
                }
                MysqlAddr::Unix(addr.to_string())
            }
            other => return Err(err(&format!("unsupported network {other:?}"))),
        };
        let (database, query) = match tail.split_once('?') {
            Some((d, q)) => (d, q),
            None => (tail, ""),
        };
        check_database(database).map_err(|r| err(&r))?;
        let mut ssl_mode = None;
        let mut ignored_params = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if k == "tls" {
                ssl_mode = Some(match v.to_ascii_lowercase().as_str() {
                    "true" => "verify_identity",
                    "skip-verify" => "required",
                    "preferred" => "preferred",
                    "false" => "disabled",
                    _ => return Err(err(&format!("unsupported tls parameter {v:?}"))),
                });
            } else {
                ignored_params.push(k.to_string());
            }
        }
        Ok(Self {
            user,
            password,
            addr,
            database: database.to_string(),
            ssl_mode,
            ignored_params,
        })
    }

    fn parse_url(setting: &str, dsn: &str) -> Result<Self, DsnError> {
        let err = |reason: String| DsnError {
            database: "MySQL",
            setting: setting.to_string(),
            reason,
        };
        let rest = &dsn["mysql://".len()..];
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| err("user info is not valid UTF-8 after percent-decoding".into()))
        };
        let (user, password) = match userinfo {
            None => (String::new(), None),
            Some(ui) => match ui.split_once(':') {
                Some((u, p)) => (decode(u)?, Some(decode(p)?)),
                None => (decode(ui)?, None),
            },
        };
        let addr = parse_tcp_addr(hostport).map_err(err)?;
        let (database, _query) = path.split_once('?').unwrap_or((path, ""));
        check_database(database).map_err(err)?;
        Ok(Self {
            user,
            password,
            addr,
            database: database.to_string(),
            ssl_mode: None,
            ignored_params: Vec::new(),
        })
    }

    /// The diesel connection URL, e.g. `mysql://user:pw@127.0.0.1:3306/db`.
    /// Contains the password: never log it; use [`MysqlDsn::redacted`] instead.
    pub fn to_diesel_url(&self) -> String {
        let mut url = String::from("mysql://");
        if !self.user.is_empty() || self.password.is_some() {
            url.push_str(&utf8_percent_encode(&self.user, USERINFO).to_string());
            if let Some(p) = &self.password {
                url.push(':');
                url.push_str(&utf8_percent_encode(p, USERINFO).to_string());
            }
            url.push('@');
        }
        let mut query = Vec::new();
        match &self.addr {
            MysqlAddr::Tcp { host, port } => {
                if host.contains(':') {
                    url.push_str(&format!("[{host}]:{port}"));
                } else {
                    url.push_str(&format!("{host}:{port}"));
                }
            }
            MysqlAddr::Unix(path) => {
                // diesel drops the host "localhost" when a unix_socket is given.
                url.push_str("localhost");
                query.push(format!(
                    "unix_socket={}",
                    utf8_percent_encode(path, USERINFO)
                ));
            }
        }
        url.push('/');
        url.push_str(&self.database);
        if let Some(mode) = self.ssl_mode {
            query.push(format!("ssl_mode={mode}"));
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        url
    }

    /// `user@host:port/db` (or `user@unix(/path)/db`) for log and error messages.
    pub fn redacted(&self) -> String {
        let user = if self.user.is_empty() {
            String::new()
        } else {
            format!("{}@", self.user)
        };
        format!("{user}{}/{}", self.endpoint(), self.database)
    }

    /// `host:port` or `unix(/path)`.
    pub fn endpoint(&self) -> String {
        match &self.addr {
            MysqlAddr::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            MysqlAddr::Tcp { host, port } => format!("{host}:{port}"),
            MysqlAddr::Unix(p) => format!("unix({p})"),
        }
    }
}

fn parse_tcp_addr(addr: &str) -> Result<MysqlAddr, String> {
    if addr.is_empty() {
        return Ok(MysqlAddr::Tcp {
            host: "127.0.0.1".into(),
            port: 3306,
        });
    }
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("bad IPv6 address {addr:?}"))?;
        (h, after.strip_prefix(':'))
    } else {
        match addr.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (addr, None),
        }
    };
    let port = match port {
        None | Some("") => 3306,
        Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
    };
    // libmysqlclient treats "localhost" as "use the default unix socket"; Go dials TCP.
    let host = if host.is_empty() || host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    Ok(MysqlAddr::Tcp {
        host: host.to_string(),
        port,
    })
}

fn check_database(db: &str) -> Result<(), String> {
    if db.is_empty() {
        return Err("no database name after '/'".into());
    }
    // diesel does not percent-decode the database name, so refuse what would break the URL.
    if db.contains(['/', '?', '#', '%', '@', ' ']) {
        return Err(format!("unsupported character in database name {db:?}"));
    }
    Ok(())
}

/// The SQLite database file named by a `db_url` setting, resolved against `config_dir`
/// when relative. A `sqlite://` or `file:` prefix is stripped.
pub fn sqlite_path(config_dir: &Path, db_url: &str) -> PathBuf {
    let p = db_url
        .strip_prefix("sqlite://")
        .or_else(|| db_url.strip_prefix("file:"))
        .unwrap_or(db_url);
    crate::config::resolve_relative(config_dir, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(dsn: &str) -> MysqlDsn {
        MysqlDsn::parse("storage.db_url", dsn).unwrap()
    }

    #[test]
    fn go_tcp_dsn_becomes_diesel_url() {
        let d = parse("signer:pw@tcp(mysql.example:3307)/notarysigner?parseTime=True");
        assert_eq!(d.user, "signer");
        assert_eq!(d.password.as_deref(), Some("pw"));
        assert_eq!(
            d.addr,
            MysqlAddr::Tcp {
                host: "mysql.example".into(),
                port: 3307
            }
        );
        assert_eq!(d.ignored_params, vec!["parseTime".to_string()]);
        assert_eq!(
            d.to_diesel_url(),
            "mysql://signer:pw@mysql.example:3307/notarysigner"
        );
        assert_eq!(d.redacted(), "signer@mysql.example:3307/notarysigner");
    }

    #[test]
    fn special_characters_in_password_are_percent_encoded() {
        let d = parse("u:p@ss:w/rd@tcp(h:1)/db");
        // Last '@' before the last '/' ends the user info; the first ':' splits it.
        assert_eq!(d.user, "u");
        assert_eq!(d.password.as_deref(), Some("p@ss:w/rd"));
        assert_eq!(d.database, "db");
        let d = parse("us er:p@s:s#?/&@tcp(h:1)/db");
        assert_eq!(d.password.as_deref(), Some("p@s:s#?/&"));
        assert_eq!(
            d.to_diesel_url(),
            "mysql://us%20er:p%40s%3As%23%3F%2F%26@h:1/db"
        );
    }

    #[test]
    fn defaults_and_no_password_forms() {
        let d = parse("root@/db");
        assert_eq!(d.password, None);
        assert_eq!(d.to_diesel_url(), "mysql://root@127.0.0.1:3306/db");
        let d = parse("/db");
        assert_eq!(d.to_diesel_url(), "mysql://127.0.0.1:3306/db");
        let d = parse("u:@tcp(localhost)/db");
        assert_eq!(d.password.as_deref(), Some(""));
        assert_eq!(d.to_diesel_url(), "mysql://u:@127.0.0.1:3306/db");
        let d = parse("u@tcp([::1]:3306)/db");
        assert_eq!(d.to_diesel_url(), "mysql://u@[::1]:3306/db");
    }

    #[test]
    fn unix_socket_dsn() {
        let d = parse("u:pw@unix(/run/mysqld/mysqld.sock)/db");
        assert_eq!(d.addr, MysqlAddr::Unix("/run/mysqld/mysqld.sock".into()));
        assert_eq!(
            d.to_diesel_url(),
            "mysql://u:pw@localhost/db?unix_socket=%2Frun%2Fmysqld%2Fmysqld.sock"
        );
        assert_eq!(d.redacted(), "u@unix(/run/mysqld/mysqld.sock)/db");
    }

    #[test]
    fn tls_parameter_maps_to_ssl_mode() {
        let d = parse("u:p@tcp(h:1)/db?tls=skip-verify&parseTime=true");
        assert_eq!(d.to_diesel_url(), "mysql://u:p@h:1/db?ssl_mode=required");
        assert!(MysqlDsn::parse("s", "u@tcp(h)/db?tls=custom").is_err());
    }

    #[test]
    fn mysql_urls_are_accepted() {
        let d = parse("mysql://a%40b:p%3Aw@db.local:3310/x");
        assert_eq!(d.user, "a@b");
        assert_eq!(d.password.as_deref(), Some("p:w"));
        assert_eq!(d.to_diesel_url(), "mysql://a%40b:p%3Aw@db.local:3310/x");
    }

    #[test]
    fn errors_name_the_setting_and_hide_the_password() {
        let e = MysqlDsn::parse("storage.db_url", "user:secret@tcp(h:1)").unwrap_err();
        assert!(e.to_string().contains("storage.db_url"), "{e}");
        assert!(!e.to_string().contains("secret"));
        for bad in [
            "",
            "u@tcp(h:1/db",
            "u@udp(h:1)/db",
            "u@tcp(h:port)/db",
            "u@tcp(h:1)/",
        ] {
            assert!(MysqlDsn::parse("s", bad).is_err(), "{bad:?} accepted");
        }
        let d = parse("u:secret@tcp(h:1)/db");
        assert!(!format!("{d:?}").contains("secret"));
        assert!(!d.redacted().contains("secret"));
    }

    #[test]
    fn sqlite_paths_resolve_against_the_config_dir() {
        let dir = Path::new("/etc/notary");
        assert_eq!(
            sqlite_path(dir, "signer.db"),
            PathBuf::from("/etc/notary/signer.db")
        );
        assert_eq!(
            sqlite_path(dir, "/var/lib/s.db"),
            PathBuf::from("/var/lib/s.db")
        );
        assert_eq!(
            sqlite_path(dir, "sqlite://data/s.db"),
            PathBuf::from("/etc/notary/data/s.db")
        );
    }
}
