// End-to-end tests of the Genie page against a running `dbapp dev` (BASE_URL), in headless
// Chromium: the emulator's default fixture has the "Sales" space, whose rules answer "products"
// and "how many orders" with SQL, and fail "[fail query]" (docs/emulator.md, Genie). A file of
// its own, so that the time budget run.sh gives each file is not shared. Screenshots go to
// e2e/screenshots/.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { BASE_URL, EMULATOR_URL, launch, pageAs, shot } from "./browser.mjs";

const SALES = "01f0c0ffee5a1e5000000000000000a1";

/** @type {Awaited<ReturnType<typeof launch>>} */
let chrome;
before(async () => {
  chrome = await launch();
});
after(async () => {
  await chrome?.close();
});

/**
 * Sets the emulator's time per Genie status step (`genie_step_ms`, 100 ms by default), when the
 * tests know the emulator.
 * @param {number} ms
 */
async function genieStep(ms) {
  if (!EMULATOR_URL) return;
  const response = await fetch(`${EMULATOR_URL}/_emulator/config`, {
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ genie_step_ms: ms }),
  });
  assert.ok(response.ok, `emulator config: ${response.status}`);
}

/**
 * Opens the Genie page from the navigation and picks the Sales space.
 * @param {import("playwright-core").Page} page
 */
async function openSales(page) {
  await page.goto(`${BASE_URL}/`);
  await page.getByRole("link", { name: "Genie" }).click();
  await page.getByTestId("genie-spaces").locator(`[data-space-id="${SALES}"]`).click();
  await page.getByTestId("genie-chat").getByRole("heading", { name: "Sales" }).waitFor();
}

/**
 * Types a question and sends it with the Ask button.
 * @param {import("playwright-core").Page} page
 * @param {string} question
 */
async function ask(page, question) {
  await page.getByTestId("genie-input").fill(question);
  await page.getByRole("button", { name: "Ask" }).click();
}

