-- Runs once on galera1 (the node that creates the cluster), after ../../mysql-init/'s
-- 01-notary-databases.sql: the local account the donor's mariabackup logs in with during a
-- state snapshot transfer (wsrep_sst_auth in ../galera.cnf). The joiners receive it with the
-- rest of the mysql schema in their first SST. Development password: change both places.
CREATE USER IF NOT EXISTS 'mariabackup'@'localhost' IDENTIFIED BY 'sst_dev_pw_change_me';
GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO 'mariabackup'@'localhost';
FLUSH PRIVILEGES;
