//! The docs' commands and links, checked against the code: every shell command in a fenced block
//! of `README.md` and `docs/*.md` must be one this test knows how to check, and pass the check.
//!
//! - `dbapp …`, `target/*/dbapp …` and `cargo run [-p dbapp] -- …` parse with the real clap
//!   definitions (`dbapp::Cli::try_parse_from`), so a renamed flag or subcommand fails here;
//!   nothing is run.
//! - `cargo run -p dbapp-bench -- …`: the package must exist; its arguments are parsed by the
//!   harness's own unit test (`crates/bench/src/cli.rs`, `documented_commands_parse`), since its
//!   parser lives in that binary.
//! - other `cargo` commands: known subcommands and options only, and every package, test target
//!   and example they name exists.
//! - `curl`: the URL's path and method are a route of the OpenAPI document (`dbapp openapi`) or
//!   one of the few routes outside it ([`OUTSIDE_OPENAPI`]).
//! - `bash`/`sh` scripts, `cd` directories and `npm run` scripts exist.
//! - anything else must be in [`NOT_OURS`], with the reason it is not checked.
//!
//! Blocks are `sh`, `bash`, `shell` (every line a command) and `console` (only `$ ` lines);
//! every fence must name its language, so a command cannot hide in an unlabelled block. Inline
//! code that starts with `dbapp ` is often a fragment (`dbapp emulate --port`) or a synopsis
//! (`[--export]`), so it is held to less: its subcommands and flags must exist. A last test
//! checks that every relative link, and its `#anchor`, resolves. They read files only (and run
//! `dbapp openapi` once), so together they take well under a second.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;

/// Commands this test does not check, each with the reason. Anything missing from this list and
/// from the checked kinds fails the test, so a new kind of command is a decision, not an accident.
const NOT_OURS: &[(&str, &str)] = &[
    (
        "databricks",
        "the Databricks CLI: its commands are Databricks', not ours",
    ),
    (
        "python",
        "a one-line SDK snippet: the official SDK's API, checked in tests/sdk",
    ),
    ("python3", "as python"),
    (
        "psql",
        "the PostgreSQL client, run without arguments after `dbapp token --lakebase`",
    ),
    ("sed", "text editing in a pipeline"),
    (
        "apt-get",
        "Debian's package manager (the package names are .ci/run's)",
    ),
    (
        "export",
        "shell: sets variables (a `$(…)` inside is checked as a command)",
    ),
    (
        "eval",
        "shell: runs its `$(…)`, which is checked as a command",
    ),
    (
        "for",
        "shell syntax: the loop's body is checked as commands",
    ),
    ("done", "shell syntax"),
];

/// Routes the server answers outside its OpenAPI document, with their methods.
const OUTSIDE_OPENAPI: &[(&str, &[&str])] = &[
    ("/", &["GET"]),
    ("/health", &["GET"]),
    ("/ready", &["GET"]),
    ("/metrics", &["GET"]),
    ("/docs", &["GET"]),
    ("/api/openapi.json", &["GET"]),
    // `dbapp dev`'s identity layer only (crates/cli/src/commands/dev.rs).
    ("/_dev/user", &["GET", "POST"]),
];

/// The emulator's control API: any path under it.
const EMULATOR_CONTROL: &str = "/_emulator/";

/// Inline code that is the output of a command rather than a command.
const INLINE_OUTPUT: &[&str] = &[
    "dbapp emulator listening on http://127.0.0.1:<port>",
    "dbapp dev: serving on http://127.0.0.1:8000",
];

