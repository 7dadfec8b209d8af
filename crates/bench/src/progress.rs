//! Progress of a run on stderr: one line as each scenario starts and one as it ends, with the
//! time it took and the time since the run began, so a run of many minutes shows where it is and
//! which scenario is slow. The report itself goes to stdout (`report`).
//!
//! The lines are plain text, never coloured, so they read the same in a terminal, a pipe or a CI
//! log, and `NO_COLOR` has nothing to turn off. They follow the shape of `dbapp`'s own step lines
//! (`[n/N] name`, then the outcome with its time); that printer lives in the `dbapp` crate, which
//! this harness deliberately does not link (it runs `dbapp` as a separate process).

use std::time::{Duration, Instant};

/// The step printer of one run.
#[derive(Debug)]
pub(crate) struct Progress {
    total: usize,
    index: usize,
    run_started: Instant,
    /// When the current scenario started: its end line reports the time since.
    started: Instant,
}

/// How a scenario ended.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    /// It ran; `rows` rows go to the report.
    Done { rows: usize },
    /// It could not be set up or run; the failure is listed with the report.
    Failed,
}

impl Progress {
    /// A printer for `total` scenarios, timing the run from now.
    pub(crate) fn new(total: usize) -> Self {
        let now = Instant::now();
        Self {
            total,
            index: 0,
            run_started: now,
            started: now,
        }
    }

    /// The next scenario starts.
    pub(crate) fn start(&mut self, name: &str) {
        self.index += 1;
        self.started = Instant::now();
        eprintln!(
            "{}",
            start_line(self.index, self.total, name, self.run_started.elapsed())
        );
    }

    /// The current scenario ended.
    pub(crate) fn finish(&self, name: &str, outcome: Outcome) {
        eprintln!(
            "{}",
            finish_line(
                self.index,
                self.total,
                name,
                outcome,
                self.started.elapsed(),
                self.run_started.elapsed()
            )
        );
    }
}

/// A step outside the scenarios (the release build of `dbapp`): its start line.
pub(crate) fn step_started(what: &str) -> Instant {
    eprintln!("dbapp-bench: {what} …");
    Instant::now()
}

/// The same step's end line.
pub(crate) fn step_done(what: &str, started: Instant) {
    eprintln!("dbapp-bench: {what} done in {}", seconds(started.elapsed()));
}

fn start_line(index: usize, total: usize, name: &str, since_run: Duration) -> String {
    format!(
        "dbapp-bench [{index}/{total}] {name}: started at {} into the run",
        clock(since_run)
    )
}

fn finish_line(
    index: usize,
    total: usize,
    name: &str,
    outcome: Outcome,
    took: Duration,
    since_run: Duration,
) -> String {
    let took = seconds(took);
    let at = clock(since_run);
    let head = format!("dbapp-bench [{index}/{total}] {name}:");
    match outcome {
        Outcome::Done { rows: 1 } => format!("{head} done in {took}, 1 row ({at} into the run)"),
        Outcome::Done { rows } => format!("{head} done in {took}, {rows} rows ({at} into the run)"),
        Outcome::Failed => {
            format!("{head} FAILED after {took}, listed with the report ({at} into the run)")
        }
    }
}

/// `12.3 s`.
fn seconds(elapsed: Duration) -> String {
    format!("{:.1} s", elapsed.as_secs_f64())
}

/// `m:ss`, the time since the run began.
fn clock(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    format!("{}:{:02}", secs / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scenario_gets_a_start_and_an_end_line_with_its_times() {
        // Act
        let start = start_line(2, 15, "me-cached", Duration::from_secs(83));
        let done = finish_line(
            2,
            15,
            "me-cached",
            Outcome::Done { rows: 1 },
            Duration::from_millis(24_340),
            Duration::from_secs(107),
        );
        let failed = finish_line(
            3,
            15,
            "rotation",
            Outcome::Failed,
            Duration::from_millis(900),
            Duration::from_secs(108),
        );

        // Assert
        assert_eq!(
            start,
            "dbapp-bench [2/15] me-cached: started at 1:23 into the run"
        );
        assert_eq!(
            done,
            "dbapp-bench [2/15] me-cached: done in 24.3 s, 1 row (1:47 into the run)"
        );
        assert_eq!(
            failed,
            "dbapp-bench [3/15] rotation: FAILED after 0.9 s, listed with the report (1:48 into the run)"
        );
    }
}
