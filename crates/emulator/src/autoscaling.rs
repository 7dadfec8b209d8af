//! Lakebase Autoscaling's control plane (`shared/UPSTREAM-2.md` §6): projects, their branches,
//! the branches' compute endpoints (with the `databases` and `roles` every branch reports), and
//! the long-running operation each change returns.
//!
//! This module owns the model, its validation and the JSON shapes; `routes::autoscaling` maps
//! HTTP onto it and `routes::database` asks it whether a credential's endpoint exists. The whole
//! model sits behind one `std::sync::Mutex` in the shared state: every call is a few vector
//! operations with no `.await`, and one lock keeps a project, its branches and its endpoints
//! consistent with each other.
//!
//! Choices the wire contract leaves open (each is listed in `docs/emulator.md`):
//! - a new project gets branch `production` (its root and default branch) with read-write
//!   endpoint `primary`, as Databricks' own CLI fake does; new branches get no endpoint;
//! - an operation is done `postgres_operation_ms` after it started (0 by default: done at once).
//!   The resource itself changes at once; until the operation is done a created branch is `INIT`
//!   (pending `READY`) and a created endpoint `INIT` (pending `ACTIVE`);
//! - a delete without `purge=true` is a soft delete: the project or branch is hidden from lists
//!   unless `show_deleted=true`, still readable by name, and keeps its id taken;
//! - a branch has at most one read-write endpoint.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::fixture::PostgresEndpoint;

/// Most projects the emulator keeps (soft-deleted ones included); one more is refused.
pub(crate) const MAX_PROJECTS: usize = 100;
/// Most branches one project keeps (soft-deleted ones included).
pub(crate) const MAX_BRANCHES_PER_PROJECT: usize = 100;
/// Most endpoints one branch keeps.
pub(crate) const MAX_ENDPOINTS_PER_BRANCH: usize = 10;
/// Most operations kept for polling; the oldest is forgotten first (a later poll is `404`).
pub(crate) const MAX_OPERATIONS: usize = 1000;

/// Compute-unit bounds of the API (`shared/UPSTREAM-2.md` §6).
const MIN_CU: f64 = 0.5;
const MAX_CU: f64 = 64.0;
/// What the real service materializes when a project names no default endpoint settings
/// (Databricks' CLI fake, `libs/testserver/postgres.go`).
const DEFAULT_CU: f64 = 1.0;
const DEFAULT_SUSPEND_TIMEOUT: &str = "86400s";
const DEFAULT_HISTORY_RETENTION: &str = "604800s";
const DEFAULT_PG_VERSION: i64 = 17;
const PG_VERSIONS: [i64; 2] = [16, 17];
/// 8 TiB, the branch size limit the real service reports.
const BRANCH_SIZE_LIMIT_BYTES: i64 = 8_796_093_022_208;
/// How long a soft-deleted project or branch would be kept before it is purged.
const PURGE_AFTER_DAYS: i64 = 7;
/// The implicit children of a new project.
pub(crate) const ROOT_BRANCH: &str = "production";
pub(crate) const PRIMARY_ENDPOINT: &str = "primary";
/// Domain of generated endpoint hosts, like the fixture's.
const HOST_DOMAIN: &str = "database.us-west-2.cloud.databricks.com";
/// The database every branch has.
const DEFAULT_DATABASE: &str = "databricks_postgres";
/// Fixture resources carry no creation time; a fixed one keeps answers deterministic.
const FIXTURE_TIME: &str = "2025-01-01T00:00:00Z";

const READ_WRITE: &str = "ENDPOINT_TYPE_READ_WRITE";
const READ_ONLY: &str = "ENDPOINT_TYPE_READ_ONLY";

/// Every project, in creation order, and the recent operations.
#[derive(Debug, Default)]
pub(crate) struct Autoscaling {
    projects: Vec<Project>,
    operations: VecDeque<Operation>,
}

#[derive(Debug, Clone)]
struct Project {
    id: String,
    uid: String,
    owner: String,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    /// The spec as the client sent it (and as `PATCH` changed it).
    spec: Map<String, Value>,
    /// Id of the default branch: the root branch until `spec.default_branch` names another.
    default_branch: String,
    deleted: Option<DateTime<Utc>>,
    branches: Vec<Branch>,
}

#[derive(Debug, Clone)]
struct Branch {
    id: String,
    uid: String,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    /// When the creating operation is done; until then the branch is `INIT`.
    ready_at: DateTime<Utc>,
    spec: Map<String, Value>,
    /// The branch created with the project, which cannot be deleted on its own.
    root: bool,
    /// Full name of the branch it was created from.
    source_branch: Option<String>,
    expire_time: Option<DateTime<Utc>>,
    deleted: Option<DateTime<Utc>>,
    endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone)]
struct Endpoint {
    id: String,
    uid: String,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    ready_at: DateTime<Utc>,
    spec: Map<String, Value>,
    /// The root branch's `primary`, made with the project; it cannot be deleted.
    implicit: bool,
    /// Host name, unless the emulator's Postgres admin URL replaces it.
    host: String,
}

#[derive(Debug, Clone)]
struct Operation {
    name: String,
    kind: Kind,
    done_at: DateTime<Utc>,
    /// The resource as the finished operation reports it, or `Empty` for a delete.
    response: Value,
}

/// The resource kinds that have operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Project,
    Branch,
    Endpoint,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Self::Project => "project",
            Self::Branch => "branch",
            Self::Endpoint => "endpoint",
        }
    }

    fn metadata_type(self) -> &'static str {
        match self {
            Self::Project => "type.googleapis.com/databricks.postgres.v1.ProjectOperationMetadata",
            Self::Branch => "type.googleapis.com/databricks.postgres.v1.BranchOperationMetadata",
            Self::Endpoint => {
                "type.googleapis.com/databricks.postgres.v1.EndpointOperationMetadata"
            }
        }
    }

    /// The `update_mask` paths the real API accepts, as Databricks' CLI fake records them.
    fn mask_paths(self) -> &'static [&'static str] {
        match self {
            Self::Project => &[
                "spec",
                "initial_branch_spec",
                "initial_endpoint_spec",
                "spec.budget_policy_id",
                "spec.custom_tags",
                "spec.default_branch",
                "spec.default_endpoint_settings",
                "spec.default_endpoint_settings.autoscaling_limit_max_cu",
                "spec.default_endpoint_settings.autoscaling_limit_min_cu",
                "spec.default_endpoint_settings.pg_settings",
                "spec.default_endpoint_settings.suspension",
                "spec.display_name",
                "spec.enable_pg_native_login",
                "spec.history_retention_duration",
            ],
            Self::Branch => &["spec", "spec.is_protected", "spec.expiration"],
            Self::Endpoint => &[
                "spec",
                "spec.autoscaling_limit_max_cu",
                "spec.autoscaling_limit_min_cu",
                "spec.disabled",
                "spec.group.enable_readable_secondaries",
                "spec.group.max",
                "spec.group.min",
                "spec.settings.pg_settings",
                "spec.suspension",
            ],
        }
    }
}

