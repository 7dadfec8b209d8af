import type { components } from "./schema";

/** The server's error envelope and its code union, both generated from the OpenAPI document. */
export type ErrorBody = components["schemas"]["ErrorBody"];
export type ErrorCode = components["schemas"]["ErrorCode"];

/** Failures that happen before the server answers; they never come from the server. */
export type ClientErrorCode = "CLIENT_TIMEOUT" | "NETWORK_ERROR" | "BAD_RESPONSE";

export class ApiError extends Error {
  readonly status: number;
  readonly code: ErrorCode | ClientErrorCode;
  readonly correlationId: string;
  readonly detail: unknown;
  readonly retryAfter: number | undefined;

  private constructor(
    status: number,
    code: ErrorCode | ClientErrorCode,
    message: string,
    correlationId: string,
    detail: unknown,
    retryAfter: number | undefined,
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.correlationId = correlationId;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }

  static fromBody(status: number, body: ErrorBody): ApiError {
    return new ApiError(
      status,
      body.error_code,
      body.message,
      body.correlation_id,
      body.detail,
      body.retry_after ?? undefined,
    );
  }

  static client(code: ClientErrorCode, message: string, correlationId: string, status = 0): ApiError {
    return new ApiError(status, code, message, correlationId, undefined, undefined);
  }
}

export function isErrorBody(v: unknown): v is ErrorBody {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o["error_code"] === "string" &&
    typeof o["message"] === "string" &&
    typeof o["correlation_id"] === "string"
  );
}

export function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  return ApiError.client("BAD_RESPONSE", e instanceof Error ? e.message : String(e), "-");
}

function assertNever(x: never): never {
  throw new Error(`unhandled error code ${String(x)}`);
}

/**
 * A short title for every code. Exhaustive over the generated union: a code the server adds is
 * a compile error here until the UI handles it.
 */
export function errorTitle(code: ErrorCode | ClientErrorCode): string {
  switch (code) {
    case "AUTH_MISSING":
    case "AUTH_INVALID":
    case "AUTH_EXPIRED":
    case "IDENTITY_MISMATCH":
      return "Not signed in";
    case "AUTH_RATE_LIMITED":
    case "RATE_LIMITED":
      return "Rate limited";
    case "AUTH_USER_IDENTITY_FAILED":
      return "Identity unavailable";
    case "PERMISSION_DENIED":
      return "Permission denied";
    case "ADMIN_REQUIRED":
      return "Admins only";
    case "ROUTE_NOT_FOUND":
    case "METHOD_NOT_ALLOWED":
      return "Not available";
    case "CATALOG_NOT_FOUND":
      return "Catalog not found";
    case "SCHEMA_NOT_FOUND":
      return "Schema not found";
    case "TABLE_NOT_FOUND":
      return "Table not found";
    case "ENDPOINT_NOT_FOUND":
      return "Endpoint not found";
    case "VOLUME_NOT_FOUND":
      return "Volume not found";
    case "FILE_NOT_FOUND":
      return "File not found";
    case "QUERY_NOT_FOUND":
      return "Query not found";
    case "QUERY_RUN_NOT_FOUND":
      return "Query run not found";
    case "PREFERENCE_NOT_FOUND":
      return "Preference not found";
    case "CONVERSATION_NOT_FOUND":
      return "Conversation not found";
    case "GENIE_SPACE_NOT_FOUND":
      return "Genie space not found";
    case "GENIE_CONVERSATION_NOT_FOUND":
      return "Genie conversation not found";
    case "GENIE_RESULT_NOT_READY":
      return "Genie is still answering";
    case "GENIE_MESSAGE_FAILED":
      return "Genie could not answer";
    case "INVALID_REQUEST":
    case "INVALID_IDENTIFIER":
    case "PAYLOAD_TOO_LARGE":
    case "UNSUPPORTED_MEDIA_TYPE":
    case "URI_TOO_LONG":
    case "HEADERS_TOO_LARGE":
      return "Invalid request";
    case "FILE_ALREADY_EXISTS":
      return "File already exists";
    case "ENDPOINT_NOT_READY":
      return "Endpoint not ready";
    case "UPSTREAM_ERROR":
      return "Workspace error";
    case "MODEL_INPUT_INVALID":
      return "The model refused the inputs";
    case "MODEL_ERROR":
      return "Model error";
    case "UPSTREAM_TIMEOUT":
    case "MODEL_TIMEOUT":
    case "CLIENT_TIMEOUT":
      return "Timed out";
    case "DATABASE_UNAVAILABLE":
      return "Database unavailable";
    case "STORAGE_NOT_CONFIGURED":
      return "Storage not configured";
    case "WAREHOUSE_NOT_CONFIGURED":
      return "No SQL warehouse";
    case "ASSISTANT_NOT_CONFIGURED":
      return "Assistant not configured";
    case "APP_CREDENTIALS_NOT_CONFIGURED":
      return "App credentials not configured";
    case "INTERNAL_ERROR":
      return "Internal error";
    case "NETWORK_ERROR":
      return "Server unreachable";
    case "BAD_RESPONSE":
      return "Unexpected response";
    default:
      return assertNever(code);
  }
}

