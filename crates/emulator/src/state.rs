//! Everything the emulator knows, behind one cheaply cloned handle.
//!
//! The fixture and the principals derived from it never change while the emulator runs; tokens,
//! SQL statements, warehouse states, SQL sessions, workspace files, Genie conversations, Autoscaling projects, apps
//! (with their service principals), fault rules, run-time settings and the request log do, and each sits behind its own `std::sync::Mutex`. Locks are held for a few map
//! operations and never across an `.await`, so a plain mutex is both correct and the fastest
//! choice here.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::time::Instant;

use crate::apps::Apps;
use crate::autoscaling::Autoscaling;
use crate::engine::Engine;
use crate::faults::FaultRules;
use crate::files::FileTree;
use crate::fixture::{Fixture, Settings};
use crate::genie::GenieStore;
use crate::lakebase::LakebaseAdmin;
use crate::results::LinkSigner;
use crate::runtime::Runtime;
use crate::sql::Statement;
use crate::warehouse::Warehouses;
use crate::workspace::WorkspaceTree;

/// Most requests the log keeps; older ones are dropped first, so a benchmark cannot grow it.
const REQUEST_LOG_CAPACITY: usize = 10_000;

/// The shared state of one emulator.
#[derive(Clone, Debug)]
pub(crate) struct Emulator(Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) fixture: Fixture,
    /// The fixture tables in SQL form, loaded once at start.
    pub(crate) engine: Engine,
    pub(crate) principals: HashMap<String, Arc<Principal>>,
    /// Fallback base URL when a request carries no `Host` header.
    pub(crate) base_url: String,
    pub(crate) lakebase: Option<LakebaseAdmin>,
    pub(crate) tokens: Mutex<HashMap<String, TokenRecord>>,
    pub(crate) settings: Mutex<Settings>,
    pub(crate) statements: Mutex<HashMap<String, Statement>>,
    pub(crate) warehouses: Mutex<Warehouses>,
    /// Open SQL sessions by id; at most `sql_max_sessions`.
    pub(crate) sessions: Mutex<HashMap<String, SqlSessionInfo>>,
    /// Signs the `EXTERNAL_LINKS` URLs, so they need no token and cannot be forged.
    pub(crate) links: LinkSigner,
    pub(crate) faults: Mutex<FaultRules>,
    pub(crate) log: Mutex<RequestLog>,
    /// The files of every volume, in memory; the fixture's initial files at start and reset.
    pub(crate) files: Mutex<FileTree>,
    /// The workspace's directories, files and notebooks, in memory; the home directories at
    /// start and reset.
    pub(crate) workspace: Mutex<WorkspaceTree>,
    /// Genie conversations and messages of every user.
    pub(crate) genie: Mutex<GenieStore>,
    /// Lakebase Autoscaling projects, branches, endpoints and operations; the fixture's
    /// endpoints at start and reset.
    pub(crate) autoscaling: Mutex<Autoscaling>,
    /// Apps, their deployments and their service principals; none at start and reset.
    pub(crate) apps: Mutex<Apps>,
    /// The processes and proxies of deployed apps, set once at start when the emulator runs
    /// apps (`EmulatorConfig::run_apps`).
    pub(crate) runtime: OnceLock<Runtime>,
    /// The fixture settings after command-line overrides: what `reset` returns to.
    initial_settings: Settings,
}

impl std::ops::Deref for Emulator {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// A user or service principal.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Principal {
    /// Numeric SCIM id, stable for a fixture.
    pub(crate) id: String,
    /// SCIM `userName`: an e-mail for users, the application id for service principals.
    pub(crate) user_name: String,
    pub(crate) display_name: String,
    pub(crate) groups: Vec<String>,
    pub(crate) active: bool,
    pub(crate) is_service_principal: bool,
}

/// The fixture's users as unit tests of the statement code need them.
#[cfg(test)]
impl Principal {
    fn for_test(user_name: &str, groups: &[&str]) -> Self {
        Self {
            id: "1".into(),
            user_name: user_name.into(),
            display_name: user_name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            active: true,
            is_service_principal: false,
        }
    }

    /// alice, who reads everything in the default fixture.
    pub(crate) fn alice() -> Self {
        Self::for_test("alice@example.com", &["users", "data-analysts"])
    }

    /// bob, who may not read some tables.
    pub(crate) fn bob() -> Self {
        Self::for_test("bob@example.com", &["users"])
    }
}

