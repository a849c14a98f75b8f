//! The per-workspace hash chain: how an event is hashed, and how a stored
//! chain is verified.
//!
//! `hash = hex(SHA-256(prev_hash || canonical_json(event without "hash")))`,
//! where `prev_hash` is the previous event's hash as 64 lowercase hex
//! characters (64 zeros for seq 1) and the hashed object has exactly the
//! members `workspace, seq, kind, run_id, at, data, prev_hash`.

use crate::canonical::{to_canonical_json, write_number, write_string};
use crate::error::ChainBreak;
use crate::error::StoreError;
use crate::model::{ChainReport, Event, EventKind};
use crate::ts::format_ts;
use chrono::{DateTime, Utc};
use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

/// `prev_hash` of a workspace's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event that has not been given its place in the chain yet.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PendingEvent {
    pub kind: EventKind,
    pub run_id: Option<String>,
    pub at: DateTime<Utc>,
    pub data: Value,
}

/// The canonical bytes of an event, given the textual forms of its fields
/// exactly as stored; `data` is the canonical JSON text of the event's data.
///
/// This is the canonical JSON object with exactly the members
/// `at, data, kind, prev_hash, run_id, seq, workspace` (in that, sorted,
/// order): what the chain hashes (after `prev_hash`), what the event's MAC
/// authenticates, and the event's Merkle leaf data.
///
/// The object is written directly in canonical form: its members, all ASCII
/// names, in sorted order, with `data` spliced in as it is already
/// canonical. This is byte for byte what canonicalizing the object as a
/// `Value` gives (the tests check it), without copying `data`.
pub(crate) fn event_body(
    workspace: &str,
    seq: u64,
    kind: &str,
    run_id: Option<&str>,
    at: &str,
    data: &str,
    prev_hash: &str,
) -> String {
    let mut body = String::with_capacity(
        data.len() + workspace.len() + kind.len() + at.len() + prev_hash.len() + 128,
    );
    body.push_str("{\"at\":");
    write_string(&mut body, at);
    body.push_str(",\"data\":");
    body.push_str(data);
    body.push_str(",\"kind\":");
    write_string(&mut body, kind);
    body.push_str(",\"prev_hash\":");
    write_string(&mut body, prev_hash);
    body.push_str(",\"run_id\":");
    match run_id {
        Some(id) => write_string(&mut body, id),
        None => body.push_str("null"),
    }
    body.push_str(",\"seq\":");
    write_number(&mut body, &Number::from(seq));
    body.push_str(",\"workspace\":");
    write_string(&mut body, workspace);
    body.push('}');
    body
}

/// The chain hash of an event whose canonical bytes are `body`:
/// `hex(SHA-256(prev_hash || body))`.
pub(crate) fn chain_hash(prev_hash: &str, body: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(body.as_bytes());
    hex::encode(hasher.finalize())
}

/// Hash of an event given the textual forms of its fields, exactly as
/// stored (see [`event_body`]).
#[cfg(test)]
pub(crate) fn hash_fields(
    workspace: &str,
    seq: u64,
    kind: &str,
    run_id: Option<&str>,
    at: &str,
    data: &str,
    prev_hash: &str,
) -> String {
    chain_hash(
        prev_hash,
        &event_body(workspace, seq, kind, run_id, at, data, prev_hash),
    )
}

/// The canonical bytes of `event` (see the crate docs): its Merkle leaf
/// data, and what its MAC authenticates. Recomputed from the event's
/// fields, so anyone holding the event can hash the leaf.
#[must_use]
pub fn event_leaf_data(event: &Event) -> Vec<u8> {
    event_body(
        &event.workspace,
        event.seq,
        event.kind.as_str(),
        event.run_id.as_deref(),
        &format_ts(event.at),
        &to_canonical_json(&event.data),
        &event.prev_hash,
    )
    .into_bytes()
}

/// Recomputes the hash of `event` from its fields (ignoring `event.hash`).
#[must_use]
pub fn compute_hash(event: &Event) -> String {
    let body = event_leaf_data(event);
    let mut hasher = Sha256::new();
    hasher.update(event.prev_hash.as_bytes());
    hasher.update(&body);
    hex::encode(hasher.finalize())
}

/// Gives `pending` its place after (`prev_seq`, `prev_hash`) and hashes it.
/// Also returns the canonical JSON of the event's data, the text to store,
/// and the event's canonical bytes (see [`event_body`]).
pub(crate) fn seal(
    workspace: &str,
    prev_seq: u64,
    prev_hash: &str,
    pending: PendingEvent,
) -> (Event, String, String) {
    let data = to_canonical_json(&pending.data);
    let seq = prev_seq + 1;
    let body = event_body(
        workspace,
        seq,
        pending.kind.as_str(),
        pending.run_id.as_deref(),
        &format_ts(pending.at),
        &data,
        prev_hash,
    );
    let hash = chain_hash(prev_hash, &body);
    let event = Event {
        workspace: workspace.to_owned(),
        seq,
        kind: pending.kind,
        run_id: pending.run_id,
        at: pending.at,
        data: pending.data,
        prev_hash: prev_hash.to_owned(),
        hash,
    };
    (event, data, body)
}

