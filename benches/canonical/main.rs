//! Per-operation cost of number handling on what one intercept writes; see run.sh.
#![allow(dead_code)]
#[cfg(not(feature = "ap"))]
mod old;
#[cfg(feature = "ap")]
mod new;
use std::time::Instant;
fn main() {
    // The events one intercept writes (run_proposed + policy_decided +
    // approval_requested), shaped as the store builds them.
    let doc = r#"{"run_proposed":{"action":"send_invoice_reminder","actor":"finance_agent","payload":{"amount":1250.10,"customer":"Acme GmbH","invoice_id":"INV-2041","lines":[{"qty":3,"price":19.99},{"qty":1,"price":1190.13}]},"payload_hash":"3b9186c2fa3b26d776919ad57f4d7fe409ae43562b5dfcc6317c2a5ecb46322f","reasoning":"invoice 42 is overdue","source":null,"idempotency_key":null},
      "policy_decided":{"governance_status":"pending_approval","rule":"large-amount","reason":"Reminders above 500 need a finance lead","risk":"medium","policy_version":"b08b8e41ccb2b0a5a77636c3a1989dcdae986888d3d7a05852f9139c9c68e425","details":{"approval_rule":"large-amount","matched":["large-amount"],"shadow":[],"errors":[]}},
      "approval_requested":{"group":"leads","quorum":1,"expires_at":"2026-12-02T14:50:08.380017Z","approvers":[{"id":"alice","email":"alice@example.com","slack":null},{"id":"bob","email":"bob@example.com","slack":null}]}}"#;
    let n = 200_000;
    let v: serde_json::Value = serde_json::from_str(doc).unwrap();
    let t = Instant::now();
    let mut total = 0usize;
    for _ in 0..n {
        let v: serde_json::Value = serde_json::from_str(doc).unwrap();
        total += v.as_object().unwrap().len();
    }
    let parse = t.elapsed() / n;
    let t = Instant::now();
    for _ in 0..n {
        #[cfg(not(feature = "ap"))]
        let s = old::to_canonical_json(&v);
        #[cfg(feature = "ap")]
        let s = new::to_canonical_json(&v);
        total += s.len();
    }
    let canon = t.elapsed() / n;
    let t = Instant::now();
    for i in 0..n as u64 {
        let v = serde_json::json!({"group": "leads", "quorum": 1, "seq": i, "approvers": [{"id": "alice"}], "amount": 12.5});
        total += v.as_object().unwrap().len();
    }
    let build = t.elapsed() / n;
    println!("{} parse {:?} canonical {:?} json!-build {:?} ({total})", if cfg!(feature = "ap") { "arbitrary_precision+exact" } else { "f64+rfc8785     " }, parse, canon, build);
}
