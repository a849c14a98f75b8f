//! Projections recomputed from the log: a run (its row and its approvals)
//! from the run's own events, an API key from its key_created and
//! key_revoked events, and the comparison of each with what is stored.
//!
//! Every column that decides what the gate allows is recomputed from event
//! data alone: the proposal from run_proposed, the decision from
//! policy_decided, the approval requirement (and so the expiry) from
//! approval_requested, each answer from its approval_granted /
//! approval_rejected event (which also records the statuses it led to), the
//! expiry from run_expired and the report from execution_reported;
//! `updated_at` and the chain position are those of the run's last event.
//! Runs created before the upgrade are recomputed from the same events.

use crate::chain::RawEvent;
use crate::error::StoreError;
use crate::log_key::LogKey;
use crate::model::{
    AnswerDecision, ApiKeyRecord, ApprovalAnswer, ApprovalRequirement, ApproverRef, ChainPosition,
    DecisionRecord, Event, EventKind, ExecutionOutcome, ExecutionReport, ExecutionStatus,
    GovernanceStatus, Proposal, Role, Run, is_executable,
};
use crate::rows::RunRow;
use crate::ts::parse_ts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One differing column: its name and what differs.
pub(crate) type Difference = (String, String);

fn field<T: DeserializeOwned>(event: &Event) -> Result<T, String> {
    serde_json::from_value(event.data.clone())
        .map_err(|e| format!("event seq {} ({}): {e}", event.seq, event.kind))
}

