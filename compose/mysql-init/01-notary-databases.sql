-- Runs once, as the MariaDB root user, when the `mysql` service initialises an empty data
-- volume (the image executes /docker-entrypoint-initdb.d/*.sql in name order).
--
-- Two databases and two users, each user confined to its own database, so a compromised
-- notary-server cannot read the signer's encrypted private keys. The tables themselves are
-- created by the services' embedded migrations (notary-server -migrate; notary-signer
-- migrates when it starts), which is why each user may create and alter tables in its own
-- database. The passwords are development values: change them together with `db_url` in
-- server-config.json / signer-config.json (or the NOTARY_*_STORAGE_DB_URL overrides).

CREATE DATABASE IF NOT EXISTS `notaryserver` CHARACTER SET utf8mb4;
CREATE DATABASE IF NOT EXISTS `notarysigner` CHARACTER SET utf8mb4;

CREATE USER IF NOT EXISTS 'server'@'%' IDENTIFIED BY 'server_dev_pw';
GRANT ALL PRIVILEGES ON `notaryserver`.* TO 'server'@'%';

CREATE USER IF NOT EXISTS 'signer'@'%' IDENTIFIED BY 'signer_dev_pw';
GRANT ALL PRIVILEGES ON `notarysigner`.* TO 'signer'@'%';

FLUSH PRIVILEGES;
