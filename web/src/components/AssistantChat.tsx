// The data assistant's chat (docs/assistant.md): a question, the steps the assistant takes (each
// tool call as it starts, then its result: Genie's text, SQL and rows, a table's rows, a list of
// tables, or the tool's error), and the final answer or the limit that ended it. A conversation
// reopened from the list is rebuilt from its stored messages, which hold the same steps.
import { useQueryClient } from "@tanstack/react-query";
import { memo, useEffect, useRef, useState } from "react";
import { streamAssistant } from "../api/assistantStream";
import { api } from "../api/client";
import { ApiError, asApiError } from "../api/errors";
import type { ResponseOf } from "../api/client";
import type { GenieAnswer } from "../api/genieStream";
import type { ConversationMessage } from "../api/types";
import { formatCount, formatMs } from "../format";
import { contentText } from "./ChatView";
import { CONVERSATIONS_KEY } from "./ConversationList";
import { DataGrid } from "./DataGrid";
import { ChatComposer } from "./ChatComposer";
import { ErrorPanel } from "./ErrorPanel";
import { AnswerView } from "./GenieChat";
import { Loading } from "./Loading";
import { Markdown } from "./Markdown";
import { ResultChart } from "./ResultChart";

export type AssistantInfo = ResponseOf<"/api/assistant", "get">;

/** A tool call and, once it is back, its result. */
interface Step {
  callId: string;
  tool: string;
  arguments: unknown;
  /** `running` until the result comes; `missing` when a stored call has none (the answer was stopped). */
  state: "running" | "ok" | "failed" | "missing";
  summary?: string | null;
  /** The result as the model was sent it (JSON text). */
  result?: string | null;
}

type State = "asking" | "done" | "stopped" | "failed";

interface Turn {
  key: string;
  question: string;
  state: State;
  steps: Step[];
  answer?: string;
  /** What ended the answer early: a limit's name and message. */
  limit?: { limit: string; message: string };
  /** The answer's time: the server's count as it streams, then the round trip measured here. */
  elapsedMs?: number;
  error?: ApiError;
  /** A failed answer loaded from the history: only its code and message were kept. */
  storedError?: { code: string | null; message: string | null };
}

let keys = 0;
const nextKey = () => `a${++keys}`;

/** The limits' names, as `finish_reason` of the message that ended a stored answer. */
const LIMITS = new Set(["max_steps", "deadline", "max_tokens"]);

const TOOL_LABEL: Record<string, string> = {
  ask_genie: "Asked Genie",
  list_tables: "Listed tables",
  preview_table: "Read a table",
};