fn ts(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    parse_ts(s).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
struct Proposed {
    action: String,
    actor: Option<String>,
    source: Option<Value>,
    #[serde(default)]
    context: Option<Value>,
    reasoning: Option<String>,
    payload_json: String,
    payload_hash: String,
    payload_summary: String,
    idempotency_key: Option<String>,
    request_hash: String,
    created_at: String,
}

#[derive(Deserialize)]
struct Decided {
    governance_status: GovernanceStatus,
    rule: Option<String>,
    reason: String,
    policy_version: String,
    risk: Option<String>,
    details: Value,
    execution_status: ExecutionStatus,
}

#[derive(Deserialize)]
struct Requested {
    group: String,
    quorum: u32,
    expires_at: String,
    approvers: Vec<ApproverRef>,
}

#[derive(Deserialize)]
struct Answered {
    approver_id: String,
    decision: AnswerDecision,
    channel: String,
    comment: Option<String>,
    client_addr: Option<String>,
    user_agent: Option<String>,
    answered_at: String,
    counted: bool,
    governance_status: GovernanceStatus,
    execution_status: ExecutionStatus,
}

#[derive(Deserialize)]
struct Reported {
    outcome: ExecutionOutcome,
    reported_at: String,
    execution_status: ExecutionStatus,
}

/// A run rebuilt from its events, in seq order; an error names the event
/// that cannot be read or is out of place.
pub(crate) fn project_run(events: &[Event]) -> Result<Run, String> {
    let mut run: Option<Run> = None;
    for event in events {
        let Some(current) = run.as_mut() else {
            if event.kind != EventKind::RunProposed {
                return Err(format!(
                    "event seq {} ({}) comes before the run's run_proposed event",
                    event.seq, event.kind
                ));
            }
            let p: Proposed = field(event)?;
            let run_id = event.run_id.clone().unwrap_or_default();
            run = Some(Run {
                proposal: Proposal {
                    workspace: event.workspace.clone(),
                    run_id,
                    action: p.action,
                    actor: p.actor,
                    source: p.source.filter(|v| !v.is_null()),
                    context: p.context.filter(|v| !v.is_null()),
                    reasoning: p.reasoning,
                    payload_json: p.payload_json,
                    payload_hash: p.payload_hash,
                    payload_summary: p.payload_summary,
                    idempotency_key: p.idempotency_key,
                    request_hash: p.request_hash,
                    decision: DecisionRecord {
                        governance_status: GovernanceStatus::Blocked,
                        rule: None,
                        reason: String::new(),
                        policy_version: String::new(),
                        risk: None,
                        details: Value::Null,
                    },
                    approval: None,
                    created_at: ts(&p.created_at)?,
                },
                governance_status: GovernanceStatus::Blocked,
                execution_status: ExecutionStatus::NotExecuted,
                executable: false,
                approvals: Vec::new(),
                execution: None,
                updated_at: event.at,
                chain: ChainPosition {
                    seq: event.seq,
                    hash: event.hash.clone(),
                },
            });
            continue;
        };
        apply(current, event)?;
        current.updated_at = event.at;
        current.chain = ChainPosition {
            seq: event.seq,
            hash: event.hash.clone(),
        };
    }
    let mut run = run.ok_or_else(|| "the run has no events".to_owned())?;
    run.executable = is_executable(run.governance_status, run.execution_status);
    Ok(run)
}

fn apply(run: &mut Run, event: &Event) -> Result<(), String> {
    match event.kind {
        EventKind::PolicyDecided => {
            let d: Decided = field(event)?;
            run.proposal.decision = DecisionRecord {
                governance_status: d.governance_status,
                rule: d.rule,
                reason: d.reason,
                policy_version: d.policy_version,
                risk: d.risk,
                details: d.details,
            };
            run.governance_status = d.governance_status;
            run.execution_status = d.execution_status;
        }
        EventKind::ApprovalRequested => {
            let r: Requested = field(event)?;
            run.proposal.approval = Some(ApprovalRequirement {
                group: r.group,
                quorum: r.quorum,
                expires_at: ts(&r.expires_at)?,
                approvers: r.approvers,
            });
        }
        EventKind::ApprovalGranted | EventKind::ApprovalRejected => {
            let a: Answered = field(event)?;
            run.approvals.push(ApprovalAnswer {
                approver_id: a.approver_id,
                decision: a.decision,
                channel: a.channel,
                comment: a.comment,
                client_addr: a.client_addr,
                user_agent: a.user_agent,
                answered_at: ts(&a.answered_at)?,
                counted: a.counted,
            });
            run.governance_status = a.governance_status;
            run.execution_status = a.execution_status;
        }
        EventKind::RunExpired => {
            run.governance_status = GovernanceStatus::Expired;
            run.execution_status = ExecutionStatus::NotExecuted;
        }
        EventKind::ExecutionReported => {
            let r: Reported = field(event)?;
            run.execution = Some(ExecutionReport {
                outcome: r.outcome,
                reported_at: ts(&r.reported_at)?,
            });
            run.execution_status = r.execution_status;
        }
        other => {
            return Err(format!(
                "event seq {} ({other}) does not belong to a run",
                event.seq
            ));
        }
    }
    Ok(())
}

/// Every column where the stored run differs from the projected one, in
/// column order, then its approvals (`approvals[i].field`).
pub(crate) fn run_differences(stored: &Run, projected: &Run) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut stored = stored.clone();
    stored.proposal.source = stored.proposal.source.filter(|v| !v.is_null());
    match (RunRow::from_run(&stored), RunRow::from_run(projected)) {
        (Ok(s), Ok(p)) => row_differences(&s, &p, &mut out),
        (Err(e), _) | (_, Err(e)) => out.push(("row".to_owned(), e.to_string())),
    }
    if stored.executable != projected.executable {
        out.push((
            "executable".to_owned(),
            differs(&stored.executable, &projected.executable),
        ));
    }
    out.extend(approval_differences(
        &stored.approvals,
        &projected.approvals,
    ));
    out
}

fn differs<T: std::fmt::Debug>(stored: &T, log: &T) -> String {
    format!("stored {stored:?}, the log says {log:?}")
}

