//! The audit trail: who changed what, from where, when.
//!
//! Every state change writes one row per affected file or key into our `audit_log` table, in
//! the same database transaction as the change itself (see [`crate::storage::SqlStore`]): an
//! accepted update (each role, version and sha256), a GUN deletion (public API or admin), a
//! server-held key made or rotated, a server re-sign of timestamp or snapshot, and the admin
//! actions (delete, prune). Go notary records none of this and ignores the table.
//!
//! The actor is the token subject with token auth, the client certificate's subject on the
//! admin listener, `server` for what the server does by itself, and `anonymous` otherwise.
//! The peer address is the TCP peer, or the client `X-Forwarded-For` names when that peer is
//! one of the configured trusted proxies.

use std::net::IpAddr;

use actix_web::{HttpMessage as _, HttpRequest};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// How the actor was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// The subject of a verified bearer token.
    Token,
    /// The subject of a verified client certificate (admin listener).
    ClientCertificate,
    /// No credential (a server without auth).
    Anonymous,
    /// The server itself (re-signs, scheduled prunes).
    Server,
    /// An operator at the `notary-server admin` command (the OS user name).
    Operator,
}

impl ActorKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Token => "token",
            ActorKind::ClientCertificate => "client-certificate",
            ActorKind::Anonymous => "anonymous",
            ActorKind::Server => "server",
            ActorKind::Operator => "operator",
        }
    }
}

/// Who acted, from where, in which request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Token or certificate subject, `anonymous`, or `server`.
    pub name: String,
    /// How `name` was established.
    pub kind: ActorKind,
    /// Client address.
    pub peer: Option<String>,
    /// The request's ID (`X-Request-Id`).
    pub request_id: Option<String>,
}

impl Actor {
    /// The server acting on its own (no request).
    pub fn server() -> Actor {
        Actor {
            name: "server".into(),
            kind: ActorKind::Server,
            peer: None,
            request_id: None,
        }
    }

