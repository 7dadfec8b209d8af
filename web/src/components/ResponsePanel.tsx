import type { UseMutationResult } from "@tanstack/react-query";
import type { Invocation } from "../api/types";
import { formatMs, prettyJson } from "../format";
import { ErrorPanel } from "./ErrorPanel";
import { Loading } from "./Loading";

export function ResponsePanel<V>({
  mutation,
  roundTripMs,
}: {
  mutation: UseMutationResult<Invocation, Error, V>;
  roundTripMs: number | undefined;
}) {
  if (mutation.isIdle) return null;
  return (
    <div className="response" data-testid="response-panel" aria-live="polite">
      <h4>Response</h4>
      {mutation.isPending ? (
        <Loading label="Waiting for the model…" />
      ) : mutation.isError ? (
        <ErrorPanel error={mutation.error} />
      ) : (
        <>
          <dl className="meta">
            <dt>Request ID</dt>
            <dd>
              <code data-testid="request-id">{mutation.data.request_id}</code>
            </dd>
            <dt>Model time</dt>
            <dd>{formatMs(mutation.data.execution_time_ms)}</dd>
            <dt>Round trip</dt>
            <dd>{formatMs(roundTripMs)}</dd>
          </dl>
          <pre className="code" data-testid="predictions">
            {prettyJson(mutation.data.predictions)}
          </pre>
        </>
      )}
    </div>
  );
}