fn row_differences(s: &RunRow, p: &RunRow, out: &mut Vec<Difference>) {
    macro_rules! columns {
        ($($c:ident),+ $(,)?) => {
            $(
                if s.$c != p.$c {
                    out.push((stringify!($c).to_owned(), differs(&s.$c, &p.$c)));
                }
            )+
        };
    }
    // JSON columns are compared by their canonical form: a row keeps a
    // number as it was written (`0.10`), the log its canonical form (`0.1`),
    // and both mean the same value.
    macro_rules! json_columns {
        ($($c:ident),+ $(,)?) => {
            $(
                if !same_json(s.$c.as_ref(), p.$c.as_ref()) {
                    out.push((stringify!($c).to_owned(), differs(&s.$c, &p.$c)));
                }
            )+
        };
    }
    // The decision and execution columns first: they are what a forger edits.
    columns!(governance_status, execution_status);
    json_columns!(execution_json);
    columns!(expires_at, approval_group, approval_quorum);
    json_columns!(approvers_json);
    columns!(
        decision_status,
        decision_rule,
        decision_reason,
        policy_version,
        risk,
    );
    if !same_json(Some(&s.decision_details), Some(&p.decision_details)) {
        let d = differs(&s.decision_details, &p.decision_details);
        out.push(("decision_details".to_owned(), d));
    }
    columns!(workspace, run_id, action, actor);
    json_columns!(source_json, context_json);
    columns!(reasoning);
    if !same_json(Some(&s.payload_json), Some(&p.payload_json)) {
        let d = differs(&s.payload_json, &p.payload_json);
        out.push(("payload_json".to_owned(), d));
    }
    columns!(
        payload_hash,
        payload_summary,
        idempotency_key,
        request_hash,
        created_at,
        updated_at,
        head_seq,
        head_hash,
    );
}

/// Whether two stored JSON texts hold the same value (their canonical
/// forms are equal; text that is not JSON is compared as it is).
fn same_json<T: AsRef<str>>(a: Option<&T>, b: Option<&T>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            let (a, b) = (a.as_ref(), b.as_ref());
            a == b
                || match (
                    serde_json::from_str::<serde_json::Value>(a),
                    serde_json::from_str::<serde_json::Value>(b),
                ) {
                    (Ok(x), Ok(y)) => {
                        crate::canonical::to_canonical_json(&x)
                            == crate::canonical::to_canonical_json(&y)
                    }
                    _ => false,
                }
        }
        (None, None) => true,
        _ => false,
    }
}

/// Differences between stored answers and projected ones, by position.
pub(crate) fn approval_differences(
    stored: &[ApprovalAnswer],
    projected: &[ApprovalAnswer],
) -> Vec<Difference> {
    let mut out = Vec::new();
    for i in 0..stored.len().max(projected.len()) {
        match (stored.get(i), projected.get(i)) {
            (Some(s), Some(p)) => {
                macro_rules! fields {
                    ($($f:ident),+) => {
                        $(
                            if s.$f != p.$f {
                                out.push((
                                    format!("approvals[{i}].{}", stringify!($f)),
                                    differs(&s.$f, &p.$f),
                                ));
                            }
                        )+
                    };
                }
                fields!(
                    approver_id,
                    decision,
                    counted,
                    channel,
                    comment,
                    client_addr,
                    user_agent,
                    answered_at
                );
            }
            (Some(s), None) => out.push((
                format!("approvals[{i}]"),
                format!(
                    "a stored answer by `{}` ({}) that no event records",
                    s.approver_id, s.decision
                ),
            )),
            (None, Some(p)) => out.push((
                format!("approvals[{i}]"),
                format!(
                    "the answer by `{}` ({}) recorded in the log is not stored",
                    p.approver_id, p.decision
                ),
            )),
            (None, None) => {}
        }
    }
    out
}

/// The part of a delivery row that decides what an answer through it
/// means: which run, who, which channel, which link token. The rest of
/// the row (attempts, next attempt, last error, sent and spent times) is
/// the outbox's progress, not a projection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct DeliveryFact {
    /// The delivery id.
    #[serde(rename = "id")]
    pub delivery_id: String,
    /// The recipient's stored form (an approver id, or `@` and a
    /// destination name).
    #[serde(rename = "to")]
    pub approver_id: String,
    /// The channel name.
    pub channel: String,
    /// The hash of the link token it carries, if any.
    pub token_hash: Option<String>,
}

#[derive(Deserialize)]
struct RequestedDeliveries {
    deliveries: Option<Vec<DeliveryFact>>,
}

/// The deliveries a run's `approval_requested` event lists. `None` for a
/// run without one, or whose event predates the list (its delivery rows
/// cannot be checked; the README says so).
pub(crate) fn project_deliveries(events: &[Event]) -> Result<Option<Vec<DeliveryFact>>, String> {
    let Some(requested) = events
        .iter()
        .find(|e| e.kind == EventKind::ApprovalRequested)
    else {
        return Ok(None);
    };
    let r: RequestedDeliveries = field(requested)?;
    Ok(r.deliveries)
}

