// The arithmetic of the charts (LineChart, BarChart, the admin dashboard), kept free of React
// and of imports so that e2e/chartScale.test.mjs can test it under plain Node: "nice" axis
// ticks, the time span a series of buckets is drawn over, and labels shortened in the middle.

/** The smallest step of the form 1, 2 or 5 × 10^n that is at least `raw`. */
export function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) {
    // The tolerance keeps 0.3 / 0.1 (2.9999…) from rounding up past 2 × 10^n to 5 × 10^n.
    if (m * power >= raw * (1 - 1e-9)) return m * power;
  }
  return 10 * power;
}

/**
 * Ticks from 0 to the first multiple of a nice step at or above `max` (and at least `floor`,
 * so that a flat zero line does not fill the chart), about `target` intervals. With `integer`
 * (counts), the step is a whole number: no "2.5 requests". Values are rounded to the step's
 * decimals, so 0.1 + 0.2 shows as 0.3.
 */
export function niceTicks(max: number, { floor = 0, integer = false, target = 4 } = {}): number[] {
  const top = Math.max(Number.isFinite(max) ? max : 0, floor, integer ? 1 : Number.MIN_VALUE);
  let step = niceStep(top / target);
  if (integer) step = Math.max(1, Math.round(step));
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  const count = Math.max(1, Math.ceil(top / step - 1e-9));
  const ticks: number[] = [];
  for (let i = 0; i <= count; i++) ticks.push(Number((i * step).toFixed(decimals)));
  return ticks;
}

/**
 * The part of a dense series of buckets (oldest first, empty ones included) worth drawing:
 * from the first bucket that holds data to the last bucket. A fresh install has data only in
 * its last few buckets; drawn over the whole window it is a single spike at the right edge.
 * Returns the index of the first bucket kept (0 when none holds data: the whole window, flat).
 */
export function firstBucketWithData<T>(points: T[], hasData: (p: T) => boolean): number {
  const first = points.findIndex(hasData);
  return first < 0 ? 0 : first;
}

/**
 * The x domain of buckets starting at `starts` (ms, oldest first) `width` ms wide: from the
 * first bucket's start to the last bucket's end, so each point sits in the middle of its
 * bucket and a single bucket is drawn in the middle of the chart, not on an edge.
 */
export function bucketDomain(starts: number[], width: number): { t0: number; t1: number } {
  if (starts.length === 0) return { t0: 0, t1: 1 };
  const t0 = Math.min(...starts);
  const t1 = Math.max(...starts) + width;
  return { t0, t1: t1 > t0 ? t1 : t0 + 1 };
}

/** Milliseconds of the API's bucket names (`5m`, `1h`, `1d`); undefined for others. */
export function intervalMs(interval: string): number | undefined {
  const m = /^(\d+)([smhd])$/.exec(interval);
  if (!m) return undefined;
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s" | "m" | "h" | "d"];
  return Number(m[1]) * unit;
}

/**
 * `label` cut to at most `max` characters by taking out its middle, so labels that share a
 * long prefix (`GET /api/unity-catalog/…`) still differ in what is shown: the head and the
 * tail stay, joined by "…". The full label belongs in a title next to it.
 */
export function truncateMiddle(label: string, max: number): string {
  const chars = Array.from(label);
  if (chars.length <= max) return label;
  if (max <= 1) return "…";
  const keep = max - 1;
  // The tail usually tells routes apart (`…/tables/{table}/rows`): give it the larger half.
  const head = Math.floor(keep * 0.4);
  const tail = keep - head;
  return `${chars.slice(0, head).join("")}…${chars.slice(chars.length - tail).join("")}`;
}