#[test]
fn every_documented_command_is_checked_and_valid() {
    // Arrange
    let root = repo_root();
    let openapi = openapi_routes();
    let packages = workspace_packages(&root);
    let mut checker = Checker {
        openapi,
        packages,
        errors: Vec::new(),
        checked: BTreeMap::new(),
    };

    // Act
    for file in doc_files(&root) {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        for block in fenced_blocks(&text) {
            let Some(lang) = block.lang.as_deref() else {
                checker.errors.push(format!(
                    "{name}:{}: a fence without a language (```sh, ```text, …)",
                    block.line
                ));
                continue;
            };
            let console = lang == "console";
            if !(console || ["sh", "bash", "shell"].contains(&lang)) {
                continue;
            }
            let mut cwd = root.clone();
            for (line, command) in command_lines(&block, console) {
                let at = format!("{name}:{line}: `{command}`");
                match split_commands(&command) {
                    Ok(simple) => {
                        for words in simple {
                            checker.check(&at, &words, &mut cwd);
                        }
                    }
                    Err(reason) => checker.errors.push(format!("{at}: {reason}")),
                }
            }
        }
    }

    // Assert
    assert!(
        checker.errors.is_empty(),
        "documented commands that fail their check:\n{}",
        checker.errors.join("\n")
    );
    // A scanner that finds nothing passes vacuously; these are well below today's counts.
    let count = |kind: &str| checker.checked.get(kind).copied().unwrap_or(0);
    assert!(count("dbapp") >= 15, "{:?}", checker.checked);
    assert!(count("cargo") >= 8, "{:?}", checker.checked);
    assert!(count("curl") >= 4, "{:?}", checker.checked);
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    // Arrange
    let root = repo_root();
    let mut errors = Vec::new();
    let mut checked = 0;

    // Act
    for file in doc_files(&root) {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !resolved.exists() {
                errors.push(format!("{name}:{line}: {target}: no such file"));
                continue;
            }
            if let Some(anchor) = anchor
                && resolved.extension().is_some_and(|e| e == "md")
            {
                let slugs = heading_slugs(&std::fs::read_to_string(&resolved).unwrap());
                if !slugs.iter().any(|s| s == anchor) {
                    errors.push(format!(
                        "{name}:{line}: {target}: no heading with that anchor"
                    ));
                }
            }
        }
    }

    // Assert
    assert!(errors.is_empty(), "broken links:\n{}", errors.join("\n"));
    assert!(checked >= 20, "only {checked} relative links found");
}

#[test]
fn inline_dbapp_commands_name_real_subcommands_and_flags() {
    // Arrange
    let root = repo_root();
    let cli = <dbapp::Cli as clap::CommandFactory>::command();
    let mut errors = Vec::new();
    let mut checked = 0;

    // Act
    for file in doc_files(&root) {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        for (line, span) in code_spans(&text) {
            if !span.starts_with("dbapp ") || INLINE_OUTPUT.contains(&span.as_str()) {
                continue;
            }
            checked += 1;
            if let Err(reason) = known_words(&cli, &span) {
                errors.push(format!("{name}:{line}: `{span}`: {reason}"));
            }
        }
    }

    // Assert
    assert!(errors.is_empty(), "inline commands:\n{}", errors.join("\n"));
    assert!(checked >= 50, "only {checked} inline dbapp commands found");
}

/// The inline code spans of a Markdown text outside fenced blocks, with the line each starts on:
/// a run of backticks up to the next run of the same length, within a paragraph, its line breaks
/// read as spaces (CommonMark's rule, less the edge cases the docs do not use).
fn code_spans(text: &str) -> Vec<(usize, String)> {
    let mut in_block = false;
    let mut prose = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        } else if !in_block {
            prose.push_str(line);
        }
        prose.push('\n');
    }
    let c: Vec<char> = prose.chars().collect();
    let run_at = |i: usize| c[i..].iter().take_while(|&&x| x == '`').count();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if c[i] != '`' {
            i += 1;
            continue;
        }
        let run = run_at(i);
        let mut j = i + run;
        let mut close = None;
        while j < c.len() {
            if c[j] == '`' {
                let r = run_at(j);
                if r == run {
                    close = Some(j);
                    break;
                }
                j += r;
            } else if c[j] == '\n' && c.get(j + 1).is_none_or(|&n| n == '\n') {
                break; // a blank line ends the paragraph, and any span in it
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                let body: String = c[i + run..j].iter().collect();
                let line = 1 + c[..i].iter().filter(|&&x| x == '\n').count();
                spans.push((line, body.replace('\n', " ").trim().to_owned()));
                i = j + run;
            }
            None => i += run,
        }
    }
    spans
}

