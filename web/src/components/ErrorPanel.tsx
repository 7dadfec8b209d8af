import { asApiError, errorTitle, isRetryable, missingGrant } from "../api/errors";
import { TechnicalDetails } from "./TechnicalDetails";

/**
 * An error for people: its title and message, what to do about a denial (which privilege on
 * which securable to ask for), "Try again" only where asking again may help, and the code and
 * correlation id (for the server log) folded away under "Technical details".
 */
export function ErrorPanel({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const e = asApiError(error);
  const grant = missingGrant(e);
  const retry = onRetry !== undefined && isRetryable(e.code);
  return (
    <div className="error-panel" role="alert" data-error-code={e.code}>
      <div className="error-title">{errorTitle(e.code)}</div>
      <p className="error-message">{e.message}</p>
      {grant && (
        <p className="muted" data-testid="error-grant">
          Ask the owner of the {grant.securableType} <code>{grant.securable}</code> or a workspace admin to grant you{" "}
          <strong>{grant.privilege}</strong>.
        </p>
      )}
      {e.retryAfter !== undefined && <p className="muted">Retry after {e.retryAfter} s.</p>}
      {retry && (
        <button type="button" className="button secondary" onClick={onRetry}>
          Try again
        </button>
      )}
      <TechnicalDetails>
        <dl className="props inline small">
          <dt>Error code</dt>
          <dd>
            <code className="error-code">{e.code}</code>
          </dd>
          {e.status > 0 && (
            <>
              <dt>HTTP status</dt>
              <dd>{e.status}</dd>
            </>
          )}
          <dt>Correlation ID</dt>
          <dd>
            <code data-testid="correlation-id">{e.correlationId}</code>
          </dd>
        </dl>
      </TechnicalDetails>
    </div>
  );
}
