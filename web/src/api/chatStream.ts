// The chat route's stream (`POST /api/model-serving/endpoints/{name}/chat`, docs/chat.md): a
// `fetch` read as server-sent events. It is not in `client.ts` because the answer is a stream of
// events, not one JSON body; the request headers and the error envelope are the same.
import type { components } from "./schema";
import { ApiError, isErrorBody } from "./errors";

export type ChatRequest = components["schemas"]["ChatRequest"];

/** One OpenAI chat message as the chat route takes it. */
export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content: string;
}

/** How a stream ended. */
export type StreamEnd =
  /** `data: [DONE]`. */
  | { kind: "done" }
  /** The caller aborted (Stop). */
  | { kind: "cancelled" }
  /** An error event (`data: {"error": <envelope>}`: its code, message and correlation id), a
   * connection cut mid-stream, or a body that ended without `[DONE]`. */
  | { kind: "failed"; error: ApiError };

export interface ChatStreamOptions {
  endpoint: string;
  /** The new messages only when `conversationId` is set; else the whole conversation. */
  messages: ChatMessage[];
  conversationId?: string | null;
  signal: AbortSignal;
  /** Called once the server accepted the request, with the conversation it records into. */
  onStart?: (info: { conversationId: string | null; correlationId: string }) => void;
  /** Called with each piece of text, in order, as it arrives. */
  onText: (delta: string) => void;
}

export const CONVERSATION_HEADER = "X-Conversation-Id";

function newCorrelationId(): string {
  return typeof crypto.randomUUID === "function"
    ? crypto.randomUUID()
    : `ui-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
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

/** The `data` of one SSE event (its `data:` lines joined by `\n`), or null for a comment-only
 * event such as `: keep-alive`. */
export function eventData(event: string): string | null {
  const lines: string[] = [];
  for (const line of event.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    if (line.startsWith("data:")) {
      const value = line.slice(5);
      lines.push(value.startsWith(" ") ? value.slice(1) : value);
    }
    // `event:`, `id:` and `retry:` fields are not used by the chat route.
  }
  return lines.length === 0 ? null : lines.join("\n");
}

/** The text a chat completion chunk adds (`choices[0].delta.content`), or "". */
export function deltaText(chunk: unknown): string {
  const c = chunk as { choices?: { delta?: { content?: unknown } }[] } | null;
  const content = c?.choices?.[0]?.delta?.content;
  return typeof content === "string" ? content : "";
}

/**
 * Sends one chat turn and reads its stream. Resolves with how the stream ended; rejects with an
 * `ApiError` when the server refused the request before the stream began (non-2xx), or could
 * not be reached.
 */
export async function streamChat(options: ChatStreamOptions): Promise<StreamEnd> {
  const correlationId = newCorrelationId();
  const body: ChatRequest = { messages: options.messages as unknown as ChatRequest["messages"] };
  if (options.conversationId) body.conversation_id = options.conversationId;

  let response: Response;
  try {
    response = await fetch(`/api/model-serving/endpoints/${encodeURIComponent(options.endpoint)}/chat`, {
      method: "POST",
      headers: {
        Accept: "text/event-stream",
        "Content-Type": "application/json",
        "X-Correlation-ID": correlationId,
      },
      body: JSON.stringify(body),
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
  options.onStart?.({ conversationId: response.headers.get(CONVERSATION_HEADER), correlationId: responseId });

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
      for (const event of events) {
        const data = eventData(event);
        if (data === null) continue;
        if (data === "[DONE]") return { kind: "done" };
        let parsed: unknown;
        try {
          parsed = JSON.parse(data);
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
        const text = deltaText(parsed);
        if (text) options.onText(text);
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
