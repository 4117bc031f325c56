//! Hook for token authentication (spec §9); not implemented yet.
//!
//! The dispatcher asks the configured [`Authorizer`] (if any) before running a
//! handler, with the accesses the route requires (from the route table). With no
//! authorizer every request is allowed, which is Go's behaviour when `auth.type`
//! is not `token`.

use actix_web::HttpRequest;

use crate::http::error::ApiError;
use crate::http::routes::{Access, Route};

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
