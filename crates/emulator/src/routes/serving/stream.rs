//! Server-sent events for streamed answers, framed as `shared/UPSTREAM-2.md` §2.2 says both
//! client parsers accept: one `data: <one-line JSON>` event per chunk, a blank line after each,
//! and no `event:`, `id:`, `retry:` or keep-alive comment lines (mlflow's parser refuses them).
//!
//! Chunks are produced one at a time and each is flushed before the next is made, so a client
//! sees the first chunk while the rest are still pending. The pace and the early end come from
//! [`Pacing`]: the fixture's `serving_chunk_latency_ms` plus a fired fault's `chunk_latency_ms`
//! before each chunk after the first, and a fault's cut (connection dropped, or an error event
//! and the end of the stream). What goes in the chunks is the protocols' business
//! (`openai.rs`, `responses.rs`).

use std::time::Duration;

use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;

use crate::faults::{StreamCut, StreamFault};

/// How fast a stream goes and how it ends.
#[derive(Debug, Clone, Default)]
pub(super) struct Pacing {
    /// Wait before each chunk after the first.
    chunk_latency: Duration,
    cut: Option<StreamCut>,
}

impl Pacing {
    /// The fixture's chunk latency, plus the effects of a fired fault rule.
    pub(super) fn new(setting_ms: u64, fault: Option<StreamFault>) -> Self {
        let setting = Duration::from_millis(setting_ms);
        match fault {
            Some(fault) => Self {
                chunk_latency: setting.saturating_add(fault.chunk_latency),
                cut: fault.cut,
            },
            None => Self {
                chunk_latency: setting,
                cut: None,
            },
        }
    }
}

/// Builds the mid-stream error event of a protocol from the code, the message and the number of
/// chunks already sent.
pub(super) type ErrorEvent = fn(&str, &str, usize) -> String;

/// The stream ended by an injected fault; hyper then closes the connection mid-body.
#[derive(Debug, thiserror::Error)]
#[error("stream cut by an injected fault")]
struct StreamDropped;

struct Producer {
    chunks: std::vec::IntoIter<String>,
    sent: usize,
    pacing: Pacing,
    error_event: ErrorEvent,
    ended: bool,
}

/// An SSE response that sends `chunks` (each already one line of text) as `pacing` says.
pub(super) fn sse(chunks: Vec<String>, pacing: Pacing, error_event: ErrorEvent) -> Response {
    let producer = Producer {
        chunks: chunks.into_iter(),
        sent: 0,
        pacing,
        error_event,
        ended: false,
    };
    let events = stream::unfold(producer, |mut p| async move {
        if p.ended {
            return None;
        }
        if p.sent > 0 && !p.pacing.chunk_latency.is_zero() {
            tokio::time::sleep(p.pacing.chunk_latency).await;
        }
        let cut_now = p
            .pacing
            .cut
            .as_ref()
            .filter(|cut| usize::try_from(cut.after()).is_ok_and(|after| after == p.sent));
        let item = match cut_now {
            Some(StreamCut::Drop { .. }) => {
                // hyper writes buffered chunks to the socket only when the body is pending; yield
                // once so the chunks sent before the cut reach the client, as they would from a
                // server that dies mid-stream, instead of vanishing with the connection.
                tokio::task::yield_now().await;
                p.ended = true;
                Err(StreamDropped)
            }
            Some(StreamCut::Error { code, message, .. }) => {
                p.ended = true;
                Ok(Event::default().data((p.error_event)(code, message, p.sent)))
            }
            None => {
                let chunk = p.chunks.next()?;
                p.sent += 1;
                Ok(Event::default().data(chunk))
            }
        };
        Some((item, p))
    });
    Sse::new(events).into_response()
}
