-- Runs once, as the PostgreSQL superuser `postgres`, when the `postgresql` service
-- initialises an empty data volume (the image executes /docker-entrypoint-initdb.d/*.sql in
-- name order, with psql, each statement in its own transaction).
--
-- Two databases and two roles, each role the owner of its own database and unable to
-- connect to the other, so a compromised notary-server cannot read the signer's encrypted
-- private keys. This is the layout of Harbor's notary databases (`notaryserver`,
-- `notarysigner`). The tables themselves are created by the services' embedded migrations
-- (notary-server -migrate; notary-signer migrates when it starts): as owners (PostgreSQL 15
-- makes the database owner the owner of its `public` schema) the roles may create them. The
-- passwords are development values: change them together with `db_url` in
-- server-config.postgres.json / signer-config.postgres.json (or the
-- NOTARY_*_STORAGE_DB_URL overrides).

CREATE ROLE server LOGIN PASSWORD 'server_dev_pw';
CREATE ROLE signer LOGIN PASSWORD 'signer_dev_pw';

CREATE DATABASE notaryserver OWNER server ENCODING 'UTF8';
CREATE DATABASE notarysigner OWNER signer ENCODING 'UTF8';

-- New databases let every role (PUBLIC) connect; only the owner may here.
REVOKE ALL ON DATABASE notaryserver FROM PUBLIC;
REVOKE ALL ON DATABASE notarysigner FROM PUBLIC;
