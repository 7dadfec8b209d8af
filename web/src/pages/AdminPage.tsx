import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api/client";
import { asApiError } from "../api/errors";
import { AdminRequired } from "../components/AdminRequired";
import { BarChart } from "../components/BarChart";
import { ErrorPanel } from "../components/ErrorPanel";
import { LineChart } from "../components/LineChart";
import { Loading } from "../components/Loading";
import { StatCard } from "../components/StatCard";
import { TimeRangePicker, type TimeRange } from "../components/TimeRangePicker";
import { firstBucketWithData, intervalMs } from "../chartScale";
import { formatCount, formatMs, formatPercent } from "../format";

/**
 * The routes this dashboard itself calls: an admin looking at it would otherwise see them top
 * "Requests by route". They are left out of the chart and marked in the table.
 */
const DASHBOARD_ROUTES = new Set(["/api/v1/metrics/performance", "/api/v1/metrics/usage", "/api/v1/metrics/time-series"]);

function isDashboardCall(r: { method: string; route: string }): boolean {
  return r.method === "GET" && DASHBOARD_ROUTES.has(r.route);
}

/** A route template that may wrap after each `/` on a narrow screen, never inside a name. */
function RoutePath({ route }: { route: string }) {
  const parts = route.split("/");
  return (
    <>
      {parts.map((part, i) => (
        <span key={i}>
          {i > 0 && "/"}
          {part}
          {i < parts.length - 1 && <wbr />}
        </span>
      ))}
    </>
  );
}

