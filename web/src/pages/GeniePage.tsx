import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { GenieChat } from "../components/GenieChat";
import { Link } from "../components/Link";
import { QueryView } from "../components/QueryView";
import { pathOf } from "../router";

export function GeniePage({ spaceId }: { spaceId: string | undefined }) {
  const spaces = useQuery({
    queryKey: ["genie-spaces"],
    queryFn: () => api.get("/api/genie/spaces", { query: { limit: 100 } }),
  });
  return (
    <div className="page">
      <header className="page-header">
        <h1>Genie</h1>
        <p className="muted">
          Ask a Genie space about its data in plain words. Genie writes the SQL and runs it as you, so you see only
          the rows you may read.
        </p>
      </header>
      <div className="split">
        <section className="card browser" aria-labelledby="spaces-h">
          <h2 id="spaces-h">Spaces</h2>
          <QueryView query={spaces} loadingLabel="Loading spaces…">
            {(page) =>
              page.items.length === 0 ? (
                <p className="muted">No Genie space is shared with you.</p>
              ) : (
                <ul className="names" data-testid="genie-spaces">
                  {page.items.map((s) => (
                    <li key={s.space_id}>
                      <Link
                        href={pathOf("genie", s.space_id)}
                        className={s.space_id === spaceId ? "name-link active" : "name-link"}
                        aria-current={s.space_id === spaceId ? "page" : undefined}
                        data-space-id={s.space_id}
                        data-track="genie-space-select"
                      >
                        <span className="name">{s.title}</span>
                        {s.description && <span className="muted small name-comment" title={s.description}>
                            {s.description}
                          </span>}
                      </Link>
                    </li>
                  ))}
                </ul>
              )
            }
          </QueryView>
        </section>
        <div className="detail">
          {spaceId === undefined ? (
            <div className="card empty-state">
              <p>Choose a space to ask it a question.</p>
            </div>
          ) : (
            <QueryView query={spaces} loadingLabel="Loading the space…">
              {(page) => {
                const space = page.items.find((s) => s.space_id === spaceId);
                return space ? (
                  <GenieChat key={space.space_id} space={space} />
                ) : (
                  <div className="card empty-state" role="alert">
                    <p>
                      No space <code>{spaceId}</code> is shared with you. <Link href="/genie">See your spaces</Link>.
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
