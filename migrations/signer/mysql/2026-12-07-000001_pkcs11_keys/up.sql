-- Keys held in a PKCS#11 token (ours; a Go signer ignores this table and keeps
-- using private_keys). The private key never leaves the token: a row only says
-- which token objects (CKA_ID = object_id, hex) hold the key, and keeps what the
-- signer lists and queries: GUN, role, algorithm, pending/active state
-- (last_used NULL = pending) and the soft-delete mark. imported = 1 for keys
-- moved from private_keys by `notary-signer pkcs11-import`.
CREATE TABLE IF NOT EXISTS `pkcs11_keys` (
    `id`          INT NOT NULL AUTO_INCREMENT,
    `created_at`  TIMESTAMP NULL DEFAULT NULL,
    `updated_at`  TIMESTAMP NULL DEFAULT NULL,
    `deleted_at`  TIMESTAMP NULL DEFAULT NULL,
    `key_id`      VARCHAR(255) NOT NULL,
    `algorithm`   VARCHAR(50) NOT NULL,
    `gun`         VARCHAR(255) NOT NULL,
    `role`        VARCHAR(255) NOT NULL,
    `token_label` VARCHAR(255) NOT NULL,
    `object_id`   VARCHAR(255) NOT NULL,
    `last_used`   DATETIME NULL DEFAULT NULL,
    `imported`    BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (`id`),
    UNIQUE KEY `pkcs11_keys_key_id` (`key_id`),
    KEY `pkcs11_keys_pending` (`gun`, `role`, `algorithm`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