/// A resource or collection named by the path after `/api/2.0/postgres/`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    Projects,
    Project(&'a str),
    Branches(&'a str),
    Branch(&'a str, &'a str),
    Endpoints(&'a str, &'a str),
    Endpoint(&'a str, &'a str, &'a str),
    Databases(&'a str, &'a str),
    Database(&'a str, &'a str, &'a str),
    Roles(&'a str, &'a str),
    Role(&'a str, &'a str, &'a str),
    Operation(&'a str),
}

impl<'a> Target<'a> {
    /// Parses a resource name; `None` when it names nothing this API serves.
    pub(crate) fn parse(name: &'a str) -> Option<Self> {
        let parts: Vec<&str> = name.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        if parts.len() >= 4
            && parts.len().is_multiple_of(2)
            && parts[parts.len() - 2] == "operations"
        {
            return Some(Self::Operation(name));
        }
        Some(match parts.as_slice() {
            ["projects"] => Self::Projects,
            ["projects", p] => Self::Project(p),
            ["projects", p, "branches"] => Self::Branches(p),
            ["projects", p, "branches", b] => Self::Branch(p, b),
            ["projects", p, "branches", b, "endpoints"] => Self::Endpoints(p, b),
            ["projects", p, "branches", b, "endpoints", e] => Self::Endpoint(p, b, e),
            ["projects", p, "branches", b, "databases"] => Self::Databases(p, b),
            ["projects", p, "branches", b, "databases", d] => Self::Database(p, b, d),
            ["projects", p, "branches", b, "roles"] => Self::Roles(p, b),
            ["projects", p, "branches", b, "roles", r] => Self::Role(p, b, r),
            _ => return None,
        })
    }
}

/// Where hosts and timing come from when a resource is rendered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) now: DateTime<Utc>,
    /// The Postgres admin URL's host, which replaces every endpoint host when set.
    pub(crate) host_override: Option<&'a str>,
}

/// `404 NOT_FOUND` in the real service's words (`"<kind> id not found"`).
pub(crate) fn not_found(kind: &str, name: &str) -> ApiError {
    ApiError::not_found("NOT_FOUND", format!("{kind} id not found: {name}"))
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
        message.into(),
    )
}

fn already_exists(kind: &str, name: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "ALREADY_EXISTS",
        format!("{kind} with such id already exists: {name}"),
    )
}

/// Checks a `project_id`, `branch_id` or `endpoint_id`: 1–63 characters of `[a-z][a-z0-9-]*`.
pub(crate) fn validate_id(field: &str, id: Option<&str>) -> Result<String, ApiError> {
    let id = id.unwrap_or_default();
    if id.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Field '{field}' is required, expected non-default value (not \"\")!"
        )));
    }
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if id.len() > 63 || !first_ok || !rest_ok {
        return Err(ApiError::bad_request(format!(
            "Field '{field}' must be 1-63 characters, start with a lowercase letter, and contain \
             only lowercase letters, numbers and hyphens, got {id:?}."
        )));
    }
    Ok(id.to_owned())
}

/// Whether `name` is `projects/{p}/branches/{b}/endpoints/{e}` with valid ids (fixture check).
pub(crate) fn is_endpoint_name(name: &str) -> bool {
    matches!(
        Target::parse(name),
        Some(Target::Endpoint(p, b, e))
            if [p, b, e].iter().all(|id| validate_id("id", Some(id)).is_ok())
    )
}

/// A timestamp as these APIs write it: RFC 3339, UTC, milliseconds.
pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A stable hex digest of a name, for the uids of fixture resources.
fn digest(name: &str) -> String {
    // FNV-1a: stable across runs and platforms, unlike the std hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

fn random_hex(len: usize) -> String {
    uuid::Uuid::new_v4().simple().to_string()[..len].to_owned()
}

/// Parses a protobuf `Duration` (`"3600s"`, `"1.5s"`) into seconds.
fn duration_secs(value: &Value) -> Option<f64> {
    let seconds: f64 = value.as_str()?.strip_suffix('s')?.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then_some(seconds)
}

fn check_duration(field: &str, value: Option<&Value>) -> Result<(), ApiError> {
    match value {
        Some(v) if duration_secs(v).is_none() => Err(ApiError::bad_request(format!(
            "Invalid {field} {v}: expected a duration such as \"3600s\"."
        ))),
        _ => Ok(()),
    }
}

fn check_bool(field: &str, value: Option<&Value>) -> Result<(), ApiError> {
    match value {
        Some(v) if !v.is_boolean() => Err(ApiError::bad_request(format!(
            "Invalid {field} {v}: expected true or false."
        ))),
        _ => Ok(()),
    }
}

fn cu(field: &str, value: Option<&Value>) -> Result<Option<f64>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| {
            ApiError::bad_request(format!("Invalid {field} {v}: expected a number."))
        }),
    }
}

/// Checks an effective compute range against the API's bounds.
fn check_cu_range(min: f64, max: f64) -> Result<(), ApiError> {
    if min < MIN_CU {
        return Err(ApiError::bad_request(format!(
            "autoscaling_limit_min_cu must be at least {MIN_CU}, got {min}."
        )));
    }
    if max > MAX_CU {
        return Err(ApiError::bad_request(format!(
            "autoscaling_limit_max_cu must be at most {MAX_CU}, got {max}."
        )));
    }
    if min > max {
        return Err(ApiError::bad_request(format!(
            "autoscaling_limit_min_cu ({min}) must not exceed autoscaling_limit_max_cu ({max})."
        )));
    }
    Ok(())
}

/// The `spec` object of a request body (absent: empty).
pub(crate) fn spec_of(body: &Value) -> Result<Map<String, Value>, ApiError> {
    match body.get("spec") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(spec)) => Ok(spec.clone()),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid spec {other}: expected an object."
        ))),
    }
}

fn object<'v>(
    spec: &'v Map<String, Value>,
    key: &str,
) -> Result<Option<&'v Map<String, Value>>, ApiError> {
    match spec.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid {key} {other}: expected an object."
        ))),
    }
}

/// At most one member of a protobuf `oneof` may be set.
fn check_oneof(spec: &Map<String, Value>, group: &str, members: &[&str]) -> Result<(), ApiError> {
    let set: Vec<&str> = members
        .iter()
        .copied()
        .filter(|m| spec.get(*m).is_some_and(|v| !v.is_null()))
        .collect();
    if set.len() > 1 {
        return Err(ApiError::bad_request(format!(
            "Only one of {} may be set for {group}, got {}.",
            members.join(", "),
            set.join(" and ")
        )));
    }
    Ok(())
}

/// The compute settings a project gives endpoints that name none.
#[derive(Debug, Clone, Copy)]
struct EndpointDefaults<'a> {
    min_cu: f64,
    max_cu: f64,
    suspend_timeout: Option<&'a Value>,
    no_suspension: bool,
}

impl Project {
    fn name(&self) -> String {
        format!("projects/{}", self.id)
    }

