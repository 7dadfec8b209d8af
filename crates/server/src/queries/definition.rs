//! One governed query: its file's header (the syntax below), its SQL, and the checking of a
//! caller's parameter values against the declared types. This module parses and validates; it
//! knows nothing of HTTP, caches or the workspace.
//!
//! # The query file
//!
//! A query is a `.sql` file whose name (without `.sql`) is the query's name: 1–64 characters of
//! `[a-z0-9_-]`. The file opens with a header of `--` comment lines; the first line that is not
//! a `--` comment ends it and starts the SQL. Header lines are directives, `-- @key value`:
//!
//! ```sql
//! -- @title Orders per day
//! -- @description Orders placed each day between two dates,
//! --   for a line chart.
//! -- @run_as user
//! -- @cache_ttl_secs 300
//! -- @param start_date DATE required
//! --   First day, inclusive.
//! -- @param status STRING = completed
//! --   Only orders in this status.
//! SELECT CAST(ordered_at AS DATE) AS day, COUNT(*) AS orders
//! FROM main.sales.orders
//! WHERE ordered_at >= :start_date AND status = :status
//! GROUP BY 1 ORDER BY 1
//! ```
//!
//! | directive | required | value |
//! |---|---|---|
//! | `@title` | yes | one line of text |
//! | `@description` | no | text; more `--` lines that are not directives continue it |
//! | `@run_as` | yes | `user` (the caller's token) or `app` (the app's service principal) |
//! | `@cache_ttl_secs` | yes | 0 (never cached) to 86 400 |
//! | `@param` | no, at most 32 | `name TYPE required` or `name TYPE = default`; continuation lines describe it |
//!
//! - A parameter name is `[A-Za-z_][A-Za-z0-9_]{0,63}`; TYPE is one of `STRING`, `INT`,
//!   `BIGINT`, `DOUBLE`, `DECIMAL(p,s)` (1 ≤ p ≤ 38, 0 ≤ s ≤ p), `BOOLEAN`, `DATE`, `TIMESTAMP`
//!   (case-insensitive). A default is the rest of the line after `=`, trimmed, written as a
//!   caller would send it as a JSON string (`2024-01-01`, `true`, `10`, `completed`), and must be
//!   valid for the type.
//! - Continuation lines (any `--` line that is not a directive) append to the description of
//!   the directive above them, which must be `@description` or `@param`. Empty `--` lines are
//!   skipped.
//! - The SQL must be non-empty and use exactly the declared parameters, each as `:name`
//!   (markers inside string literals, quoted identifiers and comments do not count, nor the
//!   `::` cast). Values are always sent as typed statement parameters, never written into the
//!   SQL.
//! - A file is at most 64 KiB.
//!
//! Every refusal names the line ([`DefinitionError`]).
//!
//! # Parameter values
//!
//! [`QueryDefinition::bind`] checks a request's `parameters` object: unknown names, missing
//! required ones, and values of the wrong JSON type or that do not parse as the declared type
//! are refused naming the parameter. `null` or an absent member takes the default. Accepted
//! JSON: STRING a string (at most [`MAX_STRING_PARAM_CHARS`] characters); INT a whole number
//! in the 32-bit range; BIGINT a whole number in the 64-bit range, or a string of one (above
//! 2^53 JavaScript cannot send it as a number); DOUBLE a finite number; DECIMAL(p,s) a number or
//! a string with at most p−s integer and s fraction digits; BOOLEAN `true`/`false`; DATE a
//! `YYYY-MM-DD` string; TIMESTAMP an RFC 3339 string (sent in UTC) or `YYYY-MM-DD[ T]HH:MM:SS[.f]`
//! (sent as written, in the warehouse's session time zone). Each value is normalised (e.g.
//! DECIMAL(10,2) `5` → `5.00`), so equal values share one cache entry.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value;

/// Longest query file, in bytes.
pub const MAX_FILE_BYTES: usize = 64 * 1024;
/// Most parameters of one query.
pub const MAX_PARAMS: usize = 32;
/// Longest cache TTL a query may declare.
pub const MAX_CACHE_TTL_SECS: u64 = 86_400;
/// Longest STRING parameter value, in characters.
pub const MAX_STRING_PARAM_CHARS: usize = 4_096;
/// Longest query name.
pub const MAX_NAME_CHARS: usize = 64;

