//! The route table of spec §2.1, in one place.
//!
//! [`ROUTES`] lists every endpoint in Go's registration order (first match wins)
//! with its method, path pattern, operation label (metrics), cache policy,
//! required token access and the error a GUN-prefix mismatch produces.
//! [`resolve`] matches a URL-decoded, clean path against it.
//!
//! actix path patterns cannot express "greedy GUN that may contain `/`, followed by
//! a role that may contain `/`", so matching is done here by pure functions that
//! mirror Go's regular expressions:
//! `{gun}` = `[^*]+` (greedy), `{role}` = `root|targets(?:/[^/\s]+)*|snapshot|timestamp`,
//! `{checksum}` = 64, 96 or 128 hex digits, `{version}` = `[0-9]+`.

/// The HTTP methods a route can be registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// GET
    Get,
    /// POST
    Post,
    /// DELETE
    Delete,
    /// The catch-all's set: GET, POST, PUT, HEAD, DELETE.
    CatchAll,
}

/// Path shapes used by the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// A literal path.
    Exact(&'static str),
    /// `/v2/{gun}/_trust/tuf/` followed by the given tail.
    Tuf(Tail),
    /// `/v2/{gun}/_trust/changefeed`
    GunChangefeed,
    /// Any path.
    Any,
}

/// What follows `/v2/{gun}/_trust/tuf/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Nothing (the collection itself).
    Collection,
    /// `{role}.{checksum}.json`
    ByChecksum,
    /// `{version}.{role}.json`
    ByVersion,
    /// `{role}.json`
    Current,
    /// `{snapshot|timestamp}.key`
    Key,
}

/// Which handler serves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /v2/`: `{}`.
    Ping,
    /// Atomic multipart update.
    Update,
    /// Metadata by checksum.
    GetByChecksum,
    /// Metadata by version.
    GetByVersion,
    /// Current metadata.
    GetCurrent,
    /// Get-or-create a server-held key.
    GetKey,
    /// Create a new server-held key.
    RotateKey,
    /// Delete a whole GUN.
    Delete,
    /// Changefeed (with or without GUN).
    Changefeed,
    /// Health report.
    Health,
    /// Prometheus exposition.
    Metrics,
    /// Catch-all: 404 `METADATA_NOT_FOUND`, no detail.
    NotFound,
}

/// Cache-header policy (spec §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// No cache headers.
    None,
    /// `caching.max_age.current_metadata`.
    Current,
    /// `caching.max_age.consistent_metadata`.
    Consistent,
}

/// Token access a route requires (spec §2.3), for the auth hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Never authenticated.
    Public,
    /// `registry:catalog:*`
    Catalog,
    /// `repository:{gun}:<actions>`
    Repo(&'static [&'static str]),
}

/// What a GUN outside `repositories.gun_prefixes` gets (spec §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnPrefixMismatch {
    /// The route has no GUN.
    NotApplicable,
    /// 404 `METADATA_NOT_FOUND` without detail.
    NotFound,
    /// 400 `INVALID_GUN` with the prefix list.
    InvalidGun,
}

/// One row of the route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// Method(s) the row answers.
    pub verb: Verb,
    /// Path pattern.
    pub pattern: Pattern,
    /// Handler.
    pub endpoint: Endpoint,
    /// Metrics `operation` label; `None` = not instrumented.
    pub operation: Option<&'static str>,
    /// Cache headers on 200.
    pub cache: CachePolicy,
    /// Required token access.
    pub access: Access,
    /// GUN prefix mismatch error.
    pub on_prefix_mismatch: OnPrefixMismatch,
}

const PULL: &[&str] = &["pull"];
const PUSH_PULL: &[&str] = &["push", "pull"];
const ADMIN: &[&str] = &["*"];

const fn row(
    verb: Verb,
    pattern: Pattern,
    endpoint: Endpoint,
    operation: Option<&'static str>,
    cache: CachePolicy,
    access: Access,
    on_prefix_mismatch: OnPrefixMismatch,
) -> RouteSpec {
    RouteSpec {
        verb,
        pattern,
        endpoint,
        operation,
        cache,
        access,
        on_prefix_mismatch,
    }
}

