//! Token authentication (spec §9): Docker registry bearer tokens.
//!
//! The dispatcher asks the configured [`Authorizer`] (if any) before running a handler,
//! after the GUN prefix filter, with the accesses the route requires (from the route
//! table). With no authorizer every request is allowed, which is Go's behaviour when
//! `auth.type` is not `token`.
//!
//! [`TokenAuth`] is Go's `token` access controller: it reads `Authorization: Bearer <jwt>`,
//! verifies the token with [`TokenVerifier`] and checks that its `access` claims grant every
//! required access. On failure it answers `401 UNAUTHORIZED` (detail: the required accesses
//! as Go serialises them) with a challenge
//! `Bearer realm="..",service="..",scope="<type>:<name>:<actions>"` plus
//! `,error="invalid_token"` for a malformed or unverifiable token, or
//! `,error="insufficient_scope"` for a good token lacking access; without a bearer token
//! (no header, or another scheme such as Basic) there is no `error` parameter.

use std::path::Path;
use std::time::SystemTime;

use actix_web::http::header;
use actix_web::{HttpMessage as _, HttpRequest};
use serde::Serialize;

use crate::http::error::ApiError;
use crate::http::routes::{Access, Route};
use crate::http::token::TokenVerifier;

/// One required access, Go's `auth.Access`: `repository:<gun>:<action>` or
/// `registry:catalog:*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    /// `repository` or `registry`.
    pub resource_type: String,
    /// The GUN, or `catalog`.
    pub name: String,
    /// `pull`, `push` or `*`.
    pub action: String,
}

/// Decides whether a request may proceed.
pub trait Authorizer: Send + Sync {
    /// `Ok` when the request grants every access in `required`; otherwise the
    /// error to answer (normally [`ApiError::Unauthorized`] with a challenge).
    fn authorize(&self, req: &HttpRequest, required: &[AccessRequest]) -> Result<(), ApiError>;
}

/// The accesses a matched route requires; empty for public routes.
pub fn required_access(route: &Route) -> Vec<AccessRequest> {
    match route.spec.access {
        Access::Public => Vec::new(),
        Access::Catalog => vec![AccessRequest {
            resource_type: "registry".into(),
            name: "catalog".into(),
            action: "*".into(),
        }],
        Access::Repo(actions) => {
            let gun = route.params.gun.clone().unwrap_or_default();
            actions
                .iter()
                .map(|action| AccessRequest {
                    resource_type: "repository".into(),
                    name: gun.clone(),
                    action: (*action).into(),
                })
                .collect()
        }
    }
}

/// The account (`sub` claim) of an accepted token, stored in the request's extensions
/// for the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedAccount(pub String);

/// `auth.options` of `auth.type = "token"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAuthOptions {
    /// Token endpoint URL for the challenge.
    pub realm: String,
    /// Expected `aud`; also the challenge's `service`.
    pub service: String,
    /// Expected `iss`.
    pub issuer: String,
    /// PEM bundle of certificates that token signing chains must lead to.
    pub root_cert_bundle: std::path::PathBuf,
    /// Use `https://<request Host>/auth/token` as the realm.
    pub autoredirect: bool,
}

/// Go's `token` access controller.
#[derive(Debug, Clone)]
pub struct TokenAuth {
    realm: String,
    service: String,
    autoredirect: bool,
    verifier: TokenVerifier,
}

/// Why the challenge is sent: the `error` parameter it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// No bearer token: no `error` parameter.
    TokenRequired,
    /// `invalid_token`.
    InvalidToken,
    /// `insufficient_scope`.
    InsufficientScope,
}

impl TokenAuth {
    /// Builds the controller, reading the bundle file. The error names the setting.
    pub fn from_options(options: &TokenAuthOptions) -> Result<TokenAuth, String> {
        let bundle = read_bundle(&options.root_cert_bundle)?;
        let verifier =
            TokenVerifier::new(&options.issuer, &options.service, &bundle).map_err(|e| {
                format!(
                    "auth.options.rootcertbundle {}: {e}",
                    options.root_cert_bundle.display()
                )
            })?;
        Ok(TokenAuth {
            realm: options.realm.clone(),
            service: options.service.clone(),
            autoredirect: options.autoredirect,
            verifier,
        })
    }

    /// A controller from parts (tests build the verifier from an in-memory bundle).
    pub fn new(realm: &str, service: &str, autoredirect: bool, verifier: TokenVerifier) -> Self {
        TokenAuth {
            realm: realm.to_owned(),
            service: service.to_owned(),
            autoredirect,
            verifier,
        }
    }

