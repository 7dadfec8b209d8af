// The data assistant's stream (`POST /api/assistant/conversations/{id}/messages`,
// docs/assistant.md): `event: step` per tool call and per tool result, `event: answer` with the
// final text, `event: limit` when a limit ended the answer, then `data: [DONE]`; or a last
// `event: error` with the API's error envelope. Read with sse.ts, as the chat and Genie streams are.
import { CONVERSATION_HEADER } from "./chatStream";
import type { components } from "./schema";
import { postEventStream, type StreamEnd } from "./sse";

export type AssistantStep = components["schemas"]["AssistantStep"];
export type AssistantAnswer = components["schemas"]["AssistantAnswer"];
export type AssistantLimit = components["schemas"]["AssistantLimit"];

export interface AssistantStreamOptions {
  /** The caller's conversation to continue; a new one is started without it. */
  conversationId: string | null;
  content: string;
  signal: AbortSignal;
  /** Called once the server accepted the question, with the conversation it records into
   * (null when the server keeps no conversations). */
  onStart?: (conversationId: string | null) => void;
  onStep: (step: AssistantStep) => void;
  onAnswer: (answer: AssistantAnswer) => void;
  onLimit: (limit: AssistantLimit) => void;
}

/**
 * Asks the assistant a question and reads the stream. Resolves with how the stream ended; rejects
 * with an `ApiError` when the server refused the question before the stream began (no assistant
 * configured, an unknown conversation, over quota, a bad body).
 */
export function streamAssistant(options: AssistantStreamOptions): Promise<StreamEnd> {
  const id = options.conversationId ?? "new";
  return postEventStream({
    url: `/api/assistant/conversations/${encodeURIComponent(id)}/messages`,
    body: { content: options.content },
    signal: options.signal,
    onStart: (response) => options.onStart?.(response.headers.get(CONVERSATION_HEADER)),
    onEvent: ({ event, data }) => {
      if (event === "step") options.onStep(data as AssistantStep);
      else if (event === "answer") options.onAnswer(data as AssistantAnswer);
      else if (event === "limit") options.onLimit(data as AssistantLimit);
    },
  });
}