/// Every route of spec §2.1, in matching order (first match wins).
#[rustfmt::skip]
pub static ROUTES: [RouteSpec; 13] = {
    use self::Access::*;
    use self::CachePolicy as C;
    use self::Endpoint as E;
    use self::OnPrefixMismatch as P;
    use self::Pattern::*;
    use self::Verb::*;
    [
    /* 1 */ row(Get,      Exact("/v2/"),                   E::Ping,          None,                     C::None,       Catalog,         P::NotApplicable),
    /* 2 */ row(Post,     Tuf(Tail::Collection),           E::Update,        Some("UpdateTUF"),        C::None,       Repo(PUSH_PULL), P::InvalidGun),
    /* 3 */ row(Get,      Tuf(Tail::ByChecksum),           E::GetByChecksum, Some("GetRoleByHash"),    C::Consistent, Repo(PULL),      P::NotFound),
    /* 4 */ row(Get,      Tuf(Tail::ByVersion),            E::GetByVersion,  Some("GetRoleByVersion"), C::Consistent, Repo(PULL),      P::NotFound),
    /* 5 */ row(Get,      Tuf(Tail::Current),              E::GetCurrent,    Some("GetRole"),          C::Current,    Repo(PULL),      P::NotFound),
    /* 6 */ row(Get,      Tuf(Tail::Key),                  E::GetKey,        Some("GetKey"),           C::None,       Repo(PUSH_PULL), P::NotFound),
    /* 7 */ row(Post,     Tuf(Tail::Key),                  E::RotateKey,     Some("RotateKey"),        C::None,       Repo(ADMIN),     P::NotFound),
    /* 8 */ row(Delete,   Tuf(Tail::Collection),           E::Delete,        Some("DeleteTUF"),        C::None,       Repo(ADMIN),     P::NotFound),
    /* 9 */ row(Get,      GunChangefeed,                   E::Changefeed,    Some("Changefeed"),       C::None,       Repo(PULL),      P::NotFound),
    /*10 */ row(Get,      Exact("/v2/_trust/changefeed"),  E::Changefeed,    Some("Changefeed"),       C::None,       Catalog,         P::NotApplicable),
    /*11 */ row(Get,      Exact("/_notary_server/health"), E::Health,        None,                     C::None,       Public,          P::NotApplicable),
    /*12 */ row(Get,      Exact("/metrics"),               E::Metrics,       None,                     C::None,       Public,          P::NotApplicable),
    /*13 */ row(CatchAll, Any,                             E::NotFound,      None,                     C::None,       Catalog,         P::NotApplicable),
    ]
};

/// Values captured from the path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// `{gun}`
    pub gun: Option<String>,
    /// `{role}` (for key routes: `snapshot` or `timestamp`)
    pub role: Option<String>,
    /// `{checksum}` as written in the URL
    pub checksum: Option<String>,
    /// `{version}` as written in the URL (digits only)
    pub version: Option<String>,
}

/// A matched route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The table row.
    pub spec: &'static RouteSpec,
    /// Captured values.
    pub params: Params,
}

/// Outcome of routing one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A row matched.
    Matched(Route),
    /// The path is not clean: answer 301 with this (decoded) path.
    Redirect(String),
    /// A method outside GET, POST, PUT, HEAD, DELETE: 405 with an empty body.
    MethodNotAllowed,
}

/// Routes a request by method name and URL-decoded path.
pub fn resolve(method: &str, path: &str) -> Resolution {
    if !matches!(method, "GET" | "POST" | "PUT" | "HEAD" | "DELETE") {
        return Resolution::MethodNotAllowed;
    }
    let clean = clean_path(path);
    if clean != path {
        return Resolution::Redirect(clean);
    }
    for spec in ROUTES.iter() {
        let verb_ok = match spec.verb {
            Verb::Get => method == "GET",
            Verb::Post => method == "POST",
            Verb::Delete => method == "DELETE",
            Verb::CatchAll => true,
        };
        if !verb_ok {
            continue;
        }
        if let Some(params) = match_pattern(spec.pattern, path) {
            return Resolution::Matched(Route { spec, params });
        }
    }
    unreachable!("the catch-all row matches every path")
}

