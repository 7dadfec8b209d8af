import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useId, useState, type FormEvent } from "react";
import { api } from "../api/client";
import { MAX_TIMEOUT_SECONDS, type EndpointSchema } from "../api/types";
import { parseJson, prettyJson } from "../format";
import { EndpointKindBadge } from "./EndpointKindBadge";
import { JsonEditor } from "./JsonEditor";
import { ResponsePanel } from "./ResponsePanel";

/** The example's `inputs` when it is a full request body, else the example itself. */
export function exampleInputs(example: unknown): unknown {
  if (typeof example === "object" && example !== null && !Array.isArray(example) && "inputs" in example) {
    return (example as { inputs: unknown }).inputs;
  }
  return example ?? {};
}

export function InvokeForm({
  name,
  kind,
  example,
  inputSchema,
  disabled = false,
}: {
  name: string;
  kind: EndpointSchema["kind"];
  example: unknown;
  inputSchema: unknown;
  /** The endpoint cannot take calls now (see EndpointNotReadyNotice): Invoke is turned off. */
  disabled?: boolean;
}) {
  const timeoutId = useId();
  const client = useQueryClient();
  const [text, setText] = useState(() => prettyJson(exampleInputs(example)));
  const [timeout, setTimeoutSeconds] = useState("30");
  const [startedAt, setStartedAt] = useState(0);
  const [roundTrip, setRoundTrip] = useState<number | undefined>(undefined);
  const parsed = parseJson(text);
  const timeoutNum = Number(timeout);
  const timeoutOk = Number.isInteger(timeoutNum) && timeoutNum >= 1 && timeoutNum <= MAX_TIMEOUT_SECONDS;

  const invoke = useMutation({
    mutationFn: (vars: { inputs: unknown; timeout_seconds: number }) =>
      api.post("/api/model-serving/endpoints/{name}/invocations", {
        path: { name },
        body: vars,
        timeoutMs: (vars.timeout_seconds + 10) * 1000,
      }),
    onSettled: () => {
      setRoundTrip(performance.now() - startedAt);
      void client.invalidateQueries({ queryKey: ["serving", "logs"] });
    },
  });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (disabled || !parsed.ok || !timeoutOk) return;
    setStartedAt(performance.now());
    setRoundTrip(undefined);
    invoke.mutate({ inputs: parsed.value, timeout_seconds: timeoutNum });
  };

  return (
    <section className="card" aria-labelledby="invoke-h">
      <div className="card-header">
        <h3 id="invoke-h">Invoke</h3>
        <EndpointKindBadge kind={kind} />
      </div>
      <form onSubmit={submit} className="form" data-testid="invoke-form">
        <JsonEditor label="Inputs (JSON)" value={text} onChange={setText} rows={8} name="inputs" />
        <div className="form-row">
          <div className="field narrow">
            <label htmlFor={timeoutId}>Timeout (seconds)</label>
            <input
              id={timeoutId}
              type="number"
              min={1}
              max={MAX_TIMEOUT_SECONDS}
              value={timeout}
              onChange={(e) => setTimeoutSeconds(e.target.value)}
              aria-invalid={!timeoutOk}
            />
            {!timeoutOk && <div className="field-hint bad">Between 1 and {MAX_TIMEOUT_SECONDS}.</div>}
          </div>
          <button
            type="submit"
            className="button primary"
            disabled={disabled || !parsed.ok || !timeoutOk || invoke.isPending}
            title={disabled ? "The endpoint is not ready" : undefined}
            data-track="invoke"
          >
            {invoke.isPending ? "Invoking…" : "Invoke"}
          </button>
          <button
            type="button"
            className="button secondary"
            onClick={() => setText(prettyJson(exampleInputs(example)))}
          >
            Reset to example
          </button>
        </div>
        {inputSchema !== null && inputSchema !== undefined && (
          <details>
            <summary>Input schema</summary>
            <pre className="code">{prettyJson(inputSchema)}</pre>
          </details>
        )}
      </form>
      <ResponsePanel mutation={invoke} roundTripMs={roundTrip} />
    </section>
  );
}
