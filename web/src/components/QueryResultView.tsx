import type { RunRequest } from "../api/queryRun";
import type { QueryResult } from "../api/types";
import { formatCount, formatMs, formatTime } from "../format";
import { CsvDownloadButton } from "./CsvDownloadButton";
import { DataGrid } from "./DataGrid";
import { Pager } from "./Pager";
import { ResultChart } from "./ResultChart";
import { TechnicalDetails } from "./TechnicalDetails";

/** The page on screen of a query's result, with its chart, timing, cache state and CSV export. */
export function QueryResultView({
  query,
  parameters,
  pages,
  pageIndex,
  pageSize,
  busy,
  onPage,
}: {
  query: string;
  parameters: RunRequest["parameters"];
  pages: QueryResult[];
  pageIndex: number;
  pageSize: number;
  busy: boolean;
  onPage: (index: number) => void;
}) {
  const page = pages[pageIndex];
  if (!page) return null;
  const offset = pages.slice(0, pageIndex).reduce((n, p) => n + p.rows.length, 0);
  const hasMore = pageIndex < pages.length - 1 || Boolean(page.next_page_token);
  return (
    <section className="card" aria-labelledby="result-h" data-testid="query-result">
      <div className="card-header">
        <h3 id="result-h">Result</h3>
        <div className="result-meta muted small" data-testid="result-meta">
          {page.cached && (
            <span className="badge badge-info" data-testid="cached-badge" title="Served from the cache, not run again">
              cached
            </span>
          )}
          <span>
            {formatMs(page.execution_time_ms)} · {formatTime(page.executed_at)}
          </span>
        </div>
      </div>
      {page.truncated && (
        <p className="notice muted small">The warehouse truncated this result: not every row is here.</p>
      )}
      <ResultChart columns={page.columns} rows={page.rows} />
      <div aria-busy={busy} className={busy ? "stale" : undefined}>
        <DataGrid columns={page.columns} rows={page.rows} />
      </div>
      <div className="result-footer">
        <CsvDownloadButton query={query} parameters={parameters} />
        <Pager
          label="result"
          offset={offset}
          limit={pageSize}
          count={page.rows.length}
          hasMore={hasMore}
          total={page.total_row_count ?? undefined}
          busy={busy}
          onChange={(o) => onPage(o > offset ? pageIndex + 1 : Math.max(0, pageIndex - 1))}
        />
      </div>
      <p className="muted small">{formatCount(page.row_count)} rows on this page</p>
      <TechnicalDetails>
        <p className="muted small">
          SQL statement ID: <code>{page.statement_id}</code>
        </p>
      </TechnicalDetails>
    </section>
  );
}