    fn live(&self) -> bool {
        self.deleted.is_none()
    }

    fn branch(&self, id: &str) -> Option<&Branch> {
        self.branches.iter().find(|b| b.id == id)
    }

    fn branch_mut(&mut self, id: &str) -> Option<&mut Branch> {
        self.branches.iter_mut().find(|b| b.id == id)
    }

    fn endpoint_defaults(&self) -> EndpointDefaults<'_> {
        let settings = self
            .spec
            .get("default_endpoint_settings")
            .and_then(Value::as_object);
        let get = |key: &str| settings.and_then(|s| s.get(key));
        EndpointDefaults {
            min_cu: get("autoscaling_limit_min_cu")
                .and_then(Value::as_f64)
                .unwrap_or(DEFAULT_CU),
            max_cu: get("autoscaling_limit_max_cu")
                .and_then(Value::as_f64)
                .unwrap_or(DEFAULT_CU),
            suspend_timeout: get("suspend_timeout_duration"),
            no_suspension: get("no_suspension")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }

    fn json(&self) -> Value {
        let name = self.name();
        let defaults = self.endpoint_defaults();
        let mut endpoint_settings = json!({
            "autoscaling_limit_min_cu": defaults.min_cu,
            "autoscaling_limit_max_cu": defaults.max_cu,
        });
        if defaults.no_suspension {
            endpoint_settings["no_suspension"] = Value::Bool(true);
        } else {
            endpoint_settings["suspend_timeout_duration"] = defaults
                .suspend_timeout
                .cloned()
                .unwrap_or_else(|| DEFAULT_SUSPEND_TIMEOUT.into());
        }
        if let Some(pg) = self
            .spec
            .get("default_endpoint_settings")
            .and_then(|s| s.get("pg_settings"))
        {
            endpoint_settings["pg_settings"] = pg.clone();
        }
        let spec = |key: &str| self.spec.get(key).filter(|v| !v.is_null());
        let mut status = json!({
            "project_id": self.id,
            "display_name": spec("display_name").cloned().unwrap_or_else(|| self.id.clone().into()),
            "pg_version": spec("pg_version").cloned().unwrap_or_else(|| DEFAULT_PG_VERSION.into()),
            "default_branch": format!("{name}/branches/{}", self.default_branch),
            "owner": self.owner,
            "default_endpoint_settings": endpoint_settings,
            "enable_pg_native_login": spec("enable_pg_native_login").cloned().unwrap_or(Value::Bool(false)),
            "history_retention_duration": spec("history_retention_duration")
                .cloned()
                .unwrap_or_else(|| DEFAULT_HISTORY_RETENTION.into()),
            "branch_logical_size_limit_bytes": BRANCH_SIZE_LIMIT_BYTES,
            "synthetic_storage_size_bytes": 0,
        });
        for key in ["custom_tags", "budget_policy_id"] {
            if let Some(value) = spec(key) {
                status[key] = value.clone();
            }
        }
        let mut body = json!({
            "name": name,
            "project_id": self.id,
            "uid": self.uid,
            "create_time": rfc3339(self.create_time),
            "update_time": rfc3339(self.update_time),
            "status": status,
        });
        if !self.spec.is_empty() {
            body["spec"] = Value::Object(self.spec.clone());
        }
        if let Some(deleted) = self.deleted {
            body["delete_time"] = rfc3339(deleted).into();
            body["purge_time"] = rfc3339(deleted + Duration::days(PURGE_AFTER_DAYS)).into();
        }
        body
    }

    /// Checks a project spec; the request's `initial_endpoint_spec` is checked by the caller.
    fn validate_spec(spec: &Map<String, Value>) -> Result<(), ApiError> {
        if let Some(version) = spec.get("pg_version").filter(|v| !v.is_null()) {
            let ok = version.as_i64().is_some_and(|v| PG_VERSIONS.contains(&v));
            if !ok {
                return Err(ApiError::bad_request(format!(
                    "Unsupported pg_version {version}: expected one of {PG_VERSIONS:?}."
                )));
            }
        }
        if let Some(name) = spec.get("display_name").filter(|v| !v.is_null()) {
            let ok = name
                .as_str()
                .is_some_and(|n| !n.is_empty() && n.len() <= 256);
            if !ok {
                return Err(ApiError::bad_request(format!(
                    "Invalid display_name {name}: expected 1 to 256 characters."
                )));
            }
        }
        check_bool("enable_pg_native_login", spec.get("enable_pg_native_login"))?;
        check_duration(
            "history_retention_duration",
            spec.get("history_retention_duration"),
        )?;
        if let Some(settings) = object(spec, "default_endpoint_settings")? {
            check_endpoint_settings(settings, DEFAULT_CU, DEFAULT_CU)?;
        }
        Ok(())
    }
}

/// Checks the compute fields shared by endpoint specs, default endpoint settings and initial
/// endpoint specs; absent limits take `min_default`/`max_default`.
fn check_endpoint_settings(
    spec: &Map<String, Value>,
    min_default: f64,
    max_default: f64,
) -> Result<(), ApiError> {
    let min = cu(
        "autoscaling_limit_min_cu",
        spec.get("autoscaling_limit_min_cu"),
    )?;
    let max = cu(
        "autoscaling_limit_max_cu",
        spec.get("autoscaling_limit_max_cu"),
    )?;
    check_cu_range(min.unwrap_or(min_default), max.unwrap_or(max_default))?;
    check_oneof(
        spec,
        "suspension",
        &["no_suspension", "suspend_timeout_duration"],
    )?;
    check_bool("no_suspension", spec.get("no_suspension"))?;
    check_duration(
        "suspend_timeout_duration",
        spec.get("suspend_timeout_duration"),
    )
}

impl Branch {
    fn json(&self, project: &Project, view: View<'_>) -> Value {
        let name = format!("{}/branches/{}", project.name(), self.id);
        let mut status = json!({
            "branch_id": self.id,
            "default": project.default_branch == self.id,
            "is_protected": self.spec.get("is_protected").and_then(Value::as_bool).unwrap_or(false),
            "logical_size_bytes": 0,
        });
        if let Some(deleted) = self.deleted.or(project.deleted) {
            status["current_state"] = "DELETED".into();
            status["state_change_time"] = rfc3339(deleted).into();
            status["delete_time"] = rfc3339(deleted).into();
            status["purge_time"] = rfc3339(deleted + Duration::days(PURGE_AFTER_DAYS)).into();
        } else if view.now < self.ready_at {
            status["current_state"] = "INIT".into();
            status["pending_state"] = "READY".into();
            status["state_change_time"] = rfc3339(self.create_time).into();
        } else {
            status["current_state"] = "READY".into();
            status["state_change_time"] = rfc3339(self.ready_at).into();
        }
        if let Some(source) = &self.source_branch {
            status["source_branch"] = source.clone().into();
            status["source_branch_lsn"] = "0/0".into();
            status["source_branch_time"] = rfc3339(self.create_time).into();
        }
        if let Some(expire) = self.expire_time {
            status["expire_time"] = rfc3339(expire).into();
        }
        let mut body = json!({
            "name": name,
            "branch_id": self.id,
            "parent": project.name(),
            "uid": self.uid,
            "create_time": rfc3339(self.create_time),
            "update_time": rfc3339(self.update_time),
            "status": status,
        });
        if !self.spec.is_empty() {
            body["spec"] = Value::Object(self.spec.clone());
        }
        body
    }

