// End-to-end tests of the web UI against a running `dbapp dev` (BASE_URL), in headless Chromium.
// Run with e2e/run.sh, which starts the server. Screenshots go to e2e/screenshots/.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { BASE_URL, EMULATOR_URL, injectFault, launch, pageAs, shot, switchUser } from "./browser.mjs";

/** @type {Awaited<ReturnType<typeof launch>>} */
let chrome;
before(async () => {
  chrome = await launch();
});
after(async () => {
  await chrome?.close();
});

const run = `${Date.now().toString(36)}`;

/** @typedef {{ url: string, type: string, text: string }} Beacon */

describe("pages", () => {
  test("every page loads with its content, as alice", async () => {
    const { page, context, errors } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/`);
      await page.getByTestId("overview-identity").getByText("alice@example.com").first().waitFor();
      await page.getByTestId("overview-workspace").waitFor();
      await page.getByTestId("overview-workspace").getByText("yes").waitFor();
      await shot(page, "overview");

      await page.getByRole("link", { name: "Unity Catalog" }).click();
      await page.getByTestId("catalog-list").getByRole("link").first().waitFor();
      await shot(page, "catalog");

      await page.getByRole("link", { name: "Queries" }).click();
      await page.getByTestId("query-list").getByRole("link").first().waitFor();
      await shot(page, "queries");

      await page.getByRole("link", { name: "Model Serving" }).click();
      await page.getByTestId("endpoint-list").getByRole("link").first().waitFor();
      await page.getByTestId("history").waitFor();
      await shot(page, "serving");

      await page.getByRole("link", { name: "Preferences" }).click();
      await page.getByRole("heading", { name: "Settings" }).waitFor();
      await page.getByTestId("prefs-advanced").locator("summary").click();
      await page.getByRole("heading", { name: "Your preferences" }).waitFor();
      await page.locator("[data-testid=prefs-table], [data-testid=prefs-empty]").first().waitFor();
      await shot(page, "preferences");

      await page.getByRole("link", { name: "Admin metrics" }).click();
      await page.getByRole("heading", { name: "Admin metrics" }).waitFor();
      await page.locator("[data-testid=admin-required], [data-testid=admin-dashboard]").first().waitFor();

      await page.goto(`${BASE_URL}/no/such/page`);
      await page.getByRole("heading", { name: "Page not found" }).waitFor();
      assert.deepEqual(errors, [], "no uncaught errors in the page");
    } finally {
      await context.close();
    }
  });
});

describe("usage events", () => {
  test("page views and clicks are batched and sent with sendBeacon on page hide", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/`);
      await page.getByTestId("overview-identity").waitFor();
      await page.getByRole("link", { name: "Model Serving" }).click();
      await page.getByTestId("endpoint-list").waitFor();
      // Record what goes through sendBeacon (Chromium does not expose a beacon's body).
      await page.evaluate(() => {
        const w = /** @type {Window & { __beacons?: Beacon[] }} */ (window);
        const beacons = /** @type {Beacon[]} */ ([]);
        w.__beacons = beacons;
        const original = navigator.sendBeacon.bind(navigator);
        navigator.sendBeacon = (url, data) => {
          if (data instanceof Blob) void data.text().then((text) => beacons.push({ url: String(url), type: data.type, text }));
          return original(url, data);
        };
      });
      const sent = page.waitForRequest(
        (r) => r.url().endsWith("/api/v1/metrics/usage-events") && r.method() === "POST",
      );
      await page.evaluate(() => window.dispatchEvent(new Event("pagehide")));
      const request = await sent;
      await page.waitForFunction(() => /** @type {Window & { __beacons?: Beacon[] }} */ (window).__beacons?.length);
      const beacons = await page.evaluate(() => /** @type {Window & { __beacons?: Beacon[] }} */ (window).__beacons ?? []);
      const beacon = beacons[0];
      assert.ok(beacon);
      assert.match(beacon.type, /^text\/plain/);
      const body = JSON.parse(beacon.text);
      const kinds = body.events.map((/** @type {{event_type: string}} */ e) => e.event_type);
      assert.ok(kinds.includes("page_view"), `page views sent: ${kinds}`);
      assert.ok(kinds.includes("click"), `clicks sent: ${kinds}`);
      const response = await request.response();
      assert.equal(response?.status(), 202);
    } finally {
      await context.close();
    }
  });
});

