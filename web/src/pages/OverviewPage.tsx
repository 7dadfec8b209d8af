import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { QueryView } from "../components/QueryView";
import { formatCount } from "../format";

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

      <div className="card-grid">
        <section className="card" aria-labelledby="identity-h">
          <h2 id="identity-h">Identity</h2>
          <QueryView query={ws} loadingLabel="Resolving your identity…">
            {({ user }) => (
              <dl className="props" data-testid="overview-identity">
                <dt>Name</dt>
                <dd>{user.display_name ?? "—"}</dd>
                <dt>User ID</dt>
                <dd>
                  <code>{user.user_id}</code>
                </dd>
                <dt>Email</dt>
                <dd>{user.email ?? "—"}</dd>
                <dt>Groups</dt>
                <dd>
                  {user.groups.length === 0
                    ? "—"
                    : user.groups.map((g) => (
                        <span key={g} className="chip">
                          {g}
                        </span>
                      ))}
                </dd>
                <dt>Admin</dt>
                <dd>{user.is_admin ? "Yes" : "No"}</dd>
                <dt>Active</dt>
                <dd>{user.active ? "Yes" : "No"}</dd>
              </dl>
            )}
          </QueryView>
        </section>

        <section className="card" aria-labelledby="workspace-h">
          <h2 id="workspace-h">Workspace</h2>
          <QueryView query={ws} loadingLabel="Loading workspace…">
            {({ workspace }) => (
              <dl className="props" data-testid="overview-workspace">
                <dt>Name</dt>
                <dd>{workspace.name ?? "—"}</dd>
                <dt>Host</dt>
                <dd>
                  <code>{workspace.host}</code>
                </dd>
                <dt>Workspace ID</dt>
                <dd>
                  <code>{String(workspace.workspace_id ?? "—")}</code>
                </dd>
              </dl>
            )}
          </QueryView>
        </section>

        <section className="card" aria-labelledby="auth-h">
          <h2 id="auth-h">Authentication</h2>
          <QueryView query={status} loadingLabel="Checking authentication…">
            {(s) => (
              <dl className="props" data-testid="overview-auth">
                <dt>Authenticated</dt>
                <dd>
                  <span className={s.authenticated ? "badge badge-ok" : "badge badge-bad"}>
                    {s.authenticated ? "yes" : "no"}
                  </span>
                </dd>
                <dt>Method</dt>
                <dd>
                  <code>{s.auth_method}</code> (on behalf of the user)
                </dd>
                <dt>User identity</dt>
                <dd>{s.has_user_identity ? "forwarded by the proxy" : "none"}</dd>
                <dt>Your events (24h)</dt>
                <dd>{usage.isSuccess ? formatCount(usage.data.count) : usage.isError ? "—" : "…"}</dd>
              </dl>
            )}
          </QueryView>
        </section>
      </div>

      <section className="card" aria-labelledby="whom-h">
        <h2 id="whom-h">What runs as whom</h2>
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Call</th>
              <th scope="col">Runs as</th>
              <th scope="col">How</th>
            </tr>
          </thead>
          <tbody>
            <tr>
              <td>Identity (SCIM Me), Unity Catalog, SQL previews, Model Serving</td>
              <td>
                <span className="badge badge-info">you</span>
              </td>
              <td>Your token from <code>X-Forwarded-Access-Token</code>; never the app's identity</td>
            </tr>
            <tr>
              <td>Preferences, inference history, usage and performance metrics</td>
              <td>
                <span className="badge badge-neutral">the app</span>
              </td>
              <td>The app's service principal logs in to Lakebase; every row is scoped to your user id</td>
            </tr>
            <tr>
              <td>Lakebase credential minting</td>
              <td>
                <span className="badge badge-neutral">the app</span>
              </td>
              <td>OAuth M2M with the app's client id and secret; rotating Postgres logins</td>
            </tr>
          </tbody>
        </table>
      </section>
    </div>
  );
}
