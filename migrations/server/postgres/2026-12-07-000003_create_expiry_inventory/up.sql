-- PostgreSQL counterpart of the MySQL expiry_inventory table; see that migration.
CREATE TABLE IF NOT EXISTS expiry_inventory (
    id         bigserial PRIMARY KEY,
    gun        varchar(255) NOT NULL,
    role       varchar(255) NOT NULL,
    kind       varchar(16) NOT NULL,
    key_id     varchar(255) NOT NULL DEFAULT '',
    subject    varchar(255) NOT NULL DEFAULT '',
    expires    timestamp NULL,
    version    integer NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS expiry_inventory_role ON expiry_inventory (gun, role, kind);
CREATE INDEX IF NOT EXISTS expiry_inventory_expires ON expiry_inventory (expires);
CREATE INDEX IF NOT EXISTS expiry_inventory_role_expires ON expiry_inventory (role, expires);
