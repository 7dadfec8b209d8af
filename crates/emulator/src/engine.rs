//! The SQL engine of the emulated warehouses: Spark SQL as parsed by sqlparser's Databricks
//! dialect, checked and rewritten here, then run by an in-memory SQLite database that holds the
//! fixture tables.
//!
//! This module owns everything between the statement text and its typed, rendered rows: parsing,
//! name resolution and permissions, parameters, the rewrites that make SQLite answer as Spark
//! would, result types and the rendering of values as `data_array` strings. The statement
//! lifecycle, chunking and JSON shapes live in `crate::sql`; request validation in
//! `routes::statements`.
//!
//! # The database
//!
//! [`Engine::load`] copies every fixture table into an in-memory SQLite database (the `memdb`
//! VFS, shared by name between connections) when the emulator starts. A table is named by its
//! lowercase three-part name as one identifier (`"main.sales.orders"`), so no name a client can
//! write reaches it without going through [`resolve`]. Each column is declared as
//! `<AFFINITY> '<TYPE_NAME> <type text>'`: the affinity (`INTEGER`, `REAL` or `TEXT`) comes first
//! because SQLite derives it from the whole declaration and a bare `string` would get NUMERIC
//! affinity, which turns the text `00123` into the number 123; the quoted part carries the
//! fixture's Databricks type, which SQLite reports back for every result column that is a
//! direct column reference (also through subqueries and CTEs). Booleans are stored as 0/1,
//! integers as INTEGER, `DOUBLE`/`FLOAT`/`DECIMAL` as REAL, everything else (dates, timestamps,
//! strings, arrays and structs as JSON) as TEXT. Every statement opens its own read-only
//! connection, so statements run in parallel and none can change the data.
//!
//! # What is accepted
//!
//! One query: `SELECT`, `WITH`, `VALUES` and `UNION [ALL]`/`INTERSECT`/`EXCEPT` of them, with
//! joins (inner, left, right, full, cross, `USING`, `NATURAL`), subqueries, `GROUP BY`/`HAVING`
//! (aliases and ordinals too), `ORDER BY`, `LIMIT`/`OFFSET`, `CASE`, window functions and the
//! functions of [`FUNCTIONS`]. Anything else fails with `UNSUPPORTED_FEATURE` (0A000) naming what
//! the emulator does not do, rather than being answered differently from Databricks: other
//! statements (DDL, DML, `SET`, …), `WITH RECURSIVE`, `QUALIFY`, `LATERAL VIEW`, `PIVOT`,
//! `GROUP BY ALL`, grouping sets, semi/anti joins, table-valued functions, time travel, table
//! sampling, `INTERVAL`s, `RLIKE`, lambdas and every function not in the list.
//!
//! Table names of one, two or three parts (plain or backquoted, case-insensitive) resolve against
//! the request's `catalog`/`schema` (else `main`/`default`); a one-part name that is a CTE in
//! scope is the CTE (a CTE sees the CTEs before it, not itself, and the query body sees all).
//! Every table must exist (`TABLE_OR_VIEW_NOT_FOUND`, 42P01) and be readable by the caller
//! through the `readers` of its catalog, schema and table (`INSUFFICIENT_PERMISSIONS`, 42501); one
//! unreadable table fails the whole statement.
//!
//! # Rewrites (where SQLite would silently differ from Spark)
//!
//! - `/` is fractional (`dbapp_divide`), `%` and `/` by zero fail with `DIVIDE_BY_ZERO` (22012) as
//!   in ANSI mode; `try_divide` gives NULL instead.
//! - `CAST`/`try_cast` follow Spark's ANSI rules (`dbapp_cast`): a malformed string fails with
//!   `CAST_INVALID_INPUT` (22018), an out-of-range number with `CAST_OVERFLOW` (22003),
//!   `DECIMAL(p,s)` rounds half up to `s` decimals; `try_cast` gives NULL instead.
//! - `LIKE` is case-sensitive (`PRAGMA case_sensitive_like`); `ILIKE` compares lower-cased text.
//! - `concat` becomes `||`, `nvl` becomes `ifnull`, `<=>` becomes `IS`; `substring` is `substr`.
//! - Dates and timestamps are ISO-8601 text: `current_date`, `current_timestamp`/`now()`,
//!   `date_trunc` (`YEAR`, `MONTH`, `WEEK`, `DAY`, `HOUR`, `MINUTE`, `SECOND`), `year`, `month`,
//!   `day`, `hour`, `minute`, `second`, `to_date`, `datediff`, `date_add`, `date_sub` and the
//!   `DATE '…'`/`TIMESTAMP '…'` literals are written with SQLite's date functions, producing
//!   `YYYY-MM-DD` and `YYYY-MM-DDTHH:MM:SSZ` text, the shape of the fixture's values.
//! - `"text"` is a string literal, as in Databricks SQL (SQLite would try a column first).
//! - A string compared with a boolean, date or timestamp is cast to that type first
//!   in comparisons, `BETWEEN` and `IN` lists (`is_active = 'true'`,
//!   `ordered_at = '2026-02-02 07:13:00'`), as Spark's implicit casts do.
//! - `sqrt`, `exp`, `ln`, `log10`, `power`, `ceil` and `floor` are implemented here (the bundled
//!   SQLite has no math functions), with Spark's results: `ceil`/`floor` give `BIGINT`, `ln` and
//!   `log10` of a non-positive number give NULL.
//! - A column list on a subquery (`(VALUES (1), (2)) AS t(x)`) becomes a CTE column list, which
//!   SQLite has where it lacks the former. An `integer overflow` is `ARITHMETIC_OVERFLOW` (22003).
//! - `OFFSET` without `LIMIT` is accepted; `LIMIT`/`OFFSET` must be a literal or a parameter from
//!   0 to 2147483647 (`INVALID_LIMIT_LIKE_EXPRESSION`, 42K0E).
//!
//! # Parameters
//!
//! `:name` markers (names compared case-insensitively) are bound from the request's
//! `parameters`, each converted to its type as `CAST(value AS type)` would: a value that does not
//! convert fails the statement with `CAST_INVALID_INPUT` (22018) or, for a `DECIMAL` that does
//! not fit, `NUMERIC_VALUE_OUT_OF_RANGE` (22003). No value is NULL. A marker without a parameter
//! fails with `UNBOUND_SQL_PARAMETER` (42P02); parameters the statement does not use are ignored.
//!
//! # Result columns
//!
//! A column's type is, in order: the declared type of a direct column reference; the type
//! inferred from the expression ([`infer`]: `COUNT` → `BIGINT`, `SUM` of integers → `BIGINT`, of
//! `DECIMAL(p,s)` → `DECIMAL(p+10,s)`, of anything else → `DOUBLE`, `AVG` → `DOUBLE`
//! (`DECIMAL(p+4,s+4)` for decimals), `MIN`/`MAX`/`LAG`/… → their argument's, comparisons and
//! predicates → `BOOLEAN`, `CAST(x AS T)` → `T`, string functions → `STRING`, parameters → their
//! type, literals → theirs, `/` → `DOUBLE`, `+ - * %` by Spark's numeric rules); else SQLite's storage class of the values (INTEGER →
//! `BIGINT`, REAL → `DOUBLE`, TEXT → `STRING`, only NULLs → `VOID`). An unaliased expression is
//! named as Spark names it where that is simple: a column by its name, `COUNT(*)` as `count(1)`,
//! a function call as `lower-case name(arguments)`, a literal by its value, `VALUES` columns
//! `col1`, `col2`, …; other expressions by their SQL text.
//!
//! Values are rendered as strings: booleans `true`/`false`, integers in decimal, `DOUBLE`/`FLOAT`
//! as Java prints a double (`129.0`, `1.0E7`, `NaN`, `Infinity`), `DECIMAL(p,s)` with exactly `s`
//! decimals, dates, timestamps and strings as stored.
//!
//! # Limits
//!
//! A result holds at most [`MAX_RESULT_ROWS`] rows; more sets `manifest.truncated`, as
//! `row_limit` does. Evaluation stops after [`EVALUATION_TIME_LIMIT`] with
//! `QUERY_EXECUTION_TIMEOUT_EXCEEDED` (57KD0). A string or value longer than
//! [`MAX_VALUE_BYTES`] fails the statement with `EXCEED_LIMIT_LENGTH` (54006). SQLite's own error messages never reach a client:
//! they are translated to Spark classes (`UNRESOLVED_COLUMN.WITH_SUGGESTION` 42703,
//! `AMBIGUOUS_REFERENCE` 42702, `UNRESOLVED_ROUTINE` 42883, …) or reported as `INTERNAL_ERROR`.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{NaiveDate, NaiveDateTime};
use rusqlite::functions::{Context as FnContext, FunctionFlags};
use rusqlite::limits::Limit;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags};
use serde_json::Value as JsonValue;
use sqlparser::ast::{
    BinaryOperator, CastKind, DuplicateTreatment, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, GroupByExpr, Ident, JoinOperator, ObjectName,
    ObjectNamePart, Query, Select, SelectItem, SetExpr, SetOperator, SetQuantifier, Statement,
    TableFactor, UnaryOperator, Value, ValueWithSpan, VisitMut, VisitorMut,
};
use sqlparser::dialect::DatabricksDialect;
use sqlparser::parser::{Parser, ParserError};

use crate::fixture::{Column, Fixture, Table};
use crate::sql::{ColumnInfo, ResultSet, SqlError, decimal_precision_scale, upper_type_text};
use crate::state::Principal;

/// Catalog used for one-part and two-part names when the request names none.
pub(crate) const DEFAULT_CATALOG: &str = "main";

/// Schema used for one-part names when the request names none.
pub(crate) const DEFAULT_SCHEMA: &str = "default";

/// The most rows a result holds; past it the result is cut and marked truncated. Fixture tables
/// are small, so only a runaway join reaches it.
pub(crate) const MAX_RESULT_ROWS: usize = 10_000;

/// How long one statement may run inside SQLite before it fails.
pub(crate) const EVALUATION_TIME_LIMIT: Duration = Duration::from_secs(5);

/// The longest string or value SQLite may build while evaluating (`SQLITE_LIMIT_LENGTH`).
pub(crate) const MAX_VALUE_BYTES: i32 = 1 << 20;

/// The largest `LIMIT`/`OFFSET` value: Spark's `INT`.
const MAX_LIMIT: i64 = i32::MAX as i64;

/// Virtual-machine steps between two looks at the clock.
const PROGRESS_STEPS: i32 = 10_000;

/// Functions accepted in statements, by Spark name. Each either behaves the same in SQLite or is
/// rewritten by [`Rewriter::rewrite_function`].
pub(crate) const FUNCTIONS: &[&str] = &[
    // aggregates and window functions
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "row_number",
    "rank",
    "dense_rank",
    "ntile",
    "percent_rank",
    "cume_dist",
    "lag",
    "lead",
    "first_value",
    "last_value",
    // null handling
    "coalesce",
    "ifnull",
    "nvl",
    "nullif",
    // strings
    "lower",
    "upper",
    "lcase",
    "ucase",
    "length",
    "char_length",
    "character_length",
    "trim",
    "ltrim",
    "rtrim",
    "substr",
    "substring",
    "replace",
    "concat",
    "concat_ws",
    "instr",
    // numbers
    "abs",
    "round",
    "ceil",
    "ceiling",
    "floor",
    "sqrt",
    "exp",
    "ln",
    "log10",
    "power",
    "pow",
    "mod",
    "try_divide",
    "sign",
    "signum",
    // dates and times
    "current_date",
    "current_timestamp",
    "now",
    "date_trunc",
    "year",
    "month",
    "day",
    "dayofmonth",
    "hour",
    "minute",
    "second",
    "to_date",
    "date",
    "datediff",
    "date_add",
    "date_sub",
    // conversions
    "try_cast",
];

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/// A Spark SQL type, as far as the engine needs to tell types apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SqlType {
    Boolean,
    Byte,
    Short,
    Int,
    Long,
    Float,
    Double,
    /// `DECIMAL(precision, scale)`.
    Decimal(u32, u32),
    String,
    Date,
    Timestamp,
    Binary,
    /// The type of `NULL` (`VOID`).
    Null,
    /// Any other fixture type (arrays, maps, structs, intervals…), kept as the fixture says.
    Other {
        name: String,
        text: String,
    },
}

