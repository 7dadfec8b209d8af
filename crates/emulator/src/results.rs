//! Result bytes in the three statement `format`s, and the signed URLs that stand in for the
//! cloud-storage links of the `EXTERNAL_LINKS` disposition (`shared/UPSTREAM.md` §4.4).
//!
//! This module knows rows of strings (what `crate::sql` renders for `data_array`) and their column
//! metadata; it owns how those become bytes, not which rows a chunk holds.
//!
//! # Formats
//!
//! - `JSON_ARRAY`: the rows as a JSON array of arrays of strings or null (the `data_array`).
//! - `CSV`: RFC 4180, `\r\n` line ends, a header line with the column names first (UNCONFIRMED:
//!   the real header rule is not pinned down), NULL as an empty field, a field quoted when it
//!   holds `,`, `"`, CR or LF.
//! - `ARROW_STREAM`: an Arrow IPC stream (schema message, one record batch, end marker), no
//!   compression. Column types follow `type_name`: `LONG`→Int64, `INT`→Int32, `SHORT`→Int16,
//!   `BYTE`→Int8, `DOUBLE`→Float64, `FLOAT`→Float32, `BOOLEAN`→Boolean, `DATE`→Date32,
//!   `TIMESTAMP`→Timestamp(µs, `UTC`), `DECIMAL`→Decimal128(precision, scale), anything else
//!   Utf8. A value that does not parse as its column's type becomes null rather than failing
//!   the chunk.
//!
//! # Links
//!
//! A link is `{base}/_emulator/results/{token}`, where the token carries the statement id, the
//! chunk index and the expiry, and ends with an HMAC-SHA256 of those under a key drawn when the
//! emulator starts: nothing is stored per link, and a token cannot be forged or its expiry moved.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder, Int8Builder,
    Int16Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// A result `format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    JsonArray,
    ArrowStream,
    Csv,
}

impl Format {
    /// The format named `name`, as the request spells it.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "JSON_ARRAY" => Some(Self::JsonArray),
            "ARROW_STREAM" => Some(Self::ArrowStream),
            "CSV" => Some(Self::Csv),
            _ => None,
        }
    }

    /// The name the manifest reports.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::JsonArray => "JSON_ARRAY",
            Self::ArrowStream => "ARROW_STREAM",
            Self::Csv => "CSV",
        }
    }

    /// The `Content-Type` of a downloaded chunk.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::JsonArray => "application/json",
            Self::ArrowStream => "application/vnd.apache.arrow.stream",
            Self::Csv => "text/csv",
        }
    }
}

/// What the encoders need to know of a result column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ColumnType<'a> {
    pub(crate) name: &'a str,
    /// `ColumnTypeName`, upper case.
    pub(crate) type_name: &'a str,
    pub(crate) precision: Option<u32>,
    pub(crate) scale: Option<u32>,
}

/// One result row as `data_array` holds it.
pub(crate) type Row = Vec<Option<String>>;

/// Encodes `rows` in `format`.
///
/// # Errors
/// [`ArrowError`] if Arrow refuses the schema or batch, which the type mapping is meant to rule
/// out (a decimal precision outside 1..=38 is mapped to Utf8 instead).
pub(crate) fn encode(
    format: Format,
    columns: &[ColumnType<'_>],
    rows: &[Row],
) -> Result<Vec<u8>, ArrowError> {
    match format {
        // Rows of strings and nulls always serialise; the fallback only satisfies the type.
        Format::JsonArray => Ok(serde_json::to_vec(rows).unwrap_or_default()),
        Format::Csv => Ok(csv(columns, rows).into_bytes()),
        Format::ArrowStream => arrow_stream(columns, rows),
    }
}

fn csv(columns: &[ColumnType<'_>], rows: &[Row]) -> String {
    fn field(out: &mut String, value: &str) {
        if value.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&value.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(value);
        }
    }
    let mut out = String::new();
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(&mut out, column.name);
    }
    out.push_str("\r\n");
    for row in rows {
        for (i, value) in row.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            field(&mut out, value.as_deref().unwrap_or_default());
        }
        out.push_str("\r\n");
    }
    out
}

