// End-to-end tests of the Assistant page against a running `dbapp dev` (BASE_URL), in headless
// Chromium. `dbapp dev` runs the assistant on the emulator's scripted `assistant` endpoint
// (docs/assistant.md, "Trying it offline"): a question about products asks the Sales Genie space,
// one about orders asks how many there are (bob may not read main.sales.orders), and "keep
// looking" lists tables until the step limit. Screenshots go to e2e/screenshots/.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { BASE_URL, launch, pageAs, shot } from "./browser.mjs";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** @type {Awaited<ReturnType<typeof launch>>} */
let chrome;
before(async () => {
  chrome = await launch();
});
after(async () => {
  await chrome?.close();
});

/**
 * Types a question and sends it with the Ask button.
 * @param {import("playwright-core").Page} page
 * @param {string} question
 */
async function ask(page, question) {
  await page.getByTestId("assistant-input").fill(question);
  await page.getByRole("button", { name: "Ask", exact: true }).click();
}

/**
 * Checks that a turn asked Genie and shows the SQL it wrote and the rows it read.
 * @param {import("playwright-core").Locator} turn
 */
async function assertGenieStep(turn) {
  const step = turn.locator('[data-testid=assistant-step][data-tool=ask_genie]');
  await step.and(turn.page().locator("[data-state=ok]")).waitFor();
  assert.match(await step.locator(".assistant-step-subject").innerText(), /products/i);
  const sql = step.getByTestId("genie-sql");
  assert.match(await sql.locator("pre").innerText(), /SELECT id, name, price, category FROM main\.default\.products/);
  const grid = step.getByTestId("data-grid");
  assert.equal(await grid.locator("tbody tr").count(), 8);
  const headers = await grid.locator("thead th").evaluateAll((ths) => ths.map((th) => th.firstChild?.textContent));
  assert.deepEqual(headers, ["id", "name", "price", "category"]);
}

describe("assistant", () => {
  test("ask the assistant a question, see the SQL and the rows, reload and find the conversation", async () => {
    const { page, context, errors } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/`);
      await page.getByRole("link", { name: "Assistant" }).click();
      await page.getByTestId("assistant-empty").waitFor();

      await ask(page, "Which products do we sell?");
      const turn = page.getByTestId("assistant-turn").last();
      await turn.getByTestId("assistant-answer").and(page.locator("[data-state=done]")).waitFor();
      await assertGenieStep(turn);
      await turn.locator("[data-testid=result-chart] svg").waitFor();
      assert.match(await turn.getByTestId("assistant-final").innerText(), /Here is what I found/);
      await shot(page, "assistant-answer");

      // The address names the new conversation, and the list holds it.
      const id = new URL(page.url()).pathname.split("/").at(-1) ?? "";
      assert.match(id, UUID);
      const listed = page.getByTestId("conversation-list").locator(`[data-conversation-id="${id}"]`);
      await listed.waitFor();

      // A reload rebuilds the conversation from the store: the same steps, SQL and rows.
      await page.reload();
      const reloaded = page.getByTestId("assistant-turn");
      await reloaded.first().waitFor();
      assert.equal(await reloaded.count(), 1);
      assert.equal(await reloaded.first().locator(".genie-question").innerText(), "Which products do we sell?");
      await assertGenieStep(reloaded.first());
      assert.match(await reloaded.first().getByTestId("assistant-final").innerText(), /Here is what I found/);
      assert.equal(await listed.locator("button.conversation-open").getAttribute("aria-current"), "true");

      // A new conversation, then the old one again from the list.
      await page.getByRole("button", { name: "New conversation" }).click();
      await page.getByTestId("assistant-empty").waitFor();
      await listed.locator("button.conversation-open").click();
      await assertGenieStep(page.getByTestId("assistant-turn").first());
      assert.equal(new URL(page.url()).pathname, `/assistant/${id}`);

      // A follow-up continues the same conversation.
      await ask(page, "Now keep looking");
      const limited = page.getByTestId("assistant-turn").nth(1);
      await limited.getByTestId("assistant-limit").waitFor();
      assert.equal(await limited.getByTestId("assistant-limit").getAttribute("data-limit"), "max_steps");
      assert.ok((await limited.locator("[data-testid=assistant-step][data-tool=list_tables]").count()) >= 1);
      assert.equal(new URL(page.url()).pathname, `/assistant/${id}`);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test("bob's tool error is shown as a step, and alice's conversation is not his", async () => {
    const alice = await pageAs(chrome.browser, "alice");
    const bob = await pageAs(chrome.browser, "bob");
    try {
      // Alice starts a conversation.
      await alice.page.goto(`${BASE_URL}/assistant`);
      await ask(alice.page, "Which products do we sell?");
      await alice.page.getByTestId("assistant-answer").and(alice.page.locator("[data-state=done]")).waitFor();
      const id = new URL(alice.page.url()).pathname.split("/").at(-1) ?? "";
      assert.match(id, UUID);

      // Bob asks about orders, which he may not read: Genie's failure is the step's result.
      await bob.page.goto(`${BASE_URL}/assistant`);
      await ask(bob.page, "How many orders are there?");
      const turn = bob.page.getByTestId("assistant-turn").last();
      await turn.getByTestId("assistant-answer").and(bob.page.locator("[data-state=done]")).waitFor();
      const step = turn.locator("[data-testid=assistant-step][data-tool=ask_genie]");
      assert.equal(await step.getAttribute("data-state"), "failed");
      const error = step.getByTestId("assistant-step-error");
      await error.getByText("GENIE_MESSAGE_FAILED").waitFor();
      assert.match(await error.innerText(), /Genie said: .*orders/);
      assert.equal(await turn.getByTestId("data-grid").count(), 0);
      await shot(bob.page, "assistant-tool-error");

      // Alice's conversation is neither in bob's list nor readable at its address.
      assert.equal(await bob.page.locator(`[data-conversation-id="${id}"]`).count(), 0);
      await bob.page.goto(`${BASE_URL}/assistant/${id}`);
      const alert = bob.page.getByTestId("assistant-chat").getByRole("alert");
      assert.equal(await alert.getAttribute("data-error-code"), "CONVERSATION_NOT_FOUND");
      assert.deepEqual(alice.errors, []);
      assert.deepEqual(bob.errors, []);
    } finally {
      await alice.context.close();
      await bob.context.close();
    }
  });
});
