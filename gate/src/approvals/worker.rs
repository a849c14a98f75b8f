//! The delivery worker: sends due deliveries, retries failures with
//! exponential backoff and jitter, and survives restarts because its work
//! list is the store's outbox.
//!
//! A message may be sent twice if the gate dies between sending it and
//! recording that it was sent; each carries its stable delivery id
//! (`webhook-id`, the email Message-ID) so receivers can tell.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use countersign_store::{Delivery, Run};
use countersign_transports::{ApprovalMessage, EligibleApprover, Recipient};

use super::channels::names;
use crate::state::AppState;

/// How long one send may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts the worker loop: a pass at every wake-up (deliveries were just
/// queued) and every `poll_interval` (retries and escalations falling due,
/// wake-ups lost). It ends when the gate stops, between sends; the handle
/// completes then.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.config.delivery.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = state.outbox.rung() => {}
                () = state.shutdown.requested() => return,
            }
            drain(&state).await;
        }
    })
}

/// Sends what is due, pass after pass. Under load more deliveries fall due
/// in one poll interval than one pass takes, so this goes on at once while
/// passes leave work behind and every outcome was recorded. A pass whose
/// outcomes could not all be recorded (a store fault) ends it, so the same
/// deliveries are not fetched again in a tight loop: the next tick retries.
pub async fn drain(state: &AppState) {
    loop {
        if state.shutdown.is_requested() {
            return;
        }
        match run_once(state).await {
            Ok(pass) if pass.more_due && pass.recorded == pass.attempted => {
                tokio::task::yield_now().await;
            }
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "delivery pass failed");
                return;
            }
        }
    }
}

/// Deliveries fetched per batch, and sent concurrently.
const BATCH: u32 = 32;
/// Batches per pass at most.
const MAX_BATCHES_PER_PASS: usize = 64;

/// What one pass of [`run_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Deliveries attempted.
    pub attempted: usize,
    /// Attempts whose outcome (sent, or failed and when to retry) was
    /// recorded in the store.
    pub recorded: usize,
    /// Whether the pass stopped at its batch limit with deliveries still due.
    pub more_due: bool,
}

/// Sends deliveries due now, batch after batch, each batch concurrently (a
/// slow SMTP server must not hold up Slack), for at most
/// [`MAX_BATCHES_PER_PASS`] batches.
pub async fn run_once(state: &AppState) -> Result<Pass, countersign_store::StoreError> {
    let mut pass = Pass {
        attempted: 0,
        recorded: 0,
        more_due: false,
    };
    // Bounded, so deliveries that cannot even be recorded (a store fault)
    // cannot spin this loop; the caller decides whether to go on.
    for _ in 0..MAX_BATCHES_PER_PASS {
        let due = state
            .store
            .claim_due_deliveries(state.clock.now(), BATCH, state.config.delivery.lease)
            .await?;
        let n = due.len();
        // A run usually has several deliveries due together (one per
        // approver and channel): read each run once for all of them.
        let mut by_run: BTreeMap<(String, String), Vec<Delivery>> = BTreeMap::new();
        for d in due {
            by_run
                .entry((d.workspace.clone(), d.run_id.clone()))
                .or_default()
                .push(d);
        }
        let mut sends = tokio::task::JoinSet::new();
        for ((workspace, run_id), deliveries) in by_run {
            let run = Arc::new(state.store.get_run(&workspace, &run_id).await);
            for d in deliveries {
                let state = state.clone();
                let run = Arc::clone(&run);
                sends.spawn(async move {
                    let id = d.delivery_id.clone();
                    let outcome = attempt(&state, &run, d).await;
                    if let Err(e) = &outcome {
                        tracing::warn!(delivery = %id, error = %e, "delivery attempt could not be recorded");
                    }
                    outcome
                });
            }
        }
        // Sends that succeeded are recorded together, in one store write per
        // group of sends that finished at about the same time, so a slow
        // transport does not hold back the record of the fast ones.
        let mut sent = Vec::new();
        while let Some(done) = sends.join_next().await {
            let mut done = Some(done);
            while let Some(result) = done.take().or_else(|| sends.try_join_next()) {
                match result {
                    Ok(Ok(Attempted::Sent(id))) => sent.push(id),
                    Ok(Ok(Attempted::Recorded)) => pass.recorded += 1,
                    Ok(Err(_)) | Err(_) => {}
                }
            }
            if !sent.is_empty() {
                pass.recorded += record_sent(state, std::mem::take(&mut sent)).await;
            }
        }
        pass.attempted += n;
        pass.more_due = n == BATCH as usize;
        // Outcomes that could not be recorded (a store fault) leave those
        // deliveries due: fetching the next batch now would send them again.
        if !pass.more_due || pass.recorded < pass.attempted || state.shutdown.is_requested() {
            break;
        }
    }
    Ok(pass)
}