fn match_pattern(pattern: Pattern, path: &str) -> Option<Params> {
    match pattern {
        Pattern::Exact(p) => (p == path).then(Params::default),
        Pattern::Any => Some(Params::default()),
        Pattern::GunChangefeed => {
            let gun = path
                .strip_prefix("/v2/")?
                .strip_suffix("/_trust/changefeed")?;
            valid_gun(gun).then(|| Params {
                gun: Some(gun.to_owned()),
                ..Params::default()
            })
        }
        Pattern::Tuf(tail) => {
            const SEP: &str = "/_trust/tuf/";
            let after = path.strip_prefix("/v2/")?;
            // Greedy GUN: try the rightmost separator first, as a backtracking
            // regex would.
            let splits: Vec<usize> = after.match_indices(SEP).map(|(i, _)| i).collect();
            splits.into_iter().rev().find_map(|i| {
                let gun = &after[..i];
                if !valid_gun(gun) {
                    return None;
                }
                let mut params = match_tail(tail, &after[i + SEP.len()..])?;
                params.gun = Some(gun.to_owned());
                Some(params)
            })
        }
    }
}

fn match_tail(tail: Tail, rest: &str) -> Option<Params> {
    match tail {
        Tail::Collection => rest.is_empty().then(Params::default),
        Tail::Key => matches!(rest, "snapshot.key" | "timestamp.key").then(|| Params {
            role: rest.strip_suffix(".key").map(str::to_owned),
            ..Params::default()
        }),
        Tail::Current => {
            let role = rest.strip_suffix(".json")?;
            url_role(role).then(|| Params {
                role: Some(role.to_owned()),
                ..Params::default()
            })
        }
        Tail::ByChecksum => {
            let (role, checksum) = rest.strip_suffix(".json")?.rsplit_once('.')?;
            let checksum_ok = matches!(checksum.len(), 64 | 96 | 128)
                && checksum.bytes().all(|b| b.is_ascii_hexdigit());
            (checksum_ok && url_role(role)).then(|| Params {
                role: Some(role.to_owned()),
                checksum: Some(checksum.to_owned()),
                ..Params::default()
            })
        }
        Tail::ByVersion => {
            let (version, role) = rest.strip_suffix(".json")?.split_once('.')?;
            let version_ok = !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit());
            (version_ok && url_role(role)).then(|| Params {
                role: Some(role.to_owned()),
                version: Some(version.to_owned()),
                ..Params::default()
            })
        }
    }
}

/// `{gun}` = `[^*]+`.
fn valid_gun(gun: &str) -> bool {
    !gun.is_empty() && !gun.contains('*')
}

/// The URL role grammar: `root|targets(?:/[^/\s]+)*|snapshot|timestamp`, where `\s`
/// is Go's ASCII whitespace class `[\t\n\f\r ]`. Looser than valid role names.
pub fn url_role(role: &str) -> bool {
    match role {
        "root" | "targets" | "snapshot" | "timestamp" => true,
        _ => match role.strip_prefix("targets/") {
            Some(rest) => rest.split('/').all(|seg| {
                !seg.is_empty()
                    && !seg
                        .chars()
                        .any(|c| matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' '))
            }),
            None => false,
        },
    }
}

