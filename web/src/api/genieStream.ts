// The Genie ask route's stream (`POST /api/genie/spaces/{space_id}/messages`, docs/genie.md):
// `event: status` at each status change, then `event: message` with the answer and
// `data: [DONE]`; or a last `event: error` with the API's error envelope. Read with sse.ts, as
// the chat stream is.
import type { components } from "./schema";
import { postEventStream, type StreamEnd } from "./sse";

export type GenieAskRequest = components["schemas"]["AskRequest"];
export type GenieStatusEvent = components["schemas"]["GenieStatusEvent"];
export type GenieAnswer = components["schemas"]["GenieAnswer"];
export type GenieResult = components["schemas"]["GenieResult"];

export interface GenieStreamOptions {
  spaceId: string;
  content: string;
  /** Continues this conversation of the caller; a new one is started without it. */
  conversationId?: string | null;
  signal: AbortSignal;
  /** Each status change, in Genie's order (`SUBMITTED`, …, `EXECUTING_QUERY`, `COMPLETED`). */
  onStatus: (status: GenieStatusEvent) => void;
  /** The answer (text, the SQL, the first rows, suggested questions). */
  onAnswer: (answer: GenieAnswer) => void;
}

/**
 * Asks a space a question and reads the stream. Resolves with how the stream ended; rejects with
 * an `ApiError` when the server refused the question before the stream began (a space the caller
 * may not use, an unknown conversation, a bad body).
 */
export function streamGenie(options: GenieStreamOptions): Promise<StreamEnd> {
  const body: GenieAskRequest = { content: options.content };
  if (options.conversationId) body.conversation_id = options.conversationId;
  return postEventStream({
    url: `/api/genie/spaces/${encodeURIComponent(options.spaceId)}/messages`,
    body,
    signal: options.signal,
    onEvent: ({ event, data }) => {
      if (event === "status") options.onStatus(data as GenieStatusEvent);
      else if (event === "message") options.onAnswer(data as GenieAnswer);
    },
  });
}
