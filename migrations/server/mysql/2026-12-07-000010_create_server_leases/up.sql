-- Ours, not Go's (Go ignores it): named leases, so that one replica of several runs a
-- background job (re-signing timestamps ahead of expiry) at a time. A replica holds a lease
-- until `expires`; another takes it over only after that. DATETIME(6): sub-second leases in
-- tests, and no 2038 limit.
CREATE TABLE IF NOT EXISTS server_leases (
    name       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    holder     VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    expires    DATETIME(6) NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