/// The columns where a stored delivery differs from the one the log lists.
pub(crate) fn delivery_differences(
    stored: &DeliveryFact,
    logged: &DeliveryFact,
) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut differ = |column: &str, s: &dyn std::fmt::Debug, l: &dyn std::fmt::Debug| {
        out.push((
            format!("deliveries.{column}"),
            format!("stored {s:?}, the log says {l:?}"),
        ));
    };
    if stored.approver_id != logged.approver_id {
        differ("approver_id", &stored.approver_id, &logged.approver_id);
    }
    if stored.channel != logged.channel {
        differ("channel", &stored.channel, &logged.channel);
    }
    if stored.token_hash != logged.token_hash {
        differ("token_hash", &stored.token_hash, &logged.token_hash);
    }
    out
}

/// The check made before an answer given through a link token is
/// recorded: the token is one the run's authenticated `approval_requested`
/// event lists (by its hash), the token's stored row names the run and
/// the recipient the log gave it to, and the answer names that recipient
/// (for a person) and the channel the token was sent by. A token a
/// database writer added, or a row edited after the fact, is refused as
/// [`StoreError::AuditMismatch`]. Runs from before the list was logged are
/// accepted as they are (see [`project_deliveries`]).
pub(crate) fn check_token_delivery(
    key: &LogKey,
    token: &crate::model::ApprovalToken,
    token_hash: &str,
    raws: &[RawEvent],
    answer: &crate::model::AnswerInput,
) -> Result<(), StoreError> {
    let mismatch = |column: &str, detail: String| StoreError::AuditMismatch {
        workspace: token.workspace.clone(),
        run_id: token.run_id.clone(),
        column: column.to_owned(),
        detail,
    };
    let events = raws
        .iter()
        .map(|raw| check_event(&token.workspace, key, raw).map(|(event, _)| event))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(column, detail)| mismatch(&column, detail))?;
    let logged = project_deliveries(&events).map_err(|e| mismatch("events", e))?;
    let Some(logged) = logged else {
        return Ok(());
    };
    let Some(entry) = logged
        .iter()
        .find(|d| d.token_hash.as_deref() == Some(token_hash))
    else {
        return Err(mismatch(
            "deliveries.token_hash",
            "the token is not among the tokens the log lists for this run".to_owned(),
        ));
    };
    if token.approver_id != entry.approver_id {
        return Err(mismatch(
            "deliveries.approver_id",
            format!(
                "the token's row names `{}` but the log gave it to `{}`",
                token.approver_id, entry.approver_id
            ),
        ));
    }
    if !crate::model::Recipient::parse(&entry.approver_id).is_shared()
        && answer.approver_id != entry.approver_id
    {
        return Err(mismatch(
            "deliveries.approver_id",
            format!(
                "the answer names `{}` but the token was issued to `{}`",
                answer.approver_id, entry.approver_id
            ),
        ));
    }
    if answer.channel != entry.channel {
        return Err(mismatch(
            "deliveries.channel",
            format!(
                "the answer says channel `{}` but the token was sent by `{}`",
                answer.channel, entry.channel
            ),
        ));
    }
    Ok(())
}

/// One stored event, authenticated: its canonical body (the bytes its MAC
/// and its Merkle leaf cover) and, when reading it needed a parse, its data.
pub(crate) struct Authentic {
    /// The canonical event body.
    pub body: String,
    /// The parsed data, when the stored spelling was not the canonical one.
    parsed: Option<Value>,
}

