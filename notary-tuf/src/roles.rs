//! Role names: the four base roles and delegations (spec signer-and-tuf §9, server.md §2.2).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `root`.
pub const ROOT: &str = "root";
/// `targets`.
pub const TARGETS: &str = "targets";
/// `snapshot`.
pub const SNAPSHOT: &str = "snapshot";
/// `timestamp`.
pub const TIMESTAMP: &str = "timestamp";
/// The base roles in Go's order.
pub const BASE_ROLES: [&str; 4] = [ROOT, TARGETS, SNAPSHOT, TIMESTAMP];

/// A role name that is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid role name: {0}")]
pub struct InvalidRoleName(pub String);

/// True for `root`, `targets`, `snapshot`, `timestamp`.
pub fn is_base_role(name: &str) -> bool {
    BASE_ROLES.contains(&name)
}

/// Go `data.IsDelegation`: starts with `targets/`, only `[-a-z0-9_/]`, shorter than 256
/// bytes, and path-clean (no empty segment, no trailing slash; `.`/`..` cannot occur
/// because `.` is not an allowed character).
pub fn is_delegation(name: &str) -> bool {
    name.starts_with("targets/")
        && name.len() < 256
        && name
            .bytes()
            .all(|b| matches!(b, b'-' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'/'))
        && !name.ends_with('/')
        && !name.contains("//")
}

/// Go `data.ValidRole`: a base role or a valid delegation name.
pub fn is_valid_role(name: &str) -> bool {
    is_base_role(name) || is_delegation(name)
}

/// Go `path.Dir` for role names: everything before the last `/`, or `.` if there is none.
pub fn path_dir(name: &str) -> &str {
    match name.rfind('/') {
        Some(0) => "/",
        Some(i) => name[..i].trim_end_matches('/'),
        None => ".",
    }
}

/// A validated role name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleName(String);

impl RoleName {
    /// Validates a role name (base role or delegation).
    pub fn new(name: impl Into<String>) -> Result<RoleName, InvalidRoleName> {
        let name = name.into();
        if is_valid_role(&name) {
            Ok(RoleName(name))
        } else {
            Err(InvalidRoleName(name))
        }
    }

    /// `root`.
    pub fn root() -> RoleName {
        RoleName(ROOT.into())
    }
    /// `targets`.
    pub fn targets() -> RoleName {
        RoleName(TARGETS.into())
    }
    /// `snapshot`.
    pub fn snapshot() -> RoleName {
        RoleName(SNAPSHOT.into())
    }
    /// `timestamp`.
    pub fn timestamp() -> RoleName {
        RoleName(TIMESTAMP.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for a delegation (`targets/...`).
    pub fn is_delegation(&self) -> bool {
        is_delegation(&self.0)
    }

    /// True for one of the four base roles.
    pub fn is_base_role(&self) -> bool {
        is_base_role(&self.0)
    }

    /// The parent of a delegation (`targets/a/b` → `targets/a`, `targets/a` → `targets`);
    /// `None` for base roles.
    pub fn parent(&self) -> Option<RoleName> {
        if self.is_delegation() {
            Some(RoleName(path_dir(&self.0).to_string()))
        } else {
            None
        }
    }

    /// Ancestors from `targets` down to the parent (empty for base roles).
    pub fn ancestors(&self) -> Vec<RoleName> {
        let mut out = Vec::new();
        let mut cur = self.parent();
        while let Some(p) = cur {
            cur = p.parent();
            out.push(p);
        }
        out.reverse();
        out
    }

    /// Number of `/`-separated segments.
    pub fn segments(&self) -> usize {
        self.0.split('/').count()
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RoleName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for RoleName {
    type Err = InvalidRoleName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RoleName::new(s)
    }
}

impl Serialize for RoleName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RoleName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RoleName::new(s).map_err(serde::de::Error::custom)
    }
}

/// Go `utils.RoleList` order: fewer segments first, then byte order. The server validates
/// uploaded targets roles in this order so parents come before children.
pub fn sort_roles<T: AsRef<str>>(roles: &mut [T]) {
    roles.sort_by(|a, b| {
        let (a, b) = (a.as_ref(), b.as_ref());
        a.split('/')
            .count()
            .cmp(&b.split('/').count())
            .then_with(|| a.as_bytes().cmp(b.as_bytes()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_roles_are_valid() {
        for r in BASE_ROLES {
            let n = RoleName::new(r).unwrap();
            assert!(n.is_base_role());
            assert!(!n.is_delegation());
            assert_eq!(n.parent(), None);
        }
        assert_eq!(RoleName::root().as_str(), "root");
        assert_eq!(RoleName::timestamp().to_string(), "timestamp");
    }

    #[test]
    fn delegation_name_rules() {
        for ok in [
            "targets/a",
            "targets/releases",
            "targets/a-b_c/0/d",
            "targets/-",
        ] {
            assert!(is_delegation(ok), "{ok}");
            assert!(RoleName::new(ok).is_ok());
        }
        let long_ok = format!("targets/{}", "a".repeat(247));
        assert_eq!(long_ok.len(), 255);
        assert!(is_delegation(&long_ok));
        let too_long = format!("targets/{}", "a".repeat(248));
        assert!(!is_delegation(&too_long));
        for bad in [
            "targets",
            "targets/",
            "targets/A",
            "targets/a/",
            "targets//a",
            "targets/a b",
            "targets/./a",
            "targets/../a",
            "targets/é",
            "foo/a",
            "Targets/a",
            "root/a",
            "",
            "targets/a.json",
        ] {
            assert!(!is_delegation(bad), "{bad}");
        }
        assert!(RoleName::new("foo").is_err());
        assert!(RoleName::new("Root").is_err());
        assert_eq!(
            RoleName::new("targets/A").unwrap_err().to_string(),
            "invalid role name: targets/A"
        );
    }

    #[test]
    fn parents_and_ancestors() {
        let r = RoleName::new("targets/a/b").unwrap();
        assert_eq!(r.parent().unwrap().as_str(), "targets/a");
        assert_eq!(r.parent().unwrap().parent().unwrap().as_str(), "targets");
        assert_eq!(
            r.ancestors().iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            vec!["targets", "targets/a"]
        );
        assert_eq!(r.segments(), 3);
        assert!(RoleName::targets().ancestors().is_empty());
        assert_eq!(path_dir("targets/x"), "targets");
        assert_eq!(path_dir("x"), ".");
    }

    #[test]
    fn role_list_order() {
        let mut v = vec![
            "targets/b/c",
            "targets/b",
            "targets",
            "targets/a",
            "targets/a/z/y",
        ];
        sort_roles(&mut v);
        assert_eq!(
            v,
            vec![
                "targets",
                "targets/a",
                "targets/b",
                "targets/b/c",
                "targets/a/z/y"
            ]
        );
    }

    #[test]
    fn serde_validates() {
        let r: RoleName = serde_json::from_str("\"targets/x\"").unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"targets/x\"");
        assert!(serde_json::from_str::<RoleName>("\"bogus\"").is_err());
    }
}
