-- Postgres gets row-level security on the user tables in its 0008 (docs/lakebase.md). SQLite has
-- no such thing: isolation there is the store's `user_id` filters. This migration only keeps the
-- two dialects' version numbers in step.
SELECT 1;