describe("unity catalog", () => {
  /**
   * @param {string} user
   * @returns {Promise<string[]>}
   */
  async function catalogsOf(user) {
    const { page, context } = await pageAs(chrome.browser, user);
    try {
      await page.goto(`${BASE_URL}/catalog`);
      const list = page.getByTestId("catalog-list");
      await list.getByRole("link").first().waitFor();
      const names = await list.locator("[data-name]").evaluateAll((els) => els.map((e) => e.getAttribute("data-name") ?? ""));
      await shot(page, `catalog-${user}`);
      return names.sort();
    } finally {
      await context.close();
    }
  }

  test("switching users changes what the catalog shows", async () => {
    assert.deepEqual(await catalogsOf("alice"), ["main", "samples"]);
    assert.deepEqual(await catalogsOf("bob"), ["main"]);
  });

  test("the switcher changes the user in place", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/catalog/main`);
      await page.getByTestId("schema-list").locator("[data-name=sales]").waitFor();
      await switchUser(page, "bob");
      await page.getByTestId("schema-list").locator("[data-name=default]").waitFor();
      assert.equal(await page.getByTestId("schema-list").locator("[data-name=sales]").count(), 0);
    } finally {
      await context.close();
    }
  });

  test("a slow call shows a loading state; an error shows its message and correlation id", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      // Hold the catalog list back for a while: the loading state stays until it arrives.
      await page.route("**/api/unity-catalog/catalogs?*", async (route) => {
        await new Promise((r) => setTimeout(r, 1500));
        await route.continue();
      });
      await page.goto(`${BASE_URL}/catalog`);
      await page.getByRole("status").filter({ hasText: "Loading catalogs" }).waitFor();
      await page.getByTestId("catalog-list").locator("[data-name=main]").waitFor();
      assert.equal(await page.getByRole("status").filter({ hasText: "Loading catalogs" }).count(), 0);

      await page.goto(`${BASE_URL}/catalog/no_such_catalog`);
      const alert = page.getByRole("alert");
      await alert.waitFor();
      assert.equal(await alert.getAttribute("data-error-code"), "CATALOG_NOT_FOUND");
      assert.match((await alert.getByTestId("correlation-id").textContent()) ?? "", /^[A-Za-z0-9._:-]{8,}$/);
      await shot(page, "catalog-error");
    } finally {
      await context.close();
    }
  });

  test("navigate, search and preview main.default.customers with NULLs", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/catalog`);
      await page.getByTestId("catalog-list").locator("[data-name=main]").click();
      await page.getByTestId("schema-list").locator("[data-name=default]").click();
      await page.getByRole("searchbox", { name: "Search tables" }).fill("cust");
      await page.getByTestId("table-list").locator("[data-name=customers]").click();
      await page.getByRole("heading", { name: "main.default.customers" }).waitFor();
      const columns = page.getByTestId("columns-table");
      await columns.getByText("lifetime_value").waitFor();
      const grid = page.getByTestId("data-grid");
      await grid.waitFor();
      const nulls = grid.locator("td[data-column=lifetime_value] .cell-null");
      assert.ok((await nulls.count()) >= 1, "lifetime_value shows at least one NULL on the first page");
      assert.equal(await nulls.first().innerText(), "NULL");
      assert.equal(await grid.locator("tbody tr").count(), 10);
      const firstIds = await grid.locator("td[data-column=id]").allInnerTexts();
      await shot(page, "table-preview");
      await page.getByRole("button", { name: "Next" }).click();
      await page.getByTestId("pager-range").getByText("11–20").waitFor();
      const nextIds = await grid.locator("td[data-column=id]").allInnerTexts();
      assert.notDeepEqual(nextIds, firstIds, "the next page shows other rows");
    } finally {
      await context.close();
    }
  });
});