/// The Arrow type of a column, per the table in the module docs.
fn arrow_type(column: &ColumnType<'_>) -> DataType {
    match column.type_name {
        "LONG" => DataType::Int64,
        "INT" => DataType::Int32,
        "SHORT" => DataType::Int16,
        "BYTE" => DataType::Int8,
        "DOUBLE" => DataType::Float64,
        "FLOAT" => DataType::Float32,
        "BOOLEAN" => DataType::Boolean,
        "DATE" => DataType::Date32,
        "TIMESTAMP" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        "DECIMAL" => {
            let precision = column.precision.unwrap_or(10);
            let scale = column.scale.unwrap_or(0).min(precision);
            match (u8::try_from(precision), i8::try_from(scale)) {
                (Ok(p @ 1..=38), Ok(s)) => DataType::Decimal128(p, s),
                _ => DataType::Utf8,
            }
        }
        _ => DataType::Utf8,
    }
}

fn arrow_stream(columns: &[ColumnType<'_>], rows: &[Row]) -> Result<Vec<u8>, ArrowError> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(c.name, arrow_type(c), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let values = rows.iter().map(|r| r.get(i).and_then(Option::as_deref));
            column_array(field.data_type(), values)
        })
        .collect::<Result<Vec<ArrayRef>, ArrowError>>()?;
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
    let mut writer = arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &schema)?;
    writer.write(&batch)?;
    writer.finish()?;
    writer.into_inner()
}

/// Builds one column from its string values; unparsable values become null.
fn column_array<'a>(
    data_type: &DataType,
    values: impl Iterator<Item = Option<&'a str>>,
) -> Result<ArrayRef, ArrowError> {
    macro_rules! build {
        ($builder:expr, $parse:expr) => {{
            let mut builder = $builder;
            for value in values {
                builder.append_option(value.and_then($parse));
            }
            Arc::new(builder.finish()) as ArrayRef
        }};
    }
    Ok(match data_type {
        DataType::Int64 => build!(Int64Builder::new(), |v: &str| v.trim().parse().ok()),
        DataType::Int32 => build!(Int32Builder::new(), |v: &str| v.trim().parse().ok()),
        DataType::Int16 => build!(Int16Builder::new(), |v: &str| v.trim().parse().ok()),
        DataType::Int8 => build!(Int8Builder::new(), |v: &str| v.trim().parse().ok()),
        DataType::Float64 => build!(Float64Builder::new(), |v: &str| v.trim().parse().ok()),
        DataType::Float32 => build!(Float32Builder::new(), |v: &str| v.trim().parse().ok()),
        DataType::Boolean => build!(BooleanBuilder::new(), |v: &str| match v.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }),
        DataType::Date32 => build!(Date32Builder::new(), parse_date),
        DataType::Timestamp(_, _) => build!(
            TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            parse_timestamp
        ),
        DataType::Decimal128(precision, scale) => {
            let scale_digits = u32::try_from(*scale).unwrap_or(0);
            let builder = Decimal128Builder::new().with_precision_and_scale(*precision, *scale)?;
            build!(builder, |v: &str| parse_decimal(
                v,
                scale_digits,
                *precision
            ))
        }
        _ => build!(StringBuilder::new(), |v: &str| Some(v.to_owned())),
    })
}

/// Days since 1970-01-01 of `YYYY-MM-DD` (a time part, if any, is ignored).
fn parse_date(value: &str) -> Option<i32> {
    let day = value.trim().get(..10)?;
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((date - epoch).num_days()).ok()
}

/// Microseconds since the epoch of an RFC 3339 timestamp, or of a zone-less one taken as UTC.
fn parse_timestamp(value: &str) -> Option<i64> {
    let value = value.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Some(at.timestamp_micros());
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .or_else(|| {
            let day = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()?;
            day.and_hms_opt(0, 0, 0)
        })
        .map(|naive| naive.and_utc().timestamp_micros())
}

/// The unscaled value of a decimal string at `scale` digits (extra digits are cut, not
/// rounded); `None` when it is not a decimal or does not fit `precision`.
fn parse_decimal(value: &str, scale: u32, precision: u8) -> Option<i128> {
    let value = value.trim();
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let valid = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !valid(whole) || !valid(fraction) {
        return None;
    }
    let scale = usize::try_from(scale).ok()?;
    let mut text: String = whole.trim_start_matches('0').to_owned();
    text.extend(fraction.chars().chain(std::iter::repeat('0')).take(scale));
    if text.trim_start_matches('0').len() > usize::from(precision) {
        return None;
    }
    let unscaled: i128 = if text.is_empty() {
        0
    } else {
        text.parse().ok()?
    };
    Some(if negative { -unscaled } else { unscaled })
}

