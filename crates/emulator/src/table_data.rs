//! Rows of fixture tables kept in data files. A table's `data_file` names a CSV file (first line
//! a header) or a Parquet file; when a fixture file is loaded, the data file's rows become the
//! table's `rows`, as JSON values of the same kinds a fixture writes by hand. This module owns
//! reading those files and that translation; the SQL engine then stores the rows like any others.
//!
//! Columns are matched by name, ignoring case and order: every column of the table must be in
//! the file, and every column of the file must be a column of the table. A file holds at most
//! [`MAX_DATA_FILE_ROWS`] rows.
//!
//! CSV cells are text: an empty cell is NULL; `BOOLEAN` cells are `true` or `false` (any case);
//! `BYTE`/`SHORT`/`INT`/`LONG` cells are integers, `FLOAT`/`DOUBLE`/`DECIMAL` cells numbers;
//! `ARRAY`/`MAP`/`STRUCT` cells are JSON; every other type keeps the text as written (dates as
//! `2026-01-31`, timestamps as `2026-01-31T12:00:00Z`).
//!
//! Parquet files may be uncompressed, Snappy-compressed (the default of Spark, pyarrow and
//! pandas) or gzip-compressed. Dates become `YYYY-MM-DD`; millisecond, microsecond and INT96 timestamps become
//! RFC 3339 UTC text; a plain INT64 in a `TIMESTAMP` column is read as nanoseconds since the
//! epoch (what pyarrow writes for nanosecond timestamps); decimals become numbers; lists, maps
//! and structs become JSON.

use std::fs::File;
use std::path::Path;

use chrono::{DateTime, NaiveDate, SecondsFormat};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::{Number, Value};

use crate::fixture::Column;

/// The most rows one data file may hold.
pub(crate) const MAX_DATA_FILE_ROWS: usize = 1_000_000;

/// How a column's values are read from text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Boolean,
    Integer,
    Number,
    Json,
    Timestamp,
    Text,
}

impl Kind {
    fn of(column: &Column) -> Self {
        match column.type_name.to_ascii_uppercase().as_str() {
            "BOOLEAN" => Self::Boolean,
            "BYTE" | "SHORT" | "INT" | "LONG" => Self::Integer,
            "FLOAT" | "DOUBLE" | "DECIMAL" => Self::Number,
            "ARRAY" | "MAP" | "STRUCT" => Self::Json,
            "TIMESTAMP" => Self::Timestamp,
            _ => Self::Text,
        }
    }
}

/// The rows of `path` for a table of `columns`, in the table's column order; a CSV file unless
/// the name ends in `.parquet` (any case).
///
/// # Errors
/// A message (without the path) saying what is wrong and where: the line of a CSV file, the row
/// of a Parquet file.
pub(crate) fn read(path: &Path, columns: &[Column]) -> Result<Vec<Vec<Value>>, String> {
    let parquet = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    if parquet {
        read_parquet(path, columns)
    } else {
        read_csv(path, columns)
    }
}

/// For each table column, the index of the file column of the same name.
fn positions<'a>(
    columns: &[Column],
    names: impl Iterator<Item = &'a str> + Clone,
) -> Result<Vec<usize>, String> {
    if let Some(extra) = names
        .clone()
        .find(|n| !columns.iter().any(|c| c.name.eq_ignore_ascii_case(n)))
    {
        return Err(format!("column `{extra}` is not a column of the table"));
    }
    columns
        .iter()
        .map(|c| {
            names
                .clone()
                .position(|n| n.eq_ignore_ascii_case(&c.name))
                .ok_or_else(|| format!("the file has no column `{}`", c.name))
        })
        .collect()
}

fn too_many_rows() -> String {
    format!("the file holds more than {MAX_DATA_FILE_ROWS} rows")
}

