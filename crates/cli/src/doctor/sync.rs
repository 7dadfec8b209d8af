//! `deploy.sync`: which files `databricks bundle deploy` would upload, modelled on the Databricks
//! CLI's sync rules (`shared/UPSTREAM-2.md` §4.3), and whether those include every file the start
//! command in app.yaml names.
//!
//! The rules, as the CLI applies them:
//! - uploaded = (a walk of the bundle root that honours ignore rules) ∪ `sync.include` −
//!   `sync.exclude`; symbolic links and other non-regular files are never uploaded;
//! - ignore rules come from the git worktree root, or the bundle root when there is no `.git` (the
//!   rules apply outside a repository too): `core.excludesFile`, `.git`, `.git/info/exclude`
//!   (and `excludes`, see below), the root `.gitignore`, `.databricks`, and the `.gitignore` of
//!   every directory on a path, whose patterns are relative to that directory. A path is ignored
//!   when any one file's patterns match it (a deeper file's `!pattern` does not re-include what a
//!   shallower file ignores), and ignored directories are not descended into;
//! - `sync.include` and `sync.exclude` are gitignore-syntax globs relative to the bundle root; an
//!   include reaches into ignored directories, and an exclude wins over everything.
//!
//! Approximations: the ignore crate's gitignore matching stands in for go-gitignore, which the CLI
//! uses; `core.excludesFile` is found the ignore crate's way (which also reads `GIT_CONFIG_GLOBAL`
//! and the system configuration, and not the repository's `.git/config`); both
//! `.git/info/exclude` and `.git/info/excludes` are read. Not modelled: `sync.paths` (the
//! default, the bundle root, is assumed), per-target `sync` overrides, and the bundle's internal
//! state directory.

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder, gitconfig_excludes_path};
use serde_json::Value;

use super::Check;

/// Databricks Apps refuses to deploy a file over 10 MiB (`File is larger than 10485760 bytes`).
pub(crate) const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

const ID: &str = "deploy.sync";

/// The pattern that decided a path's fate, and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    /// The file or setting the pattern comes from, e.g. `deploy/app/.gitignore`.
    source: String,
    /// 1-based line of `source`, when it is a file.
    line: Option<usize>,
    pattern: String,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {line}: {}", self.source, self.pattern),
            None => write!(f, "{}: {}", self.source, self.pattern),
        }
    }
}

/// Whether a path would be uploaded, and by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No ignore rule matches it.
    Uploaded,
    /// Ignored, but `sync.include` brings it back.
    Included(Rule),
    /// Ignored by this rule (a `.gitignore` line or one the CLI always applies).
    Ignored(Rule),
    /// Removed by this `sync.exclude` pattern.
    Excluded(Rule),
}

impl Verdict {
    pub(crate) fn uploaded(&self) -> bool {
        matches!(self, Self::Uploaded | Self::Included(_))
    }
}

/// One set of gitignore patterns: an ignore file, a `sync` list, or the CLI's built-in rules.
struct Patterns {
    source: String,
    matcher: Gitignore,
    /// The file's lines, to name the line a pattern is on; `None` for settings.
    lines: Option<Vec<String>>,
}

impl Patterns {
    fn from_lines(
        root: &Path,
        source: String,
        lines: &[&str],
        numbered: bool,
    ) -> Result<Self, String> {
        let mut builder = GitignoreBuilder::new(root);
        for line in lines {
            let line = line.trim_end_matches('\r');
            builder
                .add_line(None, line)
                .map_err(|e| format!("{source}: {line:?} is not a valid pattern: {e}"))?;
        }
        let matcher = builder
            .build()
            .map_err(|e| format!("{source}: invalid patterns: {e}"))?;
        Ok(Self {
            source,
            matcher,
            lines: numbered.then(|| lines.iter().map(|l| (*l).to_owned()).collect()),
        })
    }

