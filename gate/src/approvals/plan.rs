//! Who is asked, through which channels, and when.

use chrono::{DateTime, Utc};
use countersign_engine::{ApproverGroup, Member, PolicySet};
use countersign_store::{ApproverRef, NewDelivery};

use super::channels::{Channels, Shared, names};
use super::tokens::{TokenSecret, approval_token_key};
use crate::config::WorkspaceConfig;

/// The approvers of a run and the deliveries that ask them.
pub struct Plan {
    /// Everyone who may answer: the group, then its escalation group.
    pub approvers: Vec<ApproverRef>,
    /// One delivery per approver and channel, plus one per webhook.
    pub deliveries: Vec<NewDelivery>,
}

fn new_id() -> String {
    format!("dlv_{}", uuid::Uuid::now_v7().simple())
}

/// Plans the deliveries of a run that requires approval from `group`.
///
/// Members of the escalation group (`escalate_to`) are asked, and may
/// answer, only once `escalate_after` has passed and the run is still
/// pending: their deliveries are due then (the worker skips deliveries of
/// runs that are no longer pending), and their entry carries that time as
/// `eligible_from`, which the store enforces on every channel. A member of
/// both groups answers from the start.
pub fn plan(
    policies: &PolicySet,
    group: &ApproverGroup,
    workspace: &WorkspaceConfig,
    channels: &Channels,
    secret: &TokenSecret,
    now: DateTime<Utc>,
) -> Plan {
    let mut approvers: Vec<ApproverRef> = Vec::new();
    let mut deliveries = Vec::new();
    let mut ask = |m: &Member, due: DateTime<Utc>, approvers: &mut Vec<ApproverRef>| {
        if approvers.iter().any(|a| a.id == m.id) {
            return;
        }
        approvers.push(ApproverRef {
            id: m.id.clone(),
            email: m.email.clone(),
            slack: m.slack.clone(),
            name: m.name.clone(),
            eligible_from: (due > now).then_some(due),
        });
        let mut add = |channel: &str, with_token: bool| {
            let id = new_id();
            let token = with_token.then(|| approval_token_key(&secret.token_for(&id)));
            deliveries.push(NewDelivery {
                delivery_id: id,
                approver_id: m.id.clone(),
                channel: channel.to_owned(),
                token_hash: token,
                next_attempt_at: due,
            });
        };
        if m.email.is_some() && channels.email.is_some() {
            add(names::EMAIL, true);
        }
        if m.slack.is_some() && channels.slack.is_some() && !channels.slack_channel_mode {
            add(names::SLACK, false);
        }
        // Personal links only to the member's own Teams chat: a shared
        // channel would hand every reader every approver's link.
        if m.teams.is_some() {
            add(names::TEAMS, true);
        }
        if channels.console.is_some() {
            add(names::CONSOLE, true);
        }
    };
    for m in &group.members {
        ask(m, now, &mut approvers);
    }
    if let (Some(next), Some(after)) = (
        group.escalate_to.as_deref().and_then(|n| policies.group(n)),
        group.escalate_after,
    ) {
        let due = now + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::zero());
        for m in &next.members {
            ask(m, due, &mut approvers);
        }
    }
    // Shared destinations: one Slack channel message, one informational
    // Teams card (no links), one event per webhook.
    if channels.teams.contains_key(&workspace.name) {
        deliveries.push(NewDelivery {
            delivery_id: new_id(),
            approver_id: Shared::TeamsChannel.recipient().to_string(),
            channel: names::TEAMS.to_owned(),
            token_hash: None,
            next_attempt_at: now,
        });
    }
    if channels.slack.is_some() && channels.slack_channel_mode {
        deliveries.push(NewDelivery {
            delivery_id: new_id(),
            approver_id: Shared::SlackChannel.recipient().to_string(),
            channel: names::SLACK.to_owned(),
            token_hash: None,
            next_attempt_at: now,
        });
    }
    for h in &workspace.webhooks {
        let id = new_id();
        deliveries.push(NewDelivery {
            token_hash: Some(approval_token_key(&secret.token_for(&id))),
            delivery_id: id,
            approver_id: Shared::Webhook(h.name.clone()).recipient().to_string(),
            channel: names::WEBHOOK.to_owned(),
            next_attempt_at: now,
        });
    }
    Plan {
        approvers,
        deliveries,
    }
}
