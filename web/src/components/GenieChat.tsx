import { useQuery, useQueryClient } from "@tanstack/react-query";
import { memo, useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { api } from "../api/client";
import { ApiError, asApiError } from "../api/errors";
import { streamGenie, type GenieAnswer, type GenieResult } from "../api/genieStream";
import type { GenieSpace } from "../api/types";
import { formatCount, formatTime } from "../format";
import { CopyButton } from "./CopyButton";
import { DataGrid } from "./DataGrid";
import { ErrorPanel } from "./ErrorPanel";
import { Loading } from "./Loading";
import { Markdown } from "./Markdown";
import { ResultChart } from "./ResultChart";

/** How a question stands: Genie working on it, answered, stopped by the user, failed. */
type State = "asking" | "done" | "stopped" | "failed";

interface Turn {
  key: string;
  question: string;
  state: State;
  /** The statuses seen so far, in order. */
  statuses: string[];
  answer?: GenieAnswer;
  error?: ApiError;
}

let keys = 0;
const nextKey = () => `g${++keys}`;

/** What Genie is doing, in words, for each status the stream reports. */
const STATUS_TEXT: Record<string, string> = {
  SUBMITTED: "Question sent…",
  FETCHING_METADATA: "Genie is reading the space's tables…",
  FILTERING_CONTEXT: "Genie is thinking…",
  ASKING_AI: "Genie is thinking…",
  PENDING_WAREHOUSE: "Waiting for the warehouse…",
  EXECUTING_QUERY: "Genie is running the query…",
  COMPLETED: "Answered",
  QUERY_RESULT_EXPIRED: "Answered (the result has expired)",
  FAILED: "Failed",
  CANCELLED: "Cancelled",
};
const statusText = (s: string | undefined) => (s ? (STATUS_TEXT[s] ?? `Genie: ${s.toLowerCase()}…`) : "Asking Genie…");

export const GENIE_CONVERSATIONS_KEY = ["genie-conversations"] as const;

/** A chat with one Genie space: ask, watch the progress, see the SQL and its rows, follow up. */
export function GenieChat({ space }: { space: GenieSpace }) {
  const inputId = useId();
  const client = useQueryClient();
  const [turns, setTurns] = useState<Turn[]>([]);
  const [conversationId, setConversationId] = useState<string | null>(null);
  /** A conversation picked from the list: its earlier messages are Genie's, not shown here. */
  const [resumed, setResumed] = useState<string | null>(null);
  const [draft, setDraft] = useState("");
  const [asking, setAsking] = useState(false);
  const abort = useRef<AbortController | null>(null);
  /** Bumped whenever the log is replaced: a stream still running must not write into the new one. */
  const session = useRef(0);
  const input = useRef<HTMLTextAreaElement>(null);
  const end = useRef<HTMLDivElement>(null);

  const conversations = useQuery({
    queryKey: [...GENIE_CONVERSATIONS_KEY, space.space_id],
    queryFn: () =>
      api.get("/api/genie/spaces/{space_id}/conversations", { path: { space_id: space.space_id }, query: { limit: 50 } }),
  });
  const refreshList = () =>
    void client.invalidateQueries({ queryKey: [...GENIE_CONVERSATIONS_KEY, space.space_id] });

  useEffect(() => () => abort.current?.abort(), []);
  useEffect(() => {
    end.current?.scrollIntoView?.({ block: "nearest" });
  }, [turns.length]);

  const reset = (to: string | null = null) => {
    abort.current?.abort();
    session.current += 1;
    setTurns([]);
    setConversationId(to);
    setAsking(false);
  };

  const send = async (text: string) => {
    const mine = session.current;
    const controller = new AbortController();
    abort.current = controller;
    const key = nextKey();
    setTurns((ts) => [...ts, { key, question: text, state: "asking", statuses: [] }]);
    setAsking(true);
    const update = (change: (t: Turn) => Turn) => {
      if (session.current === mine) setTurns((ts) => ts.map((t) => (t.key === key ? change(t) : t)));
    };
    try {
      const result = await streamGenie({
        spaceId: space.space_id,
        content: text,
        conversationId,
        signal: controller.signal,
        onStatus: (s) => {
          // The conversation exists once Genie took the question: follow-ups continue it.
          if (session.current === mine) setConversationId(s.conversation_id);
          update((t) => (t.statuses.at(-1) === s.status ? t : { ...t, statuses: [...t.statuses, s.status] }));
        },
        onAnswer: (answer) => update((t) => ({ ...t, answer })),
      });
      update((t) => ({
        ...t,
        state: result.kind === "done" ? "done" : result.kind === "cancelled" ? "stopped" : "failed",
        error: result.kind === "failed" ? result.error : undefined,
      }));
    } catch (e) {
      update((t) => ({ ...t, state: "failed", error: asApiError(e) }));
    } finally {
      if (abort.current === controller) abort.current = null;
      if (session.current === mine) setAsking(false);
      refreshList();
    }
  };

  const ask = (text: string) => {
    const q = text.trim();
    if (!q || asking) return;
    setDraft("");
    void send(q);
  };
  const submit = (e?: FormEvent) => {
    e?.preventDefault();
    ask(draft);
  };
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) submit(e);
  };
  const stop = () => {
    abort.current?.abort();
    input.current?.focus();
  };

  let list;
  if (conversations.isPending) list = <Loading label="Loading conversations…" />;
  else if (conversations.isError)
    list = <ErrorPanel error={conversations.error} onRetry={() => void conversations.refetch()} />;
  else if (conversations.data.items.length === 0)
    list = (
      <p className="muted small" data-testid="genie-conversations-empty">
        No conversations in {space.title} yet.
      </p>
    );
  else
    list = (
      <ul className="conversations" data-testid="genie-conversations">
        {conversations.data.items.map((c) => (
          <li
            key={c.conversation_id}
            className={c.conversation_id === conversationId ? "active" : undefined}
            data-conversation-id={c.conversation_id}
          >
            <button
              type="button"
              className="conversation-open"
              aria-current={c.conversation_id === conversationId ? "true" : undefined}
              onClick={() => {
                if (c.conversation_id === conversationId) return;
                reset(c.conversation_id);
                setResumed(c.title || "Untitled");
                input.current?.focus();
              }}
              data-track="genie-conversation-open"
            >
              <span className="conversation-title">{c.title || "Untitled"}</span>
              {c.created_at && <span className="muted small">{formatTime(c.created_at)}</span>}
            </button>
          </li>
        ))}
      </ul>
    );

  return (
    <section className="card" aria-labelledby="genie-h" data-testid="genie-chat" data-space-id={space.space_id}>
      <div className="card-header">
        <h2 id="genie-h">{space.title}</h2>
        <button
          type="button"
          className="button secondary"
          onClick={() => {
            reset();
            setResumed(null);
            input.current?.focus();
          }}
          data-track="genie-new"
        >
          New conversation
        </button>
      </div>
      {space.description && <p className="muted">{space.description}</p>}
      <div className="chat-layout">
        <div className="conversation-panel">
          <h4>Your conversations</h4>
          {list}
        </div>
        <div className="chat-main">
          <ol
            className="genie-log"
            data-testid="genie-log"
            data-conversation-id={conversationId ?? undefined}
            aria-live="polite"
            aria-busy={asking}
          >
            {turns.length === 0 && (
              <li className="muted">
                {conversationId && resumed
                  ? `Continuing “${resumed}”: Genie remembers its earlier questions, which are not shown here.`
                  : `Ask ${space.title} a question about its data.`}
              </li>
            )}
            {turns.map((t) => (
              <GenieTurn key={t.key} turn={t} spaceId={space.space_id} onAsk={ask} asking={asking} />
            ))}
          </ol>
          <div ref={end} />
          <form className="chat-form" onSubmit={submit}>
            <label htmlFor={inputId} className="visually-hidden">
              Question
            </label>
            <textarea
              id={inputId}
              ref={input}
              rows={2}
              placeholder={conversationId ? "Ask a follow-up question" : "Ask a question (Enter sends)"}
              value={draft}
              onChange={(e) => setDraft(e.target.value)}
              onKeyDown={onKeyDown}
              data-testid="genie-input"
            />
            {asking ? (
              <button type="button" className="button danger" onClick={stop} data-track="genie-stop">
                Stop
              </button>
            ) : (
              <button type="submit" className="button primary" disabled={!draft.trim()} data-track="genie-ask">
                Ask
              </button>
            )}
          </form>
        </div>
      </div>
    </section>
  );
}

