import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { blocksChildren } from "../api/errors";
import { formatTime } from "../format";
import { QueryView } from "./QueryView";
import { TablePreview } from "./TablePreview";

export function TableDetailView({ catalog, schema, table }: { catalog: string; schema: string; table: string }) {
  const detail = useQuery({
    queryKey: ["uc", "table", catalog, schema, table],
    queryFn: () =>
      api.get("/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables/{table}", {
        path: { catalog, schema, table },
      }),
  });
  return (
    <>
      <section className="card" aria-labelledby="table-h">
        <QueryView query={detail} loadingLabel="Loading table…">
          {(t) => (
            <>
              <h2 id="table-h" className="table-title">
                {t.full_name}
              </h2>
              {t.comment && <p>{t.comment}</p>}
              <dl className="props inline">
                <dt>Type</dt>
                <dd>{t.table_type ?? "—"}</dd>
                <dt>Format</dt>
                <dd>{t.data_source_format ?? "—"}</dd>
                <dt>Owner</dt>
                <dd>{t.owner ?? "—"}</dd>
                <dt>Created</dt>
                <dd>{formatTime(t.created_at)}</dd>
                <dt>Updated</dt>
                <dd>{formatTime(t.updated_at)}</dd>
              </dl>
              <h3>Columns ({t.columns.length})</h3>
              <div className="table-scroll">
                <table className="table" data-testid="columns-table">
                  <thead>
                    <tr>
                      <th scope="col">#</th>
                      <th scope="col">Name</th>
                      <th scope="col">Type</th>
                      <th scope="col">Nullable</th>
                      <th scope="col">Comment</th>
                    </tr>
                  </thead>
                  <tbody>
                    {t.columns.map((c) => (
                      <tr key={c.name}>
                        <td className="cell-number">{c.position}</td>
                        <td>
                          <code>{c.name}</code>
                        </td>
                        <td>
                          <span className="chip mono">{c.type_text}</span>
                        </td>
                        <td>{c.nullable ? "yes" : "no"}</td>
                        <td className="muted">{c.comment ?? ""}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </>
          )}
        </QueryView>
      </section>
      {/* A table the user may not read (or that is gone) has no rows to preview either. */}
      {!(detail.isError && blocksChildren(detail.error)) && <TablePreview catalog={catalog} schema={schema} table={table} />}
    </>
  );
}
