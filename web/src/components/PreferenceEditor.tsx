import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useId, useState, type FormEvent } from "react";
import { api } from "../api/client";
import type { Preference } from "../api/types";
import { parseJson, prettyJson } from "../format";
import { THEME_QUERY_KEY, themeFromValue } from "../theme";
import { ErrorPanel } from "./ErrorPanel";
import { JsonEditor } from "./JsonEditor";

const KEY_RE = /^[a-z][a-z0-9_.-]{0,99}$/;
const MAX_BYTES = 100 * 1024;

export function PreferenceEditor({ existing, onDone }: { existing?: Preference; onDone: () => void }) {
  const keyId = useId();
  const client = useQueryClient();
  const [key, setKey] = useState(existing?.key ?? "");
  const [text, setText] = useState(existing ? prettyJson(existing.value) : '"dark"');
  const parsed = parseJson(text);
  const keyOk = KEY_RE.test(key);
  const size = new TextEncoder().encode(text).length;
  const sizeOk = size <= MAX_BYTES;

  const save = useMutation({
    mutationFn: (vars: { key: string; value: unknown }) =>
      api.put("/api/preferences/{key}", { path: { key: vars.key }, body: vars.value }),
    onSuccess: (_, vars) => {
      if (vars.key === "theme") client.setQueryData(THEME_QUERY_KEY, themeFromValue(vars.value));
      void client.invalidateQueries({ queryKey: ["preferences"] });
      onDone();
    },
  });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!keyOk || !parsed.ok || !sizeOk) return;
    save.mutate({ key, value: parsed.value });
  };

  return (
    <form className="form editor" onSubmit={submit} data-testid="pref-editor" aria-label={existing ? `Edit ${existing.key}` : "New preference"}>
      <h3>{existing ? `Edit ${existing.key}` : "New preference"}</h3>
      <div className="field">
        <label htmlFor={keyId}>Key</label>
        <input
          id={keyId}
          name="key"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          readOnly={existing !== undefined}
          aria-invalid={key !== "" && !keyOk}
          placeholder="e.g. theme"
          autoComplete="off"
        />
        {key !== "" && !keyOk && (
          <div className="field-hint bad">
            Lower-case letter first, then letters, digits, <code>_ . -</code>; at most 100 characters.
          </div>
        )}
      </div>
      <JsonEditor label="Value (JSON)" value={text} onChange={setText} rows={6} name="value" />
      {!sizeOk && <div className="field-hint bad">The value is over 100 KiB.</div>}
      {save.isError && <ErrorPanel error={save.error} />}
      <div className="form-row">
        <button type="submit" className="button primary" disabled={!keyOk || !parsed.ok || !sizeOk || save.isPending} data-track="pref-save">
          {save.isPending ? "Saving…" : "Save"}
        </button>
        <button type="button" className="button secondary" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
