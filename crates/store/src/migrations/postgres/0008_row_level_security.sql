-- Row-level security on every table that holds a user's own data, so that Postgres itself keeps
-- users apart: a statement that forgets its `user_id` filter still sees and changes only the
-- caller's rows. The store names the caller on every connection it hands out, in the statement
-- that also checks the connection is alive (`set_config('dbapp.user_id', …)`, see
-- `PgStore::connection` in crates/store/src/postgres.rs); a connection that names no user sees
-- no rows of these tables.
--
-- FORCE: the app's role owns these tables (it ran the migrations), and owners are exempt from
-- their tables' policies unless forced. Roles with BYPASSRLS (superusers) are still exempt.
--
-- The bypass is explicit and narrow: `dbapp.scope = 'admin'`, which the store sets only for the
-- admin aggregates and retention (and logs as `store.rls_bypass` with the reason).
-- performance_metrics and its rollups hold request telemetry for admins, not a user's data, and
-- are not covered.

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'user_preferences', 'model_inference_logs', 'usage_events',
        'conversations', 'conversation_messages'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS dbapp_caller ON %I', t);
        EXECUTE format(
            'CREATE POLICY dbapp_caller ON %I '
            'USING (user_id = current_setting(''dbapp.user_id'', true)) '
            'WITH CHECK (user_id = current_setting(''dbapp.user_id'', true))', t);
        EXECUTE format('DROP POLICY IF EXISTS dbapp_admin ON %I', t);
        EXECUTE format(
            'CREATE POLICY dbapp_admin ON %I '
            'USING (current_setting(''dbapp.scope'', true) = ''admin'') '
            'WITH CHECK (current_setting(''dbapp.scope'', true) = ''admin'')', t);
    END LOOP;
END
$$;