/// The subcommands of `span` exist, and each `--flag`/`-f` is one of the command it follows.
fn known_words(cli: &clap::Command, span: &str) -> Result<(), String> {
    let mut command = cli;
    // `dbapp` must be followed by a subcommand: `dbapp emulte` is a typo, not a fragment.
    let mut expect_subcommand = true;
    for word in span.split_whitespace().skip(1) {
        let word = word.trim_matches(|c| c == '[' || c == ']');
        if let Some(long) = word.strip_prefix("--") {
            let long = long.split('=').next().unwrap_or_default();
            let known = ["help", "version"].contains(&long)
                || command.get_arguments().any(|a| a.get_long() == Some(long));
            if !known {
                return Err(format!("`{}` has no --{long}", command.get_name()));
            }
        } else if let Some(short) = word.strip_prefix('-').and_then(|w| w.chars().next()) {
            let known = short == 'h'
                || command
                    .get_arguments()
                    .any(|a| a.get_short() == Some(short));
            if !known {
                return Err(format!("`{}` has no -{short}", command.get_name()));
            }
        } else if let Some(sub) = command.find_subcommand(word) {
            command = sub;
            expect_subcommand = command.has_subcommands();
            continue;
        } else if expect_subcommand {
            return Err(format!(
                "`{}` has no subcommand `{word}`",
                command.get_name()
            ));
        }
        expect_subcommand = false;
    }
    if expect_subcommand && command.get_name() == "dbapp" {
        return Err("no subcommand".to_owned());
    }
    Ok(())
}

/// What one run of the command check collects.
struct Checker {
    /// OpenAPI paths (templated, `{id}`) with their methods, upper case.
    openapi: Vec<(String, Vec<String>)>,
    /// Workspace package name → its directory.
    packages: BTreeMap<String, PathBuf>,
    errors: Vec<String>,
    /// Commands checked, by kind: the test fails if a kind goes missing altogether.
    checked: BTreeMap<&'static str, usize>,
}

impl Checker {
    fn check(&mut self, at: &str, words: &[String], cwd: &mut PathBuf) {
        // `VAR=value command`: the variables are the shell's business; `sudo` likewise.
        let mut words: Vec<&str> = words
            .iter()
            .map(String::as_str)
            .skip_while(|w| is_assignment(w))
            .collect();
        while matches!(words.first(), Some(&("sudo" | "do" | "then" | "!"))) {
            words.remove(0);
        }
        let Some((&program, args)) = words.split_first() else {
            return; // only assignments
        };
        let result = if program == "dbapp" || is_built_dbapp(program) {
            self.count("dbapp");
            check_dbapp(args)
        } else {
            match program {
                "cargo" => self.check_cargo(args),
                "curl" => self.check_curl(args),
                "bash" | "sh" => self.check_script(args, cwd),
                "cd" => self.check_cd(args, cwd),
                "npm" => self.check_npm(args, cwd),
                other => match NOT_OURS.iter().find(|(name, _)| *name == other) {
                    Some(_) => {
                        self.count("not ours");
                        Ok(())
                    }
                    None => Err(format!(
                        "`{other}`: a kind of command this test does not know; check it \
                         here, or add it to NOT_OURS with the reason"
                    )),
                },
            }
        };
        if let Err(reason) = result {
            self.errors.push(format!("{at}: {reason}"));
        }
    }

    fn count(&mut self, kind: &'static str) {
        *self.checked.entry(kind).or_default() += 1;
    }