/// Authenticates one stored event on its own: its MAC (made with `key`)
/// and its chain hash over its own fields. Returns the column that fails
/// (`events.mac`, `events.hash`, `events.data`) otherwise.
///
/// The store writes canonical JSON, so the stored data is tried as it is
/// first: a MAC that verifies over those bytes proves they are exactly the
/// canonical body the gate authenticated, with no parse. Only when it does
/// not is the data parsed and re-canonicalised (a row whose spelling, not
/// meaning, was changed), and checked again.
pub(crate) fn authenticate(
    workspace: &str,
    key: &LogKey,
    raw: &RawEvent,
) -> Result<Authentic, Difference> {
    let Some(mac) = raw.mac.as_deref() else {
        return Err((
            "events.mac".to_owned(),
            format!("event seq {} has no MAC", raw.seq),
        ));
    };
    let as_stored = raw.body_as_stored(workspace);
    let (body, parsed) = if key.check_event_mac(as_stored.as_bytes(), mac) {
        (as_stored, None)
    } else {
        let Ok(data) = serde_json::from_str::<Value>(&raw.data) else {
            return Err((
                "events.data".to_owned(),
                format!("event seq {}: data is not JSON", raw.seq),
            ));
        };
        let body = raw.body_of(workspace, &data);
        if !key.check_event_mac(body.as_bytes(), mac) {
            return Err((
                "events.mac".to_owned(),
                format!(
                    "event seq {} is not authenticated by the log key (wrong MAC)",
                    raw.seq
                ),
            ));
        }
        (body, Some(data))
    };
    if crate::chain::chain_hash(&raw.prev_hash, &body) != raw.hash {
        return Err((
            "events.hash".to_owned(),
            format!("event seq {}: stored hash is not the event's hash", raw.seq),
        ));
    }
    Ok(Authentic { body, parsed })
}

/// Checks one stored event on its own ([`authenticate`]) and decodes it.
pub(crate) fn check_event(
    workspace: &str,
    key: &LogKey,
    raw: &RawEvent,
) -> Result<(Event, String), Difference> {
    let Authentic { body, parsed } = authenticate(workspace, key, raw)?;
    let data = match parsed {
        Some(data) => data,
        None => serde_json::from_str(&raw.data).map_err(|e| {
            (
                "events.data".to_owned(),
                format!("event seq {}: {e}", raw.seq),
            )
        })?,
    };
    let event = decode_event(workspace, raw, data).map_err(|e| ("events.data".to_owned(), e))?;
    Ok((event, body))
}

fn decode_event(workspace: &str, raw: &RawEvent, data: Value) -> Result<Event, String> {
    Ok(Event {
        workspace: workspace.to_owned(),
        seq: raw.seq,
        kind: EventKind::parse(&raw.kind)
            .ok_or_else(|| format!("event seq {}: unknown kind `{}`", raw.seq, raw.kind))?,
        run_id: raw.run_id.clone(),
        at: ts(&raw.at)?,
        data,
        prev_hash: raw.prev_hash.clone(),
        hash: raw.hash.clone(),
    })
}

/// The check a state change (or [`crate::Store::verified_run`]) makes
/// before it acts: every event of the run is authenticated, and the stored
/// run equals the run recomputed from them. The first problem is returned
/// as [`StoreError::AuditMismatch`].
pub(crate) fn check_run(key: &LogKey, stored: &Run, raws: &[RawEvent]) -> Result<(), StoreError> {
    let workspace = &stored.proposal.workspace;
    let mismatch = |(column, detail): Difference| StoreError::AuditMismatch {
        workspace: workspace.clone(),
        run_id: stored.proposal.run_id.clone(),
        column,
        detail,
    };
    let events = raws
        .iter()
        .map(|raw| check_event(workspace, key, raw).map(|(event, _)| event))
        .collect::<Result<Vec<_>, _>>()
        .map_err(mismatch)?;
    let projected = project_run(&events).map_err(|e| mismatch(("events".to_owned(), e)))?;
    match run_differences(stored, &projected).into_iter().next() {
        Some(d) => Err(mismatch(d)),
        None => Ok(()),
    }
}

/// An API key as its events say it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProjectedKey {
    pub role: Role,
    pub label: Option<String>,
    /// The actor a bound agent key speaks for (absent for unbound keys).
    pub actor: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// The fingerprint of the key's hash (see
    /// [`crate::workspace_events::key_fingerprint`]); `None` for keys
    /// created before events carried it, whose hash the log cannot check.
    pub fingerprint: Option<String>,
}