fn read_csv(path: &Path, columns: &[Column]) -> Result<Vec<Vec<Value>>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| e.to_string())?;
    let header = reader.headers().map_err(|e| e.to_string())?.clone();
    let positions = positions(columns, header.iter())?;
    let kinds: Vec<Kind> = columns.iter().map(Kind::of).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        if rows.len() == MAX_DATA_FILE_ROWS {
            return Err(too_many_rows());
        }
        let line = record.position().map_or(0, csv::Position::line);
        let row = (positions.iter().zip(columns).zip(&kinds))
            .map(|((&at, column), &kind)| {
                let cell = record.get(at).unwrap_or_default();
                csv_value(cell, kind).map_err(|expected| {
                    format!(
                        "line {line}, column `{}`: {cell:?} is not {expected}",
                        column.name
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(row);
    }
    Ok(rows)
}

/// The value of one CSV cell, or what was expected instead.
fn csv_value(cell: &str, kind: Kind) -> Result<Value, &'static str> {
    if cell.is_empty() {
        return Ok(Value::Null);
    }
    match kind {
        Kind::Boolean if cell.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
        Kind::Boolean if cell.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
        Kind::Boolean => Err("true or false"),
        Kind::Integer => cell
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "an integer"),
        Kind::Number => number(cell.trim()).ok_or("a finite number"),
        Kind::Json => serde_json::from_str(cell).map_err(|_| "JSON"),
        Kind::Timestamp | Kind::Text => Ok(Value::String(cell.to_owned())),
    }
}

fn number(text: &str) -> Option<Value> {
    let value = text.parse::<f64>().ok()?;
    Number::from_f64(value).map(Value::Number)
}

fn read_parquet(path: &Path, columns: &[Column]) -> Result<Vec<Vec<Value>>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let reader = SerializedFileReader::new(file).map_err(|e| e.to_string())?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let fields = schema.root_schema().get_fields();
    let positions = positions(columns, fields.iter().map(|f| f.name()))?;
    let kinds: Vec<Kind> = columns.iter().map(Kind::of).collect();
    let mut rows = Vec::new();
    for (index, row) in reader
        .get_row_iter(None)
        .map_err(|e| e.to_string())?
        .enumerate()
    {
        let row = row.map_err(|e| format!("row {index}: {e}"))?;
        if rows.len() == MAX_DATA_FILE_ROWS {
            return Err(too_many_rows());
        }
        let values: Vec<&Field> = row.get_column_iter().map(|(_, field)| field).collect();
        let row = (positions.iter().zip(columns).zip(&kinds))
            .map(|((&at, column), &kind)| {
                let field = values.get(at).copied().unwrap_or(&Field::Null);
                parquet_value(field, kind).ok_or_else(|| {
                    format!(
                        "row {index}, column `{}`: {field} cannot be represented",
                        column.name
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(row);
    }
    Ok(rows)
}

/// The fixture value of one Parquet field in a column of `kind`; `None` for a timestamp out of
/// chrono's range.
fn parquet_value(field: &Field, kind: Kind) -> Option<Value> {
    let timestamp = |moment: Option<DateTime<chrono::Utc>>| {
        moment.map(|m| Value::String(m.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
    };
    match field {
        Field::Long(nanos) if kind == Kind::Timestamp => {
            timestamp(Some(DateTime::from_timestamp_nanos(*nanos)))
        }
        Field::TimestampMillis(ms) => timestamp(DateTime::from_timestamp_millis(*ms)),
        Field::TimestampMicros(us) => timestamp(DateTime::from_timestamp_micros(*us)),
        Field::Date(days) => {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
            let date = epoch.checked_add_signed(chrono::TimeDelta::try_days(i64::from(*days))?)?;
            Some(Value::String(date.format("%Y-%m-%d").to_string()))
        }
        Field::Float16(v) => Some(float(f64::from(*v))),
        Field::Float(v) => Some(float(f64::from(*v))),
        Field::Double(v) => Some(float(*v)),
        Field::Decimal(_) => match field.to_json_value() {
            Value::String(text) => Some(number(&text).unwrap_or(Value::String(text))),
            other => Some(other),
        },
        // Null, booleans, integers, strings, bytes, times, lists, maps and structs.
        other => Some(other.to_json_value()),
    }
}

/// A finite float as a number; NaN and the infinities as Spark prints them.
fn float(value: f64) -> Value {
    Number::from_f64(value).map_or_else(
        || {
            let text = if value.is_nan() {
                "NaN"
            } else if value > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            };
            Value::String(text.into())
        },
        Value::Number,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as PhysicalType};
    use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::types::Type;
    use serde_json::json;

    use super::*;

    fn column(name: &str, type_name: &str) -> Column {
        Column {
            name: name.into(),
            type_text: type_name.to_ascii_lowercase(),
            type_name: type_name.into(),
            nullable: true,
            comment: None,
        }
    }

    fn columns() -> Vec<Column> {
        vec![
            column("id", "LONG"),
            column("name", "STRING"),
            column("price", "DECIMAL"),
            column("active", "BOOLEAN"),
            column("tags", "ARRAY"),
            column("sold_at", "TIMESTAMP"),
        ]
    }

    #[test]
    fn a_csv_file_is_read_by_column_name_with_typed_values_and_empty_cells_as_null() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("items.csv");
        std::fs::write(
            &path,
            "Name,id,active,price,sold_at,tags\n\
             \"Widget, large\",1,TRUE,19.99,2026-01-31T12:00:00Z,\"[\"\"a\"\"]\"\n\
             ,2,false,,,\n",
        )
        .unwrap();
        let rows = read(&path, &columns()).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![
                    json!(1),
                    json!("Widget, large"),
                    json!(19.99),
                    json!(true),
                    json!(["a"]),
                    json!("2026-01-31T12:00:00Z")
                ],
                vec![
                    json!(2),
                    Value::Null,
                    Value::Null,
                    json!(false),
                    Value::Null,
                    Value::Null
                ],
            ]
        );
    }

    #[test]
    fn a_bad_csv_cell_or_header_is_named_with_its_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("items.csv");
        let cases = [
            (
                "id,name,price,active,tags,sold_at\n1,a,1,true,[],\nx,b,1,true,[],\n",
                "line 3, column `id`: \"x\" is not an integer",
            ),
            (
                "id,name,price,active,tags,sold_at\n1,a,1,yes,[],\n",
                "line 2, column `active`: \"yes\" is not true or false",
            ),
            (
                "id,name,price,active,tags\n1,a,1,true,[]\n",
                "the file has no column `sold_at`",
            ),
            (
                "id,name,price,active,tags,sold_at,extra\n",
                "column `extra` is not a column of the table",
            ),
        ];
        for (text, expected) in cases {
            std::fs::write(&path, text).unwrap();
            assert_eq!(read(&path, &columns()).unwrap_err(), expected, "{text}");
        }
        let missing = read(&dir.path().join("absent.csv"), &columns()).unwrap_err();
        assert!(missing.contains("No such file"), "{missing}");
    }

    /// Writes a Snappy-compressed Parquet file with the six test columns and two rows, the
    /// second all NULL but its id.
    fn write_parquet(path: &Path) {
        let field = |name: &str, physical, logical: Option<LogicalType>, repetition| {
            Arc::new(
                Type::primitive_type_builder(name, physical)
                    .with_logical_type(logical)
                    .with_repetition(repetition)
                    .build()
                    .unwrap(),
            )
        };
        let schema = Type::group_type_builder("schema")
            .with_fields(vec![
                field("ID", PhysicalType::INT64, None, Repetition::REQUIRED),
                field(
                    "name",
                    PhysicalType::BYTE_ARRAY,
                    Some(LogicalType::String),
                    Repetition::OPTIONAL,
                ),
                Arc::new(
                    Type::primitive_type_builder("price", PhysicalType::INT32)
                        .with_logical_type(Some(LogicalType::decimal(2, 9)))
                        .with_precision(9)
                        .with_scale(2)
                        .build()
                        .unwrap(),
                ),
                field("active", PhysicalType::BOOLEAN, None, Repetition::OPTIONAL),
                field(
                    "sold_at",
                    PhysicalType::INT64,
                    Some(LogicalType::timestamp(true, TimeUnit::MICROS)),
                    Repetition::OPTIONAL,
                ),
                field(
                    "tags",
                    PhysicalType::BYTE_ARRAY,
                    Some(LogicalType::String),
                    Repetition::OPTIONAL,
                ),
            ])
            .build()
            .unwrap();
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let file = File::create(path).unwrap();
        let mut writer =
            SerializedFileWriter::new(file, Arc::new(schema), Arc::new(properties)).unwrap();
        let mut group = writer.next_row_group().unwrap();
        let present = [1, 0];
        let mut column = group.next_column().unwrap().unwrap();
        (column.typed::<Int64Type>())
            .write_batch(&[7, 8], None, None)
            .unwrap();
        column.close().unwrap();
        let mut column = group.next_column().unwrap().unwrap();
        (column.typed::<ByteArrayType>())
            .write_batch(&[ByteArray::from("gadget")], Some(&present), None)
            .unwrap();
        column.close().unwrap();
        let mut column = group.next_column().unwrap().unwrap();
        (column.typed::<Int32Type>())
            .write_batch(&[1250], Some(&present), None)
            .unwrap();
        column.close().unwrap();
        let mut column = group.next_column().unwrap().unwrap();
        (column.typed::<parquet::data_type::BoolType>())
            .write_batch(&[true], Some(&present), None)
            .unwrap();
        column.close().unwrap();
        let mut column = group.next_column().unwrap().unwrap();
        (column.typed::<Int64Type>())
            .write_batch(&[1_769_860_800_000_000], Some(&present), None)
            .unwrap();
        column.close().unwrap();
        let mut column = group.next_column().unwrap().unwrap();
        (column.typed::<ByteArrayType>())
            .write_batch(&[ByteArray::from("[\"x\"]")], Some(&present), None)
            .unwrap();
        column.close().unwrap();
        group.close().unwrap();
        writer.close().unwrap();
    }

    #[test]
    fn a_snappy_parquet_file_is_read_by_column_name_with_typed_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("items.PARQUET");
        write_parquet(&path);
        let rows = read(&path, &columns()).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![
                    json!(7),
                    json!("gadget"),
                    json!(12.5),
                    json!(true),
                    json!("[\"x\"]"),
                    json!("2026-01-31T12:00:00Z")
                ],
                vec![
                    json!(8),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null
                ],
            ]
        );
        let mut fewer = columns();
        fewer.push(column("missing", "STRING"));
        assert_eq!(
            read(&path, &fewer).unwrap_err(),
            "the file has no column `missing`"
        );
        std::fs::write(&path, "not parquet").unwrap();
        assert!(read(&path, &columns()).is_err());
    }

    #[test]
    fn parquet_timestamps_dates_and_floats_render_as_databricks_prints_them() {
        let ts = Kind::Timestamp;
        assert_eq!(
            parquet_value(&Field::Long(1_769_860_800_123_456_789), ts),
            Some(json!("2026-01-31T12:00:00.123456789Z"))
        );
        assert_eq!(
            parquet_value(&Field::TimestampMillis(0), ts),
            Some(json!("1970-01-01T00:00:00Z"))
        );
        assert_eq!(
            parquet_value(&Field::Date(20_484), Kind::Text),
            Some(json!("2026-01-31"))
        );
        assert_eq!(
            parquet_value(&Field::Long(5), Kind::Integer),
            Some(json!(5))
        );
        assert_eq!(
            parquet_value(&Field::Double(f64::NAN), Kind::Number),
            Some(json!("NaN"))
        );
        assert_eq!(
            parquet_value(&Field::Float(f32::NEG_INFINITY), Kind::Number),
            Some(json!("-Infinity"))
        );
        assert_eq!(parquet_value(&Field::TimestampMicros(i64::MAX), ts), None);
    }
}
