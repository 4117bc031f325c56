DROP TABLE IF EXISTS changefeed;
DROP TABLE IF EXISTS change_category;
DROP TABLE IF EXISTS tuf_files;
