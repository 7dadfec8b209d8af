// A small hand-rolled SVG line chart: time on x, one or more series on y.
export interface Series {
  label: string;
  color: string;
  values: (number | null | undefined)[];
}

const W = 640;
const H = 220;
const PAD = { left: 56, right: 16, top: 12, bottom: 28 };

function niceMax(v: number, floor: number): number {
  if (v <= floor) return floor;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 4, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function LineChart({
  title,
  times,
  series,
  format,
  minScale = 1,
}: {
  title: string;
  times: number[];
  series: Series[];
  format: (v: number) => string;
  /** The smallest top of the y axis, so that a flat zero line does not fill the chart. */
  minScale?: number;
}) {
  const all = series.flatMap((s) => s.values.filter((v): v is number => typeof v === "number"));
  const max = niceMax(all.length ? Math.max(...all) : 0, minScale);
  const t0 = times.length ? Math.min(...times) : 0;
  const t1 = times.length ? Math.max(...times) : 1;
  const span = t1 - t0 || 1;
  const x = (t: number) => PAD.left + ((t - t0) / span) * (W - PAD.left - PAD.right);
  const y = (v: number) => PAD.top + (1 - v / max) * (H - PAD.top - PAD.bottom);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * max);
  const fmtT = (t: number) =>
    new Date(t).toLocaleString("en-GB", {
      month: "short",
      day: "2-digit",
      hour: span <= 2 * 86_400_000 ? "2-digit" : undefined,
      minute: span <= 2 * 86_400_000 ? "2-digit" : undefined,
      timeZone: "UTC",
    });

  return (
    <figure className="chart" data-chart={title}>
      <figcaption>{title}</figcaption>
      {times.length === 0 ? (
        <p className="muted chart-empty">No data in this time range yet.</p>
      ) : (
        <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title}: ${series.map((s) => s.label).join(", ")} over time`}>
          {ticks.map((v) => (
            <g key={v}>
              <line className="grid" x1={PAD.left} x2={W - PAD.right} y1={y(v)} y2={y(v)} />
              <text className="axis" x={PAD.left - 6} y={y(v) + 4} textAnchor="end">
                {format(v)}
              </text>
            </g>
          ))}
          <text className="axis" x={PAD.left} y={H - 8} textAnchor="start">
            {fmtT(t0)}
          </text>
          <text className="axis" x={W - PAD.right} y={H - 8} textAnchor="end">
            {fmtT(t1)}
          </text>
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
