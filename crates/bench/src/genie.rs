//! The direct Genie client of the `genie-ask` scenario: what an app does without dbapp to get an
//! answer, following the pollers of `shared/UPSTREAM-2.md` §1.3–1.4, timed against dbapp's ask
//! route.
//!
//! One ask is `POST …/start-conversation`, then `GET` the message until it is `COMPLETED`, then
//! `GET` the last query attachment's `query-result`, all on one kept-alive HTTP/1.1 connection
//! with the user's bearer token. Between polls it waits as dbapp's own waiter does
//! (`GenieWait::default()` in `crates/databricks/src/api/genie.rs`: 0.5 s, doubling up to 5 s,
//! plus a random extra of at most 10 %), so that dbapp and this client wait alike and the
//! comparison is left with what dbapp adds: the caller's identity, the relay of every call, the
//! typing of the result and the server-sent events. The schedule is copied, not imported: the
//! bench depends on none of the crates whose speed it measures.

use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper::client::conn::http1::SendRequest;
use serde_json::{Value, json};

use crate::load::{self, Recording};

/// The fixture's Sales space, which alice may use.
pub(crate) const SPACE: &str = "01f0c0ffee5a1e5000000000000000a1";
/// Answered by the Sales space's "products" rule with SQL over `main.default.products`, so an
/// answer has a query attachment and a result to fetch.
pub(crate) const QUESTION: &str = "List the products";
/// dbapp's waiter: the first wait, the longest, and the largest jitter (a fraction of a wait).
const FIRST_DELAY: Duration = Duration::from_millis(500);
const MAX_DELAY: Duration = Duration::from_secs(5);
const JITTER: f64 = 0.1;
/// Longest ask before it counts as failed, so a stuck message cannot stall the run.
const ASK_TIMEOUT: Duration = Duration::from_secs(60);

/// The wait before poll `n + 1`, as dbapp's waiter computes it: `0.5 s × 2ⁿ` up to 5 s, plus a
/// random extra of at most 10 %.
fn delay(n: u32) -> Duration {
    let base = FIRST_DELAY
        .saturating_mul(2u32.saturating_pow(n.min(31)))
        .min(MAX_DELAY);
    // RandomState is seeded per instance: enough randomness for a jitter, without a dependency.
    let random = RandomState::new().hash_one(Instant::now()) as f64 / u64::MAX as f64;
    base.mul_f64(1.0 + JITTER * random)
}

/// Asks [`QUESTION`] one ask after another for `duration`: the latency of each ask that was
/// answered, the failures of the others.
pub(crate) async fn asks(addr: SocketAddr, token: &'static str, duration: Duration) -> Recording {
    let started = Instant::now();
    let deadline = started + duration;
    let mut connection = Connection {
        addr,
        token,
        sender: None,
    };
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    while Instant::now() < deadline {
        let sent = Instant::now();
        match tokio::time::timeout(ASK_TIMEOUT, ask(&mut connection)).await {
            Ok(Ok(_)) => latencies.push(sent.elapsed()),
            Ok(Err(error)) => failures.push(error),
            Err(_) => failures.push(format!("no answer within {ASK_TIMEOUT:?}")),
        }
        if connection.sender.is_none() {
            // Failed: do not spin on a server that refuses.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Recording::of_operations(&latencies, failures, started.elapsed().max(duration))
}

/// One ask, as alice; the rows of the answer's result.
pub(crate) async fn ask_once(addr: SocketAddr, token: &'static str) -> Result<usize, String> {
    let mut connection = Connection {
        addr,
        token,
        sender: None,
    };
    ask(&mut connection).await
}

async fn ask(connection: &mut Connection) -> Result<usize, String> {
    let space = format!("/api/2.0/genie/spaces/{SPACE}");
    let started = connection
        .send(
            Method::POST,
            &format!("{space}/start-conversation"),
            Some(json!({ "content": QUESTION })),
        )
        .await?;
    let (Some(conversation), Some(message)) = (
        started["conversation_id"].as_str(),
        started["message_id"].as_str(),
    ) else {
        return Err(format!("start-conversation answered {started}"));
    };
    let message_path = format!("{space}/conversations/{conversation}/messages/{message}");
    let mut n = 0;
    let message = loop {
        let message = connection.send(Method::GET, &message_path, None).await?;
        match message["status"].as_str() {
            Some("COMPLETED") => break message,
            Some(status @ ("FAILED" | "CANCELLED" | "QUERY_RESULT_EXPIRED")) => {
                return Err(format!("the message ended {status}: {}", message["error"]));
            }
            _ => {}
        }
        tokio::time::sleep(delay(n)).await;
        n += 1;
    };
    // The last attachment with a `query` key, as databricks-ai-bridge picks it.
    let attachment = message["attachments"]
        .as_array()
        .and_then(|all| all.iter().rev().find(|a| a.get("query").is_some()))
        .and_then(|a| a["attachment_id"].as_str())
        .ok_or_else(|| format!("no query attachment in {message}"))?;
    let result = connection
        .send(
            Method::GET,
            &format!("{message_path}/attachments/{attachment}/query-result"),
            None,
        )
        .await?;
    let statement = &result["statement_response"];
    if statement["status"]["state"] != "SUCCEEDED" {
        return Err(format!("the query result is {}", statement["status"]));
    }
    Ok(statement["result"]["data_array"]
        .as_array()
        .map_or(0, Vec::len))
}

/// One kept-alive connection, opened again after a failure.
struct Connection {
    addr: SocketAddr,
    token: &'static str,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// Sends one request and reads its JSON answer; fails unless 2xx.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut sender = match self.sender.take() {
            Some(sender) => sender,
            None => load::connect(self.addr).await?,
        };
        sender
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.addr.to_string())
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            );
        let body = match body {
            Some(body) => {
                request = request.header(hyper::header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(body.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request.body(body).map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        self.sender = Some(sender);
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
            return Err(format!("{path}: {status}: {text}"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("{path}: not JSON: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waits_are_dbapps_half_a_second_doubling_to_five_with_ten_percent_jitter() {
        let expected = [500, 1000, 2000, 4000, 5000, 5000];
        for (n, base) in (0..).zip(expected) {
            let wait = delay(n).as_millis();
            assert!(wait >= base && wait <= base + base / 10, "{n}: {wait}");
        }
        assert!(delay(u32::MAX) <= MAX_DELAY.mul_f64(1.0 + JITTER));
    }
}
