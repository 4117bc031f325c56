//! Diesel view of the tables created by `migrations/server/{mysql,sqlite}`.
//!
//! Written to match the migrations rather than generated: the same
//! declarations serve both backends through `MultiBackend`, so only types
//! common to both are used (`Text` for VARCHAR/CHAR, `Binary` for LONGBLOB/BLOB,
//! `Integer` for INT). Keep in step with the SQL files.

diesel::table! {
    tuf_files (id) {
        id -> Integer,
        created_at -> Nullable<Timestamp>,
        updated_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
        gun -> Text,
        role -> Text,
        version -> Integer,
        data -> Binary,
        sha256 -> Nullable<Text>,
    }
}

diesel::table! {
    changefeed (id) {
        id -> Integer,
        created_at -> Nullable<Timestamp>,
        gun -> Text,
        version -> Integer,
        sha256 -> Nullable<Text>,
        category -> Text,
    }
}

// Ours, not Go's: which GUN and role the server asked the signer to make each key for.
diesel::table! {
    server_key_owners (key_id) {
        key_id -> Text,
        gun -> Text,
        role -> Text,
        created_at -> Nullable<Timestamp>,
    }
}

// Ours, not Go's: the transparency log (see `crate::tlog`).
diesel::table! {
    tlog_leaves (id) {
        id -> BigInt,
        leaf_index -> Nullable<BigInt>,
        created_at -> Nullable<Timestamp>,
        gun -> Text,
        role -> Text,
        version -> Integer,
        sha256 -> Text,
        leaf -> Binary,
    }
}

diesel::table! {
    tlog_hashes (idx) {
        idx -> BigInt,
        hash -> Binary,
    }
}

diesel::table! {
    tlog_state (id) {
        id -> Integer,
        tree_size -> BigInt,
        checkpoint_size -> BigInt,
        checkpoint -> Nullable<Text>,
        key_id -> Nullable<Text>,
        public_key -> Nullable<Binary>,
        updated_at -> Nullable<Timestamp>,
    }
}

// Ours, not Go's: the audit trail (see `crate::audit`).
diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> Nullable<Timestamp>,
        action -> Text,
        gun -> Text,
        role -> Nullable<Text>,
        version -> Nullable<Integer>,
        sha256 -> Nullable<Text>,
        actor -> Text,
        actor_kind -> Text,
        peer -> Nullable<Text>,
        request_id -> Nullable<Text>,
        detail -> Nullable<Text>,
    }
}

// Ours, not Go's: the expiry inventory (see `crate::expiry`).
diesel::table! {
    expiry_inventory (id) {
        id -> BigInt,
        gun -> Text,
        role -> Text,
        kind -> Text,
        key_id -> Text,
        subject -> Text,
        expires -> Nullable<Timestamp>,
        version -> Integer,
    }
}

// Ours, not Go's: leases of background jobs (see `crate::expiry::resign`).
diesel::table! {
    server_leases (name) {
        name -> Text,
        holder -> Text,
        expires -> Timestamp,
    }
}
