import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api/client";
import { formatMs } from "../format";
import { PAGE_SIZE_KEY, pageSizeOf, usePreferenceValue } from "../preferences";
import { DataGrid } from "./DataGrid";
import { ErrorPanel } from "./ErrorPanel";
import { Loading } from "./Loading";
import { Pager } from "./Pager";
import { TechnicalDetails } from "./TechnicalDetails";

/** The first rows of a table, a page at a time (`preview.page_size` rows, default 10). */
export function TablePreview({ catalog, schema, table }: { catalog: string; schema: string; table: string }) {
  const [offset, setOffset] = useState(0);
  const stored = usePreferenceValue(PAGE_SIZE_KEY);
  const limit = pageSizeOf(stored);
  const rows = useQuery({
    queryKey: ["uc", "rows", catalog, schema, table, offset, limit],
    queryFn: async () => {
      const started = performance.now();
      const page = await api.get("/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables/{table}/rows", {
        path: { catalog, schema, table },
        query: { limit, offset },
        timeoutMs: 60_000,
      });
      return { offset, page, roundTripMs: performance.now() - started };
    },
    placeholderData: keepPreviousData,
    // Wait for the preference, so the first page has its size.
    enabled: stored !== undefined,
  });
  return (
    <section className="card" aria-labelledby="preview-h" data-testid="preview">
      <div className="card-header">
        <h3 id="preview-h">Data preview</h3>
        {rows.isSuccess && (
          <span className="muted small" data-testid="preview-timing">
            {formatMs(rows.data.roundTripMs)}
            {rows.data.page.execution_time_ms > 0 && ` (${formatMs(rows.data.page.execution_time_ms)} on the SQL warehouse)`}
          </span>
        )}
      </div>
      {rows.isPending ? (
        <Loading label="Running the query on the SQL warehouse…" />
      ) : rows.isError ? (
        <ErrorPanel error={rows.error} onRetry={() => void rows.refetch()} />
      ) : (
        <>
          <div aria-busy={rows.isFetching} className={rows.isPlaceholderData ? "stale" : undefined}>
            <DataGrid columns={rows.data.page.columns} rows={rows.data.page.rows} />
          </div>
          {rows.isFetching && <Loading label="Loading page…" />}
          <TechnicalDetails>
            <p className="muted small">
              SQL statement ID: <code data-testid="statement-id">{rows.data.page.statement_id}</code>
            </p>
          </TechnicalDetails>
          <Pager
            label="preview"
            offset={rows.data.offset}
            limit={limit}
            count={rows.data.page.rows.length}
            hasMore={rows.data.page.has_more}
            busy={rows.isFetching}
            onChange={setOffset}
          />
        </>
      )}
    </section>
  );
}