impl SqlType {
    /// Parses a type as written in SQL or a parameter's `type` (`INT`, `decimal(10, 2)`,
    /// `BIGINT`); `None` for what the engine cannot hold (arrays, maps, structs, unknown names).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let upper = text.trim().to_ascii_uppercase();
        let (head, args) = match upper.split_once('(') {
            Some((head, rest)) => (head.trim(), Some(rest.trim_end_matches(')'))),
            None => (upper.as_str(), None),
        };
        let plain = |t: SqlType| args.is_none().then_some(t);
        match head {
            "BOOLEAN" | "BOOL" => plain(Self::Boolean),
            "TINYINT" | "BYTE" => plain(Self::Byte),
            "SMALLINT" | "SHORT" => plain(Self::Short),
            "INT" | "INTEGER" => plain(Self::Int),
            "BIGINT" | "LONG" => plain(Self::Long),
            "FLOAT" | "REAL" => plain(Self::Float),
            "DOUBLE" => plain(Self::Double),
            "STRING" | "VARCHAR" | "CHAR" | "TEXT" => Some(Self::String),
            "DATE" => plain(Self::Date),
            "TIMESTAMP" | "TIMESTAMP_LTZ" | "TIMESTAMP_NTZ" => plain(Self::Timestamp),
            "BINARY" => plain(Self::Binary),
            "DECIMAL" | "DEC" | "NUMERIC" => {
                let (p, s) = decimal_precision_scale(&format!("decimal({})", args.unwrap_or("")));
                let valid = match args {
                    None => true,
                    Some(a) => a
                        .split(',')
                        .all(|n| n.trim().parse::<u32>().is_ok_and(|n| n <= 38)),
                };
                (valid && s <= p && p > 0).then_some(Self::Decimal(p, s))
            }
            _ => None,
        }
    }

    /// The type of a fixture column: its `type_name` decides, its `type_text` is kept for types
    /// the engine does not model.
    fn of_column(column: &Column) -> Self {
        let name = column.type_name.to_ascii_uppercase();
        match name.as_str() {
            "BOOLEAN" => Self::Boolean,
            "BYTE" => Self::Byte,
            "SHORT" => Self::Short,
            "INT" => Self::Int,
            "LONG" => Self::Long,
            "FLOAT" => Self::Float,
            "DOUBLE" => Self::Double,
            "DECIMAL" => {
                let (p, s) = decimal_precision_scale(&column.type_text);
                Self::Decimal(p, s)
            }
            "STRING" => Self::String,
            "DATE" => Self::Date,
            "TIMESTAMP" => Self::Timestamp,
            "BINARY" => Self::Binary,
            _ => Self::Other {
                text: upper_type_text(&column.type_text),
                name,
            },
        }
    }

    /// `ColumnTypeName` of the API.
    fn type_name(&self) -> &str {
        match self {
            Self::Boolean => "BOOLEAN",
            Self::Byte => "BYTE",
            Self::Short => "SHORT",
            Self::Int => "INT",
            Self::Long => "LONG",
            Self::Float => "FLOAT",
            Self::Double => "DOUBLE",
            Self::Decimal(..) => "DECIMAL",
            Self::String => "STRING",
            Self::Date => "DATE",
            Self::Timestamp => "TIMESTAMP",
            Self::Binary => "BINARY",
            Self::Null => "NULL",
            Self::Other { name, .. } => name,
        }
    }

    /// The SQL text of the type, as Spark prints it.
    fn type_text(&self) -> String {
        match self {
            Self::Byte => "TINYINT".into(),
            Self::Short => "SMALLINT".into(),
            Self::Long => "BIGINT".into(),
            Self::Decimal(p, s) => format!("DECIMAL({p},{s})"),
            Self::Null => "VOID".into(),
            Self::Other { text, .. } => text.clone(),
            other => other.type_name().to_owned(),
        }
    }

    fn is_integral(&self) -> bool {
        matches!(self, Self::Byte | Self::Short | Self::Int | Self::Long)
    }

    /// The SQLite affinity its values are stored with.
    fn affinity(&self) -> &'static str {
        match self {
            Self::Boolean | Self::Byte | Self::Short | Self::Int | Self::Long => "INTEGER",
            Self::Float | Self::Double | Self::Decimal(..) => "REAL",
            _ => "TEXT",
        }
    }

    /// The declared type of a column of this type (see the module docs).
    fn declaration(&self) -> String {
        let tag = format!("{} {}", self.type_name(), self.type_text());
        format!("{} '{}'", self.affinity(), tag.replace('\'', "''"))
    }

    /// Reads back [`SqlType::declaration`].
    fn of_declaration(declared: &str) -> Option<Self> {
        let (_, quoted) = declared.split_once(' ')?;
        let tag = quoted
            .strip_prefix('\'')?
            .strip_suffix('\'')?
            .replace("''", "'");
        let (name, text) = tag.split_once(' ')?;
        Some(match Self::parse(text) {
            Some(parsed) if parsed.type_name() == name => parsed,
            _ => Self::Other {
                name: name.to_owned(),
                text: text.to_owned(),
            },
        })
    }

    fn column_info(&self, name: String, position: usize) -> ColumnInfo {
        let (precision, scale) = match self {
            Self::Decimal(p, s) => (Some(*p), Some(*s)),
            _ => (None, None),
        };
        ColumnInfo::new(
            name,
            position,
            self.type_name().to_owned(),
            self.type_text(),
            precision,
            scale,
        )
    }

    /// How Spark names the type in cast errors, e.g. `"INT"`.
    fn quoted(&self) -> String {
        format!("\"{}\"", self.type_text())
    }
}

// ---------------------------------------------------------------------------------------------
// Parameters and evaluation context
// ---------------------------------------------------------------------------------------------

/// A statement parameter, as validated from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parameter {
    pub(crate) name: String,
    /// `None` is SQL NULL.
    pub(crate) value: Option<String>,
    pub(crate) sql_type: SqlType,
}

/// Where a statement runs: the workspace, the caller it runs as, the default namespace and the
/// parameters of the request.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) fixture: &'a Fixture,
    pub(crate) principal: &'a Principal,
    /// For one- and two-part names; [`DEFAULT_CATALOG`] when the request names none.
    pub(crate) catalog: &'a str,
    /// For one-part names; [`DEFAULT_SCHEMA`] when the request names none.
    pub(crate) schema: &'a str,
    pub(crate) parameters: &'a [Parameter],
}

// ---------------------------------------------------------------------------------------------
// The database
// ---------------------------------------------------------------------------------------------

/// Why the fixture could not be loaded into the engine.
#[derive(Debug, thiserror::Error)]
#[error("cannot load the fixture tables into the SQL engine: {0}")]
pub struct EngineError(#[source] rusqlite::Error);

/// The in-memory database holding the fixture tables.
#[derive(Debug)]
pub(crate) struct Engine {
    /// The `memdb` URI statements open read-only.
    uri: String,
    /// How long one statement may run: [`EVALUATION_TIME_LIMIT`], shorter in tests.
    time_limit: Duration,
    /// Keeps the database alive: a `memdb` database lives while a connection to it is open.
    _keeper: Mutex<Connection>,
}

fn sqlite_name(catalog: &str, schema: &str, table: &str) -> String {
    format!("{catalog}.{schema}.{table}").to_lowercase()
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Engine {
    /// Creates the database and copies every fixture table into it.
    ///
    /// # Errors
    /// [`EngineError`] when SQLite refuses (which a validated fixture does not cause).
    pub(crate) fn load(fixture: &Fixture) -> Result<Self, EngineError> {
        let uri = format!("file:/dbapp-emulator-{}?vfs=memdb", uuid::Uuid::new_v4());
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut keeper = Connection::open_with_flags(&uri, flags).map_err(EngineError)?;
        let transaction = keeper.transaction().map_err(EngineError)?;
        for catalog in &fixture.catalogs {
            for schema in &catalog.schemas {
                for table in &schema.tables {
                    let name = sqlite_name(&catalog.name, &schema.name, &table.name);
                    create_table(&transaction, &name, table).map_err(EngineError)?;
                }
            }
        }
        transaction.commit().map_err(EngineError)?;
        Ok(Self {
            uri,
            time_limit: EVALUATION_TIME_LIMIT,
            _keeper: Mutex::new(keeper),
        })
    }

    /// A fresh read-only connection with the engine's functions, limits and deadline.
    fn connect(&self, failure: &FailureSlot) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.uri, flags)?;
        connection.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)?;
        connection.pragma_update(None, "case_sensitive_like", true)?;
        connection.pragma_update(None, "query_only", true)?;
        let deadline = Instant::now() + self.time_limit;
        connection.progress_handler(PROGRESS_STEPS, Some(move || Instant::now() >= deadline))?;
        register_functions(&connection, failure)?;
        Ok(connection)
    }
}

fn create_table(connection: &Connection, name: &str, table: &Table) -> rusqlite::Result<()> {
    let types: Vec<SqlType> = table.columns.iter().map(SqlType::of_column).collect();
    let columns = (table.columns.iter().zip(&types))
        .map(|(c, t)| format!("{} {}", quote_identifier(&c.name), t.declaration()))
        .collect::<Vec<_>>()
        .join(", ");
    let create = format!("CREATE TABLE {} ({columns})", quote_identifier(name));
    connection.execute(&create, [])?;
    if table.columns.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; table.columns.len()].join(", ");
    let insert = format!("INSERT INTO {} VALUES ({marks})", quote_identifier(name));
    let mut statement = connection.prepare(&insert)?;
    for row in &table.rows {
        let values = row.iter().zip(&types).map(|(v, t)| stored_value(v, t));
        statement.execute(rusqlite::params_from_iter(values))?;
    }
    Ok(())
}

/// The SQLite value a fixture value is stored as in a column of type `sql_type`.
fn stored_value(value: &JsonValue, sql_type: &SqlType) -> SqlValue {
    let numeric = sql_type.affinity() != "TEXT";
    match value {
        JsonValue::Null => SqlValue::Null,
        JsonValue::Bool(b) if numeric => SqlValue::Integer(i64::from(*b)),
        JsonValue::Bool(b) => SqlValue::Text(b.to_string()),
        JsonValue::Number(n) if numeric => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        JsonValue::String(s) if *sql_type == SqlType::Boolean => match parse_boolean(s) {
            Some(b) => SqlValue::Integer(i64::from(b)),
            None => SqlValue::Text(s.clone()),
        },
        JsonValue::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

fn unsupported(what: impl std::fmt::Display) -> SqlError {
    SqlError::new(
        "UNSUPPORTED_FEATURE",
        "0A000",
        format!(
            "The feature is not supported: {what}. The dbapp emulator runs queries (SELECT, WITH, \
             VALUES and set operations) with the functions listed in docs/emulator.md."
        ),
    )
}

fn unresolved_routine(name: &str) -> SqlError {
    SqlError::new(
        "UNRESOLVED_ROUTINE",
        "42883",
        format!(
            "Cannot resolve routine `{name}` on search path [`system`.`builtin`, \
             `system`.`session`]. The dbapp emulator knows only the functions listed in \
             docs/emulator.md."
        ),
    )
}

fn divide_by_zero() -> SqlError {
    SqlError::new(
        "DIVIDE_BY_ZERO",
        "22012",
        "Division by zero. Use `try_divide` to tolerate divisor being 0 and return NULL instead.",
    )
}

fn cast_invalid_input(value: &str, from: &str, to: &SqlType) -> SqlError {
    SqlError::new(
        "CAST_INVALID_INPUT",
        "22018",
        format!(
            "The value '{value}' of the type \"{from}\" cannot be cast to {} because it is \
             malformed. Correct the value as per the syntax, or change its target type. Use \
             `try_cast` to tolerate malformed input and return NULL instead.",
            to.quoted()
        ),
    )
}

fn cast_overflow(value: &str, from: &str, to: &SqlType) -> SqlError {
    SqlError::new(
        "CAST_OVERFLOW",
        "22003",
        format!(
            "The value {value} of the type \"{from}\" cannot be cast to {} due to an overflow. \
             Use `try_cast` to tolerate overflow and return NULL instead.",
            to.quoted()
        ),
    )
}

fn decimal_out_of_range(value: &str, precision: u32, scale: u32) -> SqlError {
    SqlError::new(
        "NUMERIC_VALUE_OUT_OF_RANGE.WITH_SUGGESTION",
        "22003",
        format!(
            "{value} cannot be represented as Decimal({precision}, {scale}). If necessary set \
             \"spark.sql.ansi.enabled\" to \"false\" to bypass this error, and return NULL \
             instead."
        ),
    )
}

fn limit_error(which: &str, literal: &str, class: &'static str, detail: String) -> SqlError {
    SqlError::new(
        class,
        "42K0E",
        format!(
            "The limit like expression \"{literal}\" is invalid. The {which} expression {detail}"
        ),
    )
}

fn internal_error() -> SqlError {
    SqlError::new(
        "INTERNAL_ERROR",
        "XX000",
        "The emulator could not evaluate this statement.",
    )
}

/// Translates a sqlparser error into Spark's `PARSE_SYNTAX_ERROR`, keeping the position.
fn parse_error(error: &ParserError) -> SqlError {
    let message = match error {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m.as_str(),
        ParserError::RecursionLimitExceeded => {
            return SqlError::new(
                "PARSE_SYNTAX_ERROR",
                "42601",
                "Syntax error: the statement nests too deeply.",
            );
        }
    };
    let near = message
        .split_once("found: ")
        .map(|(_, rest)| rest.split(" at Line").next().unwrap_or(rest).trim())
        .filter(|t| !t.is_empty());
    let near = match near {
        Some("EOF") | None => "end of input".to_owned(),
        Some(token) => format!("'{token}'"),
    };
    let position = message.rsplit_once("Line: ").and_then(|(_, rest)| {
        let (line, column) = rest.split_once(", Column: ")?;
        let line = line.trim().parse::<usize>().ok()?;
        let column: String = column.chars().take_while(char::is_ascii_digit).collect();
        Some((line, column.parse::<usize>().ok()?.saturating_sub(1)))
    });
    SqlError::new(
        "PARSE_SYNTAX_ERROR",
        "42601",
        format!("Syntax error at or near {near}."),
    )
    .at(position)
}

/// The first failure raised by an engine function during a step, read after SQLite reports it.
type FailureSlot = Arc<Mutex<Option<SqlError>>>;

/// Translates an SQLite error into a Spark error; SQLite's text never reaches the client.
fn translate(error: &rusqlite::Error, failure: &FailureSlot, scope: &[&Table]) -> SqlError {
    if let Some(raised) = crate::state::lock(failure).take() {
        return raised;
    }
    let message = match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            if code.code == rusqlite::ErrorCode::OperationInterrupted {
                return SqlError::new(
                    "QUERY_EXECUTION_TIMEOUT_EXCEEDED",
                    "57KD0",
                    format!(
                        "Query execution was cancelled due to exceeding the timeout ({}s) the \
                         emulator allows.",
                        EVALUATION_TIME_LIMIT.as_secs()
                    ),
                );
            }
            if code.code == rusqlite::ErrorCode::TooBig {
                return SqlError::new(
                    "EXCEED_LIMIT_LENGTH",
                    "54006",
                    format!(
                        "Exceeds char/varchar type length limitation: the emulator allows \
                         {MAX_VALUE_BYTES} bytes."
                    ),
                );
            }
            message.clone().unwrap_or_default()
        }
        other => other.to_string(),
    };
    if let Some(column) = message.strip_prefix("no such column: ") {
        let column = column.trim_matches('`').trim_matches('"');
        let missing = column.rsplit('.').next().unwrap_or(column).to_lowercase();
        // Like Spark, the closest names first.
        let mut candidates: Vec<&str> = scope
            .iter()
            .flat_map(|t| &t.columns)
            .map(|c| c.name.as_str())
            .collect();
        candidates.sort_by_key(|name| (edit_distance(&name.to_lowercase(), &missing), *name));
        candidates.dedup();
        let suggestions = candidates
            .iter()
            .take(5)
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return SqlError::new(
            "UNRESOLVED_COLUMN.WITH_SUGGESTION",
            "42703",
            format!(
                "A column, variable, or function parameter with name `{column}` cannot be \
                 resolved. Did you mean one of the following? [{suggestions}]."
            ),
        );
    }
    if let Some(column) = message.strip_prefix("ambiguous column name: ") {
        return SqlError::new(
            "AMBIGUOUS_REFERENCE",
            "42702",
            format!("Reference `{column}` is ambiguous."),
        );
    }
    if let Some(name) = message.strip_prefix("no such function: ") {
        return unresolved_routine(name);
    }
    if let Some(name) = message.strip_prefix("no such table: ") {
        return SqlError::table_not_found(&[name.to_owned()]);
    }
    if message.contains("integer overflow") {
        return SqlError::new(
            "ARITHMETIC_OVERFLOW",
            "22003",
            "long overflow. If necessary set \"spark.sql.ansi.enabled\" to \"false\" to bypass \
             this error.",
        );
    }
    if message.contains("misuse of aggregate") || message.contains("misuse of window") {
        return SqlError::new(
            "MISSING_GROUP_BY",
            "42803",
            "The query does not include a GROUP BY clause, or uses an aggregate or window \
             function where it is not allowed.",
        );
    }
    if message.contains("GROUP BY term out of range") || message.contains("ORDER BY term") {
        return SqlError::new(
            "ORDER_BY_POS_OUT_OF_RANGE",
            "42805",
            "A position in ORDER BY or GROUP BY is not in the select list.",
        );
    }
    if message.contains("SELECTs to the left and right of") {
        return SqlError::new(
            "NUM_COLUMNS_MISMATCH",
            "42826",
            "A set operation can only be performed on inputs with the same number of columns.",
        );
    }
    if message.contains("syntax error") {
        return unsupported("this form of query");
    }
    tracing::debug!(event = "emulator.sql_engine_error", %message);
    internal_error()
}

