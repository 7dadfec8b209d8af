/**
 * A duration for people: whole milliseconds as they are ("12 ms"), fractions to one decimal, a
 * measured time under a millisecond as "< 1 ms" (never "0.0 ms", which reads as broken), and
 * ten seconds or more in seconds.
 */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms) || ms < 0) return "—";
  if (ms < 1) return "< 1 ms";
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100 || Number.isInteger(ms)) return `${Math.round(ms)} ms`;
  return `${ms.toFixed(1)} ms`;
}

export function formatPercent(rate: number | null | undefined): string {
  if (rate === null || rate === undefined || Number.isNaN(rate)) return "—";
  return `${(rate * 100).toFixed(rate < 0.01 && rate > 0 ? 2 : 1)}%`;
}

export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  return new Intl.NumberFormat("en-US").format(n);
}

export function formatTime(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === "") return "—";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString("en-GB", {
    year: "numeric",
    month: "short",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    timeZone: "UTC",
    timeZoneName: "short",
  });
}

export function prettyJson(v: unknown): string {
  return JSON.stringify(v, null, 2) ?? "null";
}

/** Text that reads as plain words rather than an attempt at JSON: `light`, `hello world`. */
const BARE_TEXT = /^[\p{L}_][\p{L}\p{N}_ .,:;!?'/-]*$/u;

/**
 * Parses JSON text; returns the value or a message for people, complete in itself. Plain words
 * (`light`) are not JSON: the message says to quote them, with the quoted text to copy.
 */
export function parseJson(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  const trimmed = text.trim();
  if (trimmed === "") return { ok: false, error: "Enter a JSON value." };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    if (BARE_TEXT.test(trimmed) && trimmed.length <= 200) {
      return {
        ok: false,
        error: `Not valid JSON — to save text, wrap it in quotes: ${JSON.stringify(trimmed)}`,
      };
    }
    return { ok: false, error: `Invalid JSON: ${e instanceof Error ? e.message : "it cannot be read."}` };
  }
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) return "—";
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
