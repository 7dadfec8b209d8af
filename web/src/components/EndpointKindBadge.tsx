import type { EndpointSchema } from "../api/types";

/** What each kind of endpoint takes, in words, for the badge and its tooltip. */
const KINDS: Record<EndpointSchema["kind"], { label: string; about: string } | null> = {
  chat: { label: "Chat", about: "A chat model: it takes a list of messages." },
  completions: { label: "Text completion", about: "A completion model: it takes a prompt." },
  embeddings: { label: "Embeddings", about: "An embedding model: it turns text into vectors." },
  custom: {
    label: "Custom model",
    about: "A model with its own input format (not chat, completion or embeddings): send the JSON it expects, as in the example.",
  },
  // Nothing is known about its inputs, so there is nothing to say.
  unknown: null,
};

/** The kind of a serving endpoint, explained; nothing for an endpoint of unknown kind. */
export function EndpointKindBadge({ kind }: { kind: EndpointSchema["kind"] }) {
  const k = KINDS[kind];
  if (k === null) return null;
  return (
    <span className="chip" title={k.about} data-kind={kind}>
      {k.label}
      <span className="visually-hidden">: {k.about}</span>
    </span>
  );
}
