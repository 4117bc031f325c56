-- One row per new timestamp version ('update') or per deleted GUN ('deletion');
-- id is the changefeed cursor (Go notary migration 0005).
CREATE TABLE IF NOT EXISTS changefeed (
    id         INT NOT NULL AUTO_INCREMENT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    gun        VARCHAR(255) NOT NULL,
    version    INT NOT NULL,
    sha256     CHAR(64) DEFAULT NULL,
    category   VARCHAR(20) NOT NULL DEFAULT 'update',
    PRIMARY KEY (id),
    KEY idx_changefeed_gun (gun),
    CONSTRAINT changefeed_category_fk FOREIGN KEY (category) REFERENCES change_category (category)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
