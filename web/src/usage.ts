// Usage events (page views, clicks), batched and sent to POST /api/v1/metrics/usage-events;
// whatever is queued when the page is hidden or unloaded goes with navigator.sendBeacon.
import { api } from "./api/client";
import type { UsageEvent } from "./api/types";

const ENDPOINT = "/api/v1/metrics/usage-events";
const FLUSH_INTERVAL_MS = 5_000;
const MAX_BATCH = 50;
const MAX_QUEUE = 1_000;

let queue: UsageEvent[] = [];
let timer: ReturnType<typeof setTimeout> | undefined;
let currentPage = "overview";
let started = false;

function schedule(): void {
  if (timer === undefined) timer = setTimeout(() => void flush(), FLUSH_INTERVAL_MS);
}

export function track(event: Omit<UsageEvent, "timestamp">): void {
  queue.push({ ...event, timestamp: new Date().toISOString() });
  if (queue.length > MAX_QUEUE) queue = queue.slice(-MAX_QUEUE);
  if (queue.length >= MAX_BATCH) void flush();
  else schedule();
}

export function trackPageView(page: string): void {
  currentPage = page;
  track({ event_type: "page_view", page_name: page });
}

export async function flush(): Promise<void> {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  if (queue.length === 0) return;
  const events = queue.splice(0, MAX_BATCH);
  try {
    await api.post(ENDPOINT, { body: { events }, timeoutMs: 10_000 });
  } catch {
    // Usage analytics must never disturb the user; a failed batch is dropped.
  }
  if (queue.length > 0) schedule();
}

function beacon(): void {
  if (queue.length === 0) return;
  const events = queue.splice(0, queue.length);
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  // text/plain keeps the beacon a "simple" request; the server accepts JSON in it.
  const blob = new Blob([JSON.stringify({ events })], { type: "text/plain;charset=UTF-8" });
  if (!(typeof navigator.sendBeacon === "function" && navigator.sendBeacon(ENDPOINT, blob))) {
    void fetch(ENDPOINT, {
      method: "POST",
      body: blob,
      keepalive: true,
      credentials: "same-origin",
    }).catch(() => undefined);
  }
}

/** Installs the click listener and the unload hooks once. */
export function startUsageTracking(): void {
  if (started) return;
  started = true;
  document.addEventListener(
    "click",
    (e) => {
      const target = e.target instanceof Element ? e.target.closest("[data-track]") : null;
      if (target) {
        track({
          event_type: "click",
          page_name: currentPage,
          element_id: target.getAttribute("data-track"),
        });
      }
    },
    { capture: true },
  );
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") beacon();
  });
  window.addEventListener("pagehide", beacon);
}
