//! Statement result options over HTTP: `row_limit` and `byte_limit`, the three formats, the
//! `INLINE`, `EXTERNAL_LINKS` and hybrid dispositions, the links themselves (no token, expiry,
//! forgery), chunk links, and `CLOSED` statements.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::statements::{STATEMENTS, execute_with, rows, statement_id};
use crate::support::{ALICE, TestEmulator, send, spawn};

const LINKS_ARROW: &str = r#"{"disposition": "EXTERNAL_LINKS", "format": "ARROW_STREAM"}"#;

fn options(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON options")
}

/// Executes and expects a succeeded statement.
async fn succeeded(te: &TestEmulator, sql: &str, extra: Value) -> Value {
    let (status, body) = execute_with(te, ALICE, sql, extra).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"]["state"], "SUCCEEDED", "{body}");
    body
}

/// Downloads a link the way a client must: a plain GET with no `Authorization`.
async fn download(url: &str) -> (StatusCode, Vec<u8>, String) {
    let response = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .expect("download sent");
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = response.bytes().await.expect("body").to_vec();
    (status, bytes, content_type)
}

fn arrow_batches(bytes: &[u8]) -> Vec<RecordBatch> {
    let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .expect("an Arrow IPC stream");
    reader
        .collect::<Result<Vec<_>, _>>()
        .expect("record batches")
}

fn link_of(result: &Value) -> &Value {
    &result["external_links"][0]
}

#[tokio::test]
async fn row_limit_and_byte_limit_cut_the_result_and_mark_it_truncated() {
    // Arrange
    let te = spawn().await;
    let sql = "SELECT * FROM main.default.customers";
    let full = succeeded(&te, sql, json!({})).await;
    let all = rows(&full["result"]);
    let two_rows =
        serde_json::to_vec(&all[0]).unwrap().len() + serde_json::to_vec(&all[1]).unwrap().len();

    // Act
    let by_rows = succeeded(&te, sql, json!({"row_limit": 4})).await;
    let by_bytes = succeeded(&te, sql, json!({"byte_limit": two_rows})).await;
    let by_one_byte_less = succeeded(&te, sql, json!({"byte_limit": two_rows - 1})).await;
    let roomy = succeeded(&te, sql, json!({"byte_limit": 1_000_000, "row_limit": 25})).await;

    // Assert
    assert_eq!(full["manifest"]["truncated"], false);
    assert_eq!(by_rows["manifest"]["total_row_count"], 4);
    assert_eq!(by_rows["manifest"]["truncated"], true);
    assert_eq!(by_bytes["manifest"]["total_row_count"], 2);
    assert_eq!(by_bytes["manifest"]["truncated"], true);
    assert_eq!(rows(&by_bytes["result"]), all[..2]);
    assert_eq!(by_one_byte_less["manifest"]["total_row_count"], 1);
    assert_eq!(roomy["manifest"]["total_row_count"], 25);
    assert_eq!(roomy["manifest"]["truncated"], false);
}