#[derive(Deserialize)]
struct KeyCreated {
    key_id: String,
    role: Role,
    label: Option<String>,
    #[serde(default)]
    actor: Option<String>,
    created_at: String,
    #[serde(default)]
    key_fingerprint: Option<String>,
}

#[derive(Deserialize)]
struct KeyRevoked {
    key_id: String,
    revoked_at: String,
}

/// Applies a key event to the keys projected so far.
pub(crate) fn apply_key_event(
    keys: &mut std::collections::BTreeMap<String, ProjectedKey>,
    event: &Event,
) -> Result<(), String> {
    match event.kind {
        EventKind::KeyCreated => {
            let k: KeyCreated = field(event)?;
            keys.insert(
                k.key_id,
                ProjectedKey {
                    role: k.role,
                    label: k.label,
                    actor: k.actor,
                    created_at: k.created_at,
                    revoked_at: None,
                    fingerprint: k.key_fingerprint,
                },
            );
        }
        EventKind::KeyRevoked => {
            let k: KeyRevoked = field(event)?;
            let Some(key) = keys.get_mut(&k.key_id) else {
                return Err(format!(
                    "event seq {} revokes key `{}`, which no event created",
                    event.seq, k.key_id
                ));
            };
            key.revoked_at.get_or_insert(k.revoked_at);
        }
        _ => {}
    }
    Ok(())
}

/// Differences between a stored key row (with its `key_hash`) and its
/// projection. The hash is compared through its fingerprint, when the
/// key_created event has one.
pub(crate) fn key_differences(
    stored: &ApiKeyRecord,
    key_hash: &str,
    projected: &ProjectedKey,
) -> Vec<Difference> {
    let mut out = Vec::new();
    if let Some(expected) = &projected.fingerprint {
        let actual = crate::workspace_events::key_fingerprint(key_hash);
        if &actual != expected {
            out.push((
                "key_hash".to_owned(),
                format!(
                    "the stored hash has fingerprint {actual}, the log says {expected}: the key's secret was replaced"
                ),
            ));
        }
    }
    let created = crate::ts::format_ts(stored.created_at);
    let revoked = stored.revoked_at.map(crate::ts::format_ts);
    if stored.role != projected.role {
        out.push(("role".to_owned(), differs(&stored.role, &projected.role)));
    }
    if stored.label != projected.label {
        out.push(("label".to_owned(), differs(&stored.label, &projected.label)));
    }
    if stored.actor != projected.actor {
        out.push(("actor".to_owned(), differs(&stored.actor, &projected.actor)));
    }
    if created != projected.created_at {
        out.push((
            "created_at".to_owned(),
            differs(&created, &projected.created_at),
        ));
    }
    if revoked != projected.revoked_at {
        out.push((
            "revoked_at".to_owned(),
            differs(&revoked, &projected.revoked_at),
        ));
    }
    out
}

/// The check [`crate::Store::find_key`] makes before it returns a key: the
/// key's own key_created and key_revoked events (`raws`, in seq order,
/// found through the key-event index) are authenticated, and the stored
/// row (with its hash) equals the key they project. The first problem is
/// returned as [`StoreError::KeyMismatch`].
pub(crate) fn check_key(
    log_key: &LogKey,
    stored: &ApiKeyRecord,
    key_hash: &str,
    raws: &[RawEvent],
) -> Result<(), StoreError> {
    let mismatch = |(column, detail): Difference| StoreError::KeyMismatch {
        workspace: stored.workspace.clone(),
        key_id: stored.key_id.clone(),
        column,
        detail,
    };
    let mut keys = std::collections::BTreeMap::new();
    for raw in raws {
        let (event, _) = check_event(&stored.workspace, log_key, raw).map_err(mismatch)?;
        apply_key_event(&mut keys, &event).map_err(|e| mismatch(("events".to_owned(), e)))?;
    }
    let Some(projected) = keys.get(&stored.key_id) else {
        return Err(mismatch((
            "key_created".to_owned(),
            "no authenticated key_created event in the log creates this key".to_owned(),
        )));
    };
    match key_differences(stored, key_hash, projected)
        .into_iter()
        .next()
    {
        Some(d) => Err(mismatch(d)),
        None => Ok(()),
    }
}
