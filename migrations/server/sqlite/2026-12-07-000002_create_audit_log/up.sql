-- SQLite counterpart of the MySQL audit_log table; see that migration.
CREATE TABLE IF NOT EXISTS audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    at         DATETIME NULL DEFAULT NULL,
    action     VARCHAR(32) NOT NULL,
    gun        VARCHAR(255) NOT NULL,
    role       VARCHAR(255) NULL,
    version    INTEGER NULL,
    sha256     CHAR(64) NULL,
    actor      VARCHAR(255) NOT NULL,
    actor_kind VARCHAR(32) NOT NULL,
    peer       VARCHAR(64) NULL,
    request_id VARCHAR(64) NULL,
    detail     TEXT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_gun ON audit_log (gun, id);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, id);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
