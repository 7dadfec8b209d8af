//! The fixture: who exists in the emulated workspace, what each principal may see, and what the
//! tables hold.
//!
//! A fixture is a JSON document (or TOML, which cannot express SQL NULL in table rows) with the
//! shape of [`Fixture`]. The default one, `fixture/default.json`, is embedded in the binary and is
//! the workspace of `shared/DESIGN.md`: users alice, bob and admin, the service principal
//! `dbapp-sp`, catalogs `main` and `samples`, the serving endpoints `echo`, `chat` (with a
//! scripted weather tool call), `broken`, `not-ready`, `embed` and `complete`, the warehouse
//! `dev-warehouse`, the Genie spaces "Sales" and "Taxi trips", and the database instance
//! `dev-lakebase`. `dbapp emulate --fixture FILE` replaces all of it; `docs/emulator.md`
//! documents every field.
//!
//! Visibility: catalogs, schemas and tables carry optional `readers` lists naming users (by user
//! name), service principals (by application id) or groups. A principal sees an object when it is
//! named (directly or through a group) in every list set on the object and its parents; an object
//! without a list inherits its parent's. Volumes also carry `writers`: who may change their files
//! besides the owner.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The whole emulated workspace.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// Workspace identity, as `/.well-known/databricks-config` reports it.
    #[serde(default)]
    pub workspace: Workspace,
    /// Tunables (token lifetimes, page sizes, SQL timing).
    #[serde(default)]
    pub settings: Settings,
    /// Human users.
    #[serde(default)]
    pub users: Vec<User>,
    /// Service principals (OAuth M2M clients).
    #[serde(default)]
    pub service_principals: Vec<ServicePrincipal>,
    /// Unity Catalog contents.
    #[serde(default)]
    pub catalogs: Vec<Catalog>,
    /// Model Serving endpoints.
    #[serde(default)]
    pub serving_endpoints: Vec<ServingEndpoint>,
    /// SQL warehouses that accept statements.
    #[serde(default)]
    pub warehouses: Vec<Warehouse>,
    /// Lakebase Provisioned instances.
    #[serde(default)]
    pub database_instances: Vec<DatabaseInstance>,
    /// Lakebase Autoscaling endpoints.
    #[serde(default)]
    pub postgres_endpoints: Vec<PostgresEndpoint>,
    /// Genie spaces, answering questions from scripted rules.
    #[serde(default)]
    pub genie_spaces: Vec<GenieSpace>,
}

/// Workspace identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workspace {
    /// Numeric workspace id (sent as `X-Databricks-Org-Id`).
    pub workspace_id: u64,
    /// Display name of the workspace.
    pub name: String,
    /// `aws`, `azure` or `gcp`.
    pub cloud: String,
    /// Account id reported by host metadata.
    pub account_id: String,
}

impl Default for Workspace {
    fn default() -> Self {
        Self {
            workspace_id: 1_234_567_890_123_456,
            name: "dbapp-emulator".into(),
            cloud: "aws".into(),
            account_id: "00000000-0000-4000-8000-000000000000".into(),
        }
    }
}

