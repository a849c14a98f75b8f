//! The policies in force: groups, rules and actions, as the engine sees them.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::common::respond;
use crate::state::AppState;
use crate::ui::render::page;
use crate::ui::session::{self};
use crate::ui::view::{Chrome, Tab};

/// A group as shown.
pub struct GroupView {
    /// Name.
    pub name: String,
    /// Members: "id (name, email)".
    pub members: Vec<String>,
    /// Quorum.
    pub quorum: u32,
    /// Timeout.
    pub timeout: String,
    /// Escalation.
    pub escalation: Option<String>,
}

/// A rule as shown.
pub struct RuleView {
    /// Name.
    pub name: String,
    /// allow / require_approval / block.
    pub decision: String,
    /// Its tone.
    pub tone: &'static str,
    /// enforce / shadow.
    pub shadow: bool,
    /// Condition source.
    pub condition: String,
    /// Reason.
    pub reason: String,
    /// Approvers (group, quorum) when it requires approval.
    pub approvers: Option<String>,
    /// file:line:col.
    pub origin: String,
}

/// An action as shown.
pub struct ActionView {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The `summary:` template, as written.
    pub summary: Option<String>,
    /// Risk.
    pub risk: String,
    /// Approver group.
    pub approvers: String,
    /// Default decision.
    pub default: String,
    /// Rules in order.
    pub rules: Vec<RuleView>,
}

#[derive(Template)]
#[template(path = "ui/policies.html")]
struct PoliciesPage {
    chrome: Chrome,
    version: String,
    files: Vec<String>,
    reload_error: Option<Vec<String>>,
    groups: Vec<GroupView>,
    actions: Vec<ActionView>,
}

fn verdict_tone(v: &str) -> &'static str {
    match v {
        "allow" => "good",
        "require_approval" => "wait",
        _ => "bad",
    }
}

/// `GET /ui/w/{ws}/policies`
pub async fn policies(
    State(state): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
) -> Response {
    use countersign_engine::{Condition, Mode, format_duration};
    respond(
        async {
            let (s, workspace) = session::require_in(&state, &headers, &ws).await?;
            let set = workspace.policies();
            let dir = workspace.policy_dir().to_path_buf();
            let rel = |p: &std::path::Path| p.strip_prefix(&dir).unwrap_or(p).display().to_string();
            let groups = set
                .groups()
                .iter()
                .map(|g| GroupView {
                    name: g.name.clone(),
                    members: g
                        .members
                        .iter()
                        .map(|m| {
                            let extra: Vec<&str> = [m.name.as_deref(), m.email.as_deref()]
                                .into_iter()
                                .flatten()
                                .collect();
                            if extra.is_empty() {
                                m.id.clone()
                            } else {
                                format!("{} ({})", m.id, extra.join(", "))
                            }
                        })
                        .collect(),
                    quorum: g.quorum,
                    timeout: format_duration(g.timeout),
                    escalation: g.escalate_to.as_ref().map(|to| {
                        format!(
                            "escalates to {to} after {}",
                            g.escalate_after.map(format_duration).unwrap_or_default()
                        )
                    }),
                })
                .collect();
            let actions = set
                .actions()
                .iter()
                .map(|a| ActionView {
                    name: a.name.clone(),
                    description: a.description.clone().unwrap_or_default(),
                    summary: a.summary.as_ref().map(|t| t.source().to_owned()),
                    risk: a.risk.as_str().to_owned(),
                    approvers: set
                        .action_group(a)
                        .map(|g| g.name.clone())
                        .unwrap_or_else(|| "—".into()),
                    default: a.default.as_str().to_owned(),
                    rules: a
                        .rules
                        .iter()
                        .map(|r| RuleView {
                            name: r.name.clone(),
                            decision: r.decision.as_str().to_owned(),
                            tone: verdict_tone(r.decision.as_str()),
                            shadow: r.mode == Mode::Shadow,
                            condition: match &r.condition {
                                Condition::Always => "always".to_owned(),
                                Condition::Expr(e) => e.source().to_owned(),
                                Condition::Cel(c) => format!("CEL: {}", c.source()),
                            },
                            reason: r.reason.clone(),
                            approvers: (r.decision.as_str() == "require_approval").then(|| {
                                let g = set.rule_group(a, r);
                                format!(
                                    "{} (quorum {})",
                                    g.map_or("—", |g| g.name.as_str()),
                                    r.quorum.or(g.map(|g| g.quorum)).unwrap_or(1)
                                )
                            }),
                            origin: format!(
                                "{}:{}:{}",
                                rel(&r.origin.file),
                                r.origin.line,
                                r.origin.column
                            ),
                        })
                        .collect(),
                })
                .collect();
            let p = PoliciesPage {
                chrome: s.chrome(&state, "Policies", Some(&ws), Tab::Policies),
                version: set.version().to_owned(),
                files: set.files().iter().map(|f| rel(f)).collect(),
                reload_error: workspace.last_error(),
                groups,
                actions,
            };
            Ok(page(StatusCode::OK, &p))
        }
        .await,
    )
}