describe("model serving", () => {
  test("invoke echo and see it in the history", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/serving`);
      const list = page.getByTestId("endpoint-list");
      await list.locator("[data-name=echo] [data-state=READY]").waitFor();
      await list.locator("[data-name=not-ready] [data-state=NOT_READY]").waitFor();

      await list.locator("[data-name=echo]").click();
      const form = page.getByTestId("invoke-form");
      const inputs = form.getByLabel("Inputs (JSON)");
      await inputs.waitFor();
      assert.notEqual((await inputs.inputValue()).trim(), "", "prefilled from the example");
      await inputs.fill("{ not json");
      await form.getByText("Invalid JSON").waitFor();
      assert.equal(await form.getByRole("button", { name: "Invoke" }).isDisabled(), true);
      await inputs.fill(JSON.stringify({ text: `hello ${run}` }));
      await form.getByRole("button", { name: "Invoke" }).click();
      const response = page.getByTestId("response-panel");
      // The request id is a technical detail, folded away but in the page.
      const echoId = ((await response.getByTestId("request-id").textContent()) ?? "").trim();
      assert.match(echoId, /^[0-9a-f-]{36}$/);
      assert.match(await response.getByTestId("predictions").innerText(), new RegExp(`hello ${run}`));
      const echoRow = page.getByTestId("history").locator(`tr[data-endpoint=echo][data-request-id="${echoId}"]`);
      await echoRow.waitFor();
      // Expand the row: its inputs and predictions appear.
      await echoRow.getByRole("button").click();
      await page.getByTestId("history").locator("tr.history-detail").getByText(`hello ${run}`).first().waitFor();
      await shot(page, "serving-echo");
    } finally {
      await context.close();
    }
  });

  test("chat turns are kept in a conversation: continue, reopen, rename, delete", async () => {
    const { page, context, errors } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/serving/chat`);
      const log = page.getByTestId("chat-log");
      const answers = log.locator("[data-role=assistant]");
      await page.getByTestId("chat-input").fill(`first ${run}`);
      await page.getByRole("button", { name: "Send" }).click();
      await answers.nth(0).and(page.locator("[data-status=done]")).waitFor();
      assert.equal(await answers.nth(0).locator(".markdown").innerText(), `You said: first ${run}`);
      await page.waitForFunction(() => document.querySelector("[data-testid=chat-log]")?.getAttribute("data-conversation-id"));
      const id = await log.getAttribute("data-conversation-id");
      assert.match(id ?? "", /^[0-9a-f-]{36}$/);

      // The next message continues the same conversation (Enter sends).
      await page.getByTestId("chat-input").fill(`second ${run}`);
      await page.getByTestId("chat-input").press("Enter");
      await answers.nth(1).and(page.locator("[data-status=done]")).waitFor();
      assert.equal(await answers.nth(1).locator(".markdown").innerText(), `You said: second ${run}`);
      assert.equal(await log.getAttribute("data-conversation-id"), id);

      const item = page.getByTestId("conversation-list").locator(`[data-conversation-id="${id}"]`);
      await item.getByText(`first ${run}`).waitFor();
      await shot(page, "chat");

      // A new conversation empties the log; the list opens the old one again, with its history.
      await page.getByRole("button", { name: "New conversation" }).click();
      assert.equal(await answers.count(), 0);
      assert.equal(await log.getAttribute("data-conversation-id"), null);
      await item.getByRole("button", { name: new RegExp(`^first ${run}`) }).click();
      await answers.nth(1).waitFor();
      assert.equal(await log.getAttribute("data-conversation-id"), id);
      assert.deepEqual(await log.locator("[data-role=user]").allInnerTexts(), [`first ${run}`, `second ${run}`]);

      // Rename, then delete.
      await item.getByRole("button", { name: /^Rename/ }).click();
      await item.getByLabel("New title").fill(`renamed ${run}`);
      await item.getByRole("button", { name: "Save" }).click();
      await item.getByText(`renamed ${run}`).waitFor();
      await item.getByRole("button", { name: `Delete renamed ${run}` }).click();
      await item.getByRole("button", { name: `Confirm delete renamed ${run}` }).click();
      await item.waitFor({ state: "detached" });
      assert.equal(await answers.count(), 0, "deleting the open conversation empties the log");
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test("a streamed answer appears progressively, and Stop cancels it", { skip: !EMULATOR_URL && "EMULATOR_URL not set" }, async () => {
    // Every chunk of the chat endpoint's streamed answers comes 150 ms after the one before.
    const removeFault = await injectFault({ path: "/serving-endpoints/chat/*", chunk_latency_ms: 150 });
    const { page, context, errors } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/serving/chat`);
      const log = page.getByTestId("chat-log");
      await log.waitFor();
      // Record the answer's text on every change of the log.
      await page.evaluate(() => {
        const w = /** @type {Window & { __renders?: string[] }} */ (window);
        const renders = /** @type {string[]} */ ([]);
        w.__renders = renders;
        const target = /** @type {Element} */ (document.querySelector("[data-testid=chat-log]"));
        new MutationObserver(() => {
          const answers = target.querySelectorAll("[data-role=assistant] .markdown");
          const last = answers[answers.length - 1];
          if (last && renders[renders.length - 1] !== last.textContent) renders.push(last.textContent ?? "");
        }).observe(target, { subtree: true, childList: true, characterData: true });
      });
      const words = "one two three four five six seven eight";
      await page.getByTestId("chat-input").fill(words);
      await page.getByRole("button", { name: "Send" }).click();
      await page.getByRole("button", { name: "Stop" }).waitFor();
      const answer = log.locator("[data-role=assistant]").last();
      await answer.and(page.locator("[data-status=done]")).waitFor();
      const final = `You said: ${words}`;
      assert.equal(await answer.locator(".markdown").innerText(), final);
      const renders = await page.evaluate(() => /** @type {Window & { __renders?: string[] }} */ (window).__renders ?? []);
      const intermediate = renders.filter((r) => r.length > 0 && r.length < final.length);
      assert.ok(intermediate.length >= 2, `at least two renders before the end: ${JSON.stringify(renders)}`);
      for (const r of intermediate) assert.ok(final.startsWith(r), `each render is a prefix of the answer: ${r}`);
      const lengths = renders.map((r) => r.length);
      assert.deepEqual(lengths, [...lengths].sort((a, b) => a - b), "the text only grows");

      // A long answer, stopped after its first words: it stops growing, stays, marked stopped.
      const long = Array.from({ length: 60 }, (_, i) => `word${i}`).join(" ");
      await page.getByTestId("chat-input").fill(long);
      await page.getByRole("button", { name: "Send" }).click();
      const stopped = log.locator("[data-role=assistant]").last();
      await page.waitForFunction(() => {
        const answers = document.querySelectorAll("[data-testid=chat-log] [data-role=assistant]");
        return (answers[answers.length - 1]?.textContent ?? "").includes("word1");
      });
      await page.getByRole("button", { name: "Stop" }).click();
      await stopped.and(page.locator("[data-status=stopped]")).waitFor();
      const atStop = await stopped.locator(".markdown").innerText();
      await page.waitForTimeout(1000);
      assert.equal(await stopped.locator(".markdown").innerText(), atStop, "no text after Stop");
      assert.ok(atStop.length < `You said: ${long}`.length, "the answer was cut");
      await stopped.getByText("Stopped").waitFor();
      await shot(page, "chat-stopped");

      // Ready for the next message, in the same conversation; the stopped turn is in its history.
      const id = await log.getAttribute("data-conversation-id");
      await page.getByTestId("chat-input").fill("after stop");
      await page.getByRole("button", { name: "Send" }).click();
      await log.locator("[data-role=assistant]").last().and(page.locator("[data-status=done]")).waitFor();
      assert.equal(await log.getAttribute("data-conversation-id"), id);
      assert.deepEqual(errors, []);
    } finally {
      await removeFault();
      await context.close();
    }
  });

  test("a stream that fails shows its code and correlation id, and keeps the partial answer", { skip: !EMULATOR_URL && "EMULATOR_URL not set" }, async () => {
    const removeFault = await injectFault({
      path: "/serving-endpoints/chat/*",
      error_after_chunks: 3,
      error_code: "INTERNAL_ERROR",
      message: "the model fell over",
    });
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/serving/chat`);
      await page.getByTestId("chat-input").fill("please fail after a few words of the answer");
      await page.getByRole("button", { name: "Send" }).click();
      const answer = page.getByTestId("chat-log").locator("[data-role=assistant]").last();
      await answer.and(page.locator("[data-status=failed]")).waitFor();
      assert.match(await answer.locator(".markdown").innerText(), /^You/, "the text before the error stays");
      const alert = answer.getByRole("alert");
      // The endpoint's error event is relayed as the API's envelope.
      assert.equal(await alert.getAttribute("data-error-code"), "MODEL_ERROR");
      await alert.getByText("the model fell over").waitFor();
      assert.match((await alert.getByTestId("correlation-id").textContent()) ?? "", /\S{8,}/);
      await shot(page, "chat-failed");
      // The input is usable again.
      assert.equal(await page.getByRole("button", { name: "Send" }).isVisible(), true);
    } finally {
      await removeFault();
      await context.close();
    }
  });

  test("answers are Markdown, but HTML in them is shown as text; copy buttons copy", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice", { permissions: ["clipboard-read", "clipboard-write"] });
    try {
      await page.goto(`${BASE_URL}/serving/chat`);
      const message = "<img src=x onerror=\"window.__xss=1\"> <b>bold</b> **strong** `code`";
      await page.getByTestId("chat-input").fill(message);
      await page.getByRole("button", { name: "Send" }).click();
      const answer = page.getByTestId("chat-log").locator("[data-role=assistant]").last();
      await answer.and(page.locator("[data-status=done]")).waitFor();
      const md = answer.locator(".markdown");
      const text = await md.innerText();
      assert.ok(text.includes('<img src=x onerror="window.__xss=1">'), `the tag is text: ${text}`);
      assert.ok(text.includes("<b>bold</b>"), `the tag is text: ${text}`);
      assert.equal(await md.locator("img, b, script").count(), 0, "no HTML element from the answer");
      assert.equal(await md.locator("strong").innerText(), "strong", "Markdown is rendered");
      assert.equal(await md.locator("code").innerText(), "code");
      assert.equal(await page.evaluate(() => /** @type {Window & { __xss?: number }} */ (window).__xss), undefined);

      await answer.getByRole("button", { name: "Copy answer" }).click();
      await answer.getByRole("button", { name: "Copy answer" }).and(page.locator("[data-copy-state=copied]")).waitFor();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `You said: ${message}`);

      // A fenced code block has its own copy button.
      await page.getByTestId("chat-input").fill("see:\n```\nlet x = 1;\n```");
      await page.getByRole("button", { name: "Send" }).click();
      const code = page.getByTestId("chat-log").locator("[data-role=assistant]").last();
      await code.and(page.locator("[data-status=done]")).waitFor();
      await code.locator("pre").waitFor();
      await code.getByRole("button", { name: "Copy code" }).click();
      await code.getByRole("button", { name: "Copy code" }).and(page.locator("[data-copy-state=copied]")).waitFor();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), "let x = 1;\n");
      await shot(page, "chat-markdown");
    } finally {
      await context.close();
    }
  });

  test("the chat works at phone width in dark mode", async () => {
    const { page, context, errors } = await pageAs(chrome.browser, "alice", {
      viewport: { width: 390, height: 800 },
      colorScheme: "dark",
      isMobile: true,
      hasTouch: true,
    });
    try {
      await page.goto(`${BASE_URL}/serving/chat`);
      await page.waitForFunction(() => document.documentElement.dataset.theme === "dark");
      const long = `a-very-long-word-${"x".repeat(120)} and a table\n\n| a | b |\n|---|---|\n| 1 | 2 |`;
      await page.getByTestId("chat-input").fill(long);
      await page.getByRole("button", { name: "Send" }).click();
      const answer = page.getByTestId("chat-log").locator("[data-role=assistant]").last();
      await answer.and(page.locator("[data-status=done]")).waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scroll (${overflow} px too wide)`);
      for (const el of [page.getByTestId("chat-input"), page.getByRole("button", { name: "Send" })]) {
        await el.scrollIntoViewIfNeeded();
        const box = await el.boundingBox();
        assert.ok(box && box.x >= 0 && box.x + box.width <= 390 && box.width >= 40, `inside the screen: ${JSON.stringify(box)}`);
      }
      const inputBox = await page.getByTestId("chat-input").boundingBox();
      assert.ok(inputBox && inputBox.width >= 200, "the input keeps most of the width");
      await shot(page, "chat-phone-dark");
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test("an endpoint that is not ready is flagged and cannot be invoked", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/serving/not-ready`);
      const notice = page.getByTestId("endpoint-not-ready");
      await notice.getByText("This endpoint is not ready.").waitFor();
      assert.equal(await notice.getAttribute("data-state"), "NOT_READY");
      const invoke = page.getByTestId("invoke-form").getByRole("button", { name: "Invoke" });
      assert.equal(await invoke.isDisabled(), true, "Invoke is turned off while the endpoint is not ready");
      await shot(page, "serving-not-ready");

      // A ready endpoint has no warning.
      await page.getByTestId("endpoint-list").locator("[data-name=echo]").click();
      await page.getByTestId("invoke-form").getByRole("button", { name: "Invoke" }).waitFor();
      assert.equal(await page.getByTestId("endpoint-not-ready").count(), 0);
    } finally {
      await context.close();
    }
  });

  test("an endpoint that stopped being ready after the page loaded shows the server's error and correlation id", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      // The page believes the endpoint is ready (as it would have been when it loaded).
      await page.route("**/api/model-serving/endpoints/not-ready", async (route) => {
        const response = await route.fetch();
        const body = await response.json();
        await route.fulfill({ response, json: { ...body, state: "READY" } });
      });
      await page.goto(`${BASE_URL}/serving/not-ready`);
      await page.getByTestId("invoke-form").getByRole("button", { name: "Invoke" }).click();
      const alert = page.getByTestId("response-panel").getByRole("alert");
      await alert.waitFor();
      assert.equal(await alert.getAttribute("data-error-code"), "ENDPOINT_NOT_READY");
      assert.match((await alert.getByTestId("correlation-id").textContent()) ?? "", /\S{8,}/);

      // A model that fails: MODEL_ERROR, and the failure is in the history too.
      await page.getByTestId("endpoint-list").locator("[data-name=broken]").click();
      await page.getByTestId("invoke-form").getByRole("button", { name: "Invoke" }).click();
      const failed = page.getByTestId("response-panel").getByRole("alert");
      await failed.waitFor();
      assert.equal(await failed.getAttribute("data-error-code"), "MODEL_ERROR");
      await page.getByTestId("history").locator("tr[data-endpoint=broken]").getByText("error").first().waitFor();
      await shot(page, "serving-error");
    } finally {
      await context.close();
    }
  });
});