    fn check_cargo(&mut self, args: &[&str]) -> Result<(), String> {
        self.count("cargo");
        let Some((&sub, rest)) = args.split_first() else {
            return Err("cargo without a subcommand".to_owned());
        };
        // Options up to `--`; after it, the program's arguments (`run`) or the tool's (`clippy`,
        // `test` filters).
        let (options, program) = match rest.iter().position(|w| *w == "--") {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        let flags: &[&str] = match sub {
            "run" => &[
                "--release",
                "--locked",
                "--offline",
                "-q",
                "--quiet",
                "--no-default-features",
            ],
            "build" | "test" | "clippy" | "check" => &[
                "--release",
                "--locked",
                "--offline",
                "-q",
                "--quiet",
                "--workspace",
                "--all-targets",
                "--lib",
                "--bins",
                "--tests",
                "--no-default-features",
            ],
            "fmt" => &["--all", "--check"],
            other => {
                return Err(format!(
                    "`cargo {other}`: a cargo subcommand this test does not know"
                ));
            }
        };
        let valued = [
            "-p",
            "--package",
            "--bin",
            "--example",
            "--test",
            "--features",
            "--profile",
        ];
        let mut package = None;
        let mut example = None;
        let mut tests = Vec::new();
        let mut i = 0;
        while i < options.len() {
            let option = options[i];
            if flags.contains(&option) {
                i += 1;
                continue;
            }
            if !(valued.contains(&option) && sub != "fmt") {
                return Err(format!("`cargo {sub}` does not take `{option}` here"));
            }
            let Some(&value) = options.get(i + 1) else {
                return Err(format!("`{option}` without its value"));
            };
            match option {
                "-p" | "--package" => {
                    if !self.packages.contains_key(value) {
                        return Err(format!("no package `{value}` in the workspace"));
                    }
                    package = Some(value);
                }
                "--example" => example = Some(value),
                "--test" => tests.push(value),
                _ => {}
            }
            i += 2;
        }
        let dir = self.packages[package.unwrap_or("dbapp")].clone();
        for test in tests {
            let file = dir.join("tests").join(format!("{test}.rs"));
            let declared = std::fs::read_to_string(dir.join("Cargo.toml"))
                .unwrap()
                .contains(&format!("name = \"{test}\""));
            if !(file.exists() || declared) {
                return Err(format!("no test target `{test}` in {}", dir.display()));
            }
        }
        if let Some(example) = example {
            let file = dir.join("examples").join(format!("{example}.rs"));
            if !file.exists() {
                return Err(format!("no example {}", file.display()));
            }
        }
        if sub != "run" {
            return Ok(());
        }
        let program = program.unwrap_or_default();
        match (package.unwrap_or("dbapp"), example) {
            ("dbapp", None) => {
                self.count("dbapp");
                check_dbapp(program)
            }
            // Parsed by crates/bench's `documented_commands_parse`.
            ("dbapp-bench", None) => Ok(()),
            (_, Some(_)) if program.is_empty() => Ok(()),
            (package, _) => Err(format!(
                "arguments for `{package}` that no test checks: {program:?}"
            )),
        }
    }

    fn check_curl(&mut self, args: &[&str]) -> Result<(), String> {
        self.count("curl");
        // The method: -X, else POST when a body is sent, else GET.
        let mut method = "GET".to_owned();
        let mut url = None;
        let valued = [
            "-H", "-d", "--data", "--json", "-c", "-b", "-X", "-o", "-w", "-u", "-m",
        ];
        let mut i = 0;
        while i < args.len() {
            let arg = args[i];
            if valued.contains(&arg) {
                let value = args
                    .get(i + 1)
                    .ok_or(format!("`{arg}` without its value"))?;
                match arg {
                    "-X" => method = (*value).to_owned(),
                    "-d" | "--data" | "--json" if method == "GET" => method = "POST".to_owned(),
                    _ => {}
                }
                i += 2;
            } else if arg.starts_with("http://") || arg.starts_with("https://") {
                url = Some(arg);
                i += 1;
            } else if arg.starts_with('-') && !arg.starts_with("--") && arg.len() > 1 {
                // Flags without a value (-s, -i, -N, -f, -v): only known ones.
                if !arg[1..].chars().all(|c| "sifNvLS".contains(c)) {
                    return Err(format!("curl option `{arg}` is not known to this test"));
                }
                i += 1;
            } else {
                return Err(format!("curl argument `{arg}` is not known to this test"));
            }
        }
        let url = url.ok_or("curl without an http:// URL")?;
        let after_scheme = url.split_once("://").unwrap().1;
        let path = after_scheme.find('/').map_or("/", |at| &after_scheme[at..]);
        let path = path.split(['?', '#']).next().unwrap();
        if path.starts_with(EMULATOR_CONTROL) {
            return Ok(());
        }
        if let Some((_, methods)) = OUTSIDE_OPENAPI.iter().find(|(p, _)| *p == path) {
            return if methods.contains(&method.as_str()) {
                Ok(())
            } else {
                Err(format!("{path} does not answer {method}"))
            };
        }
        let route = self
            .openapi
            .iter()
            .find(|(template, _)| path_matches(template, path));
        match route {
            Some((_, methods)) if methods.contains(&method) => Ok(()),
            Some((template, methods)) => {
                Err(format!("{template} answers {methods:?}, not {method}"))
            }
            None => Err(format!(
                "{path}: no such route in `dbapp openapi`, nor outside it"
            )),
        }
    }

    fn check_script(&mut self, args: &[&str], cwd: &Path) -> Result<(), String> {
        self.count("script");
        let script = args.first().ok_or("bash without a script")?;
        if script.starts_with('-') {
            return Err(format!("`bash {script}`: only script files are checked"));
        }
        exists(cwd, script)
    }

    fn check_cd(&mut self, args: &[&str], cwd: &mut PathBuf) -> Result<(), String> {
        let dir = args.first().ok_or("cd without a directory")?;
        exists(cwd, dir)?;
        *cwd = cwd.join(dir);
        Ok(())
    }

    fn check_npm(&mut self, args: &[&str], cwd: &Path) -> Result<(), String> {
        self.count("npm");
        let manifest = cwd.join("package.json");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            return Err(format!(
                "npm where there is no package.json: {}",
                cwd.display()
            ));
        };
        let package: serde_json::Value = serde_json::from_str(&text).unwrap();
        match args {
            ["ci" | "install", ..] => Ok(()),
            ["run", script, ..] if package["scripts"][*script].is_string() => Ok(()),
            ["run", script, ..] => Err(format!(
                "no npm script `{script}` in {}",
                manifest.display()
            )),
            _ => Err(format!("npm {args:?}: not known to this test")),
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `README.md` and every `docs/*.md`, in a stable order.
fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files.insert(0, root.join("README.md"));
    files
}

/// A fenced code block: its language (`None` when the fence names none), the line of its opening
/// fence, and its lines with their numbers.
struct Block {
    lang: Option<String>,
    line: usize,
    lines: Vec<(usize, String)>,
}

fn fenced_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match open.take() {
                Some(block) => blocks.push(block),
                None => {
                    let lang = info.split_whitespace().next().map(str::to_owned);
                    open = Some(Block {
                        lang,
                        line: i + 1,
                        lines: Vec::new(),
                    });
                }
            }
        } else if let Some(block) = &mut open {
            block.lines.push((i + 1, line.trim().to_owned()));
        }
    }
    blocks
}