#[tokio::test]
async fn inline_accepts_only_json_array() {
    // Arrange
    let te = spawn().await;

    for format in ["ARROW_STREAM", "CSV"] {
        // Act
        let (status, body) = execute_with(
            &te,
            ALICE,
            "SELECT * FROM main.default.regions",
            json!({"disposition": "INLINE", "format": format}),
        )
        .await;

        // Assert
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("supports only format JSON_ARRAY"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn arrow_stream_links_download_without_a_token_as_typed_arrow() {
    // Arrange
    let te = spawn().await;

    // Act
    let body = succeeded(
        &te,
        "SELECT * FROM main.default.customers",
        options(LINKS_ARROW),
    )
    .await;
    let link = link_of(&body["result"]);
    let (status, bytes, content_type) =
        download(link["external_link"].as_str().expect("a link")).await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/vnd.apache.arrow.stream");
    assert_eq!(body["manifest"]["format"], "ARROW_STREAM");
    assert!(body["manifest"].get("result_compression").is_none());
    assert!(body["result"].get("data_array").is_none());
    assert_eq!(link["chunk_index"], 0);
    assert_eq!(link["row_count"], 25);
    assert_eq!(link["byte_count"], bytes.len());
    assert_eq!(body["manifest"]["chunks"][0]["byte_count"], bytes.len());
    assert!(
        link["external_link"]
            .as_str()
            .unwrap()
            .starts_with(te.handle.base_url())
    );
    let expiration = link["expiration"].as_str().unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(expiration).expect("RFC 3339");
    let ttl = expires.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!((14..=15).contains(&ttl.num_minutes()), "{expiration}");
    let batches = arrow_batches(&bytes);
    let batch = &batches[0];
    let schema = batch.schema();
    let types: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(
        types,
        [
            DataType::Int64,
            DataType::Utf8,
            DataType::Utf8,
            DataType::Date32,
            DataType::Boolean,
            DataType::Float64
        ]
    );
    assert_eq!(batch.num_rows(), 25);
    assert_eq!(batch.column(0).as_primitive::<Int64Type>().value(0), 1);
    assert_eq!(batch.column(1).as_string::<i32>().value(0), "Ada Lovelace");
    let signup = chrono::NaiveDate::from_ymd_opt(2025, 2, 4).unwrap();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    assert_eq!(
        i64::from(batch.column(3).as_primitive::<Date32Type>().value(0)),
        (signup - epoch).num_days()
    );
    assert!(batch.column(4).as_boolean().value(0));
    assert_eq!(
        batch.column(5).as_primitive::<Float64Type>().value(0),
        1652.97
    );
    assert!(
        batch.column(5).is_null(6),
        "Margaret Hamilton's lifetime value is NULL"
    );
}

#[tokio::test]
async fn arrow_maps_int_decimal_and_timestamp_columns() {
    // Arrange
    let te = spawn().await;

    // Act
    let products = succeeded(
        &te,
        "SELECT * FROM main.default.products",
        options(LINKS_ARROW),
    )
    .await;
    let orders = succeeded(
        &te,
        "SELECT * FROM main.sales.orders LIMIT 1",
        options(LINKS_ARROW),
    )
    .await;
    let (_, product_bytes, _) = download(
        link_of(&products["result"])["external_link"]
            .as_str()
            .unwrap(),
    )
    .await;
    let (_, order_bytes, _) = download(
        link_of(&orders["result"])["external_link"]
            .as_str()
            .unwrap(),
    )
    .await;

    // Assert
    let product = &arrow_batches(&product_bytes)[0];
    assert_eq!(product.schema().field(0).data_type(), &DataType::Int32);
    assert_eq!(product.column(0).as_primitive::<Int32Type>().value(0), 1);
    assert_eq!(
        product.schema().field(2).data_type(),
        &DataType::Decimal128(10, 2)
    );
    assert_eq!(
        product.column(2).as_primitive::<Decimal128Type>().value(0),
        1250
    );
    assert!(product.column(2).is_null(7));
    let order = &arrow_batches(&order_bytes)[0];
    assert_eq!(
        order.schema().field(4).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
    );
    let ordered_at = chrono::DateTime::parse_from_rfc3339("2026-02-02T07:13:00Z").unwrap();
    assert_eq!(
        order
            .column(4)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        ordered_at.timestamp_micros()
    );
}

#[tokio::test]
async fn a_link_refuses_a_token_forgery_and_expiry_as_cloud_storage_does() {
    // Arrange
    let te = spawn().await;
    let body = succeeded(
        &te,
        "SELECT * FROM main.default.regions",
        options(LINKS_ARROW),
    )
    .await;
    let url = link_of(&body["result"])["external_link"]
        .as_str()
        .unwrap()
        .to_owned();
    te.handle
        .update_settings(|s| s.sql_link_ttl_secs = 0)
        .expect("valid settings");
    let expired = succeeded(
        &te,
        "SELECT * FROM main.default.regions",
        options(LINKS_ARROW),
    )
    .await;
    let expired_url = link_of(&expired["result"])["external_link"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act
    let (with_token, with_token_body) = send(te.http.get(&url).bearer_auth(ALICE)).await;
    let (forged, _, _) = download(&format!("{url}x")).await;
    let (late, late_body, content_type) = download(&expired_url).await;
    let (fine, _, _) = download(&url).await;

    // Assert
    assert_eq!(with_token, StatusCode::BAD_REQUEST, "{with_token_body}");
    assert_eq!(forged, StatusCode::FORBIDDEN);
    assert_eq!(late, StatusCode::FORBIDDEN);
    assert_eq!(content_type, "application/xml");
    let late_text = String::from_utf8(late_body).unwrap();
    assert!(
        late_text.contains("<Code>AccessDenied</Code>"),
        "{late_text}"
    );
    assert!(late_text.contains("Request has expired"), "{late_text}");
    assert_eq!(fine, StatusCode::OK, "the first link is still valid");
}

#[tokio::test]
async fn every_chunk_has_a_link_and_the_chunk_endpoint_returns_it() {
    // Arrange
    let te = spawn().await;
    te.handle
        .update_settings(|s| s.sql_chunk_rows = 10)
        .expect("valid settings");
    let body = succeeded(
        &te,
        "SELECT * FROM main.default.customers",
        options(LINKS_ARROW),
    )
    .await;
    let id = statement_id(&body);

    // Act
    let mut ids = Vec::new();
    let mut link = link_of(&body["result"]).clone();
    let mut visited = Vec::new();
    loop {
        visited.push(link["chunk_index"].as_u64().unwrap());
        let (status, bytes, _) = download(link["external_link"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        for batch in arrow_batches(&bytes) {
            ids.extend(
                batch
                    .column(0)
                    .as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .copied(),
            );
        }
        let Some(next) = link["next_chunk_internal_link"].as_str() else {
            break;
        };
        assert_eq!(
            next,
            format!(
                "{STATEMENTS}/{id}/result/chunks/{}?row_offset={}",
                link["next_chunk_index"],
                link["row_offset"].as_u64().unwrap() + link["row_count"].as_u64().unwrap()
            )
        );
        let (status, chunk) = te.get(next, ALICE).await;
        assert_eq!(status, StatusCode::OK, "{chunk}");
        link = link_of(&chunk).clone();
    }
    let (out_of_range, _) = te
        .get(&format!("{STATEMENTS}/{id}/result/chunks/3"), ALICE)
        .await;

    // Assert
    assert_eq!(visited, [0, 1, 2]);
    assert_eq!(ids, (1..=25).collect::<Vec<i64>>());
    assert_eq!(body["manifest"]["total_chunk_count"], 3);
    let chunk_bytes: u64 = (0..3)
        .map(|i| {
            body["manifest"]["chunks"][i]["byte_count"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(body["manifest"]["total_byte_count"], chunk_bytes);
    assert_eq!(out_of_range, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn csv_and_json_array_links_carry_their_formats() {
    // Arrange
    let te = spawn().await;
    let sql = "SELECT * FROM main.default.regions";

    // Act
    let csv = succeeded(
        &te,
        sql,
        json!({"disposition": "EXTERNAL_LINKS", "format": "CSV"}),
    )
    .await;
    let json_links = succeeded(&te, sql, json!({"disposition": "EXTERNAL_LINKS"})).await;
    let (_, csv_bytes, csv_type) =
        download(link_of(&csv["result"])["external_link"].as_str().unwrap()).await;
    let (_, json_bytes, _) = download(
        link_of(&json_links["result"])["external_link"]
            .as_str()
            .unwrap(),
    )
    .await;

    // Assert
    assert_eq!(csv["manifest"]["format"], "CSV");
    assert_eq!(csv_type, "text/csv");
    let text = String::from_utf8(csv_bytes).unwrap();
    let mut lines = text.split("\r\n");
    assert_eq!(lines.next(), Some("code,description"));
    assert_eq!(
        lines.next(),
        Some("EMEA,\"Europe, Middle East and Africa\"")
    );
    assert_eq!(json_links["manifest"]["format"], "JSON_ARRAY");
    let downloaded: Value = serde_json::from_slice(&json_bytes).unwrap();
    assert_eq!(
        downloaded[0],
        json!(["EMEA", "Europe, Middle East and Africa"])
    );
    assert_eq!(downloaded.as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn the_hybrid_disposition_inlines_small_results_and_links_large_ones() {
    // Arrange
    let te = spawn().await;
    let hybrid = json!({"disposition": "INLINE_OR_EXTERNAL_LINKS", "format": "ARROW_STREAM"});

    // Act
    let small = succeeded(&te, "SELECT * FROM main.default.regions", hybrid.clone()).await;
    te.handle
        .update_settings(|s| s.sql_hybrid_inline_bytes = 100)
        .expect("valid settings");
    let large = succeeded(&te, "SELECT * FROM main.default.customers", hybrid).await;

    // Assert
    assert!(small["result"].get("external_links").is_none(), "{small}");
    let attachment = small["result"]["attachment"].as_str().expect("attachment");
    let bytes = base64_decode(attachment);
    let batch = &arrow_batches(&bytes)[0];
    assert_eq!(batch.num_rows(), 3);
    assert_eq!(batch.column(0).as_string::<i32>().value(0), "EMEA");
    assert_eq!(
        large["result"]["external_links"].as_array().map(Vec::len),
        Some(1)
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

#[tokio::test]
async fn closing_a_statement_releases_its_result_and_links() {
    // Arrange
    let te = spawn().await;
    let body = succeeded(
        &te,
        "SELECT * FROM main.default.regions",
        options(LINKS_ARROW),
    )
    .await;
    let id = statement_id(&body);
    let url = link_of(&body["result"])["external_link"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act
    let (status, closed) = send(
        te.request(Method::DELETE, &format!("{STATEMENTS}/{id}"), ALICE)
            .json(&json!({"statement_id": id})),
    )
    .await;
    let (_, after) = send(
        te.request(Method::GET, &format!("{STATEMENTS}/{id}"), ALICE)
            .json(&json!({"statement_id": id})),
    )
    .await;
    let (chunk, _) = te
        .get(&format!("{STATEMENTS}/{id}/result/chunks/0"), ALICE)
        .await;
    let (download_status, _, _) = download(&url).await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(after["status"]["state"], "CLOSED");
    assert!(after.get("result").is_none());
    assert_eq!(chunk, StatusCode::BAD_REQUEST);
    assert_eq!(download_status, StatusCode::NOT_FOUND);
}
