// The one typed fetch client, built on the generated `paths` type: a route, its method, its
// path/query parameters, its body and its success response all come from the OpenAPI document.
import type { paths } from "./schema";
import { ApiError, isErrorBody } from "./errors";

type Method = "get" | "put" | "post" | "patch" | "delete";

/** Paths that have an operation for method `M`. */
export type PathsWith<M extends Method> = {
  [P in keyof paths]: paths[P] extends Record<M, object> ? P : never;
}[keyof paths];

type Operation<P extends keyof paths, M extends Method> = paths[P] extends Record<M, infer O>
  ? O
  : never;

type ParamsOf<O, K extends "path" | "query"> = O extends { parameters: infer Ps }
  ? Ps extends Record<K, infer X>
    ? X
    : Ps extends Partial<Record<K, infer X>>
      ? X
      : never
  : never;

type JsonContent<R> = R extends { content: { "application/json": infer C } } ? C : undefined;

type SuccessCodes = 200 | 201 | 202 | 204;

/** The JSON body of any 2xx response of the operation (`undefined` for 204). */
export type ResponseOf<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { responses: infer R }
    ? { [C in keyof R]: C extends SuccessCodes ? JsonContent<R[C]> : never }[keyof R]
    : never;

export type RequestBodyOf<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { requestBody?: { content: { "application/json": infer B } } }
    ? B
    : never;

export type PathParamsOf<P extends keyof paths, M extends Method> = ParamsOf<Operation<P, M>, "path">;
export type QueryOf<P extends keyof paths, M extends Method> = ParamsOf<Operation<P, M>, "query">;

type Scalar = string | number | boolean;

export interface CallOptions<P extends keyof paths, M extends Method> {
  path?: PathParamsOf<P, M>;
  query?: QueryOf<P, M>;
  body?: RequestBodyOf<P, M>;
  /** Client-side deadline; the call fails with a CLIENT_TIMEOUT ApiError past it. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

function buildUrl(template: string, path: object | undefined, query: object | undefined): string {
  const pathValues = (path ?? {}) as Record<string, Scalar>;
  const url = template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = pathValues[name];
    if (v === undefined) throw new Error(`missing path parameter ${name} for ${template}`);
    return encodeURIComponent(String(v));
  });
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries((query ?? {}) as Record<string, Scalar | null | undefined>)) {
    if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${url}?${qs}` : url;
}

/** A fresh id for `X-Correlation-ID`, so a failure can be found in the server log. */
export function newCorrelationId(): string {
  return typeof crypto.randomUUID === "function"
    ? crypto.randomUUID()
    : `ui-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/** Calls one API route. Resolves with the typed 2xx body; rejects with an ApiError. */
export async function call<M extends Method, P extends PathsWith<M>>(
  method: M,
  route: P,
  options: CallOptions<P, M> = {},
): Promise<ResponseOf<P, M>> {
  const url = buildUrl(route, options.path, options.query);
  const correlationId = newCorrelationId();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const onAbort = () => controller.abort();
  options.signal?.addEventListener("abort", onAbort);

  const headers: Record<string, string> = {
    Accept: "application/json",
    "X-Correlation-ID": correlationId,
  };
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }

  let response: Response;
  try {
    response = await fetch(url, {
      method: method.toUpperCase(),
      headers,
      body,
      credentials: "same-origin",
      signal: controller.signal,
    });
  } catch (e) {
    if (timedOut) {
      throw ApiError.client(
        "CLIENT_TIMEOUT",
        `No answer within ${Math.round(timeoutMs / 1000)} s.`,
        correlationId,
      );
    }
    if (options.signal?.aborted) throw e;
    throw ApiError.client(
      "NETWORK_ERROR",
      "The server could not be reached. Check that dbapp is running.",
      correlationId,
    );
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }

  const responseId = response.headers.get("X-Correlation-ID") ?? correlationId;
  if (response.status === 204) return undefined as ResponseOf<P, M>;
  const text = await response.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (!response.ok) {
    if (isErrorBody(parsed)) throw ApiError.fromBody(response.status, parsed);
    throw ApiError.client(
      "BAD_RESPONSE",
      `The server answered HTTP ${response.status} without an error body.`,
      responseId,
      response.status,
    );
  }
  if (parsed === undefined && text) {
    throw ApiError.client("BAD_RESPONSE", "The server answered with invalid JSON.", responseId);
  }
  return parsed as ResponseOf<P, M>;
}

/**
 * The URL of a route with its parameters filled in, for requests `call` cannot make: links the
 * browser follows itself (downloads) and uploads that report progress.
 */
export function urlOf<M extends Method, P extends PathsWith<M>>(
  _method: M,
  route: P,
  params: { path?: PathParamsOf<P, M>; query?: QueryOf<P, M> },
): string {
  return buildUrl(route, params.path, params.query);
}

export const api = {
  get: <P extends PathsWith<"get">>(route: P, options?: CallOptions<P, "get">) =>
    call("get", route, options),
  post: <P extends PathsWith<"post">>(route: P, options?: CallOptions<P, "post">) =>
    call("post", route, options),
  put: <P extends PathsWith<"put">>(route: P, options?: CallOptions<P, "put">) =>
    call("put", route, options),
  patch: <P extends PathsWith<"patch">>(route: P, options?: CallOptions<P, "patch">) =>
    call("patch", route, options),
  delete: <P extends PathsWith<"delete">>(route: P, options?: CallOptions<P, "delete">) =>
    call("delete", route, options),
};
