// The message box the chat, Genie and assistant views share: a textarea where Enter sends and
// Shift+Enter (or Enter while composing with an IME) makes a new line, and one button, which is
// Send (or Ask) while idle and Stop while an answer streams. It owns the draft: a sent message
// clears it; Stop puts the focus back in the box.
import { useId, useRef, useState, type FormEvent, type KeyboardEvent, type Ref } from "react";

export interface ChatComposerProps {
  /** The box's accessible name, e.g. `Message`. */
  label: string;
  placeholder: string;
  /** The send button's text, e.g. `Send` or `Ask`; its `data-track` is `{track}-{sendLabel}`. */
  sendLabel: string;
  /** An answer is streaming: the button is Stop, and nothing is sent. */
  busy: boolean;
  /** Nothing may be sent (e.g. while a conversation loads). */
  disabled?: boolean;
  /** The textarea's `data-testid`. */
  testId: string;
  /** The `data-track` prefix of the buttons. */
  track: string;
  /** Called with the trimmed text when the user sends it. */
  onSend: (text: string) => void;
  onStop: () => void;
  /** The textarea, for a parent that moves the focus there (e.g. after New conversation). */
  inputRef?: Ref<HTMLTextAreaElement>;
}

export function ChatComposer(props: ChatComposerProps) {
  const id = useId();
  const [draft, setDraft] = useState("");
  const own = useRef<HTMLTextAreaElement | null>(null);
  const blocked = props.busy || Boolean(props.disabled);

  const setRefs = (el: HTMLTextAreaElement | null) => {
    own.current = el;
    const ref = props.inputRef;
    if (typeof ref === "function") ref(el);
    else if (ref) ref.current = el;
  };
  const submit = (e?: FormEvent) => {
    e?.preventDefault();
    const text = draft.trim();
    if (!text || blocked) return;
    setDraft("");
    props.onSend(text);
  };
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) submit(e);
  };
  const stop = () => {
    props.onStop();
    own.current?.focus();
  };

  return (
    <form className="chat-form" onSubmit={submit}>
      <label htmlFor={id} className="visually-hidden">
        {props.label}
      </label>
      <textarea
        id={id}
        ref={setRefs}
        rows={2}
        placeholder={props.placeholder}
        value={draft}
        onChange={(e) => setDraft(e.target.value)}
        onKeyDown={onKeyDown}
        data-testid={props.testId}
      />
      {props.busy ? (
        <button type="button" className="button danger" onClick={stop} data-track={`${props.track}-stop`}>
          Stop
        </button>
      ) : (
        <button
          type="submit"
          className="button primary"
          disabled={!draft.trim() || blocked}
          data-track={`${props.track}-${props.sendLabel.toLowerCase()}`}
        >
          {props.sendLabel}
        </button>
      )}
    </form>
  );
}
