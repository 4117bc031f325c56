-- SQLite counterpart of the MySQL tlog tables; see that migration.
CREATE TABLE IF NOT EXISTS tlog_leaves (
    id         INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    leaf_index BIGINT NULL DEFAULT NULL,
    created_at DATETIME NULL DEFAULT NULL,
    gun        VARCHAR(255) NOT NULL,
    role       VARCHAR(255) NOT NULL,
    version    INTEGER NOT NULL,
    sha256     CHAR(64) NOT NULL,
    leaf       BLOB NOT NULL,
    CONSTRAINT tlog_leaves_index UNIQUE (leaf_index)
);
CREATE INDEX IF NOT EXISTS tlog_leaves_file ON tlog_leaves (gun, role, version);
CREATE TABLE IF NOT EXISTS tlog_hashes (
    idx  BIGINT PRIMARY KEY NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS tlog_state (
    id              INTEGER PRIMARY KEY NOT NULL,
    tree_size       BIGINT NOT NULL,
    checkpoint_size BIGINT NOT NULL DEFAULT 0,
    checkpoint      TEXT NULL,
    key_id          VARCHAR(255) NULL,
    public_key      BLOB NULL,
    updated_at      DATETIME NULL DEFAULT NULL
);
INSERT OR IGNORE INTO tlog_state (id, tree_size) VALUES (1, 0);