    /// Checks a branch spec and returns its expiry time, if it has one.
    fn validate_spec(
        spec: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, ApiError> {
        check_bool("is_protected", spec.get("is_protected"))?;
        check_oneof(spec, "expiration", &["ttl", "expire_time", "no_expiry"])?;
        check_bool("no_expiry", spec.get("no_expiry"))?;
        if let Some(ttl) = spec.get("ttl").filter(|v| !v.is_null()) {
            let secs = duration_secs(ttl).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid ttl {ttl}: expected a duration such as \"86400s\"."
                ))
            })?;
            // Bounded so that the expiry stays representable.
            let millis = (secs.min(1e12) * 1000.0) as i64;
            return Ok(Some(now + Duration::milliseconds(millis)));
        }
        if let Some(at) = spec.get("expire_time").filter(|v| !v.is_null()) {
            let parsed = at
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Invalid expire_time {at}: expected an RFC 3339 timestamp."
                    ))
                })?;
            return Ok(Some(parsed.with_timezone(&Utc)));
        }
        Ok(None)
    }
}

impl Endpoint {
    fn endpoint_type(&self) -> &str {
        self.spec
            .get("endpoint_type")
            .and_then(Value::as_str)
            .unwrap_or(READ_WRITE)
    }

    fn json(&self, project: &Project, branch: &Branch, view: View<'_>) -> Value {
        let parent = format!("{}/branches/{}", project.name(), branch.id);
        let defaults = project.endpoint_defaults();
        let get = |key: &str| self.spec.get(key).filter(|v| !v.is_null());
        let disabled = get("disabled").and_then(Value::as_bool).unwrap_or(false);
        let host = view.host_override.unwrap_or(&self.host);
        let read_write = self.endpoint_type() == READ_WRITE;
        // One local server stands for both the direct and the pooled host.
        let pooled = view
            .host_override
            .map_or_else(|| pooled_host(&self.host), str::to_owned);
        let hosts = if read_write {
            json!({"host": host, "read_write_pooled_host": pooled})
        } else {
            json!({"host": host, "read_only_host": host, "read_only_pooled_host": pooled})
        };
        let mut status = json!({
            "endpoint_id": self.id,
            "endpoint_type": self.endpoint_type(),
            "disabled": disabled,
            "hosts": hosts,
            "autoscaling_limit_min_cu": get("autoscaling_limit_min_cu").and_then(Value::as_f64).unwrap_or(defaults.min_cu),
            "autoscaling_limit_max_cu": get("autoscaling_limit_max_cu").and_then(Value::as_f64).unwrap_or(defaults.max_cu),
        });
        if view.now < self.ready_at {
            status["current_state"] = "INIT".into();
            status["pending_state"] = "ACTIVE".into();
        } else if disabled {
            status["current_state"] = "IDLE".into();
        } else {
            status["current_state"] = "ACTIVE".into();
        }
        let no_suspension = get("no_suspension")
            .and_then(Value::as_bool)
            .unwrap_or(get("suspend_timeout_duration").is_none() && defaults.no_suspension);
        if !no_suspension {
            status["suspend_timeout_duration"] = get("suspend_timeout_duration")
                .or(defaults.suspend_timeout)
                .cloned()
                .unwrap_or_else(|| DEFAULT_SUSPEND_TIMEOUT.into());
        }
        if let Some(settings) = get("settings") {
            status["settings"] = settings.clone();
        }
        let mut body = json!({
            "name": format!("{parent}/endpoints/{}", self.id),
            "endpoint_id": self.id,
            "parent": parent,
            "uid": self.uid,
            "create_time": rfc3339(self.create_time),
            "update_time": rfc3339(self.update_time),
            "status": status,
        });
        if !self.spec.is_empty() {
            body["spec"] = Value::Object(self.spec.clone());
        }
        body
    }

    fn validate_spec(
        spec: &Map<String, Value>,
        defaults: EndpointDefaults<'_>,
    ) -> Result<(), ApiError> {
        match spec.get("endpoint_type").and_then(Value::as_str) {
            Some(READ_WRITE | READ_ONLY) => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid endpoint_type {other:?}: expected {READ_WRITE} or {READ_ONLY}."
                )));
            }
            None => {
                return Err(ApiError::bad_request(
                    "Field 'endpoint.spec.endpoint_type' is required, expected non-default value!",
                ));
            }
        }
        check_bool("disabled", spec.get("disabled"))?;
        check_endpoint_settings(spec, defaults.min_cu, defaults.max_cu)
    }
}

/// `ep-x.database.…` → `ep-x-pooler.database.…`, the pooled host naming of the real service.
pub(crate) fn pooled_host(host: &str) -> String {
    match host.split_once('.') {
        Some((first, rest)) => format!("{first}-pooler.{rest}"),
        None => format!("{host}-pooler"),
    }
}

/// What a create or change request carries besides the target's name.
#[derive(Debug, Default)]
pub(crate) struct Change<'a> {
    /// The whole request body.
    pub(crate) body: Value,
    /// `<kind>_id` of a create.
    pub(crate) id: Option<&'a str>,
    /// `replace_existing` of a branch or endpoint create.
    pub(crate) replace_existing: bool,
    /// The creator (project owner).
    pub(crate) caller: &'a str,
}

impl Autoscaling {
    /// The fixture's endpoints as resources of their projects and branches: each project is
    /// owned by `owner`, its first branch (`production` when it has one) is the root and default.
    pub(crate) fn from_fixture(endpoints: &[PostgresEndpoint], owner: &str) -> Self {
        let at = DateTime::parse_from_rfc3339(FIXTURE_TIME)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let mut model = Self::default();
        for endpoint in endpoints {
            let Some(Target::Endpoint(p, b, e)) = Target::parse(&endpoint.name) else {
                continue;
            };
            if model.project(p).is_none() {
                model.projects.push(Project {
                    id: p.to_owned(),
                    uid: digest(&format!("projects/{p}")),
                    owner: owner.to_owned(),
                    create_time: at,
                    update_time: at,
                    spec: Map::new(),
                    default_branch: b.to_owned(),
                    deleted: None,
                    branches: Vec::new(),
                });
            }
            let project = model.project_mut(p).expect("just added");
            if b == ROOT_BRANCH {
                project.default_branch = b.to_owned();
            }
            if project.branch(b).is_none() {
                project.branches.push(Branch {
                    id: b.to_owned(),
                    uid: format!("br-{}", digest(&format!("projects/{p}/branches/{b}"))),
                    create_time: at,
                    update_time: at,
                    ready_at: at,
                    spec: Map::new(),
                    root: false,
                    source_branch: None,
                    expire_time: None,
                    deleted: None,
                    endpoints: Vec::new(),
                });
            }
            let branch = project.branch_mut(b).expect("just added");
            if branch.endpoints.iter().any(|x| x.id == e) {
                continue;
            }
            branch.endpoints.push(Endpoint {
                id: e.to_owned(),
                uid: format!("ep-{}", digest(&endpoint.name)),
                create_time: at,
                update_time: at,
                ready_at: at,
                spec: Map::from_iter([("endpoint_type".to_owned(), READ_WRITE.into())]),
                implicit: e == PRIMARY_ENDPOINT,
                host: endpoint.host.clone(),
            });
        }
        for project in &mut model.projects {
            let root = project.default_branch.clone();
            if let Some(branch) = project.branch_mut(&root) {
                branch.root = true;
            }
        }
        model
    }

