//! The commands of `dbapp` (`shared/DESIGN.md`, "CLI"): the clap definitions in `commands`, one
//! module per subcommand, the deployment bundle's rules (`bundle`), the checks of `doctor`, and
//! how output is written for people (`terminal` for colour, `progress` for timed steps). The
//! binary (`main.rs`) only parses and runs; tests parse command lines with [`Cli`] itself.

mod bundle;
mod commands;
mod doctor;
mod progress;
mod terminal;

pub use commands::Cli;
