import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { Link } from "../components/Link";
import { QueryPanel } from "../components/QueryPanel";
import { QueryView } from "../components/QueryView";
import { pathOf } from "../router";

export function QueriesPage({ name }: { name: string | undefined }) {
  const queries = useQuery({
    queryKey: ["queries"],
    queryFn: () => api.get("/api/queries"),
  });
  return (
    <div className="page">
      <header className="page-header">
        <h1>Queries</h1>
        <p className="muted">Reviewed SQL with typed parameters, run on the SQL warehouse. You choose the values; the SQL stays as written.</p>
      </header>
      <div className="split">
        <section className="card browser" aria-labelledby="queries-h">
          <h2 id="queries-h">Queries</h2>
          <QueryView query={queries} loadingLabel="Loading queries…">
            {(page) =>
              page.items.length === 0 ? (
                <p className="muted">No queries are defined.</p>
              ) : (
                <ul className="names" data-testid="query-list">
                  {page.items.map((q) => (
                    <li key={q.name}>
                      <Link
                        href={pathOf("queries", q.name)}
                        className={q.name === name ? "name-link active" : "name-link"}
                        aria-current={q.name === name ? "page" : undefined}
                        data-name={q.name}
                        data-track="query-select"
                      >
                        <span className="name">{q.title}</span>
                        <span className="muted small name-comment" title={q.description || q.name}>
                          {q.description || q.name}
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
          {name === undefined ? (
            <div className="card empty-state">
              <p>Choose a query to set its parameters and run it.</p>
            </div>
          ) : (
            <QueryView query={queries} loadingLabel="Loading the query…">
              {(page) => {
                const query = page.items.find((q) => q.name === name);
                return query ? (
                  <QueryPanel key={query.name} query={query} />
                ) : (
                  <div className="card empty-state" role="alert">
                    <p>
                      There is no query named <code>{name}</code>.
                    </p>
                  </div>
                );
              }}
            </QueryView>
          )}
        </div>
      </div>
    </div>
  );
}
