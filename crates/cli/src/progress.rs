//! Numbered, timed steps for the commands that take a while (`deploy`, `dev`'s start-up): one
//! `[n/N] name` line as a step starts, indented notes while it runs, and `✓ what (1.2 s)` when it
//! is done, so a slow step shows where the time goes and a hung one names itself.
//!
//! Which stream is the caller's choice: `deploy` reports on stdout (its steps are its output),
//! `dev` on stderr (its stdout's first line, `serving on <url>`, is what scripts wait for). The
//! colour rules are `terminal`'s, decided for the stream written to. What a step does, and what
//! its notes say, stays with the command.

use std::io::Write;
use std::time::{Duration, Instant};

use dbapp_databricks::Environment;

use crate::terminal::{Paint, Tone};

/// Where the steps are written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Stdout,
    // Only `dev` writes its steps to stderr, and the shipped binary is built without it.
    #[cfg_attr(not(feature = "emulator"), allow(dead_code))]
    Stderr,
}

/// The step printer of one command run.
#[derive(Debug)]
pub(crate) struct Progress {
    stream: Stream,
    paint: Paint,
    total: usize,
    step: usize,
    /// When the current step started: `done` reports the time since.
    started: Instant,
}

impl Progress {
    /// A printer of `total` steps on `stream`, coloured by the rules for that stream.
    pub(crate) fn new(env: &Environment, stream: Stream, total: usize) -> Self {
        let paint = match stream {
            Stream::Stdout => Paint::stdout(env),
            Stream::Stderr => Paint::stderr(env),
        };
        Self {
            stream,
            paint,
            total,
            step: 0,
            started: Instant::now(),
        }
    }

    /// The colour choice for this printer's stream, for text the command writes beside it.
    pub(crate) fn paint(&self) -> Paint {
        self.paint
    }

    /// Starts the next step: `[n/N] name`.
    pub(crate) fn start(&mut self, name: &str) {
        self.step += 1;
        self.started = Instant::now();
        let line = format!("[{}/{}] {name}", self.step, self.total);
        self.write(&line);
    }

    /// A line about the current step, indented under it.
    pub(crate) fn note(&self, text: &str) {
        self.write(&format!("      {text}"));
    }

    /// The current step succeeded: `✓ text (elapsed)`.
    pub(crate) fn done(&self, text: &str) {
        let line = done_line(self.paint, text, self.started.elapsed());
        self.write(&line);
    }

    fn write(&self, line: &str) {
        // A closed stream is not worth failing a command over: progress is for people, and
        // the command's result is its exit status.
        let _ = match self.stream {
            Stream::Stdout => writeln!(std::io::stdout().lock(), "{line}"),
            Stream::Stderr => writeln!(std::io::stderr().lock(), "{line}"),
        };
    }
}

/// `      ✓ text (1.2 s)`.
fn done_line(paint: Paint, text: &str, elapsed: Duration) -> String {
    format!(
        "      {} {text} ({:.1} s)",
        paint.paint(Tone::Good, "✓"),
        elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_step_says_what_and_how_long_without_colour_off_a_terminal() {
        // Arrange
        let plain = Environment::from_pairs([("TERM", "xterm"), ("NO_COLOR", "1")]);
        let progress = Progress::new(&plain, Stream::Stderr, 3);

        // Act
        let line = done_line(progress.paint(), "migrated", Duration::from_millis(1_240));

        // Assert
        assert_eq!(line, "      ✓ migrated (1.2 s)");
    }
}
