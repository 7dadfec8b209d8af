// The visual quality gate: every page at desktop (1400 px) and phone (390 px) width, in light
// and dark, is screenshotted (e2e/screenshots/layout-*.png) and checked for what a reviewer of
// the screenshots would catch: the page scrolling sideways, an element sticking out past the
// viewport outside an intended horizontal scroller, text clipped in a table or chart without a
// title that shows it whole, and errors in the console (uncaught exceptions, console.error,
// and requests answered 400 or more that the page did not expect).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { BASE_URL, launch, shot, switchUser } from "./browser.mjs";

/** @type {Awaited<ReturnType<typeof launch>>} */
let chrome;
before(async () => {
  chrome = await launch();
});
after(async () => {
  await chrome?.close();
});

/**
 * @typedef {import("playwright-core").Page} Page
 * @typedef {{ name: string, path: string, user?: string, ready: (page: Page) => Promise<unknown> }} PageSpec
 */

/** Every page of the router (AppShell's pageOf), on data that makes it meaningful. */
/** @type {PageSpec[]} */
const PAGES = [
  {
    name: "overview",
    path: "/",
    ready: (p) => p.getByTestId("overview-workspace").waitFor(),
  },
  {
    name: "catalog",
    path: "/catalog/main/default/customers",
    ready: async (p) => {
      await p.getByTestId("columns-table").waitFor();
      await p.getByTestId("data-grid").locator("tbody tr").first().waitFor();
    },
  },
  {
    name: "volumes",
    path: "/volumes/main/default/files?path=data",
    ready: (p) => p.getByTestId("file-list").locator("tr[data-name]").first().waitFor(),
  },
  {
    name: "queries",
    path: "/queries/top_customers",
    ready: async (p) => {
      await p.getByTestId("query-panel").waitFor();
      await p.getByRole("button", { name: "Run query" }).click();
      await p.getByTestId("query-result").getByTestId("data-grid").locator("tbody tr").first().waitFor({ timeout: 30_000 });
    },
  },
  {
    name: "serving",
    path: "/serving/echo",
    ready: async (p) => {
      await p.getByTestId("invoke-form").waitFor();
      await p.getByTestId("history").waitFor();
    },
  },
  {
    name: "serving-not-ready",
    path: "/serving/not-ready",
    ready: (p) => p.getByTestId("endpoint-not-ready").waitFor(),
  },
  {
    name: "genie",
    path: "/genie/01f0c0ffee5a1e5000000000000000a1",
    ready: (p) => p.getByTestId("genie-chat").waitFor(),
  },
  {
    name: "assistant",
    path: "/assistant",
    ready: (p) => p.locator("[data-testid=assistant-chat], [data-testid=assistant-not-configured]").first().waitFor(),
  },
  {
    name: "preferences",
    path: "/preferences",
    ready: (p) => p.locator("[data-testid=pref-settings]").waitFor(),
  },
  {
    name: "admin",
    path: "/admin",
    user: "admin",
    ready: async (p) => {
      const dash = p.getByTestId("admin-dashboard");
      await dash.waitFor();
      await dash.locator("figure.chart").first().waitFor();
    },
  },
  {
    name: "not-found",
    path: "/no/such/page",
    ready: (p) => p.getByRole("heading", { name: "Page not found" }).waitFor(),
  },
];

/**
 * What is wrong with the layout of the page on screen, as sentences (empty when nothing is).
 * Runs in the page. `vw` is the device's width: on a phone, Chromium widens the layout viewport
 * (and `innerWidth`) to fit content that overflows, so `innerWidth` cannot be the yardstick.
 * @param {number} vw
 * @returns {string[]}
 */
