-- Ours, not Go's: the GUN and role the server asked the signer to create each online key
-- for (see the MySQL migration). SQLite compares text exactly.
CREATE TABLE IF NOT EXISTS server_key_owners (
    key_id     VARCHAR(255) NOT NULL PRIMARY KEY,
    gun        VARCHAR(255) NOT NULL,
    role       VARCHAR(255) NOT NULL,
    created_at TIMESTAMP NULL DEFAULT NULL
);
