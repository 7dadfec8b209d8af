// `@databricks/lakebase` as a Databricks App runs it: the service principal's OAuth M2M
// credentials and the Postgres variables in the environment, nothing else. The package builds a
// `WorkspaceClient` from `@databricks/sdk-experimental` (OIDC discovery, client-credentials
// token), mints through `POST /api/2.0/postgres/credentials {endpoint}` and caches the token for
// every new connection until 2 minutes before `expire_time`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createLakebasePool } from "@databricks/lakebase";

import {
  DATABASE,
  EMULATOR_URL,
  ENDPOINT,
  FRONT,
  SP,
  SSL_REQUIRE,
  claims,
  loggedRequests,
} from "./emulator.mjs";

// What the Apps runtime injects for a `postgres` resource (UPSTREAM.md §1.3), pointed at the
// emulator. PGPORT is the front's port; on Lakebase it is 5432.
Object.assign(process.env, {
  DATABRICKS_HOST: EMULATOR_URL,
  DATABRICKS_CLIENT_ID: SP.clientId,
  DATABRICKS_CLIENT_SECRET: SP.clientSecret,
  PGHOST: FRONT.host,
  PGPORT: String(FRONT.port),
  PGDATABASE: DATABASE,
  PGUSER: SP.clientId,
  PGSSLMODE: "require",
  LAKEBASE_ENDPOINT: ENDPOINT,
});

test("createLakebasePool logs the service principal in and runs queries", async () => {
  // The package's `require` verifies the certificate (libpq's does not); the emulator's is
  // self-signed, so verification is turned off here, as `sslmode=require` means.
  const spMints = async () =>
    (await loggedRequests("/api/2.0/postgres/credentials")).filter(
      (request) => request.principal === SP.clientId,
    );
  const mintsBefore = (await spMints()).length;
  const pool = createLakebasePool({ ssl: SSL_REQUIRE, max: 3, logger: { error: true } });
  const table = `node_lakebase_sp_${process.pid}`;
  try {
    const { rows } = await pool.query("SELECT current_user AS role, current_database() AS db");
    assert.equal(rows[0].role, SP.clientId);

    await pool.query(`CREATE TABLE ${table} (id int PRIMARY KEY)`);
    await Promise.all([1, 2, 3].map((id) => pool.query(`INSERT INTO ${table} VALUES ($1)`, [id])));
    const back = await pool.query(`SELECT count(*)::int AS n FROM ${table}`);
    assert.equal(back.rows[0].n, 3);

    // One mint served every connection (three were open at once): the package caches the
    // credential.
    assert.ok(pool.totalCount > 1, `connections: ${pool.totalCount}`);
    const mints = (await spMints()).slice(mintsBefore);
    assert.equal(mints.length, 1, JSON.stringify(mints));
    assert.equal(mints[0].status, 200);
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await pool.end();
  }
});

test("its own sslmode=require verifies the certificate, which the emulator's self-signed one fails", async () => {
  const pool = createLakebasePool({ max: 1, logger: { error: false } });
  try {
    await assert.rejects(pool.query("SELECT 1"), (error) => {
      assert.equal(error.code, "DEPTH_ZERO_SELF_SIGNED_CERT", String(error));
      return true;
    });
  } finally {
    await pool.end();
  }
});

test("the credential it mints is the service principal's, for the endpoint", async () => {
  const { generateDatabaseCredential, getWorkspaceClient } = await import("@databricks/lakebase");
  const credential = await generateDatabaseCredential(getWorkspaceClient({}), { endpoint: ENDPOINT });
  assert.equal(claims(credential.token).sub, SP.clientId);
  assert.ok(Date.parse(credential.expire_time) > Date.now());
});
