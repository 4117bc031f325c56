DROP TABLE IF EXISTS server_leases;