/// Tunables; each can also be changed at run time through `PUT /_emulator/config`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Lifetime of OAuth access tokens from `/oidc/v1/token`.
    pub oauth_token_ttl_secs: u64,
    /// Lifetime of Lakebase database credentials.
    pub db_token_ttl_secs: u64,
    /// Page size of Unity Catalog lists when the client sends `max_results=0`.
    pub default_page_size: usize,
    /// Largest page a Unity Catalog list returns, whatever `max_results` asks.
    pub max_page_size: usize,
    /// When true, Unity Catalog lists start with an empty page that carries a token, and the last
    /// page of data carries a token to one more empty page, as the real service may do.
    pub empty_pages: bool,
    /// How long a SQL statement stays `PENDING`.
    pub sql_pending_ms: u64,
    /// How long a SQL statement stays `RUNNING` after `PENDING`.
    pub sql_running_ms: u64,
    /// Rows per result chunk of a SQL statement.
    pub sql_chunk_rows: usize,
    /// Largest result, in bytes of its encoded form, that `INLINE_OR_EXTERNAL_LINKS` returns
    /// inline; larger results get external links.
    pub sql_hybrid_inline_bytes: usize,
    /// Lifetime of an `EXTERNAL_LINKS` URL; fetching it later answers `403`.
    pub sql_link_ttl_secs: u64,
    /// How long a warehouse stays `STARTING` (unless the warehouse sets `start_delay_ms`).
    pub warehouse_start_ms: u64,
    /// How long a warehouse stays `STOPPING` (unless the warehouse sets `stop_delay_ms`).
    pub warehouse_stop_ms: u64,
    /// Most SQL sessions open at once; creating one more is `429 RESOURCE_EXHAUSTED`.
    pub sql_max_sessions: usize,
    /// Simulated latency of every model invocation, before its answer (or first chunk) is sent.
    pub serving_latency_ms: u64,
    /// Simulated latency before each chunk of a streamed (`stream: true`) answer after the first.
    pub serving_chunk_latency_ms: u64,
    /// Seed for probabilistic faults, so a run can be replayed.
    pub fault_seed: u64,
    /// Largest file the Files API accepts, in bytes; a larger upload is `413` and stores nothing.
    pub files_max_file_bytes: u64,
    /// Most bytes all volumes together may hold (files live in memory); an upload that would
    /// pass it is `413` and stores nothing.
    pub files_max_total_bytes: u64,
    /// Largest workspace file or notebook `POST /api/2.0/workspace/import` accepts, in bytes:
    /// the real service's 10 MB import limit; a larger one is `400 MAX_NOTEBOOK_SIZE_EXCEEDED`
    /// and stores nothing.
    pub workspace_max_file_bytes: u64,
    /// Most bytes all workspace files and notebooks together may hold (they live in memory); an
    /// import that would pass it is `400 RESOURCE_LIMIT_EXCEEDED` and stores nothing.
    pub workspace_max_total_bytes: u64,
    /// How long a Genie message stays in each status before the next one (`SUBMITTED`,
    /// `FETCHING_METADATA`, `FILTERING_CONTEXT`, `ASKING_AI`, `EXECUTING_QUERY`).
    pub genie_step_ms: u64,
    /// How long a Lakebase Autoscaling operation (create, update, delete) takes to be `done`;
    /// 0 answers every operation already done.
    pub postgres_operation_ms: u64,
    /// How long an app's compute stays `STARTING` or `STOPPING`, a deployment `IN_PROGRESS` and
    /// an app update `IN_PROGRESS`; 0 settles each at once.
    pub apps_transition_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            oauth_token_ttl_secs: 3600,
            db_token_ttl_secs: 3600,
            default_page_size: 100,
            max_page_size: 1000,
            empty_pages: false,
            sql_pending_ms: 0,
            sql_running_ms: 0,
            sql_chunk_rows: 1000,
            sql_hybrid_inline_bytes: 1024 * 1024,
            sql_link_ttl_secs: 900,
            warehouse_start_ms: 1500,
            warehouse_stop_ms: 500,
            sql_max_sessions: 1000,
            serving_latency_ms: 0,
            serving_chunk_latency_ms: 0,
            fault_seed: 42,
            files_max_file_bytes: 128 * 1024 * 1024,
            files_max_total_bytes: 512 * 1024 * 1024,
            workspace_max_file_bytes: 10 * 1024 * 1024,
            workspace_max_total_bytes: 256 * 1024 * 1024,
            genie_step_ms: 100,
            postgres_operation_ms: 0,
            apps_transition_ms: 0,
        }
    }
}

/// A human user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// SCIM `userName`, an e-mail address.
    pub user_name: String,
    /// SCIM `displayName`.
    pub display_name: String,
    /// Group names the user belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Personal access tokens that authenticate as this user; they never expire unless expired
    /// through the control API.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// `active` in SCIM; an inactive user's tokens are refused.
    #[serde(default = "yes")]
    pub active: bool,
}

/// A service principal, which authenticates with OAuth M2M (or a token of its own).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePrincipal {
    /// The application (client) id; also its SCIM `userName` and its Postgres role name.
    pub application_id: String,
    /// SCIM `displayName`.
    pub display_name: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// Group names.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Static tokens, like a user's personal access tokens.
    #[serde(default)]
    pub tokens: Vec<String>,
}

/// A Unity Catalog catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Catalog name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub comment: Option<String>,
    /// Owner principal or group.
    #[serde(default = "default_owner")]
    pub owner: String,
    /// `MANAGED_CATALOG`, `DELTASHARING_CATALOG`, …
    #[serde(default = "default_catalog_type")]
    pub catalog_type: String,
    /// Who may see it (see the module docs); `None` means everyone.
    #[serde(default)]
    pub readers: Option<Vec<String>>,
    /// Schemas in the catalog.
    #[serde(default)]
    pub schemas: Vec<Schema>,
}

/// A Unity Catalog schema.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Schema name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub comment: Option<String>,
    /// Owner; the catalog's when absent.
    #[serde(default)]
    pub owner: Option<String>,
    /// Who may see it; inherits the catalog's when absent.
    #[serde(default)]
    pub readers: Option<Vec<String>>,
    /// Tables in the schema.
    #[serde(default)]
    pub tables: Vec<Table>,
    /// Volumes in the schema, with the files they start with.
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