    /// The patterns of the file at `path` (shown as `shown`), or `None` when it cannot be read
    /// (usually: it does not exist).
    fn from_file(root: &Path, path: &Path, shown: String) -> Result<Option<Self>, String> {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Ok(None);
        };
        let lines: Vec<&str> = text.lines().collect();
        Self::from_lines(root, shown, &lines, true).map(Some)
    }

    /// The rule that ignores `path` (relative to this set's root), if any; a matching `!pattern`
    /// keeps it.
    fn ignores(&self, path: &Path, is_dir: bool) -> Option<Rule> {
        self.rule(self.matcher.matched(path, is_dir))
    }

    /// Like [`Self::ignores`], but a pattern that names a parent directory matches too, as in the
    /// CLI's include and exclude lists (their walk never prunes).
    fn covers(&self, path: &Path) -> Option<Rule> {
        self.rule(self.matcher.matched_path_or_any_parents(path, false))
    }

    fn rule(&self, matched: Match<&ignore::gitignore::Glob>) -> Option<Rule> {
        let Match::Ignore(glob) = matched else {
            return None;
        };
        let line = self.lines.as_ref().and_then(|lines| {
            lines
                .iter()
                .rposition(|l| l.trim_end() == glob.original())
                .map(|i| i + 1)
        });
        Some(Rule {
            source: self.source.clone(),
            line,
            pattern: glob.original().to_owned(),
        })
    }
}

/// The CLI's sync rules for one bundle.
pub(crate) struct SyncRules {
    bundle_root: PathBuf,
    /// How to show the bundle root (as the user named it).
    shown_root: PathBuf,
    worktree_root: PathBuf,
    /// The bundle root relative to the worktree root (empty when they are the same).
    target: PathBuf,
    /// The rules of the worktree root, which the CLI loads up front.
    root_rules: Vec<Patterns>,
    /// The `.gitignore` of each directory below the worktree root, read on first use.
    nested: HashMap<PathBuf, Option<Patterns>>,
    include: Option<Patterns>,
    exclude: Option<Patterns>,
}

impl SyncRules {
    /// The rules for the bundle in `bundle_dir`, with `sync` from its databricks.yml and the
    /// machine's `core.excludesFile` (`global_excludes`; tests pass `None` so that the
    /// developer's own git configuration cannot change their outcome).
    pub(crate) fn new(
        bundle_dir: &Path,
        bundle: &Value,
        global_excludes: Option<&Path>,
    ) -> Result<Self, String> {
        let bundle_root = std::fs::canonicalize(bundle_dir)
            .map_err(|e| format!("cannot resolve {}: {e}", bundle_dir.display()))?;
        // A `.git` file counts as well as a directory: a linked worktree has a file.
        let worktree_root = bundle_root
            .ancestors()
            .find(|dir| dir.join(".git").exists())
            .unwrap_or(&bundle_root)
            .to_path_buf();
        let target = bundle_root
            .strip_prefix(&worktree_root)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let mut rules = Self {
            shown_root: bundle_dir.to_path_buf(),
            bundle_root,
            worktree_root,
            target,
            root_rules: Vec::new(),
            nested: HashMap::new(),
            include: None,
            exclude: None,
        };
        let root = rules.worktree_root.clone();
        if let Some(path) = global_excludes
            && let Some(p) = Patterns::from_file(&root, path, path.display().to_string())?
        {
            rules.root_rules.push(p);
        }
        rules.root_rules.push(Patterns::from_lines(
            &root,
            "always ignored by the Databricks CLI".to_owned(),
            &[".git"],
            false,
        )?);
        // §4.3 and git name `.git/info/exclude`; the CLI's source (libs/git/repository.go) opens
        // `.git/info/excludes`. Both are read, so doctor errs towards reporting a file as left out.
        for file in [".git/info/exclude", ".git/info/excludes", ".gitignore"] {
            let shown = rules.show(Path::new(file));
            if let Some(p) = Patterns::from_file(&root, &root.join(file), shown)? {
                rules.root_rules.push(p);
            }
        }
        rules.root_rules.push(Patterns::from_lines(
            &root,
            "always ignored by the Databricks CLI".to_owned(),
            &[".databricks"],
            false,
        )?);
        let list = |key: &str| -> Result<Option<Patterns>, String> {
            let Some(items) = bundle["sync"][key].as_array() else {
                return Ok(None);
            };
            // The CLI cleans each pattern as a path first (`./app/x` is `app/x`).
            let lines: Vec<&str> = items
                .iter()
                .filter_map(Value::as_str)
                .map(|l| l.strip_prefix("./").unwrap_or(l))
                .collect();
            let source = format!("databricks.yml sync.{key}");
            Patterns::from_lines(&rules.bundle_root, source, &lines, false).map(Some)
        };
        let include = list("include")?;
        let exclude = list("exclude")?;
        rules.include = include;
        rules.exclude = exclude;
        Ok(rules)
    }

