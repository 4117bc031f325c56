DROP TABLE IF EXISTS expiry_inventory;