/// A Unity Catalog volume: a directory tree of files served by the Files API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// Volume name.
    pub name: String,
    /// `MANAGED` or `EXTERNAL`.
    #[serde(default = "default_table_type")]
    pub volume_type: String,
    /// Owner; the schema's (then the catalog's) when absent. The owner may always write.
    #[serde(default)]
    pub owner: Option<String>,
    /// Free text.
    #[serde(default)]
    pub comment: Option<String>,
    /// Who may see it and read its files; inherits the schema's when absent.
    #[serde(default)]
    pub readers: Option<Vec<String>>,
    /// Who may also write (upload, delete, create directories), besides the owner; absent means
    /// nobody else. A writer must be a reader too.
    #[serde(default)]
    pub writers: Option<Vec<String>>,
    /// Files present at start (and after a reset), by path relative to the volume root.
    #[serde(default)]
    pub files: Vec<VolumeFile>,
}

/// A file a volume starts with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeFile {
    /// Path relative to the volume root, e.g. `data/regions.csv`; parent directories are
    /// created with it.
    pub path: String,
    /// The content, as UTF-8 text.
    pub content: String,
}

/// A Unity Catalog table with its data.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Table name.
    pub name: String,
    /// `MANAGED`, `EXTERNAL`, `VIEW`, …
    #[serde(default = "default_table_type")]
    pub table_type: String,
    /// `DELTA`, `PARQUET`, …
    #[serde(default = "default_format")]
    pub data_source_format: String,
    /// Free text.
    #[serde(default)]
    pub comment: Option<String>,
    /// Owner; the schema's when absent.
    #[serde(default)]
    pub owner: Option<String>,
    /// Who may see it; inherits the schema's when absent.
    #[serde(default)]
    pub readers: Option<Vec<String>>,
    /// Columns in order.
    pub columns: Vec<Column>,
    /// Rows, one JSON array per row with one value per column (`null` for NULL).
    #[serde(default)]
    pub rows: Vec<Vec<Value>>,
    /// A CSV or Parquet file holding the rows instead, relative to the fixture file; read when
    /// the fixture is loaded from a file (`crate::table_data` says how values are read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_file: Option<String>,
}

/// A column of a table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// SQL type as written, e.g. `bigint`, `array<string>`.
    pub type_text: String,
    /// `ColumnTypeName`: `LONG`, `STRING`, `DOUBLE`, `BOOLEAN`, `DATE`, `TIMESTAMP`, …
    pub type_name: String,
    /// Whether the column accepts NULL.
    #[serde(default = "yes")]
    pub nullable: bool,
    /// Free text.
    #[serde(default)]
    pub comment: Option<String>,
}

/// What a serving endpoint does when invoked.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Behavior {
    /// `{"predictions": <the inputs>}`.
    Echo,
    /// An OpenAI-style chat model, scripted by the endpoint's [`ChatRule`]s; without a matching
    /// rule it repeats the last user message. Also answers the Responses API.
    Chat,
    /// An OpenAI-style text completion.
    Completions,
    /// An embeddings list.
    Embeddings,
    /// Always HTTP 500.
    Error,
}

/// A Model Serving endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServingEndpoint {
    /// Endpoint name.
    pub name: String,
    /// `llm/v1/chat`, `llm/v1/completions`, `llm/v1/embeddings`, or absent for custom models.
    #[serde(default)]
    pub task: Option<String>,
    /// What invocations return.
    pub behavior: Behavior,
    /// `READY` or `NOT_READY`.
    #[serde(default = "default_ready")]
    pub ready: String,
    /// `NOT_UPDATING`, `IN_PROGRESS`, `UPDATE_FAILED` or `UPDATE_CANCELED`.
    #[serde(default = "default_config_update")]
    pub config_update: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Creator user name.
    #[serde(default = "default_owner")]
    pub creator: String,
    /// Served entities (models).
    #[serde(default)]
    pub served_entities: Vec<ServedEntity>,
    /// Who may see and query it; `None` means everyone.
    #[serde(default)]
    pub readers: Option<Vec<String>>,
    /// How a `chat` endpoint answers, tried in order; the first that matches wins.
    #[serde(default)]
    pub rules: Vec<ChatRule>,
}

/// One scripted answer of a `chat` endpoint: when the conversation matches, answer with `reply`
/// or call the `tool_calls`, whichever is set (exactly one must be).
///
/// A rule matches when the last user message contains `when_user_contains` (ignoring ASCII
/// case; any message when absent) and the conversation's last message is a `tool` result exactly
/// when `after_tool` is true. A rule that calls tools matches only when the request offers every
/// tool it calls (`tools`) and does not say `tool_choice: "none"`, as a real model can only call
/// tools it was given.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatRule {
    /// A case-insensitive substring of the last user message; absent matches any.
    #[serde(default)]
    pub when_user_contains: Option<String>,
    /// Match only right after a `tool` message (true), or only when the last message is not
    /// one (false, the default).
    #[serde(default)]
    pub after_tool: bool,
    /// The answer text; `{user}` stands for the last user message and `{tool_result}` for the
    /// content of the last `tool` message.
    #[serde(default)]
    pub reply: Option<String>,
    /// Tool calls to answer with instead of text.
    #[serde(default)]
    pub tool_calls: Vec<ScriptedToolCall>,
}

