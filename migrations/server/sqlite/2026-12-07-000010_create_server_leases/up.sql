-- SQLite counterpart of the MySQL server_leases table; see that migration.
CREATE TABLE IF NOT EXISTS server_leases (
    name       VARCHAR(64) PRIMARY KEY NOT NULL,
    holder     VARCHAR(255) NOT NULL,
    expires    DATETIME NOT NULL
);
