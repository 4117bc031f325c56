-- Ours, not Go's (Go's tables are left exactly as Go creates them): the GUN and role the
-- server asked the signer to create each online key for, so a root uploaded for one GUN
-- cannot make the server sign with another GUN's key. Go ignores this table.
-- utf8mb4_bin: GUNs compare byte for byte, as token scopes do.
CREATE TABLE IF NOT EXISTS server_key_owners (
    key_id     VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    gun        VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    role       VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_at TIMESTAMP NULL DEFAULT NULL,
    PRIMARY KEY (key_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
