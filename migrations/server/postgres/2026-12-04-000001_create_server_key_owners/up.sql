-- Ours, not Go's (Go ignores it): the GUN and role the server asked the signer to create
-- each online key for; see the MySQL migration.
CREATE TABLE IF NOT EXISTS server_key_owners (
    key_id     varchar(255) NOT NULL PRIMARY KEY,
    gun        varchar(255) NOT NULL,
    role       varchar(255) NOT NULL,
    created_at timestamp NULL DEFAULT NULL
);
