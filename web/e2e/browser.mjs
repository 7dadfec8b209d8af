// Headless Debian Chromium driven by playwright-core (which downloads no browser).
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const BASE_URL = (process.env.BASE_URL ?? "http://127.0.0.1:8000").replace(/\/$/, "");
export const SHOTS = join(dirname(fileURLToPath(import.meta.url)), "screenshots");
const EXECUTABLE = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** @returns {Promise<{ browser: import("playwright-core").Browser, close: () => Promise<void> }>} */
export async function launch() {
  mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: EXECUTABLE,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    browser,
    // playwright-core starts Chromium with a new empty profile directory of its own.
    close: () => browser.close(),
  };
}

/**
 * A fresh page (own cookies) signed in as a demo user through the dev user switcher.
 * @param {import("playwright-core").Browser} browser
 * @param {string} user
 * @param {import("playwright-core").BrowserContextOptions} [options] e.g. a phone's viewport
 */
export async function pageAs(browser, user, options = {}) {
  const context = await browser.newContext({
    viewport: { width: 1360, height: 900 },
    colorScheme: "light",
    ...options,
  });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${BASE_URL}/`);
  await switchUser(page, user);
  return { page, context, errors };
}

/**
 * Switches the demo user with the header's dev-only switcher, and waits for the new identity.
 * @param {import("playwright-core").Page} page
 * @param {string} user
 */
export async function switchUser(page, user) {
  const select = page.getByTestId("dev-user-switcher").locator("select");
  await select.waitFor();
  if ((await select.inputValue()) !== user) {
    await Promise.all([page.waitForNavigation(), select.selectOption(user)]);
  }
  await page.getByTestId("identity").filter({ hasText: `${user}@example.com` }).waitFor();
}

/**
 * @param {import("playwright-core").Page} page
 * @param {string} name
 */
export async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/**
 * The workspace emulator behind `dbapp dev` (its control API, `/_emulator/…`, is not proxied by
 * the app): `EMULATOR_URL`, which e2e/run.sh reads from dev's log. Undefined when the tests run
 * against a server started elsewhere without it.
 */
export const EMULATOR_URL = process.env.EMULATOR_URL?.replace(/\/$/, "");

/**
 * Adds an emulator fault rule (`POST /_emulator/faults`, crates/emulator/src/faults.rs) and
 * returns a function that removes it.
 * @param {Record<string, unknown>} rule
 * @returns {Promise<() => Promise<void>>}
 */
export async function injectFault(rule) {
  if (!EMULATOR_URL) throw new Error("EMULATOR_URL is not set");
  const response = await fetch(`${EMULATOR_URL}/_emulator/faults`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(rule),
  });
  if (response.status !== 201) throw new Error(`fault refused: ${response.status} ${await response.text()}`);
  const { id } = /** @type {{ id: number }} */ (await response.json());
  return async () => {
    await fetch(`${EMULATOR_URL}/_emulator/faults/${id}`, { method: "DELETE" });
  };
}
