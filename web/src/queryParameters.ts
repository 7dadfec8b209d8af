// Query parameters between their typed definition (`STRING`, `INT`, `DECIMAL(10,2)`, `DATE`,
// `TIMESTAMP`, …), the value an <input> holds, and the JSON value the server is sent.
import type { QueryParameter } from "./api/types";

type ParameterKind = "integer" | "decimal" | "double" | "boolean" | "date" | "timestamp" | "text";

/** What the form holds for each parameter: a checkbox's state or an input's text. */
export type ParameterValues = Record<string, string | boolean>;

export function kindOf(type: string): ParameterKind {
  const base = type.toUpperCase().replace(/\(.*$/, "").trim();
  switch (base) {
    case "INT":
    case "BIGINT":
      return "integer";
    case "DECIMAL":
      return "decimal";
    case "DOUBLE":
      return "double";
    case "BOOLEAN":
      return "boolean";
    case "DATE":
      return "date";
    case "TIMESTAMP":
      return "timestamp";
    default:
      return "text";
  }
}

/** The step of a number input: 1 for integers, 10^-scale for DECIMAL(p,s), any for DOUBLE. */
export function stepOf(type: string): string {
  const kind = kindOf(type);
  if (kind === "integer") return "1";
  if (kind === "decimal") {
    const scale = Number(/,\s*(\d+)\s*\)/.exec(type)?.[1] ?? "0");
    return scale > 0 ? `0.${"0".repeat(scale - 1)}1` : "1";
  }
  return "any";
}

/** An input's starting value from the parameter's default. */
function initialValue(p: QueryParameter): string | boolean {
  const d: unknown = p.default;
  const kind = kindOf(p.type);
  if (kind === "boolean") return d === true || d === "true";
  if (d === null || d === undefined) return "";
  const text = String(d);
  // datetime-local wants "YYYY-MM-DDTHH:MM[:SS]" with no zone; the server's times are UTC.
  if (kind === "timestamp") return text.replace(" ", "T").replace(/(\.\d+)?(Z|[+-]00:?00)$/, "").slice(0, 19);
  return text;
}

export function initialValues(parameters: QueryParameter[]): ParameterValues {
  return Object.fromEntries(parameters.map((p) => [p.name, initialValue(p)]));
}

/**
 * The JSON the server is sent: numbers as numbers (BIGINT beyond 2^53 and DECIMAL as text, so no
 * digit is lost), dates as `YYYY-MM-DD`, timestamps as RFC 3339 in UTC. Empty inputs are left
 * out, so the server applies the default or reports a missing required parameter at its field.
 */
export function toRequestParameters(parameters: QueryParameter[], values: ParameterValues): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of parameters) {
    const v = values[p.name];
    if (typeof v === "boolean") {
      out[p.name] = v;
      continue;
    }
    if (v === undefined || v.trim() === "") continue;
    const text = v.trim();
    switch (kindOf(p.type)) {
      case "integer": {
        const n = Number(text);
        out[p.name] = Number.isSafeInteger(n) ? n : text;
        break;
      }
      case "double": {
        const n = Number(text);
        out[p.name] = Number.isFinite(n) ? n : text;
        break;
      }
      case "timestamp":
        out[p.name] = `${text.length === 16 ? `${text}:00` : text}Z`;
        break;
      default:
        out[p.name] = text;
    }
  }
  return out;
}
