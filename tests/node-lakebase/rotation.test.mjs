// node-postgres with the rotation pattern of UPSTREAM.md §5: `password` is an async function,
// so every new physical connection mints (or could take from a cache) a fresh credential, and
// open connections are left alone when their login token ages out.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, test } from "node:test";
import pg from "pg";

import {
  ALICE,
  DATABASE,
  FRONT,
  SSL_REQUIRE,
  assertLoginRefused,
  claims,
  connect,
  expireToken,
  mintDatabaseCredential,
  passwordFailed,
} from "./emulator.mjs";

const opened = [];
after(async () => {
  await Promise.all(opened.map((client) => client.end().catch(() => {})));
});

test("a pool whose password callback mints on every connection serves concurrent queries", async () => {
  const minted = [];
  const pool = new pg.Pool({
    ...FRONT,
    user: ALICE.user,
    database: DATABASE,
    ssl: SSL_REQUIRE,
    max: 4,
    password: async () => {
      const token = await mintDatabaseCredential(ALICE.pat);
      minted.push(token);
      return token;
    },
  });
  const table = `node_rotation_${process.pid}`;
  try {
    // Four queries at once on an empty pool: four physical connections, four logins.
    const sessions = await Promise.all(
      Array.from({ length: 4 }, () =>
        pool.query("SELECT pg_backend_pid() AS pid, current_user AS role, pg_sleep(0.05)"),
      ),
    );
    const pids = new Set(sessions.map((result) => result.rows[0].pid));
    assert.equal(pids.size, 4, "each query had its own connection");
    for (const result of sessions) assert.equal(result.rows[0].role, ALICE.user);
    assert.equal(minted.length, 4, "one credential per new connection");
    assert.equal(new Set(minted).size, 4, "every credential is distinct");
    for (const token of minted) assert.equal(claims(token).sub, ALICE.user);

    // A table written through several connections at once reads back whole.
    await pool.query(`CREATE TABLE ${table} (id int PRIMARY KEY, note text NOT NULL)`);
    await Promise.all(
      Array.from({ length: 8 }, (_, id) =>
        pool.query(`INSERT INTO ${table} (id, note) VALUES ($1, $2)`, [id, `row ${id}`]),
      ),
    );
    const { rows } = await pool.query(`SELECT id, note FROM ${table} ORDER BY id`);
    assert.deepEqual(
      rows,
      Array.from({ length: 8 }, (_, id) => ({ id, note: `row ${id}` })),
    );
    assert.equal(minted.length, 4, "the pool reused its four connections");
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await pool.end();
  }
});

test("two credentials minted a second apart both log in, side by side", async () => {
  const first = await mintDatabaseCredential(ALICE.pat);
  // The emulator stamps `iat` in whole seconds. Wait for the clock to pass the first token's
  // second (at most 1 s, usually less) rather than a fixed sleep, so the second token is minted
  // in a later second; the loop guards against a clock that has not visibly moved yet.
  let second;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const wait = (claims(first).iat + 1) * 1000 - Date.now();
    if (wait > 0) await sleep(wait);
    second = await mintDatabaseCredential(ALICE.pat);
    if (claims(second).iat > claims(first).iat) break;
  }
  assert.ok(claims(second).iat > claims(first).iat, "minted in different seconds");
  assert.notEqual(first, second);

  // Both at once: minting the second does not revoke the first (unlike a role password).
  const a = await connect({ user: ALICE.user, password: first });
  opened.push(a);
  const b = await connect({ user: ALICE.user, password: second });
  opened.push(b);
  const [ra, rb] = await Promise.all([
    a.query("SELECT current_user AS role, pg_backend_pid() AS pid"),
    b.query("SELECT current_user AS role, pg_backend_pid() AS pid"),
  ]);
  assert.equal(ra.rows[0].role, ALICE.user);
  assert.equal(rb.rows[0].role, ALICE.user);
  assert.notEqual(ra.rows[0].pid, rb.rows[0].pid);
  // And the older one still opens new connections.
  const again = await connect({ user: ALICE.user, password: first });
  opened.push(again);
  assert.equal((await again.query("SELECT 1 AS one")).rows[0].one, 1);

  // Two minted in the same second are distinct too (their `jti` differs), and both log in.
  const [c, d] = await Promise.all([
    mintDatabaseCredential(ALICE.pat),
    mintDatabaseCredential(ALICE.pat),
  ]);
  assert.notEqual(c, d);
  for (const token of [c, d]) {
    const client = await connect({ user: ALICE.user, password: token });
    opened.push(client);
  }
});

test("an open connection outlives its expired token; a new login with it is refused", async () => {
  const token = await mintDatabaseCredential(ALICE.pat);
  const client = await connect({ user: ALICE.user, password: token });
  opened.push(client);
  assert.equal((await client.query("SELECT 1 AS one")).rows[0].one, 1);

  await expireToken(token);

  // Lakebase checks the token at login only: the session keeps working ...
  const { rows } = await client.query("SELECT current_user AS role, 40 + 2 AS answer");
  assert.deepEqual(rows, [{ role: ALICE.user, answer: 42 }]);
  // ... while the same token no longer opens a connection.
  await assertLoginRefused({ user: ALICE.user, password: token }, passwordFailed(ALICE.user));
  // And the session is still fine after the refusal next to it.
  assert.equal((await client.query("SELECT 2 AS two")).rows[0].two, 2);
});
