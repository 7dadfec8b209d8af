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
