//! Plumbing shared by `notary-server` and `notary-signer`.
//!
//! Both Go binaries read a JSON config file given by `-config`, accept Go-style single-dash
//! flags, take `NOTARY_SERVER_*` / `NOTARY_SIGNER_*` environment overrides, use
//! go-sql-driver DSNs and logrus level names. This crate reproduces those conventions so the
//! Rust services accept the Go configuration files unchanged:
//!
//! - [`flags`]: rewrite `-config x` to `--config x` before clap parses the command line;
//! - [`config`]: load the JSON file, apply environment overrides over known keys, resolve
//!   relative paths against the config file's directory;
//! - [`dsn`]: go-sql-driver MySQL DSNs to diesel URLs, lib/pq PostgreSQL URLs, SQLite paths;
//! - [`logging`]: tracing-subscriber set up from logrus level names and `-logf`;
//! - [`tls`]: PEM loading for rustls with errors that name the file and the setting, and the
//!   cipher-suite selection that matches Go's.
//!
//! # Testing
//!
//! `cargo test -p notary-common`; no database or network is needed.

pub mod config;
pub mod dsn;
pub mod flags;
pub mod logging;
pub mod tls;

pub use config::{ConfigError, ConfigFile};