    /// The names of the branches a purge of `target` removes for good (a project's, or one
    /// branch), whose backend databases then go too.
    pub(crate) fn purged_branches(&self, target: &Target<'_>) -> Vec<String> {
        match *target {
            Target::Project(p) => self.project(p).map_or_else(Vec::new, |project| {
                project
                    .branches
                    .iter()
                    .map(|b| format!("projects/{p}/branches/{}", b.id))
                    .collect()
            }),
            Target::Branch(p, b) => vec![format!("projects/{p}/branches/{b}")],
            _ => Vec::new(),
        }
    }

    fn project(&self, id: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.id == id)
    }

    fn project_mut(&mut self, id: &str) -> Option<&mut Project> {
        self.projects.iter_mut().find(|p| p.id == id)
    }

    /// A live project, else `404`.
    fn live_project(&self, id: &str) -> Result<&Project, ApiError> {
        self.project(id)
            .filter(|p| p.live())
            .ok_or_else(|| not_found("project", &format!("projects/{id}")))
    }

    fn live_project_mut(&mut self, id: &str) -> Result<&mut Project, ApiError> {
        self.project_mut(id)
            .filter(|p| p.live())
            .ok_or_else(|| not_found("project", &format!("projects/{id}")))
    }

    /// A live branch of a live project, else `404`.
    fn live_branch(&self, p: &str, b: &str) -> Result<(&Project, &Branch), ApiError> {
        let project = self.live_project(p)?;
        let branch = project
            .branch(b)
            .filter(|b| b.deleted.is_none())
            .ok_or_else(|| not_found("branch", &format!("projects/{p}/branches/{b}")))?;
        Ok((project, branch))
    }

    /// The first endpoint of a live branch (`projects/p/branches/b`): its name and host, as an
    /// app's `postgres` resource resolves to (`runtime`).
    pub(crate) fn first_endpoint(&self, branch: &str) -> Option<(String, String)> {
        let Some(Target::Branch(p, b)) = Target::parse(branch) else {
            return None;
        };
        let (_, live) = self.live_branch(p, b).ok()?;
        let endpoint = live.endpoints.first()?;
        Some((
            format!("projects/{p}/branches/{b}/endpoints/{}", endpoint.id),
            endpoint.host.clone(),
        ))
    }

    /// Whether a credential may be minted for `projects/{p}/branches/{b}/endpoints/{e}`.
    pub(crate) fn endpoint_exists(&self, p: &str, b: &str, e: &str) -> bool {
        self.live_branch(p, b)
            .is_ok_and(|(_, branch)| branch.endpoints.iter().any(|x| x.id == e))
    }

    /// Reads one resource or operation by name.
    pub(crate) fn get(&self, target: &Target<'_>, view: View<'_>) -> Result<Value, ApiError> {
        match *target {
            Target::Project(p) => self
                .project(p)
                .map(Project::json)
                .ok_or_else(|| not_found("project", &format!("projects/{p}"))),
            Target::Branch(p, b) => {
                let project = self.live_project(p)?;
                let branch = project
                    .branch(b)
                    .ok_or_else(|| not_found("branch", &format!("projects/{p}/branches/{b}")))?;
                Ok(branch.json(project, view))
            }
            Target::Endpoint(p, b, e) => {
                let (project, branch) = self.live_branch(p, b)?;
                let endpoint = branch.endpoints.iter().find(|x| x.id == e).ok_or_else(|| {
                    not_found(
                        "endpoint",
                        &format!("projects/{p}/branches/{b}/endpoints/{e}"),
                    )
                })?;
                Ok(endpoint.json(project, branch, view))
            }
            Target::Database(p, b, d) => {
                let (project, branch) = self.live_branch(p, b)?;
                let database = database_json(project, branch);
                if database["database_id"] == d {
                    Ok(database)
                } else {
                    Err(not_found(
                        "database",
                        &format!("projects/{p}/branches/{b}/databases/{d}"),
                    ))
                }
            }
            Target::Role(p, b, r) => {
                let (project, branch) = self.live_branch(p, b)?;
                let role = role_json(project, branch);
                if role["role_id"] == r {
                    Ok(role)
                } else {
                    Err(not_found(
                        "role",
                        &format!("projects/{p}/branches/{b}/roles/{r}"),
                    ))
                }
            }
            Target::Operation(name) => self
                .operations
                .iter()
                .find(|o| o.name == name)
                .map(|o| o.json(view.now))
                .ok_or_else(|| not_found("operation", name)),
            _ => Err(not_found("resource", "collection")),
        }
    }

    /// Lists a collection: the items, in creation order, before paging.
    pub(crate) fn list(
        &self,
        target: &Target<'_>,
        show_deleted: bool,
        view: View<'_>,
    ) -> Result<(&'static str, Vec<Value>), ApiError> {
        match *target {
            Target::Projects => Ok((
                "projects",
                self.projects
                    .iter()
                    .filter(|p| show_deleted || p.live())
                    .map(Project::json)
                    .collect(),
            )),
            Target::Branches(p) => {
                let project = self.live_project(p)?;
                let items = project
                    .branches
                    .iter()
                    .filter(|b| show_deleted || b.deleted.is_none())
                    .map(|b| b.json(project, view))
                    .collect();
                Ok(("branches", items))
            }
            Target::Endpoints(p, b) => {
                let (project, branch) = self.live_branch(p, b)?;
                let items = branch
                    .endpoints
                    .iter()
                    .map(|e| e.json(project, branch, view))
                    .collect();
                Ok(("endpoints", items))
            }
            Target::Databases(p, b) => {
                let (project, branch) = self.live_branch(p, b)?;
                Ok(("databases", vec![database_json(project, branch)]))
            }
            Target::Roles(p, b) => {
                let (project, branch) = self.live_branch(p, b)?;
                Ok(("roles", vec![role_json(project, branch)]))
            }
            _ => Err(not_found("collection", "resource")),
        }
    }

    /// Creates a project (with its root branch and primary endpoint), a branch or an endpoint,
    /// and returns the operation.
    pub(crate) fn create(
        &mut self,
        target: &Target<'_>,
        change: &Change<'_>,
        view: View<'_>,
        delay: Duration,
    ) -> Result<Value, ApiError> {
        let now = view.now;
        let ready_at = now + delay;
        let spec = spec_of(&change.body)?;
        let (kind, name) = match *target {
            Target::Projects => {
                let id = validate_id("project_id", change.id)?;
                Project::validate_spec(&spec)?;
                let initial_endpoint = match change.body.get("initial_endpoint_spec") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(map)) => map.clone(),
                    Some(other) => {
                        return Err(ApiError::bad_request(format!(
                            "Invalid initial_endpoint_spec {other}: expected an object."
                        )));
                    }
                };
                let initial_branch = match change.body.get("initial_branch_spec") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(map)) => map.clone(),
                    Some(other) => {
                        return Err(ApiError::bad_request(format!(
                            "Invalid initial_branch_spec {other}: expected an object."
                        )));
                    }
                };
                check_bool("is_protected", initial_branch.get("is_protected"))?;
                if self.project(&id).is_some() {
                    return Err(already_exists("project", &format!("projects/{id}")));
                }
                if self.projects.len() >= MAX_PROJECTS {
                    return Err(ApiError::limit_exceeded(format!(
                        "The emulator keeps at most {MAX_PROJECTS} projects; delete one with purge=true first."
                    )));
                }
                let mut project = Project {
                    id: id.clone(),
                    uid: uuid::Uuid::new_v4().to_string(),
                    owner: change.caller.to_owned(),
                    create_time: now,
                    update_time: now,
                    spec,
                    default_branch: ROOT_BRANCH.to_owned(),
                    deleted: None,
                    branches: Vec::new(),
                };
                let mut endpoint_spec = initial_endpoint;
                endpoint_spec.insert("endpoint_type".into(), READ_WRITE.into());
                Endpoint::validate_spec(&endpoint_spec, project.endpoint_defaults())?;
                project.branches.push(Branch {
                    id: ROOT_BRANCH.to_owned(),
                    uid: format!("br-{}", random_hex(20)),
                    create_time: now,
                    update_time: now,
                    ready_at,
                    spec: initial_branch,
                    root: true,
                    source_branch: None,
                    expire_time: None,
                    deleted: None,
                    endpoints: vec![Endpoint {
                        id: PRIMARY_ENDPOINT.to_owned(),
                        uid: format!("ep-{}", random_hex(20)),
                        create_time: now,
                        update_time: now,
                        ready_at,
                        spec: endpoint_spec,
                        implicit: true,
                        host: String::new(),
                    }],
                });
                let endpoint = &mut project.branches[0].endpoints[0];
                endpoint.host = format!("{}.{HOST_DOMAIN}", endpoint.uid);
                self.projects.push(project);
                (Kind::Project, format!("projects/{id}"))
            }
            Target::Branches(p) => {
                let id = validate_id("branch_id", change.id)?;
                let expire_time = Branch::validate_spec(&spec, now)?;
                let project = self.live_project_mut(p)?;
                let source_branch = match spec.get("source_branch").and_then(Value::as_str) {
                    Some(source) => {
                        let found = match Target::parse(source) {
                            Some(Target::Branch(sp, sb)) if sp == p => {
                                project.branch(sb).is_some_and(|b| b.deleted.is_none())
                            }
                            _ => false,
                        };
                        if !found {
                            return Err(not_found("branch", source));
                        }
                        source.to_owned()
                    }
                    None => format!("{}/branches/{}", project.name(), project.default_branch),
                };
                let name = format!("{}/branches/{id}", project.name());
                if let Some(existing) = project.branch_mut(&id) {
                    if !change.replace_existing || existing.deleted.is_some() {
                        return Err(already_exists("branch", &name));
                    }
                    existing.spec = spec;
                    existing.expire_time = expire_time;
                    existing.update_time = now;
                } else {
                    if project.branches.len() >= MAX_BRANCHES_PER_PROJECT {
                        return Err(ApiError::limit_exceeded(format!(
                            "The emulator keeps at most {MAX_BRANCHES_PER_PROJECT} branches per project; delete one with purge=true first."
                        )));
                    }
                    project.branches.push(Branch {
                        id: id.clone(),
                        uid: format!("br-{}", random_hex(20)),
                        create_time: now,
                        update_time: now,
                        ready_at,
                        spec,
                        root: false,
                        source_branch: Some(source_branch),
                        expire_time,
                        deleted: None,
                        endpoints: Vec::new(),
                    });
                }
                project.update_time = now;
                (Kind::Branch, name)
            }
            Target::Endpoints(p, b) => {
                let id = validate_id("endpoint_id", change.id)?;
                let project = self.live_project_mut(p)?;
                Endpoint::validate_spec(&spec, project.endpoint_defaults())?;
                let branch_name = format!("{}/branches/{b}", project.name());
                let branch = project
                    .branch_mut(b)
                    .filter(|b| b.deleted.is_none())
                    .ok_or_else(|| not_found("branch", &branch_name))?;
                let name = format!("{branch_name}/endpoints/{id}");
                let wants_read_write =
                    spec.get("endpoint_type").and_then(Value::as_str) == Some(READ_WRITE);
                if let Some(existing) = branch.endpoints.iter_mut().find(|e| e.id == id) {
                    if !change.replace_existing {
                        return Err(already_exists("endpoint", &name));
                    }
                    if existing.endpoint_type() != spec["endpoint_type"] {
                        return Err(ApiError::bad_request(
                            "endpoint_type cannot be changed; create another endpoint.",
                        ));
                    }
                    existing.spec = spec;
                    existing.update_time = now;
                } else {
                    if let Some(rw) = branch
                        .endpoints
                        .iter()
                        .find(|e| wants_read_write && e.endpoint_type() == READ_WRITE)
                    {
                        return Err(ApiError::bad_request(format!(
                            "Branch {branch_name} already has a read-write endpoint ({}); a branch has at most one.",
                            rw.id
                        )));
                    }
                    if branch.endpoints.len() >= MAX_ENDPOINTS_PER_BRANCH {
                        return Err(ApiError::limit_exceeded(format!(
                            "The emulator keeps at most {MAX_ENDPOINTS_PER_BRANCH} endpoints per branch; delete one first."
                        )));
                    }
                    let uid = format!("ep-{}", random_hex(20));
                    branch.endpoints.push(Endpoint {
                        id: id.clone(),
                        host: format!("{uid}.{HOST_DOMAIN}"),
                        uid,
                        create_time: now,
                        update_time: now,
                        ready_at,
                        spec,
                        implicit: false,
                    });
                }
                branch.update_time = now;
                (Kind::Endpoint, name)
            }
            _ => return Err(not_found("collection", "resource")),
        };
        let snapshot = self.snapshot(&name, kind, ready_at, view.host_override);
        Ok(self.record(kind, &name, ready_at, snapshot, now))
    }

    /// Applies a `PATCH` with `update_mask` and returns the operation.
    pub(crate) fn update(
        &mut self,
        target: &Target<'_>,
        body: &Value,
        update_mask: Option<&str>,
        view: View<'_>,
        delay: Duration,
    ) -> Result<Value, ApiError> {
        let now = view.now;
        let kind = match target {
            Target::Project(_) => Kind::Project,
            Target::Branch(..) => Kind::Branch,
            Target::Endpoint(..) => Kind::Endpoint,
            _ => {
                return Err(ApiError::bad_request(
                    "Only projects, branches and endpoints can be updated.",
                ));
            }
        };
        let paths: Vec<&str> = update_mask
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        // An empty mask updates every field the body carries, as for the real API's roles.
        let paths = if paths.is_empty() {
            vec!["spec"]
        } else {
            paths
        };
        if let Some(unknown) = paths.iter().find(|p| !kind.mask_paths().contains(p)) {
            return Err(ApiError::bad_request(format!(
                "Unknown field path in update_mask: '{unknown}'"
            )));
        }
        let name;
        match *target {
            Target::Project(p) => {
                let project = self.live_project(p)?;
                let spec = masked(&project.spec, body, &paths)?;
                Project::validate_spec(&spec)?;
                let default_branch = match spec.get("default_branch").and_then(Value::as_str) {
                    Some(branch) => match Target::parse(branch) {
                        Some(Target::Branch(bp, bb))
                            if bp == p
                                && project.branch(bb).is_some_and(|b| b.deleted.is_none()) =>
                        {
                            bb.to_owned()
                        }
                        _ => return Err(not_found("branch", branch)),
                    },
                    None => project.default_branch.clone(),
                };
                let project = self.live_project_mut(p)?;
                project.spec = spec;
                project.default_branch = default_branch;
                project.update_time = now;
                name = project.name();
            }
            Target::Branch(p, b) => {
                let project = self.live_project_mut(p)?;
                let branch_name = format!("{}/branches/{b}", project.name());
                let branch = project
                    .branch_mut(b)
                    .filter(|b| b.deleted.is_none())
                    .ok_or_else(|| not_found("branch", &branch_name))?;
                let spec = masked(&branch.spec, body, &paths)?;
                let expire_time = Branch::validate_spec(&spec, now)?;
                let expiration_changed = paths
                    .iter()
                    .any(|p| *p == "spec" || *p == "spec.expiration");
                branch.spec = spec;
                if expiration_changed {
                    branch.expire_time = expire_time;
                }
                branch.update_time = now;
                name = branch_name;
            }
            Target::Endpoint(p, b, e) => {
                let project = self.live_project_mut(p)?;
                let defaults = project.endpoint_defaults();
                let (min_cu, max_cu) = (defaults.min_cu, defaults.max_cu);
                let endpoint_name = format!("{}/branches/{b}/endpoints/{e}", project.name());
                let branch = project
                    .branch_mut(b)
                    .filter(|b| b.deleted.is_none())
                    .ok_or_else(|| not_found("branch", &endpoint_name))?;
                let endpoint = branch
                    .endpoints
                    .iter_mut()
                    .find(|x| x.id == e)
                    .ok_or_else(|| not_found("endpoint", &endpoint_name))?;
                let mut spec = masked(&endpoint.spec, body, &paths)?;
                let endpoint_type = endpoint.endpoint_type().to_owned();
                match spec.get("endpoint_type") {
                    None | Some(Value::Null) => {
                        spec.insert("endpoint_type".into(), endpoint_type.into());
                    }
                    Some(t) if *t != endpoint_type.as_str() => {
                        return Err(ApiError::bad_request(
                            "endpoint_type cannot be changed; create another endpoint.",
                        ));
                    }
                    Some(_) => {}
                }
                let defaults = EndpointDefaults {
                    min_cu,
                    max_cu,
                    suspend_timeout: None,
                    no_suspension: false,
                };
                Endpoint::validate_spec(&spec, defaults)?;
                endpoint.spec = spec;
                endpoint.update_time = now;
                name = endpoint_name;
            }
            _ => unreachable!("kind checked above"),
        }
        let ready_at = now + delay;
        let snapshot = self.snapshot(&name, kind, ready_at, view.host_override);
        Ok(self.record(kind, &name, ready_at, snapshot, now))
    }

    /// Deletes a project (with everything in it), a branch (with its endpoints) or an endpoint,
    /// and returns the operation. Projects and branches are soft-deleted unless `purge`.
    pub(crate) fn delete(
        &mut self,
        target: &Target<'_>,
        purge: bool,
        view: View<'_>,
        delay: Duration,
    ) -> Result<Value, ApiError> {
        let now = view.now;
        let (kind, name) = match *target {
            Target::Project(p) => {
                let name = format!("projects/{p}");
                let index = self
                    .projects
                    .iter()
                    .position(|x| x.id == p && (purge || x.live()))
                    .ok_or_else(|| not_found("project", &name))?;
                if purge {
                    self.projects.remove(index);
                } else {
                    self.projects[index].deleted = Some(now);
                }
                (Kind::Project, name)
            }
            Target::Branch(p, b) => {
                let project = self.live_project_mut(p)?;
                let name = format!("{}/branches/{b}", project.name());
                let default = project.default_branch.clone();
                let index = project
                    .branches
                    .iter()
                    .position(|x| x.id == b && (purge || x.deleted.is_none()))
                    .ok_or_else(|| not_found("branch", &name))?;
                let branch = &project.branches[index];
                if branch.root {
                    return Err(bad_request(format!(
                        "Cannot delete root branch '{name}'. Root branches cannot be deleted independently."
                    )));
                }
                if branch.id == default {
                    return Err(bad_request(format!(
                        "Cannot delete the default branch '{name}'; make another branch the default first."
                    )));
                }
                if branch.spec.get("is_protected").and_then(Value::as_bool) == Some(true) {
                    return Err(bad_request(format!(
                        "cannot delete protected branch '{name}'"
                    )));
                }
                if purge {
                    project.branches.remove(index);
                } else {
                    project.branches[index].deleted = Some(now);
                }
                (Kind::Branch, name)
            }
            Target::Endpoint(p, b, e) => {
                let project = self.live_project_mut(p)?;
                let name = format!("{}/branches/{b}/endpoints/{e}", project.name());
                let branch = project
                    .branch_mut(b)
                    .filter(|x| x.deleted.is_none())
                    .ok_or_else(|| not_found("branch", &name))?;
                let index = branch
                    .endpoints
                    .iter()
                    .position(|x| x.id == e)
                    .ok_or_else(|| not_found("endpoint", &name))?;
                if branch.endpoints[index].implicit {
                    return Err(bad_request(format!(
                        "Cannot delete read-write endpoint '{name}'. Read-write endpoints cannot be deleted."
                    )));
                }
                branch.endpoints.remove(index);
                (Kind::Endpoint, name)
            }
            _ => {
                return Err(ApiError::bad_request(
                    "Only projects, branches and endpoints can be deleted.",
                ));
            }
        };
        let empty = json!({"@type": "type.googleapis.com/google.protobuf.Empty"});
        Ok(self.record(kind, &name, now + delay, empty, now))
    }

    /// The resource `name` as its operation reports it once done.
    fn snapshot(
        &self,
        name: &str,
        kind: Kind,
        done_at: DateTime<Utc>,
        host_override: Option<&str>,
    ) -> Value {
        let view = View {
            now: done_at,
            host_override,
        };
        Target::parse(name)
            .and_then(|t| self.get(&t, view).ok())
            .unwrap_or_else(|| json!({"name": name, "kind": kind.label()}))
    }

    /// Keeps an operation for polling and returns it as the create, update or delete answer.
    fn record(
        &mut self,
        kind: Kind,
        resource: &str,
        done_at: DateTime<Utc>,
        response: Value,
        now: DateTime<Utc>,
    ) -> Value {
        let operation = Operation {
            name: format!("{resource}/operations/{}", uuid::Uuid::new_v4()),
            kind,
            done_at,
            response,
        };
        let answer = operation.json(now);
        if self.operations.len() == MAX_OPERATIONS {
            self.operations.pop_front();
        }
        self.operations.push_back(operation);
        answer
    }
}

