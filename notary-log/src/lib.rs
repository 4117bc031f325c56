//! Client side of the server's transparency log (`/_notary_server/log/`): checks that the
//! metadata a server serves is in the log, that the log only ever grows, and that every file it
//! records is still served as recorded. The `notary-log` binary is a thin shell over this.
//!
//! Nothing here trusts the server: every checkpoint is opened with a verifier key the user pins
//! (never the server's `/key` answer), and every proof is checked against such a checkpoint.
//!
//! - [`source`], the [`LogSource`] trait the log is read through, and the wire formats;
//! - [`http`], the HTTPS implementation;
//! - [`inclusion`], `verify-inclusion`;
//! - [`consistency`], `verify-consistency`;
//! - [`mod@monitor`], `monitor`.

pub mod consistency;
pub mod http;
pub mod inclusion;
pub mod monitor;
pub mod source;

pub use consistency::{verify_consistency, ConsistencyError, Verified};
pub use inclusion::{verify_gun, verify_role, InclusionOptions, RoleOutcome};
pub use monitor::{monitor, EntryProblem, MonitorError, MonitorOptions, MonitorReport};
pub use source::{FetchError, LeafQuery, LogSource};

use notary_tlog::NoteKey;

/// The pinned verifier key from a command-line value: a file holding the vkey (first non-empty
/// line), or the vkey itself.
pub fn parse_key_arg(arg: &str) -> Result<NoteKey, String> {
    let path = std::path::Path::new(arg);
    let text = if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read key file {arg}: {e}"))?;
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .ok_or_else(|| format!("key file {arg} is empty"))?
            .to_owned()
    } else {
        arg.trim().to_owned()
    };
    NoteKey::from_vkey(&text).map_err(|e| {
        if path.is_file() {
            format!("key file {arg} does not hold a verifier key: {e}")
        } else {
            format!("{arg:?} is neither a file nor a verifier key: {e}")
        }
    })
}