    /// The operator running `notary-server admin` (`$SUDO_USER`, else `$USER`).
    pub fn operator() -> Actor {
        let user = ["SUDO_USER", "USER", "LOGNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "unknown".into());
        Actor {
            name: user,
            kind: ActorKind::Operator,
            peer: None,
            request_id: None,
        }
    }

    /// The server acting while serving `self`'s request (a re-sign on read).
    pub fn server_for(&self) -> Actor {
        Actor {
            name: "server".into(),
            kind: ActorKind::Server,
            peer: self.peer.clone(),
            request_id: self.request_id.clone(),
        }
    }

    /// The actor of a public API request: the token subject if token auth verified one,
    /// else `anonymous`.
    pub fn of_request(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> Actor {
        let ext = req.extensions();
        let account = ext
            .get::<crate::http::auth::AuthenticatedAccount>()
            .map(|a| a.0.clone())
            .filter(|a| !a.is_empty());
        let request_id = ext.get::<RequestId>().map(|r| r.0.clone());
        drop(ext);
        let (name, kind) = match account {
            Some(subject) => (subject, ActorKind::Token),
            None => ("anonymous".to_owned(), ActorKind::Anonymous),
        };
        Actor {
            name,
            kind,
            peer: peer_address(req, trusted_proxies),
            request_id,
        }
    }
}

/// The request ID, put in the request's extensions by the dispatcher.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The client address: the TCP peer, unless that peer is a trusted proxy; then the last
/// `X-Forwarded-For` entry that is not itself a trusted proxy (entries before it were
/// written by the client and prove nothing).
pub fn peer_address(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> Option<String> {
    let peer = req.peer_addr()?.ip();
    if !trusted_proxies.contains(&peer) {
        return Some(peer.to_string());
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    let client = forwarded
        .iter()
        .rev()
        .find(|a| !trusted_proxies.contains(a))
        .copied()
        .unwrap_or(peer);
    Some(client.to_string())
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// An accepted update (one row per file).
    Update,
    /// `DELETE /v2/<gun>/_trust/tuf/` (Go's public delete).
    Delete,
    /// A server-held key made for a GUN and role (`GET {role}.key`).
    KeyCreate,
    /// A server-held key rotated (`POST {role}.key`).
    KeyRotate,
    /// A server-held key deleted in the signer (with its GUN).
    KeyDelete,
    /// The server re-signed its timestamp or snapshot.
    Resign,
    /// `DELETE /_notary_server/admin/gun/<gun>` or `notary-server admin delete-gun`.
    AdminDelete,
    /// Retention pruned superseded versions of a GUN.
    Prune,
}

impl Action {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Update => "update",
            Action::Delete => "delete",
            Action::KeyCreate => "key-create",
            Action::KeyRotate => "key-rotate",
            Action::KeyDelete => "key-delete",
            Action::Resign => "server-resign",
            Action::AdminDelete => "admin-delete",
            Action::Prune => "prune",
        }
    }
}

/// An audit record about to be written: the action, who did it, and any detail (JSON).
#[derive(Debug, Clone)]
pub struct Audit {
    /// What changed.
    pub action: Action,
    /// Who.
    pub actor: Actor,
    /// Extra facts (rows removed, key IDs), stored as JSON text.
    pub detail: Option<serde_json::Value>,
}

impl Audit {
    /// A record without detail.
    pub fn new(action: Action, actor: &Actor) -> Audit {
        Audit {
            action,
            actor: actor.clone(),
            detail: None,
        }
    }

    /// With this detail.
    pub fn with_detail(mut self, detail: serde_json::Value) -> Audit {
        self.detail = Some(detail);
        self
    }
}

/// One stored audit row, as the admin API and the export show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Row id: increasing, the paging cursor.
    pub id: i64,
    /// When (UTC, RFC 3339).
    pub at: DateTime<Utc>,
    /// [`Action::as_str`].
    pub action: String,
    /// The GUN.
    pub gun: String,
    /// The role, for file and key actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The version, for file actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// The file's SHA-256 (hex), for file actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// [`Actor::name`].
    pub actor: String,
    /// [`ActorKind::as_str`].
    pub actor_kind: String,
    /// [`Actor::peer`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// [`Actor::request_id`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// [`Audit::detail`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// A filter over the audit trail; all conditions must hold. Pages go by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Exactly this GUN.
    pub gun: Option<String>,
    /// Exactly this actor name.
    pub actor: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
    /// Only ids above this (the previous page's `next`).
    pub after_id: i64,
    /// Page size.
    pub limit: i64,
}

/// Most rows in one page.
pub const MAX_PAGE: i64 = 1000;

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn req(peer: &str, forwarded: Option<&str>) -> HttpRequest {
        let mut r = TestRequest::default().peer_addr(peer.parse().unwrap());
        if let Some(f) = forwarded {
            r = r.insert_header(("x-forwarded-for", f));
        }
        r.to_http_request()
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        // Not a trusted proxy: the header is the client's word and ignored.
        let direct = req("198.51.100.9:5000", Some("203.0.113.1"));
        assert_eq!(
            peer_address(&direct, &[proxy]).as_deref(),
            Some("198.51.100.9")
        );
        // Through the proxy: the last address it did not add itself.
        let proxied = req("10.0.0.2:5000", Some("192.0.2.66, 203.0.113.1, 10.0.0.2"));
        assert_eq!(
            peer_address(&proxied, &[proxy]).as_deref(),
            Some("203.0.113.1")
        );
        // The proxy sent no usable header: the proxy itself.
        let bare = req("10.0.0.2:5000", Some("not-an-address"));
        assert_eq!(peer_address(&bare, &[proxy]).as_deref(), Some("10.0.0.2"));
        // Without trusted proxies nothing is believed.
        assert_eq!(peer_address(&proxied, &[]).as_deref(), Some("10.0.0.2"));
    }

    #[test]
    fn request_actor_is_the_token_subject_or_anonymous() {
        use actix_web::HttpMessage as _;
        let r = req("192.0.2.1:1", None);
        r.extensions_mut().insert(RequestId("abc".into()));
        let anonymous = Actor::of_request(&r, &[]);
        assert_eq!(
            (
                anonymous.name.as_str(),
                anonymous.kind,
                anonymous.request_id.as_deref()
            ),
            ("anonymous", ActorKind::Anonymous, Some("abc"))
        );
        r.extensions_mut()
            .insert(crate::http::auth::AuthenticatedAccount("alice".into()));
        let alice = Actor::of_request(&r, &[]);
        assert_eq!(
            (alice.name.as_str(), alice.kind),
            ("alice", ActorKind::Token)
        );
        assert_eq!(alice.server_for().request_id.as_deref(), Some("abc"));
        assert_eq!(alice.server_for().kind, ActorKind::Server);
    }
}
