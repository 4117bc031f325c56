-- SQLite counterpart of the MySQL expiry_inventory table; see that migration.
CREATE TABLE IF NOT EXISTS expiry_inventory (
    id         INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    gun        VARCHAR(255) NOT NULL,
    role       VARCHAR(255) NOT NULL,
    kind       VARCHAR(16) NOT NULL,
    key_id     VARCHAR(255) NOT NULL DEFAULT '',
    subject    VARCHAR(255) NOT NULL DEFAULT '',
    expires    DATETIME NULL,
    version    INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS expiry_inventory_role ON expiry_inventory (gun, role, kind);
CREATE INDEX IF NOT EXISTS expiry_inventory_expires ON expiry_inventory (expires);
CREATE INDEX IF NOT EXISTS expiry_inventory_role_expires ON expiry_inventory (role, expires);
