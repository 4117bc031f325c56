-- Separate from the CREATE TABLE because MySQL DDL commits implicitly.
-- INSERT IGNORE: a Go database already has both rows.
INSERT IGNORE INTO change_category (category) VALUES ('update'), ('deletion');
