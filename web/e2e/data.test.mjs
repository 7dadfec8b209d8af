// End-to-end tests of the data pages (governed queries, volume files) against a running
// `dbapp dev` (BASE_URL), in headless Chromium. A file of its own, so that the time budget
// run.sh gives each file is not shared with app.test.mjs. Screenshots go to e2e/screenshots/.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { BASE_URL, EMULATOR_URL, launch, pageAs, shot } from "./browser.mjs";

/** @type {Awaited<ReturnType<typeof launch>>} */
let chrome;
before(async () => {
  chrome = await launch();
});
after(async () => {
  await chrome?.close();
});

const run = `${Date.now().toString(36)}`;

/**
 * Fails unless the page is no wider than its viewport (nothing scrolls sideways).
 * @param {import("playwright-core").Page} page
 */
async function assertNoHorizontalScroll(page) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scroll (${overflow} px too wide)`);
}

describe("queries", () => {
  // The repository's queries/orders_per_day.sql: two required dates, one row per day with
  // orders, so more than one page of 10 rows for a year of the fixture's orders.
  const QUERY = "orders_per_day";

  /**
   * Fills the two required dates of orders_per_day.
   * @param {import("playwright-core").Page} page
   */
  async function fillYear(page) {
    await page.locator("input[data-param=start_date]").fill("2026-01-01");
    await page.locator("input[data-param=end_date]").fill("2026-12-31");
  }

  test("run a query: rows, a chart, pages kept in the browser, CSV download", async () => {
    const { page, context, errors } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/`);
      await page.getByRole("link", { name: "Queries" }).click();
      await page.getByTestId("query-list").locator(`[data-name=${QUERY}]`).click();
      const panel = page.getByTestId("query-panel");
      await panel.waitFor();
      await page.getByLabel("Rows per page").selectOption("10");
      await fillYear(page);
      await page.getByRole("button", { name: "Run query" }).click();

      const result = page.getByTestId("query-result");
      const grid = result.getByTestId("data-grid");
      await grid.waitFor();
      assert.equal(await grid.locator("tbody tr").count(), 10);
      await result.locator('[data-testid=result-chart][data-chart-kind=line] figure[data-chart="orders by day"] svg').waitFor();
      await result.getByLabel("Plotted column").selectOption("amount");
      await result.locator('figure[data-chart="amount by day"] svg').waitFor();
      await result.getByTestId("pager-range").getByText(/^1–10/).waitFor();
      const firstPage = await grid.locator("tbody").innerText();
      await shot(page, "query-result");

      await result.getByRole("button", { name: "Next" }).click();
      await result.getByTestId("pager-range").getByText(/^11–/).waitFor();
      assert.notEqual(await grid.locator("tbody").innerText(), firstPage, "the next page shows other rows");

      // Going back shows the page already fetched: no request to the server.
      let runs = 0;
      page.on("request", (r) => {
        if (r.method() === "POST" && new URL(r.url()).pathname.startsWith("/api/queries/")) runs += 1;
      });
      await result.getByRole("button", { name: "Previous" }).click();
      await result.getByTestId("pager-range").getByText(/^1–10/).waitFor();
      assert.equal(await grid.locator("tbody").innerText(), firstPage);
      assert.equal(runs, 0, "the previous page comes from the browser");

      // Running it again within its cache lifetime is answered from the cache.
      await page.getByRole("button", { name: "Run query" }).click();
      await result.getByTestId("cached-badge").waitFor();

      const [download] = await Promise.all([
        page.waitForEvent("download"),
        result.getByRole("button", { name: "Download CSV" }).click(),
      ]);
      assert.equal(download.suggestedFilename(), `${QUERY}.csv`);
      const csv = readFileSync(/** @type {string} */ (await download.path()), "utf8");
      const lines = csv.split("\r\n");
      assert.equal(lines.at(-1), "", "every line ends with CRLF");
      const header = /** @type {string} */ (lines[0]);
      const headers = await grid.locator("thead th").evaluateAll((ths) =>
        ths.map((th) => th.firstChild?.textContent ?? ""),
      );
      assert.equal(header, headers.join(","));
      assert.ok(lines.length - 2 > 10, `the CSV holds every page (${lines.length - 2} rows)`);
      await result.getByTestId("csv-note").waitFor();
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test("a value the server refuses is shown at its field, with the correlation id", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      // top_customers takes `n INT`: a number input accepts 2^40, the server's INT does not.
      await page.goto(`${BASE_URL}/queries/top_customers`);
      const panel = page.getByTestId("query-panel");
      const field = panel.locator("input[data-param=n]");
      await field.fill(String(2 ** 40));
      await page.getByRole("button", { name: "Run query" }).click();
      const alert = panel.getByRole("alert");
      await alert.waitFor();
      assert.equal(await alert.getAttribute("data-error-code"), "INVALID_REQUEST");
      assert.match((await alert.getByTestId("correlation-id").textContent()) ?? "", /^[A-Za-z0-9._:-]{8,}$/);
      await panel.locator("#param-n-error").waitFor();
      assert.equal(await field.getAttribute("aria-invalid"), "true");
      await shot(page, "query-field-error");

      // Corrected, the query runs and the field is no longer marked.
      await field.fill("3");
      await page.getByRole("button", { name: "Run query" }).click();
      await page.getByTestId("query-result").getByTestId("data-grid").locator("tbody tr").nth(2).waitFor();
      assert.equal(await field.getAttribute("aria-invalid"), null);
    } finally {
      await context.close();
    }
  });

  test("while the warehouse starts, the run shows progress and can be cancelled", { skip: !EMULATOR_URL && "EMULATOR_URL not set" }, async () => {
    /**
     * @param {string} path
     * @param {unknown} body
     */
    const control = async (path, body) => {
      const response = await fetch(`${EMULATOR_URL}/_emulator/${path}`, {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      assert.ok(response.ok, `emulator ${path}: ${response.status}`);
    };
    const { page, context, errors } = await pageAs(chrome.browser, "alice");
    try {
      await control("config", { warehouse_start_ms: 4000 });
      await control("warehouses/dev-warehouse", { state: "STOPPED" });
      await page.goto(`${BASE_URL}/queries/product_price_bands`);
      // A minimum price no other test uses, so the result is not in the cache.
      const price = page.locator("input[data-param=min_price]");
      await price.fill(`0.${String(Date.now() % 97).padStart(2, "0")}`);
      await page.getByRole("button", { name: "Run query" }).click();
      const running = page.getByTestId("query-running");
      await running.getByText("The SQL warehouse is starting").waitFor();
      await shot(page, "query-warehouse-starting");
      await running.getByRole("button", { name: "Cancel" }).click();
      await running.waitFor({ state: "detached" });
      assert.equal(await page.getByTestId("query-result").count(), 0, "a cancelled run shows no result");

      await page.getByRole("button", { name: "Run query" }).click();
      await page.getByTestId("query-result").getByTestId("data-grid").waitFor({ timeout: 30_000 });
      assert.deepEqual(errors, []);
    } finally {
      await control("config", { warehouse_start_ms: 1500 });
      await context.close();
    }
  });

  test("the Queries page fits a phone", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice", {
      viewport: { width: 390, height: 800 },
      isMobile: true,
      hasTouch: true,
    });
    try {
      await page.goto(`${BASE_URL}/queries/${QUERY}`);
      await fillYear(page);
      await page.getByRole("button", { name: "Run query" }).click();
      await page.getByTestId("query-result").getByTestId("data-grid").waitFor();
      await page.getByTestId("result-chart").waitFor();
      await assertNoHorizontalScroll(page);
      await shot(page, "query-phone");
    } finally {
      await context.close();
    }
  });
});

