//! A run's one-line title for people: the action's `summary:` template
//! filled from the payload, or else the action's description. Every channel
//! that shows a request (dashboard, email, Slack, Teams, console) uses it,
//! so an approver reads the same sentence everywhere.

use countersign_engine::PolicySet;
use countersign_store::Run;

/// The run's title under `policies` (the workspace's current set): the
/// filled `summary:` template, or the action's description when the action
/// has no template or a placeholder has no value; `None` when the action
/// has neither (or is no longer declared).
pub fn run_title(policies: &PolicySet, run: &Run) -> Option<String> {
    let action = policies.action(&run.proposal.action)?;
    let from_template = action.summary.as_ref().and_then(|t| {
        let payload: serde_json::Value = serde_json::from_str(&run.proposal.payload_json).ok()?;
        t.render(&payload, run.proposal.actor.as_deref())
    });
    from_template.or_else(|| {
        action
            .description
            .as_deref()
            .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|d| !d.is_empty())
    })
}

/// The payload paths the rule that decided `run` reads, under `policies`
/// (empty when the rule is gone or the default decided).
pub fn deciding_paths(policies: &PolicySet, run: &Run) -> Vec<String> {
    let Some(rule) = run.proposal.decision.rule.as_deref() else {
        return Vec::new();
    };
    policies
        .action(&run.proposal.action)
        .and_then(|a| a.rules.iter().find(|r| r.name == rule))
        .map(|r| r.condition.payload_paths())
        .unwrap_or_default()
}