describe("preferences", () => {
  test("create, edit and delete; another user cannot see it", async () => {
    const key = `e2e.${run}`;
    const alice = await pageAs(chrome.browser, "alice");
    const bob = await pageAs(chrome.browser, "bob");
    try {
      const page = alice.page;
      await page.goto(`${BASE_URL}/preferences`);
      await page.getByTestId("prefs-advanced").locator("summary").click();
      await page.getByRole("button", { name: "New preference" }).click();
      const editor = page.getByTestId("pref-editor");
      await editor.getByLabel("Key").fill("Bad Key");
      await editor.getByText("Lower-case letter first").waitFor();
      await editor.getByLabel("Key").fill(key);
      await editor.getByLabel("Value (JSON)").fill('{"size": 1,');
      assert.equal(await editor.getByRole("button", { name: "Save" }).isDisabled(), true);
      await editor.getByLabel("Value (JSON)").fill('{"size": 1}');
      await editor.getByRole("button", { name: "Save" }).click();
      const row = page.locator(`tr[data-key="${key}"]`);
      await row.getByText('{"size":1}').waitFor();

      await row.getByRole("button", { name: `Edit ${key}` }).click();
      await page.getByTestId("pref-editor").getByLabel("Value (JSON)").fill('{"size": 2}');
      await page.getByTestId("pref-editor").getByRole("button", { name: "Save" }).click();
      await row.getByText('{"size":2}').waitFor();
      await shot(page, "preferences-edited");

      await bob.page.goto(`${BASE_URL}/preferences`);
      await bob.page.getByTestId("prefs-advanced").locator("summary").click();
      await bob.page.locator("[data-testid=prefs-table], [data-testid=prefs-empty]").first().waitFor();
      assert.equal(await bob.page.locator(`tr[data-key="${key}"]`).count(), 0, "bob cannot see alice's preference");

      await row.getByRole("button", { name: `Delete ${key}` }).click();
      await row.getByRole("button", { name: `Confirm delete ${key}` }).click();
      await row.waitFor({ state: "detached" });
    } finally {
      await alice.context.close();
      await bob.context.close();
    }
  });

  test("the theme preference switches light and dark", async () => {
    const { page, context } = await pageAs(chrome.browser, "bob");
    try {
      await page.goto(`${BASE_URL}/preferences`);
      await page.getByTestId("prefs-advanced").locator("summary").click();
      await page.getByRole("button", { name: "New preference" }).click();
      const editor = page.getByTestId("pref-editor");
      await editor.getByLabel("Key").fill("theme");
      // A bare word is not JSON: the hint says how to write it.
      await editor.getByLabel("Value (JSON)").fill("dark");
      await editor.getByText('Not valid JSON — to save text, wrap it in quotes: "dark"').waitFor();
      assert.equal(await editor.getByRole("button", { name: "Save" }).isDisabled(), true);
      await editor.getByLabel("Value (JSON)").fill('"dark"');
      await editor.getByRole("button", { name: "Save" }).click();
      await page.waitForFunction(() => document.documentElement.dataset.theme === "dark");
      await page.reload();
      await page.waitForFunction(() => document.documentElement.dataset.theme === "dark");
      await page.getByTestId("prefs-advanced").locator("summary").click();
      await page.locator('tr[data-key="theme"]').waitFor();
      await shot(page, "preferences-dark");
      await page.goto(`${BASE_URL}/serving/echo`);
      await page.getByTestId("invoke-form").waitFor();
      await page.getByTestId("endpoint-list").waitFor();
      await shot(page, "serving-dark");
      await page.getByRole("button", { name: /Switch to light theme/ }).click();
      await page.waitForFunction(() => document.documentElement.dataset.theme === "light");
      await page.goto(`${BASE_URL}/preferences`);
      // The settings' radio buttons show what the header's button saved.
      assert.equal(await page.getByTestId("pref-settings").getByRole("radio", { name: /^Light/ }).isChecked(), true);
      await page.getByTestId("prefs-advanced").locator("summary").click();
      await page.locator('tr[data-key="theme"]').getByText('"light"').waitFor();
    } finally {
      await context.close();
    }
  });
});

