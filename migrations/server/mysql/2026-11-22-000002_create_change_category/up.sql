-- Allowed changefeed categories (Go notary migration 0005).
CREATE TABLE IF NOT EXISTS change_category (
    category VARCHAR(20) NOT NULL,
    PRIMARY KEY (category)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
