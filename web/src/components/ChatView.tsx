import { useQueryClient } from "@tanstack/react-query";
import { memo, useEffect, useLayoutEffect, useRef, useState } from "react";
import { streamChat, type ChatMessage } from "../api/chatStream";
import { api } from "../api/client";
import { ApiError, asApiError } from "../api/errors";
import type { ConversationMessage } from "../api/types";
import { ConversationList, CONVERSATIONS_KEY } from "./ConversationList";
import { CopyButton } from "./CopyButton";
import { ChatComposer } from "./ChatComposer";
import { ErrorPanel } from "./ErrorPanel";
import { Loading } from "./Loading";
import { Markdown } from "./Markdown";

/** How an assistant answer stands: being streamed, ended well, stopped by the user, failed. */
type Status = "streaming" | "done" | "stopped" | "failed";

interface Turn {
  key: string;
  role: string;
  content: string;
  status?: Status;
  /** The error of a failed answer in this session (code, message, correlation id). */
  error?: ApiError;
  /** A failed answer loaded from the history: only its code and message were kept. */
  storedError?: { code: string | null; message: string | null };
  /** A user message whose request failed before any answer: not sent again as history. */
  refused?: boolean;
}

let keys = 0;
const nextKey = () => `t${++keys}`;

/** The text of an OpenAI message content: a string, or the text of its parts. */
export function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part: unknown) => {
        const p = part as { text?: unknown } | null;
        return typeof p?.text === "string" ? p.text : "";
      })
      .join("");
  }
  return "";
}

function toolNames(calls: ConversationMessage["tool_calls"]): string {
  return (calls ?? [])
    .map((c) => (c as { function?: { name?: unknown } }).function?.name)
    .filter((n): n is string => typeof n === "string")
    .join(", ");
}

/** A stored message as the log shows it. */
function turnOf(m: ConversationMessage): Turn {
  let content = contentText(m.content);
  if (!content && m.tool_calls?.length) content = `Called tools: ${toolNames(m.tool_calls)}`;
  const turn: Turn = { key: nextKey(), role: m.role, content };
  if (m.role === "assistant") {
    turn.status = m.outcome === "cancelled" ? "stopped" : m.outcome === "failed" ? "failed" : "done";
    if (m.outcome === "failed") turn.storedError = { code: m.error_code, message: m.error_message };
  }
  return turn;
}

const STATUS_LABEL: Record<Status, string> = {
  streaming: "Answering…",
  done: "",
  stopped: "Stopped",
  failed: "Failed",
};

/**
 * A streamed chat with one endpoint: the answer appears as it is generated, Stop cancels it (the
 * partial answer stays, marked), and the turns are kept in the caller's conversations.
 */
