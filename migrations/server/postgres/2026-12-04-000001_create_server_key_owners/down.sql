DROP TABLE IF EXISTS server_key_owners;
