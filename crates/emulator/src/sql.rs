//! The SQL the emulated warehouses understand, and the life of a submitted statement
//! (`shared/UPSTREAM.md` §4.4). This module owns parsing, evaluation against the fixture as the
//! caller, the `PENDING → RUNNING → terminal` clock, result chunking and the JSON shapes of a
//! statement, its manifest and its result chunks. It knows nothing of HTTP: request validation,
//! waiting, and "only the submitter may see it" live in `routes::statements`.
//!
//! # The SQL subset
//!
//! ```text
//! statement  := SELECT projection FROM table_name [LIMIT n] [OFFSET m] [;]
//! projection := *  |  COUNT(*)  |  COUNT(1)
//! table_name := identifier [. identifier [. identifier]]
//! identifier := plain | quoted
//! plain      := [A-Za-z_][A-Za-z0-9_]*
//! quoted     := ` any characters, a backquote written as `` `
//! n, m       := decimal integer from 0 to 2147483647
//! ```
//!
//! - Keywords are case-insensitive. Whitespace (newlines included), `-- line comments` and
//!   `/* block comments */` may appear between any two tokens. One trailing `;` is allowed.
//! - A table name of one part (`t`) is looked up in the request's `catalog` and `schema`, of two
//!   parts (`s.t`) in the request's `catalog`; these default to `main` and `default`. Names match
//!   the fixture case-insensitively, plain and quoted alike, since Unity Catalog names are
//!   case-insensitive (stored in lowercase).
//! - `SELECT *` returns every column in fixture order and the rows in fixture order.
//!   `SELECT COUNT(*)` returns one row with one column named `count(1)` (type `LONG`, type text
//!   `BIGINT`), as Spark names it. `LIMIT` and `OFFSET` apply to that result, so
//!   `SELECT COUNT(*) FROM t OFFSET 1` has no rows. The request's `row_limit` applies last and sets
//!   `manifest.truncated` when it removes rows.
//! - Statement parameters (`:name`) are not part of the subset: a `:` is a syntax error.
//!
//! Anything else fails. Every failure is reported as state `FAILED` with `error_code`
//! `BAD_REQUEST`, a message that starts with the Spark error class and ends with
//! `SQLSTATE: <code>`, and `status.sql_state`:
//!
//! | error class | `sql_state` | when |
//! |---|---|---|
//! | `PARSE_EMPTY_STATEMENT` | 42617 | nothing but whitespace, comments or `;` |
//! | `PARSE_SYNTAX_ERROR` | 42601 | outside the grammar above; unterminated backquote; more than three name parts. The message says `at or near '<token>'`, what the emulator supports, and `(line L, pos P)` (`pos` counts characters from 0, as Spark does) |
//! | `UNCLOSED_BRACKETED_COMMENT` | 42601 | a `/*` without `*/` |
//! | `INVALID_LIMIT_LIKE_EXPRESSION.IS_NEGATIVE` | 42K0E | `LIMIT -1`, `OFFSET -1` |
//! | `INVALID_LIMIT_LIKE_EXPRESSION.DATA_TYPE` | 42K0E | a value above 2147483647 (Spark's `INT`) |
//! | `TABLE_OR_VIEW_NOT_FOUND` | 42P01 | no such catalog, schema or table; the name is quoted as written, e.g. `` `main`.`default`.`nope` `` |
//! | `INSUFFICIENT_PERMISSIONS` | 42501 | the table exists but the caller is not admitted by the `readers` of its catalog, schema and table: ``Insufficient privileges: User does not have SELECT on Table 'c.s.t'.`` |
//!
//! # Results
//!
//! `data_array` holds strings or `null` only, whatever the column type: JSON strings pass through
//! as written (dates and timestamps included), booleans become `"true"`/`"false"`, numbers their
//! JSON text, except that a `DOUBLE`/`FLOAT` integer gets `.0` (`129` → `"129.0"`) and a
//! `DECIMAL(p,s)` is written with `s` decimals (`12.5` → `"12.50"`); arrays and objects become
//! their JSON text. Column metadata comes from the fixture, with `type_text` upper-cased as the
//! real service reports it (`decimal(10,2)` → `DECIMAL(10,2)`; struct field names keep their case)
//! and `type_precision`/`type_scale` for decimals.
//!
//! Results are cut into chunks of `sql_chunk_rows` rows. An empty result has one chunk with
//! `row_count` 0 and no `data_array` (`total_chunk_count` 1), which is what clients that loop over
//! `chunks` handle without a special case.
//!
//! # Lifecycle
//!
//! A statement is evaluated once, when it is submitted (the fixture never changes while the
//! emulator runs, so the outcome is already known), and that outcome is revealed by the clock: the
//! statement is `PENDING` for `sql_pending_ms`, then `RUNNING` for `sql_running_ms`, then
//! `SUCCEEDED` or `FAILED`. No task runs in the background; the state is a function of the time.
//! The timings and chunk size are those of the moment of submission. A cancel before the terminal
//! state makes it `CANCELED` for good; after, it changes nothing. The emulator never moves a
//! statement to `CLOSED`. Rows are rendered only when a chunk is asked for, so a statement holds
//! indices into the fixture, not a copy of the data.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::fixture::{Column, Fixture, Table};
use crate::results::{self, ColumnType, Format, LinkSigner, LinkTarget};
use crate::state::Principal;

/// The most statements kept; past it the oldest are forgotten, so a benchmark cannot grow the map.
pub(crate) const STATEMENT_CAPACITY: usize = 10_000;

/// How many statements one eviction forgets: a batch, so that evicting stays cheap per insert.
const EVICTION_BATCH: usize = STATEMENT_CAPACITY / 10;

/// The largest `LIMIT`/`OFFSET` value: Spark's `INT`.
const MAX_LIMIT: u64 = i32::MAX as u64;

/// Catalog used for one-part and two-part names when the request names none.
pub(crate) const DEFAULT_CATALOG: &str = "main";

/// Schema used for one-part names when the request names none.
pub(crate) const DEFAULT_SCHEMA: &str = "default";

const SUPPORTED: &str = "The emulator understands only SELECT * FROM <table> [LIMIT n] [OFFSET m] \
     and SELECT COUNT(*) FROM <table>, where <table> is name, schema.name or catalog.schema.name.";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a statement failed, as Spark would report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SqlError {
    /// Spark error class, e.g. `TABLE_OR_VIEW_NOT_FOUND`.
    class: &'static str,
    detail: String,
    sql_state: &'static str,
    /// `(line, pos)` of a parse error: line from 1, pos in characters from 0.
    position: Option<(usize, usize)>,
}

impl SqlError {
    fn new(class: &'static str, sql_state: &'static str, detail: impl Into<String>) -> Self {
        Self {
            class,
            detail: detail.into(),
            sql_state,
            position: None,
        }
    }

    fn syntax(near: &str, position: (usize, usize), extra: &str) -> Self {
        Self {
            position: Some(position),
            ..Self::new(
                "PARSE_SYNTAX_ERROR",
                "42601",
                format!("Syntax error at or near {near}{extra}. {SUPPORTED}"),
            )
        }
    }

    fn table_not_found(parts: &[String]) -> Self {
        let name = parts
            .iter()
            .map(|p| format!("`{}`", p.replace('`', "``")))
            .collect::<Vec<_>>()
            .join(".");
        Self::new(
            "TABLE_OR_VIEW_NOT_FOUND",
            "42P01",
            format!(
                "The table or view {name} cannot be found. Verify the spelling and correctness of \
                 the schema and catalog. If you did not qualify the name with a schema, verify the \
                 current_schema() output, or qualify the name with the correct schema and catalog."
            ),
        )
    }

    fn insufficient_permissions(catalog: &str, schema: &str, table: &str) -> Self {
        Self::new(
            "INSUFFICIENT_PERMISSIONS",
            "42501",
            format!(
                "Insufficient privileges: User does not have SELECT on Table \
                 '{catalog}.{schema}.{table}'."
            ),
        )
    }

