import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import type { MeWorkspace } from "../api/types";
import { ErrorPanel } from "../components/ErrorPanel";
import { Loading } from "../components/Loading";
import { formatCount } from "../format";
import { TechnicalDetails } from "../components/TechnicalDetails";

type StoreKind = MeWorkspace["store"]["kind"];

/** The store's kind in words, and what it means for the data. */
const STORE: Record<StoreKind, { label: string; about: string }> = {
  sqlite: { label: "SQLite", about: "A file on the app's own disk: fine for local work, lost when a container is replaced." },
  postgres: { label: "PostgreSQL", about: "A Postgres database named by DATABASE_URL, with a password of its own." },
  lakebase_provisioned: {
    label: "Lakebase Provisioned",
    about: "A Databricks Lakebase database instance; the app logs in with short-lived OAuth tokens.",
  },
  lakebase_autoscaling: {
    label: "Lakebase Autoscaling",
    about: "A Databricks Lakebase Autoscaling endpoint; the app logs in with short-lived OAuth tokens.",
  },
  none: { label: "None", about: "No database is configured: preferences and histories cannot be saved." },
};

/** Who you are, which workspace and store the app uses, and which identity each feature runs as. */
export function OverviewPage() {
  const ws = useQuery({ queryKey: ["me", "workspace"], queryFn: () => api.get("/api/user/me/workspace") });
  const status = useQuery({ queryKey: ["auth-status"], queryFn: () => api.get("/api/user/auth/status") });
  const usage = useQuery({
    queryKey: ["usage-count", "24h"],
    queryFn: () => api.get("/api/v1/metrics/usage/count", { query: { time_range: "24h" } }),
  });

  return (
    <div className="page">
      <header className="page-header">
        <h1>Overview</h1>
        <p className="muted">Who you are, where you are, and who each call runs as.</p>
      </header>

      {ws.isPending ? (
        <Loading label="Resolving your identity…" />
      ) : ws.isError ? (
        // One panel for the one failed call, not one per card that needed it.
        <ErrorPanel error={ws.error} onRetry={() => void ws.refetch()} />
      ) : (
        <>
          <div className="card-grid">
            <section className="card" aria-labelledby="identity-h">
              <h2 id="identity-h">You</h2>
              <dl className="props" data-testid="overview-identity">
                <dt>Name</dt>
                <dd>{ws.data.user.display_name ?? ws.data.user.user_id}</dd>
                <dt>Email</dt>
                <dd>{ws.data.user.email ?? "—"}</dd>
                <dt>Groups</dt>
                <dd>
                  {ws.data.user.groups.length === 0
                    ? "—"
                    : ws.data.user.groups.map((g) => (
                        <span key={g} className="chip">
                          {g}
                        </span>
                      ))}
                </dd>
                <dt>Admin</dt>
                <dd>{ws.data.user.is_admin ? "Yes" : "No"}</dd>
                {!ws.data.user.active && (
                  <>
                    <dt>Account</dt>
                    <dd>
                      <span className="badge badge-bad">inactive</span>
                    </dd>
                  </>
                )}
              </dl>
              <TechnicalDetails>
                <dl className="props small">
                  <dt>User ID</dt>
                  <dd>
                    <code>{ws.data.user.user_id}</code>
                  </dd>
                  <dt>Active</dt>
                  <dd>{ws.data.user.active ? "yes" : "no"}</dd>
                </dl>
              </TechnicalDetails>
            </section>

            <section className="card" aria-labelledby="workspace-h">
              <h2 id="workspace-h">Workspace</h2>
              <dl className="props" data-testid="overview-workspace">
                <dt>Workspace</dt>
                <dd data-testid="workspace-name">{ws.data.workspace.name}</dd>
                <dt>Signed in</dt>
                <dd>
                  {status.isSuccess ? (
                    <span className={status.data.authenticated ? "badge badge-ok" : "badge badge-bad"}>
                      {status.data.authenticated ? "yes" : "no"}
                    </span>
                  ) : (
                    "…"
                  )}{" "}
                  as yourself, through Databricks Apps
                </dd>
                <dt>Your events (24h)</dt>
                <dd>{usage.isSuccess ? formatCount(usage.data.count) : usage.isError ? "—" : "…"}</dd>
              </dl>
              <TechnicalDetails>
                <dl className="props small">
                  <dt>URL</dt>
                  <dd>
                    <code>{ws.data.workspace.host}</code>
                  </dd>
                  <dt>Workspace ID</dt>
                  <dd>
                    <code>{ws.data.workspace.workspace_id ?? "—"}</code>
                  </dd>
                  <dt>Auth method</dt>
                  <dd>
                    <code>{status.data?.auth_method ?? "obo"}</code>: your token arrives in the{" "}
                    <code>X-Forwarded-Access-Token</code> header
                    {status.isSuccess && !status.data.has_user_identity && " (none was forwarded)"}
                  </dd>
                </dl>
              </TechnicalDetails>
            </section>

            <section className="card" aria-labelledby="store-h">
              <h2 id="store-h">App data</h2>
              <dl className="props" data-testid="overview-store" data-store-kind={ws.data.store.kind}>
                <dt>Store</dt>
                <dd data-testid="store-kind">{STORE[ws.data.store.kind].label}</dd>
                <dt>Runs as</dt>
                <dd>the app's service principal</dd>
              </dl>
              <p className="muted small">{STORE[ws.data.store.kind].about}</p>
            </section>
          </div>

          <section className="card" aria-labelledby="whom-h">
            <h2 id="whom-h">What runs as whom</h2>
            <table className="table" data-testid="overview-whom">
              <thead>
                <tr>
                  <th scope="col">Feature</th>
                  <th scope="col">Runs as</th>
                  <th scope="col">How</th>
                </tr>
              </thead>
              <tbody>
                <tr>
                  <td>Unity Catalog, table previews, SQL queries, Files, Genie, Model Serving, Assistant</td>
                  <td>
                    <span className="badge badge-info">you</span>
                  </td>
                  <td>
                    On your behalf (OBO), with your own Databricks permissions; never the app's. You see only what you may
                    see.
                  </td>
                </tr>
                <tr>
                  <td>Queries marked "runs as the app"</td>
                  <td>
                    <span className="badge badge-neutral">the app</span>
                  </td>
                  <td>The app's service principal, with the grants given to the app; the query says so.</td>
                </tr>
                <tr>
                  <td>Preferences, conversations, inference history, usage metrics</td>
                  <td>
                    <span className="badge badge-neutral">the app</span>
                  </td>
                  <td>
                    Stored in {STORE[ws.data.store.kind].label} by the app's service principal; every row is kept under your
                    user id, and nobody else can read yours.
                  </td>
                </tr>
                {(ws.data.store.kind === "lakebase_provisioned" || ws.data.store.kind === "lakebase_autoscaling") && (
                  <tr>
                    <td>Lakebase logins</td>
                    <td>
                      <span className="badge badge-neutral">the app</span>
                    </td>
                    <td>The app's service principal mints short-lived database tokens and rotates them.</td>
                  </tr>
                )}
              </tbody>
            </table>
          </section>
        </>
      )}
    </div>
  );
}