/// Signs and checks external-link tokens.
#[derive(Debug)]
pub(crate) struct LinkSigner {
    key: hmac::Key,
}

/// What a valid link token points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkTarget {
    pub(crate) statement_id: String,
    pub(crate) chunk_index: usize,
    pub(crate) expires_at: DateTime<Utc>,
}

impl LinkSigner {
    /// A signer with a fresh random key: links from another emulator (or run) are refused.
    pub(crate) fn new() -> Self {
        let secret: [u8; 32] = rand::random();
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        }
    }

    /// The token of chunk `chunk_index` of `statement_id`, valid until `expires_at`.
    pub(crate) fn token(&self, target: &LinkTarget) -> String {
        let payload = format!(
            "{}:{}:{}",
            target.statement_id,
            target.chunk_index,
            target.expires_at.timestamp_millis()
        );
        let tag = hmac::sign(&self.key, payload.as_bytes());
        let mut token = URL_SAFE_NO_PAD.encode(payload);
        let _ = write!(token, ".{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        token
    }

    /// What `token` points at, if this signer made it (expired or not).
    pub(crate) fn verify(&self, token: &str) -> Option<LinkTarget> {
        let (payload, tag) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.key, &payload, &tag).ok()?;
        let payload = String::from_utf8(payload).ok()?;
        let mut parts = payload.rsplitn(3, ':');
        let expires_ms: i64 = parts.next()?.parse().ok()?;
        let chunk_index = parts.next()?.parse().ok()?;
        let statement_id = parts.next()?.to_owned();
        Some(LinkTarget {
            statement_id,
            chunk_index,
            expires_at: DateTime::from_timestamp_millis(expires_ms)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column<'a>(name: &'a str, type_name: &'a str) -> ColumnType<'a> {
        ColumnType {
            name,
            type_name,
            precision: None,
            scale: None,
        }
    }

    #[test]
    fn csv_quotes_only_what_needs_quoting_and_writes_null_as_empty() {
        // Arrange
        let columns = [column("id", "LONG"), column("note", "STRING")];
        let rows = vec![
            vec![Some("1".into()), Some("plain".into())],
            vec![Some("2".into()), Some("a,\"b\"".into())],
            vec![Some("3".into()), None],
        ];

        // Act
        let text = String::from_utf8(encode(Format::Csv, &columns, &rows).unwrap()).unwrap();

        // Assert
        assert_eq!(text, "id,note\r\n1,plain\r\n2,\"a,\"\"b\"\"\"\r\n3,\r\n");
    }

    #[test]
    fn decimals_dates_and_timestamps_parse_to_arrow_values() {
        assert_eq!(parse_decimal("12.5", 2, 10), Some(1250));
        assert_eq!(parse_decimal("-0.125", 2, 10), Some(-12));
        assert_eq!(parse_decimal("129", 2, 10), Some(12900));
        assert_eq!(parse_decimal("123456789", 2, 10), None);
        assert_eq!(parse_decimal("abc", 2, 10), None);
        assert_eq!(parse_decimal(".", 2, 10), None);
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(parse_timestamp("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(parse_timestamp("1970-01-01 00:00:00.5"), Some(500_000));
        assert_eq!(parse_timestamp("soon"), None);
    }

    #[test]
    fn link_tokens_verify_only_unaltered() {
        // Arrange
        let signer = LinkSigner::new();
        let target = LinkTarget {
            statement_id: "a:b".into(),
            chunk_index: 3,
            expires_at: DateTime::from_timestamp_millis(1_800_000_000_123).unwrap(),
        };

        // Act
        let token = signer.token(&target);
        let mut forged = token.clone();
        forged.insert(2, 'x');

        // Assert
        assert_eq!(signer.verify(&token), Some(target));
        assert_eq!(signer.verify(&forged), None);
        assert_eq!(LinkSigner::new().verify(&token), None);
        assert_eq!(signer.verify("garbage"), None);
    }
}