/// Levenshtein distance, for ranking column suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

// ---------------------------------------------------------------------------------------------
// Conversions shared by CAST and parameters
// ---------------------------------------------------------------------------------------------

fn parse_boolean(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    // A date alone, or the date part of a valid timestamp.
    match text.get(..10) {
        Some(day) if text.len() > 10 => {
            parse_timestamp(text).and_then(|_| NaiveDate::parse_from_str(day, "%Y-%m-%d").ok())
        }
        _ => NaiveDate::parse_from_str(text, "%Y-%m-%d").ok(),
    }
}

fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    let text = text.strip_suffix('Z').unwrap_or(text);
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
}

fn format_timestamp(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string()
}

/// Rounds half away from zero to `scale` decimals and checks the precision, as Spark's
/// `CAST(x AS DECIMAL(p,s))` does.
fn to_decimal(value: f64, shown: &str, precision: u32, scale: u32) -> Result<f64, SqlError> {
    let factor = 10f64.powi(scale as i32);
    let rounded = (value * factor).round() / factor;
    let limit = 10f64.powi((precision - scale) as i32);
    if !rounded.is_finite() || rounded.abs() >= limit {
        return Err(decimal_out_of_range(shown, precision, scale));
    }
    Ok(rounded)
}

fn integral_range(sql_type: &SqlType) -> (i64, i64) {
    match sql_type {
        SqlType::Byte => (i8::MIN.into(), i8::MAX.into()),
        SqlType::Short => (i16::MIN.into(), i16::MAX.into()),
        SqlType::Int => (i32::MIN.into(), i32::MAX.into()),
        _ => (i64::MIN, i64::MAX),
    }
}

/// The Spark type name of a value SQLite holds, for error messages.
fn source_type(value: &ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Integer(_) => "BIGINT",
        ValueRef::Real(_) => "DOUBLE",
        ValueRef::Blob(_) => "BINARY",
        ValueRef::Null | ValueRef::Text(_) => "STRING",
    }
}

/// Converts `value` to `target` under Spark's ANSI cast rules.
fn cast_value(value: ValueRef<'_>, target: &SqlType) -> Result<SqlValue, SqlError> {
    let from = source_type(&value);
    let text = match value {
        ValueRef::Null => return Ok(SqlValue::Null),
        ValueRef::Text(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    };
    let shown = || match value {
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => spark_double(f),
        _ => text.clone().unwrap_or_default(),
    };
    let invalid = || cast_invalid_input(&shown(), from, target);
    match target {
        t if t.is_integral() => {
            let (min, max) = integral_range(t);
            let number = match (value, &text) {
                (ValueRef::Integer(i), _) => i,
                (ValueRef::Real(f), _) => {
                    let truncated = f.trunc();
                    if !(truncated >= min as f64 && truncated <= max as f64) {
                        return Err(cast_overflow(&shown(), from, t));
                    }
                    truncated as i64
                }
                (_, Some(s)) => s.trim().parse::<i64>().map_err(|_| invalid())?,
                _ => return Err(invalid()),
            };
            if number < min || number > max {
                return Err(match value {
                    ValueRef::Text(_) => invalid(),
                    _ => cast_overflow(&shown(), from, t),
                });
            }
            Ok(SqlValue::Integer(number))
        }
        SqlType::Float | SqlType::Double | SqlType::Decimal(..) => {
            let number = match (value, &text) {
                (ValueRef::Integer(i), _) => i as f64,
                (ValueRef::Real(f), _) => f,
                (_, Some(s)) => parse_double(s).ok_or_else(invalid)?,
                _ => return Err(invalid()),
            };
            match target {
                SqlType::Decimal(p, s) => Ok(SqlValue::Real(to_decimal(number, &shown(), *p, *s)?)),
                _ => Ok(SqlValue::Real(number)),
            }
        }
        SqlType::Boolean => match (value, &text) {
            (ValueRef::Integer(i), _) => Ok(SqlValue::Integer(i64::from(i != 0))),
            (ValueRef::Real(f), _) => Ok(SqlValue::Integer(i64::from(f != 0.0))),
            (_, Some(s)) => parse_boolean(s)
                .map(|b| SqlValue::Integer(i64::from(b)))
                .ok_or_else(invalid),
            _ => Err(invalid()),
        },
        SqlType::Date => {
            let date = text.as_deref().and_then(parse_date).ok_or_else(invalid)?;
            Ok(SqlValue::Text(date.format("%Y-%m-%d").to_string()))
        }
        SqlType::Timestamp => {
            let at = text
                .as_deref()
                .and_then(parse_timestamp)
                .ok_or_else(invalid)?;
            Ok(SqlValue::Text(format_timestamp(at)))
        }
        _ => Ok(SqlValue::Text(shown())),
    }
}

fn parse_double(text: &str) -> Option<f64> {
    let t = text.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => t.parse::<f64>().ok(),
    }
}

/// The SQLite value a parameter is bound as.
fn bind_value(parameter: &Parameter) -> Result<SqlValue, SqlError> {
    match &parameter.value {
        None => Ok(SqlValue::Null),
        Some(text) => cast_value(ValueRef::Text(text.as_bytes()), &parameter.sql_type),
    }
}

// ---------------------------------------------------------------------------------------------
// Functions registered in SQLite
// ---------------------------------------------------------------------------------------------

/// A one-argument math function; `None` is SQL NULL.
type MathFn = fn(f64) -> Option<f64>;

fn register_functions(connection: &Connection, failure: &FailureSlot) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    for (name, tolerant) in [("dbapp_divide", false), ("dbapp_try_divide", true)] {
        let slot = Arc::clone(failure);
        connection.create_scalar_function(name, 2, flags, move |ctx| {
            let (a, b) = (number(ctx, 0), number(ctx, 1));
            match (a, b) {
                (Some(_), Some(0.0)) if tolerant => Ok(SqlValue::Null),
                (Some(_), Some(0.0)) => raise(&slot, divide_by_zero()),
                (Some(n), Some(d)) => Ok(SqlValue::Real(n / d)),
                _ => Ok(SqlValue::Null),
            }
        })?;
    }
    let slot = Arc::clone(failure);
    connection.create_scalar_function("dbapp_mod", 2, flags, move |ctx| {
        match (ctx.get_raw(0), ctx.get_raw(1)) {
            (ValueRef::Null, _) | (_, ValueRef::Null) => Ok(SqlValue::Null),
            (ValueRef::Integer(_), ValueRef::Integer(0)) => raise(&slot, divide_by_zero()),
            (ValueRef::Integer(a), ValueRef::Integer(b)) => {
                Ok(SqlValue::Integer(a.checked_rem(b).unwrap_or(0)))
            }
            _ => match (number(ctx, 0), number(ctx, 1)) {
                (Some(_), Some(0.0)) => raise(&slot, divide_by_zero()),
                (Some(n), Some(d)) => Ok(SqlValue::Real(n % d)),
                _ => Ok(SqlValue::Null),
            },
        }
    })?;
    // The bundled SQLite is built without its math functions; these are Spark's.
    let unary: [(&str, MathFn); 4] = [
        ("sqrt", |x| Some(x.sqrt())),
        ("exp", |x| Some(x.exp())),
        ("ln", |x| (x > 0.0).then(|| x.ln())),
        ("log10", |x| (x > 0.0).then(|| x.log10())),
    ];
    for (name, apply) in unary {
        connection.create_scalar_function(name, 1, flags, move |ctx| {
            Ok(number(ctx, 0)
                .and_then(apply)
                .map_or(SqlValue::Null, SqlValue::Real))
        })?;
    }
    for (name, apply) in [("ceil", f64::ceil as fn(f64) -> f64), ("floor", f64::floor)] {
        connection.create_scalar_function(name, 1, flags, move |ctx| {
            Ok(match ctx.get_raw(0) {
                ValueRef::Integer(i) => SqlValue::Integer(i),
                _ => number(ctx, 0).map_or(SqlValue::Null, |x| {
                    let rounded = apply(x);
                    if rounded.abs() < 9.2e18 {
                        SqlValue::Integer(rounded as i64)
                    } else {
                        SqlValue::Real(rounded)
                    }
                }),
            })
        })?;
    }
    connection.create_scalar_function("power", 2, flags, |ctx| {
        Ok(match (number(ctx, 0), number(ctx, 1)) {
            (Some(base), Some(exponent)) => SqlValue::Real(base.powf(exponent)),
            _ => SqlValue::Null,
        })
    })?;
    for (name, tolerant) in [("dbapp_cast", false), ("dbapp_try_cast", true)] {
        let slot = Arc::clone(failure);
        connection.create_scalar_function(name, 2, flags, move |ctx| {
            let target = ctx.get::<String>(1)?;
            let Some(target) = SqlType::parse(&target) else {
                return raise(&slot, unsupported(format!("CAST to {target}")));
            };
            match cast_value(ctx.get_raw(0), &target) {
                Ok(value) => Ok(value),
                Err(_) if tolerant => Ok(SqlValue::Null),
                Err(error) => raise(&slot, error),
            }
        })?;
    }
    Ok(())
}

/// A numeric argument; text is read as a number the way SQLite's arithmetic would.
fn number(ctx: &FnContext<'_>, index: usize) -> Option<f64> {
    match ctx.get_raw(index) {
        ValueRef::Integer(i) => Some(i as f64),
        ValueRef::Real(f) => Some(f),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        ValueRef::Null | ValueRef::Blob(_) => None,
    }
}

/// Records `error` for [`translate`] and makes SQLite stop the statement.
fn raise(slot: &FailureSlot, error: SqlError) -> rusqlite::Result<SqlValue> {
    let mut stored = crate::state::lock(slot);
    stored.get_or_insert(error);
    Err(rusqlite::Error::UserFunctionError("dbapp".into()))
}

// ---------------------------------------------------------------------------------------------
// Checking and rewriting the statement
// ---------------------------------------------------------------------------------------------

fn ident_text(part: &ObjectNamePart) -> String {
    match part {
        ObjectNamePart::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}

fn function_name(function: &Function) -> String {
    function
        .name
        .0
        .last()
        .map(ident_text)
        .unwrap_or_default()
        .to_lowercase()
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

fn string(text: impl Into<String>) -> Expr {
    Expr::value(Value::SingleQuotedString(text.into()))
}

/// The plain expression arguments of a call, or why they are not plain.
fn plain_args(function: &Function) -> Result<Vec<Expr>, SqlError> {
    match &function.args {
        FunctionArguments::None => Ok(Vec::new()),
        FunctionArguments::List(list) if list.clauses.is_empty() => list
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                _ => Err(unsupported(format!(
                    "this argument of {}",
                    function_name(function)
                ))),
            })
            .collect(),
        _ => Err(unsupported(format!(
            "these arguments of {}",
            function_name(function)
        ))),
    }
}

fn literal_string(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s) | Value::DoubleQuotedString(s),
            ..
        }) => Some(s.clone()),
        _ => None,
    }
}

/// The CTEs of one query's `WITH`, in order. As in Spark, a CTE sees the CTEs before it (not
/// itself: `WITH t AS (SELECT * FROM t)` reads the table `t`) and the query body sees them all.
struct CteScope {
    /// Lower-cased names.
    names: Vec<String>,
    /// Where each CTE's query lives, to recognise it when the walk enters or leaves it.
    bodies: Vec<*const Query>,
    /// How many of `names` are visible at the current point of the walk.
    visible: usize,
}

/// Walks the statement: resolves tables, checks what is supported and rewrites it for SQLite.
struct Rewriter<'c, 'a> {
    context: &'c Context<'a>,
    /// The `WITH` clauses of the enclosing queries, innermost last.
    ctes: Vec<CteScope>,
    /// Parameter names in order of first use; `?N` is the N-th.
    used_parameters: Vec<String>,
    /// The fixture tables the statement reads, by SQLite name.
    tables: HashMap<String, &'a Table>,
    /// Fixture tables by the alias or name a `FROM` gives them, for typing result columns.
    aliases: HashMap<String, &'a Table>,
}

