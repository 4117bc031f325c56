-- The tables of Go notary's migrations/server/postgresql (0001, 0002), as its migrations
-- leave them, so a Go database is adopted unchanged: IF NOT EXISTS leaves Go's tables alone.
-- PostgreSQL compares text byte for byte (deterministic collation): no case folding.
CREATE TABLE IF NOT EXISTS tuf_files (
    id         serial PRIMARY KEY,
    created_at timestamp NULL DEFAULT NULL,
    updated_at timestamp NULL DEFAULT NULL,
    deleted_at timestamp NULL DEFAULT NULL,
    gun        varchar(255) NOT NULL,
    role       varchar(255) NOT NULL,
    version    integer NOT NULL,
    data       bytea NOT NULL,
    sha256     char(64) DEFAULT NULL,
    UNIQUE (gun, role, version)
);
CREATE INDEX IF NOT EXISTS tuf_files_sha256_idx ON tuf_files (sha256);

CREATE TABLE IF NOT EXISTS change_category (
    category varchar(20) PRIMARY KEY
);
INSERT INTO change_category VALUES ('update'), ('deletion') ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS changefeed (
    id         serial PRIMARY KEY,
    created_at timestamp DEFAULT CURRENT_TIMESTAMP,
    gun        varchar(255) NOT NULL,
    version    integer NOT NULL,
    sha256     char(64) DEFAULT NULL,
    category   varchar(20) NOT NULL DEFAULT 'update' REFERENCES change_category
);
CREATE INDEX IF NOT EXISTS idx_changefeed_gun ON changefeed (gun);
