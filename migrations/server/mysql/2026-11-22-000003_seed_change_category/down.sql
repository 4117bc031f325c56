DELETE FROM change_category WHERE category IN ('update', 'deletion');