/// The commands of a block with the line each starts on: `\` continuations joined, a `$ `
/// prompt stripped (in `console` blocks only prompted lines are commands; the rest is output),
/// comment-only and empty lines skipped.
fn command_lines(block: &Block, console: bool) -> Vec<(usize, String)> {
    let mut commands = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (number, line) in &block.lines {
        let (start, text) = match pending.take() {
            Some((start, so_far)) => (start, format!("{so_far} {line}")),
            None => {
                let line = match (console, line.strip_prefix("$ ")) {
                    (_, Some(command)) => command,
                    (true, None) => continue,
                    (false, None) => line.as_str(),
                };
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                (*number, line.to_owned())
            }
        };
        match text.strip_suffix('\\') {
            Some(head) => pending = Some((start, head.trim_end().to_owned())),
            None => commands.push((start, text)),
        }
    }
    commands.extend(pending);
    commands
}

/// A command line split the way a shell would into simple commands of words, in the subset the
/// docs use: quotes, `\`, comments, `|`, `;`, `&`, `&&`, `||`, `( … )`, redirections (their
/// targets dropped) and `$( … )`, whose inside is returned as commands of its own (the word
/// keeps a marker). `<name>` placeholders stay inside their word.
fn split_commands(line: &str) -> Result<Vec<Vec<String>>, String> {
    let chars: Vec<char> = line.chars().collect();
    let mut commands: Vec<Vec<String>> = Vec::new();
    let mut inner: Vec<Vec<String>> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut drop_next = false;
    let mut i = 0;
    let finish_word = |word: &mut Option<String>, words: &mut Vec<String>, drop: &mut bool| {
        if let Some(w) = word.take() {
            if *drop {
                *drop = false;
            } else {
                words.push(w);
            }
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => finish_word(&mut word, &mut words, &mut drop_next),
            '#' if word.is_none() => break,
            '\\' => {
                let next = chars.get(i + 1).ok_or("a trailing backslash")?;
                word.get_or_insert_default().push(*next);
                i += 1;
            }
            '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '\'')
                    .ok_or("an unclosed single quote")?;
                word.get_or_insert_default()
                    .extend(&chars[i + 1..i + 1 + end]);
                i += end + 1;
            }
            '"' => {
                let w = word.get_or_insert_default();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("an unclosed double quote".to_owned()),
                        Some('"') => break,
                        Some('$') if chars.get(i + 1) == Some(&'(') => {
                            let (body, end) = substitution(&chars, i + 2)?;
                            inner.extend(split_commands(&body)?);
                            w.push_str("$(…)");
                            i = end;
                        }
                        Some('\\') => {
                            w.extend(chars.get(i + 1));
                            i += 1;
                        }
                        Some(&c) => w.push(c),
                    }
                    i += 1;
                }
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                let (body, end) = substitution(&chars, i + 2)?;
                inner.extend(split_commands(&body)?);
                word.get_or_insert_default().push_str("$(…)");
                i = end;
            }
            '<' => {
                // A `<name>` placeholder (letters, digits, spaces, `_.-`) is text; anything else
                // is an input redirection, whose source is dropped.
                let close = chars[i + 1..].iter().position(|&c| c == '>');
                let placeholder = close.filter(|&n| {
                    n > 0
                        && chars[i + 1..i + 1 + n]
                            .iter()
                            .all(|c| c.is_alphanumeric() || " _.-".contains(*c))
                });
                match placeholder {
                    Some(n) => {
                        word.get_or_insert_default().extend(&chars[i..i + 2 + n]);
                        i += n + 1;
                    }
                    None => {
                        finish_word(&mut word, &mut words, &mut drop_next);
                        drop_next = true;
                    }
                }
            }
            '>' => {
                // `2>` names a descriptor, not a word; `>&1` needs no target.
                if word
                    .as_deref()
                    .is_some_and(|w| w.chars().all(|c| c.is_ascii_digit()))
                {
                    word = None;
                }
                finish_word(&mut word, &mut words, &mut drop_next);
                if chars.get(i + 1) == Some(&'>') {
                    i += 1;
                }
                if chars.get(i + 1) == Some(&'&') {
                    i += 1;
                    while chars.get(i + 1).is_some_and(char::is_ascii_digit) {
                        i += 1;
                    }
                } else {
                    drop_next = true;
                }
            }
            '|' | ';' | '&' | '(' | ')' => {
                finish_word(&mut word, &mut words, &mut drop_next);
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            c => word.get_or_insert_default().push(c),
        }
        i += 1;
    }
    finish_word(&mut word, &mut words, &mut drop_next);
    if drop_next {
        return Err("a redirection without its target".to_owned());
    }
    if !words.is_empty() {
        commands.push(words);
    }
    commands.extend(inner);
    Ok(commands)
}