impl<'a> Rewriter<'_, 'a> {
    fn is_cte(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        self.ctes
            .iter()
            .any(|scope| scope.names[..scope.visible].contains(&name))
    }

    /// Moves the visible CTEs when the walk enters (`leaving` false) or leaves a CTE's query.
    fn track_cte(&mut self, query: &Query, leaving: bool) {
        for scope in &mut self.ctes {
            if let Some(index) = scope.bodies.iter().position(|b| std::ptr::eq(*b, query)) {
                scope.visible = index + usize::from(leaving);
            }
        }
    }

    /// Resolves a table name, checks the caller may read it, and names its SQLite table.
    fn resolve(&mut self, name: &ObjectName) -> Result<Option<ObjectName>, SqlError> {
        let parts: Vec<String> = name.0.iter().map(ident_text).collect();
        if let [single] = parts.as_slice()
            && self.is_cte(single)
        {
            return Ok(None);
        }
        let (catalog, schema, table) = resolve(&parts, self.context)?;
        let sqlite = sqlite_name(&catalog.name, &schema.name, &table.name);
        self.tables.insert(sqlite.clone(), table);
        let mut ident = Ident::new(sqlite);
        ident.quote_style = Some('`');
        Ok(Some(ObjectName::from(vec![ident])))
    }

    fn parameter(&mut self, name: &str) -> Result<Expr, SqlError> {
        let key = name.to_lowercase();
        if !self
            .context
            .parameters
            .iter()
            .any(|p| p.name.to_lowercase() == key)
        {
            return Err(SqlError::new(
                "UNBOUND_SQL_PARAMETER",
                "42P02",
                format!(
                    "Found the unbound parameter: {name}. Please, fix `args` and provide a \
                     mapping of the parameter to either a SQL literal or collection constructor \
                     functions such as `map()`, `array()`, `struct()`."
                ),
            ));
        }
        let index = match self.used_parameters.iter().position(|p| *p == key) {
            Some(i) => i + 1,
            None => {
                self.used_parameters.push(key);
                self.used_parameters.len()
            }
        };
        Ok(Expr::value(Value::Placeholder(format!("?{index}"))))
    }

    /// Checks `LIMIT`/`OFFSET` as Spark does: a literal or parameter from 0 to `INT` max.
    fn check_limit(&self, which: &str, expr: &Expr) -> Result<(), SqlError> {
        let (literal, value) = match expr {
            Expr::Value(ValueWithSpan {
                value: Value::Number(n, _),
                ..
            }) => (n.clone(), n.parse::<i64>().ok()),
            Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr: inner,
            } => match inner.as_ref() {
                Expr::Value(ValueWithSpan {
                    value: Value::Number(n, _),
                    ..
                }) => (format!("-{n}"), format!("-{n}").parse::<i64>().ok()),
                _ => (expr.to_string(), None),
            },
            Expr::Value(ValueWithSpan {
                value: Value::Placeholder(p),
                ..
            }) => {
                let name = p.trim_start_matches(':').to_lowercase();
                let parameter = self
                    .context
                    .parameters
                    .iter()
                    .find(|q| q.name.to_lowercase() == name);
                let Some(parameter) = parameter else {
                    return Ok(()); // reported as unbound when the marker is rewritten
                };
                let shown = parameter.value.clone().unwrap_or_else(|| "NULL".into());
                let value = match bind_value(parameter)? {
                    SqlValue::Integer(i) if parameter.sql_type.is_integral() => Some(i),
                    _ => {
                        return Err(limit_error(
                            which,
                            &shown,
                            "INVALID_LIMIT_LIKE_EXPRESSION.DATA_TYPE",
                            format!(
                                "must be integer type, but got {}.",
                                parameter.sql_type.quoted()
                            ),
                        ));
                    }
                };
                (shown, value)
            }
            other => {
                return Err(limit_error(
                    which,
                    &other.to_string(),
                    "INVALID_LIMIT_LIKE_EXPRESSION.IS_UNFOLDABLE",
                    "must evaluate to a constant value.".into(),
                ));
            }
        };
        match value {
            Some(v) if v < 0 => Err(limit_error(
                which,
                &literal,
                "INVALID_LIMIT_LIKE_EXPRESSION.IS_NEGATIVE",
                format!("must be equal to or greater than 0, but got {v}."),
            )),
            Some(v) if v <= MAX_LIMIT => Ok(()),
            _ => {
                // Spark types an integer literal as the smallest of INT, BIGINT and DECIMAL.
                let digits = literal.trim_start_matches('-');
                let data_type = if literal.parse::<i64>().is_ok() {
                    "BIGINT".to_owned()
                } else if digits.bytes().all(|b| b.is_ascii_digit()) {
                    let significant = digits.trim_start_matches('0').len().clamp(1, 38);
                    format!("DECIMAL({significant},0)")
                } else {
                    "DECIMAL".to_owned()
                };
                Err(limit_error(
                    which,
                    &literal,
                    "INVALID_LIMIT_LIKE_EXPRESSION.DATA_TYPE",
                    format!("must be integer type, but got \"{data_type}\"."),
                ))
            }
        }
    }

    fn check_query(&mut self, query: &mut Query) -> Result<(), SqlError> {
        if let Some(with) = &query.with {
            if with.recursive {
                return Err(unsupported("WITH RECURSIVE"));
            }
            self.ctes.push(CteScope {
                names: (with.cte_tables.iter())
                    .map(|c| c.alias.name.value.to_lowercase())
                    .collect(),
                bodies: (with.cte_tables.iter())
                    .map(|c| std::ptr::from_ref(c.query.as_ref()))
                    .collect(),
                visible: 0,
            });
        } else {
            self.ctes.push(CteScope {
                names: Vec::new(),
                bodies: Vec::new(),
                visible: 0,
            });
        }
        if query.fetch.is_some()
            || !query.locks.is_empty()
            || query.for_clause.is_some()
            || query.settings.is_some()
            || query.format_clause.is_some()
            || !query.pipe_operators.is_empty()
        {
            return Err(unsupported("this query clause"));
        }
        match &mut query.limit_clause {
            None => {}
            Some(sqlparser::ast::LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) => {
                if !limit_by.is_empty() {
                    return Err(unsupported("LIMIT BY"));
                }
                if let Some(l) = limit {
                    self.check_limit("limit", l)?;
                }
                if let Some(o) = offset {
                    self.check_limit("offset", &o.value)?;
                    o.rows = sqlparser::ast::OffsetRows::None;
                    if limit.is_none() {
                        // SQLite needs a LIMIT before OFFSET; -1 is "no limit".
                        *limit = Some(Expr::value(Value::Number("-1".into(), false)));
                    }
                }
            }
            Some(sqlparser::ast::LimitClause::OffsetCommaLimit { .. }) => {
                return Err(unsupported("LIMIT offset, count"));
            }
        }
        Ok(())
    }

    fn check_set_expr(body: &mut SetExpr) -> Result<(), SqlError> {
        match body {
            SetExpr::Select(_) | SetExpr::Query(_) | SetExpr::Values(_) => Ok(()),
            SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                if *op == SetOperator::Minus {
                    *op = SetOperator::Except;
                }
                match (op, &set_quantifier) {
                    (
                        SetOperator::Union,
                        SetQuantifier::All | SetQuantifier::Distinct | SetQuantifier::None,
                    )
                    | (
                        SetOperator::Except | SetOperator::Intersect,
                        SetQuantifier::Distinct | SetQuantifier::None,
                    ) => {}
                    (op, quantifier) => return Err(unsupported(format!("{op} {quantifier}"))),
                }
                Self::check_set_expr(left)?;
                Self::check_set_expr(right)
            }
            _ => Err(unsupported("this statement inside a query")),
        }
    }

    fn check_select(select: &mut Select) -> Result<(), SqlError> {
        let unsupported_clause = if select.top.is_some() {
            Some("TOP")
        } else if matches!(select.distinct, Some(sqlparser::ast::Distinct::On(_))) {
            Some("DISTINCT ON")
        } else if select.into.is_some() {
            Some("SELECT INTO")
        } else if !select.lateral_views.is_empty() {
            Some("LATERAL VIEW")
        } else if select.prewhere.is_some() || !select.connect_by.is_empty() {
            Some("this SELECT clause")
        } else if !select.cluster_by.is_empty()
            || !select.distribute_by.is_empty()
            || !select.sort_by.is_empty()
        {
            Some("CLUSTER BY, DISTRIBUTE BY and SORT BY")
        } else if select.qualify.is_some() {
            Some("QUALIFY")
        } else if select.exclude.is_some() || select.value_table_mode.is_some() {
            Some("this SELECT form")
        } else {
            None
        };
        if let Some(clause) = unsupported_clause {
            return Err(unsupported(clause));
        }
        match &select.group_by {
            GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL")),
            GroupByExpr::Expressions(exprs, modifiers) => {
                if !modifiers.is_empty() {
                    return Err(unsupported("GROUP BY modifiers"));
                }
                if exprs
                    .iter()
                    .any(|e| matches!(e, Expr::GroupingSets(_) | Expr::Cube(_) | Expr::Rollup(_)))
                {
                    return Err(unsupported("GROUPING SETS, CUBE and ROLLUP"));
                }
            }
        }
        for item in &mut select.projection {
            match item {
                SelectItem::UnnamedExpr(_) => {}
                SelectItem::ExprWithAlias { alias, .. } => alias.quote_style = Some('`'),
                SelectItem::Wildcard(options) | SelectItem::QualifiedWildcard(_, options) => {
                    if options.opt_exclude.is_some()
                        || options.opt_except.is_some()
                        || options.opt_replace.is_some()
                        || options.opt_rename.is_some()
                        || options.opt_ilike.is_some()
                    {
                        return Err(unsupported("* with EXCEPT, EXCLUDE or REPLACE"));
                    }
                }
                SelectItem::ExprWithAliases { .. } => {
                    return Err(unsupported("several aliases for one expression"));
                }
            }
        }
        for table in &select.from {
            for join in &table.joins {
                match &join.join_operator {
                    JoinOperator::Join(_)
                    | JoinOperator::Inner(_)
                    | JoinOperator::Left(_)
                    | JoinOperator::LeftOuter(_)
                    | JoinOperator::Right(_)
                    | JoinOperator::RightOuter(_)
                    | JoinOperator::FullOuter(_)
                    | JoinOperator::CrossJoin(_) => {}
                    _ => return Err(unsupported("this kind of join")),
                }
            }
        }
        Ok(())
    }

    fn check_table_factor(&mut self, factor: &mut TableFactor) -> Result<(), SqlError> {
        match factor {
            TableFactor::Table {
                name,
                alias,
                args,
                with_hints,
                version,
                with_ordinality,
                partitions,
                json_path,
                sample,
                index_directives,
                ..
            } => {
                if args.is_some() {
                    return Err(unsupported("table-valued functions"));
                }
                if version.is_some() {
                    return Err(unsupported("time travel"));
                }
                if sample.is_some() {
                    return Err(unsupported("TABLESAMPLE"));
                }
                if !with_hints.is_empty()
                    || *with_ordinality
                    || !partitions.is_empty()
                    || json_path.is_some()
                    || !index_directives.is_empty()
                {
                    return Err(unsupported("this table clause"));
                }
                let written = name
                    .0
                    .last()
                    .map(ident_text)
                    .unwrap_or_default()
                    .to_lowercase();
                if let Some(resolved) = self.resolve(name)? {
                    let key = resolved.0.first().map(ident_text).unwrap_or_default();
                    if let Some(table) = self.tables.get(&key).copied() {
                        let shown = alias
                            .as_ref()
                            .map_or(written, |a| a.name.value.to_lowercase());
                        self.aliases.insert(shown, table);
                    }
                    *name = resolved;
                }
                if let Some(alias) = alias {
                    alias.name.quote_style = Some('`');
                }
                Ok(())
            }
            TableFactor::Derived {
                lateral,
                subquery,
                alias,
                ..
            } => {
                if *lateral {
                    return Err(unsupported("LATERAL subqueries"));
                }
                if let Some(alias) = alias.as_mut().filter(|a| !a.columns.is_empty()) {
                    // SQLite has no column list on a derived table (`AS t(x)`), but has one on
                    // a CTE: `(q) AS t(x)` becomes `(WITH d(x) AS (q) SELECT * FROM d) AS t`.
                    let columns = std::mem::take(&mut alias.columns);
                    **subquery = derived_with_columns(subquery.as_ref().clone(), columns)?;
                    alias.name.quote_style = Some('`');
                }
                Ok(())
            }
            TableFactor::NestedJoin { .. } => Ok(()),
            _ => Err(unsupported("this kind of FROM item")),
        }
    }

    /// The Spark type of an operand that is already rewritten (parameters are `?N` by now).
    fn operand_type(&self, expr: &Expr) -> Option<SqlType> {
        if let Expr::Value(ValueWithSpan {
            value: Value::Placeholder(p),
            ..
        }) = expr
        {
            let index: usize = p.strip_prefix('?')?.parse().ok()?;
            let name = self.used_parameters.get(index.checked_sub(1)?)?;
            let parameter =
                (self.context.parameters.iter()).find(|q| q.name.to_lowercase() == *name);
            return parameter.map(|q| q.sql_type.clone());
        }
        let scope = Scope {
            aliases: &self.aliases,
            parameters: self.context.parameters,
        };
        infer(expr, &scope)
    }

    /// Spark casts a string compared with a boolean, date or timestamp to that type; SQLite
    /// would compare the text with 1/0 or with differently written text and find nothing.
    fn coerce_string_operand(&self, operand: &mut Expr, other: &Expr) {
        let target = match self.operand_type(other) {
            Some(t @ (SqlType::Boolean | SqlType::Date | SqlType::Timestamp)) => t,
            _ => return,
        };
        if self.operand_type(operand) == Some(SqlType::String) {
            let inner = std::mem::replace(operand, Expr::value(Value::Null));
            *operand = call("dbapp_cast", vec![inner, string(target.type_text())]);
        }
    }

    /// Checks an expression whose children are already rewritten and rewrites it for SQLite.
    fn rewrite_expr(&mut self, expr: &mut Expr) -> Result<(), SqlError> {
        let replacement = match expr {
            Expr::Identifier(ident) => {
                ident.quote_style = Some('`');
                None
            }
            Expr::CompoundIdentifier(parts) => {
                for part in parts.iter_mut() {
                    part.quote_style = Some('`');
                }
                None
            }
            Expr::Value(ValueWithSpan { value, .. }) => match value {
                Value::Placeholder(p) if p.starts_with(':') => {
                    let name = p.trim_start_matches(':').to_owned();
                    Some(self.parameter(&name)?)
                }
                Value::Placeholder(p) => return Err(unsupported(format!("the marker {p}"))),
                Value::DoubleQuotedString(s) => Some(string(s.clone())),
                Value::Number(..)
                | Value::SingleQuotedString(_)
                | Value::Boolean(_)
                | Value::Null => None,
                other => return Err(unsupported(format!("the literal {other}"))),
            },
            Expr::TypedString(typed) => {
                let target = SqlType::parse(&typed.data_type.to_string());
                let text = typed.value.value.clone().into_string().unwrap_or_default();
                match target {
                    Some(t @ (SqlType::Date | SqlType::Timestamp)) => {
                        let value = cast_value(ValueRef::Text(text.as_bytes()), &t)?;
                        match value {
                            SqlValue::Text(s) => Some(string(s)),
                            _ => return Err(internal_error()),
                        }
                    }
                    _ => return Err(unsupported(format!("the literal {expr}"))),
                }
            }
            Expr::BinaryOp { left, op, right } => match op {
                BinaryOperator::Divide => Some(call(
                    "dbapp_divide",
                    vec![left.as_ref().clone(), right.as_ref().clone()],
                )),
                BinaryOperator::Modulo => Some(call(
                    "dbapp_mod",
                    vec![left.as_ref().clone(), right.as_ref().clone()],
                )),
                BinaryOperator::Spaceship => {
                    Some(Expr::IsNotDistinctFrom(left.clone(), right.clone()))
                }
                BinaryOperator::Gt
                | BinaryOperator::Lt
                | BinaryOperator::GtEq
                | BinaryOperator::LtEq
                | BinaryOperator::Eq
                | BinaryOperator::NotEq => {
                    self.coerce_string_operand(left, right);
                    self.coerce_string_operand(right, left);
                    None
                }
                BinaryOperator::Plus
                | BinaryOperator::Minus
                | BinaryOperator::Multiply
                | BinaryOperator::StringConcat
                | BinaryOperator::And
                | BinaryOperator::Or => None,
                other => return Err(unsupported(format!("the operator {other}"))),
            },
            Expr::UnaryOp { op, .. } => match op {
                UnaryOperator::Not | UnaryOperator::Minus | UnaryOperator::Plus => None,
                other => return Err(unsupported(format!("the operator {other}"))),
            },
            Expr::ILike {
                negated,
                any: false,
                expr: subject,
                pattern,
                escape_char,
            } => Some(Expr::Like {
                negated: *negated,
                any: false,
                expr: Box::new(call("lower", vec![subject.as_ref().clone()])),
                pattern: Box::new(call("lower", vec![pattern.as_ref().clone()])),
                escape_char: escape_char.clone(),
            }),
            Expr::Like { any: false, .. }
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::IsTrue(_)
            | Expr::IsNotTrue(_)
            | Expr::IsFalse(_)
            | Expr::IsNotFalse(_)
            | Expr::IsDistinctFrom(..)
            | Expr::IsNotDistinctFrom(..)
            | Expr::Nested(_)
            | Expr::Case { .. }
            | Expr::Exists { .. }
            | Expr::Subquery(_) => None,
            Expr::Between {
                expr: subject,
                low,
                high,
                ..
            } => {
                self.coerce_string_operand(low, subject);
                self.coerce_string_operand(high, subject);
                None
            }
            Expr::In {
                expr: subject,
                target,
                ..
            } => match target {
                sqlparser::ast::InTarget::List(items) => {
                    for item in items {
                        self.coerce_string_operand(item, subject);
                    }
                    None
                }
                sqlparser::ast::InTarget::Subquery(_) => None,
                _ => return Err(unsupported("IN with this target")),
            },
            Expr::Cast {
                kind,
                expr: inner,
                data_type,
                format: None,
            } => {
                let written = data_type.to_string();
                let Some(target) = SqlType::parse(&written) else {
                    return Err(unsupported(format!("CAST to {written}")));
                };
                let function = match kind {
                    CastKind::TryCast | CastKind::SafeCast => "dbapp_try_cast",
                    CastKind::Cast | CastKind::DoubleColon => "dbapp_cast",
                };
                Some(call(
                    function,
                    vec![inner.as_ref().clone(), string(target.type_text())],
                ))
            }
            Expr::Substring {
                expr: inner,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![inner.as_ref().clone()];
                args.extend(substring_from.as_deref().cloned());
                args.extend(substring_for.as_deref().cloned());
                Some(call("substr", args))
            }
            Expr::Trim {
                trim_where: None,
                trim_what: None,
                expr: inner,
                trim_characters: None,
            } => Some(call("trim", vec![inner.as_ref().clone()])),
            Expr::Ceil {
                expr: inner,
                field:
                    sqlparser::ast::CeilFloorKind::DateTimeField(
                        sqlparser::ast::DateTimeField::NoDateTime,
                    ),
            } => Some(call("ceil", vec![inner.as_ref().clone()])),
            Expr::Floor {
                expr: inner,
                field:
                    sqlparser::ast::CeilFloorKind::DateTimeField(
                        sqlparser::ast::DateTimeField::NoDateTime,
                    ),
            } => Some(call("floor", vec![inner.as_ref().clone()])),
            Expr::Function(function) => self.rewrite_function(function)?,
            other => return Err(unsupported(format!("the expression {other}"))),
        };
        if let Some(replacement) = replacement {
            *expr = replacement;
        }
        Ok(())
    }

    /// Checks a call against [`FUNCTIONS`] and writes it the way SQLite computes the same.
    fn rewrite_function(&mut self, function: &mut Function) -> Result<Option<Expr>, SqlError> {
        let name = function_name(function);
        if function.name.0.len() > 1 || !FUNCTIONS.contains(&name.as_str()) {
            return Err(unresolved_routine(&function.name.to_string()));
        }
        if function.filter.is_some() || !function.within_group.is_empty() {
            return Err(unsupported(format!("FILTER or WITHIN GROUP on {name}")));
        }
        function.name = ObjectName::from(vec![Ident::new(name.clone())]);
        if let FunctionArguments::List(list) = &function.args {
            if matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct))
                && !matches!(name.as_str(), "count" | "sum" | "avg" | "min" | "max")
            {
                return Err(unsupported(format!("DISTINCT in {name}")));
            }
            if name == "count" && list.args.len() > 1 {
                return Err(unsupported("count of several expressions"));
            }
            if name == "count"
                && list.args.len() == 1
                && matches!(
                    list.args[0],
                    FunctionArg::Unnamed(FunctionArgExpr::Wildcard)
                )
            {
                return Ok(None);
            }
        }
        let args = plain_args(function)?;
        let one = |args: &[Expr]| -> Result<Expr, SqlError> {
            match args {
                [a] => Ok(a.clone()),
                _ => Err(unsupported(format!("{name} with {} arguments", args.len()))),
            }
        };
        let strftime = |format: &str, arg: Expr| call("strftime", vec![string(format), arg]);
        let as_int = |e: Expr| Expr::Cast {
            kind: CastKind::Cast,
            expr: Box::new(e),
            data_type: sqlparser::ast::DataType::Integer(None),
            format: None,
        };
        let rewritten = match name.as_str() {
            "nvl" => Some(call("ifnull", args)),
            "lcase" => Some(call("lower", args)),
            "ucase" => Some(call("upper", args)),
            "char_length" | "character_length" => Some(call("length", args)),
            "substring" => Some(call("substr", args)),
            "ceiling" => Some(call("ceil", args)),
            "pow" => Some(call("power", args)),
            "signum" => Some(call("sign", args)),
            "mod" => Some(call("dbapp_mod", args)),
            "try_divide" => Some(call("dbapp_try_divide", args)),
            "concat" => {
                let mut parts = args.into_iter();
                let first = parts.next().unwrap_or_else(|| string(""));
                Some(parts.fold(first, |left, right| Expr::BinaryOp {
                    left: Box::new(left),
                    op: BinaryOperator::StringConcat,
                    right: Box::new(right),
                }))
            }
            "current_date" if args.is_empty() => Some(call("date", vec![string("now")])),
            "current_timestamp" | "now" if args.is_empty() => {
                Some(strftime("%Y-%m-%dT%H:%M:%fZ", string("now")))
            }
            "to_date" | "date" => Some(call("date", vec![one(&args)?])),
            "year" => Some(as_int(strftime("%Y", one(&args)?))),
            "month" => Some(as_int(strftime("%m", one(&args)?))),
            "day" | "dayofmonth" => Some(as_int(strftime("%d", one(&args)?))),
            "hour" => Some(as_int(strftime("%H", one(&args)?))),
            "minute" => Some(as_int(strftime("%M", one(&args)?))),
            "second" => Some(as_int(strftime("%S", one(&args)?))),
            "datediff" => match args.as_slice() {
                [end, start] => Some(as_int(Expr::BinaryOp {
                    left: Box::new(call("julianday", vec![call("date", vec![end.clone()])])),
                    op: BinaryOperator::Minus,
                    right: Box::new(call("julianday", vec![call("date", vec![start.clone()])])),
                })),
                _ => return Err(unsupported("datediff with these arguments")),
            },
            "date_add" | "date_sub" => match args.as_slice() {
                [day, days] => {
                    let sign = if name == "date_add" { "+" } else { "-" };
                    let modifier = Expr::BinaryOp {
                        left: Box::new(Expr::BinaryOp {
                            left: Box::new(string(sign)),
                            op: BinaryOperator::StringConcat,
                            right: Box::new(as_int(days.clone())),
                        }),
                        op: BinaryOperator::StringConcat,
                        right: Box::new(string(" days")),
                    };
                    Some(call("date", vec![day.clone(), modifier]))
                }
                _ => return Err(unsupported(format!("{name} with these arguments"))),
            },
            "date_trunc" => {
                let [unit, value] = args.as_slice() else {
                    return Err(unsupported("date_trunc with these arguments"));
                };
                let unit = literal_string(unit)
                    .ok_or_else(|| unsupported("date_trunc with a unit that is not a literal"))?;
                let value = value.clone();
                Some(match unit.to_ascii_uppercase().as_str() {
                    "YEAR" | "YYYY" | "YY" => strftime("%Y-01-01T00:00:00Z", value),
                    "MONTH" | "MM" | "MON" => strftime("%Y-%m-01T00:00:00Z", value),
                    "DAY" | "DD" => strftime("%Y-%m-%dT00:00:00Z", value),
                    "HOUR" => strftime("%Y-%m-%dT%H:00:00Z", value),
                    "MINUTE" => strftime("%Y-%m-%dT%H:%M:00Z", value),
                    "SECOND" => strftime("%Y-%m-%dT%H:%M:%SZ", value),
                    "WEEK" => call(
                        "strftime",
                        vec![
                            string("%Y-%m-%dT00:00:00Z"),
                            value,
                            string("weekday 0"),
                            string("-6 days"),
                        ],
                    ),
                    other => return Err(unsupported(format!("date_trunc to {other}"))),
                })
            }
            "try_cast" => return Err(unsupported("try_cast written as a function call")),
            "current_date" | "current_timestamp" | "now" => {
                return Err(unsupported(format!("{name} with arguments")));
            }
            _ => None,
        };
        Ok(rewritten)
    }
}