impl Principal {
    /// Whether `readers` names this principal or one of its groups; `None` admits everyone.
    pub(crate) fn admitted_by(&self, readers: Option<&Vec<String>>) -> bool {
        readers.is_none_or(|names| {
            names
                .iter()
                .any(|n| *n == self.user_name || self.groups.contains(n))
        })
    }

    /// Whether the principal passes every `readers` list on the path to an object.
    pub(crate) fn admitted_by_all<'a>(
        &self,
        lists: impl IntoIterator<Item = Option<&'a Vec<String>>>,
    ) -> bool {
        lists.into_iter().all(|l| self.admitted_by(l))
    }
}

/// An open SQL session (`POST /api/2.0/sql/sessions`), as
/// [`EmulatorHandle::sql_sessions`](crate::EmulatorHandle::sql_sessions) reports it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqlSessionInfo {
    /// The session id.
    pub session_id: String,
    /// User name of the creator, the only principal that may use or delete it.
    pub owner: String,
    /// The warehouse it was opened on.
    pub warehouse_id: String,
    /// Default catalog of its statements, if one was given.
    pub catalog: Option<String>,
    /// Default schema of its statements, if one was given.
    pub schema: Option<String>,
    /// `session_confs` as sent; kept, not applied.
    pub session_confs: HashMap<String, String>,
}

/// What a token is worth.
#[derive(Debug, Clone)]
pub(crate) struct TokenRecord {
    /// Key into [`Inner::principals`].
    pub(crate) principal: String,
    /// `None` for personal access tokens, which do not expire on their own.
    pub(crate) expires_at: Option<DateTime<Utc>>,
    pub(crate) revoked: bool,
    /// JWT-shaped OAuth tokens answer "JWT has expired" once expired; PATs do not.
    pub(crate) is_jwt: bool,
    /// For a database credential minted for an Autoscaling endpoint, its branch
    /// (`projects/p/branches/b`), whose database the Lakebase front opens.
    pub(crate) branch: Option<String>,
    /// For a downscoped user token (the Apps proxy's), the scopes it carries; `None` for every
    /// other token, which has them all.
    pub(crate) scopes: Option<Arc<[String]>>,
}

/// One served request, as `GET /_emulator/requests` and
/// [`EmulatorHandle::requests`](crate::EmulatorHandle::requests) report it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct LoggedRequest {
    /// Position in the log, from 1; never reused, even after the log is cleared.
    pub seq: u64,
    /// When the response was ready.
    pub timestamp: DateTime<Utc>,
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The principal the token belonged to; `None` when the token was missing or refused.
    pub principal: Option<String>,
    /// Status of the response (for a dropped connection, the 500 that was never sent).
    pub status: u16,
    /// Whether an injected fault produced or delayed the response.
    pub fault: bool,
    /// `X-Correlation-ID` (or `X-Request-Id`) as received, to check propagation.
    pub correlation_id: Option<String>,
    /// `User-Agent` as received.
    pub user_agent: Option<String>,
    /// W3C `traceparent` as received, to check trace propagation.
    pub traceparent: Option<String>,
    /// The `x-request-id` the emulator answered with (a UUID per request).
    pub request_id: String,
}

#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    next_seq: u64,
    entries: VecDeque<LoggedRequest>,
}

