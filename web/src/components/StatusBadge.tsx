import type { InferenceLog } from "../api/types";

const tone: Record<InferenceLog["status"], string> = { SUCCESS: "ok", ERROR: "bad", TIMEOUT: "warn" };

export function StatusBadge({ status }: { status: InferenceLog["status"] }) {
  return <span className={`badge badge-${tone[status]}`}>{status.toLowerCase()}</span>;
}
