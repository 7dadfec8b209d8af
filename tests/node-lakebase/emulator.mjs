// What the Node Lakebase checks share: where the emulator and its Postgres front are, how a
// credential is minted, and how a refusal is asserted.
//
// run.sh starts `dbapp emulate --lakebase` and exports its address; the test files only read it:
//   DBAPP_EMULATOR_URL    the emulator's base URL (workspace API and /_emulator control routes)
//   LAKEBASE_FRONT_HOST   the Postgres front, as /_emulator/info reports it
//   LAKEBASE_FRONT_PORT
import assert from "node:assert/strict";
import pg from "pg";

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/node-lakebase/run.sh`);
  return value;
}

export const EMULATOR_URL = required("DBAPP_EMULATOR_URL");
export const FRONT = {
  host: required("LAKEBASE_FRONT_HOST"),
  port: Number.parseInt(required("LAKEBASE_FRONT_PORT"), 10),
};

/** Fixture principals (crates/emulator/src/fixture.rs): Postgres role name and workspace PAT. */
export const ALICE = { user: "alice@example.com", pat: "dev-token-alice" };
export const BOB = { user: "bob@example.com", pat: "dev-token-bob" };
export const SP = { clientId: "dbapp-sp", clientSecret: "dev-secret" };
/** The fixture's Provisioned instance and the Autoscaling endpoint of its `dev` project. */
export const INSTANCE = "dev-lakebase";
export const ENDPOINT = "projects/dev/branches/production/endpoints/primary";
export const DATABASE = "databricks_postgres";

/**
 * `sslmode=require` as libpq means it: TLS, certificate not verified. The emulator's front shows a
 * fresh self-signed certificate, as `require` permits (node-postgres' `ssl: true` would verify).
 */
export const SSL_REQUIRE = { rejectUnauthorized: false };

async function call(path, { token, body, method = "POST" } = {}) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${EMULATOR_URL}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/**
 * Mints a Provisioned Lakebase credential as whoever `workspaceToken` belongs to (a PAT is fine
 * for the workspace API; it is only refused as a Postgres password).
 */
export async function mintDatabaseCredential(workspaceToken) {
  const answer = await call("/api/2.0/database/credentials", {
    token: workspaceToken,
    body: { instance_names: [INSTANCE], request_id: crypto.randomUUID() },
  });
  assert.equal(typeof answer.token, "string");
  assert.equal(typeof answer.expiration_time, "string");
  return answer.token;
}

/** Expires a token now, through the emulator's control API. */
export async function expireToken(token) {
  await call("/_emulator/tokens/expire", { body: { token } });
}

/** The workspace requests the emulator logged under `pathPrefix`, oldest first. */
export async function loggedRequests(pathPrefix) {
  const query = new URLSearchParams({ path_prefix: pathPrefix });
  return (await call(`/_emulator/requests?${query}`, { method: "GET" })).requests;
}

/** The claims of a JWT-shaped token (the emulator's credentials are RS256 JWTs). */
export function claims(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
}

/** A connected node-postgres client for `user` on the front, `password` as given. */
export async function connect({ user, password, ssl = SSL_REQUIRE, database = DATABASE }) {
  const client = new pg.Client({ ...FRONT, user, password, database, ssl });
  await client.connect();
  return client;
}

/**
 * Asserts that logging in fails with exactly Postgres' `FATAL <code> <message>`, and that the
 * failed client left nothing open.
 */
export async function assertLoginRefused(options, { code, message }) {
  const client = new pg.Client({ ...FRONT, database: DATABASE, ssl: SSL_REQUIRE, ...options });
  await assert.rejects(client.connect(), (error) => {
    assert.equal(error.severity, "FATAL", `severity of ${error}`);
    assert.equal(error.code, code);
    assert.equal(error.message, message);
    return true;
  });
  await client.end().catch(() => {});
}

/** The exact refusal of a password the front does not accept for `user` (SQLSTATE 28P01). */
export function passwordFailed(user) {
  return { code: "28P01", message: `password authentication failed for user "${user}"` };
}