    /// The Spark error class, e.g. `PARSE_SYNTAX_ERROR`.
    #[cfg(test)]
    fn class(&self) -> &'static str {
        self.class
    }

    /// The SQLSTATE, e.g. `42P01`.
    pub(crate) fn sql_state(&self) -> &'static str {
        self.sql_state
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] {} SQLSTATE: {}",
            self.class, self.detail, self.sql_state
        )?;
        if let Some((line, pos)) = self.position {
            write!(f, " (line {line}, pos {pos})")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum TokenKind {
    /// A plain identifier or a keyword, as written.
    Word(String),
    /// A backquoted identifier, unescaped.
    Quoted(String),
    /// A run of decimal digits.
    Integer(String),
    /// Any other single character: `*`, `(`, `.`, `;`, `-`, but also `'` or `é`, which the
    /// parser then rejects with their position.
    Symbol(char),
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    /// The source text, for error messages.
    text: String,
    line: usize,
    pos: usize,
}

/// A cursor over the source that tracks Spark's `(line, pos)`.
struct Lexer<'a> {
    src: &'a str,
    at: usize,
    line: usize,
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.at..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.src[self.at..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.pos = 0;
        } else {
            self.pos += 1;
        }
        Some(c)
    }

    fn bump_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
    }
}

/// Splits `sql` into tokens, dropping whitespace and comments; also returns the end position.
fn tokenize(sql: &str) -> Result<(Vec<Token>, (usize, usize)), SqlError> {
    let mut lexer = Lexer {
        src: sql,
        at: 0,
        line: 1,
        pos: 0,
    };
    let mut tokens = Vec::new();
    while let Some(c) = lexer.peek() {
        let (start, line, pos) = (lexer.at, lexer.line, lexer.pos);
        let kind = match c {
            c if c.is_whitespace() => {
                lexer.bump();
                continue;
            }
            '-' if lexer.peek_second() == Some('-') => {
                lexer.bump_while(|c| c != '\n');
                continue;
            }
            '/' if lexer.peek_second() == Some('*') => {
                skip_block_comment(&mut lexer, (line, pos))?;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                lexer.bump_while(|c| c.is_ascii_alphanumeric() || c == '_');
                TokenKind::Word(sql[start..lexer.at].to_owned())
            }
            c if c.is_ascii_digit() => {
                lexer.bump_while(|c| c.is_ascii_digit());
                TokenKind::Integer(sql[start..lexer.at].to_owned())
            }
            '`' => TokenKind::Quoted(quoted_identifier(&mut lexer, (line, pos))?),
            other => {
                lexer.bump();
                TokenKind::Symbol(other)
            }
        };
        tokens.push(Token {
            kind,
            text: sql[start..lexer.at].to_owned(),
            line,
            pos,
        });
    }
    Ok((tokens, (lexer.line, lexer.pos)))
}

fn skip_block_comment(lexer: &mut Lexer<'_>, start: (usize, usize)) -> Result<(), SqlError> {
    lexer.bump();
    lexer.bump();
    loop {
        match lexer.bump() {
            None => {
                return Err(SqlError {
                    position: Some(start),
                    ..SqlError::new(
                        "UNCLOSED_BRACKETED_COMMENT",
                        "42601",
                        "Found an unclosed bracketed comment. Please, append */ at the end of the \
                         comment.",
                    )
                });
            }
            Some('*') if lexer.peek() == Some('/') => {
                lexer.bump();
                return Ok(());
            }
            Some(_) => {}
        }
    }
}

/// Reads a backquoted identifier, the lexer being on its opening backquote.
fn quoted_identifier(lexer: &mut Lexer<'_>, start: (usize, usize)) -> Result<String, SqlError> {
    lexer.bump();
    let mut name = String::new();
    loop {
        match lexer.bump() {
            None => {
                return Err(SqlError::syntax(
                    "'`'",
                    start,
                    ": unterminated quoted identifier",
                ));
            }
            Some('`') if lexer.peek() == Some('`') => {
                lexer.bump();
                name.push('`');
            }
            Some('`') => return Ok(name),
            Some(c) => name.push(c),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

/// What a statement selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Projection {
    /// `SELECT *`.
    All,
    /// `SELECT COUNT(*)`.
    Count,
}

/// A parsed statement of the subset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Query {
    projection: Projection,
    /// One to three name parts, unescaped, as written.
    table: Vec<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    end: (usize, usize),
}

impl Parser {
    fn peek(&self) -> Option<&TokenKind> {
        self.tokens.get(self.at).map(|t| &t.kind)
    }

    /// Consumes the keyword `keyword` if it is next.
    fn keyword(&mut self, keyword: &str) -> bool {
        let found =
            matches!(self.peek(), Some(TokenKind::Word(w)) if w.eq_ignore_ascii_case(keyword));
        if found {
            self.at += 1;
        }
        found
    }

    /// Consumes the symbol `symbol` if it is next.
    fn symbol(&mut self, symbol: char) -> bool {
        let found = self.peek() == Some(&TokenKind::Symbol(symbol));
        if found {
            self.at += 1;
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), SqlError> {
        if self.keyword(keyword) {
            Ok(())
        } else {
            Err(self.unexpected(""))
        }
    }

    fn expect_symbol(&mut self, symbol: char) -> Result<(), SqlError> {
        if self.symbol(symbol) {
            Ok(())
        } else {
            Err(self.unexpected(""))
        }
    }

    /// A syntax error at the next token (or the end of input).
    fn unexpected(&self, extra: &str) -> SqlError {
        match self.tokens.get(self.at) {
            Some(t) => SqlError::syntax(&format!("'{}'", t.text), (t.line, t.pos), extra),
            None => SqlError::syntax("end of input", self.end, extra),
        }
    }

    fn identifier(&mut self) -> Result<String, SqlError> {
        match self.peek() {
            Some(TokenKind::Word(name) | TokenKind::Quoted(name)) => {
                let name = name.clone();
                self.at += 1;
                Ok(name)
            }
            _ => Err(self.unexpected("")),
        }
    }

    fn table_name(&mut self) -> Result<Vec<String>, SqlError> {
        let mut parts = vec![self.identifier()?];
        while self.peek() == Some(&TokenKind::Symbol('.')) {
            if parts.len() == 3 {
                return Err(self.unexpected(": a table name has at most three parts"));
            }
            self.at += 1;
            parts.push(self.identifier()?);
        }
        Ok(parts)
    }

    /// The value of `LIMIT` or `OFFSET` (`which`), checked as Spark checks it.
    fn limit_value(&mut self, which: &str) -> Result<usize, SqlError> {
        let negative = self.symbol('-');
        let Some(TokenKind::Integer(digits)) = self.peek() else {
            return Err(self.unexpected(""));
        };
        let digits = digits.clone();
        self.at += 1;
        let literal = if negative {
            format!("-{digits}")
        } else {
            digits.clone()
        };
        let invalid = |detail: String| {
            SqlError::new(
                "INVALID_LIMIT_LIKE_EXPRESSION",
                "42K0E",
                format!("The limit like expression \"{literal}\" is invalid. {detail}"),
            )
        };
        let value = digits.parse::<u64>().ok().filter(|v| *v <= MAX_LIMIT);
        let Some(value) = value else {
            // Spark types an integer literal as the smallest of INT, BIGINT and DECIMAL it fits.
            let data_type = if literal.parse::<i64>().is_ok() {
                "BIGINT".to_owned()
            } else {
                let significant = digits.trim_start_matches('0').len().clamp(1, 38);
                format!("DECIMAL({significant},0)")
            };
            let error = invalid(format!(
                "The {which} expression must be integer type, but got \"{data_type}\"."
            ));
            return Err(SqlError {
                class: "INVALID_LIMIT_LIKE_EXPRESSION.DATA_TYPE",
                ..error
            });
        };
        if negative && value > 0 {
            let error = invalid(format!(
                "The {which} expression must be equal to or greater than 0, but got -{value}."
            ));
            return Err(SqlError {
                class: "INVALID_LIMIT_LIKE_EXPRESSION.IS_NEGATIVE",
                ..error
            });
        }
        usize::try_from(value).map_err(|_| self.unexpected(""))
    }

    fn statement(&mut self) -> Result<Query, SqlError> {
        self.expect_keyword("SELECT")?;
        let projection = if self.symbol('*') {
            Projection::All
        } else if self.keyword("COUNT") {
            self.expect_symbol('(')?;
            let one = matches!(self.peek(), Some(TokenKind::Integer(d)) if d == "1");
            if one {
                self.at += 1;
            } else if !self.symbol('*') {
                return Err(self.unexpected(""));
            }
            self.expect_symbol(')')?;
            Projection::Count
        } else {
            return Err(self.unexpected(""));
        };
        self.expect_keyword("FROM")?;
        let table = self.table_name()?;
        let limit = if self.keyword("LIMIT") {
            Some(self.limit_value("limit")?)
        } else {
            None
        };
        let offset = if self.keyword("OFFSET") {
            Some(self.limit_value("offset")?)
        } else {
            None
        };
        self.symbol(';');
        if self.at < self.tokens.len() {
            return Err(self.unexpected(""));
        }
        Ok(Query {
            projection,
            table,
            limit,
            offset,
        })
    }
}

/// Parses one statement of the subset.
fn parse(sql: &str) -> Result<Query, SqlError> {
    let (tokens, end) = tokenize(sql)?;
    if tokens.iter().all(|t| t.kind == TokenKind::Symbol(';')) {
        return Err(SqlError::new(
            "PARSE_EMPTY_STATEMENT",
            "42617",
            "Syntax error, unexpected empty statement.",
        ));
    }
    Parser { tokens, at: 0, end }.statement()
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/// Where a statement runs: the workspace, the caller it runs as, and the default namespace.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) fixture: &'a Fixture,
    pub(crate) principal: &'a Principal,
    /// For one- and two-part names; [`DEFAULT_CATALOG`] when the request names none.
    pub(crate) catalog: &'a str,
    /// For one-part names; [`DEFAULT_SCHEMA`] when the request names none.
    pub(crate) schema: &'a str,
}

/// A column of the result, as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ColumnInfo {
    name: String,
    position: usize,
    type_name: String,
    type_text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    type_precision: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    type_scale: Option<u32>,
}

impl ColumnInfo {
    fn of_fixture(position: usize, column: &Column) -> Self {
        let type_name = column.type_name.to_ascii_uppercase();
        let (type_precision, type_scale) = if type_name == "DECIMAL" {
            let (p, s) = decimal_precision_scale(&column.type_text);
            (Some(p), Some(s))
        } else {
            (None, None)
        };
        Self {
            name: column.name.clone(),
            position,
            type_name,
            type_text: upper_type_text(&column.type_text),
            type_precision,
            type_scale,
        }
    }

    fn count() -> Self {
        Self {
            name: "count(1)".into(),
            position: 0,
            type_name: "LONG".into(),
            type_text: "BIGINT".into(),
            type_precision: None,
            type_scale: None,
        }
    }

    /// Renders a fixture value as the string `data_array` carries.
    fn render(&self, value: &Value) -> Option<String> {
        match value {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(match (self.type_name.as_str(), self.type_scale) {
                ("DECIMAL", Some(scale)) if scale > 0 => match n.as_i64() {
                    Some(i) => format!("{i}.{}", "0".repeat(scale as usize)),
                    None => format!("{:.*}", scale as usize, n.as_f64().unwrap_or_default()),
                },
                ("DOUBLE" | "FLOAT", _) if !n.is_f64() => format!("{n}.0"),
                _ => n.to_string(),
            }),
            Value::Array(_) | Value::Object(_) => Some(value.to_string()),
        }
    }
}

/// `(precision, scale)` of `decimal(p,s)`; Spark's default `DECIMAL(10,0)` when not written.
fn decimal_precision_scale(type_text: &str) -> (u32, u32) {
    let inside = type_text
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inside, _)| inside);
    let mut numbers = inside
        .into_iter()
        .flat_map(|i| i.split(','))
        .map(|n| n.trim().parse::<u32>().ok());
    // Spark's maximum is 38 for both; clamping keeps a bad fixture from asking for huge strings.
    let precision = numbers.next().flatten().unwrap_or(10).min(38);
    let scale = numbers.next().flatten().unwrap_or(0).min(precision);
    (precision, scale)
}