/// Go's router cleaning: `path.Clean`, keeping a trailing slash.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return "/".to_owned();
    }
    let rooted = if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("/{p}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for seg in rooted.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut cleaned = format!("/{}", parts.join("/"));
    if rooted.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn matched(method: &str, path: &str) -> Route {
        match resolve(method, path) {
            Resolution::Matched(route) => route,
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    fn endpoint(method: &str, path: &str) -> Endpoint {
        matched(method, path).spec.endpoint
    }

    #[test]
    fn ping_only_with_trailing_slash_and_get() {
        assert_eq!(endpoint("GET", "/v2/"), Endpoint::Ping);
        assert_eq!(endpoint("GET", "/v2"), Endpoint::NotFound);
        assert_eq!(endpoint("POST", "/v2/"), Endpoint::NotFound);
        assert_eq!(endpoint("HEAD", "/v2/"), Endpoint::NotFound);
    }

    #[test]
    fn collection_routes_need_trailing_slash() {
        let r = matched("POST", "/v2/docker.io/library/alpine/_trust/tuf/");
        assert_eq!(r.spec.endpoint, Endpoint::Update);
        assert_eq!(r.params.gun.as_deref(), Some("docker.io/library/alpine"));
        assert_eq!(endpoint("DELETE", "/v2/a/_trust/tuf/"), Endpoint::Delete);
        assert_eq!(endpoint("POST", "/v2/a/_trust/tuf"), Endpoint::NotFound);
        assert_eq!(endpoint("PUT", "/v2/a/_trust/tuf/"), Endpoint::NotFound);
    }

    #[test]
    fn gun_may_contain_colon_and_slashes_and_is_greedy() {
        let r = matched(
            "GET",
            "/v2/localhost:5000/a/_trust/tuf/b/_trust/tuf/root.json",
        );
        assert_eq!(
            r.params.gun.as_deref(),
            Some("localhost:5000/a/_trust/tuf/b")
        );
        assert_eq!(r.params.role.as_deref(), Some("root"));
    }

    #[test]
    fn greedy_gun_backtracks_when_tail_does_not_match() {
        // The rightmost separator leaves "x.json", not a role; the left one works.
        let r = matched("GET", "/v2/a/_trust/tuf/targets/_trust/tuf/x.json");
        assert_eq!(r.params.gun.as_deref(), Some("a"));
        assert_eq!(r.params.role.as_deref(), Some("targets/_trust/tuf/x"));
    }

    #[test]
    fn star_in_gun_falls_to_catch_all() {
        assert_eq!(
            endpoint("GET", "/v2/a*b/_trust/tuf/root.json"),
            Endpoint::NotFound
        );
    }

    #[test]
    fn current_roles() {
        for role in [
            "root",
            "targets",
            "snapshot",
            "timestamp",
            "targets/releases",
            "targets/a/b.c",
        ] {
            let r = matched("GET", &format!("/v2/g/_trust/tuf/{role}.json"));
            assert_eq!(r.spec.endpoint, Endpoint::GetCurrent, "{role}");
            assert_eq!(r.params.role.as_deref(), Some(role));
        }
        for role in ["foo", "targets/", "Root", "targets/a b", "targets/a\tb"] {
            assert_eq!(
                endpoint("GET", &format!("/v2/g/_trust/tuf/{role}.json")),
                Endpoint::NotFound,
                "{role}"
            );
        }
    }

    #[test]
    fn checksum_lengths() {
        let r = matched("GET", &format!("/v2/g/_trust/tuf/targets/x.{SHA}.json"));
        assert_eq!(r.spec.endpoint, Endpoint::GetByChecksum);
        assert_eq!(r.params.role.as_deref(), Some("targets/x"));
        assert_eq!(r.params.checksum.as_deref(), Some(SHA));
        let upper = SHA.to_uppercase();
        assert_eq!(
            endpoint("GET", &format!("/v2/g/_trust/tuf/root.{upper}.json")),
            Endpoint::GetByChecksum
        );
        for len in [96, 128] {
            let cs = "a".repeat(len);
            assert_eq!(
                endpoint("GET", &format!("/v2/g/_trust/tuf/root.{cs}.json")),
                Endpoint::GetByChecksum
            );
        }
        // 63 hex digits: not a checksum; "root.<63>" is not a role either.
        let short = &SHA[..63];
        assert_eq!(
            endpoint("GET", &format!("/v2/g/_trust/tuf/root.{short}.json")),
            Endpoint::NotFound
        );
        // ...but a delegation segment may contain dots, so it is a current lookup.
        let r = matched("GET", &format!("/v2/g/_trust/tuf/targets/x.{short}.json"));
        assert_eq!(r.spec.endpoint, Endpoint::GetCurrent);
    }

    #[test]
    fn versions() {
        for (v, role) in [("1", "root"), ("0", "snapshot"), ("007", "targets/a.b")] {
            let r = matched("GET", &format!("/v2/g/_trust/tuf/{v}.{role}.json"));
            assert_eq!(r.spec.endpoint, Endpoint::GetByVersion);
            assert_eq!(r.params.version.as_deref(), Some(v));
            assert_eq!(r.params.role.as_deref(), Some(role));
        }
        assert_eq!(
            endpoint("GET", "/v2/g/_trust/tuf/1a.root.json"),
            Endpoint::NotFound
        );
        assert_eq!(
            endpoint("GET", "/v2/g/_trust/tuf/-1.root.json"),
            Endpoint::NotFound
        );
    }

    #[test]
    fn keys() {
        let r = matched("GET", "/v2/g/_trust/tuf/timestamp.key");
        assert_eq!(r.spec.endpoint, Endpoint::GetKey);
        assert_eq!(r.params.role.as_deref(), Some("timestamp"));
        assert_eq!(
            endpoint("POST", "/v2/g/_trust/tuf/snapshot.key"),
            Endpoint::RotateKey
        );
        assert_eq!(
            endpoint("GET", "/v2/g/_trust/tuf/targets.key"),
            Endpoint::NotFound
        );
        assert_eq!(
            endpoint("GET", "/v2/g/_trust/tuf/root.key"),
            Endpoint::NotFound
        );
        assert_eq!(
            endpoint("DELETE", "/v2/g/_trust/tuf/snapshot.key"),
            Endpoint::NotFound
        );
    }

    #[test]
    fn changefeeds() {
        let r = matched("GET", "/v2/_trust/changefeed");
        assert_eq!(r.spec.endpoint, Endpoint::Changefeed);
        assert_eq!(r.params.gun, None);
        let r = matched("GET", "/v2/docker.io/a/_trust/changefeed");
        assert_eq!(r.spec.endpoint, Endpoint::Changefeed);
        assert_eq!(r.params.gun.as_deref(), Some("docker.io/a"));
        assert_eq!(
            endpoint("POST", "/v2/_trust/changefeed"),
            Endpoint::NotFound
        );
    }

    #[test]
    fn health_metrics_and_catch_all() {
        assert_eq!(endpoint("GET", "/_notary_server/health"), Endpoint::Health);
        assert_eq!(endpoint("GET", "/metrics"), Endpoint::Metrics);
        assert_eq!(
            endpoint("POST", "/_notary_server/health"),
            Endpoint::NotFound
        );
        assert_eq!(endpoint("GET", "/"), Endpoint::NotFound);
        assert_eq!(
            endpoint("HEAD", "/v2/g/_trust/tuf/root.json"),
            Endpoint::NotFound
        );
    }

    #[test]
    fn other_methods_are_405() {
        for m in ["PATCH", "OPTIONS", "TRACE", "CONNECT", "FOO"] {
            assert_eq!(resolve(m, "/v2/"), Resolution::MethodNotAllowed);
        }
    }

    #[test]
    fn unclean_paths_redirect_keeping_trailing_slash() {
        assert_eq!(
            resolve("GET", "/v2//a/_trust/tuf/"),
            Resolution::Redirect("/v2/a/_trust/tuf/".into())
        );
        assert_eq!(
            resolve("GET", "/v2/a/./b/../root.json"),
            Resolution::Redirect("/v2/a/root.json".into())
        );
        assert_eq!(resolve("GET", "/.."), Resolution::Redirect("/".into()));
        assert_eq!(clean_path(""), "/");
        assert_eq!(clean_path("/"), "/");
        assert_eq!(clean_path("/v2/"), "/v2/");
    }

    #[test]
    fn operation_labels_follow_the_spec() {
        let label = |m: &str, p: &str| matched(m, p).spec.operation;
        assert_eq!(label("POST", "/v2/g/_trust/tuf/"), Some("UpdateTUF"));
        assert_eq!(
            label("GET", &format!("/v2/g/_trust/tuf/root.{SHA}.json")),
            Some("GetRoleByHash")
        );
        assert_eq!(
            label("GET", "/v2/g/_trust/tuf/2.root.json"),
            Some("GetRoleByVersion")
        );
        assert_eq!(label("GET", "/v2/g/_trust/tuf/root.json"), Some("GetRole"));
        assert_eq!(
            label("GET", "/v2/g/_trust/tuf/snapshot.key"),
            Some("GetKey")
        );
        assert_eq!(
            label("POST", "/v2/g/_trust/tuf/snapshot.key"),
            Some("RotateKey")
        );
        assert_eq!(label("DELETE", "/v2/g/_trust/tuf/"), Some("DeleteTUF"));
        assert_eq!(label("GET", "/v2/g/_trust/changefeed"), Some("Changefeed"));
        assert_eq!(label("GET", "/v2/"), None);
    }
}
