-- Private keys held by the signer, JWE-encrypted with the passphrase named by
-- passphrase_alias. This is the end state of Go Notary's signer migrations
-- (0001 + 0002) with the same column definitions, so a database created by the
-- Go tooling is adopted unchanged: IF NOT EXISTS makes this a no-op there.
-- last_used is NULL until the key first signs ("pending" key); deleted_at is
-- the soft-delete marker. Timestamps are written in UTC.
CREATE TABLE IF NOT EXISTS `private_keys` (
    `id`               INT NOT NULL AUTO_INCREMENT,
    `created_at`       TIMESTAMP NULL DEFAULT NULL,
    `updated_at`       TIMESTAMP NULL DEFAULT NULL,
    `deleted_at`       TIMESTAMP NULL DEFAULT NULL,
    `key_id`           VARCHAR(255) NOT NULL,
    `encryption_alg`   VARCHAR(255) NOT NULL,
    `keywrap_alg`      VARCHAR(255) NOT NULL,
    `algorithm`        VARCHAR(50) NOT NULL,
    `passphrase_alias` VARCHAR(50) NOT NULL,
    `public`           BLOB NOT NULL,
    `private`          BLOB NOT NULL,
    `gun`              VARCHAR(255) NOT NULL,
    `role`             VARCHAR(255) NOT NULL,
    `last_used`        DATETIME NULL DEFAULT NULL,
    PRIMARY KEY (`id`),
    UNIQUE KEY `key_id` (`key_id`),
    UNIQUE KEY `key_id_2` (`key_id`, `algorithm`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