/// An event row as stored, before any decoding, so verification can report
/// a row that no longer decodes as a break rather than a read failure.
#[derive(Debug, Clone)]
pub(crate) struct RawEvent {
    pub seq: u64,
    pub kind: String,
    pub run_id: Option<String>,
    /// The timestamp in its hashed textual form.
    pub at: String,
    /// The stored data text (canonical JSON when written by the store).
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
    /// The stored MAC (`None` for a row without one).
    pub mac: Option<String>,
}

impl RawEvent {
    /// The event's canonical bytes, its stored data re-canonicalized (the
    /// MAC and the leaf cover the data's meaning, whatever its stored
    /// spelling); `None` when the stored data is not JSON.
    pub(crate) fn body(&self, workspace: &str) -> Option<String> {
        let data: Value = serde_json::from_str(&self.data).ok()?;
        Some(self.body_of(workspace, &data))
    }

    /// The event's bytes with `data` (already parsed) canonicalized.
    pub(crate) fn body_of(&self, workspace: &str, data: &Value) -> String {
        self.body_with(workspace, &to_canonical_json(data))
    }

    /// The event's bytes with the data exactly as stored: the canonical
    /// body whenever the row holds what the store wrote.
    pub(crate) fn body_as_stored(&self, workspace: &str) -> String {
        self.body_with(workspace, &self.data)
    }

    fn body_with(&self, workspace: &str, data: &str) -> String {
        event_body(
            workspace,
            self.seq,
            &self.kind,
            self.run_id.as_deref(),
            &self.at,
            data,
            &self.prev_hash,
        )
    }
}

/// Walks a workspace's events in seq order and stops at the first break.
pub(crate) struct ChainVerifier {
    workspace: String,
    expected_seq: u64,
    last_hash: String,
}

impl ChainVerifier {
    pub(crate) fn new(workspace: &str) -> Self {
        Self {
            workspace: workspace.to_owned(),
            expected_seq: 1,
            last_hash: GENESIS_HASH.to_owned(),
        }
    }

    fn broken(&self, seq: u64, reason: ChainBreak) -> StoreError {
        StoreError::ChainBroken {
            workspace: self.workspace.clone(),
            seq,
            reason,
        }
    }

    /// Checks the next stored event.
    pub(crate) fn push(&mut self, raw: &RawEvent) -> Result<(), StoreError> {
        if raw.seq != self.expected_seq {
            return Err(self.broken(
                self.expected_seq,
                ChainBreak::SeqGap {
                    expected: self.expected_seq,
                    found: raw.seq,
                },
            ));
        }
        if raw.prev_hash != self.last_hash {
            return Err(self.broken(
                raw.seq,
                ChainBreak::PrevHashMismatch {
                    expected: self.last_hash.clone(),
                    found: raw.prev_hash.clone(),
                },
            ));
        }
        let data: Value = serde_json::from_str(&raw.data).map_err(|e| {
            self.broken(
                raw.seq,
                ChainBreak::Unreadable {
                    message: format!("data is not JSON: {e}"),
                },
            )
        })?;
        // The stored text is canonicalized again rather than trusted: the
        // hash covers the data's meaning, whatever its stored spelling.
        let computed = chain_hash(
            &raw.prev_hash,
            &event_body(
                &self.workspace,
                raw.seq,
                &raw.kind,
                raw.run_id.as_deref(),
                &raw.at,
                &to_canonical_json(&data),
                &raw.prev_hash,
            ),
        );
        if computed != raw.hash {
            return Err(self.broken(
                raw.seq,
                ChainBreak::HashMismatch {
                    computed,
                    stored: raw.hash.clone(),
                },
            ));
        }
        self.expected_seq += 1;
        self.last_hash.clone_from(&raw.hash);
        Ok(())
    }

