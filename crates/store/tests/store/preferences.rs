//! Preferences: get, list, atomic upsert, delete, and their edge cases.

use std::sync::Arc;

use dbapp_store::{Store, StoreError};
use serde_json::json;

use crate::helpers::{TestDb, conformance, user};

async fn upsert_reports_created_then_replaced(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");

    // Act
    let first = db
        .store
        .upsert_preference(&alice, "theme", &json!("dark"))
        .await
        .unwrap();
    let second = db
        .store
        .upsert_preference(&alice, "theme", &json!({"mode": "light"}))
        .await
        .unwrap();

    // Assert
    assert!(first.created);
    assert!(!second.created);
    assert_eq!(second.preference.value, json!({"mode": "light"}));
    assert_eq!(second.preference.created_at, first.preference.created_at);
    assert!(second.preference.updated_at >= first.preference.updated_at);
    let stored = db.store.get_preference(&alice, "theme").await.unwrap();
    assert_eq!(stored, second.preference);
}
conformance!(upsert_reports_created_then_replaced);

async fn get_of_a_missing_key_is_not_found(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");

    // Act
    let missing = db.store.get_preference(&alice, "nope").await;

    // Assert
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}
conformance!(get_of_a_missing_key_is_not_found);

async fn list_is_empty_for_a_new_user_and_sorted_by_key_bytes(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let empty = db.store.list_preferences(&alice).await.unwrap();
    for key in ["b", "a.z", "B", "a", "é", "a_1"] {
        db.store
            .upsert_preference(&alice, key, &json!(key))
            .await
            .unwrap();
    }

    // Act
    let listed = db.store.list_preferences(&alice).await.unwrap();

    // Assert
    assert!(empty.is_empty());
    let keys: Vec<&str> = listed.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["B", "a", "a.z", "a_1", "b", "é"]);
}
conformance!(list_is_empty_for_a_new_user_and_sorted_by_key_bytes);

async fn delete_reports_whether_the_key_existed(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    db.store
        .upsert_preference(&alice, "k", &json!(1))
        .await
        .unwrap();

    // Act
    let first = db.store.delete_preference(&alice, "k").await.unwrap();
    let second = db.store.delete_preference(&alice, "k").await.unwrap();
    let recreated = db
        .store
        .upsert_preference(&alice, "k", &json!(2))
        .await
        .unwrap();

    // Assert
    assert!(first);
    assert!(!second);
    assert!(recreated.created, "a deleted key is created anew");
}
conformance!(delete_reports_whether_the_key_existed);

async fn unicode_keys_and_values_round_trip(db: &TestDb) {
    // Arrange
    let user = user("zoë+ünïcode@example.com");
    let value = json!({"名前": "テスト", "emoji": "🦀👩‍💻", "rtl": "שלום", "nested": ["ä", {"ß": null}], "n": 1.5, "big": 9007199254740993_i64});

    // Act
    db.store
        .upsert_preference(&user, "ключ.🔑", &value)
        .await
        .unwrap();
    let stored = db.store.get_preference(&user, "ключ.🔑").await.unwrap();

    // Assert
    assert_eq!(stored.key, "ключ.🔑");
    assert_eq!(stored.value, value);
}
conformance!(unicode_keys_and_values_round_trip);

async fn values_of_100_kib_round_trip(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let value = json!({"blob": "x".repeat(100 * 1024 - 20)});
    assert!(value.to_string().len() <= 100 * 1024);

    // Act
    db.store
        .upsert_preference(&alice, "big", &value)
        .await
        .unwrap();
    let stored = db.store.get_preference(&alice, "big").await.unwrap();

    // Assert
    assert_eq!(stored.value, value);
}
conformance!(values_of_100_kib_round_trip);

async fn empty_keys_and_nul_characters_are_invalid_input(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");

    // Act
    let empty = db.store.upsert_preference(&alice, "", &json!(1)).await;
    let nul_key = db.store.upsert_preference(&alice, "a\0b", &json!(1)).await;
    let nul_value = db
        .store
        .upsert_preference(&alice, "k", &json!({"a": "x\u{0}y"}))
        .await;
    let long_key = db
        .store
        .upsert_preference(&alice, &"k".repeat(256), &json!(1))
        .await;

    // Assert
    for result in [empty, nul_key, nul_value, long_key] {
        assert!(
            matches!(result, Err(StoreError::InvalidInput(_))),
            "{result:?}"
        );
    }
    assert!(db.store.list_preferences(&alice).await.unwrap().is_empty());
}
conformance!(empty_keys_and_nul_characters_are_invalid_input);

async fn concurrent_upserts_of_one_key_create_exactly_once(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let writers = 48;

    // Act
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let store: Arc<dyn Store> = Arc::clone(&db.store);
            let alice = alice.clone();
            tokio::spawn(async move { store.upsert_preference(&alice, "race", &json!(i)).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        if task.await.unwrap().unwrap().created {
            created += 1;
        }
    }

    // Assert
    assert_eq!(created, 1);
    assert_eq!(db.store.list_preferences(&alice).await.unwrap().len(), 1);
}
conformance!(concurrent_upserts_of_one_key_create_exactly_once);

async fn floats_come_back_bit_for_bit(db: &TestDb) {
    // Arrange: values whose shortest decimal form needs all 17 significant digits, where a
    // parser that is not correctly rounded lands one unit in the last place off.
    let alice = user("alice@example.com");
    let floats = [
        0.1 + 0.2,
        1.000_000_000_000_000_2,
        2.225_073_858_507_201_4e-308,
        9_007_199_254_740_993.0,
        -1.797_693_134_862_315_7e308,
        123_456.789_012_345_67,
    ];
    let value = json!(floats);

    // Act
    db.store
        .upsert_preference(&alice, "floats", &value)
        .await
        .unwrap();
    let stored = db.store.get_preference(&alice, "floats").await.unwrap();

    // Assert
    let back: Vec<f64> = stored
        .value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back), bits(&floats));
}
conformance!(floats_come_back_bit_for_bit);

async fn numbers_keep_their_exact_value(db: &TestDb) {
    // Arrange: integers past 2^53 (exact in i64/u64, not in a double), the extremes of
    // doubles, and decimals whose shortest text has 17 digits.
    let alice = user("alice@example.com");
    let numbers = json!([
        9_007_199_254_740_993_u64,
        9_223_372_036_854_775_808_u64,
        u64::MAX,
        i64::MIN,
        0.1,
        0.300_000_000_000_000_04,
        1e300,
        -1e-300,
        5e-324,
        f64::MAX,
        2.222_222_222_222_222_6e42,
        1.5,
    ]);

    // Act
    let upserted = db
        .store
        .upsert_preference(&alice, "numbers", &numbers)
        .await
        .unwrap();
    let stored = db.store.get_preference(&alice, "numbers").await.unwrap();

    // Assert: the same numbers, and the same text once serialised.
    assert_eq!(upserted.preference.value, numbers);
    assert_eq!(stored.value, numbers);
    assert_eq!(stored.value.to_string(), numbers.to_string());
}
conformance!(numbers_keep_their_exact_value);
