-- @title Revenue by product category
-- @description Order revenue and order count per product category for orders placed
--   between two dates (inclusive). One bar per category.
-- @run_as user
-- @cache_ttl_secs 300
-- @param start_date DATE = 2026-01-01
--   First order day counted.
-- @param end_date DATE = 2026-12-31
--   Last order day counted.
SELECT
  p.category AS category,
  ROUND(SUM(o.amount), 2) AS revenue,
  COUNT(*) AS orders
FROM main.sales.orders AS o
JOIN main.default.products AS p ON p.id = o.product_id
WHERE DATE(o.ordered_at) BETWEEN :start_date AND :end_date
GROUP BY p.category
ORDER BY revenue DESC
