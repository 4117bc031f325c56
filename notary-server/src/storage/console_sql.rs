//! The operator console's GUN list (see `crate::admin::console`): one page of GUNs in name
//! order, each with its soonest expiry from the expiry inventory.
//!
//! Both queries are index walks whose cost does not grow with the number of GUNs:
//! - the names come from Go's `tuf_files` unique key (gun, role, version): `gun > after`,
//!   `DISTINCT`, `ORDER BY gun`, `LIMIT`; a prefix search narrows the walk to a range;
//! - the expiries of those names come from `expiry_inventory`'s unique key (gun, role, kind).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::expiry_sql::starts_with;
use super::schema::{expiry_inventory, tuf_files};
use super::sql::{map_error, AnyConnection, SqlStore};
use super::StoreError;
use crate::expiry::Kind;

/// The earliest expiry recorded for a GUN, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soonest {
    /// When.
    pub expires: DateTime<Utc>,
    /// Whose.
    pub role: String,
    /// Metadata or certificate.
    pub kind: Kind,
}

/// One row of the console's GUN list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GunSummary {
    /// The GUN, as stored.
    pub gun: String,
    /// Its soonest expiry; `None` when the inventory has nothing for it (a Go-written
    /// database before `expiry-backfill`, or metadata without `expires`).
    pub soonest: Option<Soonest>,
}

/// The smallest string greater than every string starting with `prefix`, in code point
/// order (which is UTF-8 byte order); `None` when there is none (all `char::MAX`).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl SqlStore {
    /// Up to `limit` GUNs after `after` in name order (the database's order: bytes on SQLite,
    /// Go's case-insensitive collation on MySQL, the column's collation on PostgreSQL), only
    /// those starting with `prefix` when it is not empty, each with its soonest expiry.
    pub async fn console_guns(
        &self,
        after: &str,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<GunSummary>, StoreError> {
        let (after, prefix) = (after.to_owned(), prefix.to_owned());
        self.run(move |conn| {
            let q = tuf_files::table
                .select(tuf_files::gun)
                .distinct()
                .into_boxed();
            let q = match conn {
                // BINARY collation: the byte range [prefix, prefix_end) is exactly the names
                // with the prefix (SQLite's LIKE is case-insensitive and would scan). SQLite
                // seeks on one lower bound only, so `after` and the prefix make one.
                AnyConnection::Sqlite(_) if !prefix.is_empty() => {
                    let q = if after.as_str() >= prefix.as_str() {
                        q.filter(tuf_files::gun.gt(after))
                    } else {
                        q.filter(tuf_files::gun.ge(prefix.clone()))
                    };
                    match prefix_end(&prefix) {
                        Some(end) => q.filter(tuf_files::gun.lt(end)),
                        None => q,
                    }
                }
                // MySQL turns a constant-prefix LIKE into an index range under the column's
                // own collation. PostgreSQL's collation may order by language rules, where a
                // byte range would miss names: LIKE is right under any.
                AnyConnection::Mysql(_) | AnyConnection::Pg(_) if !prefix.is_empty() => q
                    .filter(tuf_files::gun.gt(after))
                    .filter(tuf_files::gun.like(starts_with(&prefix)).escape('\\')),
                _ => q.filter(tuf_files::gun.gt(after)),
            };
            let guns: Vec<String> = q
                .order(tuf_files::gun.asc())
                .limit(limit)
                .load(conn)
                .map_err(map_error)?;
            if guns.is_empty() {
                return Ok(Vec::new());
            }
            let rows: Vec<(String, String, String, Option<NaiveDateTime>)> =
                expiry_inventory::table
                    .select((
                        expiry_inventory::gun,
                        expiry_inventory::role,
                        expiry_inventory::kind,
                        expiry_inventory::expires,
                    ))
                    .filter(expiry_inventory::gun.eq_any(&guns))
                    .filter(expiry_inventory::expires.is_not_null())
                    .load(conn)
                    .map_err(map_error)?;
            let mut soonest: HashMap<String, Soonest> = HashMap::new();
            for (gun, role, kind, expires) in rows {
                let Some(expires) = expires.map(|t| t.and_utc()) else {
                    continue;
                };
                let earlier = soonest.get(&gun).is_none_or(|s| expires < s.expires);
                if earlier {
                    let kind = Kind::parse(&kind);
                    soonest.insert(
                        gun,
                        Soonest {
                            expires,
                            role,
                            kind,
                        },
                    );
                }
            }
            Ok(guns
                .into_iter()
                .map(|gun| GunSummary {
                    soonest: soonest.remove(&gun),
                    gun,
                })
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_next_string_after_every_extension() {
        assert_eq!(prefix_end("docker.io/").as_deref(), Some("docker.io0"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end(""), None);
    }
}
