// Server-sent events read from a `fetch` (a POST with a JSON body, which `EventSource` cannot
// send), shared by the chat stream (docs/chat.md) and the Genie stream (docs/genie.md). Both end
// the same way: `data: [DONE]` after an answer, or a last event whose data is
// `{"error": <the API's error envelope>}`; the request headers and the refusals before the
// stream (non-2xx JSON error answers) are those of every API call.
import { newCorrelationId } from "./client";
import { ApiError, isErrorBody } from "./errors";

/** How a stream ended. */
export type StreamEnd =
  /** `data: [DONE]`. */
  | { kind: "done" }
  /** The caller aborted (Stop). */
  | { kind: "cancelled" }
  /** An error event (`data: {"error": <envelope>}`: its code, message and correlation id), a
   * connection cut mid-stream, or a body that ended without `[DONE]`. */
  | { kind: "failed"; error: ApiError };

/** One event: its `event:` name (`message` when it has none) and its JSON `data`, parsed. */
export interface SseEvent {
  event: string;
  data: unknown;
}

/**
 * Splits a growing text buffer into complete SSE events (separated by a blank line, `\n\n` or
 * `\r\n\r\n`) and returns them with the unfinished rest (a `\r` at its end waits for its `\n`).
 */
export function splitEvents(buffer: string): { events: string[]; rest: string } {
  const normalised = buffer.replace(/\r\n/g, "\n");
  const parts = normalised.split("\n\n");
  const rest = parts.pop() ?? "";
  return { events: parts, rest };
}

/** The name and `data` of one SSE event (its `data:` lines joined by `\n`), or null for a
 * comment-only event such as `: keep-alive`. */
export function parseEvent(event: string): { event: string; data: string } | null {
  const lines: string[] = [];
  let name = "message";
  for (const line of event.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") lines.push(value);
    else if (field === "event") name = value;
    // `id:` and `retry:` are not used by dbapp's streams.
  }
  return lines.length === 0 ? null : { event: name, data: lines.join("\n") };
}

export interface EventStreamOptions {
  /** The API path (already encoded). */
  url: string;
  body: unknown;
  signal: AbortSignal;
  /** Called once the server accepted the request (2xx), before the first event. */
  onStart?: (response: Response, correlationId: string) => void;
  /** Called with each event that is neither `[DONE]` nor an error, in order. */
  onEvent: (event: SseEvent) => void;
}

/**
 * POSTs `body` as JSON and reads the answer as server-sent events. Resolves with how the stream
 * ended; rejects with an `ApiError` when the server refused the request before the stream began
 * (non-2xx), or could not be reached.
 */
export async function postEventStream(options: EventStreamOptions): Promise<StreamEnd> {
  const correlationId = newCorrelationId();
  let response: Response;
  try {
    response = await fetch(options.url, {
      method: "POST",
      headers: {
        Accept: "text/event-stream",
        "Content-Type": "application/json",
        "X-Correlation-ID": correlationId,
      },
      body: JSON.stringify(options.body),
      credentials: "same-origin",
      signal: options.signal,
    });
  } catch (e) {
    if (options.signal.aborted) return { kind: "cancelled" };
    throw ApiError.client(
      "NETWORK_ERROR",
      `The server could not be reached (${e instanceof Error ? e.message : String(e)}).`,
      correlationId,
    );
  }

  const responseId = response.headers.get("X-Correlation-ID") ?? correlationId;
  if (!response.ok) {
    let parsed: unknown;
    try {
      parsed = await response.json();
    } catch {
      parsed = undefined;
    }
    if (isErrorBody(parsed)) throw ApiError.fromBody(response.status, parsed);
    throw ApiError.client(
      "BAD_RESPONSE",
      `The server answered HTTP ${response.status} without an error body.`,
      responseId,
      response.status,
    );
  }
  if (!response.body) {
    throw ApiError.client("BAD_RESPONSE", "The server answered without a body.", responseId);
  }
  options.onStart?.(response, responseId);

  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<string>;
      try {
        chunk = await reader.read();
      } catch {
        if (options.signal.aborted) return { kind: "cancelled" };
        return {
          kind: "failed",
          error: ApiError.client("NETWORK_ERROR", "The connection was lost during the answer.", responseId),
        };
      }
      if (chunk.done) break;
      buffer += chunk.value;
      const { events, rest } = splitEvents(buffer);
      buffer = rest;
      for (const raw of events) {
        const event = parseEvent(raw);
        if (event === null) continue;
        if (event.data === "[DONE]") return { kind: "done" };
        let parsed: unknown;
        try {
          parsed = JSON.parse(event.data);
        } catch {
          return {
            kind: "failed",
            error: ApiError.client("BAD_RESPONSE", "The stream carried an event that is not JSON.", responseId),
          };
        }
        const error = (parsed as { error?: unknown } | null)?.error;
        if (error !== undefined) {
          // The stream had started, so the answer's status was 200; the envelope is the API's.
          if (isErrorBody(error)) return { kind: "failed", error: ApiError.fromBody(200, error) };
          return {
            kind: "failed",
            error: ApiError.client("BAD_RESPONSE", "The stream ended with an unreadable error.", responseId),
          };
        }
        options.onEvent({ event: event.event, data: parsed });
      }
    }
  } finally {
    // Ends the body once the stream's end was read (or on an early return): nothing more is wanted.
    reader.cancel().catch(() => undefined);
  }
  if (options.signal.aborted) return { kind: "cancelled" };
  return {
    kind: "failed",
    error: ApiError.client("BAD_RESPONSE", "The stream ended before the answer was complete.", responseId),
  };
}