    /// [`SyncRules::new`] with this machine's `core.excludesFile`, as the CLI would read it.
    pub(crate) fn for_this_machine(bundle_dir: &Path, bundle: &Value) -> Result<Self, String> {
        Self::new(bundle_dir, bundle, gitconfig_excludes_path().as_deref())
    }

    /// A path relative to the worktree root, as the user would recognize it.
    fn show(&self, from_worktree: &Path) -> String {
        match from_worktree.strip_prefix(&self.target) {
            Ok(inside) => self.shown_root.join(inside).display().to_string(),
            Err(_) => self.worktree_root.join(from_worktree).display().to_string(),
        }
    }

    /// The ignore rule that matches `path` (relative to the worktree root) itself, checking the
    /// rules of every directory on its path, as the CLI's `Repository.Ignore` does.
    fn ignore_rule(&mut self, path: &Path, is_dir: bool) -> Option<Rule> {
        let parts: Vec<&std::ffi::OsStr> = path.iter().collect();
        for i in 0..parts.len() {
            let prefix: PathBuf = parts[..i].iter().collect();
            let suffix: PathBuf = parts[i..].iter().collect();
            let found = if i == 0 {
                self.root_rules
                    .iter()
                    .find_map(|rules| rules.ignores(&suffix, is_dir))
            } else {
                if !self.nested.contains_key(&prefix) {
                    let dir = self.worktree_root.join(&prefix);
                    let shown = self.show(&prefix.join(".gitignore"));
                    // An unreadable or invalid .gitignore is treated as absent here; the CLI
                    // would stop with an error, which is not the question this check answers.
                    let loaded = Patterns::from_file(&dir, &dir.join(".gitignore"), shown)
                        .ok()
                        .flatten();
                    self.nested.insert(prefix.clone(), loaded);
                }
                self.nested[&prefix]
                    .as_ref()
                    .and_then(|rules| rules.ignores(&suffix, is_dir))
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Whether the regular file at `path` (relative to the bundle root; it need not exist)
    /// would be uploaded.
    pub(crate) fn verdict(&mut self, path: &Path) -> Verdict {
        if let Some(rule) = self.exclude.as_ref().and_then(|e| e.covers(path)) {
            return Verdict::Excluded(rule);
        }
        // The walk prunes ignored directories, so the first ignored directory on the way down
        // decides. The CLI also asks about the bundle root itself, and its patterns match a
        // directory's descendants, so the directories above the bundle root count as well.
        let full = self.target.join(path);
        let mut ignored = None;
        let mut dir = PathBuf::new();
        for part in full.parent().into_iter().flat_map(Path::iter) {
            dir.push(part);
            ignored = self.ignore_rule(&dir, true);
            if ignored.is_some() {
                break;
            }
        }
        let ignored = ignored.or_else(|| self.ignore_rule(&full, false));
        match ignored {
            None => Verdict::Uploaded,
            Some(rule) => match self.include.as_ref().and_then(|i| i.covers(path)) {
                Some(_) => Verdict::Included(rule),
                None => Verdict::Ignored(rule),
            },
        }
    }

    /// Every file the bundle would upload, relative to the bundle root, with its size.
    pub(crate) fn uploaded(&mut self) -> Vec<(PathBuf, u64)> {
        let mut out = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(self.bundle_root.join(&dir)) else {
                continue;
            };
            let mut entries: Vec<_> = entries.flatten().collect();
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let path = dir.join(entry.file_name());
                // symlink_metadata: the CLI skips symbolic links rather than following them.
                let Ok(meta) = entry.path().symlink_metadata() else {
                    continue;
                };
                if meta.is_dir() {
                    // Without includes nothing under an ignored directory can be uploaded, so
                    // the walk may prune it as the CLI does.
                    let full = self.target.join(&path);
                    if self.include.is_none() && self.ignore_rule(&full, true).is_some() {
                        continue;
                    }
                    stack.push(path);
                } else if meta.is_file() && self.verdict(&path).uploaded() {
                    out.push((path, meta.len()));
                }
            }
        }
        out.sort();
        out
    }
}

/// The files of the app's directory that the start command names, relative to that directory:
/// arguments that are relative paths (`./dbapp`, `bin/run`), look like file names (`dbapp.gz`,
/// `app.py`) or name a file that is there. A `sh -c`/`bash -c` script is split into words first.
pub(crate) fn start_files(command: &Value, app_dir: &Path) -> Vec<PathBuf> {
    let mut args: Vec<&str> = command
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let base = |arg: &str| arg.rsplit('/').next().unwrap_or(arg).to_owned();
    // `env bash -c …` runs the same script.
    if args.first().is_some_and(|a| base(a) == "env") {
        args.remove(0);
    }
    let shell = matches!(
        args.first().map(|a| base(a)).as_deref(),
        Some("sh" | "bash" | "dash")
    ) && args.get(1) == Some(&"-c");
    // Files the script writes (`gzip -dc dbapp.gz > dbapp`) are made at start, not uploaded.
    let mut outputs: Vec<PathBuf> = Vec::new();
    let words: Vec<String> = if shell {
        let script = args.get(2).copied().unwrap_or_default();
        // Operators and redirections separate words; quotes only delimit them.
        let mut words = Vec::new();
        let mut redirected = false;
        for word in script
            .replace([';', '&', '|', '<', '(', ')', '`'], " ")
            .replace('>', " > ")
            .split_whitespace()
        {
            if word == ">" {
                redirected = true;
                continue;
            }
            let word = word.trim_matches(['"', '\'']).to_owned();
            if std::mem::take(&mut redirected) {
                outputs.extend(normalize(Path::new(&word)));
            } else {
                words.push(word);
            }
        }
        words
    } else {
        args.iter().map(|a| (*a).to_owned()).collect()
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for word in words {
        // Options, absolute paths (not part of the upload: `/tmp/dbapp`), variables, assignments
        // and `module:attr` or URL forms are not files of the app's directory.
        if word.is_empty()
            || word.starts_with(['-', '/', '~'])
            || word.contains(['$', '=', ':', '*', '?'])
            || word.contains(char::is_whitespace)
        {
            continue;
        }
        let path = normalize(Path::new(&word));
        let Some(path) = path else { continue };
        let file_like =
            word.contains('/') || has_file_extension(&path) || app_dir.join(&path).is_file();
        if file_like
            && !app_dir.join(&path).is_dir()
            && !files.contains(&path)
            && !outputs.contains(&path)
        {
            files.push(path);
        }
    }
    files
}

/// Whether `path` ends like a file name: an extension of letters and digits that starts with a
/// letter (`dbapp.gz`, `app.py`), or a part number after one (`dbapp.gz.0`, cut by `split`);
/// not a number such as `1.5`.
fn has_file_extension(path: &Path) -> bool {
    let word_extension = |e: &str| {
        e.starts_with(|c: char| c.is_ascii_alphabetic())
            && e.chars().all(|c| c.is_ascii_alphanumeric())
    };
    let Some(extension) = path.extension().and_then(|e| e.to_str()) else {
        return false;
    };
    word_extension(extension)
        || (extension.chars().all(|c| c.is_ascii_digit())
            && Path::new(path.file_stem().unwrap_or_default())
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(word_extension))
}

/// `path` without `.` components; `None` when it climbs out of its directory or is empty.
pub(crate) fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// `deploy.sync`: `bundle deploy` uploads every file the start command names, and no uploaded
/// file of the app is over the Apps size limit.
pub(crate) fn check(bundle_dir: &Path, bundle: &Value, app: &Value, command: &Value) -> Check {
    // The machine's global excludes: this process's git configuration, as the CLI reads it.
    let global_excludes = gitconfig_excludes_path();
    check_with(bundle_dir, bundle, app, command, global_excludes.as_deref())
}

/// [`check`] with the global excludes file given.
fn check_with(
    bundle_dir: &Path,
    bundle: &Value,
    app: &Value,
    command: &Value,
    global_excludes: Option<&Path>,
) -> Check {
    let Some(source) = app["source_code_path"].as_str() else {
        return Check::skip(ID, "the app has no source_code_path (see manifest.bundle)");
    };
    let Some(app_rel) = normalize(Path::new(source)).or_else(|| {
        // `.`: the app is the bundle root.
        (Path::new(source)
            .components()
            .all(|c| c == Component::CurDir))
        .then(PathBuf::new)
    }) else {
        return Check::skip(
            ID,
            format!("source_code_path {source} is outside the bundle directory: not modelled"),
        );
    };
    let mut rules = match SyncRules::new(bundle_dir, bundle, global_excludes) {
        Ok(rules) => rules,
        Err(e) => {
            return Check::fail(
                ID,
                e,
                "correct the pattern named (gitignore syntax); the CLI cannot sync with it either",
            );
        }
    };
    let app_dir = bundle_dir.join(&app_rel);
    let uploaded = rules.uploaded();
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let mut missing = Vec::new();
    let mut named = Vec::new();
    for file in start_files(command, &app_dir) {
        // Patterns are relative to the bundle root; messages show the path as the user named it.
        let rel = app_rel.join(&file);
        let shown = bundle_dir.join(&rel).display().to_string();
        let pattern = rel.display();
        match rules.verdict(&rel) {
            Verdict::Ignored(rule) => {
                problems.push(format!(
                    "{shown}, which app.yaml's command needs, would not be uploaded: {rule}"
                ));
                fixes.push(format!(
                    "add `sync: {{include: [{pattern}]}}` to databricks.yml (an include wins \
                     over .gitignore, so the file can stay out of git)"
                ));
            }
            Verdict::Excluded(rule) => {
                problems.push(format!(
                    "{shown}, which app.yaml's command needs, would not be uploaded: {rule}"
                ));
                fixes.push(format!(
                    "narrow sync.exclude in databricks.yml so it no longer matches {shown}"
                ));
            }
            _ if bundle_dir.join(&rel).is_symlink() => {
                problems.push(format!(
                    "{shown}, which app.yaml's command needs, is a symbolic link: the CLI uploads \
                     regular files only"
                ));
                fixes.push(format!("replace the link {shown} with the file itself"));
            }
            verdict => {
                if !bundle_dir.join(&rel).is_file() {
                    missing.push(shown.clone());
                }
                named.push(match verdict {
                    Verdict::Included(rule) => {
                        format!("{shown} (ignored by {rule}; uploaded by sync.include)")
                    }
                    _ => shown,
                });
            }
        }
    }
    let too_large: Vec<String> = uploaded
        .iter()
        .filter(|(path, size)| path.starts_with(&app_rel) && *size > MAX_FILE_BYTES)
        .map(|(path, size)| format!("{} ({size} bytes)", bundle_dir.join(path).display()))
        .collect();
    if !too_large.is_empty() {
        problems.push(format!(
            "bundle deploy would upload files over Databricks Apps' 10485760-byte limit: {}",
            too_large.join(", ")
        ));
        fixes.push(
            "compress the binary (deploy/build.sh), or keep the file out of the upload with \
             sync.exclude"
                .to_owned(),
        );
    }
    if !problems.is_empty() {
        return Check::fail(ID, problems.join("; "), fixes.join("; "));
    }
    let names = if named.is_empty() {
        "app.yaml's command names no file of the app's directory".to_owned()
    } else {
        format!(
            "including what app.yaml's command needs: {}",
            named.join(", ")
        )
    };
    let summary = format!(
        "bundle deploy would upload {} files from {}, {names}",
        uploaded.len(),
        bundle_dir.display()
    );
    if missing.is_empty() {
        Check::pass(ID, summary)
    } else {
        Check::warn(
            ID,
            format!("{summary}; not built yet: {}", missing.join(", ")),
            "build them before `databricks bundle deploy` (dbapp's `bash deploy/build.sh` writes \
             deploy/app/dbapp.gz.0 and .1)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    /// A directory tree from `(path, contents)` pairs.
    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn bundle(yaml: &str) -> Value {
        let docs = yaml_rust2::YamlLoader::load_from_str(yaml).unwrap();
        crate::doctor::manifest::to_json(docs.first().unwrap_or(&yaml_rust2::Yaml::Null))
    }

    fn verdict(root: &Path, sync: &str, path: &str) -> Verdict {
        SyncRules::new(root, &bundle(sync), None)
            .unwrap()
            .verdict(Path::new(path))
    }

    fn rule(verdict: &Verdict) -> String {
        match verdict {
            Verdict::Ignored(r) | Verdict::Excluded(r) | Verdict::Included(r) => r.to_string(),
            Verdict::Uploaded => "uploaded".to_owned(),
        }
    }

    #[test]
    fn a_nested_gitignore_governs_its_own_subtree_and_names_its_line() {
        let dir = tree(&[
            ("app/.gitignore", "# build output\n/dbapp.gz\n"),
            ("dbapp.gz", ""),
            ("app/dbapp.gz", ""),
        ]);
        let root = dir.path();
        assert_eq!(verdict(root, "", "dbapp.gz"), Verdict::Uploaded);
        let ignored = verdict(root, "", "app/dbapp.gz");
        assert!(matches!(ignored, Verdict::Ignored(_)), "{ignored:?}");
        assert_eq!(
            rule(&ignored),
            format!("{}/app/.gitignore line 2: /dbapp.gz", root.display())
        );
    }

    #[test]
    fn an_include_wins_over_gitignore_and_an_exclude_over_both() {
        let dir = tree(&[("build/.keep", ""), (".gitignore", "build/\n")]);
        let root = dir.path();
        let pruned = verdict(root, "", "build/app.bin");
        assert_eq!(
            rule(&pruned),
            format!("{}/.gitignore line 1: build/", root.display())
        );
        let included = verdict(
            root,
            "sync:\n  include: [./build/app.bin]\n",
            "build/app.bin",
        );
        assert!(matches!(included, Verdict::Included(_)), "{included:?}");
        let excluded = verdict(
            root,
            "sync:\n  include: [build/app.bin]\n  exclude: ['*.bin']\n",
            "build/app.bin",
        );
        assert_eq!(rule(&excluded), "databricks.yml sync.exclude: *.bin");
    }

    #[test]
    fn a_deeper_negation_does_not_re_include_what_a_shallower_file_ignores() {
        // The CLI asks each ignore file separately and any match ignores; git itself would let
        // the deeper `!` win.
        let dir = tree(&[
            (".gitignore", "*.gz\n"),
            ("app/.gitignore", "!keep.gz\n"),
            ("lib/.gitignore", "*.gz\n!keep.gz\n"),
        ]);
        let root = dir.path();
        assert!(matches!(
            verdict(root, "", "app/keep.gz"),
            Verdict::Ignored(_)
        ));
        // Within one file the last match wins, negations included, but the root file still
        // ignores lib/keep.gz.
        assert!(matches!(
            verdict(root, "", "lib/keep.gz"),
            Verdict::Ignored(_)
        ));
        let only_lib = tree(&[("lib/.gitignore", "*.gz\n!keep.gz\n")]);
        assert_eq!(
            verdict(only_lib.path(), "", "lib/keep.gz"),
            Verdict::Uploaded
        );
    }

    #[test]
    fn the_cli_always_ignores_databricks_and_git() {
        let dir = tree(&[]);
        for path in [".databricks/bundle/state.json", "app/.git/config"] {
            let v = verdict(dir.path(), "", path);
            assert!(
                rule(&v).starts_with("always ignored by the Databricks CLI"),
                "{path}: {v:?}"
            );
        }
    }

    #[test]
    fn the_rules_of_the_enclosing_git_worktree_apply() {
        // The bundle is deploy/ of a repository whose root .gitignore names a file in it.
        let dir = tree(&[
            (".git/HEAD", "ref: refs/heads/main\n"),
            (".git/info/exclude", "secret.txt\n"),
            (".gitignore", "/deploy/app/local.env\n"),
            ("deploy/databricks.yml", ""),
        ]);
        let bundle_dir = dir.path().join("deploy");
        let ignored = verdict(&bundle_dir, "", "app/local.env");
        assert!(rule(&ignored).ends_with("/.gitignore line 1: /deploy/app/local.env"));
        assert!(matches!(
            verdict(&bundle_dir, "", "app/secret.txt"),
            Verdict::Ignored(_)
        ));
        assert_eq!(verdict(&bundle_dir, "", "app/app.yaml"), Verdict::Uploaded);

        // A bundle inside an ignored directory uploads nothing that is not included.
        let nested = tree(&[
            (".git/HEAD", ""),
            (
                ".gitignore",
                "ops/
",
            ),
        ]);
        let bundle_dir = nested.path().join("ops/deploy");
        std::fs::create_dir_all(&bundle_dir).unwrap();
        let ignored = verdict(&bundle_dir, "", "app/app.yaml");
        assert!(
            rule(&ignored).ends_with("/.gitignore line 1: ops/"),
            "{ignored:?}"
        );
    }

    #[test]
    fn the_machines_core_excludes_file_applies() {
        let home = tree(&[("git/ignore", "*.env\n")]);
        let excludes = home.path().join("git/ignore");
        let dir = tree(&[]);
        let mut rules = SyncRules::new(dir.path(), &Value::Null, Some(&excludes)).unwrap();
        assert_eq!(
            rule(&rules.verdict(Path::new("app/local.env"))),
            format!("{} line 1: *.env", excludes.display())
        );
    }

    #[test]
    fn the_walk_lists_uploaded_regular_files_only() {
        let dir = tree(&[
            (".gitignore", "target/\n"),
            ("target/big", ""),
            ("app/app.yaml", ""),
            ("app/dbapp.gz", ""),
        ]);
        std::os::unix::fs::symlink("app.yaml", dir.path().join("app/link.yaml")).unwrap();
        let mut rules = SyncRules::new(dir.path(), &Value::Null, None).unwrap();
        let files: Vec<PathBuf> = rules.uploaded().into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            files,
            [".gitignore", "app/app.yaml", "app/dbapp.gz"].map(PathBuf::from)
        );
    }

    #[test]
    fn the_files_a_start_command_names_are_found() {
        let app = tree(&[("run", "")]);
        let found = |cmd: &str| -> Vec<String> {
            start_files(&serde_json::from_str(cmd).unwrap(), app.path())
                .iter()
                .map(|p| p.display().to_string())
                .collect()
        };
        assert_eq!(
            found(
                r#"["/bin/sh", "-c", "gzip -dc dbapp.gz > /tmp/dbapp && chmod 0755 /tmp/dbapp && exec /tmp/dbapp serve"]"#
            ),
            ["dbapp.gz"]
        );
        // What the script writes is made at start: only its input must be uploaded.
        assert_eq!(
            found(
                r#"["/bin/sh", "-c", "gzip -dc dbapp.gz > dbapp.bin && chmod 0755 ./dbapp.bin && exec ./dbapp.bin serve"]"#
            ),
            ["dbapp.gz"]
        );
        // Parts cut by `split` count; a number does not.
        assert_eq!(
            found(
                r#"["/bin/sh", "-c", "cat dbapp.gz.0 dbapp.gz.1 | gzip -dc > dbapp && sleep 1.5 && exec ./dbapp serve"]"#
            ),
            ["dbapp.gz.0", "dbapp.gz.1"]
        );
        assert_eq!(found(r#"["./dbapp", "serve"]"#), ["dbapp"]);
        assert_eq!(
            found(r#"["python", "app.py", "--port", "$DATABRICKS_APP_PORT"]"#),
            ["app.py"]
        );
        assert_eq!(
            found(r#"["/usr/bin/env", "bash", "-c", "exec 'bin/start.sh' 2>&1"]"#),
            ["bin/start.sh"]
        );
        // A file that is there counts even without a slash or an extension.
        assert_eq!(found(r#"["run", "serve"]"#), ["run"]);
        let none: [&str; 0] = [];
        assert_eq!(
            found(r#"["uvicorn", "main:app", "--host", "0.0.0.0", "../outside.py"]"#),
            none
        );
    }

    #[test]
    fn the_check_fails_on_an_ignored_start_file_and_an_oversized_upload() {
        let app = bundle("source_code_path: ./app\n");
        let command = serde_json::json!(["./dbapp", "serve"]);
        let ignored = tree(&[("app/.gitignore", "dbapp\n"), ("app/dbapp", "")]);
        let check = check_with(ignored.path(), &Value::Null, &app, &command, None);
        assert_eq!(check.status, Status::Fail, "{}", check.message);
        assert!(
            check.message.contains("app/.gitignore line 1: dbapp"),
            "{}",
            check.message
        );
        assert!(check.fix.unwrap().contains("sync: {include: [app/dbapp]}"));

        let big = tree(&[("app/dbapp", "")]);
        let file = std::fs::File::options()
            .write(true)
            .open(big.path().join("app/dbapp"))
            .unwrap();
        file.set_len(MAX_FILE_BYTES + 1).unwrap();
        let check = check_with(big.path(), &Value::Null, &app, &command, None);
        assert_eq!(check.status, Status::Fail, "{}", check.message);
        assert!(
            check.message.contains("app/dbapp (10485761 bytes)"),
            "{}",
            check.message
        );

        let linked = tree(&[("build/dbapp", "")]);
        std::fs::create_dir(linked.path().join("app")).unwrap();
        std::os::unix::fs::symlink("../build/dbapp", linked.path().join("app/dbapp")).unwrap();
        let check = check_with(linked.path(), &Value::Null, &app, &command, None);
        assert_eq!(check.status, Status::Fail, "{}", check.message);
        assert!(
            check.message.contains("is a symbolic link"),
            "{}",
            check.message
        );
    }
}