    /// Compares the end of the walk with the head recorded at the last
    /// append (`None` when the workspace never had an event).
    pub(crate) fn finish(self, head: Option<(u64, String)>) -> Result<ChainReport, StoreError> {
        let last_seq = self.expected_seq - 1;
        if let Some((head_seq, head_hash)) = head {
            if head_seq > last_seq {
                return Err(self.broken(last_seq + 1, ChainBreak::Truncated { head_seq, last_seq }));
            }
            if head_seq == last_seq && head_hash != self.last_hash {
                return Err(self.broken(
                    last_seq,
                    ChainBreak::HeadMismatch {
                        head_hash,
                        last_hash: self.last_hash.clone(),
                    },
                ));
            }
            // head_seq < last_seq: events were appended without moving the
            // head, which the store never does.
            if head_seq < last_seq {
                return Err(self.broken(
                    head_seq + 1,
                    ChainBreak::Unreadable {
                        message: format!(
                            "events after the recorded head (seq {head_seq}) were added outside the store"
                        ),
                    },
                ));
            }
        } else if last_seq > 0 {
            return Err(self.broken(
                1,
                ChainBreak::Unreadable {
                    message: "events exist but no head was recorded".to_owned(),
                },
            ));
        }
        Ok(ChainReport {
            events: last_seq,
            head_hash: self.last_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 5_000).unwrap_or_default()
    }

    fn raw(e: &Event) -> RawEvent {
        RawEvent {
            seq: e.seq,
            kind: e.kind.as_str().to_owned(),
            run_id: e.run_id.clone(),
            at: format_ts(e.at),
            data: to_canonical_json(&e.data),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
            mac: None,
        }
    }

    fn two_events() -> (Event, Event) {
        let (a, _, _) = seal(
            "ws",
            0,
            GENESIS_HASH,
            PendingEvent {
                kind: EventKind::RunProposed,
                run_id: Some("r1".into()),
                at: at(),
                data: json!({"b": 1, "a": "x"}),
            },
        );
        let (b, _, _) = seal(
            "ws",
            a.seq,
            &a.hash,
            PendingEvent {
                kind: EventKind::KeyCreated,
                run_id: None,
                at: at(),
                data: json!({}),
            },
        );
        (a, b)
    }

    #[test]
    fn hash_is_sha256_of_prev_hash_and_canonical_body() {
        let (a, _) = two_events();
        let body = format!(
            r#"{{"at":"2027-01-15T08:00:00.000005Z","data":{{"a":"x","b":1}},"kind":"run_proposed","prev_hash":"{GENESIS_HASH}","run_id":"r1","seq":1,"workspace":"ws"}}"#
        );
        let mut h = Sha256::new();
        h.update(GENESIS_HASH.as_bytes());
        h.update(body.as_bytes());
        assert_eq!(a.hash, hex::encode(h.finalize()));
        assert_eq!(a.seq, 1);
        assert_eq!(compute_hash(&a), a.hash);
    }

    /// The hand-written body is exactly the canonical form of the object.
    #[test]
    fn hashed_body_matches_generic_canonicalization() {
        let data = json!({"z": [1.5, "\u{1f600}\n"], "a": {"\u{fb33}": null, "\u{1f600}": 2}});
        for (run_id, seq) in [(Some("r\"1"), 7_u64), (None, 1 << 60)] {
            let body = json!({
                "workspace": "w\u{e9}s",
                "seq": seq,
                "kind": "run_proposed",
                "run_id": run_id,
                "at": "2027-01-15T08:00:00.000005Z",
                "data": data.clone(),
                "prev_hash": GENESIS_HASH,
            });
            let mut h = Sha256::new();
            h.update(GENESIS_HASH.as_bytes());
            h.update(to_canonical_json(&body).as_bytes());
            let direct = hash_fields(
                "w\u{e9}s",
                seq,
                "run_proposed",
                run_id,
                "2027-01-15T08:00:00.000005Z",
                &to_canonical_json(&data),
                GENESIS_HASH,
            );
            assert_eq!(direct, hex::encode(h.finalize()));
        }
    }

    #[test]
    fn verifier_accepts_a_good_chain_and_names_breaks() {
        let (a, b) = two_events();
        let mut v = ChainVerifier::new("ws");
        assert!(v.push(&raw(&a)).is_ok());
        assert!(v.push(&raw(&b)).is_ok());
        let report = v.finish(Some((2, b.hash.clone())));
        assert_eq!(
            report.ok(),
            Some(ChainReport {
                events: 2,
                head_hash: b.hash.clone()
            })
        );

        let mut tampered = raw(&b);
        tampered.data = r#"{"x":1}"#.into();
        let mut v = ChainVerifier::new("ws");
        assert!(v.push(&raw(&a)).is_ok());
        assert!(matches!(
            v.push(&tampered),
            Err(StoreError::ChainBroken {
                seq: 2,
                reason: ChainBreak::HashMismatch { .. },
                ..
            })
        ));

        let mut v = ChainVerifier::new("ws");
        assert!(matches!(
            v.push(&raw(&b)),
            Err(StoreError::ChainBroken {
                seq: 1,
                reason: ChainBreak::SeqGap {
                    expected: 1,
                    found: 2
                },
                ..
            })
        ));

        let mut v = ChainVerifier::new("ws");
        assert!(v.push(&raw(&a)).is_ok());
        assert!(matches!(
            v.finish(Some((2, b.hash))),
            Err(StoreError::ChainBroken {
                seq: 2,
                reason: ChainBreak::Truncated { .. },
                ..
            })
        ));
    }
}
