//! How the binary fails: a user error is one `error:` line, never a backtrace, and a reader
//! that stops reading is not an error.

use std::io::Read;
use std::process::Stdio;

use crate::dbapp;

#[test]
fn a_user_error_is_one_line_without_a_backtrace_even_with_rust_backtrace() {
    // Arrange: `lakebase setup` on the default (SQLite) configuration is a user error.
    let home = tempfile::tempdir().unwrap();

    // Act
    let output = dbapp()
        .args(["lakebase", "setup"])
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();

    // Assert
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
}

#[test]
fn openapi_into_a_reader_that_stops_early_exits_quietly() {
    // Arrange
    let mut child = dbapp()
        .arg("openapi")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Act: read a few bytes, as `head -c 10` does, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();

    // Assert
    assert_eq!(&first[..1], b"{");
    assert!(status.success(), "{status:?}: {stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn a_port_in_use_suggests_port_zero() {
    // Arrange: a port another socket holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();

    // Act
    let output = dbapp().args(["emulate", "--port", &port]).output().unwrap();

    // Assert
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Address already in use"), "{stderr}");
    assert!(
        stderr
            .trim_end()
            .ends_with("pass --port 0 to pick a free port"),
        "{stderr}"
    );
}
