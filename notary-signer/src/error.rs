//! Startup errors. Each names the setting, file or environment variable at fault and never
//! includes a password.

use crate::keystore::KeyStoreError;

/// Why the signer could not start (or a maintenance command failed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The config file could not be read, or a setting has the wrong type.
    #[error(transparent)]
    Config(#[from] notary_common::config::ConfigError),
    /// `storage.db_url` is not a usable DSN.
    #[error(transparent)]
    Dsn(#[from] notary_common::dsn::DsnError),
    /// A TLS file is missing or unusable.
    #[error(transparent)]
    Tls(#[from] notary_common::tls::TlsFileError),
    /// A setting has an invalid value.
    #[error("config setting {setting}: {reason}")]
    Invalid {
        /// Dotted key path.
        setting: String,
        /// What is wrong.
        reason: String,
    },
    /// Neither `storage.default_alias` nor `default_alias` is set (Go's message).
    #[error("must provide a default alias for the key DB")]
    MissingDefaultAlias,
    /// The passphrase of the default alias is not in the environment.
    #[error(
        "no passphrase for the default alias {alias:?}: set the environment variable {env_var}"
    )]
    MissingPassphrase {
        /// The alias.
        alias: String,
        /// The variable to set.
        env_var: String,
    },
    /// The key store failed (e.g. the database is unreachable).
    #[error("{0}")]
    Store(#[from] KeyStoreError),
    /// The listen address could not be bound.
    #[error("cannot listen on server.grpc_addr {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Logging could not be set up.
    #[error(transparent)]
    Logging(#[from] notary_common::logging::LoggingError),
    /// The server stopped with an error.
    #[error("gRPC server failed: {0}")]
    Serve(String),
}
