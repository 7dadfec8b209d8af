// A small hand-rolled horizontal bar chart. Long labels are shortened in the middle (so labels
// with a common prefix stay distinct), and each bar's title has its full label and value.
// The SVG is drawn at its rendered width, so the text keeps its size on a phone.
import { truncateMiddle } from "../chartScale";
import { useElementWidth } from "../useElementWidth";

/** A generous average width of a label character at the labels' 12 px, in px. */
const CHAR_PX = 7;

export interface Bar {
  label: string;
  value: number;
  note?: string;
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
  const [ref, width] = useElementWidth<HTMLElement>(640);
  const max = Math.max(1, ...bars.map((b) => b.value));
  const rowH = 26;
  const W = Math.max(240, width);
  const labelW = Math.min(260, Math.round(W * 0.42));
  const labelChars = Math.max(8, Math.floor((labelW - 8) / CHAR_PX));
  const H = Math.max(rowH, bars.length * rowH);
  return (
    <figure className="chart" data-chart={title} ref={ref}>
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
                  {truncateMiddle(b.label, labelChars)}
                </text>
                <rect x={labelW} y={yTop + 5} width={Math.max(2, w)} height={rowH - 10} rx={3} fill={color} />
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