/// A function call a [`ChatRule`] makes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedToolCall {
    /// The function's name, which the request must offer in `tools`.
    pub name: String,
    /// The arguments, sent to the client as a JSON string.
    #[serde(default)]
    pub arguments: Value,
}

/// A model served by an endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServedEntity {
    /// Served entity name.
    pub name: String,
    /// Registered model or foundation model name.
    pub entity_name: String,
    /// Model version.
    #[serde(default)]
    pub entity_version: Option<String>,
    /// An input example returned with the endpoint (free JSON).
    #[serde(default)]
    pub input_example: Option<Value>,
}

/// A SQL warehouse. Every field but `id` and `name` is optional, so older fixtures still load.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warehouse {
    /// Warehouse id, as sent in `warehouse_id` and in `http_path` (`/sql/1.0/warehouses/{id}`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The state when the emulator starts (or is reset): `RUNNING` (default), `STOPPED`,
    /// `STARTING` or `STOPPING`; a transitional state settles after the start or stop delay.
    #[serde(default)]
    pub state: WarehouseState,
    /// `2X-Small`, `X-Small`, `Small`, `Medium`, `Large`, `X-Large`, `2X-Large` … `5X-Large`.
    #[serde(default = "default_cluster_size")]
    pub cluster_size: String,
    /// Minutes of idleness before the real service stops it: 0 (never) or at least 10. Reported
    /// only; the emulator never stops a warehouse on its own.
    #[serde(default = "default_auto_stop_mins")]
    pub auto_stop_mins: u32,
    /// `PRO`, `CLASSIC`, `REALTIME` or `TYPE_UNSPECIFIED`.
    #[serde(default = "default_warehouse_type")]
    pub warehouse_type: String,
    /// `enable_serverless_compute`.
    #[serde(default = "yes")]
    pub serverless: bool,
    /// User name of the creator (`creator_name`).
    #[serde(default = "default_owner")]
    pub creator_name: String,
    /// Who holds CAN_USE (users, service principals or groups); `None` means everyone. Others do
    /// not see it in the list and get `403 PERMISSION_DENIED` from it.
    #[serde(default)]
    pub readers: Option<Vec<String>>,
    /// How long `STARTING` lasts; `settings.warehouse_start_ms` when absent.
    #[serde(default)]
    pub start_delay_ms: Option<u64>,
    /// How long `STOPPING` lasts; `settings.warehouse_stop_ms` when absent.
    #[serde(default)]
    pub stop_delay_ms: Option<u64>,
}

/// The `state` of a warehouse that a fixture or the control API may set. `DELETING` and
/// `DELETED` are not emulated.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WarehouseState {
    /// Starting; `RUNNING` once the start delay has passed.
    Starting,
    /// Accepts statements.
    #[default]
    Running,
    /// Stopping; `STOPPED` once the stop delay has passed.
    Stopping,
    /// Stopped; a statement submitted to it starts it.
    Stopped,
}

/// A Genie space: questions in plain language about some tables, answered by scripted rules
/// (`shared/UPSTREAM-2.md` §1; `docs/emulator.md` has the whole story).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenieSpace {
    /// 32 lowercase hexadecimal characters, as the real service's ids are.
    pub space_id: String,
    /// Display title.
    pub title: String,
    /// Free text; the AI bridge reads it as the space's description for agents.
    #[serde(default)]
    pub description: Option<String>,
    /// The warehouse that runs the space's queries; it must exist.
    pub warehouse_id: String,
    /// Full names (`catalog.schema.table`) of the tables the space covers; each must exist.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Who may use the space (CAN_RUN); `None` means everyone. Others get `403`.
    #[serde(default)]
    pub readers: Option<Vec<String>>,
    /// Who holds CAN_MANAGE (may list every user's conversations); `None` means the `admins`
    /// group.
    #[serde(default)]
    pub managers: Option<Vec<String>>,
    /// How questions are answered, tried in order; the first that matches wins. Without a
    /// match Genie answers with a follow-up question saying it cannot answer.
    #[serde(default)]
    pub rules: Vec<GenieRule>,
}

