-- Every version of every role's metadata, per GUN. Identical to Go notary's
-- table (end state of its migrations 0001..0005) so an existing Go database is
-- adopted unchanged: IF NOT EXISTS leaves a Go-created table alone.
-- deleted_at is gorm's soft-delete column; readers filter on it, nobody sets it.
CREATE TABLE IF NOT EXISTS tuf_files (
    id         INT NOT NULL AUTO_INCREMENT,
    created_at TIMESTAMP NULL DEFAULT NULL,
    updated_at TIMESTAMP NULL DEFAULT NULL,
    deleted_at TIMESTAMP NULL DEFAULT NULL,
    gun        VARCHAR(255) NOT NULL,
    role       VARCHAR(255) NOT NULL,
    version    INT NOT NULL,
    data       LONGBLOB NOT NULL,
    sha256     CHAR(64) DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY gun (gun, role, version),
    KEY sha256 (sha256)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
