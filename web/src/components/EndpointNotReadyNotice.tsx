// The warning shown above the invoke form or chat of a serving endpoint that cannot take calls
// now, and the rule for which states can: the server invokes READY and UPDATING endpoints (an
// updating one still serves its previous configuration) and refuses the others with
// ENDPOINT_NOT_READY.
import type { EndpointState } from "../api/types";

export function canInvoke(state: EndpointState): boolean {
  return state === "READY" || state === "UPDATING";
}

const WHY: Record<EndpointState, string> = {
  READY: "",
  UPDATING: "",
  NOT_READY: "It is still deploying or has stopped serving; calls are refused until it is ready.",
  UPDATE_FAILED: "Its last configuration update failed; calls are refused until an update succeeds.",
};

export function EndpointNotReadyNotice({ name, state }: { name: string; state: EndpointState }) {
  if (canInvoke(state)) return null;
  return (
    <div className="card notice" role="status" data-testid="endpoint-not-ready" data-state={state}>
      <strong>This endpoint is not ready.</strong> {WHY[state]} Invoking {name} is turned off; reload
      this page to see whether its state has changed.
    </div>
  );
}