/// One scripted answer of a Genie space: a text, a query (with an optional text beside it), or a
/// failure.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenieRule {
    /// A case-insensitive substring of the question; absent matches any question.
    #[serde(default)]
    pub when_question_contains: Option<String>,
    /// A text answer, or the text beside a query's result.
    #[serde(default)]
    pub text: Option<String>,
    /// The SQL Genie "generates"; it runs as the asking user on the space's warehouse.
    #[serde(default)]
    pub sql: Option<String>,
    /// Title of the query attachment.
    #[serde(default)]
    pub title: Option<String>,
    /// Description of the query attachment.
    #[serde(default)]
    pub description: Option<String>,
    /// A failure to script instead of the normal outcome.
    #[serde(default)]
    pub fault: Option<GenieFault>,
    /// The query result expires this long after the message is `COMPLETED`: the message is
    /// `QUERY_RESULT_EXPIRED` from then until `execute-query` runs it again.
    #[serde(default)]
    pub expire_after_ms: Option<u64>,
}

/// A failure a [`GenieRule`] scripts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GenieFault {
    /// The message fails after `ASKING_AI`, with error type `GENERIC_CHAT_COMPLETION_EXCEPTION`.
    MessageFails,
    /// The rule's query fails when it runs, with error type `SQL_EXECUTION_EXCEPTION`.
    QueryFails,
}

/// A Lakebase Provisioned database instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseInstance {
    /// Instance name.
    pub name: String,
    /// Stable unique id.
    pub uid: String,
    /// Host name; replaced by the Postgres admin URL's host when the emulator has one.
    pub read_write_dns: String,
    /// `AVAILABLE`, `STOPPED`, …
    #[serde(default = "default_instance_state")]
    pub state: String,
    /// Postgres major version.
    #[serde(default = "default_pg_version")]
    pub pg_version: String,
    /// `CU_1`, `CU_2`, `CU_4` or `CU_8`.
    #[serde(default = "default_capacity")]
    pub capacity: String,
}

/// A Lakebase Autoscaling endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresEndpoint {
    /// Resource name `projects/{p}/branches/{b}/endpoints/{e}`.
    pub name: String,
    /// Host name; replaced by the Postgres admin URL's host when the emulator has one.
    pub host: String,
}

fn yes() -> bool {
    true
}
fn default_owner() -> String {
    "admin@example.com".into()
}
fn default_catalog_type() -> String {
    "MANAGED_CATALOG".into()
}
fn default_table_type() -> String {
    "MANAGED".into()
}
fn default_format() -> String {
    "DELTA".into()
}
fn default_ready() -> String {
    "READY".into()
}
fn default_config_update() -> String {
    "NOT_UPDATING".into()
}
fn default_instance_state() -> String {
    "AVAILABLE".into()
}
fn default_pg_version() -> String {
    "PG_VERSION_16".into()
}
fn default_capacity() -> String {
    "CU_1".into()
}
fn default_cluster_size() -> String {
    "Small".into()
}
fn default_auto_stop_mins() -> u32 {
    120
}
fn default_warehouse_type() -> String {
    "PRO".into()
}

/// Why a fixture could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The file could not be read.
    #[error("cannot read fixture {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON or TOML of the fixture shape.
    #[error("fixture {path} is not valid: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// The fixture contradicts itself.
    #[error("fixture is inconsistent: {0}")]
    Invalid(String),
    /// A table's data file cannot be read as the table's rows.
    #[error("data file {path} of table {table}: {message}")]
    DataFile {
        /// The data file, as resolved against the fixture file's directory.
        path: String,
        /// The table's full name.
        table: String,
        /// What is wrong, and where in the file.
        message: String,
    },
}

const DEFAULT_FIXTURE: &str = include_str!("../fixture/default.json");

impl Default for Fixture {
    fn default() -> Self {
        serde_json::from_str(DEFAULT_FIXTURE).expect("the embedded default fixture is valid JSON")
    }
}

