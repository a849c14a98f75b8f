//! API key rows checked against their events: what the gate's
//! authentication (`find_key`) refuses and `audit` reports when a database
//! writer forges, re-keys, un-revokes or promotes a key row.

use super::verifiable::{has_problem, problems, sql_text};
use crate::common::{Backend, t};
use countersign_store::{
    ApiKeyRecord, AuditSubject, Event, EventKind, GENESIS_HASH, Role, Store, StoreError,
    compute_hash, format_ts, to_canonical_json,
};
use serde_json::json;

/// The key id and column of a key mismatch.
fn key_mismatch(r: Result<Option<ApiKeyRecord>, StoreError>) -> (String, String) {
    match r {
        Err(StoreError::KeyMismatch { key_id, column, .. }) => (key_id, column),
        other => panic!("expected a key mismatch, got {other:?}"),
    }
}

fn key_problem(key_id: &str) -> AuditSubject {
    AuditSubject::Key {
        key_id: key_id.into(),
    }
}

/// Legitimate keys (admin and agent, bound and unbound, revoked and not)
/// are found as created; forged, re-keyed, un-revoked and promoted rows are
/// refused by `find_key`, naming the column, and reported by `audit`.
pub async fn forged_key_rows_are_refused(b: &impl Backend) {
    let s = b.store();
    let admin = s
        .create_key(
            "ws",
            "adm",
            "hash-adm",
            Role::Admin,
            Some("ops".into()),
            t(1),
        )
        .await
        .unwrap();
    let bound = s
        .create_bound_key(
            "ws",
            "bound",
            "hash-bound",
            Role::Agent,
            None,
            Some("support_agent".into()),
            t(2),
        )
        .await
        .unwrap();
    let agent = s
        .create_key("ws", "agent", "hash-agent", Role::Agent, None, t(3))
        .await
        .unwrap();
    s.create_key("ws", "rev", "hash-rev", Role::Agent, None, t(4))
        .await
        .unwrap();
    let revoked = s.revoke_key("ws", "rev", t(5)).await.unwrap();
    s.create_key("ws2", "other", "hash-other", Role::Agent, None, t(6))
        .await
        .unwrap();
    // Each event binds its row's hash, and only through a fingerprint.
    let created = s.events("ws", 0, 100).await.unwrap();
    let first = created
        .iter()
        .find(|e| e.kind == EventKind::KeyCreated)
        .unwrap();
    let fingerprint = first.data["key_fingerprint"].as_str().unwrap();
    assert_eq!(fingerprint.len(), 64);
    assert!(!first.data.to_string().contains("hash-adm"));

    for (hash, key) in [
        ("hash-adm", &admin),
        ("hash-bound", &bound),
        ("hash-agent", &agent),
        ("hash-rev", &revoked),
    ] {
        assert_eq!(
            s.find_key(hash).await.unwrap().as_ref(),
            Some(key),
            "{hash}"
        );
    }
    assert!(s.find_key("hash-nobody").await.unwrap().is_none());
    for ws in ["ws", "ws2"] {
        let report = s.audit(ws).await.unwrap();
        assert!(report.is_ok(), "{ws}: {}", problems(&report));
    }

    b.drop_append_only_triggers().await;
    let created_at = sql_text(&format_ts(t(20)));
    b.raw_execute(&format!(
        // (a) a new admin row with a secret the writer chose, and one
        //     borrowing a key id that exists in another workspace;
        "INSERT INTO api_keys (workspace, key_id, key_hash, role, label, created_at) VALUES \
         ('ws', 'evil', 'hash-evil', 'admin', NULL, '{created_at}'), \
         ('ws', 'other', 'hash-borrowed', 'admin', NULL, '{created_at}'); \
         UPDATE api_keys SET key_hash = 'hash-stolen' WHERE workspace = 'ws' AND key_id = 'adm'; \
         UPDATE api_keys SET revoked_at = NULL WHERE workspace = 'ws' AND key_id = 'rev'; \
         UPDATE api_keys SET role = 'admin' WHERE workspace = 'ws' AND key_id = 'agent'; \
         UPDATE api_keys SET actor = 'finance_agent' WHERE workspace = 'ws' AND key_id = 'bound';"
    ))
    .await
    .unwrap();

    let cases = [
        ("hash-evil", "evil", "key_created"),
        ("hash-borrowed", "other", "key_created"),
        ("hash-stolen", "adm", "key_hash"),
        ("hash-rev", "rev", "revoked_at"),
        ("hash-agent", "agent", "role"),
        ("hash-bound", "bound", "actor"),
    ];
    for (hash, key_id, column) in cases {
        assert_eq!(
            key_mismatch(s.find_key(hash).await),
            (key_id.to_owned(), column.to_owned()),
            "{hash}"
        );
    }
    // The old secret no longer names any row.
    assert!(s.find_key("hash-adm").await.unwrap().is_none());
    // The other workspace's key is untouched.
    assert!(s.find_key("hash-other").await.unwrap().is_some());

    let report = s.audit("ws").await.unwrap();
    let expected = [
        ("evil", None),
        ("adm", Some("key_hash")),
        ("rev", Some("revoked_at")),
        ("agent", Some("role")),
        ("bound", Some("actor")),
    ];
    for (key_id, column) in expected {
        assert!(
            has_problem(&report, &key_problem(key_id), column),
            "{key_id}: {}",
            problems(&report)
        );
    }
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.subject == key_problem("other") && p.column.is_none()),
        "{}",
        problems(&report)
    );
    assert!(s.audit("ws2").await.unwrap().is_ok());
}

