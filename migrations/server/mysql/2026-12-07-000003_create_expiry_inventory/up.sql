-- Ours, not Go's (Go ignores it): the earliest expiry of each GUN's current roles. Per
-- (gun, role) two rows: kind 'metadata' (the file's expires) and kind 'certificate' (the
-- earliest notAfter of the x509 key certificates the file lists; expires NULL when it lists
-- none). Each accepted version upserts its role's two rows in the publish's transaction (an
-- upsert on the unique key takes no gap locks, where delete-and-insert serialised
-- concurrent publishes). The index on expires makes "what expires within N days" one range
-- scan; the one on (role, expires) does the same for one role. DATETIME, not TIMESTAMP: certificates outlive 2038.
CREATE TABLE IF NOT EXISTS expiry_inventory (
    id         BIGINT NOT NULL AUTO_INCREMENT,
    gun        VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    role       VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    kind       VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    key_id     VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    subject    VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    expires    DATETIME NULL,
    version    INT NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY expiry_inventory_role (gun, role, kind),
    KEY expiry_inventory_expires (expires),
    KEY expiry_inventory_role_expires (role, expires)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
