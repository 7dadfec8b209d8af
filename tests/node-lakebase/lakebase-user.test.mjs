// `@databricks/lakebase` as a developer runs it from a laptop: a personal access token for the
// workspace API (never the Postgres password), the user name looked up with
// `getUsernameWithApiLookup` (SCIM `Me`), a credential minted for the user.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createLakebasePool, getUsernameWithApiLookup } from "@databricks/lakebase";

import { BOB, DATABASE, EMULATOR_URL, ENDPOINT, FRONT, SSL_REQUIRE } from "./emulator.mjs";

Object.assign(process.env, {
  DATABRICKS_HOST: EMULATOR_URL,
  DATABRICKS_TOKEN: BOB.pat,
  PGHOST: FRONT.host,
  PGPORT: String(FRONT.port),
  PGDATABASE: DATABASE,
  LAKEBASE_ENDPOINT: ENDPOINT,
});
for (const name of ["PGUSER", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"]) {
  delete process.env[name];
}

test("a user's pool: name from the workspace, credential minted with a PAT", async () => {
  const user = await getUsernameWithApiLookup();
  assert.equal(user, BOB.user);
  const pool = createLakebasePool({ user, ssl: SSL_REQUIRE, max: 2, logger: { error: true } });
  try {
    const results = await Promise.all([
      pool.query("SELECT current_user AS role, pg_backend_pid() AS pid, pg_sleep(0.05)"),
      pool.query("SELECT current_user AS role, pg_backend_pid() AS pid, pg_sleep(0.05)"),
    ]);
    for (const { rows } of results) assert.equal(rows[0].role, BOB.user);
    assert.notEqual(results[0].rows[0].pid, results[1].rows[0].pid);
  } finally {
    await pool.end();
  }
});