/// What became of one delivery attempt.
#[derive(Debug)]
enum Attempted {
    /// Sent; recording that is left to the caller (see [`record_sent`]).
    Sent(String),
    /// A failure, already recorded.
    Recorded,
}

/// Records deliveries sent; returns how many were recorded. One write for
/// all of them; should that fail, each is tried on its own so one bad id
/// does not leave the others to be sent again.
async fn record_sent(state: &AppState, ids: Vec<String>) -> usize {
    let now = state.clock.now();
    match state.store.mark_deliveries_sent(&ids, now).await {
        Ok(()) => return ids.len(),
        Err(e) => {
            tracing::warn!(deliveries = ids.len(), error = %e, "sent deliveries could not be recorded together; recording them one by one");
        }
    }
    let mut recorded = 0;
    for id in ids {
        match state.store.mark_delivery_sent(&id, now).await {
            Ok(()) => recorded += 1,
            Err(e) => {
                tracing::warn!(delivery = %id, error = %e, "a sent delivery could not be recorded");
            }
        }
    }
    recorded
}

/// Sends one delivery of `run` (as read for this batch). A failure is
/// recorded here (with its retry time); a success is returned for the
/// caller to record with the others that finished with it, so `sent_at` is
/// when that group was recorded, moments after the send.
async fn attempt(
    state: &AppState,
    run: &Result<Option<Run>, countersign_store::StoreError>,
    d: Delivery,
) -> Result<Attempted, countersign_store::StoreError> {
    let now = state.clock.now();
    let Some(run) = run.as_ref().map_err(Clone::clone)? else {
        return state
            .store
            .mark_delivery_failed(&d.delivery_id, None, "run not found", now)
            .await
            .map(|()| Attempted::Recorded);
    };
    let teams_url = (d.channel == names::TEAMS && !d.recipient().is_shared())
        .then(|| member_teams_url(state, run, &d.approver_id))
        .flatten();
    // Checked at policy load; again here, so a link never leaves for a URL
    // the configuration does not allow.
    if let Some(Err(why)) = teams_url
        .as_deref()
        .map(|url| state.config.link_destinations.check(url))
    {
        tracing::warn!(delivery = %d.delivery_id, approver = %d.approver_id, reason = %why, "approval links not sent to a Teams URL the configuration does not allow");
        return state
            .store
            .mark_delivery_failed(
                &d.delivery_id,
                None,
                &format!("Teams URL not allowed: {why}"),
                now,
            )
            .await
            .map(|()| Attempted::Recorded);
    }
    let personal_teams = teams_url
        .and_then(|url| countersign_transports::teams::TeamsTransport::new(url).ok())
        .map(|t| std::sync::Arc::new(t) as std::sync::Arc<dyn countersign_transports::Transport>);
    let Some(transport) = personal_teams.or_else(|| {
        state
            .channels
            .for_delivery(&d.workspace, &d.approver_id, &d.channel)
    }) else {
        return state
            .store
            .mark_delivery_failed(
                &d.delivery_id,
                None,
                &format!("channel `{}` is not configured on this gate", d.channel),
                now,
            )
            .await
            .map(|()| Attempted::Recorded);
    };
    let msg = message(state, run, &d);
    let result = tokio::time::timeout(SEND_TIMEOUT, transport.deliver(&msg)).await;
    let now = state.clock.now();
    match result {
        Ok(Ok(_)) => {
            tracing::info!(delivery = %d.delivery_id, run = %d.run_id, channel = %d.channel, approver = %d.approver_id, "approval request sent");
            Ok(Attempted::Sent(d.delivery_id))
        }
        Ok(Err(e)) => {
            let next = (e.retryable() && d.attempts + 1 < state.config.delivery.max_attempts)
                .then(|| retry_at(state, d.attempts, now));
            tracing::warn!(delivery = %d.delivery_id, channel = %d.channel, error = %e.message(), retry = ?next, "approval request not sent");
            state
                .store
                .mark_delivery_failed(&d.delivery_id, next, e.message(), now)
                .await
                .map(|()| Attempted::Recorded)
        }
        Err(_) => {
            let next = (d.attempts + 1 < state.config.delivery.max_attempts)
                .then(|| retry_at(state, d.attempts, now));
            state
                .store
                .mark_delivery_failed(&d.delivery_id, next, "timed out", now)
                .await
                .map(|()| Attempted::Recorded)
        }
    }
}