/// Whose identity a query runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunAs {
    /// The caller's forwarded token; results are cached per user.
    User,
    /// The app's service principal; results are shared by every caller.
    App,
}

impl RunAs {
    /// `user` or `app`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::App => "app",
        }
    }
}

/// A parameter's declared SQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamType {
    /// `STRING`.
    String,
    /// `INT` (32-bit).
    Int,
    /// `BIGINT` (64-bit).
    Bigint,
    /// `DOUBLE`.
    Double,
    /// `DECIMAL(precision, scale)`.
    Decimal {
        /// Total digits.
        precision: u8,
        /// Digits after the point.
        scale: u8,
    },
    /// `BOOLEAN`.
    Boolean,
    /// `DATE`.
    Date,
    /// `TIMESTAMP`.
    Timestamp,
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String => f.write_str("STRING"),
            Self::Int => f.write_str("INT"),
            Self::Bigint => f.write_str("BIGINT"),
            Self::Double => f.write_str("DOUBLE"),
            Self::Decimal { precision, scale } => write!(f, "DECIMAL({precision},{scale})"),
            Self::Boolean => f.write_str("BOOLEAN"),
            Self::Date => f.write_str("DATE"),
            Self::Timestamp => f.write_str("TIMESTAMP"),
        }
    }
}

impl ParamType {
    /// Parses a declared type, e.g. `decimal(10, 2)`.
    fn parse(text: &str) -> Option<Self> {
        let upper = text.to_ascii_uppercase();
        Some(match upper.as_str() {
            "STRING" => Self::String,
            "INT" => Self::Int,
            "BIGINT" => Self::Bigint,
            "DOUBLE" => Self::Double,
            "BOOLEAN" => Self::Boolean,
            "DATE" => Self::Date,
            "TIMESTAMP" => Self::Timestamp,
            _ => {
                let inner = upper.strip_prefix("DECIMAL(")?.strip_suffix(')')?;
                let (p, s) = inner.split_once(',')?;
                let precision: u8 = p.trim().parse().ok()?;
                let scale: u8 = s.trim().parse().ok()?;
                if !(1..=38).contains(&precision) || scale > precision {
                    return None;
                }
                Self::Decimal { precision, scale }
            }
        })
    }

    /// Checks and normalises one value of this type (see the module header).
    ///
    /// # Errors
    /// Why the value is refused, in words for the caller.
    pub fn normalise(self, value: &Value) -> Result<String, String> {
        let wrong = |what: &str| format!("must be {what} (the parameter is {self})");
        match self {
            Self::String => {
                let text = value.as_str().ok_or_else(|| wrong("a string"))?;
                if text.chars().count() > MAX_STRING_PARAM_CHARS {
                    return Err(format!(
                        "must be at most {MAX_STRING_PARAM_CHARS} characters"
                    ));
                }
                Ok(text.to_owned())
            }
            Self::Int => value
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .map(|n| n.to_string())
                .ok_or_else(|| wrong("a whole number from -2147483648 to 2147483647")),
            Self::Bigint => match value {
                Value::Number(n) => n.as_i64().map(|n| n.to_string()),
                Value::String(s) => s.trim().parse::<i64>().ok().map(|n| n.to_string()),
                _ => None,
            }
            .ok_or_else(|| wrong("a whole number in the 64-bit range, as a number or a string")),
            Self::Double => value
                .as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.to_string())
                .ok_or_else(|| wrong("a number")),
            Self::Decimal { precision, scale } => {
                let text = match value {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.trim().to_owned(),
                    _ => return Err(wrong("a number or a decimal string")),
                };
                normalise_decimal(&text, precision, scale).ok_or_else(|| {
                    wrong(&format!(
                        "a decimal with at most {} integer and {scale} fraction digits",
                        precision - scale
                    ))
                })
            }
            Self::Boolean => value
                .as_bool()
                .map(|b| b.to_string())
                .ok_or_else(|| wrong("true or false")),
            Self::Date => value
                .as_str()
                .and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok())
                .map(|d| d.format("%Y-%m-%d").to_string())
                .ok_or_else(|| wrong("a date written YYYY-MM-DD")),
            Self::Timestamp => value
                .as_str()
                .and_then(|s| normalise_timestamp(s.trim()))
                .ok_or_else(|| wrong("an RFC 3339 timestamp or YYYY-MM-DD HH:MM:SS")),
        }
    }
}

