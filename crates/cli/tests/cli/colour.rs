//! No escape codes where no terminal reads them: logs and reports written to a pipe or a file
//! are plain text (the terminal case is `terminal.rs`'s unit test).

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::{Running, dbapp};

#[test]
fn logs_written_to_a_pipe_carry_no_escape_codes() {
    // Arrange
    let mut child = dbapp()
        .args(["emulate", "--port", "0"])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _running = Running(child);

    // Act: the first log line, which says the emulator started.
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();

    // Assert
    assert!(line.contains("emulator.started"), "{line}");
    assert!(!line.contains('\x1b'), "{line:?}");
}

#[test]
fn the_doctor_report_in_a_pipe_is_plain() {
    // Act
    let output = dbapp()
        .arg("doctor")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .output()
        .unwrap();

    // Assert
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Checks:"), "{stdout}");
    assert!(!stdout.contains('\x1b'), "{stdout:?}");
}
