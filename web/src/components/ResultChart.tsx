import { useState } from "react";
import type { QueryColumn } from "../api/types";
import { isNumericType, isTemporalType, isTextType } from "../columnTypes";
import { formatCount } from "../format";
import { BarChart, type Bar } from "./BarChart";
import { LineChart } from "./LineChart";

/** Bars beyond this many would not be readable; the caption says when some are left out. */
const MAX_BARS = 25;

function toNumber(v: unknown): number | null {
  if (typeof v === "number") return Number.isFinite(v) ? v : null;
  // DECIMAL and BIGINT values may arrive as text to keep their digits.
  if (typeof v === "string" && v.trim() !== "") {
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

function toTime(v: unknown): number | null {
  if (typeof v !== "string" && typeof v !== "number") return null;
  // A DATE ("2026-01-31") parses as UTC midnight; a TIMESTAMP without a zone is UTC too.
  const text = typeof v === "string" && /T\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(v) ? `${v}Z` : v;
  const t = new Date(typeof text === "string" ? text.replace(" ", "T") : text).getTime();
  return Number.isNaN(t) ? null : t;
}

function format(v: number): string {
  return Number.isInteger(v) ? formatCount(v) : v.toLocaleString("en-US", { maximumFractionDigits: 2 });
}

/**
 * A chart of the rows on screen: a line of a numeric column over the first DATE or TIMESTAMP
 * column when there is one, else bars of it by the first text column (summed when a label
 * repeats). The numeric column is the first that is not an `id`, and the user may pick another.
 * Nothing when the columns allow neither chart.
 */
export function ResultChart({ columns, rows }: { columns: QueryColumn[]; rows: unknown[][] }) {
  const numeric = columns.filter((c) => isNumericType(c.type_name)).map((c) => c.name);
  // Identifiers are numbers too, but plotting them says nothing: prefer a measure.
  const preferred = numeric.find((name) => !/(^|_)id$/i.test(name)) ?? numeric[0];
  const [chosen, setChosen] = useState<string | undefined>(undefined);
  const valueName = chosen !== undefined && numeric.includes(chosen) ? chosen : preferred;
  const valueAt = columns.findIndex((c) => c.name === valueName);
  const timeAt = columns.findIndex((c) => isTemporalType(c.type_name));
  const labelAt = columns.findIndex((c) => isTextType(c.type_name));
  if (valueAt < 0 || rows.length === 0 || (timeAt < 0 && labelAt < 0)) return null;

  const picker =
    numeric.length > 1 ? (
      <div className="field chart-picker">
        <label htmlFor="chart-column">Plotted column</label>
        <select id="chart-column" value={valueName} onChange={(e) => setChosen(e.target.value)}>
          {numeric.map((name) => (
            <option key={name} value={name}>
              {name}
            </option>
          ))}
        </select>
      </div>
    ) : null;

  if (timeAt >= 0) {
    const points = rows
      .map((r) => ({ t: toTime(r[timeAt]), v: toNumber(r[valueAt]) }))
      .filter((p): p is { t: number; v: number | null } => p.t !== null)
      .sort((a, b) => a.t - b.t);
    return (
      <div data-testid="result-chart" data-chart-kind="line">
        {picker}
        <LineChart
          title={`${valueName} by ${columns[timeAt]?.name ?? ""}`}
          times={points.map((p) => p.t)}
          series={[{ label: valueName ?? "", color: "var(--chart-1)", values: points.map((p) => p.v) }]}
          format={format}
        />
      </div>
    );
  }
  const sums = new Map<string, number>();
  for (const r of rows) {
    const v = toNumber(r[valueAt]);
    if (v === null) continue;
    const label = r[labelAt] === null || r[labelAt] === undefined ? "NULL" : String(r[labelAt]);
    sums.set(label, (sums.get(label) ?? 0) + v);
  }
  const bars: Bar[] = [...sums].map(([label, value]) => ({ label, value }));
  const title = `${valueName} by ${columns[labelAt]?.name ?? ""}${bars.length > MAX_BARS ? ` (first ${MAX_BARS} of ${bars.length})` : ""}`;
  return (
    <div data-testid="result-chart" data-chart-kind="bar">
      {picker}
      <BarChart title={title} bars={bars.slice(0, MAX_BARS)} format={format} />
    </div>
  );
}