/// The text of a `$( … )` whose body starts at `from`, and the index of its closing `)`.
fn substitution(chars: &[char], from: usize) -> Result<(String, usize), String> {
    let mut depth = 1;
    let mut quote = None;
    for (i, &c) in chars.iter().enumerate().skip(from) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return Ok((chars[from..i].iter().collect(), i));
                }
            }
            _ => {}
        }
    }
    Err("an unclosed $(".to_owned())
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// `target/debug/dbapp`, `target/release/dbapp`, `./target/…/dbapp`.
fn is_built_dbapp(program: &str) -> bool {
    let program = program.strip_prefix("./").unwrap_or(program);
    program.starts_with("target/") && program.ends_with("/dbapp")
}

/// The arguments parse with `dbapp`'s own definitions; `--help` and `--version` count as parsed.
fn check_dbapp(args: &[&str]) -> Result<(), String> {
    match dbapp::Cli::try_parse_from(std::iter::once("dbapp").chain(args.iter().copied())) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(format!(
            "dbapp does not accept it: {}",
            e.render().to_string().lines().next().unwrap_or_default()
        )),
    }
}

fn exists(cwd: &Path, path: &str) -> Result<(), String> {
    if cwd.join(path).exists() {
        Ok(())
    } else {
        Err(format!("{path} does not exist (from {})", cwd.display()))
    }
}

