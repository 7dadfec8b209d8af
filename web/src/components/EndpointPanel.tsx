import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { blocksChildren } from "../api/errors";
import { formatTime } from "../format";
import { ChatView } from "./ChatView";
import { canInvoke, EndpointNotReadyNotice } from "./EndpointNotReadyNotice";
import { InvokeForm } from "./InvokeForm";
import { QueryView } from "./QueryView";
import { StateBadge } from "./StateBadge";

export function EndpointPanel({ name }: { name: string }) {
  const detail = useQuery({
    queryKey: ["serving", "endpoint", name],
    queryFn: () => api.get("/api/model-serving/endpoints/{name}", { path: { name } }),
  });
  const schema = useQuery({
    queryKey: ["serving", "schema", name],
    queryFn: () => api.get("/api/model-serving/endpoints/{name}/schema", { path: { name } }),
  });
  // Until the state is known, invoking stays possible: the server refuses a not-ready endpoint.
  const state = detail.data?.state;
  const blocked = state !== undefined && !canInvoke(state);
  return (
    <>
      <section className="card" aria-labelledby="endpoint-h">
        <QueryView query={detail} loadingLabel="Loading endpoint…">
          {(e) => (
            <>
              <div className="card-header">
                <h2 id="endpoint-h">{e.name}</h2>
                <StateBadge state={e.state} />
              </div>
              <dl className="props inline">
                <dt>Task</dt>
                <dd>{e.task ?? "—"}</dd>
                <dt>Model</dt>
                <dd>
                  {e.model_name ?? "—"}
                  {e.model_version ? ` v${e.model_version}` : ""}
                </dd>
                <dt>Created</dt>
                <dd>{formatTime(e.creation_timestamp)}</dd>
                <dt>Updated</dt>
                <dd>{formatTime(e.last_updated_timestamp)}</dd>
              </dl>
            </>
          )}
        </QueryView>
      </section>
      {state !== undefined && <EndpointNotReadyNotice name={name} state={state} />}
      {/* A missing or denied endpoint is said once, above; its schema would fail the same way. */}
      {!(detail.isError && blocksChildren(detail.error)) && (
      <QueryView query={schema} loadingLabel="Loading the endpoint's schema…">
        {(s) =>
          s.kind === "chat" ? (
            <ChatView name={name} disabled={blocked} />
          ) : (
            <InvokeForm name={name} kind={s.kind} example={s.example} inputSchema={s.input_schema} disabled={blocked} />
          )
        }
      </QueryView>
      )}
    </>
  );
}
