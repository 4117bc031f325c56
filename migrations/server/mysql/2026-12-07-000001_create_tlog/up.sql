-- Ours, not Go's (Go ignores these tables): the transparency log of accepted metadata.
-- tlog_leaves: one row per accepted metadata file, written in the same transaction as the
--   file itself. leaf is the leaf record (notary-tlog's one-line format); leaf_index is NULL
--   until the integrator gives the leaf its place in the tree (within an interval), so
--   publishes never wait on a shared counter row.
-- tlog_hashes: the tree's stored hashes by stored-hash index (Go sumdb/tlog layout).
-- tlog_state: one row; the integrator locks it, so one server at a time extends the tree.
CREATE TABLE IF NOT EXISTS tlog_leaves (
    id         BIGINT NOT NULL AUTO_INCREMENT,
    leaf_index BIGINT NULL DEFAULT NULL,
    created_at TIMESTAMP NULL DEFAULT NULL,
    gun        VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    role       VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    version    INT NOT NULL,
    sha256     CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    leaf       BLOB NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY tlog_leaves_index (leaf_index),
    KEY tlog_leaves_file (gun, role, version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS tlog_hashes (
    idx  BIGINT NOT NULL,
    hash BINARY(32) NOT NULL,
    PRIMARY KEY (idx)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS tlog_state (
    id              INT NOT NULL,
    tree_size       BIGINT NOT NULL,
    checkpoint_size BIGINT NOT NULL DEFAULT 0,
    checkpoint      TEXT NULL,
    key_id          VARCHAR(255) NULL,
    public_key      BLOB NULL,
    updated_at      TIMESTAMP NULL DEFAULT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT IGNORE INTO tlog_state (id, tree_size) VALUES (1, 0);