/// `/api/things/{id}` matches `/api/things/42`, `/api/things/<id>` and `/api/things/…`.
fn path_matches(template: &str, path: &str) -> bool {
    let template: Vec<&str> = template.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

/// The paths of `dbapp openapi` with their methods.
fn openapi_routes() -> Vec<(String, Vec<String>)> {
    let output = crate::dbapp().arg("openapi").output().expect("dbapp runs");
    assert!(output.status.success());
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .map(|m| m.to_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// Package name → directory, for every `crates/*/Cargo.toml`.
fn workspace_packages(root: &Path) -> BTreeMap<String, PathBuf> {
    let mut packages = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let name = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .and_then(|rest| rest.strip_suffix('"'))
            .expect("a package name");
        packages.insert(name.to_owned(), dir);
    }
    packages
}

/// `[text](target)` links outside code blocks and code spans, with their line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut in_block = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        // Code spans are dropped first: `[a](b)` inside backticks is not a link.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            found.push((i + 1, after[..end].trim().to_owned()));
            rest = &after[end..];
        }
    }
    found
}

/// The anchors GitHub gives a file's headings: lower case, letters, digits, `-` and `_` kept,
/// spaces made `-`, everything else dropped; a repeated heading gets `-1`, `-2`, ….
fn heading_slugs(text: &str) -> Vec<String> {
    let mut slugs = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let base: String = title
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let seen = counts.entry(base.clone()).or_insert(0);
        slugs.push(if *seen == 0 {
            base
        } else {
            format!("{base}-{seen}")
        });
        *seen += 1;
    }
    slugs
}

#[test]
fn the_shell_splitter_handles_what_the_docs_use() {
    // Act
    let split = |line: &str| split_commands(line).unwrap();

    // Assert
    assert_eq!(
        split("A=1 dbapp emulate --print-fixture | sed 's/a b/c/' > /tmp/f.json # note"),
        [
            vec!["A=1", "dbapp", "emulate", "--print-fixture"],
            vec!["sed", "s/a b/c/"]
        ]
    );
    assert_eq!(
        split(r#"eval "$(dbapp token --lakebase --export)"; psql"#),
        [
            vec!["eval", "$(…)"],
            vec!["psql"],
            vec!["dbapp", "token", "--lakebase", "--export"]
        ]
    );
    assert_eq!(
        split("dbapp deploy --var warehouse_id=<warehouse id> &"),
        [vec![
            "dbapp",
            "deploy",
            "--var",
            "warehouse_id=<warehouse id>"
        ]]
    );
    assert_eq!(
        split("(cd web && npm ci) 2>&1"),
        [vec!["cd", "web"], vec!["npm", "ci"]]
    );
    assert!(check_dbapp(&["dev", "--lakebase"]).is_ok());
    assert!(
        check_dbapp(&["dev", "--lakebse"]).is_err(),
        "a misspelt flag fails"
    );
    assert!(check_dbapp(&["dev", "--lakebase", "--workspace", "https://x"]).is_err());
    assert!(path_matches("/api/queries/{name}", "/api/queries/<name>"));
    assert!(!path_matches("/api/queries/{name}", "/api/queries"));
}
