// End-to-end tests of the web UI against a running `dbapp dev` (BASE_URL), in headless Chromium.
// Run with e2e/run.sh, which starts the server. Screenshots go to e2e/screenshots/.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { BASE_URL, launch, pageAs, shot, switchUser } from "./browser.mjs";

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
      await page.getByTestId("overview-auth").getByText("yes").waitFor();
      await shot(page, "overview");

      await page.getByRole("link", { name: "Unity Catalog" }).click();
      await page.getByTestId("catalog-list").getByRole("link").first().waitFor();
      await shot(page, "catalog");

      await page.getByRole("link", { name: "Model Serving" }).click();
      await page.getByTestId("endpoint-list").getByRole("link").first().waitFor();
      await page.getByTestId("history").waitFor();
      await shot(page, "serving");

      await page.getByRole("link", { name: "Preferences" }).click();
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
      assert.match(await alert.getByTestId("correlation-id").innerText(), /^[A-Za-z0-9._:-]{8,}$/);
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
  test("invoke echo and chat, and see both in the history", async () => {
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
      const echoId = (await response.getByTestId("request-id").innerText()).trim();
      assert.match(await response.getByTestId("predictions").innerText(), new RegExp(`hello ${run}`));
      await page.getByTestId("history").locator(`tr[data-endpoint=echo]`).filter({ hasText: echoId }).waitFor();
      await shot(page, "serving-echo");

      await list.locator("[data-name=chat]").click();
      await page.getByTestId("chat-input").fill(`chat ${run}`);
      await page.getByRole("button", { name: "Send" }).click();
      const reply = page.getByTestId("chat-log").locator("[data-role=assistant]").first();
      await reply.waitFor();
      assert.match(await reply.innerText(), new RegExp(run));
      const chatId = (await reply.locator("code").innerText()).trim();
      const history = page.getByTestId("history");
      const chatRow = history.locator("tr[data-endpoint=chat]").filter({ hasText: chatId });
      await chatRow.waitFor();
      await history.locator("tr[data-endpoint=echo]").filter({ hasText: echoId }).waitFor();

      // Expand the chat row: its inputs and predictions appear.
      await chatRow.getByRole("button").click();
      await history.locator("tr.history-detail").getByText(`chat ${run}`).first().waitFor();
      await shot(page, "serving-chat");
    } finally {
      await context.close();
    }
  });

  test("an endpoint that is not ready shows its error and correlation id", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/serving/not-ready`);
      await page.getByTestId("invoke-form").getByRole("button", { name: "Invoke" }).click();
      const alert = page.getByTestId("response-panel").getByRole("alert");
      await alert.waitFor();
      assert.equal(await alert.getAttribute("data-error-code"), "ENDPOINT_NOT_READY");
      assert.match(await alert.getByTestId("correlation-id").innerText(), /\S{8,}/);

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
      await page.getByRole("button", { name: "New preference" }).click();
      const editor = page.getByTestId("pref-editor");
      await editor.getByLabel("Key").fill("theme");
      await editor.getByLabel("Value (JSON)").fill('"dark"');
      await editor.getByRole("button", { name: "Save" }).click();
      await page.waitForFunction(() => document.documentElement.dataset.theme === "dark");
      await page.reload();
      await page.waitForFunction(() => document.documentElement.dataset.theme === "dark");
      await page.locator('tr[data-key="theme"]').waitFor();
      await shot(page, "preferences-dark");
      await page.goto(`${BASE_URL}/serving/echo`);
      await page.getByTestId("invoke-form").waitFor();
      await page.getByTestId("endpoint-list").waitFor();
      await shot(page, "serving-dark");
      await page.getByRole("button", { name: /Switch to light theme/ }).click();
      await page.waitForFunction(() => document.documentElement.dataset.theme === "light");
      await page.goto(`${BASE_URL}/preferences`);
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
