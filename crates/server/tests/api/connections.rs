//! Connection hygiene with raw sockets: silent and half-sent connections, idle keep-alive
//! connections, the connection cap, and a shutdown that does not wait for any of them.

use std::time::{Duration, Instant};

use dbapp_emulator::FaultRule;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::app::{ALICE, Options, TestApp, spawn_app, spawn_app_with};

/// Longer than any timeout these tests configure, far shorter than the defaults: a read that
/// waits this long was not going to be closed by the server.
const PATIENCE: Duration = Duration::from_secs(5);

/// A server with these connection settings (in seconds, and connections).
async fn spawn_with(
    header_read_timeout: &'static str,
    idle_timeout: &'static str,
    max_connections: &'static str,
) -> TestApp {
    spawn_app_with(Options {
        env: vec![
            ("DBAPP_HEADER_READ_TIMEOUT_SECS", header_read_timeout),
            ("DBAPP_IDLE_TIMEOUT_SECS", idle_timeout),
            ("DBAPP_MAX_CONNECTIONS", max_connections),
        ],
        ..Options::default()
    })
    .await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection (EOF or reset) and returns what it sent, or
/// `None` if it was still open after [`PATIENCE`].
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, async {
        let mut buffer = [0_u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    closed.is_ok().then_some(received)
}

/// Reads one whole response to `GET /health` on a kept-alive connection (its body is small
/// JSON with a `Content-Length`), or `None` if none came within `wait`.
async fn read_health_response(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut received = Vec::new();
    tokio::time::timeout(wait, async {
        let mut buffer = [0_u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&received).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .and_then(|l| l.trim().parse::<usize>().ok());
                if length.is_some_and(|l| body.len() >= l) {
                    return text;
                }
            }
            let n = stream
                .read(&mut buffer)
                .await
                .expect("the connection stays open");
            assert!(n > 0, "closed before a whole response: {text:?}");
            received.extend_from_slice(&buffer[..n]);
        }
    })
    .await
    .ok()
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";

#[tokio::test]
async fn silent_and_half_sent_connections_are_closed_after_the_header_timeout() {
    // Arrange: the header timeout alone is short.
    let app = spawn_with("1", "60", "16").await;
    let mut silent = connect(&app).await;
    let mut half_sent = connect(&app).await;

    // Act
    half_sent
        .write_all(b"GET /health HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();

    // Assert
    let started = Instant::now();
    let sent = read_until_closed(&mut half_sent).await;
    assert_eq!(
        sent.as_deref(),
        Some(&b""[..]),
        "the half-sent request is closed unanswered"
    );
    assert!(
        read_until_closed(&mut silent).await.is_some(),
        "the silent connection is closed"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    // Arrange: the idle timeout alone is short.
    let app = spawn_with("60", "1", "16").await;
    let mut stream = connect(&app).await;

    // Act: one whole request; the connection stays open (HTTP/1.1 keep-alive) and idle.
    stream.write_all(HEALTH).await.unwrap();
    let response = read_health_response(&mut stream, PATIENCE).await.unwrap();

    // Assert
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let idle_since = Instant::now();
    let rest = read_until_closed(&mut stream).await;
    assert_eq!(
        rest.as_deref(),
        Some(&b""[..]),
        "closed without another byte"
    );
    assert!(idle_since.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_header_timeout() {
    // Arrange: the header timeout is short, the idle timeout is not.
    let app = spawn_with("1", "60", "16").await;
    let mut stream = connect(&app).await;
    stream.write_all(HEALTH).await.unwrap();
    read_health_response(&mut stream, PATIENCE).await.unwrap();

    // Act: idle for longer than the header timeout, then a second request.
    let mut buffer = [0_u8; 1];
    let idle = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer)).await;
    stream.write_all(HEALTH).await.unwrap();

    // Assert
    assert!(
        idle.is_err(),
        "the server closed or wrote to an idle connection"
    );
    let response = read_health_response(&mut stream, PATIENCE).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    // Arrange
    let app = spawn_with("60", "1", "16").await;
    let mut stream = connect(&app).await;

    // Act: the HTTP/2 preface and an empty SETTINGS frame, then no stream.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();

    // Assert: the server's SETTINGS (and GOAWAY), then the end.
    assert!(read_until_closed(&mut stream).await.is_some(), "closed");
}

#[tokio::test]
async fn past_the_connection_cap_a_new_connection_waits_for_a_free_slot() {
    // Arrange: a cap of 4, the default (long) timeouts, and 4 connections that say nothing.
    let app = spawn_app_with(Options {
        env: vec![("DBAPP_MAX_CONNECTIONS", "4")],
        ..Options::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(&app).await;
        stream.write_all(HEALTH).await.unwrap();
        // Answered: this connection has been accepted and holds a slot.
        read_health_response(&mut stream, PATIENCE).await.unwrap();
        held.push(stream);
    }

    // Act: a fifth connection is made by the kernel (the backlog) but not accepted.
    let mut fifth = connect(&app).await;
    fifth.write_all(HEALTH).await.unwrap();
    let while_full = read_health_response(&mut fifth, Duration::from_millis(500)).await;
    drop(held.pop());

    // Assert
    assert!(
        while_full.is_none(),
        "answered past the cap: {while_full:?}"
    );
    let response = read_health_response(&mut fifth, PATIENCE).await;
    assert!(
        response.is_some_and(|r| r.starts_with("HTTP/1.1 200")),
        "answered once a slot is free"
    );
}

#[tokio::test]
async fn idle_connections_holding_every_slot_time_out_and_health_is_answered() {
    // Arrange: a cap of 4 taken by 4 connections that never send a byte.
    let app = spawn_with("1", "1", "4").await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect(&app).await);
    }

    // Act
    let response = tokio::time::timeout(PATIENCE, app.health().send()).await;

    // Assert
    let response = response.expect("/health is answered once the idle connections time out");
    assert_eq!(response.status(), 200);
    for stream in &mut held {
        assert!(read_until_closed(stream).await.is_some(), "idle slot freed");
    }
}

#[tokio::test]
async fn shutdown_closes_half_sent_connections_at_once_and_finishes_in_flight_requests() {
    // Arrange: default timeouts (the header timeout is far longer than the test), a request
    // that takes 500 ms upstream, and a connection that sent half a request.
    let mut app = spawn_app().await;
    app.emulator
        .inject_fault(
            FaultRule::new("/serving-endpoints/echo/invocations")
                .latency(Duration::from_millis(500)),
        )
        .unwrap();
    let mut half_sent = connect(&app).await;
    half_sent
        .write_all(b"POST /api/preferences/x HTTP/1.1\r\nHost: localhost\r\nContent-")
        .await
        .unwrap();
    // Connections are accepted in the order they were made: once a later one is answered the
    // half-sent one is the server's.
    let mut later = connect(&app).await;
    later.write_all(HEALTH).await.unwrap();
    read_health_response(&mut later, PATIENCE).await.unwrap();
    let in_flight = tokio::spawn(
        app.invoke(ALICE, "echo", &json!({"inputs": {"x": 1}}))
            .send(),
    );
    let deadline = Instant::now() + PATIENCE;
    while app.emulator.requests("/serving-endpoints/echo").is_empty() && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }

    // Act
    let started = Instant::now();
    app.stop().await.unwrap();
    let stopped_after = started.elapsed();

    // Assert
    assert!(
        stopped_after < Duration::from_secs(2),
        "stopped after {stopped_after:?}"
    );
    assert_eq!(
        in_flight.await.unwrap().status(),
        200,
        "the in-flight request finished"
    );
    assert_eq!(
        read_until_closed(&mut half_sent).await.as_deref(),
        Some(&b""[..]),
        "the half-sent request was closed unanswered"
    );
}

/// An HTTP/2 frame: type, flags, stream id, payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![length[1], length[2], length[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Every frame the server sends until it closes the connection, as (type, stream, payload).
async fn h2_frames_until_closed(stream: &mut TcpStream) -> Vec<(u8, u32, Vec<u8>)> {
    let bytes = read_until_closed(stream).await.expect("the server closes");
    let mut frames = Vec::new();
    let mut rest = &bytes[..];
    while rest.len() >= 9 {
        let length = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let id = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7fff_ffff;
        frames.push((rest[3], id, rest[9..9 + length].to_vec()));
        rest = &rest[9 + length..];
    }
    frames
}

#[tokio::test]
async fn http2_advertises_its_stream_limit_and_ends_a_rapid_reset_flood() {
    // Arrange
    let app = spawn_app().await;
    let mut stream = connect(&app).await;
    let mut flood = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    flood.extend(h2_frame(0x4, 0, 0, &[]));
    // Each stream: HEADERS (GET http /, HPACK static indexes) then at once RST_STREAM CANCEL.
    for id in (1..400_u32).step_by(2) {
        flood.extend(h2_frame(0x1, 0x5, id, &[0x82, 0x86, 0x84]));
        flood.extend(h2_frame(0x3, 0, id, &8_u32.to_be_bytes()));
    }

    // Act
    stream.write_all(&flood).await.unwrap();
    let frames = h2_frames_until_closed(&mut stream).await;

    // Assert: SETTINGS_MAX_CONCURRENT_STREAMS (0x3) is 100…
    let (_, _, settings) = frames.iter().find(|(kind, _, _)| *kind == 0x4).unwrap();
    let advertised: Vec<(u16, u32)> = settings
        .chunks(6)
        .map(|s| {
            (
                u16::from_be_bytes([s[0], s[1]]),
                u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
            )
        })
        .collect();
    assert!(advertised.contains(&(0x3, 100)), "{advertised:?}");
    // …and the flood ends in GOAWAY ENHANCE_YOUR_CALM (0xb), then the close.
    let (_, _, goaway) = frames
        .iter()
        .find(|(kind, _, _)| *kind == 0x7)
        .expect("GOAWAY");
    assert_eq!(u32::from_be_bytes(goaway[4..8].try_into().unwrap()), 0xb);
}
