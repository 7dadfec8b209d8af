-- @title Top customers
-- @description The customers with the largest order amount, with their order count.
-- @run_as user
-- @cache_ttl_secs 600
-- @param n INT = 10
--   How many customers to list.
SELECT
  c.id AS customer_id,
  c.name AS name,
  COUNT(o.order_id) AS orders,
  ROUND(SUM(o.amount), 2) AS total_amount
FROM main.sales.orders AS o
JOIN main.default.customers AS c ON c.id = o.customer_id
GROUP BY c.id, c.name
ORDER BY total_amount DESC
LIMIT :n