impl VisitorMut for Rewriter<'_, '_> {
    type Break = SqlError;

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<SqlError> {
        self.track_cte(query, false);
        if let Err(e) = self.check_query(query) {
            return ControlFlow::Break(e);
        }
        match Self::check_set_expr(&mut query.body) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e),
        }
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<SqlError> {
        self.ctes.pop();
        self.track_cte(query, true);
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<SqlError> {
        match Self::check_select(select) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e),
        }
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<SqlError> {
        match self.check_table_factor(factor) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e),
        }
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<SqlError> {
        match self.rewrite_expr(expr) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e),
        }
    }
}

/// `WITH dbapp_derived(columns) AS (query) SELECT * FROM dbapp_derived`.
fn derived_with_columns(
    query: Query,
    columns: Vec<sqlparser::ast::TableAliasColumnDef>,
) -> Result<Query, SqlError> {
    let template = "WITH dbapp_derived AS (SELECT 1) SELECT * FROM dbapp_derived";
    let mut parsed =
        Parser::parse_sql(&DatabricksDialect {}, template).map_err(|_| internal_error())?;
    let Some(Statement::Query(mut wrapper)) = parsed.pop() else {
        return Err(internal_error());
    };
    let cte = wrapper
        .with
        .as_mut()
        .and_then(|w| w.cte_tables.first_mut())
        .ok_or_else(internal_error)?;
    cte.alias.columns = columns;
    *cte.query = query;
    Ok(*wrapper)
}

/// Finds the table `parts` names and checks that the caller may read it.
fn resolve<'a>(
    parts: &[String],
    context: &Context<'a>,
) -> Result<
    (
        &'a crate::fixture::Catalog,
        &'a crate::fixture::Schema,
        &'a Table,
    ),
    SqlError,
> {
    let (catalog, schema, table) = match parts {
        [t] => (context.catalog, context.schema, t.as_str()),
        [s, t] => (context.catalog, s.as_str(), t.as_str()),
        [c, s, t] => (c.as_str(), s.as_str(), t.as_str()),
        _ => return Err(SqlError::table_not_found(parts)),
    };
    let same = |a: &str, b: &str| a.to_lowercase() == b.to_lowercase();
    let not_found = || SqlError::table_not_found(parts);
    let c = (context.fixture.catalogs.iter())
        .find(|c| same(&c.name, catalog))
        .ok_or_else(not_found)?;
    let s = (c.schemas.iter())
        .find(|s| same(&s.name, schema))
        .ok_or_else(not_found)?;
    let t = (s.tables.iter())
        .find(|t| same(&t.name, table))
        .ok_or_else(not_found)?;
    let lists = [c.readers.as_ref(), s.readers.as_ref(), t.readers.as_ref()];
    if !context.principal.admitted_by_all(lists) {
        return Err(SqlError::insufficient_permissions(
            &c.name, &s.name, &t.name,
        ));
    }
    Ok((c, s, t))
}

// ---------------------------------------------------------------------------------------------
// Result types and names
// ---------------------------------------------------------------------------------------------

/// What typing an expression needs to know: the tables in scope and the parameters.
struct Scope<'s> {
    aliases: &'s HashMap<String, &'s Table>,
    parameters: &'s [Parameter],
}

impl Scope<'_> {
    fn column(&self, qualifier: Option<&str>, name: &str) -> Option<SqlType> {
        let name = name.to_lowercase();
        let mut found = self
            .aliases
            .iter()
            .filter(|(alias, _)| qualifier.is_none_or(|q| q.to_lowercase() == **alias))
            .flat_map(|(_, table)| &table.columns)
            .filter(|c| c.name.to_lowercase() == name)
            .map(SqlType::of_column);
        let first = found.next()?;
        // Two tables with the column and no qualifier: SQLite reports the ambiguity.
        found.next().is_none().then_some(first)
    }
}

/// The type of `a op b` for `+`, `-`, `*` and `%`, by Spark's rules for numbers: integers widen
/// to the larger, anything with a double is a double, decimals follow Spark's precision rules
/// (an integer counting as the decimal that holds it).
fn arithmetic(op: &BinaryOperator, a: Option<SqlType>, b: Option<SqlType>) -> Option<SqlType> {
    use SqlType::{Byte, Decimal, Double, Float, Int, Long, Short};
    let as_decimal = |t: &SqlType| match t {
        Byte => Some((3, 0)),
        Short => Some((5, 0)),
        Int => Some((10, 0)),
        Long => Some((20, 0)),
        Decimal(p, s) => Some((*p, *s)),
        _ => None,
    };
    let (a, b) = (a?, b?);
    match (&a, &b) {
        (Double | Float, _) | (_, Double | Float) => Some(Double),
        (SqlType::Null, other) | (other, SqlType::Null) => Some(other.clone()),
        (x, y) if x.is_integral() && y.is_integral() => {
            let rank = |t: &SqlType| as_decimal(t).map_or(0, |(p, _)| p);
            Some(if rank(x) >= rank(y) {
                x.clone()
            } else {
                y.clone()
            })
        }
        _ => {
            let ((p1, s1), (p2, s2)) = (as_decimal(&a)?, as_decimal(&b)?);
            let (precision, scale) = match op {
                BinaryOperator::Multiply => (p1 + p2 + 1, s1 + s2),
                BinaryOperator::Modulo => {
                    let scale = s1.max(s2);
                    ((p1 - s1).min(p2 - s2) + scale, scale)
                }
                _ => {
                    let scale = s1.max(s2);
                    ((p1 - s1).max(p2 - s2) + scale + 1, scale)
                }
            };
            Some(Decimal(precision, scale).capped())
        }
    }
}

impl SqlType {
    fn capped(self) -> Self {
        match self {
            Self::Decimal(p, s) => Self::Decimal(p.min(38), s.min(38)),
            other => other,
        }
    }
}

fn literal_type(value: &Value, scope: &Scope<'_>) -> Option<SqlType> {
    match value {
        Value::Number(n, _) => {
            if n.contains(['e', 'E']) {
                Some(SqlType::Double)
            } else if let Some((int, frac)) = n.split_once('.') {
                let digits = int.trim_start_matches(['-', '0']).len() + frac.len();
                Some(
                    SqlType::Decimal(digits.max(frac.len()).max(1) as u32, frac.len() as u32)
                        .capped(),
                )
            } else if n.parse::<i32>().is_ok() {
                Some(SqlType::Int)
            } else if n.parse::<i64>().is_ok() {
                Some(SqlType::Long)
            } else {
                Some(SqlType::Decimal(n.len().min(38) as u32, 0))
            }
        }
        Value::SingleQuotedString(_) | Value::DoubleQuotedString(_) => Some(SqlType::String),
        Value::Boolean(_) => Some(SqlType::Boolean),
        Value::Null => Some(SqlType::Null),
        Value::Placeholder(p) => {
            let name = p.trim_start_matches(':').to_lowercase();
            scope
                .parameters
                .iter()
                .find(|q| q.name.to_lowercase() == name)
                .map(|q| q.sql_type.clone())
        }
        _ => None,
    }
}

