import type { UseMutationResult } from "@tanstack/react-query";
import type { Invocation } from "../api/types";
import { formatMs, prettyJson } from "../format";
import { ErrorPanel } from "./ErrorPanel";
import { Loading } from "./Loading";
import { TechnicalDetails } from "./TechnicalDetails";

/**
 * A model's answer: the round trip measured in the browser, the model call's own time only when
 * the server measured one, the predictions, and the request id folded under "Technical details".
 */
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
            <dt>Round trip</dt>
            <dd data-testid="round-trip">{formatMs(roundTripMs)}</dd>
            {mutation.data.execution_time_ms > 0 && (
              <>
                <dt>Model call</dt>
                <dd data-testid="model-time" title="The model endpoint's answer time, as the server measured it">
                  {formatMs(mutation.data.execution_time_ms)}
                </dd>
              </>
            )}
          </dl>
          <pre className="code" data-testid="predictions">
            {prettyJson(mutation.data.predictions)}
          </pre>
          <TechnicalDetails>
            <p className="muted small">
              Request ID (in your inference history): <code data-testid="request-id">{mutation.data.request_id}</code>
            </p>
          </TechnicalDetails>
        </>
      )}
    </div>
  );
}