/// Upper-cases the type keywords of a type text, leaving struct field names (a word followed by
/// `:`) and backquoted names as written, as Spark prints `STRUCT<a: INT>`.
fn upper_type_text(type_text: &str) -> String {
    let mut out = String::with_capacity(type_text.len());
    let mut rest = type_text;
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            let close = rest[1..].find('`').map_or(rest.len(), |i| i + 2);
            out.push_str(&rest[..close]);
            rest = &rest[close..];
        } else if c.is_alphanumeric() || c == '_' {
            let len = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let (word, after) = rest.split_at(len);
            if after.trim_start().starts_with(':') {
                out.push_str(word);
            } else {
                out.push_str(&word.to_uppercase());
            }
            rest = after;
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Indices of a table in the fixture, which never changes while the emulator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TableLocation {
    catalog: usize,
    schema: usize,
    table: usize,
}

impl TableLocation {
    fn table(self, fixture: &Fixture) -> Option<&Table> {
        fixture
            .catalogs
            .get(self.catalog)?
            .schemas
            .get(self.schema)?
            .tables
            .get(self.table)
    }
}

/// Where the rows of a result come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// The rows of a fixture table.
    Table(TableLocation),
    /// A single row holding this count.
    Count(usize),
}

/// The rows of a successful statement: a window over its source, rendered on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResultSet {
    columns: Vec<ColumnInfo>,
    source: Source,
    /// First source row of the result.
    start: usize,
    /// Rows in the result, after `LIMIT`, `OFFSET` and `row_limit`.
    len: usize,
    /// Whether `row_limit` removed rows.
    truncated: bool,
}

impl ResultSet {
    /// Result rows `from..to` as `data_array` rows.
    fn rows(&self, fixture: &Fixture, from: usize, to: usize) -> Vec<Vec<Option<String>>> {
        match &self.source {
            Source::Count(count) => (from..to).map(|_| vec![Some(count.to_string())]).collect(),
            Source::Table(location) => {
                let rows = location.table(fixture).map_or(&[][..], |t| &t.rows[..]);
                let first = (self.start + from).min(rows.len());
                let last = (self.start + to).min(rows.len());
                rows[first..last]
                    .iter()
                    .map(|row| {
                        row.iter()
                            .zip(&self.columns)
                            .map(|(value, column)| column.render(value))
                            .collect()
                    })
                    .collect()
            }
        }
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// Finds the table `parts` names and checks that the caller may read it.
fn resolve(parts: &[String], context: &Context<'_>) -> Result<TableLocation, SqlError> {
    let (catalog, schema, table) = match parts {
        [t] => (context.catalog, context.schema, t.as_str()),
        [s, t] => (context.catalog, s.as_str(), t.as_str()),
        [c, s, t] => (c.as_str(), s.as_str(), t.as_str()),
        _ => return Err(SqlError::table_not_found(parts)),
    };
    let not_found = || SqlError::table_not_found(parts);
    let (ci, c) = (context.fixture.catalogs.iter().enumerate())
        .find(|(_, c)| same_name(&c.name, catalog))
        .ok_or_else(not_found)?;
    let (si, s) = (c.schemas.iter().enumerate())
        .find(|(_, s)| same_name(&s.name, schema))
        .ok_or_else(not_found)?;
    let (ti, t) = (s.tables.iter().enumerate())
        .find(|(_, t)| same_name(&t.name, table))
        .ok_or_else(not_found)?;
    let lists = [c.readers.as_ref(), s.readers.as_ref(), t.readers.as_ref()];
    if !context.principal.admitted_by_all(lists) {
        return Err(SqlError::insufficient_permissions(
            &c.name, &s.name, &t.name,
        ));
    }
    Ok(TableLocation {
        catalog: ci,
        schema: si,
        table: ti,
    })
}

/// Runs `sql` as `context.principal`: the rows it returns, or why it fails.
///
/// # Errors
/// [`SqlError`] for statements outside the subset, unknown tables and tables the caller may not
/// read; see the module docs for each error class.
pub(crate) fn evaluate(
    sql: &str,
    context: &Context<'_>,
    row_limit: Option<usize>,
) -> Result<ResultSet, SqlError> {
    let query = parse(sql)?;
    let location = resolve(&query.table, context)?;
    let table = location
        .table(context.fixture)
        .ok_or_else(|| SqlError::table_not_found(&query.table))?;
    let (columns, source, available) = match query.projection {
        Projection::All => (
            (table.columns.iter().enumerate())
                .map(|(i, c)| ColumnInfo::of_fixture(i, c))
                .collect(),
            Source::Table(location),
            table.rows.len(),
        ),
        Projection::Count => (
            vec![ColumnInfo::count()],
            Source::Count(table.rows.len()),
            1,
        ),
    };
    let start = query.offset.unwrap_or(0).min(available);
    let len = (available - start).min(query.limit.unwrap_or(usize::MAX));
    let (len, truncated) = match row_limit {
        Some(max) if len > max => (max, true),
        _ => (len, false),
    };
    Ok(ResultSet {
        columns,
        source,
        start,
        len,
        truncated,
    })
}

// ---------------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------------

/// `StatementState` of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum StatementState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Canceled,
    /// Closed by its owner (`DELETE /api/2.0/sql/statements/{id}`): its result is gone.
    Closed,
}

impl StatementState {
    /// Whether the state can no longer change.
    pub(crate) fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Canceled | Self::Closed
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
            Self::Closed => "CLOSED",
        }
    }
}

