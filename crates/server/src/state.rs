//! [`AppState`]: what every handler shares (one `Arc` clone per request): the server's settings,
//! the store, the workspace client, the identity cache, the metrics recorder, the request-record
//! writer, the inference history's writer and the per-user quotas. Per-request data never lives
//! here; it arrives through extractors.

use std::ops::Deref;
use std::sync::Arc;

use dbapp_databricks::Client;
use dbapp_store::Store;

use crate::config::ServerSettings;
use crate::history::History;
use crate::identity::IdentityCache;
use crate::metrics::Metrics;
use crate::queries::{Queries, QueryCatalog};
use crate::quota::Quotas;
use crate::records::RequestRecorder;

/// Shared state: one `Arc` clone per request.
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppInner>);

/// What the handlers share.
#[derive(Debug)]
pub struct AppInner {
    /// The server's validated settings (the workspace and the store were built from the rest).
    pub settings: ServerSettings,
    /// The store: Lakebase, Postgres or SQLite; `None` inside Databricks Apps without a
    /// database (storage routes answer `STORAGE_NOT_CONFIGURED`).
    pub store: Option<Arc<dyn Store>>,
    /// The workspace client; handlers use it only through `Caller::workspace`.
    pub databricks: Client,
    /// Token SHA-256 → identity.
    pub identities: IdentityCache,
    /// The Prometheus recorder.
    pub metrics: Metrics,
    /// The request-record channel of the batch writer.
    pub records: RequestRecorder,
    /// The inference history's writer and outbox.
    pub history: History,
    /// The per-user quotas of usage events and invocations.
    pub quotas: Quotas,
    /// The governed queries: catalog, result cache and pending runs.
    pub queries: Queries,
    /// Slots of chat turns being recorded (`routes::chat::MAX_CHAT_RECORDINGS`): a turn holds
    /// one from its start until its answer is stored, so recordings the store has not caught up
    /// with cannot pile up in memory.
    pub chat_recordings: Arc<tokio::sync::Semaphore>,
}

impl Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    /// Assembles the state and starts the request-record and inference-history writers when
    /// there is a store. Needs a tokio runtime.
    #[must_use]
    pub fn new(
        settings: ServerSettings,
        databricks: Client,
        store: Option<Arc<dyn Store>>,
        metrics: Metrics,
        queries: QueryCatalog,
    ) -> Self {
        let identities = IdentityCache::new(
            settings.identity_cache_ttl(),
            settings.dbapp.identity_cache_capacity,
        );
        let (records, history) = match &store {
            Some(store) => (
                RequestRecorder::spawn(Arc::clone(store), metrics.clone()).0,
                History::spawn(
                    Arc::clone(store),
                    metrics.clone(),
                    settings.dbapp.history_input_max_bytes,
                    settings.dbapp.history_outbox_capacity,
                ),
            ),
            None => (RequestRecorder::disabled(), History::disabled()),
        };
        let quotas = Quotas::new(
            settings.dbapp.quota_usage_events_per_minute,
            settings.dbapp.quota_invocations_per_minute,
            metrics.clone(),
        );
        let queries = Queries::new(
            queries,
            settings.dbapp.query_cache_max_entries,
            settings.dbapp.query_cache_max_bytes,
        );
        Self(Arc::new(AppInner {
            settings,
            store,
            databricks,
            identities,
            metrics,
            records,
            history,
            quotas,
            queries,
            chat_recordings: Arc::new(tokio::sync::Semaphore::new(
                crate::routes::chat::MAX_CHAT_RECORDINGS,
            )),
        }))
    }

    /// The store, or `STORAGE_NOT_CONFIGURED`.
    ///
    /// # Errors
    /// [`crate::ApiError::StorageNotConfigured`].
    pub fn store(&self) -> Result<&Arc<dyn Store>, crate::ApiError> {
        self.0
            .store
            .as_ref()
            .ok_or(crate::ApiError::StorageNotConfigured)
    }
}