/// A key_created event not made with the log key does not make a forged
/// row acceptable.
pub async fn forged_key_events_do_not_authenticate_a_key(b: &impl Backend) {
    let s = b.store();
    s.create_key("ws", "k1", "hash-k1", Role::Agent, None, t(1))
        .await
        .unwrap();
    let last = s.events("ws", 0, 100).await.unwrap().pop().unwrap();
    let mut forged = Event {
        workspace: "ws".into(),
        seq: last.seq + 1,
        kind: EventKind::KeyCreated,
        run_id: None,
        at: t(2),
        data: json!({
            "key_id": "evil", "role": "admin", "label": null,
            "created_at": format_ts(t(2)),
        }),
        prev_hash: last.hash.clone(),
        hash: String::new(),
    };
    forged.hash = compute_hash(&forged);
    b.raw_execute(&format!(
        "INSERT INTO events (workspace, seq, kind, run_id, at, data, prev_hash, hash, mac) VALUES \
         ('ws', {seq}, 'key_created', NULL, '{at}', '{data}', '{prev}', '{hash}', '{mac}'); \
         UPDATE chain_heads SET seq = {seq}, hash = '{hash}' WHERE workspace = 'ws'; \
         INSERT INTO api_keys (workspace, key_id, key_hash, role, label, created_at) VALUES \
         ('ws', 'evil', 'hash-evil', 'admin', NULL, '{at}');",
        seq = forged.seq,
        at = format_ts(forged.at),
        data = sql_text(&to_canonical_json(&forged.data)),
        prev = forged.prev_hash,
        hash = forged.hash,
        mac = "00".repeat(32),
    ))
    .await
    .unwrap();
    assert_eq!(
        key_mismatch(s.find_key("hash-evil").await),
        ("evil".to_owned(), "events.mac".to_owned())
    );
    assert!(s.find_key("hash-k1").await.unwrap().is_some());
}

/// SQL that adds, to a database from before the verifiable log (schema
/// version 3, no MAC column), a workspace `legacy` whose only event is a
/// key_created event without a fingerprint, as gates before this change
/// wrote it, with its key row (admin `old`, hash `hash-old`) and head.
pub fn legacy_key_sql() -> String {
    let mut event = Event {
        workspace: "legacy".into(),
        seq: 1,
        kind: EventKind::KeyCreated,
        run_id: None,
        at: t(1),
        data: json!({
            "key_id": "old", "role": "admin", "label": "before the upgrade",
            "created_at": format_ts(t(1)),
        }),
        prev_hash: GENESIS_HASH.into(),
        hash: String::new(),
    };
    event.hash = compute_hash(&event);
    let at = format_ts(event.at);
    format!(
        "INSERT INTO events (workspace, seq, kind, run_id, at, data, prev_hash, hash) VALUES \
         ('legacy', 1, 'key_created', NULL, '{at}', '{data}', '{prev}', '{hash}'); \
         INSERT INTO chain_heads (workspace, seq, hash) VALUES ('legacy', 1, '{hash}'); \
         INSERT INTO api_keys (workspace, key_id, key_hash, role, label, created_at) VALUES \
         ('legacy', 'old', 'hash-old', 'admin', 'before the upgrade', '{at}');",
        data = sql_text(&to_canonical_json(&event.data)),
        prev = event.prev_hash,
        hash = event.hash,
    )
}

/// After the upgrade, the key [`legacy_key_sql`] added still works: found,
/// audited clean (its hash cannot be checked: the event has no
/// fingerprint), revocable, and still checked on everything else.
pub async fn legacy_keys_keep_working(s: &dyn Store) {
    let key = s.find_key("hash-old").await.unwrap().unwrap();
    assert_eq!((key.key_id.as_str(), key.role), ("old", Role::Admin));
    let report = s.audit("legacy").await.unwrap();
    assert!(report.is_ok(), "{}", problems(&report));
    assert_eq!(report.keys, 1);
    s.revoke_key("legacy", "old", t(5)).await.unwrap();
    assert_eq!(
        s.find_key("hash-old").await.unwrap().unwrap().revoked_at,
        Some(t(5))
    );
    // A key created after the upgrade carries its fingerprint.
    s.create_key("legacy", "new", "hash-new", Role::Agent, None, t(6))
        .await
        .unwrap();
    let created = s.events("legacy", 2, 10).await.unwrap();
    assert!(
        created
            .iter()
            .any(|e| e.kind == EventKind::KeyCreated && e.data.get("key_fingerprint").is_some())
    );
    assert!(s.audit("legacy").await.unwrap().is_ok());
}
