import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api/client";
import { formatMs } from "../format";
import { DataGrid } from "./DataGrid";
import { ErrorPanel } from "./ErrorPanel";
import { Loading } from "./Loading";
import { Pager } from "./Pager";

const PAGE = 10;

export function TablePreview({ catalog, schema, table }: { catalog: string; schema: string; table: string }) {
  const [offset, setOffset] = useState(0);
  const rows = useQuery({
    queryKey: ["uc", "rows", catalog, schema, table, offset],
    queryFn: async () => ({
      offset,
      page: await api.get("/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables/{table}/rows", {
        path: { catalog, schema, table },
        query: { limit: PAGE, offset },
        timeoutMs: 60_000,
      }),
    }),
    placeholderData: keepPreviousData,
  });
  return (
    <section className="card" aria-labelledby="preview-h" data-testid="preview">
      <div className="card-header">
        <h3 id="preview-h">Data preview</h3>
        {rows.isSuccess && (
          <span className="muted small" data-testid="preview-timing">
            {formatMs(rows.data.page.execution_time_ms)} on the SQL warehouse · statement{" "}
            <code>{rows.data.page.statement_id}</code>
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
          <Pager
            label="preview"
            offset={rows.data.offset}
            limit={PAGE}
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
