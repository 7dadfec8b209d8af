// Unit tests of src/chartScale.ts (the charts' ticks, bucket span and label shortening) under
// plain Node, no browser: the module imports nothing, so TypeScript's own transpiler turns it
// into a module this file can import.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";

const source = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "chartScale.ts");
const dir = mkdtempSync(join(tmpdir(), "chart-scale-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const out = join(dir, "chartScale.mjs");
writeFileSync(
  out,
  ts.transpileModule(readFileSync(source, "utf8"), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText,
);
/**
 * The module's exports (its types live in the app's project, not this one).
 * @type {{
 *   niceTicks: (max: number, options?: { floor?: number, integer?: boolean, target?: number }) => number[],
 *   firstBucketWithData: <T>(points: T[], hasData: (p: T) => boolean) => number,
 *   bucketDomain: (starts: number[], width: number) => { t0: number, t1: number },
 *   intervalMs: (interval: string) => number | undefined,
 *   truncateMiddle: (label: string, max: number) => string,
 * }}
 */
const scale = await import(pathToFileURL(out).href);

/** @param {number[]} ticks */
function isNice(ticks) {
  const step = (ticks[1] ?? 0) - (ticks[0] ?? 0);
  const mantissa = step / Math.pow(10, Math.floor(Math.log10(step)));
  return [1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6);
}

describe("niceTicks", () => {
  test("steps are 1, 2 or 5 times a power of ten, from 0 to at least the maximum", () => {
    for (const max of [0.0137, 0.05, 0.6, 1, 3, 7.5, 13, 99, 101, 250, 1234, 98_765]) {
      const ticks = scale.niceTicks(max);
      assert.equal(ticks[0], 0);
      assert.ok((ticks[ticks.length - 1] ?? 0) >= max, `${max}: ${ticks}`);
      assert.ok(isNice(ticks), `${max}: ${ticks}`);
      assert.ok(ticks.length >= 3 && ticks.length <= 7, `${max}: ${ticks}`);
    }
  });

  test("an error-rate axis has round percentages, not 1.25 % steps", () => {
    assert.deepEqual(scale.niceTicks(0, { floor: 0.05 }), [0, 0.02, 0.04, 0.06]);
    assert.deepEqual(scale.niceTicks(0.3), [0, 0.1, 0.2, 0.3]);
  });

  test("counts get whole-number ticks", () => {
    assert.deepEqual(scale.niceTicks(3, { integer: true }), [0, 1, 2, 3]);
    assert.deepEqual(scale.niceTicks(0, { integer: true }), [0, 1]);
    for (const max of [2, 5, 7, 17, 130]) {
      assert.ok(scale.niceTicks(max, { integer: true }).every(Number.isInteger), String(max));
    }
  });
});

describe("buckets", () => {
  test("the series starts at the first bucket with data", () => {
    const points = [0, 0, 0, 4, 0, 2].map((requests) => ({ requests }));
    assert.equal(scale.firstBucketWithData(points, (p) => p.requests > 0), 3);
    assert.equal(scale.firstBucketWithData(points.map(() => ({ requests: 0 })), (p) => p.requests > 0), 0);
  });

  test("a single bucket spans its own width, so its point is drawn in the middle", () => {
    const width = 300_000;
    assert.deepEqual(scale.bucketDomain([1_000_000], width), { t0: 1_000_000, t1: 1_300_000 });
    assert.deepEqual(scale.bucketDomain([0, width, 2 * width], width), { t0: 0, t1: 3 * width });
  });

  test("interval names", () => {
    assert.equal(scale.intervalMs("5m"), 300_000);
    assert.equal(scale.intervalMs("1h"), 3_600_000);
    assert.equal(scale.intervalMs("1d"), 86_400_000);
    assert.equal(scale.intervalMs("weekly"), undefined);
  });
});

describe("truncateMiddle", () => {
  test("labels with a common prefix stay distinct", () => {
    const routes = [
      "GET /api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables",
      "GET /api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables/{table}",
      "GET /api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables/{table}/rows",
    ];
    const shown = routes.map((r) => scale.truncateMiddle(r, 36));
    assert.equal(new Set(shown).size, routes.length, shown.join("\n"));
    for (const s of shown) {
      assert.ok(Array.from(s).length <= 36, s);
      assert.ok(s.startsWith("GET /api/"), s);
      assert.ok(s.includes("…"), s);
    }
  });

  test("short labels are kept whole", () => {
    assert.equal(scale.truncateMiddle("GET /health", 36), "GET /health");
  });
});
