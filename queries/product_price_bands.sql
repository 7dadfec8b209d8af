-- @title Product prices by category
-- @description Reference data for everyone: how many products each category has and their
--   price range, for products at or above a minimum price. Runs as the app, so every user
--   sees the same answer and shares its cache.
-- @run_as app
-- @cache_ttl_secs 3600
-- @param min_price DECIMAL(10,2) = 0
--   Products cheaper than this are left out.
SELECT
  category,
  COUNT(*) AS products,
  MIN(price) AS min_price,
  MAX(price) AS max_price,
  ROUND(AVG(price), 2) AS avg_price
FROM main.default.products
WHERE price >= :min_price
GROUP BY category
ORDER BY category
