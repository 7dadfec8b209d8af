import type { EndpointState } from "../api/types";

const tone: Record<EndpointState, string> = {
  READY: "ok",
  NOT_READY: "warn",
  UPDATING: "info",
  UPDATE_FAILED: "bad",
};

export function StateBadge({ state }: { state: EndpointState }) {
  return (
    <span className={`badge badge-${tone[state]}`} data-state={state}>
      {state.replace("_", " ").toLowerCase()}
    </span>
  );
}
