import { useEffect, useRef, useState, type FormEvent } from "react";
import { ApiError } from "../api/errors";
import { runQuery, type RunRequest } from "../api/queryRun";
import type { QueryDefinition, QueryPending, QueryResult } from "../api/types";
import { initialValues, toRequestParameters, type ParameterValues } from "../queryParameters";
import { ErrorPanel } from "./ErrorPanel";
import { Loading } from "./Loading";
import { ParameterField } from "./ParameterField";
import { QueryResultView } from "./QueryResultView";

const PAGE_SIZES = [10, 50, 100, 500] as const;

/** The parameters and page size of the run on screen, reused to fetch its later pages. */
interface Submitted {
  parameters: RunRequest["parameters"];
  limit: number;
}

type Run =
  | { state: "idle" }
  | { state: "running"; pending: QueryPending | null }
  | { state: "failed"; error: unknown };

/** The parameter a validation error names (`detail.field` = `parameters.<name>`), if any. */
function fieldOf(error: unknown): string | undefined {
  if (!(error instanceof ApiError) || typeof error.detail !== "object" || error.detail === null) return undefined;
  const field = (error.detail as { field?: unknown }).field;
  return typeof field === "string" && field.startsWith("parameters.") ? field.slice("parameters.".length) : undefined;
}

/** One query: its typed parameter form, the run (with the warehouse's start-up), and its pages. */
export function QueryPanel({ query }: { query: QueryDefinition }) {
  const [values, setValues] = useState<ParameterValues>(() => initialValues(query.parameters));
  const [pageSize, setPageSize] = useState<number>(50);
  const [run, setRun] = useState<Run>({ state: "idle" });
  const [submitted, setSubmitted] = useState<Submitted | null>(null);
  // Pages already fetched stay here, so "Previous" needs no request.
  const [pages, setPages] = useState<QueryResult[]>([]);
  const [pageIndex, setPageIndex] = useState(0);
  const controller = useRef<AbortController | null>(null);

  useEffect(() => () => controller.current?.abort(), []);

  const fetchPage = async (body: RunRequest, onResult: (r: QueryResult) => void) => {
    controller.current?.abort();
    const abort = new AbortController();
    controller.current = abort;
    setRun({ state: "running", pending: null });
    try {
      const result = await runQuery(query.name, body, abort.signal, (pending) => setRun({ state: "running", pending }));
      onResult(result);
      setRun({ state: "idle" });
    } catch (e) {
      setRun(abort.signal.aborted ? { state: "idle" } : { state: "failed", error: e });
    } finally {
      if (controller.current === abort) controller.current = null;
    }
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const next = { parameters: toRequestParameters(query.parameters, values), limit: pageSize };
    void fetchPage(next, (result) => {
      setSubmitted(next);
      setPages([result]);
      setPageIndex(0);
    });
  };

  const goTo = (index: number) => {
    if (index < pages.length) {
      setPageIndex(index);
      return;
    }
    const last = pages[pages.length - 1];
    if (!submitted || !last?.next_page_token) return;
    void fetchPage({ ...submitted, page_token: last.next_page_token }, (result) => {
      setPages((p) => [...p, result]);
      setPageIndex(index);
    });
  };

  const error = run.state === "failed" ? run.error : null;
  const errorField = fieldOf(error);
  const busy = run.state === "running";

  return (
    <>
      <section className="card" aria-labelledby="query-h" data-testid="query-panel" data-query={query.name}>
        <div className="card-header">
          <h2 id="query-h">{query.title}</h2>
          <span className="badge badge-neutral" title="Whose identity runs the query on the warehouse">
            runs as {query.run_as === "user" ? "you" : "the app"}
          </span>
        </div>
        {query.description && <p className="muted">{query.description}</p>}
        <form className="form" onSubmit={submit} aria-label={`Parameters of ${query.title}`}>
          {query.parameters.length === 0 ? (
            <p className="muted small">This query takes no parameters.</p>
          ) : (
            <div className="param-grid">
              {query.parameters.map((p) => (
                <ParameterField
                  key={p.name}
                  parameter={p}
                  value={values[p.name] ?? ""}
                  onChange={(v) => setValues((old) => ({ ...old, [p.name]: v }))}
                  error={errorField === p.name && error instanceof ApiError ? error.message : undefined}
                />
              ))}
            </div>
          )}
          <div className="form-row">
            <div className="field">
              <label htmlFor="query-page-size">Rows per page</label>
              <select id="query-page-size" value={pageSize} onChange={(e) => setPageSize(Number(e.target.value))}>
                {PAGE_SIZES.map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
              </select>
            </div>
            <button type="submit" className="button primary" disabled={busy} data-track="query-run">
              Run query
            </button>
            {query.cache_ttl_secs > 0 && (
              <span className="muted small">Results are cached for {query.cache_ttl_secs} s.</span>
            )}
          </div>
        </form>
        {busy && (
          <div className="run-progress" data-testid="query-running">
            <Loading
              label={
                run.pending
                  ? `The SQL warehouse is starting${run.pending.warehouse_state ? ` (state ${run.pending.warehouse_state})` : ""}… the query runs as soon as it is up.`
                  : "Running the query…"
              }
            />
            <button type="button" className="button secondary" onClick={() => controller.current?.abort()}>
              Cancel
            </button>
          </div>
        )}
        {error !== null && <ErrorPanel error={error} />}
      </section>
      {submitted && pages.length > 0 && (
        <QueryResultView
          query={query.name}
          parameters={submitted.parameters}
          pages={pages}
          pageIndex={pageIndex}
          pageSize={submitted.limit}
          busy={busy}
          onPage={goTo}
        />
      )}
    </>
  );
}
