-- SQLite counterpart of the MySQL private_keys table (same columns and unique
-- keys). See the MySQL migration for the meaning of the columns.
CREATE TABLE IF NOT EXISTS private_keys (
    id               INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    created_at       DATETIME NULL DEFAULT NULL,
    updated_at       DATETIME NULL DEFAULT NULL,
    deleted_at       DATETIME NULL DEFAULT NULL,
    key_id           VARCHAR(255) NOT NULL,
    encryption_alg   VARCHAR(255) NOT NULL,
    keywrap_alg      VARCHAR(255) NOT NULL,
    algorithm        VARCHAR(50) NOT NULL,
    passphrase_alias VARCHAR(50) NOT NULL,
    public           BLOB NOT NULL,
    private          BLOB NOT NULL,
    gun              VARCHAR(255) NOT NULL,
    role             VARCHAR(255) NOT NULL,
    last_used        DATETIME NULL DEFAULT NULL,
    CONSTRAINT key_id UNIQUE (key_id),
    CONSTRAINT key_id_2 UNIQUE (key_id, algorithm)
);