impl Fixture {
    /// Reads a fixture from a `.json` or `.toml` file and validates it.
    ///
    /// # Errors
    /// [`FixtureError`] when the file cannot be read, parsed, or is inconsistent.
    pub fn from_file(path: &Path) -> Result<Self, FixtureError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| FixtureError::Read {
            path: shown.clone(),
            source,
        })?;
        let parse_error = |message: String| FixtureError::Parse {
            path: shown.clone(),
            message,
        };
        let mut fixture: Fixture = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|e| parse_error(e.to_string()))?
        } else {
            serde_json::from_str(&text).map_err(|e| parse_error(e.to_string()))?
        };
        fixture.read_data_files(path.parent().unwrap_or(Path::new("")))?;
        fixture.validate()?;
        Ok(fixture)
    }

    /// Fills the rows of every table that names a `data_file`, resolved against `base`.
    fn read_data_files(&mut self, base: &Path) -> Result<(), FixtureError> {
        for catalog in &mut self.catalogs {
            for schema in &mut catalog.schemas {
                for table in &mut schema.tables {
                    let Some(file) = &table.data_file else {
                        continue;
                    };
                    let full_name = format!("{}.{}.{}", catalog.name, schema.name, table.name);
                    let path = base.join(file);
                    let failure = |message: String| FixtureError::DataFile {
                        path: path.display().to_string(),
                        table: full_name.clone(),
                        message,
                    };
                    if !table.rows.is_empty() {
                        return Err(failure(
                            "the table has rows as well; give one or the other".into(),
                        ));
                    }
                    table.rows = crate::table_data::read(&path, &table.columns).map_err(failure)?;
                }
            }
        }
        Ok(())
    }

    /// The embedded default fixture, as JSON text (what `--fixture` files look like).
    pub fn default_json() -> &'static str {
        DEFAULT_FIXTURE
    }

    /// The catalog named `name`; Unity Catalog names are case-insensitive.
    pub fn find_catalog(&self, name: &str) -> Option<&Catalog> {
        self.catalogs
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The schema `catalog.schema`, with its catalog.
    pub fn find_schema(&self, catalog: &str, schema: &str) -> Option<(&Catalog, &Schema)> {
        let catalog = self.find_catalog(catalog)?;
        let schema = catalog
            .schemas
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(schema))?;
        Some((catalog, schema))
    }

    /// The volume `catalog.schema.volume`, with its catalog and schema.
    pub fn find_volume(
        &self,
        catalog: &str,
        schema: &str,
        volume: &str,
    ) -> Option<(&Catalog, &Schema, &Volume)> {
        let (catalog, schema) = self.find_schema(catalog, schema)?;
        let volume = schema
            .volumes
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(volume))?;
        Some((catalog, schema, volume))
    }

    /// The table `catalog.schema.table`, with its catalog and schema.
    pub fn find_table(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> Option<(&Catalog, &Schema, &Table)> {
        let (catalog, schema) = self.find_schema(catalog, schema)?;
        let table = schema
            .tables
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(table))?;
        Some((catalog, schema, table))
    }

    /// Checks what serde cannot: unique names and tokens, rows that fit their columns.
    ///
    /// # Errors
    /// [`FixtureError::Invalid`] naming the first problem found.
    pub fn validate(&self) -> Result<(), FixtureError> {
        let invalid = |m: String| Err(FixtureError::Invalid(m));
        let mut principals = HashSet::new();
        let mut tokens = HashSet::new();
        let all_principals = self.users.iter().map(|u| (&u.user_name, &u.tokens)).chain(
            self.service_principals
                .iter()
                .map(|s| (&s.application_id, &s.tokens)),
        );
        for (name, principal_tokens) in all_principals {
            if !principals.insert(name.as_str()) {
                return invalid(format!("principal {name} is defined twice"));
            }
            for token in principal_tokens {
                if token.is_empty() || !tokens.insert(token.as_str()) {
                    return invalid(format!("a token of {name} is empty or used twice"));
                }
            }
        }
        unique(self.catalogs.iter().map(|c| c.name.as_str()), "catalog")?;
        for catalog in &self.catalogs {
            unique(catalog.schemas.iter().map(|s| s.name.as_str()), "schema")?;
            for schema in &catalog.schemas {
                unique(schema.tables.iter().map(|t| t.name.as_str()), "table")?;
                unique(schema.volumes.iter().map(|v| v.name.as_str()), "volume")?;
                for volume in &schema.volumes {
                    for file in &volume.files {
                        if crate::files::relative_segments(&file.path).is_none() {
                            return invalid(format!(
                                "file {:?} of volume {}.{}.{} is not a relative path without empty or dot segments",
                                file.path, catalog.name, schema.name, volume.name
                            ));
                        }
                    }
                }
                for table in &schema.tables {
                    let width = table.columns.len();
                    if let Some(row) = table.rows.iter().position(|r| r.len() != width) {
                        return invalid(format!(
                            "row {row} of {}.{}.{} does not have {width} values",
                            catalog.name, schema.name, table.name
                        ));
                    }
                }
            }
        }
        unique(
            self.serving_endpoints.iter().map(|e| e.name.as_str()),
            "serving endpoint",
        )?;
        for endpoint in &self.serving_endpoints {
            for (index, rule) in endpoint.rules.iter().enumerate() {
                let calls_named = rule.tool_calls.iter().all(|c| !c.name.is_empty());
                let not_exactly_one = rule.reply.is_some() != rule.tool_calls.is_empty();
                if not_exactly_one || !calls_named {
                    return invalid(format!(
                        "rule {index} of serving endpoint {} needs either a reply or named tool_calls",
                        endpoint.name
                    ));
                }
            }
        }
        unique(self.warehouses.iter().map(|w| w.id.as_str()), "warehouse")?;
        if let Some(w) = (self.warehouses.iter()).find(|w| (1..10).contains(&w.auto_stop_mins)) {
            return invalid(format!(
                "warehouse {} has auto_stop_mins {}: it must be 0 (never) or at least 10",
                w.id, w.auto_stop_mins
            ));
        }
        unique(
            self.database_instances.iter().map(|d| d.name.as_str()),
            "database instance",
        )?;
        unique(
            self.postgres_endpoints.iter().map(|e| e.name.as_str()),
            "postgres endpoint",
        )?;
        for endpoint in &self.postgres_endpoints {
            if !crate::autoscaling::is_endpoint_name(&endpoint.name) {
                return invalid(format!(
                    "postgres endpoint {:?} is not projects/{{p}}/branches/{{b}}/endpoints/{{e}} with ids of 1-63 characters [a-z][a-z0-9-]*",
                    endpoint.name
                ));
            }
        }
        self.validate_genie_spaces()?;
        let s = &self.settings;
        if s.default_page_size == 0 || s.max_page_size == 0 || s.sql_chunk_rows == 0 {
            return invalid("page sizes and sql_chunk_rows must be at least 1".into());
        }
        Ok(())
    }
}

