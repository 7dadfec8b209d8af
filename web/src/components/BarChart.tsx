// A small hand-rolled horizontal bar chart. Long labels are shortened in the middle (so labels
// with a common prefix stay distinct), and each bar's title has its full label and value.
import { truncateMiddle } from "../chartScale";

/** Characters of a label that fit left of the bars at the label's font size. */
const LABEL_CHARS = 36;
export interface Bar {
  label: string;
  value: number;
  note?: string;
  /** Drawn muted: e.g. requests the dashboard made itself. */
  muted?: boolean;
}

export function BarChart({
  title,
  bars,
  format,
  color = "var(--accent-blue)",
}: {
  title: string;
  bars: Bar[];
  format: (v: number) => string;
  color?: string;
}) {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const rowH = 26;
  const labelW = 260;
  const W = 640;
  const H = Math.max(rowH, bars.length * rowH);
  return (
    <figure className="chart" data-chart={title}>
      <figcaption>{title}</figcaption>
      {bars.length === 0 ? (
        <p className="muted chart-empty">No data in this time range yet.</p>
      ) : (
        <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={title}>
          {bars.map((b, i) => {
            const w = ((W - labelW - 80) * b.value) / max;
            const yTop = i * rowH;
            return (
              <g key={b.label} data-label={b.label}>
                <title>{`${b.label}: ${format(b.value)}${b.note ? ` (${b.note})` : ""}`}</title>
                <text className="axis bar-label" x={labelW - 8} y={yTop + 17} textAnchor="end">
                  {truncateMiddle(b.label, LABEL_CHARS)}
                </text>
                <rect x={labelW} y={yTop + 5} width={Math.max(2, w)} height={rowH - 10} rx={3} fill={color} opacity={b.muted ? 0.35 : 1} />
                <text className="axis" x={labelW + Math.max(2, w) + 6} y={yTop + 17}>
                  {format(b.value)}
                </text>
              </g>
            );
          })}
        </svg>
      )}
    </figure>
  );
}