/// The Spark type of `expr` where the AST tells it (see the module docs).
fn infer(expr: &Expr, scope: &Scope<'_>) -> Option<SqlType> {
    match expr {
        Expr::Identifier(ident) => scope.column(None, &ident.value),
        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [.., qualifier, column] => scope.column(Some(&qualifier.value), &column.value),
            _ => None,
        },
        Expr::Value(v) => literal_type(&v.value, scope),
        Expr::TypedString(t) => SqlType::parse(&t.data_type.to_string()),
        Expr::Nested(inner) => infer(inner, scope),
        Expr::Cast { data_type, .. } => SqlType::parse(&data_type.to_string()),
        Expr::UnaryOp { op, expr } => match op {
            UnaryOperator::Not => Some(SqlType::Boolean),
            _ => infer(expr, scope),
        },
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Multiply
            | BinaryOperator::Modulo => arithmetic(op, infer(left, scope), infer(right, scope)),
            BinaryOperator::Divide => Some(SqlType::Double),
            BinaryOperator::StringConcat => Some(SqlType::String),
            _ => Some(SqlType::Boolean),
        },
        Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsNotTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotFalse(_)
        | Expr::IsDistinctFrom(..)
        | Expr::IsNotDistinctFrom(..)
        | Expr::In { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::Exists { .. } => Some(SqlType::Boolean),
        Expr::Case {
            conditions,
            else_result,
            ..
        } => conditions
            .iter()
            .map(|c| infer(&c.result, scope))
            .chain(std::iter::once(
                else_result.as_deref().and_then(|e| infer(e, scope)),
            ))
            .flatten()
            .find(|t| *t != SqlType::Null),
        Expr::Substring { .. } | Expr::Trim { .. } => Some(SqlType::String),
        Expr::Ceil { .. } | Expr::Floor { .. } => Some(SqlType::Long),
        Expr::Function(function) => infer_function(function, scope),
        _ => None,
    }
}

fn infer_function(function: &Function, scope: &Scope<'_>) -> Option<SqlType> {
    let name = function_name(function);
    let args: Vec<Expr> = plain_args(function).unwrap_or_default();
    let first = || args.first().and_then(|a| infer(a, scope));
    match name.as_str() {
        "count" => Some(SqlType::Long),
        "sum" => match first()? {
            t if t.is_integral() => Some(SqlType::Long),
            SqlType::Decimal(p, s) => Some(SqlType::Decimal(p + 10, s).capped()),
            _ => Some(SqlType::Double),
        },
        "avg" => match first() {
            Some(SqlType::Decimal(p, s)) => Some(SqlType::Decimal(p + 4, s + 4).capped()),
            _ => Some(SqlType::Double),
        },
        "min" | "max" | "first_value" | "last_value" | "lag" | "lead" | "abs" => first(),
        "round" => match first()? {
            SqlType::Decimal(p, s) => {
                let digits = match args.get(1) {
                    Some(Expr::Value(ValueWithSpan {
                        value: Value::Number(n, _),
                        ..
                    })) => n.parse::<u32>().unwrap_or(0),
                    _ => 0,
                };
                let scale = digits.min(s);
                Some(SqlType::Decimal(p - s + scale + 1, scale).capped())
            }
            other => Some(other),
        },
        "coalesce" | "ifnull" | "nvl" | "nullif" => args
            .iter()
            .filter_map(|a| infer(a, scope))
            .find(|t| *t != SqlType::Null),
        "row_number" | "rank" | "dense_rank" | "ntile" | "length" | "char_length"
        | "character_length" | "instr" | "year" | "month" | "day" | "dayofmonth" | "hour"
        | "minute" | "second" | "datediff" => Some(SqlType::Int),
        "percent_rank" | "cume_dist" | "sqrt" | "exp" | "ln" | "log10" | "power" | "pow"
        | "try_divide" | "sign" | "signum" => Some(SqlType::Double),
        "ceil" | "ceiling" | "floor" => Some(SqlType::Long),
        "mod" => match args.as_slice() {
            [a, b] => arithmetic(&BinaryOperator::Modulo, infer(a, scope), infer(b, scope)),
            _ => None,
        },
        "lower" | "upper" | "lcase" | "ucase" | "trim" | "ltrim" | "rtrim" | "substr"
        | "substring" | "replace" | "concat" | "concat_ws" => Some(SqlType::String),
        "current_date" | "to_date" | "date" | "date_add" | "date_sub" => Some(SqlType::Date),
        "current_timestamp" | "now" | "date_trunc" => Some(SqlType::Timestamp),
        _ => None,
    }
}

/// How Spark names an unaliased expression column.
fn spark_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(ident) => ident.value.clone(),
        Expr::CompoundIdentifier(parts) => {
            parts.last().map(|p| p.value.clone()).unwrap_or_default()
        }
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            Value::Null => "NULL".into(),
            Value::Boolean(b) => b.to_string(),
            other => other.to_string(),
        },
        Expr::Nested(inner) => spark_name(inner),
        Expr::Function(function) => {
            let name = function_name(function);
            let (distinct, args) = match &function.args {
                FunctionArguments::List(list) => (
                    matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct)),
                    list.args
                        .iter()
                        .map(|a| match a {
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => spark_name(e),
                            FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => "1".into(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>(),
                ),
                _ => (false, Vec::new()),
            };
            let distinct = if distinct { "DISTINCT " } else { "" };
            let call = if matches!(function.args, FunctionArguments::None) {
                name
            } else {
                format!("{name}({distinct}{})", args.join(", "))
            };
            match &function.over {
                Some(over) => format!("{call} OVER ({over})"),
                None => call,
            }
        }
        Expr::BinaryOp { left, op, right } => {
            format!("({} {op} {})", spark_name(left), spark_name(right))
        }
        other => other.to_string(),
    }
}