impl Fixture {
    /// Genie spaces: unique 32-hex ids, an existing warehouse, existing tables, and rules that
    /// answer something.
    fn validate_genie_spaces(&self) -> Result<(), FixtureError> {
        let invalid = |m: String| Err(FixtureError::Invalid(m));
        unique(
            self.genie_spaces.iter().map(|s| s.space_id.as_str()),
            "genie space",
        )?;
        for space in &self.genie_spaces {
            let id = &space.space_id;
            if id.len() != 32 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return invalid(format!(
                    "genie space id {id:?} is not 32 lowercase hexadecimal characters"
                ));
            }
            if !self.warehouses.iter().any(|w| w.id == space.warehouse_id) {
                return invalid(format!(
                    "genie space {id} names warehouse {}, which the fixture does not have",
                    space.warehouse_id
                ));
            }
            for name in &space.tables {
                let parts: Vec<&str> = name.split('.').collect();
                let found = match parts.as_slice() {
                    [c, s, t] => self.find_table(c, s, t).is_some(),
                    _ => false,
                };
                if !found {
                    return invalid(format!(
                        "genie space {id} covers table {name:?}, which is not a \
                         catalog.schema.table of the fixture"
                    ));
                }
            }
            for (index, rule) in space.rules.iter().enumerate() {
                let answers = rule.text.is_some() || rule.sql.is_some();
                let query_fault = rule.fault == Some(GenieFault::QueryFails);
                let needs_sql = query_fault || rule.expire_after_ms.is_some();
                let fails = rule.fault == Some(GenieFault::MessageFails);
                if !(answers || fails) || (needs_sql && rule.sql.is_none()) {
                    return invalid(format!(
                        "rule {index} of genie space {id} needs a text or sql (and sql for \
                         query_fails or expire_after_ms)"
                    ));
                }
            }
        }
        Ok(())
    }
}

