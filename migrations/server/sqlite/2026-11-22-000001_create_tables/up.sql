-- SQLite equivalent of the MySQL schema (same tables, columns and keys).
-- SQLite DDL is transactional, so one migration holds everything.
-- Comparisons are exact (binary): unlike MySQL's case-insensitive collation,
-- GUN, role and sha256 match case-sensitively; stock clients use lower-case hex.
CREATE TABLE IF NOT EXISTS tuf_files (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TIMESTAMP NULL DEFAULT NULL,
    updated_at TIMESTAMP NULL DEFAULT NULL,
    deleted_at TIMESTAMP NULL DEFAULT NULL,
    gun        VARCHAR(255) NOT NULL,
    role       VARCHAR(255) NOT NULL,
    version    INTEGER NOT NULL,
    data       BLOB NOT NULL,
    sha256     CHAR(64) DEFAULT NULL,
    CONSTRAINT gun UNIQUE (gun, role, version)
);
CREATE INDEX IF NOT EXISTS tuf_files_sha256 ON tuf_files (sha256);

CREATE TABLE IF NOT EXISTS change_category (
    category VARCHAR(20) NOT NULL PRIMARY KEY
);
INSERT OR IGNORE INTO change_category (category) VALUES ('update'), ('deletion');

-- AUTOINCREMENT: ids are never reused, so the changefeed cursor stays monotonic.
CREATE TABLE IF NOT EXISTS changefeed (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    gun        VARCHAR(255) NOT NULL,
    version    INTEGER NOT NULL,
    sha256     CHAR(64) DEFAULT NULL,
    category   VARCHAR(20) NOT NULL DEFAULT 'update'
        CONSTRAINT changefeed_category_fk REFERENCES change_category (category)
);
CREATE INDEX IF NOT EXISTS idx_changefeed_gun ON changefeed (gun);
