//! The shared canonical-form vectors (`canonical_vectors.json`, also checked
//! by the Python SDK's test suite): each input, read strictly with its numbers
//! exact, canonicalizes to the expected bytes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]

use countersign_store::{parse_strict_json, to_canonical_json};

#[test]
fn every_vector_canonicalizes_byte_for_byte() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/canonical_vectors.json"),
    )
    .unwrap();
    let doc = parse_strict_json(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 30, "the vector file lost its cases");
    let mut failures = Vec::new();
    for case in cases {
        let input = case["input"].as_str().unwrap();
        let want = case["canonical"].as_str().unwrap();
        match parse_strict_json(input) {
            Ok(v) => {
                let got = to_canonical_json(&v);
                if got.as_bytes() != want.as_bytes() {
                    failures.push(format!("{input}: got {got}, want {want}"));
                }
            }
            Err(e) => failures.push(format!("{input}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The two results of the issue: equal as doubles, different as numbers.
#[test]
fn values_equal_only_as_doubles_have_different_forms() {
    for (a, b) in [
        (
            r#"{"result":{"id":9007199254740993}}"#,
            r#"{"result":{"id":9007199254740992}}"#,
        ),
        (
            r#"{"amount":0.12345678901234567891}"#,
            r#"{"amount":0.12345678901234567890}"#,
        ),
    ] {
        let fa = to_canonical_json(&parse_strict_json(a).unwrap());
        let fb = to_canonical_json(&parse_strict_json(b).unwrap());
        assert_ne!(fa, fb);
        // serde_json (built with arbitrary_precision) reads them apart too.
        let sa: serde_json::Value = serde_json::from_str(a).unwrap();
        assert_eq!(to_canonical_json(&sa), fa);
    }
}
