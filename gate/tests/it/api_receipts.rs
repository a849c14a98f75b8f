//! Exact numbers end to end: an execution result that differs from another
//! only beyond 2^53 or in the 20th decimal is stored, hashed and receipted
//! as itself, and a receipt file is verified strictly, by the library and by
//! `countersign receipt verify`.

use countersign_gate::receipts::{self, PublicKeyInfo, ReceiptError};
use countersign_store::{EventKind, Role, to_canonical_json};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::api::{Gate, Key};

/// Runs an allowed action, reports `result_text` (raw JSON) as its result
/// and returns the run id and the receipt as served.
async fn executed_with(gate: &Gate, agent: &Key, result_text: &str) -> (String, String) {
    let (status, run) = gate
        .intercept(
            agent,
            json!({"action": "send_invoice_reminder", "payload": {"amount": 100}}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let id = run["run_id"].as_str().unwrap().to_owned();
    let (status, done) = gate
        .send(
            reqwest::Method::POST,
            &format!("/v1/runs/{id}/executed"),
            Some(agent),
            Some(format!(r#"{{"execution_result": {result_text}}}"#)),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    let resp = gate
        .http
        .get(format!("{}/v1/runs/{id}/receipt", gate.base))
        .bearer_auth(&agent.0)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    (id, resp.text().await.unwrap())
}

async fn served_keys(gate: &Gate) -> Vec<PublicKeyInfo> {
    let (_, doc) = gate
        .send(reqwest::Method::GET, "/v1/receipt-keys", None, None)
        .await;
    serde_json::from_value(doc["keys"].clone()).unwrap()
}

#[tokio::test]
async fn results_differing_beyond_doubles_get_different_hashes_and_receipts() {
    let gate = Gate::start(&["default"], |_| {}).await;
    let agent = gate.key("default", Role::Agent).await;
    let keys = served_keys(&gate).await;

    let a = r#"{"id": 9007199254740993, "amount": 0.12345678901234567891}"#;
    let b = r#"{"id": 9007199254740992, "amount": 0.12345678901234567891}"#;
    let c = r#"{"id": 9007199254740993, "amount": 0.12345678901234567890}"#;
    let mut sums = Vec::new();
    let mut event_data = Vec::new();
    for result in [a, b, c] {
        let (id, receipt) = executed_with(&gate, &agent, result).await;
        let signed = receipts::verify_text(&receipt, &keys).unwrap();
        let execution = &signed["receipt"]["execution"];
        // The receipt's result hash is over the exact canonical result.
        let exact = to_canonical_json(&countersign_store::parse_strict_json(result).unwrap());
        assert_eq!(
            execution["result_sha256"],
            hex::encode(Sha256::digest(exact.as_bytes())),
            "{exact}"
        );
        sums.push(execution["result_sha256"].as_str().unwrap().to_owned());

        // The run and its event hold the digits as sent.
        let (_, run) = gate.get(&format!("/v1/runs/{id}"), &agent).await;
        let stored = &run["execution"]["execution_result"];
        assert_eq!(to_canonical_json(stored), exact);
        let events = gate.state.store.run_events("default", &id).await.unwrap();
        let executed = events
            .iter()
            .find(|e| e.kind == EventKind::ExecutionReported)
            .unwrap();
        let data = to_canonical_json(&executed.data);
        assert!(data.contains(&exact), "{data}");
        event_data.push(data);
    }
    assert_eq!(
        exact_count(&sums),
        3,
        "three results, three hashes: {sums:?}"
    );
    assert_eq!(exact_count(&event_data), 3);
    assert!(event_data[0].contains("9007199254740993"));
    assert!(event_data[0].contains("0.12345678901234567891"));

    // The chain still verifies with the exact forms.
    let report = gate.state.store.verify_chain("default").await.unwrap();
    assert!(report.events >= 9, "{report:?}");
}

fn exact_count(items: &[String]) -> usize {
    items
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

#[tokio::test]
async fn a_tampered_number_in_a_receipt_file_fails_verification() {
    let gate = Gate::start(&["default"], |_| {}).await;
    let agent = gate.key("default", Role::Agent).await;
    let keys = served_keys(&gate).await;
    let (_, receipt) = executed_with(&gate, &agent, r#"{"id": 9007199254740993}"#).await;
    assert!(receipt.contains("9007199254740993"), "{receipt}");
    receipts::verify_text(&receipt, &keys).unwrap();

    // The summary is signed with every digit: 2^53 instead of 2^53 + 1 is
    // a different receipt.
    let tampered = receipt.replace("9007199254740993", "9007199254740992");
    assert!(matches!(
        receipts::verify_text(&tampered, &keys),
        Err(ReceiptError::BadSignature)
    ));
    // A number the receipt holds as a number: seq, changed only beyond a
    // double's precision, is caught too.
    let seq = receipt.split(r#""seq":"#).nth(1).unwrap();
    let seq: String = seq.chars().take_while(char::is_ascii_digit).collect();
    let big = receipt.replace(
        &format!(r#""seq":{seq}"#),
        &format!(r#""seq":{seq}.000000000000000000001"#),
    );
    assert!(matches!(
        receipts::verify_text(&big, &keys),
        Err(ReceiptError::BadSignature)
    ));
    // ... while the same value spelled another way is the same receipt.
    let spelled = receipt.replace(&format!(r#""seq":{seq}"#), &format!(r#""seq":{seq}.000"#));
    receipts::verify_text(&spelled, &keys).unwrap();

    // The CLI says the same, with a non-zero exit code.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keys.json"),
        json!({ "keys": keys }).to_string(),
    )
    .unwrap();
    let run = |text: &str| {
        std::fs::write(dir.path().join("r.json"), text).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_countersign"))
            .args(["receipt", "verify", "r.json", "--keys", "keys.json"])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let ok = run(&receipt);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = run(&tampered);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("the signature does not match"));
}

#[tokio::test]
async fn a_report_with_a_duplicated_key_is_refused() {
    let gate = Gate::start(&["default"], |_| {}).await;
    let agent = gate.key("default", Role::Agent).await;
    let (_, run) = gate
        .intercept(
            &agent,
            json!({"action": "send_invoice_reminder", "payload": {"amount": 100}}),
        )
        .await;
    let id = run["run_id"].as_str().unwrap();
    let (status, e) = gate
        .send(
            reqwest::Method::POST,
            &format!("/v1/runs/{id}/executed"),
            Some(&agent),
            Some(r#"{"execution_result": {"ok": true, "ok": false}}"#.to_owned()),
        )
        .await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(
        e["error"]["message"],
        "malformed JSON: duplicate key `ok` at line 1, column 35"
    );
    // Nothing was recorded: the run still awaits its report.
    let (_, now) = gate.get(&format!("/v1/runs/{id}"), &agent).await;
    assert_eq!(now["execution_status"], "awaiting_execution");
}