export function ChatView({ name, disabled = false }: { name: string; /** The endpoint cannot take calls now. */ disabled?: boolean }) {
  const client = useQueryClient();
  const [turns, setTurns] = useState<Turn[]>([]);
  const [conversationId, setConversationId] = useState<string | null>(null);
  const [streaming, setStreaming] = useState(false);
  const [loading, setLoading] = useState<{ id: string; error?: unknown } | null>(null);
  const abort = useRef<AbortController | null>(null);
  /** Bumped whenever the log is replaced (new or opened conversation): a stream still running
   * for the old log must not write into the new one. */
  const session = useRef(0);
  const log = useRef<HTMLOListElement>(null);
  const stickToBottom = useRef(true);
  const input = useRef<HTMLTextAreaElement>(null);

  useEffect(() => () => abort.current?.abort(), []);
  useLayoutEffect(() => {
    const el = log.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  }, [turns]);

  const refreshList = () => void client.invalidateQueries({ queryKey: CONVERSATIONS_KEY });

  const reset = () => {
    abort.current?.abort();
    session.current += 1;
    setTurns([]);
    setConversationId(null);
    setLoading(null);
    setStreaming(false);
    stickToBottom.current = true;
  };

  const open = async (id: string) => {
    reset();
    const mine = session.current;
    setLoading({ id });
    try {
      const detail = await api.get("/api/conversations/{id}", { path: { id } });
      if (session.current !== mine) return;
      setTurns(detail.messages.map(turnOf));
      setConversationId(detail.id);
      setLoading(null);
    } catch (error) {
      if (session.current === mine) setLoading({ id, error });
    }
  };

  const send = async (text: string) => {
    const mine = session.current;
    const controller = new AbortController();
    abort.current = controller;
    // A continued conversation takes only the new message; otherwise the whole log goes.
    const history: ChatMessage[] = conversationId
      ? []
      : turns
          .filter((t) => (t.role === "user" && !t.refused) || (t.role === "assistant" && t.content))
          .map((t) => ({ role: t.role as ChatMessage["role"], content: t.content }));
    const userKey = nextKey();
    const answerKey = nextKey();
    stickToBottom.current = true;
    setTurns((ts) => [
      ...ts,
      { key: userKey, role: "user", content: text },
      { key: answerKey, role: "assistant", content: "", status: "streaming" },
    ]);
    setStreaming(true);
    const update = (key: string, change: (t: Turn) => Turn) => {
      if (session.current === mine) setTurns((ts) => ts.map((t) => (t.key === key ? change(t) : t)));
    };
    try {
      const end = await streamChat({
        endpoint: name,
        messages: [...history, { role: "user", content: text }],
        conversationId,
        signal: controller.signal,
        onStart: ({ conversationId: id }) => {
          if (id && session.current === mine) setConversationId(id);
          refreshList();
        },
        onText: (delta) => update(answerKey, (t) => ({ ...t, content: t.content + delta })),
      });
      update(answerKey, (t) => ({
        ...t,
        status: end.kind === "done" ? "done" : end.kind === "cancelled" ? "stopped" : "failed",
        error: end.kind === "failed" ? end.error : undefined,
      }));
    } catch (e) {
      // Refused before the stream began: nothing of this turn is in the conversation.
      update(userKey, (t) => ({ ...t, refused: true }));
      update(answerKey, (t) => ({ ...t, status: "failed", error: asApiError(e) }));
    } finally {
      if (abort.current === controller) abort.current = null;
      if (session.current === mine) setStreaming(false);
      refreshList();
      // The server records the answer just after the stream ends: count it in the list too.
      setTimeout(refreshList, 1000);
    }
  };

  return (
    <section className="card" aria-labelledby="chat-h">
      <div className="card-header">
        <h3 id="chat-h">Chat</h3>
        <button
          type="button"
          className="button secondary"
          onClick={() => {
            reset();
            input.current?.focus();
          }}
          data-track="chat-new"
        >
          New conversation
        </button>
      </div>
      <div className="chat-layout">
        <ConversationList
          endpoint={name}
          activeId={conversationId ?? loading?.id ?? null}
          onOpen={(id) => void open(id)}
          onDeleted={(id) => {
            if (id === conversationId || id === loading?.id) reset();
          }}
        />
        <div className="chat-main">
          {loading && !loading.error && <Loading label="Loading the conversation…" />}
          {loading?.error !== undefined && (
            <ErrorPanel error={loading.error} onRetry={() => void open(loading.id)} />
          )}
          <ol
            className="chat"
            data-testid="chat-log"
            data-conversation-id={conversationId ?? undefined}
            aria-live="polite"
            aria-busy={streaming}
            ref={log}
            onScroll={(e) => {
              const el = e.currentTarget;
              stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
            }}
          >
            {turns.length === 0 && !loading && <li className="muted">Say something to {name}.</li>}
            {turns.map((t) => (
              <ChatBubble key={t.key} turn={t} />
            ))}
          </ol>
          <ChatComposer
            label="Message"
            placeholder="Type a message (Enter sends, Shift+Enter for a new line)"
            sendLabel="Send"
            busy={streaming}
            disabled={disabled || Boolean(loading)}
            testId="chat-input"
            track="chat"
            onSend={(text) => void send(text)}
            onStop={() => abort.current?.abort()}
            inputRef={input}
          />
        </div>
      </div>
    </section>
  );
}

/** One message. Memoised: while an answer streams only its own bubble renders again (a turn
 * keeps its object until it changes). */
const ChatBubble = memo(function ChatBubble({ turn }: { turn: Turn }) {
  const { role, status } = turn;
  const kind = role === "user" || role === "assistant" ? role : "other";
  return (
    <li className={`bubble bubble-${kind}`} data-role={role} data-status={status}>
      {kind === "other" && <div className="bubble-role muted small">{role}</div>}
      {role === "assistant" ? (
        <>
          {turn.content ? (
            <Markdown text={turn.content} />
          ) : status === "streaming" ? (
            <span className="typing" role="status" aria-label="The model is answering">
              <span />
              <span />
              <span />
            </span>
          ) : null}
          {turn.error && <ErrorPanel error={turn.error} />}
          {turn.storedError && (
            <div className="error-panel" data-error-code={turn.storedError.code ?? undefined}>
              <div className="error-title">
                Failed <code className="error-code">{turn.storedError.code ?? "—"}</code>
              </div>
              {turn.storedError.message && <p className="error-message">{turn.storedError.message}</p>}
            </div>
          )}
          {(turn.content || (status && STATUS_LABEL[status])) && status !== "streaming" && (
            <div className="bubble-footer">
              {status && STATUS_LABEL[status] && (
                <span className={`badge ${status === "failed" ? "badge-bad" : "badge-warn"}`}>{STATUS_LABEL[status]}</span>
              )}
              {turn.content && <CopyButton text={() => turn.content} label="Copy answer" track="chat-copy-answer" />}
            </div>
          )}
        </>
      ) : (
        <div className="bubble-text">{turn.content}</div>
      )}
    </li>
  );
});