impl std::fmt::Display for StatementState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Orders statements for eviction; a counter, because two submissions can share an instant.
static NEXT_SEQ: AtomicU64 = AtomicU64::new(0);

/// How the result of a statement is handed over: the request's `disposition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// `data_array` in the responses (`JSON_ARRAY` only).
    Inline,
    /// A URL per chunk, fetched without the workspace token.
    ExternalLinks,
    /// Inline when the result is one chunk of at most `sql_hybrid_inline_bytes`, else links.
    InlineOrExternalLinks,
}

/// The delivery options of a statement, validated by the route.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery {
    pub(crate) format: Format,
    pub(crate) disposition: Disposition,
    /// `byte_limit`: rows past it are cut and the result marked `truncated`.
    pub(crate) byte_limit: Option<u64>,
    /// `sql_hybrid_inline_bytes` at submission.
    pub(crate) hybrid_inline_bytes: usize,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            format: Format::JsonArray,
            disposition: Disposition::Inline,
            byte_limit: None,
            hybrid_inline_bytes: 0,
        }
    }
}

/// What the URLs of `EXTERNAL_LINKS` need: who signs them, where they point, how long they live.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Links<'a> {
    pub(crate) signer: &'a LinkSigner,
    /// Scheme and authority the client reached us at.
    pub(crate) base_url: &'a str,
    pub(crate) ttl: chrono::Duration,
}

/// A submitted SQL statement.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    id: String,
    /// User name of the submitter, the only principal that may see or cancel it.
    owner: String,
    seq: u64,
    running_at: Instant,
    done_at: Instant,
    /// Rows per chunk, fixed at submission so chunk indices never move under a client.
    chunk_rows: usize,
    outcome: Result<ResultSet, SqlError>,
    /// Rows handed over: the result's rows up to `byte_limit`.
    shown: usize,
    /// Whether `row_limit` or `byte_limit` removed rows.
    truncated: bool,
    format: Format,
    /// Whether the result goes out as links (resolved at submission for the hybrid disposition).
    external: bool,
    canceled: bool,
    closed: bool,
    /// Woken on cancel, so that an execute call waiting for this statement returns at once.
    wake: Arc<Notify>,
}

/// The timing of a statement, taken from the settings and its warehouse at submission.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) pending: Duration,
    pub(crate) running: Duration,
    pub(crate) chunk_rows: usize,
    /// When the warehouse is `RUNNING`: the statement stays `PENDING` at least until then.
    pub(crate) warehouse_ready: Instant,
}

