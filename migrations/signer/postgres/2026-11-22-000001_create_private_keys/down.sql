DROP TABLE IF EXISTS private_keys;