function parseJson(text: string | null | undefined): unknown {
  if (typeof text !== "string") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

type Args = Record<string, unknown>;
const argsOf = (step: Step): Args =>
  typeof step.arguments === "object" && step.arguments !== null ? (step.arguments as Args) : {};
const text = (v: unknown) => (typeof v === "string" ? v : "");

/** What a call was about, in a few words: Genie's question, a schema, a table. */
function subjectOf(step: Step): string {
  const a = argsOf(step);
  switch (step.tool) {
    case "ask_genie":
      return text(a.question);
    case "list_tables":
      return [a.catalog, a.schema].map(text).join(".");
    case "preview_table":
      return [a.catalog, a.schema, a.table].map(text).join(".");
    default:
      return typeof step.arguments === "string" ? step.arguments : JSON.stringify(step.arguments);
  }
}

interface ToolErrorBody {
  error: { error_code?: string; message?: string; detail?: { genie_error?: unknown } };
}
const isToolError = (v: unknown): v is ToolErrorBody =>
  typeof v === "object" && v !== null && typeof (v as ToolErrorBody).error === "object";

/** The summary of a stored result, which keeps only what the model was sent. */
function summaryOf(tool: string, parsed: unknown): string {
  if (parsed === undefined) return "result cut";
  if (isToolError(parsed)) return `error: ${parsed.error.error_code ?? "unknown"}`;
  const p = parsed as { result?: { row_count?: number } | null; row_count?: number; tables?: unknown[] };
  if (tool === "ask_genie") return p.result ? `${formatCount(p.result.row_count ?? 0)} rows` : "answered in words";
  if (tool === "preview_table") return `${formatCount(p.row_count ?? 0)} rows`;
  if (tool === "list_tables") return `${formatCount(p.tables?.length ?? 0)} tables`;
  return "done";
}

/** The turns of a stored conversation: questions, steps (calls matched with their results), answers. */
export function turnsOf(messages: ConversationMessage[]): Turn[] {
  const turns: Turn[] = [];
  for (const m of messages) {
    if (m.role === "user") {
      turns.push({ key: nextKey(), question: contentText(m.content), state: "done", steps: [] });
      continue;
    }
    const turn = turns.at(-1);
    if (!turn) continue;
    if (m.role === "assistant" && m.tool_calls?.length) {
      for (const call of m.tool_calls) {
        const c = call as { id?: unknown; function?: { name?: unknown; arguments?: unknown } };
        const raw = text(c.function?.arguments);
        turn.steps.push({
          callId: text(c.id),
          tool: text(c.function?.name),
          arguments: parseJson(raw) ?? raw,
          state: "missing",
        });
      }
    } else if (m.role === "tool") {
      const step = turn.steps.find((s) => s.callId === m.tool_call_id);
      if (!step) continue;
      const result = contentText(m.content);
      const parsed = parseJson(result);
      step.result = result;
      step.state = isToolError(parsed) ? "failed" : "ok";
      step.summary = summaryOf(step.tool, parsed);
    } else if (m.role === "assistant") {
      const content = contentText(m.content);
      if (m.outcome === "failed") {
        turn.state = "failed";
        turn.storedError = { code: m.error_code, message: m.error_message };
      } else if (m.finish_reason && LIMITS.has(m.finish_reason)) {
        turn.limit = { limit: m.finish_reason, message: content };
      } else {
        turn.answer = content;
        if (m.outcome === "cancelled") turn.state = "stopped";
      }
    }
  }
  return turns;
}

/**
 * The assistant's chat. `conversationId` is the conversation to show (from the page's address);
 * `onConversation` is told the id of a conversation this chat started, so the address can follow.
 */
export function AssistantChat({
  info,
  conversationId,
  onConversation,
}: {
  info: AssistantInfo;
  conversationId: string | undefined;
  onConversation: (id: string) => void;
}) {
  const client = useQueryClient();
  const [turns, setTurns] = useState<Turn[]>([]);
  const [asking, setAsking] = useState(false);
  const [loading, setLoading] = useState<{ id: string; error?: unknown } | null>(null);
  /** The conversation the log shows (null: a new one, started by the first question). */
  const current = useRef<string | null>(null);
  const abort = useRef<AbortController | null>(null);
  /** Bumped whenever the log is replaced: a stream still running must not write into the new one. */
  const session = useRef(0);
  const end = useRef<HTMLDivElement>(null);

  const refreshList = () => void client.invalidateQueries({ queryKey: CONVERSATIONS_KEY });

  useEffect(() => () => abort.current?.abort(), []);
  useEffect(() => {
    end.current?.scrollIntoView?.({ block: "nearest" });
  }, [turns]);

  // Follow the address: a new conversation, or one opened from the list (or after a reload).
  useEffect(() => {
    const wanted = conversationId ?? null;
    if (wanted === current.current) return;
    abort.current?.abort();
    session.current += 1;
    const mine = session.current;
    current.current = wanted;
    setTurns([]);
    setAsking(false);
    if (wanted === null) {
      setLoading(null);
      return;
    }
    setLoading({ id: wanted });
    api
      .get("/api/conversations/{id}", { path: { id: wanted } })
      .then((detail) => {
        if (session.current !== mine) return;
        setTurns(turnsOf(detail.messages));
        setLoading(null);
      })
      .catch((error: unknown) => {
        if (session.current === mine) setLoading({ id: wanted, error });
      });
  }, [conversationId]);

  const send = async (question: string) => {
    const mine = session.current;
    const controller = new AbortController();
    abort.current = controller;
    const key = nextKey();
    // The answer's time as the user waited for it: measured here, around the whole stream.
    const started = performance.now();
    setTurns((ts) => [...ts, { key, question, state: "asking", steps: [] }]);
    setAsking(true);
    const update = (change: (t: Turn) => Turn) => {
      if (session.current === mine) setTurns((ts) => ts.map((t) => (t.key === key ? change(t) : t)));
    };
    try {
      const result = await streamAssistant({
        conversationId: current.current,
        content: question,
        signal: controller.signal,
        onStart: (id) => {
          if (id && session.current === mine && current.current === null) {
            current.current = id;
            onConversation(id);
          }
          refreshList();
        },
        onStep: (s) =>
          update((t) => {
            if (s.kind === "tool_call") {
              const step: Step = { callId: s.call_id, tool: s.tool, arguments: s.arguments, state: "running" };
              return { ...t, steps: [...t.steps, step] };
            }
            const steps = t.steps.map((step) =>
              step.callId === s.call_id
                ? { ...step, state: s.ok ? ("ok" as const) : ("failed" as const), summary: s.summary, result: s.result }
                : step,
            );
            return { ...t, steps };
          }),
        onAnswer: (a) => update((t) => ({ ...t, answer: a.text, elapsedMs: a.elapsed_ms })),
        onLimit: (l) => update((t) => ({ ...t, limit: { limit: l.limit, message: l.message }, elapsedMs: l.elapsed_ms })),
      });
      update((t) => ({
        ...t,
        elapsedMs: result.kind === "done" ? performance.now() - started : t.elapsedMs,
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

  return (
    <section className="card chat-main" aria-labelledby="assistant-chat-h" data-testid="assistant-chat">
      <h2 id="assistant-chat-h" className="visually-hidden">
        Conversation
      </h2>
      {loading?.error !== undefined ? (
        <ErrorPanel error={loading.error} />
      ) : loading ? (
        <Loading label="Loading the conversation…" />
      ) : (
        <ol
          className="genie-log"
          data-testid="assistant-log"
          data-conversation-id={current.current ?? undefined}
          aria-live="polite"
          aria-busy={asking}
        >
          {turns.length === 0 && (
            <li className="muted" data-testid="assistant-empty">
              Ask a question about your data. The assistant can{" "}
              {info.tools.map((t) => TOOL_LABEL[t.name]?.toLowerCase() ?? t.name).join(", ")} — always as you, so it
              sees only what you may read. It takes at most {info.max_steps} steps and {info.deadline_secs} s per answer.
            </li>
          )}
          {turns.map((t) => (
            <AssistantTurn key={t.key} turn={t} />
          ))}
        </ol>
      )}
      <div ref={end} />
      <ChatComposer
        label="Question"
        placeholder={current.current ? "Ask a follow-up question" : "Ask a question about your data (Enter sends)"}
        sendLabel="Ask"
        busy={asking}
        disabled={loading !== null}
        testId="assistant-input"
        track="assistant"
        onSend={(q) => void send(q)}
        onStop={() => abort.current?.abort()}
      />
    </section>
  );
}

/** One question, the steps taken for it, and the answer. */
const AssistantTurn = memo(function AssistantTurn({ turn }: { turn: Turn }) {
  const { state } = turn;
  return (
    <li className="genie-turn" data-state={state} data-testid="assistant-turn">
      <div className="bubble bubble-user genie-question">
        <div className="bubble-text">{turn.question}</div>
      </div>
      <article className="genie-answer" data-testid="assistant-answer" data-state={state}>
        {turn.steps.length > 0 && (
          <ol className="assistant-steps" aria-label="Steps">
            {turn.steps.map((s) => (
              <StepView key={s.callId} step={s} />
            ))}
          </ol>
        )}
        {state === "asking" && turn.answer === undefined && (
          <div className="genie-progress" role="status" data-testid="assistant-progress">
            <span className="typing" aria-hidden="true">
              <span />
              <span />
              <span />
            </span>
            <span>{turn.steps.some((s) => s.state === "running") ? "Running a tool…" : "Thinking…"}</span>
          </div>
        )}
        {turn.answer !== undefined && (
          <div className="assistant-final" data-testid="assistant-final">
            <Markdown text={turn.answer} />
          </div>
        )}
        {turn.limit && (
          <p className="bubble-footer" data-testid="assistant-limit" data-limit={turn.limit.limit}>
            <span className="badge badge-warn">Limit</span>
            <span>{turn.limit.message}</span>
          </p>
        )}
        {turn.error && <ErrorPanel error={turn.error} />}
        {turn.storedError && (
          <p className="bubble-footer">
            <span className="badge badge-bad">Failed</span>
            <span className="muted small">
              {turn.storedError.message ?? "The answer failed."}
              {turn.storedError.code && (
                <>
                  {" "}
                  <code>{turn.storedError.code}</code>
                </>
              )}
            </span>
          </p>
        )}
        {state === "stopped" && (
          <p className="bubble-footer">
            <span className="badge badge-warn">Stopped</span>
            <span className="muted small">What the assistant did so far is kept in the conversation.</span>
          </p>
        )}
        {state === "done" && turn.elapsedMs !== undefined && (
          <p className="muted small">
            {turn.steps.length} {turn.steps.length === 1 ? "step" : "steps"} · {formatMs(turn.elapsedMs)}
          </p>
        )}
      </article>
    </li>
  );
});

const STATE_BADGE: Record<Step["state"], [string, string]> = {
  running: ["badge-info", "running"],
  ok: ["badge-ok", "done"],
  failed: ["badge-bad", "failed"],
  missing: ["badge-neutral", "no result"],
};

/** A tool call and its result; the result's details open on demand, Genie's and rows' at once. */
function StepView({ step }: { step: Step }) {
  const [badge, label] = STATE_BADGE[step.state];
  const parsed = parseJson(step.result);
  return (
    <li className="assistant-step" data-testid="assistant-step" data-tool={step.tool} data-state={step.state}>
      <div className="assistant-step-head">
        <span className="assistant-step-tool">{TOOL_LABEL[step.tool] ?? step.tool}</span>
        <span className="assistant-step-subject">{subjectOf(step)}</span>
        <span className={`badge ${badge}`}>{label}</span>
        {step.summary && <span className="muted small">{step.summary}</span>}
      </div>
      {step.result != null && <ToolResult step={step} parsed={parsed} />}
    </li>
  );
}

function ToolResult({ step, parsed }: { step: Step; parsed: unknown }) {
  if (parsed === undefined) {
    return (
      <details className="assistant-step-raw">
        <summary>The result was too large to show in full</summary>
        <pre>{step.result}</pre>
      </details>
    );
  }
  if (isToolError(parsed)) {
    // Genie's own words (`GENIE_MESSAGE_FAILED`'s detail) say which table and permission.
    const said = parsed.error.detail?.genie_error;
    return (
      <p className="small assistant-step-error" data-testid="assistant-step-error">
        {parsed.error.message ?? "The tool failed."} {parsed.error.error_code && <code>{parsed.error.error_code}</code>}
        {typeof said === "string" && said && <span className="muted"> Genie said: {said}</span>}
      </p>
    );
  }
  if (step.tool === "ask_genie") {
    const answer = parsed as GenieAnswer;
    return (
      <div className="assistant-step-body" data-testid="assistant-genie">
        <AnswerView answer={answer} spaceId={text(argsOf(step).space_id) || answer.space_id} />
      </div>
    );
  }
  if (step.tool === "preview_table") {
    const rows = parsed as { columns?: { name: string; type_name: string | null }[]; rows?: unknown[][]; row_count?: number };
    if (!rows.columns || !rows.rows) return null;
    const columns = rows.columns.map((c) => ({ ...c, type_text: null }));
    return (
      <div className="assistant-step-body genie-result" data-testid="assistant-rows">
        <ResultChart columns={columns} rows={rows.rows} />
        <DataGrid columns={columns} rows={rows.rows} />
      </div>
    );
  }
  if (step.tool === "list_tables") {
    const tables = (parsed as { tables?: unknown[] }).tables ?? [];
    return (
      <div className="assistant-step-body" data-testid="assistant-tables">
        {tables.map((t) => (
          <span key={String(t)} className="chip">
            {String(t)}
          </span>
        ))}
      </div>
    );
  }
  return null;
}
