import { useEffect, useState } from "react";
import { copyText } from "../clipboard";

type State = "idle" | "copied" | "failed";

/** A small button that copies `text` and says for a moment whether it worked. */
export function CopyButton({ text, label, track }: { text: () => string; label: string; track?: string }) {
  const [state, setState] = useState<State>("idle");
  useEffect(() => {
    if (state === "idle") return;
    const timer = setTimeout(() => setState("idle"), 2000);
    return () => clearTimeout(timer);
  }, [state]);
  return (
    <button
      type="button"
      className="copy-button"
      aria-label={label}
      title={label}
      data-copy-state={state}
      data-track={track}
      onClick={() => void copyText(text()).then((ok) => setState(ok ? "copied" : "failed"))}
    >
      {state === "copied" ? "Copied" : state === "failed" ? "Copy failed" : "Copy"}
    </button>
  );
}
