// The data assistant (docs/assistant.md): the caller's assistant conversations, and the chat. The
// address names the conversation (`/assistant/{id}`), so a reload finds it again.
import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { AssistantChat } from "../components/AssistantChat";
import { ConversationList } from "../components/ConversationList";
import { QueryView } from "../components/QueryView";
import { navigate, pathOf } from "../router";

export function AssistantPage({ conversationId }: { conversationId: string | undefined }) {
  const info = useQuery({ queryKey: ["assistant"], queryFn: () => api.get("/api/assistant") });
  return (
    <div className="page">
      <header className="page-header with-actions">
        <div>
          <h1>Assistant</h1>
          <p className="muted">
            Ask about your data in plain words. The assistant asks Genie, lists and reads tables for you, and shows
            each step it takes — all with your own permissions.
          </p>
        </div>
        <button
          type="button"
          className="button secondary"
          onClick={() => navigate("/assistant")}
          data-track="assistant-new"
        >
          New conversation
        </button>
      </header>
      <QueryView query={info} loadingLabel="Loading the assistant…">
        {(assistant) =>
          assistant.endpoint === null ? (
            <div className="card empty-state" role="status" data-testid="assistant-not-configured">
              <p>
                The assistant is not set up on this server: name a chat serving endpoint that supports tool calls in{" "}
                <code>DBAPP_ASSISTANT_ENDPOINT</code> (an app resource with <code>CAN QUERY</code>).
              </p>
            </div>
          ) : (
            <div className="chat-layout">
              <ConversationList
                endpoint={assistant.endpoint}
                activeId={conversationId ?? null}
                onOpen={(id) => navigate(pathOf("assistant", id))}
                onDeleted={(id) => {
                  if (id === conversationId) navigate("/assistant");
                }}
              />
              <AssistantChat
                info={assistant}
                conversationId={conversationId}
                onConversation={(id) => navigate(pathOf("assistant", id), true)}
              />
            </div>
          )
        }
      </QueryView>
    </div>
  );
}