function layoutProblems(vw) {
  const problems = [];
  const slack = 1;
  const name = (/** @type {Element} */ el) => {
    const id = el.getAttribute("data-testid") ?? el.id;
    const cls = typeof el.className === "string" && el.className ? `.${el.className.trim().split(/\s+/).join(".")}` : "";
    const text = (el.textContent ?? "").trim().replace(/\s+/g, " ").slice(0, 40);
    return `<${el.tagName.toLowerCase()}${id ? `#${id}` : ""}${cls}> "${text}"`;
  };
  const visible = (/** @type {Element} */ el) => {
    const style = getComputedStyle(el);
    if (style.display === "none" || style.visibility === "hidden") return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const clips = (/** @type {CSSStyleDeclaration} */ s) => ["auto", "scroll", "hidden", "clip"].includes(s.overflowX);

  // 1. The document does not scroll sideways.
  const docWidth = Math.max(document.documentElement.scrollWidth, window.innerWidth);
  if (docWidth > vw) problems.push(`the page is ${docWidth} px wide on a ${vw} px wide screen`);

  // 2. Nothing sticks out past the right edge, except inside a scroller or clipping box that
  // itself fits (a table wrapper with overflow-x: auto). Off-screen helpers (skip link) are left
  // of or above the viewport, not right of it.
  const reported = new Set();
  for (const el of Array.from(document.body.querySelectorAll("*"))) {
    const r = el.getBoundingClientRect();
    if (r.right <= vw + slack || !visible(el)) continue;
    let contained = false;
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (clips(getComputedStyle(a)) && a.getBoundingClientRect().right <= vw + slack) {
        contained = true;
        break;
      }
    }
    if (contained) continue;
    // Report the outermost offender only: its children stick out with it.
    if (el.parentElement && reported.has(el.parentElement)) {
      reported.add(el);
      continue;
    }
    reported.add(el);
    problems.push(`${name(el)} reaches ${Math.round(r.right)} px, past the ${vw} px viewport`);
  }

  // 3. Text in tables and HTML chart parts is not clipped, nor anything shortened with an
  // ellipsis anywhere, unless a title shows it whole.
  const tabular = "table th, table td, table td *, table th *, figure.chart *:not(svg *)";
  for (const el of Array.from(document.body.querySelectorAll("*"))) {
    // Screen-reader-only text (.visually-hidden) is a 1 px box by design.
    if (!visible(el) || el.clientWidth <= 1 || el.scrollWidth <= el.clientWidth + slack) continue;
    const style = getComputedStyle(el);
    const ellipsis = style.textOverflow === "ellipsis" && style.overflowX !== "visible";
    const hidden = style.overflowX === "hidden" || style.overflowX === "clip";
    if (!(ellipsis || (hidden && el.matches(tabular)))) continue;
    if (el.closest("[title]")) continue;
    problems.push(`${name(el)} is clipped (${el.scrollWidth} px of text in ${el.clientWidth} px) with no title`);
  }

  // 4. Chart text stays inside its SVG (which clips what lies outside its view box), and a
  // shortened label has a title with the full text.
  for (const svg of Array.from(document.querySelectorAll("figure.chart svg"))) {
    if (!(svg instanceof SVGSVGElement) || !visible(svg)) continue;
    const vb = svg.viewBox.baseVal;
    for (const text of Array.from(svg.querySelectorAll("text"))) {
      const b = text.getBBox();
      if (b.x < vb.x - slack || b.x + b.width > vb.x + vb.width + slack || b.y < vb.y - slack || b.y + b.height > vb.y + vb.height + slack) {
        problems.push(`chart text "${text.textContent}" is cut by its chart's edge`);
      }
      if ((text.textContent ?? "").includes("…")) {
        const titled = text.closest("g")?.querySelector(":scope > title") ?? text.querySelector("title");
        if (!titled || (titled.textContent ?? "").length <= (text.textContent ?? "").length) {
          problems.push(`chart label "${text.textContent}" is shortened with no title giving it whole`);
        }
      }
    }
  }
  return problems;
}

/**
 * Visits every page in one browser context of the given size and colour scheme, screenshots
 * each, and returns the problems found, prefixed with the page's name.
 * @param {{ width: number, height: number, scheme: "light" | "dark" }} view
 */
async function checkAll(view) {
  const context = await chrome.browser.newContext({
    viewport: { width: view.width, height: view.height },
    colorScheme: view.scheme,
    // The phone is a touch device with a phone's pixel ratio; the desktop an ordinary screen.
    ...(view.width < 500 ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}),
  });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  /** @type {string[]} */
  const problems = [];
  let current = "sign-in";
  page.on("pageerror", (e) => problems.push(`${current}: uncaught ${String(e)}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`${current}: console error: ${m.text()} (${m.location().url})`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`${current}: ${r.request().method()} ${new URL(r.url()).pathname} answered ${r.status()}`);
  });
  try {
    let user = "";
    for (const spec of PAGES) {
      const wanted = spec.user ?? "alice";
      current = spec.name;
      if (user !== wanted) {
        await page.goto(`${BASE_URL}/`);
        await switchUser(page, wanted);
        user = wanted;
      }
      await page.goto(`${BASE_URL}${spec.path}`);
      await spec.ready(page);
      // The dev store's theme preference is not set, so the theme follows the colour scheme.
      await page.waitForFunction((t) => document.documentElement.dataset["theme"] === t, view.scheme);
      await page.evaluate(() => document.fonts.ready);
      for (const p of await page.evaluate(layoutProblems, view.width)) problems.push(`${spec.name}: ${p}`);
      await shot(page, `layout-${spec.name}-${view.width}-${view.scheme}`);
    }
  } finally {
    await context.close();
  }
  return problems;
}

describe("layout", () => {
  for (const width of [1400, 390]) {
    for (const scheme of /** @type {const} */ (["light", "dark"])) {
      test(`every page at ${width} px, ${scheme}: no sideways overflow, no clipped text, no console errors`, async () => {
        const problems = await checkAll({ width, height: width < 500 ? 844 : 900, scheme });
        assert.deepEqual(problems, [], `\n${problems.join("\n")}`);
      });
    }
  }
});
