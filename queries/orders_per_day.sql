-- @title Orders per day
-- @description Orders placed and their amount on each day between two dates (inclusive),
--   as a time series. Days without orders are absent.
-- @run_as user
-- @cache_ttl_secs 300
-- @param start_date DATE required
--   First day, inclusive.
-- @param end_date DATE required
--   Last day, inclusive.
SELECT
  DATE(ordered_at) AS day,
  COUNT(*) AS orders,
  ROUND(SUM(amount), 2) AS amount
FROM main.sales.orders
WHERE DATE(ordered_at) BETWEEN :start_date AND :end_date
GROUP BY DATE(ordered_at)
ORDER BY day
