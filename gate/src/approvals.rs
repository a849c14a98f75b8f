//! The approval workflow: who is asked, through which channels, with which
//! single-use links; the delivery worker; and recording answers.
//!
//! When a decision requires approval, the intercept writes one delivery per
//! approver and channel (and one per workspace webhook) in the same
//! transaction as the run: an outbox. The worker sends them, retries with
//! backoff, and records failures on the run. Answers come back through the
//! confirmation pages (email, Teams, console links), Slack buttons, or the
//! webhook answer URL, and all end in [`record::record_answer`].

pub mod channels;
pub mod plan;
pub mod record;
pub mod tokens;
pub mod wake;
pub mod worker;

/// A run's approver group (named `group`) and then its escalation group,
/// as the policy set in force defines them.
pub fn run_groups<'a>(
    set: &'a countersign_engine::PolicySet,
    group: &str,
) -> impl Iterator<Item = &'a countersign_engine::ApproverGroup> {
    let run_group = set.group(group);
    let escalation = run_group
        .and_then(|g| g.escalate_to.as_deref())
        .and_then(|n| set.group(n));
    run_group.into_iter().chain(escalation)
}

/// An approver's display name from a policy set: as listed in `group` (the
/// run's group), else in its escalation group, else in any group that gives
/// one. A member may be listed in several groups, with a name in only some.
#[must_use]
pub fn member_name(
    set: &countersign_engine::PolicySet,
    group: Option<&str>,
    member: &str,
) -> Option<String> {
    let named = |g: &countersign_engine::ApproverGroup| {
        g.members
            .iter()
            .filter(|m| m.id == member)
            .find_map(|m| m.name.clone())
    };
    group
        .into_iter()
        .flat_map(|g| run_groups(set, g))
        .find_map(named)
        .or_else(|| set.groups().iter().find_map(named))
}