impl Operation {
    fn json(&self, now: DateTime<Utc>) -> Value {
        let done = now >= self.done_at;
        let mut body = json!({
            "name": self.name,
            "done": done,
            "metadata": {"@type": self.kind.metadata_type()},
        });
        if done {
            body["response"] = self.response.clone();
        }
        body
    }
}

/// Applies the `update_mask` paths of a `PATCH` body to a stored spec and returns the new spec.
/// `spec.expiration` and `…suspension` name `oneof` groups: the members the body sets replace
/// all of the group's members.
fn masked(
    current: &Map<String, Value>,
    body: &Value,
    paths: &[&str],
) -> Result<Map<String, Value>, ApiError> {
    let mut root = json!({"spec": Value::Object(current.clone())});
    for path in paths {
        if path.starts_with("initial_") {
            // Only read when the project is created.
            continue;
        }
        let (parent, leaf) = path.rsplit_once('.').unwrap_or(("", path));
        let parent_parts: Vec<&str> = parent.split('.').filter(|p| !p.is_empty()).collect();
        let source = parent_parts
            .iter()
            .try_fold(body, |node, part| node.get(part))
            .and_then(Value::as_object);
        let group: Option<&[&str]> = match leaf {
            "expiration" => Some(&["ttl", "expire_time", "no_expiry"]),
            "suspension" => Some(&["no_suspension", "suspend_timeout_duration"]),
            _ => None,
        };
        let Some(source) = source else {
            // A masked field whose parent the body omits keeps its value.
            continue;
        };
        let target = parent_parts.iter().fold(&mut root, |node, part| {
            if !node.get(*part).is_some_and(Value::is_object) {
                node[*part] = json!({});
            }
            &mut node[*part]
        });
        let target = target.as_object_mut().expect("made an object above");
        match group {
            Some(members) => {
                for member in members {
                    target.remove(*member);
                    if let Some(value) = source.get(*member) {
                        target.insert((*member).to_owned(), value.clone());
                    }
                }
            }
            None => match source.get(leaf) {
                Some(value) => {
                    target.insert(leaf.to_owned(), value.clone());
                }
                None => {
                    return Err(ApiError::bad_request(format!(
                        "Field '{path}' is in update_mask but not provided in request"
                    )));
                }
            },
        }
    }
    match root.get("spec") {
        Some(Value::Object(spec)) => Ok(spec.clone()),
        Some(Value::Null) | None => Ok(Map::new()),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid spec {other}: expected an object."
        ))),
    }
}