describe("volumes", () => {
  // The emulator fixture's volume main.default.files: alice and the admins may write to it,
  // bob may only read; it holds README.md and data/regions.csv.
  const [CATALOG, SCHEMA, VOLUME] = ["main", "default", "files"];

  /**
   * Uploads `bytes` as `name` with the volume page's form.
   * @param {import("playwright-core").Page} page
   * @param {string} name
   * @param {Buffer} bytes
   */
  async function chooseFile(page, name, bytes) {
    await page.getByLabel(/^Upload to/).setInputFiles({ name, mimeType: "application/octet-stream", buffer: bytes });
    await page.getByRole("button", { name: "Upload", exact: true }).click();
  }

  /**
   * Downloads `name` through its link and returns the bytes the browser saved.
   * @param {import("playwright-core").Page} page
   * @param {string} name
   */
  async function download(page, name) {
    const [file] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: `Download ${name}` }).click(),
    ]);
    return readFileSync(/** @type {string} */ (await file.path()));
  }

  test("upload a file, see it listed, download the same bytes, replace it, delete it", async () => {
    const { page, context, errors } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/catalog/${CATALOG}/${SCHEMA}`);
      await page.getByTestId("table-list").getByRole("link").first().waitFor();
      await page.getByTestId("volume-list").locator(`[data-name=${VOLUME}]`).click();
      const browser = page.getByTestId("volume-browser");
      await browser.getByRole("heading", { name: `${CATALOG}.${SCHEMA}.${VOLUME}` }).waitFor();

      // Directories open in place, and the breadcrumbs lead back.
      await browser.getByRole("link", { name: "data/" }).click();
      await browser.getByTestId("file-list").locator('tr[data-name="regions.csv"]').waitFor();
      assert.equal(new URL(page.url()).searchParams.get("path"), "data");
      assert.equal((await download(page, "regions.csv")).toString("utf8"), "region_id,name\n1,North\n2,South\n3,East\n4,West\n");
      await browser.getByRole("navigation", { name: "Breadcrumb" }).getByRole("link", { name: VOLUME }).click();
      await browser.getByTestId("file-list").locator('tr[data-name="README.md"]').waitFor();

      // Every byte value, and more than one progress event's worth of them.
      const bytes = Buffer.alloc(300 * 1024);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 8)) & 0xff;
      const name = `e2e-${run}.bin`;
      await chooseFile(page, name, bytes);
      await browser.getByTestId("upload-done").waitFor();
      const row = browser.getByTestId("file-list").locator(`tr[data-name="${name}"]`);
      await row.waitFor();
      assert.ok((await download(page, name)).equals(bytes), "the download has the uploaded bytes");
      await shot(page, "volume-files");

      // The same name again is a conflict the user may resolve by replacing the file.
      const replacement = Buffer.from(`replaced,=1+1\r\n${run}\n`, "utf8");
      await chooseFile(page, name, replacement);
      const conflict = browser.getByTestId("upload-conflict");
      await conflict.waitFor();
      assert.equal(await browser.getByRole("alert").getAttribute("data-error-code"), "FILE_ALREADY_EXISTS");
      await conflict.getByRole("button", { name: "Replace it" }).click();
      await browser.getByTestId("upload-done").waitFor();
      assert.ok((await download(page, name)).equals(replacement), "the replaced file downloads");

      // Delete asks first; Cancel keeps the file, Delete removes it.
      await row.getByRole("button", { name: `Delete ${name}` }).click();
      const dialog = page.getByTestId("delete-dialog").and(page.locator("[open]"));
      await dialog.getByRole("button", { name: "Cancel" }).click();
      await row.waitFor();
      await row.getByRole("button", { name: `Delete ${name}` }).click();
      await dialog.getByRole("button", { name: "Delete" }).click();
      await row.waitFor({ state: "detached" });
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test("a directory is listed in pages", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      // One entry per page instead of 100, so the fixture's two root entries take two pages.
      await page.route("**/api/volumes/*/*/*/files?*", async (route) => {
        const url = new URL(route.request().url());
        url.searchParams.set("limit", "1");
        await route.continue({ url: url.toString() });
      });
      await page.goto(`${BASE_URL}/volumes/${CATALOG}/${SCHEMA}/${VOLUME}`);
      const rows = page.getByTestId("file-list").locator("tbody tr");
      await rows.first().waitFor();
      assert.equal(await rows.count(), 1);
      await page.getByRole("button", { name: "Load more" }).click();
      await rows.nth(1).waitFor();
      const names = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-name")).sort());
      assert.deepEqual(names, ["README.md", "data"]);
    } finally {
      await context.close();
    }
  });

  const cap = Number(process.env.DBAPP_VOLUME_UPLOAD_MAX_BYTES ?? 0);

  test("a file over the upload cap is refused with the cap shown", { skip: !cap && "DBAPP_VOLUME_UPLOAD_MAX_BYTES not set" }, async () => {
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/volumes/${CATALOG}/${SCHEMA}/${VOLUME}`);
      await page.getByTestId("file-list").locator('tr[data-name="README.md"]').waitFor();
      const name = `big-${run}.bin`;
      await chooseFile(page, name, Buffer.alloc(cap + 1, 7));
      const alert = page.getByTestId("volume-browser").getByRole("alert");
      await alert.waitFor();
      assert.equal(await alert.getAttribute("data-error-code"), "PAYLOAD_TOO_LARGE");
      const help = await page.getByTestId("upload-too-large").innerText();
      assert.match(help, new RegExp(`limited to ${(cap / 1024 / 1024).toFixed(1)} MiB`));
      assert.equal(await page.locator(`tr[data-name="${name}"]`).count(), 0);
      await shot(page, "volume-too-large");
    } finally {
      await context.close();
    }
  });

  test("upload progress is shown while the bytes leave", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice");
    try {
      await page.goto(`${BASE_URL}/volumes/${CATALOG}/${SCHEMA}/${VOLUME}`);
      await page.getByTestId("file-list").locator('tr[data-name="README.md"]').waitFor();
      // Throttle the upload to 256 KiB/s: a 768 KiB file takes about three seconds.
      const cdp = await context.newCDPSession(page);
      await cdp.send("Network.enable");
      await cdp.send("Network.emulateNetworkConditions", {
        offline: false,
        latency: 0,
        downloadThroughput: -1,
        uploadThroughput: 256 * 1024,
      });
      const name = `slow-${run}.bin`;
      await chooseFile(page, name, Buffer.alloc(768 * 1024, 1));
      const bar = page.getByRole("progressbar", { name: "Upload progress" });
      await bar.waitFor();
      await page.getByRole("button", { name: "Cancel upload" }).waitFor();
      // Part of the bytes are out and the bar says so, before the upload is done.
      await page.waitForFunction(() => {
        const progress = /** @type {HTMLProgressElement | null} */ (document.getElementById("upload-progress"));
        return progress !== null && progress.value > 0 && progress.value < 100;
      });
      await shot(page, "volume-uploading");
      await page.getByTestId("upload-done").waitFor({ timeout: 30_000 });
      await page.locator(`tr[data-name="${name}"]`).waitFor();
      await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
      await page.getByRole("button", { name: `Delete ${name}` }).click();
      await page.getByTestId("delete-dialog").and(page.locator("[open]")).getByRole("button", { name: "Delete" }).click();
      await page.locator(`tr[data-name="${name}"]`).waitFor({ state: "detached" });
    } finally {
      await context.close();
    }
  });

  test("a user who may only read is told so when uploading", async () => {
    const { page, context } = await pageAs(chrome.browser, "bob");
    try {
      await page.goto(`${BASE_URL}/volumes/${CATALOG}/${SCHEMA}/${VOLUME}`);
      await page.getByTestId("file-list").locator('tr[data-name="README.md"]').waitFor();
      await chooseFile(page, `bob-${run}.txt`, Buffer.from("bob was here\n"));
      const alert = page.getByTestId("volume-browser").getByRole("alert");
      await alert.waitFor();
      assert.equal(await alert.getAttribute("data-error-code"), "PERMISSION_DENIED");
      await page.getByTestId("upload-forbidden").waitFor();
      assert.equal(await page.locator(`tr[data-name="bob-${run}.txt"]`).count(), 0);
    } finally {
      await context.close();
    }
  });

  test("the volume page fits a phone", async () => {
    const { page, context } = await pageAs(chrome.browser, "alice", {
      viewport: { width: 390, height: 800 },
      isMobile: true,
      hasTouch: true,
    });
    try {
      await page.goto(`${BASE_URL}/volumes/${CATALOG}/${SCHEMA}/${VOLUME}`);
      await page.locator("[data-testid=file-list], [data-testid=files-empty]").first().waitFor();
      await assertNoHorizontalScroll(page);
      await shot(page, "volume-phone");
    } finally {
      await context.close();
    }
  });
});
