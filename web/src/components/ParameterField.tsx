import type { QueryParameter } from "../api/types";
import { kindOf, stepOf } from "../queryParameters";

/** One typed input for a query parameter, with its label, hint and the server's error for it. */
export function ParameterField({
  parameter,
  value,
  onChange,
  error,
}: {
  parameter: QueryParameter;
  value: string | boolean;
  onChange: (value: string | boolean) => void;
  error: string | undefined;
}) {
  const id = `param-${parameter.name}`;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const kind = kindOf(parameter.type);
  const describedBy = [parameter.description ? hintId : null, error ? errorId : null].filter(Boolean).join(" ") || undefined;
  const common = {
    id,
    name: parameter.name,
    required: parameter.required,
    "aria-invalid": error ? true : undefined,
    "aria-describedby": describedBy,
    "data-param": parameter.name,
  } as const;

  let input;
  if (kind === "boolean") {
    input = (
      <input {...common} type="checkbox" checked={value === true} onChange={(e) => onChange(e.target.checked)} />
    );
  } else {
    const text = typeof value === "string" ? value : "";
    const typeAttr =
      kind === "date" ? "date" : kind === "timestamp" ? "datetime-local" : kind === "text" ? "text" : "number";
    input = (
      <input
        {...common}
        type={typeAttr}
        step={typeAttr === "number" ? stepOf(parameter.type) : kind === "timestamp" ? "1" : undefined}
        inputMode={kind === "integer" ? "numeric" : kind === "decimal" || kind === "double" ? "decimal" : undefined}
        value={text}
        onChange={(e) => onChange(e.target.value)}
      />
    );
  }

  return (
    <div className={kind === "boolean" ? "field param-field checkbox-field" : "field param-field"}>
      <label htmlFor={id}>
        {parameter.name}
        {parameter.required && (
          <span className="required" title="required">
            {" "}*<span className="visually-hidden"> (required)</span>
          </span>
        )}
        <span className="param-type">
          {parameter.type.toLowerCase()}
          {kind === "timestamp" ? ", UTC" : ""}
        </span>
      </label>
      {input}
      {parameter.description && (
        <span id={hintId} className="muted field-hint">
          {parameter.description}
        </span>
      )}
      {error && (
        <span id={errorId} className="field-hint bad" data-testid="field-error">
          {error}
        </span>
      )}
    </div>
  );
}
