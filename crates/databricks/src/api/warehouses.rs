//! SQL warehouses (`shared/UPSTREAM-2.md` §3.1): reading one warehouse's state. Starting and
//! stopping are left to the workspace (a statement on a stopped warehouse waits for it), so this
//! module only reads; `dbapp doctor` uses it to say whether the warehouse exists, whether a
//! principal may use it, and whether it is running.

use reqwest::Method;
use serde::Deserialize;

use crate::api::encode_segment;
use crate::client::Workspace;
use crate::error::DatabricksError;
use crate::http::Operation;

// The `api`/`operation` names of this module's calls (see [`Operation`]).
const GET_WAREHOUSE: Operation = Operation::new("sql", "get_warehouse");

/// A SQL warehouse, as far as an app needs to know it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Warehouse {
    /// The warehouse id (`DATABRICKS_WAREHOUSE_ID`).
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// `STARTING`, `RUNNING`, `STOPPING`, `STOPPED`, `DELETING` or `DELETED`; kept as the
    /// workspace wrote it, so a state added later is shown rather than refused.
    #[serde(default)]
    pub state: String,
    /// Size, e.g. `2X-Small`.
    #[serde(default)]
    pub cluster_size: Option<String>,
    /// Minutes idle before it stops by itself; 0 = never.
    #[serde(default)]
    pub auto_stop_mins: Option<u32>,
    /// Whether it is a serverless warehouse.
    #[serde(default)]
    pub enable_serverless_compute: Option<bool>,
}

impl Warehouse {
    /// Whether statements run on it without first waiting for it to start.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.state == "RUNNING"
    }

    /// Whether it is gone or going (`DELETING`, `DELETED`): statements will never run there.
    #[must_use]
    pub fn is_deleted(&self) -> bool {
        matches!(self.state.as_str(), "DELETING" | "DELETED")
    }
}

impl Workspace<'_> {
    /// One warehouse (`GET /api/2.0/sql/warehouses/{id}`); needs `CAN_USE` on it.
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotFound`], [`crate::ErrorKind::PermissionDenied`], auth, transport
    /// and 5xx kinds.
    #[tracing::instrument(skip_all, fields(warehouse = %id))]
    pub async fn get_warehouse(&self, id: &str) -> Result<Warehouse, DatabricksError> {
        let path = format!("/api/2.0/sql/warehouses/{}", encode_segment(id));
        self.get_json(self.call(GET_WAREHOUSE, Method::GET, &path), "warehouse")
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_read_as_written() {
        let warehouse: Warehouse =
            serde_json::from_str(r#"{"id":"w","name":"W","state":"STOPPED","num_clusters":0}"#)
                .unwrap();
        assert!(!warehouse.is_running());
        assert!(!warehouse.is_deleted());
        let gone: Warehouse = serde_json::from_str(r#"{"id":"w","state":"DELETED"}"#).unwrap();
        assert!(gone.is_deleted());
        let new_state: Warehouse = serde_json::from_str(r#"{"id":"w","state":"PAUSED"}"#).unwrap();
        assert_eq!(new_state.state, "PAUSED");
    }
}
