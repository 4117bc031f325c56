-- SQLite counterpart of the MySQL pkcs11_keys table; see that migration.
CREATE TABLE IF NOT EXISTS pkcs11_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    created_at  DATETIME NULL DEFAULT NULL,
    updated_at  DATETIME NULL DEFAULT NULL,
    deleted_at  DATETIME NULL DEFAULT NULL,
    key_id      VARCHAR(255) NOT NULL,
    algorithm   VARCHAR(50) NOT NULL,
    gun         VARCHAR(255) NOT NULL,
    role        VARCHAR(255) NOT NULL,
    token_label VARCHAR(255) NOT NULL,
    object_id   VARCHAR(255) NOT NULL,
    last_used   DATETIME NULL DEFAULT NULL,
    imported    BOOLEAN NOT NULL DEFAULT FALSE,
    CONSTRAINT pkcs11_keys_key_id UNIQUE (key_id)
);
CREATE INDEX IF NOT EXISTS pkcs11_keys_pending ON pkcs11_keys (gun, role, algorithm);
