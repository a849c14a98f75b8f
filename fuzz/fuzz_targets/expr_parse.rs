//! Arbitrary text as a `when:` condition: parse, type-check and constant-fold
//! it, then evaluate whatever compiles against a few fixed requests.
//!
//! Nothing may panic: not the pest grammar, the Pratt parser, the nesting and
//! length limits, constant folding (decimal overflow, division by zero), regex
//! and time zone compilation, nor evaluation. Besides "no panic" the target
//! checks that every diagnostic span lies inside the text and that
//! evaluating twice gives the same result.

#![no_main]

use std::sync::LazyLock;

use chrono::DateTime;
use countersign_engine::{Bindings, CompiledExpr, Value, parse_json};
use libfuzzer_sys::fuzz_target;

/// Requests to evaluate against: a realistic one, one where nothing is set
/// (every variable null, so `now` fails), and one full of edge values
/// (decimal extremes, zero, empty and non-ASCII strings, deep nesting).
struct Requests {
    realistic: (Value, Value, Value, Value),
    unset: (Value, Value, Value, Value),
    edges: (Value, Value, Value, Value),
    /// `context` as the MCP proxy sends it (realistic and edges share it).
    context: Value,
}

fn json(text: &str) -> Value {
    match parse_json(text.as_bytes()) {
        Ok(v) => v,
        Err(e) => panic!("the fuzz target's own fixture is invalid JSON: {e}"),
    }
}

fn timestamp(secs: i64) -> Value {
    match DateTime::from_timestamp(secs, 0) {
        Some(t) => Value::Timestamp(t),
        None => panic!("the fuzz target's own fixture timestamp {secs} is out of range"),
    }
}

static REQUESTS: LazyLock<Requests> = LazyLock::new(|| Requests {
    context: json(r#"{"mcp": {"server": "files", "tool": "write_file", "client": {"name": "claude-code", "version": "2.1.0"}}}"#),
    realistic: (
        Value::string("agent:billing-bot"),
        json(
            r#"{
                "amount": 1250.10, "currency": "EUR", "country": "FR",
                "customer": {"id": "cus_42", "tier": "gold", "tags": ["vip", "eu"],
                             "email": "ana@example.com", "since": "2021-03-04T10:00:00Z"},
                "items": [{"sku": "A-1", "qty": 2, "price": 10.5}, {"sku": "B-2", "qty": 1, "price": 0.1}],
                "iban": "DE89370400440532013000", "note": "  Refund for order #123  ",
                "approved": false, "retries": 0, "ratio": -0.25, "empty": {}, "none": null
            }"#,
        ),
        json(r#"{"ip": "10.0.0.7", "channel": "slack", "labels": ["prod"]}"#),
        // Tuesday 2024-03-05 14:30:00 UTC.
        timestamp(1_709_649_000),
    ),
    unset: (Value::Null, Value::Null, Value::Null, Value::Null),
    edges: (
        Value::string("ÄÖÜ\u{0}\u{202e}"),
        json(
            r#"{
                "amount": 79228162514264337593543950335, "min": -79228162514264337593543950335,
                "tiny": 0.0000000000000000000000000001, "zero": 0, "negzero": -0,
                "currency": "", "country": "ǅ", "customer": [], "items": "not a list",
                "a": {"b": {"c": {"d": {"e": {"f": [[[[[1]]]]]}}}}},
                "": "empty key", "in": 1, "and": true, "list": [null, true, 1, "1", [1], {"1": 1}]
            }"#,
        ),
        json("[1, 2, 3]"),
        // The earliest and the latest instants chrono can hold are out of
        // reach of time zone offsets; use dates near them instead.
        timestamp(-62_135_596_800),
    ),
});

fn check_span(text: &str, start: usize, end: usize, what: &str) {
    assert!(
        start <= end && end <= text.len(),
        "{what} span {start}..{end} is outside the {}-byte expression {text:?}",
        text.len()
    );
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let expr = match CompiledExpr::compile(text, "fuzz_action", "high") {
        Ok(expr) => expr,
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty(), "compile failed without a diagnostic for {text:?}");
            for d in &diagnostics {
                check_span(text, d.span.start, d.span.end, "diagnostic");
                // What the loader does with a diagnostic: quote its text.
                let _ = text.get(d.span.start..d.span.end);
                let _ = format!("{d:?}");
            }
            return;
        }
    };
    assert_eq!(expr.source(), text);
    let _ = expr.constant();
    let requests = &*REQUESTS;
    let cases = [(&requests.realistic, &requests.context), (&requests.unset, &Value::Null), (&requests.edges, &requests.context)];
    for ((actor, payload, source, now), context) in cases {
        let bindings = Bindings { actor, payload, source, context, now };
        let first = expr.evaluate(&bindings);
        let second = expr.evaluate(&bindings);
        assert_eq!(first, second, "evaluating {text:?} twice gave different results");
        match first {
            Ok(value) => {
                let _ = value.to_json();
                let _ = value.to_serde_json();
            }
            Err(e) => {
                let _ = e.message().len();
                let _ = e.to_string();
            }
        }
    }
});