/** One question and Genie's answer to it. */
const GenieTurn = memo(function GenieTurn({
  turn,
  spaceId,
  asking,
  onAsk,
}: {
  turn: Turn;
  spaceId: string;
  asking: boolean;
  onAsk: (question: string) => void;
}) {
  const { answer, state } = turn;
  return (
    <li className="genie-turn" data-state={state}>
      <div className="bubble bubble-user genie-question">
        <div className="bubble-text">{turn.question}</div>
      </div>
      <article className="genie-answer" data-testid="genie-answer" data-state={state}>
        <ol className="genie-steps" data-testid="genie-steps" aria-label="Progress">
          {turn.statuses.map((s, i) => (
            <li key={`${i}-${s}`} className="badge badge-neutral" data-status={s}>
              {s.toLowerCase().replace(/_/g, " ")}
            </li>
          ))}
        </ol>
        {state === "asking" && (
          <div className="genie-progress" role="status" data-testid="genie-progress">
            <span className="typing" aria-hidden="true">
              <span />
              <span />
              <span />
            </span>
            <span>{statusText(turn.statuses.at(-1))}</span>
          </div>
        )}
        {answer && <AnswerView answer={answer} spaceId={spaceId} />}
        {turn.error && <ErrorPanel error={turn.error} />}
        {turn.error && <GenieFailure error={turn.error} />}
        {state === "stopped" && (
          <p className="bubble-footer">
            <span className="badge badge-warn">Stopped</span>
            <span className="muted small">Genie may still answer; the answer stays in the conversation.</span>
          </p>
        )}
        {answer && answer.suggested_questions.length > 0 && (
          <div className="genie-suggestions">
            <span className="muted small">Ask next:</span>
            {answer.suggested_questions.map((q) => (
              <button
                key={q}
                type="button"
                className="chip chip-button"
                disabled={asking}
                onClick={() => onAsk(q)}
                data-testid="genie-suggestion"
                data-track="genie-suggestion"
              >
                {q}
              </button>
            ))}
          </div>
        )}
      </article>
    </li>
  );
});

