import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useId, useState, type FormEvent } from "react";
import { api } from "../api/client";
import { MAX_TIMEOUT_SECONDS } from "../api/types";
import { formatMs } from "../format";
import { ErrorPanel } from "./ErrorPanel";
import { Loading } from "./Loading";

interface Message {
  role: "user" | "assistant" | "system";
  content: string;
  requestId?: string;
  ms?: number;
}

/** The assistant's text from an OpenAI-style chat completion, or the raw JSON. */
export function replyText(predictions: unknown): string {
  const p = predictions as { choices?: { message?: { content?: unknown } }[] } | null;
  const content = p?.choices?.[0]?.message?.content;
  if (typeof content === "string") return content;
  return JSON.stringify(predictions);
}

export function ChatView({ name }: { name: string }) {
  const inputId = useId();
  const client = useQueryClient();
  const [messages, setMessages] = useState<Message[]>([]);
  const [draft, setDraft] = useState("");
  const [timeout, setTimeoutSeconds] = useState(30);

  const send = useMutation({
    mutationFn: (history: Message[]) =>
      api.post("/api/model-serving/endpoints/{name}/invocations", {
        path: { name },
        body: {
          inputs: { messages: history.map(({ role, content }) => ({ role, content })) },
          timeout_seconds: timeout,
        },
        timeoutMs: (timeout + 10) * 1000,
      }),
    onSuccess: (res) =>
      setMessages((m) => [
        ...m,
        { role: "assistant", content: replyText(res.predictions), requestId: res.request_id, ms: res.execution_time_ms },
      ]),
    onSettled: () => void client.invalidateQueries({ queryKey: ["serving", "logs"] }),
  });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const text = draft.trim();
    if (!text || send.isPending) return;
    const history: Message[] = [...messages, { role: "user", content: text }];
    setMessages(history);
    setDraft("");
    send.mutate(history);
  };

  return (
    <section className="card" aria-labelledby="chat-h">
      <div className="card-header">
        <h3 id="chat-h">Chat</h3>
        <span className="chip">chat</span>
      </div>
      <ol className="chat" data-testid="chat-log" aria-live="polite">
        {messages.length === 0 && <li className="muted">Say something to {name}.</li>}
        {messages.map((m, i) => (
          <li key={i} className={`bubble bubble-${m.role}`} data-role={m.role}>
            <div className="bubble-text">{m.content}</div>
            {m.requestId && (
              <div className="muted small">
                {formatMs(m.ms)} · request <code>{m.requestId}</code>
              </div>
            )}
          </li>
        ))}
      </ol>
      {send.isPending && <Loading label="The model is thinking…" />}
      {send.isError && <ErrorPanel error={send.error} />}
      <form className="chat-form" onSubmit={submit}>
        <label htmlFor={inputId} className="visually-hidden">
          Message
        </label>
        <input
          id={inputId}
          type="text"
          placeholder="Type a message"
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          data-testid="chat-input"
        />
        <label className="inline-label">
          Timeout
          <input
            type="number"
            min={1}
            max={MAX_TIMEOUT_SECONDS}
            value={timeout}
            onChange={(e) => setTimeoutSeconds(Math.min(MAX_TIMEOUT_SECONDS, Math.max(1, Number(e.target.value) || 30)))}
            className="narrow-input"
          />
          s
        </label>
        <button type="submit" className="button primary" disabled={!draft.trim() || send.isPending} data-track="chat-send">
          Send
        </button>
      </form>
    </section>
  );
}