/// The member's own Teams workflow URL, from the policies in force: as
/// listed in the run's group, else in that group's escalation group (an id
/// may appear in several groups with different details).
fn member_teams_url(state: &AppState, run: &Run, member: &str) -> Option<String> {
    let set = state.workspaces.get(&run.proposal.workspace)?.policies();
    super::run_groups(&set, &run.proposal.approval.as_ref()?.group)
        .flat_map(|g| g.members.iter())
        .find(|m| m.id == member)
        .and_then(|m| m.teams.clone())
}

/// `base × 2^attempts`, capped, times a random factor in [0.5, 1).
fn retry_at(state: &AppState, attempts: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    let policy = state.config.delivery;
    let exp = policy.base_delay.saturating_mul(1u32 << attempts.min(20));
    let capped = exp.min(policy.max_delay);
    let mut b = [0u8; 2];
    let jitter = if crate::keys::random_bytes(&mut b).is_ok() {
        0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0
    } else {
        0.75
    };
    let delay = capped.mul_f64(jitter).max(Duration::from_millis(100));
    now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::seconds(1))
}

fn message(state: &AppState, run: &Run, d: &Delivery) -> ApprovalMessage {
    let base = &state.config.public_url;
    let token = state
        .token_secret
        .token_for_stored(&d.delivery_id, d.token_hash.as_deref());
    // Links are personal: never on a shared destination.
    let links = matches!(
        d.channel.as_str(),
        names::EMAIL | names::TEAMS | names::CONSOLE
    ) && !d.recipient().is_shared();
    let link = |decision: &str| format!("{base}/a/{token}?d={decision}");
    let approver = run
        .proposal
        .approval
        .as_ref()
        .and_then(|a| a.approvers.iter().find(|m| m.id == d.approver_id));
    let name = state.workspaces.get(&run.proposal.workspace).and_then(|w| {
        let group = run.proposal.approval.as_ref().map(|a| a.group.as_str());
        super::member_name(&w.policies(), group, &d.approver_id)
    });
    let approval = run.proposal.approval.as_ref();
    ApprovalMessage {
        delivery_id: d.delivery_id.clone(),
        workspace: run.proposal.workspace.clone(),
        run_id: run.proposal.run_id.clone(),
        action: run.proposal.action.clone(),
        actor: run.proposal.actor.clone(),
        risk: run.proposal.decision.risk.clone(),
        reasoning: run.proposal.reasoning.clone(),
        payload_summary: run.proposal.payload_summary.clone(),
        summary: state
            .workspaces
            .get(&run.proposal.workspace)
            .and_then(|w| crate::title::run_title(&w.policies(), run)),
        dashboard_url: Some(format!(
            "{}/ui/w/{}/runs/{}",
            base.trim_end_matches('/'),
            run.proposal.workspace,
            run.proposal.run_id
        )),
        rule: run.proposal.decision.rule.clone(),
        reason: run.proposal.decision.reason.clone(),
        group: approval.map(|a| a.group.clone()).unwrap_or_default(),
        quorum: approval.map_or(1, |a| a.quorum),
        expires_at: approval.map_or(run.proposal.created_at, |a| a.expires_at),
        recipient: Recipient {
            approver_id: d.approver_id.clone(),
            name,
            email: approver.and_then(|a| a.email.clone()),
            slack: approver.and_then(|a| a.slack.clone()),
        },
        approve_url: links.then(|| link("approve")),
        reject_url: links.then(|| link("reject")),
        answer_url: (d.channel == names::WEBHOOK).then(|| format!("{base}/v1/approvals/{token}")),
        approvers: approval
            .map(|a| {
                a.approvers
                    .iter()
                    .filter(|r| !countersign_store::is_actor(run, &r.id))
                    .map(|r| EligibleApprover {
                        id: r.id.clone(),
                        eligible_from: r.eligible_from,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}
