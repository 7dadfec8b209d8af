import { useQuery, useQueryClient } from "@tanstack/react-query";
import { memo, useEffect, useMemo, useRef, useState } from "react";
import { api } from "../api/client";
import { ApiError, asApiError } from "../api/errors";
import { streamGenie, type GenieAnswer, type GenieResult } from "../api/genieStream";
import type { GenieSpace } from "../api/types";
import { formatCount } from "../format";
import { CopyButton } from "./CopyButton";
import { DataGrid } from "./DataGrid";
import { ChatComposer } from "./ChatComposer";
import { ErrorPanel } from "./ErrorPanel";
import { GENIE_CONVERSATIONS_KEY, GenieConversationList } from "./GenieConversationList";
import { Loading } from "./Loading";
import { Markdown } from "./Markdown";
import { ResultChart } from "./ResultChart";
import { TechnicalDetails } from "./TechnicalDetails";

/**
 * How a question stands: Genie working on it, answered, stopped by the user, failed; or, for an
 * earlier message of a reopened conversation, still being answered when it was loaded.
 */
type State = "asking" | "done" | "stopped" | "failed" | "unfinished";

interface Turn {
  key: string;
  question: string;
  state: State;
  /** The statuses seen so far, in order. */
  statuses: string[];
  answer?: GenieAnswer;
  error?: ApiError;
  /** An earlier message of a reopened conversation, loaded from the server. */
  earlier?: boolean;
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

/** Messages per page of a conversation's history (the route's most)… */
const HISTORY_PAGE = 50;
/** …and the pages loaded when a conversation is reopened: longer histories show their start. */
const HISTORY_PAGES = 4;

/** A reopened conversation's earlier messages, oldest first; `more` when some were left out. */
async function loadHistory(spaceId: string, conversationId: string) {
  const messages: GenieAnswer[] = [];
  let token: string | undefined;
  for (let i = 0; i < HISTORY_PAGES; i++) {
    const page = await api.get("/api/genie/spaces/{space_id}/conversations/{conversation_id}/messages", {
      path: { space_id: spaceId, conversation_id: conversationId },
      query: { limit: HISTORY_PAGE, page_token: token },
    });
    messages.push(...page.items);
    if (!page.next_page_token) return { messages, more: false };
    token = page.next_page_token;
  }
  return { messages, more: true };
}

/** An earlier message as a turn of the log. */
function earlierTurn(answer: GenieAnswer): Turn {
  const state: State =
    answer.status === "COMPLETED" || answer.status === "QUERY_RESULT_EXPIRED"
      ? "done"
      : answer.status === "FAILED" || answer.status === "CANCELLED"
        ? "failed"
        : "unfinished";
  return { key: `m-${answer.message_id}`, question: answer.content, state, statuses: [], answer, earlier: true };
}

/** A chat with one Genie space: ask, watch the progress, see the SQL and its rows, follow up. */
export function GenieChat({ space }: { space: GenieSpace }) {
  const client = useQueryClient();
  const [turns, setTurns] = useState<Turn[]>([]);
  const [conversationId, setConversationId] = useState<string | null>(null);
  /** A conversation picked from the list, whose earlier messages are loaded and shown first. */
  const [resumed, setResumed] = useState<{ id: string; title: string } | null>(null);
  const [asking, setAsking] = useState(false);
  const abort = useRef<AbortController | null>(null);
  /** Bumped whenever the log is replaced: a stream still running must not write into the new one. */
  const session = useRef(0);
  const input = useRef<HTMLTextAreaElement>(null);
  const end = useRef<HTMLDivElement>(null);

  const history = useQuery({
    queryKey: ["genie-history", space.space_id, resumed?.id],
    queryFn: () => loadHistory(space.space_id, resumed?.id ?? ""),
    enabled: resumed !== null,
    // Loaded once per opening: questions asked since are already in the log as turns, so a
    // refetch (on focus, say) would show them twice. Dropped when closed, so reopening reloads.
    staleTime: Infinity,
    gcTime: 0,
  });
  const loaded = resumed ? history.data : undefined;
  const earlier = useMemo(() => loaded?.messages.map(earlierTurn) ?? [], [loaded]);
  const refreshList = () =>
    void client.invalidateQueries({ queryKey: [...GENIE_CONVERSATIONS_KEY, space.space_id] });

  useEffect(() => () => abort.current?.abort(), []);
  useEffect(() => {
    end.current?.scrollIntoView?.({ block: "nearest" });
  }, [turns.length, earlier.length]);

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
    void send(q);
  };

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
          <GenieConversationList
            space={space}
            activeId={conversationId}
            onOpen={(id, title) => {
              if (id === conversationId) return;
              reset(id);
              setResumed({ id, title });
              input.current?.focus();
            }}
            onDeleted={(id) => {
              if (id !== conversationId) return;
              reset();
              setResumed(null);
            }}
          />
        </div>
        <div className="chat-main">
          <ol
            className="genie-log"
            data-testid="genie-log"
            data-conversation-id={conversationId ?? undefined}
            aria-live="polite"
            aria-busy={asking}
          >
            {resumed && history.isPending && (
              <li data-testid="genie-history-loading">
                <Loading label="Loading earlier messages…" />
              </li>
            )}
            {resumed && history.isError && (
              <li data-testid="genie-history-error">
                <ErrorPanel error={history.error} onRetry={() => void history.refetch()} />
              </li>
            )}
            {earlier.map((t) => (
              <GenieTurn key={t.key} turn={t} spaceId={space.space_id} onAsk={ask} asking={asking} />
            ))}
            {resumed && history.data?.more && (
              <li className="muted small" data-testid="genie-history-truncated">
                Only the first {HISTORY_PAGE * HISTORY_PAGES} messages of “{resumed.title}” are shown; the later ones are not.
              </li>
            )}
            {turns.length === 0 && earlier.length === 0 && !(resumed && !history.isSuccess) && (
              <li className="muted">
                {resumed ? `Continue “${resumed.title}”.` : `Ask ${space.title} a question about its data.`}
              </li>
            )}
            {turns.map((t) => (
              <GenieTurn key={t.key} turn={t} spaceId={space.space_id} onAsk={ask} asking={asking} />
            ))}
          </ol>
          <div ref={end} />
          <ChatComposer
            label="Question"
            placeholder={conversationId ? "Ask a follow-up question" : "Ask a question (Enter sends)"}
            sendLabel="Ask"
            busy={asking}
            testId="genie-input"
            track="genie"
            onSend={ask}
            onStop={() => abort.current?.abort()}
            inputRef={input}
          />
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
    <li
      className="genie-turn"
      data-state={state}
      data-earlier={turn.earlier ? "true" : undefined}
      data-message-id={answer?.message_id}
      data-testid={turn.earlier ? "genie-earlier" : undefined}
    >
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
        {answer?.failure && <GenieSaid said={answer.failure.message} type={answer.failure.type} />}
        {state === "failed" && turn.earlier && !answer?.failure && (
          <p className="muted small" data-testid="genie-failure">
            Genie could not answer ({answer?.status.toLowerCase()}).
          </p>
        )}
        {state === "unfinished" && (
          <p className="bubble-footer" data-testid="genie-unfinished">
            <span className="badge badge-warn">{answer?.status.toLowerCase().replace(/_/g, " ")}</span>
            <span className="muted small">Genie was still answering; reopen the conversation to see its answer.</span>
          </p>
        )}
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
  return (
    <GenieSaid
      said={typeof detail.genie_error === "string" ? detail.genie_error : null}
      type={typeof detail.type === "string" ? detail.type : null}
    />
  );
}

/** Genie's own message and error type for a message it could not answer, when it gave them. */
function GenieSaid({ said, type }: { said: string | null; type: string | null }) {
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
            {result.truncated ? " (the first page only)" : ""}
          </p>
          <TechnicalDetails>
            <p className="muted small">
              SQL statement ID: <code>{result.statement_id}</code>
            </p>
          </TechnicalDetails>
        </section>
      ) : (
        query &&
        (answer.status === "COMPLETED" || answer.status === "QUERY_RESULT_EXPIRED") && (
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
