import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api/client";
import type { GenieSpace } from "../api/types";
import { formatTime } from "../format";
import { ErrorPanel } from "./ErrorPanel";
import { Loading } from "./Loading";

export const GENIE_CONVERSATIONS_KEY = ["genie-conversations"] as const;
/** The list holds the caller's most recent conversations in the space; older ones are not shown. */
const LIST_LIMIT = 50;

/** The caller's conversations in one Genie space: open one, or delete it (after a confirm step). */
export function GenieConversationList({
  space,
  activeId,
  onOpen,
  onDeleted,
}: {
  space: GenieSpace;
  activeId: string | null;
  onOpen: (id: string, title: string) => void;
  onDeleted: (id: string) => void;
}) {
  const client = useQueryClient();
  const key = [...GENIE_CONVERSATIONS_KEY, space.space_id];
  const conversations = useQuery({
    queryKey: key,
    queryFn: () =>
      api.get("/api/genie/spaces/{space_id}/conversations", {
        path: { space_id: space.space_id },
        query: { limit: LIST_LIMIT },
      }),
  });
  const [confirming, setConfirming] = useState<string | null>(null);
  const remove = useMutation({
    mutationFn: (id: string) =>
      api.delete("/api/genie/spaces/{space_id}/conversations/{conversation_id}", {
        path: { space_id: space.space_id, conversation_id: id },
      }),
    onSuccess: (_, id) => {
      setConfirming(null);
      onDeleted(id);
    },
    onSettled: () => client.invalidateQueries({ queryKey: key }),
  });

  if (conversations.isPending) return <Loading label="Loading conversations…" />;
  if (conversations.isError)
    return <ErrorPanel error={conversations.error} onRetry={() => void conversations.refetch()} />;
  if (conversations.data.items.length === 0)
    return (
      <p className="muted small" data-testid="genie-conversations-empty">
        No conversations in {space.title} yet.
      </p>
    );
  return (
    <ul className="conversations" data-testid="genie-conversations">
      {conversations.data.items.map((c) => {
        const title = c.title || "Untitled";
        const active = c.conversation_id === activeId;
        return (
          <li key={c.conversation_id} className={active ? "active" : undefined} data-conversation-id={c.conversation_id}>
            <button
              type="button"
              className="conversation-open"
              aria-current={active ? "true" : undefined}
              onClick={() => onOpen(c.conversation_id, title)}
              data-track="genie-conversation-open"
            >
              <span className="conversation-title">{title}</span>
              {c.created_at && <span className="muted small">{formatTime(c.created_at)}</span>}
            </button>
            <div className="conversation-actions">
              {confirming === c.conversation_id ? (
                <>
                  <button
                    type="button"
                    className="button danger small-button"
                    onClick={() => remove.mutate(c.conversation_id)}
                    disabled={remove.isPending}
                    aria-label={`Confirm delete ${title}`}
                    data-testid="genie-conversation-delete-confirm"
                    data-track="genie-conversation-delete-confirm"
                  >
                    {remove.isPending ? "Deleting…" : "Delete"}
                  </button>
                  <button
                    type="button"
                    className="button secondary small-button"
                    onClick={() => setConfirming(null)}
                    data-testid="genie-conversation-delete-cancel"
                  >
                    Cancel
                  </button>
                </>
              ) : (
                <button
                  type="button"
                  className="button secondary small-button"
                  onClick={() => {
                    remove.reset();
                    setConfirming(c.conversation_id);
                  }}
                  aria-label={`Delete ${title}`}
                  data-testid="genie-conversation-delete"
                  data-track="genie-conversation-delete"
                >
                  Delete
                </button>
              )}
            </div>
            {confirming === c.conversation_id && remove.isError && <ErrorPanel error={remove.error} />}
          </li>
        );
      })}
    </ul>
  );
}