describe("genie", () => {
  test("ask a space: the progress, the SQL, the rows and a chart; a follow-up continues the conversation", async () => {
    const { page, context, errors } = await pageAs(chrome.browser, "alice");
    // Slower steps, so that the server's polls see the statuses change.
    await genieStep(300);
    try {
      await openSales(page);
      /** @type {any[]} */
      const asks = [];
      page.on("request", (r) => {
        if (r.method() === "POST" && new URL(r.url()).pathname === `/api/genie/spaces/${SALES}/messages`) {
          asks.push(r.postDataJSON());
        }
      });

      await ask(page, "List the products");
      const answer = page.getByTestId("genie-answer").last();
      await answer.getByTestId("genie-progress").waitFor();
      await page.getByRole("button", { name: "Stop" }).waitFor();
      await answer.getByTestId("genie-progress").filter({ hasText: /Genie is|Waiting for the warehouse|Question sent/ }).waitFor();
      await answer.and(page.locator("[data-state=done]")).waitFor();

      const statuses = await answer.getByTestId("genie-steps").locator("li").evaluateAll((lis) =>
        lis.map((li) => li.getAttribute("data-status")),
      );
      assert.ok(statuses.length >= 2, `the statuses progress: ${statuses.join(", ")}`);
      assert.equal(statuses.at(-1), "COMPLETED");
      assert.equal(await answer.getByTestId("genie-progress").count(), 0, "no progress once answered");

      const sql = answer.getByTestId("genie-sql");
      await sql.getByRole("heading", { name: "Products" }).waitFor();
      assert.match(await sql.locator("pre").innerText(), /SELECT id, name, price, category FROM main\.default\.products/);
      const grid = answer.getByTestId("genie-result").getByTestId("data-grid");
      assert.equal(await grid.locator("tbody tr").count(), 8);
      const headers = await grid.locator("thead th").evaluateAll((ths) => ths.map((th) => th.firstChild?.textContent));
      assert.deepEqual(headers, ["id", "name", "price", "category"]);
      await answer.getByTestId("genie-result").locator("[data-testid=result-chart] svg").waitFor();
      await shot(page, "genie-answer");

      const log = page.getByTestId("genie-log");
      const conversationId = await log.getAttribute("data-conversation-id");
      assert.match(conversationId ?? "", /^[A-Za-z0-9_-]{1,64}$/);
      assert.equal(asks[0]?.conversation_id, undefined, "the first question starts a conversation");

      // The follow-up goes to the same conversation.
      await ask(page, "How many orders are there?");
      const second = page.getByTestId("genie-answer").nth(1);
      await second.and(page.locator("[data-state=done]")).waitFor();
      assert.equal(asks[1]?.conversation_id, conversationId);
      assert.match(await second.getByTestId("genie-sql").locator("pre").innerText(), /COUNT\(\*\)/);
      assert.equal(await second.getByTestId("data-grid").locator("tbody tr").count(), 1);
      assert.equal(await log.getAttribute("data-conversation-id"), conversationId);

      // The conversation is in the caller's list.
      await page.getByTestId("genie-conversations").locator(`[data-conversation-id="${conversationId}"]`).waitFor();
      assert.deepEqual(errors, []);
    } finally {
      await genieStep(100);
      await context.close();
    }
  });

  test("a reopened conversation shows its earlier questions, SQL and rows; Delete asks first, then removes it", async () => {
    const { page, context, errors } = await pageAs(chrome.browser, "alice");
    try {
      await openSales(page);
      await ask(page, "List the products");
      await page.getByTestId("genie-answer").last().and(page.locator("[data-state=done]")).waitFor();
      const log = page.getByTestId("genie-log");
      const conversationId = await log.getAttribute("data-conversation-id");
      assert.ok(conversationId, "the question started a conversation");
      await ask(page, "[fail query] how many orders");
      await page.getByTestId("genie-answer").nth(1).and(page.locator("[data-state=failed]")).waitFor();

      // A reload forgets the log; reopening the conversation loads it from the server.
      await page.reload();
      await page.getByTestId("genie-chat").getByRole("heading", { name: "Sales" }).waitFor();
      const item = page.getByTestId("genie-conversations").locator(`[data-conversation-id="${conversationId}"]`);
      await item.locator(".conversation-open").click();
      const earlier = page.getByTestId("genie-earlier");
      await earlier.nth(1).waitFor();
      assert.equal(await earlier.count(), 2);
      assert.equal(await log.getAttribute("data-conversation-id"), conversationId);
      const first = earlier.first();
      assert.equal(await first.locator(".genie-question").innerText(), "List the products");
      assert.equal(await first.getAttribute("data-state"), "done");
      assert.match(
        await first.getByTestId("genie-sql").locator("pre").innerText(),
        /SELECT id, name, price, category FROM main\.default\.products/,
      );
      const grid = first.getByTestId("genie-result").getByTestId("data-grid");
      assert.equal(await grid.locator("tbody tr").count(), 8);
      // The failed question shows Genie's error type.
      const second = earlier.nth(1);
      assert.equal(await second.locator(".genie-question").innerText(), "[fail query] how many orders");
      assert.equal(await second.getAttribute("data-state"), "failed");
      assert.equal(await second.getByTestId("genie-failure").getAttribute("data-type"), "SQL_EXECUTION_EXCEPTION");
      await shot(page, "genie-history");

      // A follow-up continues the reopened conversation, after its earlier messages.
      const asked = page.waitForRequest((r) => r.method() === "POST" && r.url().endsWith(`/spaces/${SALES}/messages`));
      await ask(page, "How many orders are there?");
      assert.equal((await asked).postDataJSON().conversation_id, conversationId);
      await page.getByTestId("genie-answer").nth(2).and(page.locator("[data-state=done]")).waitFor();
      assert.equal(await earlier.count(), 2, "the history is not loaded again");

      // Delete asks to confirm; Cancel keeps the conversation.
      await item.getByTestId("genie-conversation-delete").click();
      await item.getByTestId("genie-conversation-delete-cancel").click();
      await item.getByTestId("genie-conversation-delete").click();
      const deleted = page.waitForResponse(
        (r) => r.request().method() === "DELETE" && r.url().endsWith(`/conversations/${conversationId}`),
      );
      await item.getByTestId("genie-conversation-delete-confirm").click();
      assert.equal((await deleted).status(), 204);
      await item.waitFor({ state: "detached" });
      // The open conversation was the deleted one: the log starts afresh.
      assert.equal(await log.getAttribute("data-conversation-id"), null);
      assert.equal(await page.getByTestId("genie-answer").count(), 0);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test("a question whose query fails shows the error with its code and correlation id", async () => {
    const { page, context, errors } = await pageAs(chrome.browser, "alice");
    try {
      await openSales(page);
      await ask(page, "[fail query] how many orders");
      const answer = page.getByTestId("genie-answer").last();
      await answer.and(page.locator("[data-state=failed]")).waitFor();
      const alert = answer.getByRole("alert");
      assert.equal(await alert.getAttribute("data-error-code"), "GENIE_MESSAGE_FAILED");
      assert.match((await alert.getByTestId("correlation-id").textContent()) ?? "", /^[A-Za-z0-9._:-]{8,}$/);
      // Genie's own error type (and message) from the error's detail.
      assert.equal(await answer.getByTestId("genie-failure").getAttribute("data-type"), "SQL_EXECUTION_EXCEPTION");
      await shot(page, "genie-failed");

      // The conversation goes on after a failure.
      await ask(page, "What can you do?");
      await page.getByTestId("genie-answer").nth(1).and(page.locator("[data-state=done]")).waitFor();
      await page.getByTestId("genie-answer").nth(1).getByText(/orders and products/).waitFor();
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test("bob sees only his spaces, and Genie cannot show him rows he cannot read", async () => {
    const { page, context, errors } = await pageAs(chrome.browser, "bob");
    try {
      await openSales(page);
      const spaces = page.getByTestId("genie-spaces");
      assert.deepEqual(await spaces.getByRole("link").locator(".name").allInnerTexts(), ["Sales"]);
      // main.sales.orders is not readable by bob: Genie's query fails as him.
      await ask(page, "How many orders are there?");
      const answer = page.getByTestId("genie-answer").last();
      await answer.and(page.locator("[data-state=failed]")).waitFor();
      assert.equal(await answer.getByRole("alert").getAttribute("data-error-code"), "GENIE_MESSAGE_FAILED");
      assert.equal(await answer.getByTestId("genie-failure").getAttribute("data-type"), "SQL_EXECUTION_EXCEPTION");
      assert.equal(await answer.getByTestId("data-grid").count(), 0);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test("Stop ends the wait for an answer", { skip: !EMULATOR_URL && "EMULATOR_URL not set" }, async () => {
    const { page, context, errors } = await pageAs(chrome.browser, "alice");
    await genieStep(2000);
    try {
      await openSales(page);
      await ask(page, "List the products");
      const answer = page.getByTestId("genie-answer").last();
      await answer.getByTestId("genie-progress").waitFor();
      await page.getByRole("button", { name: "Stop" }).click();
      await answer.and(page.locator("[data-state=stopped]")).waitFor();
      await answer.getByText("Stopped").waitFor();
      await page.getByRole("button", { name: "Ask" }).waitFor();
      assert.equal(await answer.getByTestId("genie-sql").count(), 0);
      assert.deepEqual(errors, []);
    } finally {
      await genieStep(100);
      await context.close();
    }
  });

  test("suggested questions are chips that ask the question", async () => {
    const { page, context, errors } = await pageAs(chrome.browser, "alice");
    try {
      // The emulator never suggests questions: this answer is the server's shape, played back.
      const answer = {
        space_id: SALES,
        conversation_id: "c1",
        message_id: "m1",
        status: "COMPLETED",
        text: ["I can answer questions about orders and products."],
        query: null,
        result: null,
        suggested_questions: ["How many orders are there?", "What is the revenue by product?"],
      };
      let played = false;
      await page.route(`**/api/genie/spaces/${SALES}/messages`, async (route) => {
        if (played) return route.continue();
        played = true;
        await route.fulfill({
          status: 200,
          headers: { "Content-Type": "text/event-stream" },
          body:
            `event: status\ndata: {"conversation_id":"c1","message_id":"m1","status":"COMPLETED"}\n\n` +
            `event: message\ndata: ${JSON.stringify(answer)}\n\n` +
            `data: [DONE]\n\n`,
        });
      });
      await openSales(page);
      await ask(page, "What can you do?");
      const first = page.getByTestId("genie-answer").first();
      await first.and(page.locator("[data-state=done]")).waitFor();
      const chips = first.getByTestId("genie-suggestion");
      assert.equal(await chips.count(), 2);
      // "c1" is no conversation of alice's: the follow-up is refused before its stream.
      const request = page.waitForRequest((r) => r.method() === "POST" && r.url().endsWith(`/spaces/${SALES}/messages`));
      await chips.first().click();
      assert.deepEqual((await request).postDataJSON(), { content: "How many orders are there?", conversation_id: "c1" });
      const second = page.getByTestId("genie-answer").nth(1);
      await second.and(page.locator("[data-state=failed]")).waitFor();
      assert.equal(await second.getByRole("alert").getAttribute("data-error-code"), "GENIE_CONVERSATION_NOT_FOUND");
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test("the Genie page works at phone width in dark mode", async () => {
    const { page, context, errors } = await pageAs(chrome.browser, "alice", {
      viewport: { width: 390, height: 800 },
      colorScheme: "dark",
      isMobile: true,
      hasTouch: true,
    });
    try {
      await page.goto(`${BASE_URL}/genie/${SALES}`);
      await page.waitForFunction(() => document.documentElement.dataset.theme === "dark");
      await ask(page, "What is the revenue by product?");
      const answer = page.getByTestId("genie-answer").last();
      await answer.and(page.locator("[data-state=done]")).waitFor();
      await answer.getByTestId("data-grid").waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scroll (${overflow} px too wide)`);
      for (const el of [page.getByTestId("genie-input"), page.getByRole("button", { name: "Ask" })]) {
        await el.scrollIntoViewIfNeeded();
        const box = await el.boundingBox();
        assert.ok(box && box.x >= 0 && box.x + box.width <= 390 && box.width >= 40, `inside the screen: ${JSON.stringify(box)}`);
      }
      await shot(page, "genie-phone-dark");
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
});
