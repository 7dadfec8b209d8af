import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { EndpointPanel } from "../components/EndpointPanel";
import { InferenceHistory } from "../components/InferenceHistory";
import { Link } from "../components/Link";
import { QueryView } from "../components/QueryView";
import { StateBadge } from "../components/StateBadge";
import { DEFAULT_ENDPOINT_KEY, defaultEndpointOf, usePreferenceValue } from "../preferences";
import { pathOf } from "../router";

/**
 * The endpoints the user can see, the chosen one (from the path, else the
 * `serving.default_endpoint` preference when it is still visible), and the inference history.
 */
export function ServingPage({ endpoint: chosen }: { endpoint: string | undefined }) {
  const endpoints = useQuery({
    queryKey: ["serving", "endpoints"],
    queryFn: () => api.get("/api/model-serving/endpoints", { query: { limit: 1000 } }),
  });
  const preferred = defaultEndpointOf(usePreferenceValue(DEFAULT_ENDPOINT_KEY));
  const endpoint =
    chosen ?? (preferred !== null && endpoints.data?.items.some((e) => e.name === preferred) ? preferred : undefined);
  return (
    <div className="page">
      <header className="page-header">
        <h1>Model Serving</h1>
        <p className="muted">Endpoints you can see, invoked with your own token. Every call is kept in your history.</p>
      </header>
      <div className="split">
        <section className="card browser" aria-labelledby="endpoints-h">
          <h2 id="endpoints-h">Endpoints</h2>
          <QueryView query={endpoints} loadingLabel="Loading endpoints…">
            {(page) =>
              page.items.length === 0 ? (
                <p className="muted">No serving endpoints visible to you.</p>
              ) : (
                <ul className="names" data-testid="endpoint-list">
                  {page.items.map((e) => (
                    <li key={e.name}>
                      <Link
                        href={pathOf("serving", e.name)}
                        className={e.name === endpoint ? "name-link active" : "name-link"}
                        aria-current={e.name === endpoint ? "page" : undefined}
                        data-name={e.name}
                        data-track="endpoint-select"
                      >
                        <span className="name">{e.name}</span>
                        <StateBadge state={e.state} />
                        <span className="muted small name-comment" title={e.task ?? e.model_name ?? ""}>
                          {e.task ?? e.model_name ?? ""}
                        </span>
                      </Link>
                    </li>
                  ))}
                </ul>
              )
            }
          </QueryView>
        </section>
        <div className="detail">
          {endpoint ? (
            <EndpointPanel key={endpoint} name={endpoint} />
          ) : (
            <div className="card empty-state">
              <p>Choose an endpoint to invoke it.</p>
              <p className="muted small">
                To open one here every time, choose it as “Model Serving opens” in your preferences.
              </p>
            </div>
          )}
        </div>
      </div>
      <InferenceHistory />
    </div>
  );
}
