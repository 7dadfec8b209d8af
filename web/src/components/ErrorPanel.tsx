import { asApiError, errorTitle } from "../api/errors";

/** Shows an error's title, message and correlation id (for the server log). */
export function ErrorPanel({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const e = asApiError(error);
  return (
    <div className="error-panel" role="alert" data-error-code={e.code}>
      <div className="error-title">
        {errorTitle(e.code)} <code className="error-code">{e.code}</code>
      </div>
      <p className="error-message">{e.message}</p>
      {e.retryAfter !== undefined && <p className="muted">Retry after {e.retryAfter} s.</p>}
      <p className="muted small">
        Correlation ID: <code data-testid="correlation-id">{e.correlationId}</code>
      </p>
      {onRetry && (
        <button type="button" className="button secondary" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}
