-- PostgreSQL counterpart of the MySQL audit_log table; see that migration.
CREATE TABLE IF NOT EXISTS audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamp NULL DEFAULT NULL,
    action     varchar(32) NOT NULL,
    gun        varchar(255) NOT NULL,
    role       varchar(255) NULL,
    version    integer NULL,
    sha256     char(64) NULL,
    actor      varchar(255) NOT NULL,
    actor_kind varchar(32) NOT NULL,
    peer       varchar(64) NULL,
    request_id varchar(64) NULL,
    detail     text NULL
);
CREATE INDEX IF NOT EXISTS audit_log_gun ON audit_log (gun, id);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, id);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
