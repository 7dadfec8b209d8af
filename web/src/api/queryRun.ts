// Running a governed query: one POST, and while the warehouse starts, polling the run the
// server answered 202 for until its result is there.
import { api } from "./client";
import type { QueryPending, QueryResult, QueryRunAnswer, RunQueryBody } from "./types";

/** What one run sends: always the parameter values (any JSON, by name), even when empty. */
export type RunRequest = RunQueryBody & { parameters: NonNullable<RunQueryBody["parameters"]> };

export function isPending(answer: QueryRunAnswer): answer is QueryPending {
  return "run_id" in answer;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs one page of a query. While the answer is 202, reports it through `onPending` and polls
 * the run after the server's `poll_after_ms` (kept between 250 ms and 5 s). Aborting `signal`
 * stops the polling; the promise then rejects with the abort reason.
 */
export async function runQuery(
  name: string,
  request: RunRequest,
  signal: AbortSignal,
  onPending: (pending: QueryPending) => void,
): Promise<QueryResult> {
  let answer = await api.post("/api/queries/{name}", { path: { name }, body: request, signal, timeoutMs: 60_000 });
  while (isPending(answer)) {
    onPending(answer);
    await sleep(Math.min(5_000, Math.max(250, answer.poll_after_ms)), signal);
    answer = await api.get("/api/queries/{name}/runs/{run_id}", {
      path: { name, run_id: answer.run_id },
      signal,
    });
  }
  return answer;
}
