-- PostgreSQL counterpart of the MySQL pkcs11_keys table (ours; a Go signer ignores it).
CREATE TABLE IF NOT EXISTS pkcs11_keys (
    id          serial PRIMARY KEY,
    created_at  timestamp NULL DEFAULT NULL,
    updated_at  timestamp NULL DEFAULT NULL,
    deleted_at  timestamp NULL DEFAULT NULL,
    key_id      varchar(255) NOT NULL,
    algorithm   varchar(50) NOT NULL,
    gun         varchar(255) NOT NULL,
    role        varchar(255) NOT NULL,
    token_label varchar(255) NOT NULL,
    object_id   varchar(255) NOT NULL,
    last_used   timestamp NULL DEFAULT NULL,
    imported    boolean NOT NULL DEFAULT FALSE,
    CONSTRAINT pkcs11_keys_key_id UNIQUE (key_id)
);
CREATE INDEX IF NOT EXISTS pkcs11_keys_pending ON pkcs11_keys (gun, role, algorithm);
