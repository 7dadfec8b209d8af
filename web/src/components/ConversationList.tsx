import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { api } from "../api/client";
import { ApiError } from "../api/errors";
import type { Conversation } from "../api/types";
import { formatTime } from "../format";
import { ErrorPanel } from "./ErrorPanel";
import { Loading } from "./Loading";

export const CONVERSATIONS_KEY = ["conversations"] as const;
/** The list holds the caller's most recent conversations; older ones are not shown. */
const LIST_LIMIT = 100;

/** The caller's conversations with one endpoint: open, rename, delete. */
export function ConversationList({
  endpoint,
  activeId,
  onOpen,
  onDeleted,
}: {
  endpoint: string;
  activeId: string | null;
  onOpen: (id: string) => void;
  onDeleted: (id: string) => void;
}) {
  const client = useQueryClient();
  const list = useQuery({
    queryKey: [...CONVERSATIONS_KEY, "list"],
    queryFn: () => api.get("/api/conversations", { query: { limit: LIST_LIMIT } }),
  });
  const [renaming, setRenaming] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [title, setTitle] = useState("");

  const rename = useMutation({
    mutationFn: ({ id, title }: { id: string; title: string }) =>
      api.patch("/api/conversations/{id}", { path: { id }, body: { title } }),
    onSuccess: () => setRenaming(null),
    onSettled: () => client.invalidateQueries({ queryKey: CONVERSATIONS_KEY }),
  });
  const remove = useMutation({
    mutationFn: (id: string) => api.delete("/api/conversations/{id}", { path: { id } }),
    onSuccess: (_, id) => {
      setConfirming(null);
      onDeleted(id);
    },
    onSettled: () => client.invalidateQueries({ queryKey: CONVERSATIONS_KEY }),
  });

  const startRename = (c: Conversation) => {
    rename.reset();
    setConfirming(null);
    setRenaming(c.id);
    setTitle(c.title);
  };
  const submitRename = (e: FormEvent, id: string) => {
    e.preventDefault();
    const t = title.trim();
    if (t) rename.mutate({ id, title: t });
  };

  let body;
  if (list.isPending) {
    body = <Loading label="Loading conversations…" />;
  } else if (list.isError) {
    body =
      list.error instanceof ApiError && list.error.code === "STORAGE_NOT_CONFIGURED" ? (
        <p className="muted small">Conversations are not kept: this server has no store.</p>
      ) : (
        <ErrorPanel error={list.error} onRetry={() => void list.refetch()} />
      );
  } else {
    const items = list.data.items.filter((c) => c.endpoint_name === endpoint);
    body =
      items.length === 0 ? (
        <p className="muted small" data-testid="conversations-empty">
          No conversations with {endpoint} yet.
        </p>
      ) : (
        <ul className="conversations" data-testid="conversation-list">
          {items.map((c) => (
            <li key={c.id} data-conversation-id={c.id} className={c.id === activeId ? "active" : undefined}>
              {renaming === c.id ? (
                <form className="conversation-rename" onSubmit={(e) => submitRename(e, c.id)}>
                  <label className="visually-hidden" htmlFor={`rename-${c.id}`}>
                    New title
                  </label>
                  <input
                    id={`rename-${c.id}`}
                    value={title}
                    maxLength={200}
                    onChange={(e) => setTitle(e.target.value)}
                    autoFocus
                  />
                  <div className="conversation-actions">
                    <button type="submit" className="button primary small-button" disabled={!title.trim() || rename.isPending}>
                      Save
                    </button>
                    <button type="button" className="button secondary small-button" onClick={() => setRenaming(null)}>
                      Cancel
                    </button>
                  </div>
                  {rename.isError && <ErrorPanel error={rename.error} />}
                </form>
              ) : (
                <>
                  <button
                    type="button"
                    className="conversation-open"
                    onClick={() => onOpen(c.id)}
                    aria-current={c.id === activeId ? "true" : undefined}
                    data-track="conversation-open"
                  >
                    <span className="conversation-title">{c.title}</span>
                    <span className="muted small">
                      {c.message_count} messages · {formatTime(c.updated_at)}
                    </span>
                  </button>
                  <div className="conversation-actions">
                    {confirming === c.id ? (
                      <>
                        <button
                          type="button"
                          className="button danger small-button"
                          onClick={() => remove.mutate(c.id)}
                          disabled={remove.isPending}
                          aria-label={`Confirm delete ${c.title}`}
                          data-track="conversation-delete-confirm"
                        >
                          {remove.isPending ? "Deleting…" : "Delete"}
                        </button>
                        <button type="button" className="button secondary small-button" onClick={() => setConfirming(null)}>
                          Cancel
                        </button>
                      </>
                    ) : (
                      <>
                        <button
                          type="button"
                          className="button secondary small-button"
                          onClick={() => startRename(c)}
                          aria-label={`Rename ${c.title}`}
                          data-track="conversation-rename"
                        >
                          Rename
                        </button>
                        <button
                          type="button"
                          className="button secondary small-button"
                          onClick={() => {
                            remove.reset();
                            setRenaming(null);
                            setConfirming(c.id);
                          }}
                          aria-label={`Delete ${c.title}`}
                          data-track="conversation-delete"
                        >
                          Delete
                        </button>
                      </>
                    )}
                  </div>
                  {confirming === c.id && remove.isError && <ErrorPanel error={remove.error} />}
                </>
              )}
            </li>
          ))}
        </ul>
      );
  }

  return (
    <nav className="conversation-panel" aria-labelledby="conversations-h">
      <h4 id="conversations-h">Your conversations</h4>
      {body}
    </nav>
  );
}
