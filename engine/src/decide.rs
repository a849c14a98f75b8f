//! Deciding one request: which rules match, which decision wins, and why.
//!
//! The decision is the strongest among matching enforced rules
//! (`block` > `require_approval` > `allow`), so neither rule order nor file
//! order can change it; order only picks which of the winning rules is
//! reported. A condition that cannot be evaluated counts as matched with the
//! action's `on_error` decision (default `block`): the gate fails closed.

use std::borrow::Cow;
use std::time::Duration;

use serde::Serialize;
use smallvec::SmallVec;

use crate::expr::{AggregateSpec, Aggregates, Bindings};
use crate::policy::{
    Action, ApproverGroup, Condition, Member, Mode, PolicySet, Rule, Verdict, format_duration,
};
use crate::value::Value;

/// One proposed action, as the engine sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'r> {
    /// The action name.
    pub action: &'r str,
    /// Who proposes it (usually a string; null when unknown).
    pub actor: &'r Value,
    /// The payload (an object).
    pub payload: &'r Value,
    /// Where the request came from (any JSON; null when unknown).
    pub source: &'r Value,
    /// What the surface the request came through adds about it (the MCP
    /// proxy's `{"mcp": {"server", "tool", "client"}}`); null when none.
    pub context: &'r Value,
    /// The evaluation instant as a [`Value::Timestamp`], or null when the
    /// caller has none (expressions reading `now` then fail and the rule
    /// takes its `on_error` decision).
    pub now: &'r Value,
}

/// A matching rule.
#[derive(Debug, Clone, Copy)]
pub struct RuleHit<'p> {
    /// The rule.
    pub rule: &'p Rule,
    /// What it decided: its decision, or `on_error` if it failed.
    pub decision: Verdict,
    /// Whether it matched because its condition failed to evaluate.
    pub errored: bool,
}

/// A condition that could not be evaluated.
#[derive(Debug, Clone)]
pub struct RuleError<'p> {
    /// The rule.
    pub rule: &'p Rule,
    /// Why.
    pub message: String,
}

/// What a `require_approval` decision asks for.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalRequirement<'p> {
    /// The approver group.
    pub group: &'p ApproverGroup,
    /// Distinct approvals needed.
    pub quorum: u32,
    /// How long the request waits before it expires.
    pub timeout: Duration,
    /// The rule that set this requirement (`None` when the action's default
    /// decided). It can differ from the reported rule when several matching
    /// rules require approval.
    pub rule: Option<&'p Rule>,
}

