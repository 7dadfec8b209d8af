// The chat route's stream (`POST /api/model-serving/endpoints/{name}/chat`, docs/chat.md): a
// `fetch` read as server-sent events (sse.ts, shared with the Genie stream). It is not in
// `client.ts` because the answer is a stream of events, not one JSON body; the request headers
// and the error envelope are the same.
import type { components } from "./schema";
import { postEventStream, type StreamEnd } from "./sse";

export type { StreamEnd } from "./sse";

export type ChatRequest = components["schemas"]["ChatRequest"];

/** One OpenAI chat message as the chat route takes it. */
export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content: string;
}

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
export function streamChat(options: ChatStreamOptions): Promise<StreamEnd> {
  const body: ChatRequest = { messages: options.messages as unknown as ChatRequest["messages"] };
  if (options.conversationId) body.conversation_id = options.conversationId;
  return postEventStream({
    url: `/api/model-serving/endpoints/${encodeURIComponent(options.endpoint)}/chat`,
    body,
    signal: options.signal,
    onStart: (response, correlationId) =>
      options.onStart?.({ conversationId: response.headers.get(CONVERSATION_HEADER), correlationId }),
    onEvent: ({ data }) => {
      const text = deltaText(data);
      if (text) options.onText(text);
    },
  });
}