/** What Genie said about a failed message (`GENIE_MESSAGE_FAILED`'s `detail`), when it said it. */
function GenieFailure({ error }: { error: ApiError }) {
  if (error.code !== "GENIE_MESSAGE_FAILED") return null;
  const detail = (error.detail ?? {}) as { type?: unknown; genie_error?: unknown };
  const said = typeof detail.genie_error === "string" ? detail.genie_error : "";
  const type = typeof detail.type === "string" ? detail.type : "";
  if (!said && !type) return null;
  return (
    <p className="muted small genie-failure" data-testid="genie-failure" data-type={type || undefined}>
      {said && <>Genie said: {said}</>}
      {type && (
        <>
          {said && " · "}
          <code>{type}</code>
        </>
      )}
    </p>
  );
}

/** Genie's answer: its text, the SQL it wrote, and the rows (chart and table); shared with the assistant's `ask_genie` steps. */
export function AnswerView({ answer, spaceId }: { answer: GenieAnswer; spaceId: string }) {
  const [reloaded, setReloaded] = useState<{ result?: GenieResult; error?: unknown; busy?: boolean }>({});
  const result = answer.result ?? reloaded.result ?? null;
  const query = answer.query;
  const loadResult = async () => {
    if (!query) return;
    setReloaded({ busy: true });
    try {
      const r = await api.get(
        "/api/genie/spaces/{space_id}/conversations/{conversation_id}/messages/{message_id}/attachments/{attachment_id}/result",
        {
          path: {
            space_id: spaceId,
            conversation_id: answer.conversation_id,
            message_id: answer.message_id,
            attachment_id: query.attachment_id,
          },
          query: { limit: 100 },
        },
      );
      setReloaded({ result: r });
    } catch (error) {
      setReloaded({ error });
    }
  };
  return (
    <>
      {answer.text.map((t, i) => (
        <Markdown key={i} text={t} />
      ))}
      {query?.query && (
        <section className="genie-sql" data-testid="genie-sql">
          <h4>{query.title || "The SQL Genie wrote"}</h4>
          {query.description && <p className="muted small">{query.description}</p>}
          <div className="md-code">
            <CopyButton text={() => query.query ?? ""} label="Copy SQL" track="genie-copy-sql" />
            <pre>
              <code>{query.query}</code>
            </pre>
          </div>
        </section>
      )}
      {result ? (
        <section className="genie-result" data-testid="genie-result">
          <ResultChart columns={result.columns} rows={result.rows} />
          <DataGrid columns={result.columns} rows={result.rows} />
          <p className="muted small">
            {formatCount(result.row_count)} rows
            {result.total_row_count != null && result.truncated ? ` of ${formatCount(result.total_row_count)}` : ""}
            {result.truncated ? " (the first page only)" : ""} · statement <code>{result.statement_id}</code>
          </p>
        </section>
      ) : (
        query && (
          <div className="genie-result" data-testid="genie-result-expired">
            <p className="muted small">The result has expired: Genie can run the query again.</p>
            {reloaded.error !== undefined && <ErrorPanel error={reloaded.error} />}
            <button type="button" className="button secondary" disabled={reloaded.busy} onClick={() => void loadResult()}>
              {reloaded.busy ? "Running the query…" : "Run the query again"}
            </button>
          </div>
        )
      )}
    </>
  );
}
