import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Fragment, useState } from "react";
import { api } from "../api/client";
import { formatMs, formatTime, prettyJson } from "../format";
import { ErrorPanel } from "./ErrorPanel";
import { Loading } from "./Loading";
import { Pager } from "./Pager";
import { StatusBadge } from "./StatusBadge";

const PAGE = 10;

export function InferenceHistory() {
  const [offset, setOffset] = useState(0);
  const [open, setOpen] = useState<string | null>(null);
  const logs = useQuery({
    queryKey: ["serving", "logs", offset],
    queryFn: () => api.get("/api/model-serving/logs", { query: { limit: PAGE, offset } }),
    placeholderData: keepPreviousData,
  });
  return (
    <section className="card" aria-labelledby="history-h" data-testid="history">
      <h2 id="history-h">Your inference history</h2>
      {logs.isPending ? (
        <Loading label="Loading history…" />
      ) : logs.isError ? (
        <ErrorPanel error={logs.error} onRetry={() => void logs.refetch()} />
      ) : logs.data.items.length === 0 ? (
        <p className="muted">No invocations yet.</p>
      ) : (
        <>
          <div className="table-scroll">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">
                    <span className="visually-hidden">Expand</span>
                  </th>
                  <th scope="col">Time</th>
                  <th scope="col">Endpoint</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="num">
                    Duration
                  </th>
                </tr>
              </thead>
              <tbody>
                {logs.data.items.map((l) => {
                  const expanded = open === l.request_id;
                  return (
                    <Fragment key={l.request_id}>
                      <tr data-endpoint={l.endpoint_name} data-request-id={l.request_id} className="history-row">
                        <td>
                          <button
                            type="button"
                            className="icon-button small"
                            aria-expanded={expanded}
                            aria-label={`${expanded ? "Hide" : "Show"} details of the call to ${l.endpoint_name} at ${formatTime(l.created_at)}`}
                            onClick={() => setOpen(expanded ? null : l.request_id)}
                            data-track="history-expand"
                          >
                            {expanded ? "▾" : "▸"}
                          </button>
                        </td>
                        <td>{formatTime(l.created_at)}</td>
                        <td>
                          <code>{l.endpoint_name}</code>
                        </td>
                        <td>
                          <StatusBadge status={l.status} />
                        </td>
                        <td className="num" title="From the server's call to the model until its answer">
                          {formatMs(l.execution_time_ms)}
                        </td>
                      </tr>
                      {expanded && (
                        <tr className="history-detail">
                          <td colSpan={5}>
                            <div className="history-grid">
                              <div>
                                <h4>Inputs</h4>
                                <pre className="code">{prettyJson(l.inputs)}</pre>
                              </div>
                              <div>
                                <h4>{l.error_message ? "Error" : "Predictions"}</h4>
                                <pre className="code">{l.error_message ?? prettyJson(l.predictions)}</pre>
                              </div>
                            </div>
                            <p className="muted small">
                              Completed {formatTime(l.completed_at)} · Request ID <code>{l.request_id}</code>
                            </p>
                          </td>
                        </tr>
                      )}
                    </Fragment>
                  );
                })}
              </tbody>
            </table>
          </div>
          <Pager
            label="history"
            offset={offset}
            limit={PAGE}
            count={logs.data.items.length}
            total={logs.data.total_count}
            hasMore={offset + logs.data.items.length < logs.data.total_count}
            busy={logs.isFetching}
            onChange={setOffset}
          />
        </>
      )}
    </section>
  );
}
