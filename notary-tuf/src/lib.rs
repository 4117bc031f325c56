//! Notary v1 TUF core.