/// The one database of every branch, `databricks_postgres`, owned by the project owner.
fn database_json(project: &Project, branch: &Branch) -> Value {
    let parent = format!("{}/branches/{}", project.name(), branch.id);
    let id = DEFAULT_DATABASE.replace('_', "-");
    json!({
        "name": format!("{parent}/databases/{id}"),
        "database_id": id,
        "parent": parent,
        "create_time": rfc3339(branch.create_time),
        "update_time": rfc3339(branch.create_time),
        "status": {
            "database_id": id,
            "postgres_database": DEFAULT_DATABASE,
            "role": project.owner,
        },
    })
}

/// The owner's role, the one role every branch starts with.
fn role_json(project: &Project, branch: &Branch) -> Value {
    let parent = format!("{}/branches/{}", project.name(), branch.id);
    let id = format!("role-{}", &digest(&project.owner)[..8]);
    // An e-mail is a user; anything else (an application id) a service principal.
    let identity = if project.owner.contains('@') {
        "USER"
    } else {
        "SERVICE_PRINCIPAL"
    };
    json!({
        "name": format!("{parent}/roles/{id}"),
        "role_id": id,
        "parent": parent,
        "create_time": rfc3339(branch.create_time),
        "update_time": rfc3339(branch.create_time),
        "status": {
            "role_id": id,
            "postgres_role": project.owner,
            "identity_type": identity,
            "auth_method": "LAKEBASE_OAUTH_V1",
            "attributes": {"bypassrls": false, "createdb": true, "createrole": true},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_resource_id_rule() {
        assert!(validate_id("project_id", Some("a")).is_ok());
        assert!(validate_id("project_id", Some("my-app-2")).is_ok());
        assert!(validate_id("project_id", Some(&"a".repeat(63))).is_ok());
        for bad in ["", "A", "1abc", "-a", "a_b", "a.b", "ä"] {
            assert!(validate_id("project_id", Some(bad)).is_err(), "{bad}");
        }
        assert!(validate_id("project_id", Some(&"a".repeat(64))).is_err());
        assert!(validate_id("project_id", None).is_err());
    }

    #[test]
    fn names_parse_into_targets_and_operations() {
        assert_eq!(Target::parse("projects"), Some(Target::Projects));
        assert_eq!(
            Target::parse("projects/p/branches/b/endpoints/e"),
            Some(Target::Endpoint("p", "b", "e"))
        );
        assert_eq!(
            Target::parse("projects/p/operations/123"),
            Some(Target::Operation("projects/p/operations/123"))
        );
        assert_eq!(Target::parse("projects//branches"), None);
        assert_eq!(Target::parse("projects/p/things"), None);
        assert_eq!(Target::parse("credentials"), None);
    }

    #[test]
    fn masks_replace_oneof_groups_and_refuse_missing_fields() {
        // Arrange
        let current = Map::from_iter([("ttl".to_owned(), json!("60s"))]);
        let body = json!({"spec": {"no_expiry": true, "is_protected": true}});

        // Act
        let grouped = masked(&current, &body, &["spec.expiration"]).unwrap();
        let missing = masked(&current, &json!({"spec": {}}), &["spec.is_protected"]);

        // Assert
        assert_eq!(Value::Object(grouped), json!({"no_expiry": true}));
        assert!(missing.is_err());
    }

    #[test]
    fn pooled_hosts_insert_pooler_after_the_first_label() {
        assert_eq!(
            pooled_host("ep-primary.database.us-west-2.cloud.databricks.com"),
            "ep-primary-pooler.database.us-west-2.cloud.databricks.com"
        );
    }
}
