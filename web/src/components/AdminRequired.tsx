import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { asApiError } from "../api/errors";

export function AdminRequired({ error }: { error: unknown }) {
  const e = asApiError(error);
  const me = useQuery({ queryKey: ["me"], queryFn: () => api.get("/api/user/me") });
  return (
    <div className="card notice" role="alert" data-testid="admin-required" data-error-code={e.code}>
      <h2>Admins only</h2>
      <p>
        The metrics dashboard is for workspace admins
        {me.isSuccess ? (
          <>
            , and <strong>{me.data.user_id}</strong> is not in an admin group
          </>
        ) : null}
        . Ask an admin to add you to the admins group if you need it.
      </p>
      <p className="muted">{e.message}</p>
      <p className="muted small">
        Correlation ID: <code>{e.correlationId}</code>
      </p>
    </div>
  );
}
