DROP TABLE IF EXISTS change_category;