describe("admin metrics", () => {
  test("renders charts for admin", async () => {
    const { page, context } = await pageAs(chrome.browser, "admin");
    try {
      await page.goto(`${BASE_URL}/admin`);
      const dash = page.getByTestId("admin-dashboard");
      await dash.waitFor();
      for (const title of ["Latency over time", "Error rate over time", "Requests by route", "Usage by event type", "Top pages"]) {
        await dash.locator(`figure[data-chart="${title}"]`).waitFor();
      }
      assert.ok((await dash.locator("figure.chart svg").count()) >= 3, "at least three charts drawn");
      await page.getByRole("radio", { name: "7d" }).click();
      await page.waitForFunction(() => document.querySelector("[aria-checked=true]")?.textContent === "7d");
      await dash.locator("figure.chart svg").first().waitFor();
      await page.getByRole("radio", { name: "24h" }).click();
      await shot(page, "admin");
    } finally {
      await context.close();
    }
  });

  test("is refused for bob with a clear message", async () => {
    const { page, context } = await pageAs(chrome.browser, "bob");
    try {
      await page.goto(`${BASE_URL}/admin`);
      const notice = page.getByTestId("admin-required");
      await notice.waitFor();
      assert.equal(await notice.getAttribute("data-error-code"), "ADMIN_REQUIRED");
      await notice.getByText("bob@example.com").waitFor();
      await shot(page, "admin-refused");
    } finally {
      await context.close();
    }
  });
});

