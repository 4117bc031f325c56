//! The TUF core of our Notary v1 reimplementation: canonical JSON, keys and key IDs, the
//! signed-metadata model, signature and role verification, and the [`CryptoService`]
//! abstraction the server signs through. Pure library: no I/O, no network, no database, and
//! no wall clock (every time-dependent check takes `now`).
//!
//! Modules:
//! - [`canonical`]: canonical JSON byte-identical to Go's `docker/go/canonical/json`, plus
//!   the HTML-escaping step Go applies when it writes a file envelope;
//! - [`keys`]: key types, public keys and key IDs, ECDSA P-256 / Ed25519 private keys with
//!   the Go signer's private-key bytes, signature methods;
//! - [`crypto`]: the [`CryptoService`] trait and [`MemoryCryptoService`];
//! - [`metadata`]: [`SignedFile`] (exact bytes + generic + typed views), `Root`, `Targets`,
//!   `Snapshot`, `Timestamp`, [`FileMeta`], hash rules, envelope builders and
//!   [`metadata::sign_with_service`];
//! - [`verify`]: signature verification, root certificate rules, and [`verify::RepoBuilder`],
//!   which loads a repository's files with the same checks as Go's `tuf.RepoBuilder`;
//!   [`verify::next_snapshot`] / [`verify::next_timestamp`] for server-generated files;
//! - [`roles`]: [`RoleName`] and the delegation name rules;
//! - [`certs`]: PEM bundles and the X.509 checks Notary applies;
//! - [`error`]: [`TufError`] (Go's messages) and [`ValidationError`] (the server's
//!   `INVALID_UPDATE` kinds);
//! - `test_support` (feature `test-support`): a repository builder, certificate helpers and
//!   a swizzler for negative tests.
//!
//! # Why our own model instead of the `tough` crate
//!
//! `tough` failed on every metadata file the Go Notary produces, because Notary's format is
//! not the TUF reference format it implements: Notary encodes public keys, signatures and
//! hashes in base64 where tough expects hex; the `ecdsa-x509` and `rsa-x509` key types
//! (PEM certificates in `keyval.public`) are unknown to it; it requires fields Notary never
//! writes (`scheme` on keys, `spec_version` on every role, `version` in meta entries); and
//! it computes key IDs and handles `_type` differently, so signatures would not match.
//! Notary-specific rules (root keys must be certificates whose CN is the GUN, delegation
//! names under `targets/`, the server's snapshot/timestamp generation) would have to be
//! layered on top anyway. So this crate models Notary's format directly, in [`metadata`].
//!
//! # Why not `olpc-cjson`
//!
//! Go Notary signs `docker/go/canonical/json` output, which is not OLPC canonical JSON.
//! `olpc-cjson` sorts object keys by their escaped, quoted form and normalises Unicode, while
//! Go sorts by raw UTF-8 bytes, escapes only `"` and `\`, and writes everything else raw.
//! Metadata with target names such as `a b` next to `a`, or non-ASCII names, then fails to
//! verify. [`canonical`] follows Go's rules and is tested against Go-made vectors and files.
//!
//! # Bytes are never re-serialized
//!
//! Uploaded files are stored, served and hashed as received ([`SignedFile::raw`]).
//! Signatures are checked over the canonical form of the generic decode of `signed`, not over
//! re-serialized typed structs (which would lose unknown fields and `null` versus `[]`).
//! Files the server generates are built as `serde_json::Value`s, canonicalized, signed, and
//! wrapped with [`metadata::envelope_bytes`], which reproduces Go's layout byte for byte.
//!
//! # Testing
//!
//! `cargo test -p notary-tuf` runs unit tests plus integration tests in `tests/`:
//! `go_fixtures.rs` checks every file in `tests/data/go-notary` (made by the real Go
//! tools with `make-fixtures.sh`, see the README there) for byte-exact canonical form and
//! envelope layout, signatures (ecdsa, rsapss, eddsa), root rotation, hashes and key IDs;
//! `signatures.rs`, `repo_rules.rs` and `metadata_parse.rs` hold a passing and a failing
//! case for each verification rule. RSA, SHA-1 and P-384 material the Rust crates cannot
//! produce comes from `tests/data/keys/make-keys.sh` (openssl).

pub mod bounded;
pub mod canonical;
pub mod certs;
pub mod crypto;
pub mod error;
pub mod keys;
pub mod metadata;
pub mod roles;
pub mod verify;

#[cfg(feature = "test-support")]
pub mod test_support;

pub use crypto::{CryptoError, CryptoService, HeldKey, MemoryCryptoService};
pub use error::{TufError, ValidationError};
pub use keys::{KeyError, KeyType, PrivateKey, PublicKey, SignatureMethod};
pub use metadata::{FileMeta, SignedFile};
pub use roles::RoleName;