fn normalise_decimal(text: &str, precision: u8, scale: u8) -> Option<String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    if int.len() > usize::from(precision - scale) || frac.len() > usize::from(scale) {
        return None;
    }
    let int = if int.is_empty() { "0" } else { int };
    let sign = if negative && (int != "0" || !frac.is_empty()) {
        "-"
    } else {
        ""
    };
    if scale == 0 {
        return Some(format!("{sign}{int}"));
    }
    Some(format!(
        "{sign}{int}.{frac:0<width$}",
        width = usize::from(scale)
    ))
}

fn normalise_timestamp(text: &str) -> Option<String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(
            t.with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        );
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.f").to_string())
}

/// A declared parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamDefinition {
    /// Name, as used in `:name`.
    pub name: String,
    /// Declared type.
    pub param_type: ParamType,
    /// The normalised default; `None` when the parameter is required.
    pub default: Option<String>,
    /// What it means.
    pub description: String,
}

/// A parsed, validated query file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryDefinition {
    /// From the file name.
    pub name: String,
    /// `@title`.
    pub title: String,
    /// `@description`.
    pub description: String,
    /// `@run_as`.
    pub run_as: RunAs,
    /// `@cache_ttl_secs`; 0 never caches.
    pub cache_ttl_secs: u64,
    /// In declaration order.
    pub params: Vec<ParamDefinition>,
    /// The SQL after the header.
    pub sql: String,
}

/// A query file that cannot be used: which file, which line, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query file {file}, line {line}: {message}")]
pub struct DefinitionError {
    /// The file name, e.g. `top_customers.sql`.
    pub file: String,
    /// From 1; 0 for the file as a whole.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A parameter value refused by [`QueryDefinition::bind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// The parameter's name as the caller sent it (or the missing one's).
    pub name: String,
    /// Why.
    pub reason: String,
}

/// The checked, normalised values of one request, sorted by name: the statement parameters,
/// and part of the cache key.
pub type BoundParams = BTreeMap<String, (ParamType, String)>;

/// Whether `name` is a valid query name.
#[must_use]
pub fn is_query_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn is_param_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && name.len() <= 64
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What a continuation line extends.
enum Open {
    Nothing,
    Description,
    Param(usize),
}