/// The outcome for one request, borrowing names and reasons from the policy
/// set so deciding allocates nothing on the common path.
#[derive(Debug, Clone)]
pub struct Decision<'p> {
    /// allow, require_approval or block.
    pub verdict: Verdict,
    /// The declared action, or `None` for an undeclared one.
    pub action: Option<&'p Action>,
    /// The rule reported as deciding: the first (in file order) matching
    /// rule whose decision is the winning one. `None` when no rule matched.
    pub rule: Option<&'p Rule>,
    /// Why, in words.
    pub reason: Cow<'p, str>,
    /// Every matching enforced rule, in file order.
    pub matched: SmallVec<[RuleHit<'p>; 4]>,
    /// Every matching shadow rule, in file order (they never count).
    pub shadow: SmallVec<[RuleHit<'p>; 2]>,
    /// Conditions that failed to evaluate (shadow rules included).
    pub errors: Vec<RuleError<'p>>,
    /// Approver group, quorum and timeout, for `require_approval`.
    pub approval: Option<ApprovalRequirement<'p>>,
    /// The version of the policy set that decided.
    pub policy_version: &'p str,
}

impl PolicySet {
    /// Decides one request.
    ///
    /// ```
    /// use countersign_engine::{PolicySet, Request, Value, Verdict, parse_json};
    /// let set = PolicySet::from_sources([("p.yaml", r#"
    /// version: 1
    /// actions:
    ///   refund:
    ///     rules:
    ///       - name: small
    ///         when: payload.amount <= 100
    ///         decision: allow
    /// "#)]).unwrap();
    /// let payload = parse_json(br#"{"amount": 99.99}"#).unwrap();
    /// let null = Value::Null;
    /// let d = set.decide(&Request { action: "refund", actor: &null, payload: &payload, source: &null, context: &null, now: &null });
    /// assert_eq!(d.verdict, Verdict::Allow);
    /// assert_eq!(d.rule.unwrap().name, "small");
    /// ```
    pub fn decide<'p>(&'p self, req: &Request<'_>) -> Decision<'p> {
        self.decide_with(req, &Aggregates::new())
    }

    /// The aggregates (`count`, `sum`) that the rules of `action` read,
    /// one per key, in rule order: what the caller must compute before
    /// [`PolicySet::decide_with`]. Empty for an undeclared action.
    pub fn aggregates(&self, action: &str) -> Vec<&AggregateSpec> {
        let mut out: Vec<&AggregateSpec> = Vec::new();
        for rule in self
            .action(action)
            .map(|a| a.rules.as_slice())
            .unwrap_or_default()
        {
            if let Condition::Expr(e) = &rule.condition {
                for spec in e.aggregates() {
                    if !out.iter().any(|s| s.key() == spec.key()) {
                        out.push(spec);
                    }
                }
            }
        }
        out
    }

    /// Every aggregate of every action, for a caller that prepares what
    /// they need (its indexes) when the policy loads.
    pub fn all_aggregates(&self) -> Vec<&AggregateSpec> {
        self.actions
            .iter()
            .flat_map(|a| a.rules.iter())
            .filter_map(|r| match &r.condition {
                Condition::Expr(e) => Some(e.aggregates()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Decides one request, with the values of its aggregates (computed by
    /// the caller over past runs; see [`PolicySet::aggregates`]). A
    /// condition reading an aggregate that has no value, or whose value is
    /// an error, fails and takes the action's `on_error` decision.
    pub fn decide_with<'p>(&'p self, req: &Request<'_>, aggregates: &Aggregates) -> Decision<'p> {
        let Some(action) = self.action(req.action) else {
            return Decision {
                verdict: Verdict::Block,
                action: None,
                rule: None,
                reason: Cow::Owned(format!(
                    "action `{}` is not declared in any policy",
                    req.action
                )),
                matched: SmallVec::new(),
                shadow: SmallVec::new(),
                errors: Vec::new(),
                approval: None,
                policy_version: &self.version,
            };
        };
        let bindings = Bindings {
            actor: req.actor,
            payload: req.payload,
            source: req.source,
            context: req.context,
            now: req.now,
        };
        let mut matched: SmallVec<[RuleHit<'p>; 4]> = SmallVec::new();
        let mut shadow: SmallVec<[RuleHit<'p>; 2]> = SmallVec::new();
        let mut errors = Vec::new();
        let mut cel = crate::expr::cel::CelScope::new(&action.name, action.risk.as_str(), bindings);
        for rule in &action.rules {
            let outcome = match &rule.condition {
                Condition::Always => Ok(true),
                Condition::Expr(e) => e.test(&bindings, aggregates).map_err(|e| e.message),
                Condition::Cel(c) => cel.test(c),
            };
            let hit = match outcome {
                Ok(true) => RuleHit {
                    rule,
                    decision: rule.decision,
                    errored: false,
                },
                Ok(false) => continue,
                Err(message) => {
                    errors.push(RuleError { rule, message });
                    RuleHit {
                        rule,
                        decision: action.on_error,
                        errored: true,
                    }
                }
            };
            match rule.mode {
                Mode::Enforce => matched.push(hit),
                Mode::Shadow => shadow.push(hit),
            }
        }
        let winner = matched.iter().map(|h| h.decision).max();
        let (verdict, deciding) = match winner {
            Some(v) => (v, matched.iter().find(|h| h.decision == v).copied()),
            None => (action.default, None),
        };
        let reason = match deciding {
            Some(hit) if hit.errored => Cow::Owned(format!(
                "the condition of rule `{}` could not be evaluated ({}), so on_error applies: {}",
                hit.rule.name,
                errors
                    .iter()
                    .find(|e| std::ptr::eq(e.rule, hit.rule))
                    .map_or("unknown error", |e| e.message.as_str()),
                action.on_error
            )),
            Some(hit) => Cow::Borrowed(hit.rule.reason.as_str()),
            None => Cow::Borrowed(action.default_reason.as_str()),
        };
        let approval = if verdict == Verdict::RequireApproval {
            self.approval_requirement(action, &matched)
        } else {
            None
        };
        // INVARIANT: the loader rejects any action that can require approval
        // without an approver group, so `approval` is set here. Should that
        // ever not hold, block rather than ask nobody.
        if verdict == Verdict::RequireApproval && approval.is_none() {
            return Decision {
                verdict: Verdict::Block,
                action: Some(action),
                rule: deciding.map(|h| h.rule),
                reason: Cow::Borrowed("approval required but no approver group is configured"),
                matched,
                shadow,
                errors,
                approval: None,
                policy_version: &self.version,
            };
        }
        Decision {
            verdict,
            action: Some(action),
            rule: deciding.map(|h| h.rule),
            reason,
            matched,
            shadow,
            errors,
            approval,
            policy_version: &self.version,
        }
    }
}

impl PolicySet {
    /// The approval a `require_approval` decision asks for. When several
    /// matching rules require approval, the strictest requirement wins: the
    /// highest quorum, then the group name in alphabetical order. Rule order
    /// therefore never changes what is asked, and a lenient rule written
    /// first cannot weaken a stricter one. A rule that requires approval
    /// through `on_error` asks what it would have asked had it matched (its
    /// own group, else the action's).
    fn approval_requirement<'p>(
        &'p self,
        action: &'p Action,
        matched: &[RuleHit<'p>],
    ) -> Option<ApprovalRequirement<'p>> {
        let strictest = matched
            .iter()
            .filter(|h| h.decision == Verdict::RequireApproval)
            .filter_map(|h| {
                let group = self.rule_group(action, h.rule)?;
                Some(ApprovalRequirement {
                    group,
                    quorum: h.rule.quorum.unwrap_or(group.quorum),
                    timeout: group.timeout,
                    rule: Some(h.rule),
                })
            })
            .min_by(|a, b| {
                b.quorum
                    .cmp(&a.quorum)
                    .then(a.group.name.cmp(&b.group.name))
            });
        // No rule matched: the action's default decided.
        strictest.or_else(|| {
            self.action_group(action).map(|group| ApprovalRequirement {
                group,
                quorum: group.quorum,
                timeout: group.timeout,
                rule: None,
            })
        })
    }
}

/// An owned, serializable form of a [`Decision`]: what `countersign eval`
/// prints and what the gate stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionReport {
    /// allow, require_approval or block.
    pub decision: Verdict,
    /// The action name.
    pub action: String,
    /// Whether a policy declares the action.
    pub declared: bool,
    /// The action's risk (`None` if undeclared).
    pub risk: Option<String>,
    /// The deciding rule.
    pub rule: Option<String>,
    /// Why.
    pub reason: String,
    /// Matching enforced rules.
    pub matched: Vec<HitReport>,
    /// Matching shadow rules.
    pub shadow: Vec<HitReport>,
    /// Conditions that failed to evaluate.
    pub errors: Vec<ErrorReport>,
    /// The approver group, for `require_approval`.
    pub approvers: Option<String>,
    /// The rule that set the approval requirement.
    pub approval_rule: Option<String>,
    /// The group's members, for `require_approval`.
    pub approver_members: Vec<Member>,
    /// Distinct approvals needed.
    pub quorum: Option<u32>,
    /// Timeout as written in policies (`24h`).
    pub timeout: Option<String>,
    /// Timeout in seconds.
    pub timeout_seconds: Option<u64>,
    /// Group to escalate to, and after how long.
    pub escalation: Option<EscalationReport>,
    /// Policy version.
    pub policy_version: String,
}

/// A matching rule in a [`DecisionReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HitReport {
    /// Rule name.
    pub rule: String,
    /// Its decision (or `on_error` if it failed).
    pub decision: Verdict,
    /// Whether it matched because its condition failed.
    pub errored: bool,
}

/// A failed condition in a [`DecisionReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorReport {
    /// Rule name.
    pub rule: String,
    /// Whether the rule is a shadow rule.
    pub shadow: bool,
    /// Why it failed.
    pub message: String,
}

/// Escalation settings in a [`DecisionReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EscalationReport {
    /// The group asked next.
    pub to: String,
    /// After how long, as written in policies.
    pub after: String,
    /// After how long, in seconds.
    pub after_seconds: u64,
}

impl Decision<'_> {
    /// The owned, serializable form, for a request for `action`.
    pub fn to_report(&self, action: &str) -> DecisionReport {
        let hit = |h: &RuleHit<'_>| HitReport {
            rule: h.rule.name.clone(),
            decision: h.decision,
            errored: h.errored,
        };
        let group = self.approval.map(|a| a.group);
        DecisionReport {
            decision: self.verdict,
            action: action.to_owned(),
            declared: self.action.is_some(),
            risk: self.action.map(|a| a.risk.as_str().to_owned()),
            rule: self.rule.map(|r| r.name.clone()),
            reason: self.reason.to_string(),
            matched: self.matched.iter().map(hit).collect(),
            shadow: self.shadow.iter().map(hit).collect(),
            errors: self
                .errors
                .iter()
                .map(|e| ErrorReport {
                    rule: e.rule.name.clone(),
                    shadow: e.rule.mode == Mode::Shadow,
                    message: e.message.clone(),
                })
                .collect(),
            approvers: group.map(|g| g.name.clone()),
            approval_rule: self.approval.and_then(|a| a.rule).map(|r| r.name.clone()),
            approver_members: group.map(|g| g.members.clone()).unwrap_or_default(),
            quorum: self.approval.map(|a| a.quorum),
            timeout: self.approval.map(|a| format_duration(a.timeout)),
            timeout_seconds: self.approval.map(|a| a.timeout.as_secs()),
            escalation: group.and_then(|g| {
                Some(EscalationReport {
                    to: g.escalate_to.clone()?,
                    after: format_duration(g.escalate_after?),
                    after_seconds: g.escalate_after?.as_secs(),
                })
            }),
            policy_version: self.policy_version.to_owned(),
        }
    }
}