export function AdminPage() {
  const [range, setRange] = useState<TimeRange>("24h");
  const opts = { placeholderData: keepPreviousData, retry: false } as const;
  const perf = useQuery({
    queryKey: ["admin", "performance", range],
    queryFn: () => api.get("/api/v1/metrics/performance", { query: { time_range: range } }),
    ...opts,
  });
  const usage = useQuery({
    queryKey: ["admin", "usage", range],
    queryFn: () => api.get("/api/v1/metrics/usage", { query: { time_range: range } }),
    ...opts,
  });
  const series = useQuery({
    queryKey: ["admin", "time-series", range],
    queryFn: () => api.get("/api/v1/metrics/time-series", { query: { time_range: range, metric_type: "both" } }),
    ...opts,
  });

  const refused = [perf, usage, series].find((q) => q.isError && asApiError(q.error).code === "ADMIN_REQUIRED");
  const failed = [perf, usage, series].find((q) => q.isError);
  const perfData = perf.data;
  const usageData = usage.data;
  const seriesData = series.data;
  const dashboardCalls = perfData?.routes.filter(isDashboardCall).reduce((n, r) => n + r.requests, 0) ?? 0;
  // From the first bucket with data: on a fresh install the whole window is a flat line and a
  // spike at its right edge.
  const points = seriesData
    ? seriesData.points.slice(firstBucketWithData(seriesData.points, (p) => (p.requests ?? 0) > 0 || (p.events ?? 0) > 0))
    : [];
  const times = points.map((p) => Date.parse(p.timestamp));
  const bucketMs = seriesData ? intervalMs(seriesData.interval) : undefined;

  return (
    <div className="page">
      <header className="page-header with-actions">
        <div>
          <h1>Admin metrics</h1>
          <p className="muted">Request performance and product usage, for workspace admins.</p>
        </div>
        {!refused && <TimeRangePicker value={range} onChange={setRange} />}
      </header>
      {refused ? (
        <AdminRequired error={refused.error} />
      ) : failed ? (
        <ErrorPanel error={failed.error} onRetry={() => void failed.refetch()} />
      ) : !perfData || !usageData || !seriesData ? (
        <Loading label="Loading metrics…" />
      ) : (
        <div aria-busy={perf.isFetching || usage.isFetching || series.isFetching} data-testid="admin-dashboard">
          <div className="stat-grid">
            <StatCard
              label="Requests"
              value={formatCount(perfData.summary.requests)}
              hint={dashboardCalls > 0 ? `${formatCount(dashboardCalls)} by this dashboard` : undefined}
            />
            <StatCard label="Error rate" value={formatPercent(perfData.summary.error_rate)} />
            <StatCard label="p50 latency" value={formatMs(perfData.summary.p50_ms)} />
            <StatCard label="p95 latency" value={formatMs(perfData.summary.p95_ms)} />
            <StatCard label="p99 latency" value={formatMs(perfData.summary.p99_ms)} />
            <StatCard label="Usage events" value={formatCount(usageData.total_events)} hint={`${formatCount(usageData.unique_users)} users`} />
          </div>
          <div className="chart-grid">
            <section className="card">
              <LineChart
                title="Latency over time"
                times={times}
                bucketMs={bucketMs}
                series={[
                  { label: "p50", color: "var(--chart-1)", values: points.map((p) => p.p50_ms ?? null) },
                  { label: "p95", color: "var(--chart-2)", values: points.map((p) => p.p95_ms ?? null) },
                  { label: "p99", color: "var(--chart-3)", values: points.map((p) => p.p99_ms ?? null) },
                ].filter((s) => s.values.some((v) => v !== null))}
                format={formatMs}
                minScale={10}
              />
            </section>
            <section className="card">
              <LineChart
                title="Error rate over time"
                times={times}
                bucketMs={bucketMs}
                series={[{ label: "error rate", color: "var(--chart-bad)", values: points.map((p) => p.error_rate ?? null) }]}
                format={formatPercent}
                minScale={0.05}
              />
            </section>
            <section className="card">
              <LineChart
                title="Requests and usage over time"
                times={times}
                bucketMs={bucketMs}
                series={[
                  { label: "requests", color: "var(--chart-1)", values: points.map((p) => p.requests ?? null) },
                  { label: "usage events", color: "var(--chart-4)", values: points.map((p) => p.events ?? null) },
                ]}
                format={(v) => formatCount(Math.round(v))}
                minScale={5}
                integer
              />
            </section>
            <section className="card">
              <BarChart
                title="Requests by route"
                bars={perfData.routes
                  .filter((r) => !isDashboardCall(r))
                  .sort((a, b) => b.requests - a.requests)
                  .slice(0, 12)
                  .map((r) => ({ label: `${r.method} ${r.route}`, value: r.requests, note: `${formatPercent(r.error_rate)} errors` }))}
                format={formatCount}
              />
              {dashboardCalls > 0 && (
                <p className="muted small" data-testid="dashboard-calls-note">
                  Leaves out this dashboard&apos;s own {formatCount(dashboardCalls)} requests (marked in the table below).
                </p>
              )}
            </section>
            <section className="card">
              <BarChart
                title="Usage by event type"
                bars={Object.entries(usageData.by_event_type)
                  .map(([label, value]) => ({ label, value: Number(value) }))
                  .sort((a, b) => b.value - a.value)}
                format={formatCount}
                color="var(--chart-4)"
              />
            </section>
            <section className="card">
              <BarChart
                title="Top pages"
                bars={usageData.top_pages.map((p) => ({ label: p.page_name, value: p.views }))}
                format={formatCount}
                color="var(--chart-3)"
              />
            </section>
          </div>
          <section className="card">
            <h2>Latency by route</h2>
            <div className="table-scroll">
              <table className="table">
                <thead>
                  <tr>
                    <th scope="col">Route</th>
                    <th scope="col" className="num">Requests</th>
                    <th scope="col" className="num">Errors</th>
                    <th scope="col" className="num">p50</th>
                    <th scope="col" className="num">p95</th>
                    <th scope="col" className="num">p99</th>
                  </tr>
                </thead>
                <tbody>
                  {perfData.routes.map((r) => (
                    <tr key={`${r.method} ${r.route}`} data-dashboard={isDashboardCall(r) || undefined}>
                      <td className="route-cell">
                        <code>
                          {r.method} <RoutePath route={r.route} />
                        </code>
                        {isDashboardCall(r) && (
                          <span className="badge badge-neutral" title="Requests this dashboard made to draw itself">
                            dashboard
                          </span>
                        )}
                      </td>
                      <td className="num">{formatCount(r.requests)}</td>
                      <td className="num">{formatCount(r.errors)}</td>
                      <td className="num">{formatMs(r.p50_ms)}</td>
                      <td className="num">{formatMs(r.p95_ms)}</td>
                      <td className="num">{formatMs(r.p99_ms)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
        </div>
      )}
    </div>
  );
}