/**
 * Whether asking again, unchanged, may succeed: an overloaded or unreachable service, a timeout,
 * a model not ready yet. A denial, a missing resource, a bad request or a missing setting will
 * answer the same until someone changes something, so the UI offers no "Try again" for them.
 * Exhaustive, as `errorTitle`.
 */
export function isRetryable(code: ErrorCode | ClientErrorCode): boolean {
  switch (code) {
    case "AUTH_RATE_LIMITED":
    case "RATE_LIMITED":
    case "AUTH_USER_IDENTITY_FAILED":
    case "UPSTREAM_ERROR":
    case "UPSTREAM_TIMEOUT":
    case "MODEL_ERROR":
    case "MODEL_TIMEOUT":
    case "ENDPOINT_NOT_READY":
    case "GENIE_RESULT_NOT_READY":
    case "GENIE_MESSAGE_FAILED":
    case "DATABASE_UNAVAILABLE":
    case "INTERNAL_ERROR":
    case "CLIENT_TIMEOUT":
    case "NETWORK_ERROR":
    case "BAD_RESPONSE":
      return true;
    case "AUTH_MISSING":
    case "AUTH_INVALID":
    case "AUTH_EXPIRED":
    case "IDENTITY_MISMATCH":
    case "PERMISSION_DENIED":
    case "ADMIN_REQUIRED":
    case "ROUTE_NOT_FOUND":
    case "METHOD_NOT_ALLOWED":
    case "CATALOG_NOT_FOUND":
    case "SCHEMA_NOT_FOUND":
    case "TABLE_NOT_FOUND":
    case "ENDPOINT_NOT_FOUND":
    case "VOLUME_NOT_FOUND":
    case "FILE_NOT_FOUND":
    case "QUERY_NOT_FOUND":
    case "QUERY_RUN_NOT_FOUND":
    case "PREFERENCE_NOT_FOUND":
    case "CONVERSATION_NOT_FOUND":
    case "GENIE_SPACE_NOT_FOUND":
    case "GENIE_CONVERSATION_NOT_FOUND":
    case "INVALID_REQUEST":
    case "INVALID_IDENTIFIER":
    case "PAYLOAD_TOO_LARGE":
    case "UNSUPPORTED_MEDIA_TYPE":
    case "URI_TOO_LONG":
    case "HEADERS_TOO_LARGE":
    case "FILE_ALREADY_EXISTS":
    case "MODEL_INPUT_INVALID":
    case "STORAGE_NOT_CONFIGURED":
    case "WAREHOUSE_NOT_CONFIGURED":
    case "ASSISTANT_NOT_CONFIGURED":
    case "APP_CREDENTIALS_NOT_CONFIGURED":
      return false;
    default:
      return assertNever(code);
  }
}

/** What a `PERMISSION_DENIED` says is missing (`detail` of the envelope), when it says it. */
export interface MissingGrant {
  privilege: string;
  securableType: string;
  securable: string;
}

export function missingGrant(e: ApiError): MissingGrant | null {
  if (e.code !== "PERMISSION_DENIED" || typeof e.detail !== "object" || e.detail === null) return null;
  const d = e.detail as Record<string, unknown>;
  const { privilege, securable_type: securableType, securable } = d;
  if (typeof privilege !== "string" || typeof securableType !== "string" || typeof securable !== "string") return null;
  return { privilege, securableType, securable };
}

/**
 * Whether an error stands for the whole of what a page shows below it: a denial or a missing
 * parent means every child would fail the same way, so the children are not loaded and the one
 * error is shown once.
 */
export function blocksChildren(error: unknown): boolean {
  const code = asApiError(error).code;
  return (
    code === "PERMISSION_DENIED" ||
    code === "CATALOG_NOT_FOUND" ||
    code === "SCHEMA_NOT_FOUND" ||
    code === "TABLE_NOT_FOUND" ||
    code === "ENDPOINT_NOT_FOUND" ||
    code === "INVALID_IDENTIFIER"
  );
}
