import { useId } from "react";
import { parseJson } from "../format";

/**
 * A JSON textarea that validates as you type and tells what is wrong (plain words: how to quote
 * them).
 */
export function JsonEditor({
  label,
  value,
  onChange,
  rows = 8,
  name,
}: {
  label: string;
  value: string;
  onChange: (text: string) => void;
  rows?: number;
  name?: string;
}) {
  const id = useId();
  const result = parseJson(value);
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <textarea
        id={id}
        name={name}
        className={result.ok ? "json-input" : "json-input invalid"}
        value={value}
        rows={rows}
        spellCheck={false}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={!result.ok}
        aria-describedby={`${id}-status`}
      />
      <div id={`${id}-status`} className={result.ok ? "field-hint ok" : "field-hint bad"} aria-live="polite">
        {result.ok ? "Valid JSON" : result.error}
      </div>
    </div>
  );
}