impl QueryDefinition {
    /// Parses the file `file` (its name with `.sql`) with contents `text`.
    ///
    /// # Errors
    /// [`DefinitionError`] naming the line and the problem.
    pub fn parse(file: &str, text: &str) -> Result<Self, DefinitionError> {
        let error = |line: usize, message: String| DefinitionError {
            file: file.to_owned(),
            line,
            message,
        };
        let name = file.strip_suffix(".sql").unwrap_or(file);
        if !is_query_name(name) {
            return Err(error(
                0,
                format!(
                    "the name {name:?} must be 1-{MAX_NAME_CHARS} characters of a-z, 0-9, _ and -"
                ),
            ));
        }
        if text.len() > MAX_FILE_BYTES {
            return Err(error(
                0,
                format!("the file is larger than {MAX_FILE_BYTES} bytes"),
            ));
        }
        let (mut title, mut description, mut run_as, mut ttl) = (None, None, None, None);
        let mut params: Vec<ParamDefinition> = Vec::new();
        let mut open = Open::Nothing;
        let mut sql_start = text.len();
        let mut offset = 0;
        let mut sql_line = 1;
        for (index, raw) in text.split_inclusive('\n').enumerate() {
            let number = index + 1;
            let line = raw.trim_end_matches(['\n', '\r']).trim();
            let Some(comment) = line.strip_prefix("--") else {
                sql_start = offset;
                sql_line = number;
                break;
            };
            offset += raw.len();
            let comment = comment.trim();
            if comment.is_empty() {
                continue;
            }
            let Some(directive) = comment.strip_prefix('@') else {
                let target = match open {
                    Open::Nothing => {
                        return Err(error(
                            number,
                            "a comment line must follow @description or @param, or be a directive (-- @key value)".to_owned(),
                        ));
                    }
                    Open::Description => description.get_or_insert_with(String::new),
                    Open::Param(i) => &mut params[i].description,
                };
                if !target.is_empty() {
                    target.push(' ');
                }
                target.push_str(comment);
                continue;
            };
            let (key, value) = directive
                .split_once(char::is_whitespace)
                .map_or((directive, ""), |(k, v)| (k, v.trim()));
            let duplicate = |seen: bool| {
                if seen {
                    Err(error(number, format!("@{key} is given twice")))
                } else {
                    Ok(())
                }
            };
            open = Open::Nothing;
            match key {
                "title" => {
                    duplicate(title.is_some())?;
                    if value.is_empty() {
                        return Err(error(number, "@title needs a text".to_owned()));
                    }
                    title = Some(value.to_owned());
                }
                "description" => {
                    duplicate(description.is_some())?;
                    description = Some(value.to_owned());
                    open = Open::Description;
                }
                "run_as" => {
                    duplicate(run_as.is_some())?;
                    run_as = Some(match value {
                        "user" => RunAs::User,
                        "app" => RunAs::App,
                        other => {
                            return Err(error(
                                number,
                                format!("@run_as must be user or app, not {other:?}"),
                            ));
                        }
                    });
                }
                "cache_ttl_secs" => {
                    duplicate(ttl.is_some())?;
                    ttl = Some(
                        value
                            .parse::<u64>()
                            .ok()
                            .filter(|t| *t <= MAX_CACHE_TTL_SECS)
                            .ok_or_else(|| {
                                error(
                                    number,
                                    format!(
                                        "@cache_ttl_secs must be a whole number from 0 to {MAX_CACHE_TTL_SECS}"
                                    ),
                                )
                            })?,
                    );
                }
                "param" => {
                    if params.len() == MAX_PARAMS {
                        return Err(error(
                            number,
                            format!("a query has at most {MAX_PARAMS} parameters"),
                        ));
                    }
                    let param = parse_param(value).map_err(|m| error(number, m))?;
                    if params.iter().any(|p| p.name == param.name) {
                        return Err(error(
                            number,
                            format!("parameter {} is declared twice", param.name),
                        ));
                    }
                    params.push(param);
                    open = Open::Param(params.len() - 1);
                }
                other => {
                    return Err(error(
                        number,
                        format!(
                            "unknown directive @{other} (known: @title, @description, @run_as, @cache_ttl_secs, @param)"
                        ),
                    ));
                }
            }
        }
        let header_end = sql_line;
        let missing = |what: &str| error(header_end, format!("the header has no {what}"));
        let title = title.ok_or_else(|| missing("@title"))?;
        let run_as = run_as.ok_or_else(|| missing("@run_as"))?;
        let cache_ttl_secs = ttl.ok_or_else(|| missing("@cache_ttl_secs"))?;
        let sql = text[sql_start..].trim().to_owned();
        if sql.is_empty() {
            return Err(error(
                header_end,
                "there is no SQL after the header".to_owned(),
            ));
        }
        let used = markers(&sql);
        for (marker, line) in &used {
            if !params.iter().any(|p| &p.name == marker) {
                return Err(error(
                    sql_line + line - 1,
                    format!(":{marker} is used but not declared with @param"),
                ));
            }
        }
        if let Some(unused) = params
            .iter()
            .find(|p| !used.iter().any(|(m, _)| *m == p.name))
        {
            return Err(error(
                0,
                format!(
                    "parameter {} is declared but the SQL does not use :{}",
                    unused.name, unused.name
                ),
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            title,
            description: description.unwrap_or_default(),
            run_as,
            cache_ttl_secs,
            params,
            sql,
        })
    }

    /// Checks a request's parameter values (see the module header).
    ///
    /// # Errors
    /// The first refused parameter: unknown, missing, or an invalid value.
    pub fn bind(&self, given: &serde_json::Map<String, Value>) -> Result<BoundParams, ParamError> {
        if let Some(unknown) = given
            .keys()
            .find(|k| !self.params.iter().any(|p| &p.name == *k))
        {
            return Err(ParamError {
                name: unknown.clone(),
                reason: format!("query {} has no such parameter", self.name),
            });
        }
        let mut bound = BoundParams::new();
        for param in &self.params {
            let value = match given.get(&param.name).filter(|v| !v.is_null()) {
                Some(value) => param
                    .param_type
                    .normalise(value)
                    .map_err(|reason| ParamError {
                        name: param.name.clone(),
                        reason,
                    })?,
                None => param.default.clone().ok_or_else(|| ParamError {
                    name: param.name.clone(),
                    reason: "is required".to_owned(),
                })?,
            };
            bound.insert(param.name.clone(), (param.param_type, value));
        }
        Ok(bound)
    }
}

/// `name TYPE required` or `name TYPE = default`.
fn parse_param(text: &str) -> Result<ParamDefinition, String> {
    let usage = "@param must read `name TYPE required` or `name TYPE = default`";
    let (name, rest) = text
        .split_once(char::is_whitespace)
        .ok_or_else(|| usage.to_owned())?;
    if !is_param_name(name) {
        return Err(format!(
            "parameter name {name:?} must be a letter or _ then up to 63 letters, digits or _"
        ));
    }
    let rest = rest.trim();
    let (type_text, tail) = match rest.find(|c: char| c.is_whitespace() || c == '=') {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let param_type = ParamType::parse(type_text).ok_or_else(|| {
        format!(
            "{type_text:?} is not a supported type (STRING, INT, BIGINT, DOUBLE, DECIMAL(p,s), BOOLEAN, DATE, TIMESTAMP)"
        )
    })?;
    let default = if tail == "required" {
        None
    } else if let Some(value) = tail.strip_prefix('=') {
        let value = value.trim();
        let json = match param_type {
            ParamType::Int | ParamType::Double => value
                .parse::<serde_json::Number>()
                .map(Value::Number)
                .unwrap_or_else(|_| Value::String(value.to_owned())),
            ParamType::Boolean => match value {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::String(value.to_owned()),
            },
            _ => Value::String(value.to_owned()),
        };
        Some(
            param_type
                .normalise(&json)
                .map_err(|reason| format!("the default of {name} {reason}"))?,
        )
    } else {
        return Err(usage.to_owned());
    };
    Ok(ParamDefinition {
        name: name.to_owned(),
        param_type,
        default,
        description: String::new(),
    })
}

/// The `:name` markers of `sql` with their line (from 1), skipping string literals, quoted
/// identifiers, comments and `::` casts.
fn markers(sql: &str) -> Vec<(String, usize)> {
    let chars: Vec<char> = sql.chars().collect();
    let mut found = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '\'' | '"' | '`' => {
                i += 1;
                while let Some(d) = at(i) {
                    i += 1;
                    if d == '\n' {
                        line += 1;
                    } else if d == '\\' && c != '`' {
                        i += 1;
                    } else if d == c {
                        break;
                    }
                }
            }
            '-' if at(i + 1) == Some('-') => {
                while at(i).is_some_and(|d| d != '\n') {
                    i += 1;
                }
            }
            '/' if at(i + 1) == Some('*') => {
                i += 2;
                while let Some(d) = at(i) {
                    if d == '*' && at(i + 1) == Some('/') {
                        i += 2;
                        break;
                    }
                    if d == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            ':' if at(i + 1) == Some(':') => i += 2,
            ':' => {
                let start = i + 1;
                let mut end = start;
                while at(end).is_some_and(|d| d.is_ascii_alphanumeric() || d == '_') {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                if is_param_name(&name) {
                    found.push((name, line));
                }
                i = end.max(i + 1);
            }
            _ => i += 1,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;

    const GOOD: &str = "-- @title Top customers\n-- @description The best\n--   customers.\n-- @run_as user\n-- @cache_ttl_secs 60\n-- @param n INT = 5\n--   How many.\n-- @param since DATE required\nSELECT * FROM t WHERE d >= :since -- not :here\nLIMIT :n /* nor :there */ AND x = ':quoted' AND y::int = 1\n";

    fn parse_err(text: &str) -> DefinitionError {
        QueryDefinition::parse("q.sql", text).unwrap_err()
    }

    #[test]
    fn a_good_file_parses_with_its_header_and_sql() {
        let q = QueryDefinition::parse("top.sql", GOOD).unwrap();
        assert_eq!(q.name, "top");
        assert_eq!(q.title, "Top customers");
        assert_eq!(q.description, "The best customers.");
        assert_eq!(q.run_as, RunAs::User);
        assert_eq!(q.cache_ttl_secs, 60);
        assert_eq!(q.params.len(), 2);
        assert_eq!(q.params[0].default.as_deref(), Some("5"));
        assert_eq!(q.params[0].description, "How many.");
        assert_eq!(q.params[1].default, None);
        assert!(q.sql.starts_with("SELECT"));
    }

    #[test]
    fn refusals_name_the_line_and_the_problem() {
        let e = parse_err("-- @title T\n-- @run_as admin\n-- @cache_ttl_secs 1\nSELECT 1");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("user or app"), "{e}");
        let e = parse_err(
            "-- @title T\n-- @run_as app\n-- @cache_ttl_secs 1\nSELECT 1\nWHERE a = :nope",
        );
        assert_eq!(e.line, 5);
        assert!(e.message.contains(":nope"), "{e}");
        let e = parse_err(
            "-- @title T\n-- @run_as app\n-- @cache_ttl_secs 1\n-- @param x INT = 1\nSELECT 1",
        );
        assert!(e.message.contains("does not use :x"), "{e}");
        let e = parse_err(
            "-- @title T\n-- @run_as app\n-- @cache_ttl_secs 1\n-- @param x INT = one\nSELECT :x",
        );
        assert_eq!(e.line, 4);
        let e = parse_err("-- @title T\n-- @wat x\n");
        assert!(e.message.contains("unknown directive"), "{e}");
        let e = parse_err("-- @title T\n-- @run_as app\nSELECT 1");
        assert!(e.message.contains("@cache_ttl_secs"), "{e}");
        let e = parse_err("-- @title T\n-- @run_as app\n-- @cache_ttl_secs 86401\nSELECT 1");
        assert_eq!(e.line, 3);
        let e = parse_err("-- @title T\n-- @run_as app\n-- @cache_ttl_secs 1\n");
        assert!(e.message.contains("no SQL"), "{e}");
        let e = QueryDefinition::parse("Bad Name.sql", "").unwrap_err();
        assert!(e.to_string().contains("Bad Name"), "{e}");
    }

    #[test]
    fn values_are_checked_and_normalised_per_type() {
        let dec = ParamType::Decimal {
            precision: 10,
            scale: 2,
        };
        assert_eq!(dec.normalise(&json!(5)).unwrap(), "5.00");
        assert_eq!(dec.normalise(&json!("-0012.5")).unwrap(), "-12.50");
        assert!(dec.normalise(&json!("1.234")).is_err());
        assert!(dec.normalise(&json!("123456789")).is_err());
        assert!(dec.normalise(&json!(".")).is_err());
        assert!(ParamType::Int.normalise(&json!(2_147_483_648_i64)).is_err());
        assert!(ParamType::Int.normalise(&json!("7")).is_err());
        assert!(ParamType::Int.normalise(&json!(1.5)).is_err());
        assert_eq!(
            ParamType::Bigint
                .normalise(&json!("9007199254740993"))
                .unwrap(),
            "9007199254740993"
        );
        assert_eq!(ParamType::Double.normalise(&json!(2)).unwrap(), "2");
        assert!(ParamType::Boolean.normalise(&json!("true")).is_err());
        assert_eq!(
            ParamType::Date.normalise(&json!("2024-02-29")).unwrap(),
            "2024-02-29"
        );
        assert!(ParamType::Date.normalise(&json!("2023-02-29")).is_err());
        assert_eq!(
            ParamType::Timestamp
                .normalise(&json!("2024-01-01T02:00:00+02:00"))
                .unwrap(),
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(
            ParamType::Timestamp
                .normalise(&json!("2024-01-01T10:11:12"))
                .unwrap(),
            "2024-01-01 10:11:12"
        );
        assert!(
            ParamType::String
                .normalise(&json!("x".repeat(MAX_STRING_PARAM_CHARS + 1)))
                .is_err()
        );
    }

    #[test]
    fn bind_refuses_unknown_and_missing_and_fills_defaults() {
        let q = QueryDefinition::parse("top.sql", GOOD).unwrap();
        let given = |v: Value| v.as_object().unwrap().clone();
        let e = q
            .bind(&given(json!({"since": "2024-01-01", "x": 1})))
            .unwrap_err();
        assert_eq!(e.name, "x");
        let e = q.bind(&given(json!({}))).unwrap_err();
        assert_eq!(e.name, "since");
        let bound = q
            .bind(&given(json!({"since": "2024-01-01", "n": null})))
            .unwrap();
        assert_eq!(bound["n"], (ParamType::Int, "5".to_owned()));
    }

    #[test]
    fn markers_skip_literals_comments_and_casts() {
        let found: BTreeSet<String> =
            markers("a = :x AND ':y' = `:z` -- :c\n /* :d */ AND b::int = :w")
                .into_iter()
                .map(|(n, _)| n)
                .collect();
        assert_eq!(found, BTreeSet::from(["x".to_owned(), "w".to_owned()]));
    }
}