/// Name and inferred type of each item of the leftmost `SELECT` or `VALUES` of a query; `None`
/// for a wildcard, which SQLite expands.
fn projection(query: &Query, scope: &Scope<'_>) -> Vec<Option<(String, Option<SqlType>)>> {
    let mut body = query.body.as_ref();
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left,
            SetExpr::Query(inner) => body = inner.body.as_ref(),
            _ => break,
        }
    }
    match body {
        SetExpr::Select(select) => select
            .projection
            .iter()
            .map(|item| match item {
                SelectItem::UnnamedExpr(e) => Some((spark_name(e), infer(e, scope))),
                SelectItem::ExprWithAlias { expr, alias } => {
                    Some((alias.value.clone(), infer(expr, scope)))
                }
                _ => None,
            })
            .collect(),
        SetExpr::Values(values) => values
            .rows
            .first()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .map(|(i, e)| Some((format!("col{}", i + 1), infer(e, scope))))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/// A double as Java's `Double.toString` prints it, which is what Spark returns.
fn spark_double(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-3..1e7).contains(&magnitude) {
        let text = format!("{value:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_owned()
        } else {
            format!("{mantissa}.0")
        };
        return format!("{mantissa}E{exponent}");
    }
    let text = value.to_string();
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

/// Renders a value of a column of type `sql_type` as its `data_array` string.
fn render(value: ValueRef<'_>, sql_type: &SqlType) -> Option<String> {
    let text = match value {
        ValueRef::Null => return None,
        ValueRef::Text(bytes) => return Some(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Blob(bytes) => {
            return Some(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        ValueRef::Integer(i) => match sql_type {
            SqlType::Boolean => (i != 0).to_string(),
            SqlType::Float | SqlType::Double => format!("{i}.0"),
            SqlType::Decimal(_, s) if *s > 0 => format!("{i}.{}", "0".repeat(*s as usize)),
            _ => i.to_string(),
        },
        ValueRef::Real(f) => match sql_type {
            SqlType::Boolean => (f != 0.0).to_string(),
            SqlType::Decimal(_, s) => format!("{f:.*}", *s as usize),
            t if t.is_integral() && f.fract() == 0.0 && f.abs() < 9.2e18 => (f as i64).to_string(),
            _ => spark_double(f),
        },
    };
    Some(text)
}

/// The type SQLite's storage classes suggest for a column without a better source.
fn storage_type(rows: &[Vec<SqlValue>], index: usize) -> SqlType {
    let mut seen = SqlType::Null;
    for row in rows {
        let class = match row.get(index) {
            Some(SqlValue::Integer(_)) => SqlType::Long,
            Some(SqlValue::Real(_)) => SqlType::Double,
            Some(SqlValue::Text(_)) => SqlType::String,
            Some(SqlValue::Blob(_)) => SqlType::Binary,
            Some(SqlValue::Null) | None => continue,
        };
        seen = match (seen, class) {
            (SqlType::Null, class) => class,
            (SqlType::Long, SqlType::Double) | (SqlType::Double, SqlType::Long) => SqlType::Double,
            (current, class) if current == class => current,
            _ => SqlType::String,
        };
    }
    seen
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/// Runs `sql` as `context.principal`: the rows it returns, or why it fails. Blocks on SQLite:
/// call it from `spawn_blocking`.
///
/// # Errors
/// [`SqlError`] with a Spark error class; the module docs list them.
pub(crate) fn evaluate(
    sql: &str,
    context: &Context<'_>,
    row_limit: Option<usize>,
) -> Result<ResultSet, SqlError> {
    let mut statements =
        Parser::parse_sql(&DatabricksDialect {}, sql).map_err(|e| parse_error(&e))?;
    let mut statement = match statements.len() {
        0 => {
            return Err(SqlError::new(
                "PARSE_EMPTY_STATEMENT",
                "42617",
                "Syntax error, unexpected empty statement.",
            ));
        }
        1 => statements.remove(0),
        _ => {
            return Err(SqlError::new(
                "PARSE_SYNTAX_ERROR",
                "42601",
                "Syntax error at or near ';': only one statement may be submitted at a time.",
            ));
        }
    };
    let Statement::Query(original) = &statement else {
        let kind = statement.to_string();
        let kind = kind
            .split_whitespace()
            .next()
            .unwrap_or("this")
            .to_uppercase();
        return Err(unsupported(format!("{kind} statements")));
    };
    let original = original.as_ref().clone();
    let mut rewriter = Rewriter {
        context,
        ctes: Vec::new(),
        used_parameters: Vec::new(),
        tables: HashMap::new(),
        aliases: HashMap::new(),
    };
    if let ControlFlow::Break(error) = statement.visit(&mut rewriter) {
        return Err(error);
    }
    let bindings = rewriter
        .used_parameters
        .iter()
        .map(|name| {
            let parameter = context
                .parameters
                .iter()
                .find(|p| p.name.to_lowercase() == *name)
                .ok_or_else(internal_error)?;
            bind_value(parameter)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let scope = Scope {
        aliases: &rewriter.aliases,
        parameters: context.parameters,
    };
    let items = projection(&original, &scope);
    let mut tables: Vec<(&String, &Table)> = rewriter.tables.iter().map(|(k, t)| (k, *t)).collect();
    tables.sort_by_key(|(name, _)| *name);
    let tables: Vec<&Table> = tables.into_iter().map(|(_, t)| t).collect();
    let max_rows = row_limit.unwrap_or(usize::MAX).min(MAX_RESULT_ROWS);
    let failure = FailureSlot::default();
    let sqlite = statement.to_string();
    let raw = execute(context.engine, &sqlite, &bindings, max_rows, &failure)
        .map_err(|e| translate(&e, &failure, &tables))?;
    let (columns, rows, truncated) = (raw.columns, raw.rows, raw.more);
    let types = column_types(&columns, &items, &rows);
    let infos = (columns.iter().zip(&types).enumerate())
        .map(|(i, ((name, _), (spark, sql_type)))| {
            sql_type.column_info(spark.clone().unwrap_or_else(|| name.clone()), i)
        })
        .collect();
    let rendered = rows
        .iter()
        .map(|row| {
            (row.iter().zip(&types))
                .map(|(v, (_, t))| render(ValueRef::from(v), t))
                .collect()
        })
        .collect();
    Ok(ResultSet::new(infos, rendered, truncated))
}

/// What SQLite returned for a statement, before typing and rendering.
struct RawResult {
    /// SQLite's name and the declared type (for direct column references) of each column.
    columns: Vec<(String, Option<SqlType>)>,
    rows: Vec<Vec<SqlValue>>,
    /// Whether rows were left unread past `max_rows`.
    more: bool,
}

/// Runs the rewritten statement on a fresh connection, reading at most `max_rows` rows.
fn execute(
    engine: &Engine,
    sql: &str,
    bindings: &[SqlValue],
    max_rows: usize,
    failure: &FailureSlot,
) -> rusqlite::Result<RawResult> {
    let connection = engine.connect(failure)?;
    let mut prepared = connection.prepare(sql)?;
    let columns = prepared
        .columns()
        .iter()
        .map(|c| {
            let declared = c.decl_type().and_then(SqlType::of_declaration);
            (c.name().to_owned(), declared)
        })
        .collect::<Vec<_>>();
    for (index, value) in bindings.iter().enumerate() {
        prepared.raw_bind_parameter(index + 1, value)?;
    }
    let mut rows = Vec::new();
    let mut more = false;
    let mut cursor = prepared.raw_query();
    while let Some(row) = cursor.next()? {
        if rows.len() == max_rows {
            more = true;
            break;
        }
        let values = (0..columns.len())
            .map(|i| row.get::<_, SqlValue>(i))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.push(values);
    }
    Ok(RawResult {
        columns,
        rows,
        more,
    })
}

/// Name (when the AST gives one) and type of each result column, following the module docs.
fn column_types(
    columns: &[(String, Option<SqlType>)],
    items: &[Option<(String, Option<SqlType>)>],
    rows: &[Vec<SqlValue>],
) -> Vec<(Option<String>, SqlType)> {
    let wildcards = items.iter().filter(|i| i.is_none()).count();
    // With one wildcard its columns fill the gap between the items; with more, positions are
    // unknown and only SQLite's names and types are used.
    let mut expanded: Vec<Option<(String, Option<SqlType>)>> = Vec::new();
    if wildcards <= 1 && columns.len() + wildcards >= items.len() {
        let width = columns.len() + wildcards - items.len();
        for item in items {
            match item {
                Some(known) => expanded.push(Some(known.clone())),
                None => expanded.extend(std::iter::repeat_n(None, width)),
            }
        }
    }
    columns
        .iter()
        .enumerate()
        .map(|(i, (_, declared))| {
            let item = expanded.get(i).cloned().flatten();
            let name = item.as_ref().map(|(n, _)| n.clone());
            let inferred = item.and_then(|(_, t)| t);
            let sql_type = declared
                .clone()
                .or(inferred)
                .unwrap_or_else(|| storage_type(rows, i));
            (name, sql_type)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param(name: &str, value: Option<&str>, sql_type: &str) -> Parameter {
        Parameter {
            name: name.into(),
            value: value.map(str::to_owned),
            sql_type: SqlType::parse(sql_type).expect("a parameter type"),
        }
    }

    /// What a test needs to look at: column JSON, rows, truncation.
    type Outcome = (Vec<serde_json::Value>, Vec<Vec<Option<String>>>, bool);

    fn run_on(
        engine: &Engine,
        sql: &str,
        who: &Principal,
        parameters: &[Parameter],
        row_limit: Option<usize>,
    ) -> Result<Outcome, SqlError> {
        let fixture = Fixture::default();
        let context = Context {
            engine,
            fixture: &fixture,
            principal: who,
            catalog: DEFAULT_CATALOG,
            schema: DEFAULT_SCHEMA,
            parameters,
        };
        let result = evaluate(sql, &context, row_limit)?;
        let (columns, rows, truncated) = result.parts();
        let columns = columns
            .iter()
            .map(|c| serde_json::to_value(c).expect("serializable"))
            .collect();
        Ok((columns, rows.to_vec(), truncated))
    }

    fn run_with(sql: &str, who: &Principal, parameters: &[Parameter]) -> Result<Outcome, SqlError> {
        let engine = Engine::load(&Fixture::default()).expect("the default fixture loads");
        run_on(&engine, sql, who, parameters, None)
    }

    fn run(sql: &str) -> Outcome {
        run_with(sql, &Principal::alice(), &[]).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn fail(sql: &str, who: &Principal, parameters: &[Parameter]) -> SqlError {
        match run_with(sql, who, parameters) {
            Ok(outcome) => panic!("{sql} should fail, got {outcome:?}"),
            Err(error) => {
                let text = error.to_string().to_lowercase();
                assert!(!text.contains("sqlite"), "{sql}: {error}");
                error
            }
        }
    }

    fn cells(rows: &[Vec<Option<String>>]) -> Vec<Vec<&str>> {
        rows.iter()
            .map(|r| r.iter().map(|c| c.as_deref().unwrap_or("NULL")).collect())
            .collect()
    }

    fn table(name: &str) -> Table {
        let fixture = Fixture::default();
        fixture
            .catalogs
            .iter()
            .flat_map(|c| &c.schemas)
            .flat_map(|s| &s.tables)
            .find(|t| t.name == name)
            .cloned()
            .expect("a fixture table")
    }

    #[test]
    fn the_seed_template_counts_customers_as_a_bigint() {
        // Arrange / Act
        let (columns, rows, truncated) =
            run("SELECT COUNT(*) AS total_count FROM main.default.customers");
        let (unaliased, _, _) = run("select count(*) from customers");

        // Assert
        assert_eq!(
            columns,
            [
                json!({"name": "total_count", "position": 0, "type_name": "LONG", "type_text": "BIGINT"})
            ]
        );
        assert_eq!(cells(&rows), [["25"]]);
        assert!(!truncated);
        assert_eq!(unaliased[0]["name"], "count(1)");
    }

    #[test]
    fn where_binds_every_parameter_type() {
        // Arrange
        let customers = table("customers").rows;
        let orders = table("orders").rows;
        let products = table("products").rows;
        let count = |rows: &Vec<Vec<JsonValue>>, keep: &dyn Fn(&Vec<JsonValue>) -> bool| {
            rows.iter().filter(|r| keep(r)).count().to_string()
        };
        let cases: Vec<(&str, Parameter, String)> = vec![
            (
                "SELECT COUNT(*) FROM customers WHERE name = :p",
                param("p", Some("Grace Hopper"), "STRING"),
                "1".into(),
            ),
            (
                "SELECT COUNT(*) FROM customers WHERE id <= :p",
                param("p", Some("7"), "INT"),
                "7".into(),
            ),
            (
                "SELECT COUNT(*) FROM main.sales.orders WHERE order_id > :p",
                param("p", Some("1100"), "BIGINT"),
                "20".into(),
            ),
            (
                "SELECT COUNT(*) FROM main.sales.orders WHERE quantity = :p",
                param("p", Some("3"), "SMALLINT"),
                count(&orders, &|r| r[3] == json!(3)),
            ),
            (
                "SELECT COUNT(*) FROM products WHERE id < :p",
                param("p", Some("3"), "TINYINT"),
                "2".into(),
            ),
            (
                "SELECT COUNT(*) FROM customers WHERE lifetime_value > :p",
                param("p", Some("1000.5"), "DOUBLE"),
                count(&customers, &|r| r[5].as_f64().is_some_and(|v| v > 1000.5)),
            ),
            (
                "SELECT COUNT(*) FROM customers WHERE lifetime_value < :p",
                param("p", Some("500"), "FLOAT"),
                count(&customers, &|r| r[5].as_f64().is_some_and(|v| v < 500.0)),
            ),
            (
                "SELECT COUNT(*) FROM products WHERE price >= :p",
                param("p", Some("12.50"), "DECIMAL(10,2)"),
                count(&products, &|r| r[2].as_f64().is_some_and(|v| v >= 12.5)),
            ),
            (
                "SELECT COUNT(*) FROM customers WHERE is_active = :p",
                param("p", Some("false"), "BOOLEAN"),
                count(&customers, &|r| r[4] == json!(false)),
            ),
            (
                "SELECT COUNT(*) FROM customers WHERE signup_date >= :p",
                param("p", Some("2025-06-01"), "DATE"),
                count(&customers, &|r| {
                    r[3].as_str().is_some_and(|d| d >= "2025-06-01")
                }),
            ),
            (
                "SELECT COUNT(*) FROM main.sales.orders WHERE ordered_at < :p",
                param("p", Some("2026-03-01 00:00:00"), "TIMESTAMP"),
                count(&orders, &|r| {
                    r[4].as_str().is_some_and(|t| t < "2026-03-01")
                }),
            ),
            (
                "SELECT COUNT(*) FROM customers WHERE lifetime_value IS NOT DISTINCT FROM :p",
                param("p", None, "DOUBLE"),
                count(&customers, &|r| r[5].is_null()),
            ),
        ];

        for (sql, parameter, expected) in cases {
            // Act
            let outcome = run_with(sql, &Principal::alice(), std::slice::from_ref(&parameter));

            // Assert
            let (_, rows, _) = outcome.unwrap_or_else(|e| panic!("{sql}: {e}"));
            assert_eq!(
                cells(&rows),
                [[expected.as_str()]],
                "{sql} with {parameter:?}"
            );
        }
    }

    #[test]
    fn group_by_and_having_accept_aliases_and_type_aggregates() {
        // Arrange
        let orders = table("orders").rows;
        let mut expected: Vec<(String, usize)> = Vec::new();
        for row in &orders {
            let status = row[5].as_str().unwrap_or_default().to_owned();
            match expected.iter_mut().find(|(s, _)| *s == status) {
                Some((_, n)) => *n += 1,
                None => expected.push((status, 1)),
            }
        }
        expected.retain(|(_, n)| *n > 26);
        expected.sort();

        // Act
        let (columns, rows, _) = run(
            "SELECT status AS s, COUNT(*) AS n, SUM(quantity) AS units, AVG(amount), \
             SUM(amount) total FROM main.sales.orders GROUP BY s HAVING n > 26 ORDER BY s",
        );

        // Assert
        let got: Vec<(String, usize)> = rows
            .iter()
            .map(|r| {
                let n = r[1].as_deref().unwrap_or_default().parse().unwrap_or(0);
                (r[0].clone().unwrap_or_default(), n)
            })
            .collect();
        assert_eq!(got, expected);
        let types: Vec<_> = columns.iter().map(|c| c["type_text"].clone()).collect();
        assert_eq!(types, ["STRING", "BIGINT", "BIGINT", "DOUBLE", "DOUBLE"]);
        assert_eq!(columns[3]["name"], "avg(amount)");
    }

    #[test]
    fn order_by_limit_and_offset_window_the_rows_also_from_parameters() {
        // Arrange
        let parameters = [param("n", Some("3"), "INT"), param("m", Some("2"), "INT")];
        let sql = "SELECT id FROM customers ORDER BY id DESC LIMIT :n OFFSET :m";

        // Act
        let (_, literal, _) = run("SELECT id FROM customers ORDER BY id DESC LIMIT 3 OFFSET 2");
        let (_, bound, _) = run_with(sql, &Principal::alice(), &parameters).expect("runs");
        let (_, offset_only, _) = run("SELECT * FROM regions OFFSET 2");

        // Assert
        assert_eq!(cells(&literal), [["23"], ["22"], ["21"]]);
        assert_eq!(bound, literal);
        assert_eq!(offset_only.len(), 1);
    }

    /// The highest product id of each category, ascending: what the window query must find.
    fn newest_per_category() -> Vec<Vec<String>> {
        let mut newest: HashMap<String, i64> = HashMap::new();
        for row in table("products").rows {
            let id = row[0].as_i64().unwrap_or_default();
            let category = row[3].as_str().unwrap_or_default().to_owned();
            let entry = newest.entry(category).or_insert(id);
            *entry = (*entry).max(id);
        }
        let mut ids: Vec<i64> = newest.into_values().collect();
        ids.sort_unstable();
        ids.into_iter().map(|id| vec![id.to_string()]).collect()
    }

    #[test]
    fn joins_ctes_subqueries_windows_unions_and_case_work_across_schemas() {
        // Arrange
        let cases = [
            (
                "SELECT c.name, COUNT(*) AS orders FROM main.sales.orders o \
                 JOIN main.default.customers c ON o.customer_id = c.id \
                 WHERE c.id = 5 GROUP BY c.name",
                vec![vec![
                    "Barbara Liskov".to_owned(),
                    table("orders")
                        .rows
                        .iter()
                        .filter(|r| r[1] == json!(5))
                        .count()
                        .to_string(),
                ]],
            ),
            (
                "WITH cheap AS (SELECT * FROM products WHERE price < 5) \
                 SELECT COUNT(*) FROM cheap",
                vec![vec![
                    table("products")
                        .rows
                        .iter()
                        .filter(|r| r[2].as_f64().is_some_and(|p| p < 5.0))
                        .count()
                        .to_string(),
                ]],
            ),
            (
                "SELECT name FROM customers WHERE id = (SELECT MAX(customer_id) FROM sales.orders \
                 WHERE order_id = 1001)",
                vec![vec!["Barbara Liskov".to_owned()]],
            ),
            (
                "SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY category ORDER BY id \
                 DESC) AS rn FROM products) WHERE rn = 1 ORDER BY id",
                newest_per_category(),
            ),
            (
                "SELECT code FROM regions WHERE code = 'EMEA' UNION ALL SELECT code FROM regions \
                 WHERE code = 'EMEA'",
                vec![vec!["EMEA".to_owned()], vec!["EMEA".to_owned()]],
            ),
            (
                "SELECT CASE WHEN price IS NULL THEN 'unknown' WHEN price > 10 THEN 'dear' \
                 ELSE 'cheap' END AS band FROM products WHERE id IN (1, 2, 8) ORDER BY id",
                vec![
                    vec!["dear".to_owned()],
                    vec!["cheap".to_owned()],
                    vec!["unknown".to_owned()],
                ],
            ),
            (
                "SELECT COUNT(*) FROM `main`.`default`.`customers`",
                vec![vec!["25".to_owned()]],
            ),
            (
                "SELECT t.x + 1 AS y FROM (VALUES (1), (2)) AS t(x) ORDER BY y DESC",
                vec![vec!["3".to_owned()], vec!["2".to_owned()]],
            ),
        ];

        for (sql, expected) in cases {
            // Act
            let (_, rows, _) = run(sql);

            // Assert
            let rows: Vec<Vec<String>> = rows
                .into_iter()
                .map(|r| r.into_iter().map(Option::unwrap_or_default).collect())
                .collect();
            assert_eq!(rows, expected, "{sql}");
        }
    }

    #[test]
    fn one_unreadable_table_fails_the_statement_but_a_cte_of_the_same_name_does_not() {
        // Arrange / Act
        let join = fail(
            "SELECT * FROM customers c JOIN main.sales.orders o ON o.customer_id = c.id",
            &Principal::bob(),
            &[],
        );
        let in_subquery = fail(
            "SELECT id FROM customers WHERE id IN (SELECT customer_id FROM main.sales.orders)",
            &Principal::bob(),
            &[],
        );
        let shadowed = run_with(
            "WITH orders AS (SELECT id FROM customers) SELECT COUNT(*) FROM orders",
            &Principal::bob(),
            &[],
        );
        let self_named = fail(
            "WITH orders AS (SELECT * FROM orders) SELECT COUNT(*) FROM orders",
            &Principal::bob(),
            &[param("unused", None, "INT")],
        );
        let chained = run_with(
            "WITH a AS (SELECT id FROM customers WHERE id < 4), b AS (SELECT id FROM a) \
             SELECT COUNT(*) FROM b",
            &Principal::bob(),
            &[],
        );
        let missing = fail(
            "SELECT * FROM main.`default`.nope",
            &Principal::alice(),
            &[],
        );

        // Assert
        assert_eq!(
            join.to_string(),
            "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have SELECT on \
             Table 'main.sales.orders'. SQLSTATE: 42501"
        );
        assert_eq!(in_subquery.class(), "INSUFFICIENT_PERMISSIONS");
        let (_, rows, _) = shadowed.expect("a CTE is not a table");
        assert_eq!(cells(&rows), [["25"]]);
        // Bob's default schema has no `orders`: inside its own definition the name is a table.
        assert_eq!(self_named.class(), "TABLE_OR_VIEW_NOT_FOUND");
        let (_, rows, _) = chained.expect("a CTE sees the ones before it");
        assert_eq!(cells(&rows), [["3"]]);
        let (_, rows, _) = run(
            "WITH customers AS (SELECT * FROM customers WHERE id < 4) SELECT COUNT(*) FROM customers",
        );
        assert_eq!(cells(&rows), [["3"]]);
        assert!(
            missing.to_string().starts_with(
                "[TABLE_OR_VIEW_NOT_FOUND] The table or view `main`.`default`.`nope` cannot be \
                 found."
            ),
            "{missing}"
        );
    }

    #[test]
    fn failures_carry_spark_classes_and_never_sqlite_text() {
        // Arrange
        let cases: [(&str, &[Parameter], &str, &str); 15] = [
            ("", &[], "PARSE_EMPTY_STATEMENT", "42617"),
            ("SELECT * FROM", &[], "PARSE_SYNTAX_ERROR", "42601"),
            ("SELECT 1; SELECT 2", &[], "PARSE_SYNTAX_ERROR", "42601"),
            (
                "CREATE TABLE t (a INT)",
                &[],
                "UNSUPPORTED_FEATURE",
                "0A000",
            ),
            (
                "INSERT INTO customers VALUES (1)",
                &[],
                "UNSUPPORTED_FEATURE",
                "0A000",
            ),
            (
                "SELECT * FROM customers WHERE id = :missing",
                &[],
                "UNBOUND_SQL_PARAMETER",
                "42P02",
            ),
            (
                "SELECT nope FROM customers",
                &[],
                "UNRESOLVED_COLUMN.WITH_SUGGESTION",
                "42703",
            ),
            (
                "SELECT no_such_function(1)",
                &[],
                "UNRESOLVED_ROUTINE",
                "42883",
            ),
            ("SELECT 1 / 0", &[], "DIVIDE_BY_ZERO", "22012"),
            (
                "SELECT SUM(x) FROM (VALUES (9223372036854775807), (1)) AS t(x)",
                &[],
                "ARITHMETIC_OVERFLOW",
                "22003",
            ),
            (
                "SELECT CAST('x1' AS INT)",
                &[],
                "CAST_INVALID_INPUT",
                "22018",
            ),
            (
                "SELECT * FROM customers LIMIT -1",
                &[],
                "INVALID_LIMIT_LIKE_EXPRESSION.IS_NEGATIVE",
                "42K0E",
            ),
            (
                "SELECT * FROM customers LIMIT 2147483648",
                &[],
                "INVALID_LIMIT_LIKE_EXPRESSION.DATA_TYPE",
                "42K0E",
            ),
            (
                "SELECT * FROM customers LIMIT id",
                &[],
                "INVALID_LIMIT_LIKE_EXPRESSION.IS_UNFOLDABLE",
                "42K0E",
            ),
            (
                "WITH RECURSIVE r AS (SELECT 1) SELECT * FROM r",
                &[],
                "UNSUPPORTED_FEATURE",
                "0A000",
            ),
        ];

        for (sql, parameters, class, sql_state) in cases {
            // Act
            let error = fail(sql, &Principal::alice(), parameters);

            // Assert
            assert_eq!(
                (error.class(), error.sql_state()),
                (class, sql_state),
                "{sql}: {error}"
            );
        }
    }

    #[test]
    fn an_unknown_column_suggests_the_closest_names() {
        // Arrange / Act
        let error = fail("SELECT nmae FROM customers", &Principal::alice(), &[]);

        // Assert
        assert_eq!(
            error.to_string(),
            "[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, variable, or function parameter with \
             name `nmae` cannot be resolved. Did you mean one of the following? [`name`, \
             `email`, `id`, `is_active`, `signup_date`]. SQLSTATE: 42703"
        );
    }

    #[test]
    fn syntax_errors_point_at_the_token() {
        // Arrange / Act
        let end = fail("SELECT *\n  FROM customers WHERE", &Principal::alice(), &[]);
        let near = fail(
            "SELECT *\n  FROM customers WHERE id = = 1",
            &Principal::alice(),
            &[],
        );

        // Assert
        assert!(
            end.to_string()
                .starts_with("[PARSE_SYNTAX_ERROR] Syntax error at or near end of input."),
            "{end}"
        );
        assert_eq!(
            near.to_string(),
            "[PARSE_SYNTAX_ERROR] Syntax error at or near '='. SQLSTATE: 42601 (line 2, pos 28)"
        );
    }

    #[test]
    fn parameters_that_do_not_convert_or_cannot_limit_fail_the_statement() {
        // Arrange
        let sql = "SELECT * FROM products WHERE id = :p";
        let cases = [
            (param("p", Some("seven"), "INT"), "CAST_INVALID_INPUT"),
            (param("p", Some("99999999999"), "INT"), "CAST_INVALID_INPUT"),
            (
                param("p", Some("12345.6"), "DECIMAL(4,1)"),
                "NUMERIC_VALUE_OUT_OF_RANGE.WITH_SUGGESTION",
            ),
            (param("p", Some("maybe"), "BOOLEAN"), "CAST_INVALID_INPUT"),
            (param("p", Some("2025-13-01"), "DATE"), "CAST_INVALID_INPUT"),
            (param("p", Some("2025-1"), "DATE"), "CAST_INVALID_INPUT"),
            (
                param("p", Some("2025-01-01Tnoon"), "DATE"),
                "CAST_INVALID_INPUT",
            ),
            (
                param("p", Some("yesterday"), "TIMESTAMP"),
                "CAST_INVALID_INPUT",
            ),
        ];

        for (parameter, class) in cases {
            // Act
            let error = fail(sql, &Principal::alice(), std::slice::from_ref(&parameter));

            // Assert
            assert_eq!(error.class(), class, "{parameter:?}: {error}");
        }
        let text_limit = fail(
            "SELECT * FROM products LIMIT :n",
            &Principal::alice(),
            &[param("n", Some("3"), "STRING")],
        );
        assert_eq!(
            text_limit.class(),
            "INVALID_LIMIT_LIKE_EXPRESSION.DATA_TYPE"
        );
    }

    #[test]
    fn values_are_rendered_with_their_spark_types() {
        // Arrange / Act
        let (columns, rows, _) = run(
            "SELECT price, price * 2 AS twice, SUM(price) OVER () AS total, 7 / 2, 10 % 4, \
             CAST(129 AS DOUBLE), is_active, signup_date, 'x' || c.name, try_cast('x' AS INT), \
             NULL, upper(c.name), 1.5 \
             FROM products p JOIN customers c ON c.id = p.id WHERE p.id = 1",
        );

        // Assert
        let types: Vec<_> = columns
            .iter()
            .map(|c| c["type_text"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            types,
            [
                "DECIMAL(10,2)",
                "DECIMAL(21,2)",
                "DECIMAL(20,2)",
                "DOUBLE",
                "INT",
                "DOUBLE",
                "BOOLEAN",
                "DATE",
                "STRING",
                "INT",
                "VOID",
                "STRING",
                "DECIMAL(2,1)"
            ]
        );
        assert_eq!(
            cells(&rows),
            [[
                "12.50",
                "25.00",
                "12.50",
                "3.5",
                "2",
                "129.0",
                "true",
                "2025-02-04",
                "xAda Lovelace",
                "NULL",
                "NULL",
                "ADA LOVELACE",
                "1.5"
            ]]
        );
        assert_eq!(columns[3]["name"], "(7 / 2)");
        assert_eq!(columns[11]["name"], "upper(name)");
        assert_eq!(columns[6]["name"], "is_active");
    }

    #[test]
    fn strings_compared_with_booleans_dates_and_timestamps_are_cast_as_in_spark() {
        // Arrange
        let active = table("customers")
            .rows
            .iter()
            .filter(|r| r[4] == json!(true))
            .count()
            .to_string();

        // Act
        let (_, literal, _) = run("SELECT COUNT(*) FROM customers WHERE is_active = 'true'");
        let (_, untyped, _) = run_with(
            "SELECT COUNT(*) FROM customers WHERE :flag = is_active",
            &Principal::alice(),
            &[param("flag", Some("TRUE"), "STRING")],
        )
        .expect("runs");
        let (_, spaced, _) =
            run("SELECT order_id FROM main.sales.orders WHERE ordered_at = '2026-02-02 07:13:00'");
        let bad = fail(
            "SELECT * FROM customers WHERE is_active = 'perhaps'",
            &Principal::alice(),
            &[],
        );
        let (_, listed, _) = run("SELECT COUNT(*) FROM customers WHERE is_active IN ('true')");
        let (_, between, _) = run("SELECT order_id FROM main.sales.orders \
             WHERE ordered_at BETWEEN '2026-02-02 07:13:00' AND '2026-02-02 07:13:00'");

        // Assert
        assert_eq!(cells(&literal), [[active.as_str()]]);
        assert_eq!(untyped, literal);
        assert_eq!(cells(&spaced), [["1001"]]);
        assert_eq!(bad.class(), "CAST_INVALID_INPUT");
        assert_eq!(listed, literal);
        assert_eq!(between, spaced);
    }

    #[test]
    fn like_is_case_sensitive_and_ilike_is_not() {
        // Arrange / Act
        let (_, like, _) = run("SELECT COUNT(*) FROM customers WHERE name LIKE 'ada%'");
        let (_, ilike, _) = run("SELECT COUNT(*) FROM customers WHERE name ILIKE 'ada%'");
        let (_, quoted, _) = run("SELECT COUNT(*) FROM customers WHERE name = \"Ada Lovelace\"");

        // Assert
        assert_eq!(cells(&like), [["0"]]);
        assert_eq!(cells(&ilike), [["1"]]);
        assert_eq!(cells(&quoted), [["1"]]);
    }

    #[test]
    fn results_stop_at_the_row_cap_and_statements_at_the_time_limit() {
        // Arrange
        let mut engine = Engine::load(&Fixture::default()).expect("loads");
        let cross = "SELECT a.order_id FROM main.sales.orders a, main.sales.orders b";

        // Act
        let (_, capped, truncated) =
            run_on(&engine, cross, &Principal::alice(), &[], None).expect("runs");
        let (_, limited, limited_truncated) =
            run_on(&engine, cross, &Principal::alice(), &[], Some(5)).expect("runs");
        engine.time_limit = Duration::ZERO;
        let timed_out = run_on(&engine, cross, &Principal::alice(), &[], None).unwrap_err();
        engine.time_limit = EVALUATION_TIME_LIMIT;
        let long = format!("SELECT '{}'", "x".repeat(MAX_VALUE_BYTES as usize + 1));
        let too_long = run_on(&engine, &long, &Principal::alice(), &[], None).unwrap_err();

        // Assert
        assert_eq!((capped.len(), truncated), (MAX_RESULT_ROWS, true));
        assert_eq!((limited.len(), limited_truncated), (5, true));
        assert_eq!(timed_out.class(), "QUERY_EXECUTION_TIMEOUT_EXCEEDED");
        assert_eq!(too_long.class(), "EXCEED_LIMIT_LENGTH");
    }

    #[test]
    fn every_listed_function_runs() {
        // Arrange
        let calls = [
            ("count(DISTINCT category)", "3"),
            ("sum(id)", "36"),
            ("avg(id)", "4.5"),
            ("min(name)", "Cable"),
            ("coalesce(NULL, 'a')", "a"),
            ("ifnull(NULL, 2)", "2"),
            ("nvl(NULL, 3)", "3"),
            ("nullif(1, 1)", "NULL"),
            (
                "lcase('AB') || ucase('cd') || lower('E') || upper('f')",
                "abCDeF",
            ),
            (
                "length('héllo') + char_length('ab') + character_length('a')",
                "8",
            ),
            ("trim('  a ') || ltrim(' b') || rtrim('c ')", "abc"),
            ("substr('hello', 2, 3) || substring('hello', 4)", "elllo"),
            ("replace('aXb', 'X', '-')", "a-b"),
            ("concat('a', 'b', 'c')", "abc"),
            ("concat_ws('-', 'a', NULL, 'b')", "a-b"),
            ("instr('hello', 'l')", "3"),
            ("abs(-2)", "2"),
            ("round(2.5)", "3"),
            ("ceil(1.2) + ceiling(1.2) + floor(1.8)", "5"),
            ("sqrt(16.0)", "4.0"),
            ("round(exp(0.0) + ln(1.0) + log10(100.0), 1)", "3.0"),
            ("power(2, 3) + pow(2, 1)", "10.0"),
            ("mod(7, 3)", "1"),
            ("sign(-3.0) + signum(2.0)", "0.0"),
            ("try_divide(1, 0)", "NULL"),
            ("length(CAST(current_date AS STRING))", "10"),
            ("substr(CAST(current_timestamp AS STRING), 11, 1)", "T"),
            ("substr(CAST(now() AS STRING), 5, 1)", "-"),
            (
                "date_trunc('MONTH', '2026-02-17T10:11:12Z')",
                "2026-02-01T00:00:00Z",
            ),
            (
                "date_trunc('WEEK', '2026-02-19T10:11:12Z')",
                "2026-02-16T00:00:00Z",
            ),
            (
                "year('2026-02-17') * 10000 + month('2026-02-17') * 100 + day('2026-02-17')",
                "20260217",
            ),
            (
                "dayofmonth('2026-02-17') + hour('2026-02-17T10:11:12Z') + minute('2026-02-17T10:11:12Z') + second('2026-02-17T10:11:12Z')",
                "50",
            ),
            ("to_date('2026-02-17T10:11:12Z')", "2026-02-17"),
            ("date('2026-02-17T10:11:12Z')", "2026-02-17"),
            ("datediff('2026-03-01', '2026-02-01')", "28"),
            (
                "date_add('2026-02-27', 2) || date_sub('2026-03-01', 1)",
                "2026-03-012026-02-28",
            ),
            ("CAST('7' AS INT) + '3'::INT", "10"),
            ("CAST(12.345 AS DECIMAL(5,2))", "12.35"),
            ("DATE '2026-02-17'", "2026-02-17"),
            ("TIMESTAMP '2026-02-17 10:11:12'", "2026-02-17T10:11:12Z"),
        ];

        // Act
        let got: Vec<(&str, String)> = calls
            .iter()
            .map(|(call, _)| {
                let sql = format!("SELECT {call} FROM products");
                let value = match run_with(&sql, &Principal::alice(), &[]) {
                    Ok((_, rows, _)) => rows
                        .first()
                        .and_then(|r| r.first())
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| "NULL".into()),
                    Err(error) => error.to_string(),
                };
                (*call, value)
            })
            .collect();

        // Assert
        let expected: Vec<(&str, String)> =
            calls.iter().map(|(c, e)| (*c, (*e).to_owned())).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn doubles_print_as_java_does() {
        // Arrange
        let cases = [
            (129.0, "129.0"),
            (1652.97, "1652.97"),
            (1e7, "1.0E7"),
            (1.5e-4, "1.5E-4"),
            (-0.5, "-0.5"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];

        for (value, expected) in cases {
            // Act / Assert
            assert_eq!(spark_double(value), expected);
        }
    }

    #[test]
    fn parameter_types_parse_like_the_api_names_them() {
        // Arrange / Act / Assert
        assert_eq!(
            SqlType::parse("decimal(10, 2)"),
            Some(SqlType::Decimal(10, 2))
        );
        assert_eq!(SqlType::parse("DECIMAL"), Some(SqlType::Decimal(10, 0)));
        assert_eq!(SqlType::parse("INTEGER"), Some(SqlType::Int));
        assert_eq!(SqlType::parse("DECIMAL(50,2)"), None);
        assert_eq!(SqlType::parse("ARRAY<INT>"), None);
        assert_eq!(SqlType::parse("INT(3)"), None);
        let declared = SqlType::Decimal(10, 2).declaration();
        assert_eq!(declared, "REAL 'DECIMAL DECIMAL(10,2)'");
        assert_eq!(
            SqlType::of_declaration(&declared),
            Some(SqlType::Decimal(10, 2))
        );
    }
}
