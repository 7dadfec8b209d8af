// What the front refuses, with the exact `FATAL` a node-postgres client sees (UPSTREAM.md §5:
// a PAT is never a password, tokens are checked at login, TLS only).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ALICE,
  BOB,
  assertLoginRefused,
  claims,
  connect,
  expireToken,
  mintDatabaseCredential,
  passwordFailed,
} from "./emulator.mjs";

test("a personal access token is refused as the password", async () => {
  await assertLoginRefused({ user: ALICE.user, password: ALICE.pat }, passwordFailed(ALICE.user));
});

test("an expired credential is refused", async () => {
  const token = await mintDatabaseCredential(ALICE.pat);
  await expireToken(token);
  await assertLoginRefused({ user: ALICE.user, password: token }, passwordFailed(ALICE.user));
});

test("another user's credential is refused, though it logs its owner in", async () => {
  const bobs = await mintDatabaseCredential(BOB.pat);
  assert.equal(claims(bobs).sub, BOB.user);
  await assertLoginRefused({ user: ALICE.user, password: bobs }, passwordFailed(ALICE.user));
  const client = await connect({ user: BOB.user, password: bobs });
  try {
    assert.equal((await client.query("SELECT current_user AS role")).rows[0].role, BOB.user);
  } finally {
    await client.end();
  }
});

test("a token the emulator did not mint is refused, however JWT-like", async () => {
  const [header, payload] = (await mintDatabaseCredential(ALICE.pat)).split(".");
  const forged = `${header}.${payload}.${Buffer.from("not the emulator's signature").toString("base64url")}`;
  await assertLoginRefused({ user: ALICE.user, password: forged }, passwordFailed(ALICE.user));
});

test("a connection without TLS is refused before any password is asked", async () => {
  const token = await mintDatabaseCredential(ALICE.pat);
  await assertLoginRefused(
    { user: ALICE.user, password: token, ssl: false },
    { code: "28000", message: "connection is insecure (try using `sslmode=require`)" },
  );
});
