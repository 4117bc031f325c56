-- Ours, not Go's (Go ignores it): who changed what. One row per accepted metadata file, per
-- GUN deletion, per server-held key made or rotated, per server re-sign and per admin action,
-- written in the same transaction as the change itself.
-- actor: token subject, client certificate subject, "anonymous" or "server"; actor_kind says
-- which. peer: the client address (X-Forwarded-For only from configured trusted proxies).
-- detail: JSON with whatever else the action has (e.g. rows removed, key IDs deleted).
CREATE TABLE IF NOT EXISTS audit_log (
    id         BIGINT NOT NULL AUTO_INCREMENT,
    at         TIMESTAMP NULL DEFAULT NULL,
    action     VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    gun        VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    role       VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    version    INT NULL,
    sha256     CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
    actor      VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    actor_kind VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    peer       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
    request_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
    detail     TEXT NULL,
    PRIMARY KEY (id),
    KEY audit_log_gun (gun, id),
    KEY audit_log_actor (actor, id),
    KEY audit_log_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