impl RequestLog {
    pub(crate) fn push(&mut self, mut entry: LoggedRequest) {
        self.next_seq += 1;
        entry.seq = self.next_seq;
        if self.entries.len() == REQUEST_LOG_CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = &LoggedRequest> {
        self.entries.iter()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it: every critical section
/// here leaves its data consistent, so a poison flag carries no information.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Emulator {
    pub(crate) fn new(
        fixture: Fixture,
        engine: Engine,
        base_url: String,
        lakebase: Option<LakebaseAdmin>,
    ) -> Self {
        let principals = principals_of(&fixture);
        let settings = fixture.settings.clone();
        let tokens = static_tokens(&fixture);
        let faults = FaultRules::new(settings.fault_seed);
        let warehouses = Warehouses::new(&fixture.warehouses, &settings, Instant::now());
        Self(Arc::new(Inner {
            engine,
            principals,
            base_url,
            lakebase,
            tokens: Mutex::new(tokens),
            settings: Mutex::new(settings.clone()),
            statements: Mutex::default(),
            warehouses: Mutex::new(warehouses),
            sessions: Mutex::default(),
            links: LinkSigner::new(),
            faults: Mutex::new(faults),
            log: Mutex::default(),
            files: Mutex::new(FileTree::from_fixture(&fixture, Utc::now())),
            workspace: Mutex::new(WorkspaceTree::from_fixture(&fixture, Utc::now())),
            genie: Mutex::default(),
            autoscaling: Mutex::new(autoscaling_of(&fixture)),
            apps: Mutex::default(),
            runtime: OnceLock::new(),
            initial_settings: settings,
            fixture,
        }))
    }

    /// The apps runtime, when the emulator runs apps.
    pub(crate) fn runtime(&self) -> Option<&Runtime> {
        self.runtime.get()
    }

    /// A copy of the current run-time settings.
    pub(crate) fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    /// A principal by SCIM `userName`: the fixture's, else an app's service principal.
    pub(crate) fn principal(&self, user_name: &str) -> Option<Arc<Principal>> {
        self.principals
            .get(user_name)
            .cloned()
            .or_else(|| lock(&self.apps).service_principal(user_name))
    }

    /// Returns tokens, statements, warehouses, sessions, faults, settings, volume files, workspace
    /// files, Genie conversations, Autoscaling projects, apps and the log to their state at start.
    pub(crate) fn reset(&self) {
        *lock(&self.tokens) = static_tokens(&self.fixture);
        *lock(&self.settings) = self.initial_settings.clone();
        lock(&self.statements).clear();
        *lock(&self.warehouses) = Warehouses::new(
            &self.fixture.warehouses,
            &self.initial_settings,
            Instant::now(),
        );
        lock(&self.sessions).clear();
        *lock(&self.faults) = FaultRules::new(self.initial_settings.fault_seed);
        lock(&self.log).clear();
        *lock(&self.files) = FileTree::from_fixture(&self.fixture, Utc::now());
        *lock(&self.workspace) = WorkspaceTree::from_fixture(&self.fixture, Utc::now());
        *lock(&self.genie) = GenieStore::default();
        *lock(&self.autoscaling) = autoscaling_of(&self.fixture);
        *lock(&self.apps) = Apps::default();
        if let Some(runtime) = self.runtime() {
            runtime.reset();
        }
    }
}

/// The fixture's Autoscaling endpoints as projects, owned by the first workspace admin (else the
/// first user), who stands in for the creator the fixture does not name.
fn autoscaling_of(fixture: &Fixture) -> Autoscaling {
    let users = &fixture.users;
    let owner = users
        .iter()
        .find(|u| u.groups.iter().any(|g| g == "admins"))
        .or_else(|| users.first())
        .map_or("admin@example.com", |u| u.user_name.as_str());
    Autoscaling::from_fixture(&fixture.postgres_endpoints, owner)
}

fn principals_of(fixture: &Fixture) -> HashMap<String, Arc<Principal>> {
    let users = fixture.users.iter().map(|u| Principal {
        id: String::new(),
        user_name: u.user_name.clone(),
        display_name: u.display_name.clone(),
        groups: u.groups.clone(),
        active: u.active,
        is_service_principal: false,
    });
    let sps = fixture.service_principals.iter().map(|s| Principal {
        id: String::new(),
        user_name: s.application_id.clone(),
        display_name: s.display_name.clone(),
        groups: s.groups.clone(),
        active: true,
        is_service_principal: true,
    });
    users
        .chain(sps)
        .enumerate()
        .map(|(i, mut p)| {
            // Stable, SCIM-looking numeric ids: the same fixture always yields the same ids.
            p.id = (7_000_000_000_000_000u64 + i as u64 * 1_111).to_string();
            (p.user_name.clone(), Arc::new(p))
        })
        .collect()
}

fn static_tokens(fixture: &Fixture) -> HashMap<String, TokenRecord> {
    let users = fixture.users.iter().map(|u| (&u.user_name, &u.tokens));
    let sps = fixture
        .service_principals
        .iter()
        .map(|s| (&s.application_id, &s.tokens));
    users
        .chain(sps)
        .flat_map(|(name, tokens)| {
            tokens.iter().map(move |t| {
                let record = TokenRecord {
                    principal: name.clone(),
                    expires_at: None,
                    revoked: false,
                    is_jwt: false,
                    branch: None,
                    scopes: None,
                };
                (t.clone(), record)
            })
        })
        .collect()
}

/// A stable numeric id for a group name, for SCIM `groups[].value`.
pub(crate) fn group_id(name: &str) -> String {
    // FNV-1a: stable across runs and platforms, unlike the std hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % 1_000_000_000_000).to_string()
}