/// Why a chunk's bytes could not be produced.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the result: {0}")]
pub(crate) struct EncodeError(#[from] arrow_schema::ArrowError);

impl Statement {
    /// A statement submitted by `owner` at `now` whose result is `outcome`, delivered inline as
    /// `JSON_ARRAY` until [`Statement::deliver`] says otherwise.
    pub(crate) fn new(
        id: String,
        owner: &Principal,
        now: Instant,
        timing: Timing,
        outcome: Result<ResultSet, SqlError>,
    ) -> Self {
        let running_at = (now + timing.pending).max(timing.warehouse_ready);
        let (shown, truncated) = outcome
            .as_ref()
            .map_or((0, false), |r| (r.len, r.truncated));
        Self {
            id,
            owner: owner.user_name.clone(),
            seq: NEXT_SEQ.fetch_add(1, Ordering::Relaxed),
            running_at,
            done_at: running_at + timing.running,
            chunk_rows: timing.chunk_rows.max(1),
            outcome,
            shown,
            truncated,
            format: Format::JsonArray,
            external: false,
            canceled: false,
            closed: false,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Applies the delivery options: `byte_limit` (bytes counted as the JSON text of each row)
    /// and the format and disposition, the hybrid one resolved against the result's size.
    pub(crate) fn deliver(mut self, delivery: Delivery, fixture: &Fixture) -> Self {
        self.format = delivery.format;
        let mut bytes = 0usize;
        if let Ok(result) = &self.outcome {
            let rows = result.rows(fixture, 0, result.len);
            let sizes = rows
                .iter()
                .map(|row| serde_json::to_vec(row).map_or(0, |v| v.len()));
            let limit = delivery
                .byte_limit
                .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
            let mut kept = 0;
            for size in sizes {
                if bytes.saturating_add(size) > limit {
                    break;
                }
                bytes += size;
                kept += 1;
            }
            if kept < result.len {
                self.shown = kept;
                self.truncated = true;
            }
        }
        self.external = match delivery.disposition {
            Disposition::Inline => false,
            Disposition::ExternalLinks => true,
            Disposition::InlineOrExternalLinks => {
                bytes > delivery.hybrid_inline_bytes || self.shown > self.chunk_rows
            }
        };
        self
    }

    /// The statement id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Whether `principal` submitted it.
    pub(crate) fn owned_by(&self, principal: &Principal) -> bool {
        self.owner == principal.user_name
    }

    /// When it reaches its terminal state unless canceled first.
    pub(crate) fn done_at(&self) -> Instant {
        self.done_at
    }

    /// The format its result is delivered in.
    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// Notified when the statement is canceled.
    pub(crate) fn wake(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// The state at `now`.
    pub(crate) fn state_at(&self, now: Instant) -> StatementState {
        if self.closed {
            StatementState::Closed
        } else if self.canceled {
            StatementState::Canceled
        } else if now < self.running_at {
            StatementState::Pending
        } else if now < self.done_at {
            StatementState::Running
        } else if self.outcome.is_ok() {
            StatementState::Succeeded
        } else {
            StatementState::Failed
        }
    }

    /// Cancels the statement if it has not finished at `now`; returns whether it did.
    pub(crate) fn cancel(&mut self, now: Instant) -> bool {
        if self.state_at(now).is_terminal() {
            return false;
        }
        self.canceled = true;
        self.wake.notify_waiters();
        true
    }

    /// Closes the statement: it is canceled if still running, and its result is released.
    pub(crate) fn close(&mut self, now: Instant) {
        self.cancel(now);
        self.closed = true;
    }

    /// The response of execute and get at `now`: manifest and first chunk only once succeeded.
    ///
    /// # Errors
    /// [`EncodeError`] when an external chunk cannot be encoded to count its bytes.
    pub(crate) fn response(
        &self,
        now: Instant,
        fixture: &Fixture,
        links: &Links<'_>,
    ) -> Result<StatementResponse, EncodeError> {
        let state = self.state_at(now);
        let mut response = StatementResponse {
            statement_id: self.id.clone(),
            status: StatementStatus {
                state,
                error: None,
                sql_state: None,
            },
            manifest: None,
            result: None,
        };
        match (&self.outcome, state) {
            (Ok(result), StatementState::Succeeded) => {
                response.manifest = Some(self.manifest(result, fixture)?);
                response.result = Some(self.result_chunk(result, 0, fixture, links)?);
            }
            (Err(error), StatementState::Failed) => {
                response.status.error = Some(ServiceError {
                    error_code: "BAD_REQUEST",
                    message: error.to_string(),
                });
                response.status.sql_state = Some(error.sql_state());
            }
            _ => {}
        }
        Ok(response)
    }

    /// The succeeded result, or the state that keeps it from being read.
    fn succeeded(&self, now: Instant) -> Result<&ResultSet, ChunkError> {
        match (&self.outcome, self.state_at(now)) {
            (Ok(result), StatementState::Succeeded) => Ok(result),
            (_, state) => Err(ChunkError::NotSucceeded(state)),
        }
    }

    fn check_index(&self, index: usize) -> Result<(), ChunkError> {
        let count = self.chunk_count();
        if index >= count {
            return Err(ChunkError::OutOfRange { count });
        }
        Ok(())
    }

    /// Chunk `index` of the result, as the chunk endpoint returns it: rows inline, or the link
    /// to them.
    ///
    /// # Errors
    /// [`ChunkError::NotSucceeded`] before success (or after failure, cancel or close),
    /// [`ChunkError::OutOfRange`] past the last chunk, [`ChunkError::Encode`] when its bytes
    /// cannot be produced.
    pub(crate) fn chunk(
        &self,
        index: usize,
        now: Instant,
        fixture: &Fixture,
        links: &Links<'_>,
    ) -> Result<ResultChunk, ChunkError> {
        let result = self.succeeded(now)?;
        self.check_index(index)?;
        Ok(self.result_chunk(result, index, fixture, links)?)
    }

    /// The bytes of chunk `index` in the statement's format, as its external link serves them.
    ///
    /// # Errors
    /// As [`Statement::chunk`].
    pub(crate) fn chunk_bytes(
        &self,
        index: usize,
        now: Instant,
        fixture: &Fixture,
    ) -> Result<Vec<u8>, ChunkError> {
        let result = self.succeeded(now)?;
        self.check_index(index)?;
        Ok(self.encode_chunk(result, index, fixture)?)
    }

    /// One chunk per `chunk_rows` rows, and one empty chunk for an empty result.
    fn chunk_count(&self) -> usize {
        self.shown.div_ceil(self.chunk_rows).max(1)
    }

    /// `(row_offset, row_count)` of chunk `index`.
    fn chunk_bounds(&self, index: usize) -> (usize, usize) {
        let offset = index.saturating_mul(self.chunk_rows).min(self.shown);
        (offset, self.chunk_rows.min(self.shown - offset))
    }

    fn encode_chunk(
        &self,
        result: &ResultSet,
        index: usize,
        fixture: &Fixture,
    ) -> Result<Vec<u8>, EncodeError> {
        let (row_offset, row_count) = self.chunk_bounds(index);
        let rows = result.rows(fixture, row_offset, row_offset + row_count);
        let columns: Vec<ColumnType<'_>> =
            result.columns.iter().map(ColumnInfo::column_type).collect();
        Ok(results::encode(self.format, &columns, &rows)?)
    }

    fn manifest(&self, result: &ResultSet, fixture: &Fixture) -> Result<Manifest, EncodeError> {
        let count = self.chunk_count();
        let mut chunks = Vec::with_capacity(count);
        let mut total_bytes = 0;
        for chunk_index in 0..count {
            let (row_offset, row_count) = self.chunk_bounds(chunk_index);
            let byte_count = if self.external {
                let bytes = self.encode_chunk(result, chunk_index, fixture)?.len();
                total_bytes += bytes;
                Some(bytes)
            } else {
                None
            };
            chunks.push(ChunkInfo {
                chunk_index,
                row_offset,
                row_count,
                byte_count,
            });
        }
        Ok(Manifest {
            format: self.format.as_str(),
            schema: ResultSchema {
                column_count: result.columns.len(),
                columns: result.columns.clone(),
            },
            total_chunk_count: count,
            total_row_count: self.shown,
            total_byte_count: self.external.then_some(total_bytes),
            chunks,
            truncated: self.truncated,
        })
    }

    fn result_chunk(
        &self,
        result: &ResultSet,
        index: usize,
        fixture: &Fixture,
        links: &Links<'_>,
    ) -> Result<ResultChunk, EncodeError> {
        let (row_offset, row_count) = self.chunk_bounds(index);
        let next = index + 1;
        let has_next = next < self.chunk_count();
        let next_chunk_index = has_next.then_some(next);
        let next_chunk_internal_link = has_next.then(|| {
            format!(
                "/api/2.0/sql/statements/{}/result/chunks/{next}?row_offset={}",
                self.id,
                row_offset + row_count
            )
        });
        if self.external {
            let bytes = self.encode_chunk(result, index, fixture)?;
            let expires_at = chrono::Utc::now() + links.ttl;
            let token = links.signer.token(&LinkTarget {
                statement_id: self.id.clone(),
                chunk_index: index,
                expires_at,
            });
            let link = ExternalLink {
                chunk_index: index,
                row_offset,
                row_count,
                byte_count: bytes.len(),
                external_link: format!("{}/_emulator/results/{token}", links.base_url),
                expiration: expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                http_headers: serde_json::Map::new(),
                next_chunk_index,
                next_chunk_internal_link,
            };
            return Ok(ResultChunk::External {
                external_links: vec![link],
            });
        }
        let (data_array, attachment) = match (row_count > 0, self.format) {
            (false, _) => (None, None),
            (true, Format::JsonArray) => (
                Some(result.rows(fixture, row_offset, row_offset + row_count)),
                None,
            ),
            // The hybrid disposition's inline form for Arrow and CSV: the bytes, base64.
            (true, _) => {
                let bytes = self.encode_chunk(result, index, fixture)?;
                (None, Some(STANDARD.encode(bytes)))
            }
        };
        Ok(ResultChunk::Inline {
            chunk_index: index,
            row_offset,
            row_count,
            data_array,
            attachment,
            next_chunk_index,
            next_chunk_internal_link,
        })
    }
}

impl ColumnInfo {
    /// What the result encoders need of the column.
    fn column_type(&self) -> ColumnType<'_> {
        ColumnType {
            name: &self.name,
            type_name: &self.type_name,
            precision: self.type_precision,
            scale: self.type_scale,
        }
    }
}

/// Why a chunk cannot be returned.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChunkError {
    /// The statement is not (or not yet) `SUCCEEDED`; it is in this state.
    #[error("the statement is {0}")]
    NotSucceeded(StatementState),
    /// The index is past the last chunk; the result has `count` chunks.
    #[error("the result has {count} chunk(s)")]
    OutOfRange { count: usize },
    /// The chunk's bytes could not be produced.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Inserts `statement`, first forgetting the oldest statements when the map is full.
pub(crate) fn insert_bounded(statements: &mut HashMap<String, Statement>, statement: Statement) {
    if statements.len() >= STATEMENT_CAPACITY {
        let mut seqs: Vec<u64> = statements.values().map(|s| s.seq).collect();
        let batch = EVICTION_BATCH.clamp(1, seqs.len());
        let (_, cutoff, _) = seqs.select_nth_unstable(batch - 1);
        let cutoff = *cutoff;
        statements.retain(|_, s| s.seq > cutoff);
    }
    statements.insert(statement.id.clone(), statement);
}

// ---------------------------------------------------------------------------------------------
// Wire shapes
// ---------------------------------------------------------------------------------------------

/// The body of execute and get (`StatementResponse`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatementResponse {
    statement_id: String,
    status: StatementStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest: Option<Manifest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<ResultChunk>,
}

/// `StatementStatus`; `error` and `sql_state` only when `FAILED`.
#[derive(Debug, Clone, Serialize)]
struct StatementStatus {
    state: StatementState,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ServiceError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sql_state: Option<&'static str>,
}

/// `ServiceError`: the `error_code` is one of the API's `ServiceErrorCode` values.
#[derive(Debug, Clone, Serialize)]
struct ServiceError {
    error_code: &'static str,
    message: String,
}

/// `ResultManifest`. `result_compression` is never sent: results are not compressed, and the
/// connector decompresses only when it says `LZ4_FRAME`.
#[derive(Debug, Clone, Serialize)]
struct Manifest {
    format: &'static str,
    schema: ResultSchema,
    total_chunk_count: usize,
    total_row_count: usize,
    /// Only for external links, where each chunk is a download of known size.
    #[serde(skip_serializing_if = "Option::is_none")]
    total_byte_count: Option<usize>,
    chunks: Vec<ChunkInfo>,
    truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
struct ResultSchema {
    column_count: usize,
    columns: Vec<ColumnInfo>,
}

#[derive(Debug, Clone, Serialize)]
struct ChunkInfo {
    chunk_index: usize,
    row_offset: usize,
    row_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    byte_count: Option<usize>,
}

/// `ExternalLink`: where to download one chunk, without the workspace token.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ExternalLink {
    chunk_index: usize,
    row_offset: usize,
    row_count: usize,
    byte_count: usize,
    external_link: String,
    /// RFC 3339, UTC.
    expiration: String,
    http_headers: serde_json::Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_chunk_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_chunk_internal_link: Option<String>,
}

/// `ResultData`: one inline chunk (`data_array` absent when it has no rows; `attachment` for the
/// hybrid disposition's Arrow or CSV bytes), or the link to one.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum ResultChunk {
    Inline {
        chunk_index: usize,
        row_offset: usize,
        row_count: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        data_array: Option<Vec<Vec<Option<String>>>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        attachment: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_chunk_index: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_chunk_internal_link: Option<String>,
    },
    External {
        external_links: Vec<ExternalLink>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn principal(user_name: &str, groups: &[&str]) -> Principal {
        Principal {
            id: "1".into(),
            user_name: user_name.into(),
            display_name: user_name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            active: true,
            is_service_principal: false,
        }
    }

    fn alice() -> Principal {
        principal("alice@example.com", &["users", "data-analysts"])
    }

    fn bob() -> Principal {
        principal("bob@example.com", &["users"])
    }

    fn run(sql: &str, who: &Principal) -> Result<ResultSet, SqlError> {
        let fixture = Fixture::default();
        let context = Context {
            fixture: &fixture,
            principal: who,
            catalog: DEFAULT_CATALOG,
            schema: DEFAULT_SCHEMA,
        };
        evaluate(sql, &context, None)
    }

    fn timing(pending_ms: u64, running_ms: u64, chunk_rows: usize) -> Timing {
        Timing {
            pending: Duration::from_millis(pending_ms),
            running: Duration::from_millis(running_ms),
            chunk_rows,
            // Already running: these tests are about the statement's own clock.
            warehouse_ready: Instant::now()
                .checked_sub(Duration::from_secs(1))
                .unwrap_or_else(Instant::now),
        }
    }

    fn links(signer: &LinkSigner) -> Links<'_> {
        Links {
            signer,
            base_url: "http://127.0.0.1:1",
            ttl: chrono::Duration::minutes(15),
        }
    }

    #[test]
    fn accepted_statements_parse_to_their_query() {
        // Arrange
        let q = |projection, table: &[&str], limit, offset| Query {
            projection,
            table: table.iter().map(|p| (*p).to_owned()).collect(),
            limit,
            offset,
        };
        let cases = [
            ("SELECT * FROM t", q(Projection::All, &["t"], None, None)),
            (
                "select * from S.T",
                q(Projection::All, &["S", "T"], None, None),
            ),
            (
                "SeLeCt*FrOm a.b.c;",
                q(Projection::All, &["a", "b", "c"], None, None),
            ),
            (
                "\n  SELECT\t*\nFROM  main . default . customers  LIMIT 5 OFFSET 10 ; ",
                q(
                    Projection::All,
                    &["main", "default", "customers"],
                    Some(5),
                    Some(10),
                ),
            ),
            (
                "SELECT * FROM t OFFSET 3",
                q(Projection::All, &["t"], None, Some(3)),
            ),
            (
                "SELECT * FROM t LIMIT 0",
                q(Projection::All, &["t"], Some(0), None),
            ),
            (
                "SELECT * FROM t LIMIT -0",
                q(Projection::All, &["t"], Some(0), None),
            ),
            (
                "SELECT * FROM t LIMIT 2147483647",
                q(Projection::All, &["t"], Some(2_147_483_647), None),
            ),
            (
                "SELECT COUNT(*) FROM t",
                q(Projection::Count, &["t"], None, None),
            ),
            (
                "select count ( 1 ) from t",
                q(Projection::Count, &["t"], None, None),
            ),
            (
                "SELECT * FROM `my-cat`.`we``ird`.`ünï cødé`",
                q(
                    Projection::All,
                    &["my-cat", "we`ird", "ünï cødé"],
                    None,
                    None,
                ),
            ),
            ("SELECT * FROM ``", q(Projection::All, &[""], None, None)),
            (
                "-- a comment\nSELECT /* inline */ * FROM t -- trailing",
                q(Projection::All, &["t"], None, None),
            ),
            (
                "SELECT * FROM limit",
                q(Projection::All, &["limit"], None, None),
            ),
        ];

        for (sql, expected) in cases {
            // Act
            let parsed = parse(sql);

            // Assert
            assert_eq!(parsed, Ok(expected), "{sql}");
        }
    }

    #[test]
    fn rejected_statements_name_their_error_class() {
        // Arrange
        let cases = [
            ("", "PARSE_EMPTY_STATEMENT"),
            ("   \n\t", "PARSE_EMPTY_STATEMENT"),
            (";", "PARSE_EMPTY_STATEMENT"),
            ("-- only a comment", "PARSE_EMPTY_STATEMENT"),
            ("SELECT", "PARSE_SYNTAX_ERROR"),
            ("SELECT * FROM", "PARSE_SYNTAX_ERROR"),
            ("SELECT id FROM t", "PARSE_SYNTAX_ERROR"),
            ("SELECT * FROM t WHERE id = 1", "PARSE_SYNTAX_ERROR"),
            ("SELECT * FROM t;;", "PARSE_SYNTAX_ERROR"),
            ("SELECT * FROM t; SELECT * FROM t", "PARSE_SYNTAX_ERROR"),
            ("SELECT * FROM a.b.c.d", "PARSE_SYNTAX_ERROR"),
            ("SELECT * FROM a..b", "PARSE_SYNTAX_ERROR"),
            ("SELECT * FROM `unterminated", "PARSE_SYNTAX_ERROR"),
            ("SELECT * FROM t LIMIT", "PARSE_SYNTAX_ERROR"),
            ("SELECT * FROM t LIMIT 1.5", "PARSE_SYNTAX_ERROR"),
            ("SELECT * FROM t LIMIT :n", "PARSE_SYNTAX_ERROR"),
            ("SELECT * FROM t OFFSET 1 LIMIT 1", "PARSE_SYNTAX_ERROR"),
            ("SELECT * FROM tablé", "PARSE_SYNTAX_ERROR"),
            ("SELECT COUNT(2) FROM t", "PARSE_SYNTAX_ERROR"),
            ("SELECT COUNT(* FROM t", "PARSE_SYNTAX_ERROR"),
            ("INSERT INTO t VALUES (1)", "PARSE_SYNTAX_ERROR"),
            ("SELECT * FROM t /* open", "UNCLOSED_BRACKETED_COMMENT"),
            (
                "SELECT * FROM t LIMIT -1",
                "INVALID_LIMIT_LIKE_EXPRESSION.IS_NEGATIVE",
            ),
            (
                "SELECT * FROM t OFFSET -7",
                "INVALID_LIMIT_LIKE_EXPRESSION.IS_NEGATIVE",
            ),
            (
                "SELECT * FROM t LIMIT 2147483648",
                "INVALID_LIMIT_LIKE_EXPRESSION.DATA_TYPE",
            ),
            (
                "SELECT * FROM t LIMIT 123456789012345678901234567890123456789012345",
                "INVALID_LIMIT_LIKE_EXPRESSION.DATA_TYPE",
            ),
        ];

        for (sql, class) in cases {
            // Act
            let error = parse(sql).expect_err(sql);

            // Assert
            assert_eq!(error.class(), class, "{sql}: {error}");
            assert!(
                error.to_string().starts_with(&format!("[{class}] ")),
                "{error}"
            );
        }
    }

    #[test]
    fn syntax_errors_point_at_the_offending_token_and_say_what_is_supported() {
        // Arrange
        let sql = "SELECT *\n  FROM t WHERE x";

        // Act
        let error = parse(sql).unwrap_err();

        // Assert
        let message = error.to_string();
        assert!(
            message.starts_with("[PARSE_SYNTAX_ERROR] Syntax error at or near 'WHERE'"),
            "{message}"
        );
        assert!(
            message.contains("SELECT COUNT(*) FROM <table>"),
            "{message}"
        );
        assert!(
            message.ends_with("SQLSTATE: 42601 (line 2, pos 9)"),
            "{message}"
        );
        assert_eq!(error.sql_state(), "42601");
    }

    #[test]
    fn limit_errors_read_like_spark() {
        // Arrange / Act
        let negative = parse("SELECT * FROM t LIMIT -1").unwrap_err();
        let too_big = parse("SELECT * FROM t OFFSET 99999999999").unwrap_err();

        // Assert
        assert_eq!(
            negative.to_string(),
            "[INVALID_LIMIT_LIKE_EXPRESSION.IS_NEGATIVE] The limit like expression \"-1\" is \
             invalid. The limit expression must be equal to or greater than 0, but got -1. \
             SQLSTATE: 42K0E"
        );
        assert!(
            too_big
                .to_string()
                .contains("The offset expression must be integer type, but got \"BIGINT\"."),
            "{too_big}"
        );
    }

    #[test]
    fn select_star_returns_fixture_columns_and_a_window_of_rows() {
        // Arrange / Act
        let result = run("SELECT * FROM customers LIMIT 3 OFFSET 5", &alice()).unwrap();

        // Assert
        let names: Vec<_> = result.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "name",
                "email",
                "signup_date",
                "is_active",
                "lifetime_value"
            ]
        );
        assert_eq!((result.start, result.len, result.truncated), (5, 3, false));
        let rows = result.rows(&Fixture::default(), 0, result.len);
        assert_eq!(rows[0][0].as_deref(), Some("6"));
        assert_eq!(
            rows[1][5], None,
            "Margaret Hamilton's lifetime value is NULL"
        );
        assert_eq!(rows[2][4].as_deref(), Some("true"));
    }

    #[test]
    fn offset_past_the_end_and_row_limit_shape_the_window() {
        // Arrange
        let fixture = Fixture::default();
        let who = alice();
        let context = Context {
            fixture: &fixture,
            principal: &who,
            catalog: "MAIN",
            schema: "Default",
        };

        // Act
        let past_end = evaluate("SELECT * FROM products OFFSET 100", &context, None).unwrap();
        let limited = evaluate("SELECT * FROM products", &context, Some(3)).unwrap();
        let exact = evaluate("SELECT * FROM products", &context, Some(8)).unwrap();

        // Assert
        assert_eq!((past_end.len, past_end.truncated), (0, false));
        assert_eq!((limited.len, limited.truncated), (3, true));
        assert_eq!((exact.len, exact.truncated), (8, false));
    }

    #[test]
    fn count_is_one_bigint_row_named_like_spark() {
        // Arrange / Act
        let result = run("SELECT COUNT(*) FROM main.sales.orders", &alice()).unwrap();
        let skipped = run("SELECT COUNT(*) FROM main.sales.orders OFFSET 1", &alice()).unwrap();

        // Assert
        assert_eq!(result.columns, [ColumnInfo::count()]);
        assert_eq!(
            result.rows(&Fixture::default(), 0, 1),
            [[Some("120".to_owned())]]
        );
        assert_eq!(skipped.len, 0);
    }

    #[test]
    fn names_resolve_case_insensitively_against_the_context() {
        // Arrange
        let fixture = Fixture::default();
        let who = alice();
        let context = Context {
            fixture: &fixture,
            principal: &who,
            catalog: "samples",
            schema: "nyctaxi",
        };

        // Act
        let one_part = evaluate("SELECT * FROM TRIPS", &context, None).unwrap();
        let two_parts = evaluate("SELECT * FROM `NycTaxi`.trips", &context, None).unwrap();
        let three_parts = evaluate("SELECT * FROM Main.Default.Customers", &context, None).unwrap();

        // Assert
        assert_eq!(one_part.len, 60);
        assert_eq!(one_part.source, two_parts.source);
        assert_eq!(three_parts.len, 25);
    }

    #[test]
    fn unknown_tables_are_not_found_and_hidden_ones_are_not_permitted() {
        // Arrange / Act
        let missing = run("SELECT * FROM main.`default`.nope", &alice()).unwrap_err();
        let missing_catalog = run("SELECT * FROM nope.a.b", &bob()).unwrap_err();
        let hidden_schema = run("SELECT * FROM main.sales.orders", &bob()).unwrap_err();
        let hidden_catalog = run("SELECT COUNT(*) FROM samples.nyctaxi.trips", &bob()).unwrap_err();

        // Assert
        assert_eq!(missing.class(), "TABLE_OR_VIEW_NOT_FOUND");
        assert_eq!(missing.sql_state(), "42P01");
        assert!(
            missing.to_string().starts_with(
                "[TABLE_OR_VIEW_NOT_FOUND] The table or view `main`.`default`.`nope` cannot be found."
            ),
            "{missing}"
        );
        assert_eq!(missing_catalog.class(), "TABLE_OR_VIEW_NOT_FOUND");
        assert_eq!(
            hidden_schema.to_string(),
            "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have SELECT on \
             Table 'main.sales.orders'. SQLSTATE: 42501"
        );
        assert_eq!(hidden_catalog.class(), "INSUFFICIENT_PERMISSIONS");
    }

    #[test]
    fn values_render_as_strings_by_column_type() {
        // Arrange
        let column = |type_name: &str, type_text: &str| {
            ColumnInfo::of_fixture(
                0,
                &Column {
                    name: "c".into(),
                    type_text: type_text.into(),
                    type_name: type_name.into(),
                    nullable: true,
                    comment: None,
                },
            )
        };
        let decimal = column("DECIMAL", "decimal(10,2)");
        let double = column("DOUBLE", "double");
        let long = column("LONG", "bigint");
        let cases = [
            (&decimal, json!(12.5), Some("12.50")),
            (&decimal, json!(129), Some("129.00")),
            (&decimal, json!("3.14159"), Some("3.14159")),
            (&double, json!(129), Some("129.0")),
            (&double, json!(1652.97), Some("1652.97")),
            (&long, json!(-42), Some("-42")),
            (&long, json!(null), None),
            (&long, json!(true), Some("true")),
            (&long, json!({"a": [1, "x"]}), Some(r#"{"a":[1,"x"]}"#)),
            (
                &long,
                json!("2026-02-02T07:13:00Z"),
                Some("2026-02-02T07:13:00Z"),
            ),
        ];

        for (column, value, expected) in cases {
            // Act
            let rendered = column.render(&value);

            // Assert
            assert_eq!(
                rendered.as_deref(),
                expected,
                "{value} as {}",
                column.type_text
            );
        }
    }

    #[test]
    fn type_text_is_upper_cased_except_field_names() {
        // Arrange
        let cases = [
            ("bigint", "BIGINT"),
            ("decimal(10,2)", "DECIMAL(10,2)"),
            ("array<string>", "ARRAY<STRING>"),
            ("map<string, int>", "MAP<STRING, INT>"),
            (
                "struct<firstName: string, `odd name`:int>",
                "STRUCT<firstName: STRING, `odd name`:INT>",
            ),
        ];

        for (text, expected) in cases {
            // Act / Assert
            assert_eq!(upper_type_text(text), expected);
        }
        assert_eq!(decimal_precision_scale("decimal(10,2)"), (10, 2));
        assert_eq!(decimal_precision_scale("decimal"), (10, 0));
        assert_eq!(decimal_precision_scale("decimal(10,4000000000)"), (10, 10));
    }

    #[test]
    fn state_follows_the_clock_and_the_outcome() {
        // Arrange
        let start = Instant::now();
        let ok = Statement::new(
            "s1".into(),
            &alice(),
            start,
            timing(100, 200, 10),
            run("SELECT * FROM customers", &alice()),
        );
        let bad = Statement::new(
            "s2".into(),
            &alice(),
            start,
            timing(100, 200, 10),
            run("SELECT", &alice()),
        );
        let at = |ms| start + Duration::from_millis(ms);

        // Act / Assert
        assert_eq!(ok.state_at(at(0)), StatementState::Pending);
        assert_eq!(ok.state_at(at(99)), StatementState::Pending);
        assert_eq!(ok.state_at(at(100)), StatementState::Running);
        assert_eq!(ok.state_at(at(299)), StatementState::Running);
        assert_eq!(ok.state_at(at(300)), StatementState::Succeeded);
        assert_eq!(bad.state_at(at(299)), StatementState::Running);
        assert_eq!(bad.state_at(at(300)), StatementState::Failed);
        assert_eq!(ok.done_at(), at(300));
    }

    #[test]
    fn cancel_wins_only_before_the_terminal_state() {
        // Arrange
        let start = Instant::now();
        let outcome = run("SELECT * FROM customers", &alice());
        let mut early = Statement::new(
            "a".into(),
            &alice(),
            start,
            timing(0, 100, 10),
            outcome.clone(),
        );
        let mut late = Statement::new("b".into(), &alice(), start, timing(0, 100, 10), outcome);
        let after = start + Duration::from_millis(100);

        // Act
        let canceled_early = early.cancel(start);
        let canceled_late = late.cancel(after);

        // Assert
        assert!(canceled_early);
        assert_eq!(early.state_at(after), StatementState::Canceled);
        assert!(!canceled_late);
        assert_eq!(late.state_at(after), StatementState::Succeeded);
    }

    #[tokio::test]
    async fn cancel_wakes_whoever_waits_for_the_statement() {
        // Arrange
        let start = Instant::now();
        let outcome = run("SELECT * FROM customers", &alice());
        let mut statement =
            Statement::new("w".into(), &alice(), start, timing(60_000, 0, 10), outcome);
        let wake = statement.wake();
        let canceled = wake.notified();
        tokio::pin!(canceled);
        canceled.as_mut().enable();

        // Act
        statement.cancel(Instant::now());

        // Assert
        let woken = tokio::time::timeout(Duration::from_secs(5), canceled).await;
        assert!(woken.is_ok(), "a cancel must wake the waiter at once");
    }

    #[test]
    fn results_are_cut_into_linked_chunks() {
        // Arrange
        let fixture = Fixture::default();
        let signer = LinkSigner::new();
        let now = Instant::now();
        let statement = Statement::new(
            "s".into(),
            &alice(),
            now,
            timing(0, 0, 10),
            run("SELECT * FROM customers", &alice()),
        );

        // Act
        let body =
            serde_json::to_value(statement.response(now, &fixture, &links(&signer)).unwrap())
                .unwrap();
        let last = statement.chunk(2, now, &fixture, &links(&signer)).unwrap();

        // Assert
        assert_eq!(body["status"], json!({"state": "SUCCEEDED"}));
        assert_eq!(body["manifest"]["total_chunk_count"], 3);
        assert_eq!(body["manifest"]["total_row_count"], 25);
        assert_eq!(
            body["manifest"]["chunks"],
            json!([
                {"chunk_index": 0, "row_offset": 0, "row_count": 10},
                {"chunk_index": 1, "row_offset": 10, "row_count": 10},
                {"chunk_index": 2, "row_offset": 20, "row_count": 5},
            ])
        );
        assert_eq!(body["manifest"]["schema"]["column_count"], 6);
        assert_eq!(
            body["manifest"]["schema"]["columns"][0],
            json!({"name": "id", "position": 0, "type_name": "LONG", "type_text": "BIGINT"})
        );
        assert_eq!(body["result"]["next_chunk_index"], 1);
        assert_eq!(
            body["result"]["next_chunk_internal_link"],
            "/api/2.0/sql/statements/s/result/chunks/1?row_offset=10"
        );
        let last = serde_json::to_value(last).unwrap();
        assert_eq!(last["row_offset"], 20);
        assert_eq!(last["data_array"].as_array().map(Vec::len), Some(5));
        assert!(last.get("next_chunk_index").is_none());
        assert!(matches!(
            statement.chunk(3, now, &fixture, &links(&signer)),
            Err(ChunkError::OutOfRange { count: 3 })
        ));
    }

    #[test]
    fn an_empty_result_is_one_chunk_without_data() {
        // Arrange
        let fixture = Fixture::default();
        let signer = LinkSigner::new();
        let now = Instant::now();
        let statement = Statement::new(
            "e".into(),
            &alice(),
            now,
            timing(0, 0, 10),
            run("SELECT * FROM products LIMIT 0", &alice()),
        );

        // Act
        let body =
            serde_json::to_value(statement.response(now, &fixture, &links(&signer)).unwrap())
                .unwrap();

        // Assert
        assert_eq!(body["manifest"]["total_chunk_count"], 1);
        assert_eq!(body["manifest"]["total_row_count"], 0);
        assert_eq!(
            body["result"],
            json!({"chunk_index": 0, "row_offset": 0, "row_count": 0})
        );
    }

    #[test]
    fn failures_carry_bad_request_and_the_sql_state_without_results() {
        // Arrange
        let fixture = Fixture::default();
        let signer = LinkSigner::new();
        let now = Instant::now();
        let statement = Statement::new(
            "f".into(),
            &bob(),
            now,
            timing(0, 0, 10),
            run("SELECT * FROM main.sales.orders", &bob()),
        );

        // Act
        let body =
            serde_json::to_value(statement.response(now, &fixture, &links(&signer)).unwrap())
                .unwrap();
        let chunk = statement.chunk(0, now, &fixture, &links(&signer));

        // Assert
        assert_eq!(body["status"]["state"], "FAILED");
        assert_eq!(body["status"]["error"]["error_code"], "BAD_REQUEST");
        assert_eq!(body["status"]["sql_state"], "42501");
        assert!(body.get("manifest").is_none() && body.get("result").is_none());
        assert!(matches!(
            chunk,
            Err(ChunkError::NotSucceeded(StatementState::Failed))
        ));
    }

    #[test]
    fn pending_statements_show_only_their_state() {
        // Arrange
        let fixture = Fixture::default();
        let signer = LinkSigner::new();
        let now = Instant::now();
        let statement = Statement::new(
            "p".into(),
            &alice(),
            now,
            timing(1000, 0, 10),
            run("SELECT", &alice()),
        );

        // Act
        let body =
            serde_json::to_value(statement.response(now, &fixture, &links(&signer)).unwrap())
                .unwrap();

        // Assert
        assert_eq!(
            body,
            json!({"statement_id": "p", "status": {"state": "PENDING"}})
        );
    }

    #[test]
    fn the_statement_map_stays_bounded_and_forgets_the_oldest() {
        // Arrange
        let mut statements = HashMap::new();
        let now = Instant::now();
        let outcome = run("SELECT COUNT(*) FROM products", &alice());
        let make = |i: usize| {
            Statement::new(
                format!("s{i}"),
                &alice(),
                now,
                timing(0, 0, 10),
                outcome.clone(),
            )
        };

        // Act
        for i in 0..=STATEMENT_CAPACITY {
            insert_bounded(&mut statements, make(i));
        }

        // Assert
        assert!(statements.len() <= STATEMENT_CAPACITY);
        assert!(!statements.contains_key("s0"));
        assert!(statements.contains_key(&format!("s{STATEMENT_CAPACITY}")));
        assert!(statements.contains_key(&format!("s{}", STATEMENT_CAPACITY - 1)));
    }
}
