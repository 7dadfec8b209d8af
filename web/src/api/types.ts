// Names for generated response shapes, derived from `paths` (never written by hand), so they
// follow the OpenAPI document whatever its component names are.
import type { RequestBodyOf, ResponseOf } from "./client";

type Item<T> = T extends { items: ReadonlyArray<infer I> } ? I : never;

export type Me = ResponseOf<"/api/user/me", "get">;
export type MeWorkspace = ResponseOf<"/api/user/me/workspace", "get">;
export type AuthStatus = ResponseOf<"/api/user/auth/status", "get">;
export type Catalog = Item<ResponseOf<"/api/unity-catalog/catalogs", "get">>;
export type Schema = Item<ResponseOf<"/api/unity-catalog/catalogs/{catalog}/schemas", "get">>;
export type Table = Item<
  ResponseOf<"/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables", "get">
>;
export type TableDetail = ResponseOf<
  "/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables/{table}",
  "get"
>;
export type TableRows = ResponseOf<
  "/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables/{table}/rows",
  "get"
>;
export type Endpoint = Item<ResponseOf<"/api/model-serving/endpoints", "get">>;
export type EndpointState = Endpoint["state"];
export type EndpointSchema = ResponseOf<"/api/model-serving/endpoints/{name}/schema", "get">;
export type Invocation = ResponseOf<"/api/model-serving/endpoints/{name}/invocations", "post">;
export type InferenceLogPage = ResponseOf<"/api/model-serving/logs", "get">;
export type InferenceLog = Item<InferenceLogPage>;
export type ConversationPage = ResponseOf<"/api/conversations", "get">;
export type Conversation = Item<ConversationPage>;
export type ConversationDetail = ResponseOf<"/api/conversations/{id}", "get">;
export type ConversationMessage = ConversationDetail["messages"][number];
export type Preference = Item<ResponseOf<"/api/preferences", "get">>;
export type Performance = ResponseOf<"/api/v1/metrics/performance", "get">;
export type UsageSummary = ResponseOf<"/api/v1/metrics/usage", "get">;
export type TimeSeries = ResponseOf<"/api/v1/metrics/time-series", "get">;
export type QueryDefinition = Item<ResponseOf<"/api/queries", "get">>;
export type QueryParameter = QueryDefinition["parameters"][number];
export type RunQueryBody = RequestBodyOf<"/api/queries/{name}", "post">;
/** What running a query answers: its result (200) or a run still waiting for the warehouse (202). */
export type QueryRunAnswer = ResponseOf<"/api/queries/{name}", "post">;
export type QueryPending = Extract<QueryRunAnswer, { run_id: string }>;
export type QueryResult = Exclude<QueryRunAnswer, QueryPending>;
export type QueryColumn = QueryResult["columns"][number];
export type UsageEvent = RequestBodyOf<"/api/v1/metrics/usage-events", "post">["events"][number];

/** The largest `timeout_seconds` of an invocation with the server's default request deadline
 * (110 s, less its 10 s margin); the server refuses more with `INVALID_REQUEST`. */
export const MAX_TIMEOUT_SECONDS = 100;
export type GenieSpace = Item<ResponseOf<"/api/genie/spaces", "get">>;
export type GenieConversation = Item<ResponseOf<"/api/genie/spaces/{space_id}/conversations", "get">>;
