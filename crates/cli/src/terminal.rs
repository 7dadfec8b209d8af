//! How commands write progress and logs for people: colour only when the stream is a terminal, `NO_COLOR` is
//! unset or empty (<https://no-color.org>) and `TERM` is not `dumb`; plain text otherwise, so
//! piped output and CI logs carry no escape codes. The decision is made once per command from
//! the environment snapshot.

use std::io::IsTerminal;

use dbapp_databricks::Environment;

/// A colour of the few the CLI uses.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tone {
    /// Done, fine.
    Good,
    /// Needs a person's attention.
    Attention,
    /// Failed.
    Bad,
    /// Secondary text (explanations).
    Quiet,
}

/// Whether to colour stdout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paint {
    colour: bool,
}

impl Paint {
    /// The choice for stdout in this environment.
    pub(crate) fn stdout(env: &Environment) -> Self {
        Self::new(env, std::io::stdout().is_terminal())
    }

    /// The choice for stderr (the human-readable logs) in this environment.
    pub(crate) fn stderr(env: &Environment) -> Self {
        Self::new(env, std::io::stderr().is_terminal())
    }

    /// Whether this stream gets colour.
    pub(crate) fn colour(self) -> bool {
        self.colour
    }

    fn new(env: &Environment, terminal: bool) -> Self {
        // `Environment::get` treats an empty value as unset, as NO_COLOR's definition does.
        let colour =
            terminal && !env.is_set("NO_COLOR") && env.get("TERM").as_deref() != Some("dumb");
        Self { colour }
    }

    /// `text` in `tone`, or as it is without colour.
    pub(crate) fn paint(self, tone: Tone, text: &str) -> String {
        if !self.colour {
            return text.to_owned();
        }
        let code = match tone {
            Tone::Good => "32",
            Tone::Attention => "33",
            Tone::Bad => "31",
            Tone::Quiet => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let plain = Environment::from_pairs([("TERM", "xterm")]);
        assert!(
            Paint::new(&plain, true)
                .paint(Tone::Good, "ok")
                .contains("\x1b[32m")
        );
        assert_eq!(Paint::new(&plain, false).paint(Tone::Good, "ok"), "ok");
        let no_color = Environment::from_pairs([("TERM", "xterm"), ("NO_COLOR", "1")]);
        assert_eq!(Paint::new(&no_color, true).paint(Tone::Good, "ok"), "ok");
        let dumb = Environment::from_pairs([("TERM", "dumb")]);
        assert_eq!(Paint::new(&dumb, true).paint(Tone::Bad, "x"), "x");
    }
}
