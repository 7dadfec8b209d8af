// A small hand-rolled SVG line chart: time on x, one or more series on y, "nice" y ticks
// (chartScale.ts). Given the bucket width, each point is drawn in the middle of its bucket.
// The SVG is drawn at its rendered width, so the text keeps its size on a phone.
import { bucketDomain, niceTicks } from "../chartScale";
import { useElementWidth } from "../useElementWidth";

export interface Series {
  label: string;
  color: string;
  values: (number | null | undefined)[];
}

const H = 220;
const PAD = { left: 56, right: 16, top: 12, bottom: 28 };

export function LineChart({
  title,
  times,
  series,
  format,
  minScale = 1,
  bucketMs,
  integer = false,
}: {
  title: string;
  times: number[];
  series: Series[];
  format: (v: number) => string;
  /** The smallest top of the y axis, so that a flat zero line does not fill the chart. */
  minScale?: number;
  /** The width of the buckets `times` start: the x axis spans them whole. */
  bucketMs?: number;
  /** The values are counts: whole-number ticks. */
  integer?: boolean;
}) {
  const [ref, width] = useElementWidth<HTMLElement>(640);
  const W = Math.max(240, width);
  const all = series.flatMap((s) => s.values.filter((v): v is number => typeof v === "number"));
  const ticks = niceTicks(all.length ? Math.max(...all) : 0, { floor: minScale, integer });
  const max = ticks[ticks.length - 1] ?? 1;
  const { t0, t1 } =
    bucketMs !== undefined
      ? bucketDomain(times, bucketMs)
      : { t0: times.length ? Math.min(...times) : 0, t1: times.length ? Math.max(...times) : 1 };
  const offset = bucketMs !== undefined ? bucketMs / 2 : 0;
  const span = t1 - t0;
  const innerW = W - PAD.left - PAD.right;
  // A lone point (no span) sits in the middle rather than on the left edge.
  const x = (t: number) => PAD.left + (span > 0 ? ((t + offset - t0) / span) * innerW : innerW / 2);
  const y = (v: number) => PAD.top + (1 - v / max) * (H - PAD.top - PAD.bottom);
  const fmtT = (t: number) =>
    new Date(t).toLocaleString("en-GB", {
      month: "short",
      day: "2-digit",
      hour: span <= 2 * 86_400_000 ? "2-digit" : undefined,
      minute: span <= 2 * 86_400_000 ? "2-digit" : undefined,
      timeZone: "UTC",
    });

  return (
    <figure className="chart" data-chart={title} ref={ref}>
      <figcaption>{title}</figcaption>
      {times.length === 0 ? (
        <p className="muted chart-empty">No data in this time range yet.</p>
      ) : (
        <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title}: ${series.map((s) => s.label).join(", ")} over time`}>
          {ticks.map((v) => (
            <g key={v} data-tick={v}>
              <line className="grid" x1={PAD.left} x2={W - PAD.right} y1={y(v)} y2={y(v)} />
              <text className="axis" x={PAD.left - 6} y={y(v) + 4} textAnchor="end">
                {format(v)}
              </text>
            </g>
          ))}
          <text className="axis" x={PAD.left} y={H - 8} textAnchor="start">
            {fmtT(t0)}
          </text>
          {span > 0 && (
            <text className="axis" x={W - PAD.right} y={H - 8} textAnchor="end">
              {fmtT(t1)}
            </text>
          )}
          {series.map((s) => {
            const pts = times
              .map((t, i) => {
                const v = s.values[i];
                return typeof v === "number" ? `${x(t).toFixed(1)},${y(v).toFixed(1)}` : null;
              })
              .filter((p): p is string => p !== null);
            return (
              <g key={s.label}>
                <polyline className="series" points={pts.join(" ")} stroke={s.color} fill="none" />
                {pts.length <= 60 &&
                  pts.map((p) => {
                    const [cx, cy] = p.split(",");
                    return <circle key={p} cx={cx} cy={cy} r={2.5} fill={s.color} />;
                  })}
              </g>
            );
          })}
        </svg>
      )}
      {bucketMs !== undefined && times.length === 1 && (
        <p className="muted small" data-testid="single-bucket">
          All the data so far falls in one bucket; a line appears once it spans more.
        </p>
      )}
      <ul className="legend">
        {series.map((s) => (
          <li key={s.label}>
            <span className="swatch" style={{ background: s.color }} />
            {s.label}
          </li>
        ))}
      </ul>
    </figure>
  );
}
