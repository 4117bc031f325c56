-- Ours, not Go's (Go ignores it): when each GUN's current metadata and key certificates
-- expire, one row per file expiry and per x509 key certificate, replaced for a role whenever
-- a new version of it is accepted. The index on expires makes "what expires within N days"
-- one range scan. DATETIME, not TIMESTAMP: certificates outlive 2038.
CREATE TABLE IF NOT EXISTS expiry_inventory (
    id         BIGINT NOT NULL AUTO_INCREMENT,
    gun        VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    role       VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    kind       VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    key_id     VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    subject    VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    expires    DATETIME NOT NULL,
    version    INT NOT NULL,
    PRIMARY KEY (id),
    KEY expiry_inventory_gun (gun, role),
    KEY expiry_inventory_expires (expires)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