fn unique<'a>(names: impl Iterator<Item = &'a str>, what: &str) -> Result<(), FixtureError> {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(FixtureError::Invalid(format!(
                "{what} {name} is defined twice"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_fixture_is_valid_and_has_the_documented_principals() {
        // Arrange / Act
        let fixture = Fixture::default();

        // Assert
        fixture.validate().expect("valid");
        let users: Vec<_> = fixture.users.iter().map(|u| u.user_name.as_str()).collect();
        assert_eq!(
            users,
            ["alice@example.com", "bob@example.com", "admin@example.com"]
        );
        assert_eq!(fixture.service_principals[0].application_id, "dbapp-sp");
        assert_eq!(fixture.service_principals[0].client_secret, "dev-secret");
        let endpoints: Vec<_> = fixture
            .serving_endpoints
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            endpoints,
            [
                "echo",
                "chat",
                "broken",
                "not-ready",
                "embed",
                "complete",
                "assistant"
            ]
        );
        let chat = &fixture.serving_endpoints[1];
        assert!(chat.rules.iter().any(|r| !r.tool_calls.is_empty()));
    }

    #[test]
    fn a_rule_needs_exactly_one_of_reply_and_tool_calls() {
        // Arrange
        let mut fixture = Fixture::default();
        fixture.serving_endpoints[1].rules[0].reply = Some("both".into());

        // Act
        let result = fixture.validate();

        // Assert
        assert!(matches!(result, Err(FixtureError::Invalid(m)) if m.contains("either a reply")));
    }

    #[test]
    fn duplicate_tokens_are_refused() {
        // Arrange
        let mut fixture = Fixture::default();
        let stolen = fixture.users[0].tokens[0].clone();
        fixture.users[1].tokens.push(stolen);

        // Act
        let result = fixture.validate();

        // Assert
        assert!(matches!(result, Err(FixtureError::Invalid(m)) if m.contains("used twice")));
    }

    #[test]
    fn volume_files_need_relative_paths() {
        // Arrange
        let mut fixture = Fixture::default();
        fixture.catalogs[0].schemas[0].volumes[0].files[0].path = "../escape".into();

        // Act
        let result = fixture.validate();

        // Assert
        assert!(
            matches!(result, Err(FixtureError::Invalid(m)) if m.contains("not a relative path"))
        );
    }

    #[test]
    fn rows_must_match_their_columns() {
        // Arrange
        let mut fixture = Fixture::default();
        fixture.catalogs[0].schemas[0].tables[0].rows[0].pop();

        // Act
        let result = fixture.validate();

        // Assert
        assert!(matches!(result, Err(FixtureError::Invalid(m)) if m.contains("does not have")));
    }

    #[test]
    fn a_data_file_beside_the_fixture_file_fills_its_tables_rows() {
        // Arrange: the default fixture, its first table's rows moved to a CSV file in `data/`
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut fixture = Fixture::default();
        let table = &mut fixture.catalogs[0].schemas[0].tables[0];
        let names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
        let csv = names.join(",") + "\n" + &vec![""; names.len()].join(",") + "\n";
        std::fs::create_dir(dir.path().join("data")).expect("a data directory");
        std::fs::write(dir.path().join("data/t.csv"), csv).expect("the data file");
        table.rows.clear();
        table.data_file = Some("data/t.csv".into());
        let path = dir.path().join("fixture.json");
        let write = |fixture: &Fixture| {
            std::fs::write(&path, serde_json::to_string(fixture).expect("JSON")).expect("written")
        };
        write(&fixture);

        // Act
        let loaded = Fixture::from_file(&path).expect("the fixture loads");

        // Assert: one row of NULLs, read from the file
        let rows = &loaded.catalogs[0].schemas[0].tables[0].rows;
        assert_eq!(rows, &vec![vec![Value::Null; names.len()]]);

        // A table with rows and a data file, or a data file that is not there, is refused.
        fixture.catalogs[0].schemas[0].tables[0].rows = rows.clone();
        write(&fixture);
        let both = Fixture::from_file(&path).expect_err("rows and a data file");
        assert!(both.to_string().contains("has rows as well"), "{both}");
        let table = &mut fixture.catalogs[0].schemas[0].tables[0];
        table.rows.clear();
        table.data_file = Some("data/absent.csv".into());
        write(&fixture);
        let absent = Fixture::from_file(&path).expect_err("a missing data file");
        assert!(
            matches!(&absent, FixtureError::DataFile { path, .. } if path.ends_with("data/absent.csv")),
            "{absent}"
        );
    }

    #[test]
    fn genie_spaces_need_hex_ids_a_known_warehouse_known_tables_and_answering_rules() {
        // Arrange
        let broken = |edit: fn(&mut GenieSpace)| {
            let mut fixture = Fixture::default();
            edit(&mut fixture.genie_spaces[0]);
            match fixture.validate() {
                Err(FixtureError::Invalid(message)) => message,
                other => panic!("expected a refusal, got {other:?}"),
            }
        };

        // Act / Assert
        assert!(broken(|s| s.space_id = "sales".into()).contains("hexadecimal"));
        assert!(broken(|s| s.warehouse_id = "nope".into()).contains("warehouse nope"));
        assert!(broken(|s| s.tables.push("main.sales.nope".into())).contains("main.sales.nope"));
        assert!(broken(|s| s.tables.push("orders".into())).contains("\"orders\""));
        assert!(broken(|s| s.rules[0].fault = None).contains("needs a text or sql"));
        let mut twice = Fixture::default();
        twice.genie_spaces[1].space_id = twice.genie_spaces[0].space_id.clone();
        assert!(matches!(twice.validate(), Err(FixtureError::Invalid(m)) if m.contains("twice")));
    }

    #[test]
    fn the_default_fixture_spells_out_the_default_settings() {
        // Arrange / Act
        let fixture = Fixture::default();

        // Assert
        assert_eq!(fixture.settings, Settings::default());
    }

    #[test]
    fn a_warehouse_of_id_and_name_only_gets_the_documented_defaults() {
        // Arrange
        let text = r#"{"id": "w", "name": "W"}"#;

        // Act
        let warehouse: Warehouse = serde_json::from_str(text).expect("an old-style warehouse");

        // Assert
        assert_eq!(warehouse.state, WarehouseState::Running);
        assert_eq!(warehouse.cluster_size, "Small");
        assert_eq!(warehouse.auto_stop_mins, 120);
        assert_eq!(warehouse.warehouse_type, "PRO");
        assert!(warehouse.serverless);
        assert!(warehouse.readers.is_none());
        assert_eq!(
            (warehouse.start_delay_ms, warehouse.stop_delay_ms),
            (None, None)
        );
    }
}