describe("issue 19: content for people", () => {
  test("known preferences have real controls that save proper JSON, and the preview uses them", async () => {
    const { page, context, errors } = await pageAs(chrome.browser, "admin");
    try {
      await page.goto(`${BASE_URL}/preferences`);
      const settings = page.getByTestId("pref-settings");
      await settings.getByRole("radio", { name: /^Dark/ }).check();
      await settings.getByLabel("Rows per page in table previews").fill("5");
      await settings.getByLabel("Model Serving opens").locator("option[value=echo]").waitFor({ state: "attached" });
      await settings.getByLabel("Model Serving opens").selectOption("echo");
      await settings.getByRole("button", { name: "Save settings" }).click();
      await settings.getByTestId("pref-settings-saved").waitFor();
      await page.waitForFunction(() => document.documentElement.dataset.theme === "dark");
      // Stored as JSON values: a string and a number.
      await page.getByTestId("prefs-advanced").locator("summary").click();
      await page.locator('tr[data-key="theme"]').getByText('"dark"').waitFor();
      await page.locator('tr[data-key="preview.page_size"]').getByText("5", { exact: true }).waitFor();
      await page.locator('tr[data-key="serving.default_endpoint"]').getByText('"echo"').waitFor();
      await shot(page, "preferences-settings");

      // A number out of range cannot be saved.
      await settings.getByLabel("Rows per page in table previews").fill("1000");
      assert.equal(await settings.getByRole("button", { name: "Save settings" }).isDisabled(), true);

      // The table preview shows the chosen number of rows.
      await page.goto(`${BASE_URL}/catalog/main/default/customers`);
      const grid = page.getByTestId("data-grid");
      await grid.waitFor();
      assert.equal(await grid.locator("tbody tr").count(), 5);

      // Model Serving opens the default endpoint when none is chosen.
      await page.goto(`${BASE_URL}/serving`);
      await page.getByRole("heading", { name: "echo", exact: true }).waitFor();
      await page.getByTestId("invoke-form").waitFor();

      // "System" follows the browser (light in these tests).
      await page.goto(`${BASE_URL}/preferences`);
      await settings.getByRole("radio", { name: /^System/ }).check();
      await settings.getByLabel("Rows per page in table previews").fill("10");
      await settings.getByLabel("Model Serving opens").selectOption("");
      await settings.getByRole("button", { name: "Save settings" }).click();
      await settings.getByTestId("pref-settings-saved").waitFor();
      await page.waitForFunction(() => document.documentElement.dataset.theme === "light");
      // No default endpoint is no preference at all.
      await page.getByTestId("prefs-advanced").locator("summary").click();
      await page.locator('tr[data-key="theme"]').getByText('"system"').waitFor();
      assert.equal(await page.locator('tr[data-key="serving.default_endpoint"]').count(), 0);
      await page.goto(`${BASE_URL}/serving`);
      await page.getByText("Choose an endpoint to invoke it.").waitFor();
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test("a denied schema is one error that names the privilege, without Try again", async () => {
    const { page, context, errors } = await pageAs(chrome.browser, "bob");
    try {
      // bob may use catalog main but not its schema sales: the list, the volumes, the table and
      // its preview would all fail the same way.
      await page.goto(`${BASE_URL}/catalog/main/sales/orders`);
      const blocked = page.getByTestId("catalog-blocked");
      await blocked.waitFor();
      const alerts = page.getByRole("alert");
      assert.equal(await alerts.count(), 1, "one error panel");
      assert.equal(await alerts.getAttribute("data-error-code"), "PERMISSION_DENIED");
      await alerts.getByText("You do not have the USE SCHEMA privilege on schema main.sales.").waitFor();
      await alerts.getByTestId("error-grant").getByText("USE SCHEMA").waitFor();
      assert.equal(await page.getByRole("button", { name: "Try again" }).count(), 0, "a denial is not retried");
      // The correlation id is kept, folded under Technical details.
      assert.equal(await alerts.getByTestId("correlation-id").isVisible(), false);
      await alerts.getByText("Technical details").click();
      assert.match(await alerts.getByTestId("correlation-id").innerText(), /^[A-Za-z0-9._:-]{8,}$/);
      await shot(page, "catalog-denied");

      // A catalog bob may not use: one panel too, naming USE CATALOG.
      await page.goto(`${BASE_URL}/catalog/samples`);
      await blocked.getByText("USE CATALOG").first().waitFor();
      assert.equal(await page.getByRole("alert").count(), 1);

      // An endpoint that does not exist: one panel, not one for it and one for its schema.
      await page.goto(`${BASE_URL}/serving/no-such-endpoint`);
      // The endpoint's own card answers; once it has, nothing under it is shown.
      const missing = page.locator("section[aria-labelledby=endpoint-h]").getByRole("alert");
      await missing.waitFor();
      assert.equal(await missing.getAttribute("data-error-code"), "ENDPOINT_NOT_FOUND");
      await page.getByTestId("endpoint-list").waitFor();
      assert.equal(await page.getByRole("alert").count(), 1);
      assert.equal(await page.getByRole("button", { name: "Try again" }).count(), 0);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test("a retryable error offers Try again", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      await page.route("**/api/unity-catalog/catalogs?*", (route) =>
        route.fulfill({
          status: 503,
          contentType: "application/json",
          body: JSON.stringify({ error_code: "UPSTREAM_TIMEOUT", message: "The workspace did not answer in time.", correlation_id: "e2e-retry" }),
        }),
      );
      await page.goto(`${BASE_URL}/catalog`);
      const alert = page.getByRole("alert");
      await alert.waitFor();
      assert.equal(await alert.getAttribute("data-error-code"), "UPSTREAM_TIMEOUT");
      await page.unroute("**/api/unity-catalog/catalogs?*");
      await alert.getByRole("button", { name: "Try again" }).click();
      await page.getByTestId("catalog-list").locator("[data-name=main]").waitFor();
    } finally {
      await context.close();
    }
  });

  test("times are measured round trips, never 0.0 ms; ids are technical details", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/serving/echo`);
      const form = page.getByTestId("invoke-form");
      // The endpoint's kind is explained, not a bare "custom".
      const kind = page.locator("[data-kind=custom]");
      await kind.getByText("Custom model").waitFor();
      assert.match((await kind.getAttribute("title")) ?? "", /its own input format/);
      await form.getByLabel("Inputs (JSON)").fill(JSON.stringify({ text: `timing ${run}` }));
      await form.getByRole("button", { name: "Invoke" }).click();
      const response = page.getByTestId("response-panel");
      const roundTrip = await response.getByTestId("round-trip").innerText();
      assert.match(roundTrip, /^(< 1 ms|\d+(\.\d)? ms|\d+\.\d s)$/);
      assert.equal(await response.getByTestId("request-id").isVisible(), false, "the request id is folded away");
      const history = page.getByTestId("history");
      await history.locator("tr[data-endpoint=echo]").first().waitFor();
      const body = await page.locator("main").innerText();
      assert.doesNotMatch(body, /\b0\.0 ms\b/);
      assert.doesNotMatch(body, /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/, "no UUID in plain sight");
      await shot(page, "serving-timing");
    } finally {
      await context.close();
    }
  });

  test("the overview names the workspace by its host, the store, and who runs what", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/`);
      const host = new URL(BASE_URL).host;
      await page.getByTestId("overview-workspace").waitFor();
      // dev's emulator listens on 127.0.0.1: the name is its whole host, not "127".
      const name = await page.getByTestId("workspace-name").innerText();
      assert.match(name, /^127\.0\.0\.1:\d+$/);
      assert.notEqual(name, host, "the emulator's host, not the app's");
      assert.equal(await page.getByTestId("store-kind").innerText(), "SQLite");
      assert.equal(await page.getByTestId("overview-store").getAttribute("data-store-kind"), "sqlite");
      const whom = page.getByTestId("overview-whom");
      await whom.getByText("On your behalf (OBO)").waitFor();
      await whom.getByText(/Stored in SQLite by the app's service principal/).waitFor();
      // Header names and ids are technical details, not in plain sight.
      const body = await page.locator("main").innerText();
      assert.doesNotMatch(body, /X-Forwarded-Access-Token/);
      assert.doesNotMatch(body, /1234567890123456/);
      await shot(page, "overview-content");
    } finally {
      await context.close();
    }
  });
});
