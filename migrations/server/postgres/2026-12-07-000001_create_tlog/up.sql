-- Ours, not Go's: the transparency log; see the MySQL migration for the meaning of each table.
CREATE TABLE IF NOT EXISTS tlog_leaves (
    id         bigserial PRIMARY KEY,
    leaf_index bigint NULL DEFAULT NULL,
    created_at timestamp NULL DEFAULT NULL,
    gun        varchar(255) NOT NULL,
    role       varchar(255) NOT NULL,
    version    integer NOT NULL,
    sha256     char(64) NOT NULL,
    leaf       bytea NOT NULL,
    CONSTRAINT tlog_leaves_index UNIQUE (leaf_index)
);
CREATE INDEX IF NOT EXISTS tlog_leaves_file ON tlog_leaves (gun, role, version);
CREATE TABLE IF NOT EXISTS tlog_hashes (
    idx  bigint PRIMARY KEY,
    hash bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS tlog_state (
    id              integer PRIMARY KEY,
    tree_size       bigint NOT NULL,
    checkpoint_size bigint NOT NULL DEFAULT 0,
    checkpoint      text NULL,
    key_id          varchar(255) NULL,
    public_key      bytea NULL,
    updated_at      timestamp NULL DEFAULT NULL
);
INSERT INTO tlog_state (id, tree_size) VALUES (1, 0) ON CONFLICT DO NOTHING;