    /// Checks the request's token at time `now`; on success returns the token's account.
    pub fn check(
        &self,
        req: &HttpRequest,
        required: &[AccessRequest],
        now: SystemTime,
    ) -> Result<String, ApiError> {
        let deny = |failure| ApiError::Unauthorized {
            challenge: self.challenge(req, required, failure),
            detail: access_detail(required),
        };
        // Go: split the header on single spaces into exactly two parts, `bearer` in any case.
        let value = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let parts: Vec<&str> = value.split(' ').collect();
        let [scheme, raw] = parts[..] else {
            return Err(deny(Failure::TokenRequired));
        };
        if scheme.to_lowercase() != "bearer" {
            return Err(deny(Failure::TokenRequired));
        }
        let claims = self.verifier.verify(raw, now).map_err(|e| {
            tracing::info!(error = %e, "token refused");
            deny(Failure::InvalidToken)
        })?;
        if let Some(missing) = required
            .iter()
            .find(|a| !claims.grants(&a.resource_type, &a.name, &a.action))
        {
            tracing::info!(
                account = %claims.subject,
                missing = %format!("{}:{}:{}", missing.resource_type, missing.name, missing.action),
                "token lacks a required access"
            );
            return Err(deny(Failure::InsufficientScope));
        }
        Ok(claims.subject)
    }

    /// The `Www-Authenticate` value (Go's `challengeParams`).
    fn challenge(&self, req: &HttpRequest, required: &[AccessRequest], failure: Failure) -> String {
        let realm = if self.autoredirect {
            let host = req
                .headers()
                .get(header::HOST)
                .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
                .or_else(|| req.uri().authority().map(|a| a.to_string()))
                .unwrap_or_default();
            format!("https://{host}/auth/token")
        } else {
            self.realm.clone()
        };
        let mut out = format!(
            "Bearer realm={},service={}",
            go_quote(&realm),
            go_quote(&self.service)
        );
        let scope = scope_param(required);
        if !scope.is_empty() {
            out.push_str(",scope=");
            out.push_str(&go_quote(&scope));
        }
        match failure {
            Failure::TokenRequired => {}
            Failure::InvalidToken => out.push_str(",error=\"invalid_token\""),
            Failure::InsufficientScope => out.push_str(",error=\"insufficient_scope\""),
        }
        out
    }
}

impl Authorizer for TokenAuth {
    fn authorize(&self, req: &HttpRequest, required: &[AccessRequest]) -> Result<(), ApiError> {
        let account = self.check(req, required, SystemTime::now())?;
        req.extensions_mut().insert(AuthenticatedAccount(account));
        Ok(())
    }
}

fn read_bundle(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        format!(
            "auth.options.rootcertbundle: unable to open token auth root certificate bundle file {}: {e}",
            path.display()
        )
    })
}

/// Go's `accessSet.scopeParam`: one `type:name:a1,a2` per resource, space-separated.
/// Actions keep the route table's order (Go's map order varies between runs).
pub fn scope_param(required: &[AccessRequest]) -> String {
    let mut resources: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for a in required {
        match resources
            .iter_mut()
            .find(|(t, n, _)| *t == a.resource_type && *n == a.name)
        {
            Some((_, _, actions)) => {
                if !actions.contains(&a.action.as_str()) {
                    actions.push(&a.action);
                }
            }
            None => resources.push((&a.resource_type, &a.name, vec![&a.action])),
        }
    }
    resources
        .iter()
        .map(|(t, n, actions)| format!("{t}:{n}:{}", actions.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The 401 detail: the required accesses as Go's JSON encoder writes `[]auth.Access`.
pub fn access_detail(required: &[AccessRequest]) -> serde_json::Value {
    #[derive(Serialize)]
    struct GoAccess<'a> {
        #[serde(rename = "Type")]
        resource_type: &'a str,
        #[serde(rename = "Class")]
        class: &'a str,
        #[serde(rename = "Name")]
        name: &'a str,
        #[serde(rename = "Action")]
        action: &'a str,
    }
    let list: Vec<GoAccess<'_>> = required
        .iter()
        .map(|a| GoAccess {
            resource_type: &a.resource_type,
            class: "",
            name: &a.name,
            action: &a.action,
        })
        .collect();
    serde_json::to_value(list).unwrap_or_default()
}

/// Go's `%q` for the challenge parameters: `"` and `\` escaped, control characters as
/// Go writes them, printable text (including non-ASCII) unchanged.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(t: &str, n: &str, a: &str) -> AccessRequest {
        AccessRequest {
            resource_type: t.into(),
            name: n.into(),
            action: a.into(),
        }
    }

    #[test]
    fn scope_groups_actions_per_resource() {
        assert_eq!(
            scope_param(&[
                access("repository", "a/b", "push"),
                access("repository", "a/b", "pull")
            ]),
            "repository:a/b:push,pull"
        );
        assert_eq!(
            scope_param(&[access("registry", "catalog", "*")]),
            "registry:catalog:*"
        );
        assert_eq!(
            scope_param(&[
                access("repository", "a", "pull"),
                access("repository", "b", "pull"),
                access("repository", "a", "pull"),
            ]),
            "repository:a:pull repository:b:pull"
        );
        assert_eq!(scope_param(&[]), "");
    }

    #[test]
    fn detail_lists_accesses_like_go() {
        let d = access_detail(&[
            access("repository", "a/b", "push"),
            access("repository", "a/b", "pull"),
        ]);
        assert_eq!(
            d.to_string(),
            r#"[{"Type":"repository","Class":"","Name":"a/b","Action":"push"},{"Type":"repository","Class":"","Name":"a/b","Action":"pull"}]"#
        );
    }

    #[test]
    fn quoting_follows_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("x\ny\x01"), r#""x\ny\x01""#);
        assert_eq!(go_quote("é"), "\"é\"");
    }
}
