//! The Cedar peer: the finance rules as Cedar policies
//! (`benches/policies/finance.cedar`), decided with `cedar-policy`'s
//! `Authorizer::is_authorized`.
//!
//! Mapping of the three verdicts onto Cedar's permit/forbid, in one
//! authorization call per request:
//!
//! - a `block` rule is a `forbid` policy; `require_approval` and `allow`
//!   rules are `permit` policies carrying `@decision(...)`;
//! - Cedar answers Deny with the satisfied `forbid`s as its reason when any
//!   forbid matches: that is `block`. It answers Allow with every satisfied
//!   `permit` as its reason otherwise: the verdict is `require_approval` if
//!   any of them is annotated so, else `allow`. No satisfied policy (Deny,
//!   empty reason) means the action's default;
//! - a policy that fails to evaluate is reported among Cedar's errors and
//!   skipped by Cedar; here it counts as the action's `on_error` verdict,
//!   so the combination is the same strongest-wins as Countersign's.
//!
//! The request: principal `Agent::"<actor>"`, action `Action::"<name>"`,
//! resource `Payload::"request"`, no entities, everything else in the
//! context (see the header of `finance.cedar` for its layout). Building the
//! request, including the derived attributes Cedar's language cannot
//! compute (lower/upper/trim, lengths, regular expressions, hours in a time
//! zone), happens outside the timed loop, like the parsing of Countersign's
//! payload. That favours Cedar: the string and time work those attributes
//! stand for is timed for Countersign, CEL and Rego but not for Cedar.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityUid, PolicyId, PolicySet, Request,
};
use chrono::{Datelike, Timelike};
use countersign_engine::testing::TestCase;
use countersign_engine::{Value, Verdict};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Map as JMap, Value as J, json};

use crate::finance;

/// The Cedar translation of the finance policies.
pub const POLICIES: &str = include_str!("../policies/finance.cedar");

/// Payload fields holding money, sent to Cedar as Longs in ten-thousandths.
const MONEY: &[&[&str]] = &[
    &["amount"],
    &["amount_due"],
    &["amount_received"],
    &["original_charge", "amount"],
    &["original_charge", "refunded"],
];

/// Scale of the fixed-point money fields.
pub const MONEY_SCALE: i64 = 10_000;

/// A request prepared for Cedar.
pub struct CedarInput {
    /// The action name, for the default and on_error look-up.
    pub action: String,
    /// The Cedar request (principal, action, resource, context).
    pub request: Request,
}

/// The finance policies loaded into Cedar.
pub struct CedarFinance {
    policies: PolicySet,
    entities: Entities,
    authorizer: Authorizer,
    /// The verdict of each `permit` policy (from its @decision annotation).
    permits: HashMap<PolicyId, Verdict>,
    actions: HashMap<&'static str, (Verdict, Verdict)>,
}

impl Default for CedarFinance {
    fn default() -> Self {
        Self::new()
    }
}

impl CedarFinance {
    /// Parses the policies and reads their annotations.
    pub fn new() -> Self {
        let policies = PolicySet::from_str(POLICIES)
            .unwrap_or_else(|e| panic!("finance.cedar does not parse: {e:?}"));
        let permits = verdict_annotations(&policies);
        CedarFinance {
            policies,
            entities: Entities::empty(),
            authorizer: Authorizer::new(),
            permits,
            actions: finance::ACTIONS
                .iter()
                .map(|&(n, d, e)| (n, (d, e)))
                .collect(),
        }
    }

    /// Builds the Cedar request for a finance test case.
    pub fn input(&self, case: &TestCase) -> CedarInput {
        let ctx = context_json(case);
        CedarInput {
            action: case.action.clone(),
            request: request(&case.action, &case.actor, ctx),
        }
    }

    /// Like [`CedarFinance::input`], but from the request's JSON text, as
    /// an end-to-end path would receive it.
    pub fn input_from_json(
        &self,
        action: &str,
        actor: &Value,
        payload_json: &str,
        source: &Value,
        now: &Value,
    ) -> CedarInput {
        let payload = countersign_engine::parse_json(payload_json.as_bytes())
            .unwrap_or_else(|e| panic!("bad payload JSON: {e}"));
        let ctx = context_json_parts(action, actor, &payload, source, now);
        CedarInput {
            action: action.to_owned(),
            request: request(action, actor, ctx),
        }
    }

    /// Decides one prepared request.
    pub fn decide(&self, input: &CedarInput) -> Verdict {
        let Some(&(default, on_error)) = self.actions.get(input.action.as_str()) else {
            return Verdict::Block;
        };
        let response =
            self.authorizer
                .is_authorized(&input.request, &self.policies, &self.entities);
        combine(&response, &self.permits, default, on_error)
    }
}

/// Reads `@decision` from every policy: `forbid`s must say block, and the
/// map returned gives each `permit`'s verdict.
pub fn verdict_annotations(policies: &PolicySet) -> HashMap<PolicyId, Verdict> {
    let mut permits = HashMap::new();
    for p in policies.policies() {
        let verdict = p
            .annotation("decision")
            .and_then(Verdict::parse)
            .unwrap_or_else(|| panic!("Cedar policy {} has no valid @decision", p.id()));
        match p.effect() {
            cedar_policy::Effect::Forbid => {
                assert_eq!(
                    verdict,
                    Verdict::Block,
                    "forbid policy {} must be a block rule",
                    p.id()
                )
            }
            cedar_policy::Effect::Permit => {
                assert_ne!(
                    verdict,
                    Verdict::Block,
                    "permit policy {} cannot be a block rule",
                    p.id()
                );
                permits.insert(p.id().clone(), verdict);
            }
        }
    }
    permits
}

/// Strongest-wins over Cedar's answer; see the module documentation.
pub fn combine(
    response: &cedar_policy::Response,
    permits: &HashMap<PolicyId, Verdict>,
    default: Verdict,
    on_error: Verdict,
) -> Verdict {
    let diagnostics = response.diagnostics();
    let mut best = diagnostics.errors().next().map(|_| on_error);
    match response.decision() {
        Decision::Deny => {
            if diagnostics.reason().next().is_some() {
                best = best.max(Some(Verdict::Block));
            }
        }
        Decision::Allow => {
            for id in diagnostics.reason() {
                best = best.max(permits.get(id).copied());
            }
        }
    }
    best.unwrap_or(default)
}

/// A Cedar request for `action` with the given context.
pub fn request(action: &str, actor: &Value, ctx: J) -> Request {
    let principal = match actor {
        Value::String(s) => entity("Agent", s),
        _ => entity("Agent", "unknown"),
    };
    let context = Context::from_json_value(ctx, None)
        .unwrap_or_else(|e| panic!("context for {action} is not valid Cedar: {e:?}"));
    Request::new(
        principal,
        entity("Action", action),
        entity("Payload", "request"),
        context,
        None,
    )
    .unwrap_or_else(|e| panic!("request for {action} is not valid Cedar: {e:?}"))
}

fn entity(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        cedar_policy::EntityTypeName::from_str(ty)
            .unwrap_or_else(|e| panic!("bad entity type {ty}: {e:?}")),
        cedar_policy::EntityId::new(id),
    )
}

fn context_json(case: &TestCase) -> J {
    context_json_parts(
        &case.action,
        &case.actor,
        &case.payload,
        &case.source,
        &case.now,
    )
}

fn context_json_parts(
    action: &str,
    actor: &Value,
    payload: &Value,
    source: &Value,
    now: &Value,
) -> J {
    let mut ctx = JMap::new();
    ctx.insert(
        "actor".into(),
        match actor {
            Value::String(s) => J::String(s.clone()),
            // Cedar has no null: an empty record equals no string.
            _ => json!({}),
        },
    );
    ctx.insert(
        "payload".into(),
        to_cedar_json(payload, &mut Vec::new()).unwrap_or_else(|| json!({})),
    );
    if let Value::Object(_) = source
        && let Some(s) = to_cedar_json(source, &mut vec!["<source>"])
    {
        ctx.insert("source".into(), s);
    }
    ctx.insert(
        "derived".into(),
        J::Object(derived(action, actor, payload, now)),
    );
    J::Object(ctx)
}

/// Our value as Cedar context JSON; `None` for null (Cedar has none, so a
/// null field is left out). `path` tracks where we are in the payload, to
/// find the money fields.
fn to_cedar_json<'a>(v: &'a Value, path: &mut Vec<&'a str>) -> Option<J> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => J::Bool(*b),
        Value::Number(n) => {
            let is_money = MONEY.contains(&path.as_slice());
            let scaled = if is_money {
                *n * Decimal::from(MONEY_SCALE)
            } else {
                *n
            };
            match (scaled.fract().is_zero(), scaled.to_i64()) {
                (true, Some(i)) => J::from(i),
                _ => panic!("the Cedar model has no representation for the number {n} at {path:?}"),
            }
        }
        Value::String(s) => J::String(s.clone()),
        Value::List(items) => J::Array(
            items
                .iter()
                .filter_map(|i| to_cedar_json(i, &mut vec!["<item>"]))
                .collect(),
        ),
        Value::Object(m) => {
            let mut out = JMap::new();
            for (k, v) in m.iter() {
                path.push(k);
                if let Some(j) = to_cedar_json(v, path) {
                    out.insert(k.to_owned(), j);
                }
                path.pop();
            }
            J::Object(out)
        }
        Value::Timestamp(t) => J::String(t.to_rfc3339()),
    })
}

fn field<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.as_object()?.get(k))
}

fn string_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    field(v, path)?.as_str()
}

static IBAN: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new("^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$").unwrap_or_else(|e| panic!("{e}"))
});
static EU_BUCKET: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^exports-[a-z0-9-]+\.s3\.eu-central-1\.amazonaws\.com$")
        .unwrap_or_else(|e| panic!("{e}"))
});

/// Hour (0-23) and ISO weekday (1 = Monday) of `now` in `zone`, when `now`
/// is a timestamp and `zone` a known IANA zone.
fn local_clock(now: &Value, zone: Option<&str>) -> Option<(u32, u32)> {
    let Value::Timestamp(t) = now else {
        return None;
    };
    let tz: chrono_tz::Tz = zone?.parse().ok()?;
    let local = t.with_timezone(&tz);
    Some((local.hour(), local.weekday().number_from_monday()))
}

/// The attributes Cedar cannot compute, present only where Countersign's
/// expression would evaluate (see `finance.cedar`).
fn derived(action: &str, actor: &Value, payload: &Value, now: &Value) -> JMap<String, J> {
    let mut d = JMap::new();
    let mut put = |k: &str, v: Option<J>| {
        if let Some(v) = v {
            d.insert(k.to_owned(), v);
        }
    };
    let lower = |path: &[&str]| string_at(payload, path).map(|s| J::String(s.to_lowercase()));
    let upper = |path: &[&str]| string_at(payload, path).map(|s| J::String(s.to_uppercase()));
    match action {
        "grant_access" => {
            put("user_lower", lower(&["user"]));
            put(
                "actor_lower",
                actor.as_str().map(|s| J::String(s.to_lowercase())),
            );
            put("user_email_lower", lower(&["user_email"]));
            put(
                "justification_trimmed_chars",
                string_at(payload, &["justification"]).map(|s| J::from(s.trim().chars().count())),
            );
        }
        "change_bank_details" => {
            let iban = string_at(payload, &["new_iban"]);
            put("iban_well_formed", iban.map(|s| J::Bool(IBAN.is_match(s))));
            let country = string_at(payload, &["vendor", "country"]);
            put(
                "iban_starts_with_vendor_country",
                iban.zip(country)
                    .map(|(i, c)| J::Bool(i.starts_with(&c.to_uppercase()))),
            );
        }
        "send_invoice_reminder" => {
            if let Some((h, wd)) = local_clock(now, string_at(payload, &["customer", "timezone"])) {
                put("customer_hour", Some(J::from(h)));
                put("customer_weekday", Some(J::from(wd)));
            }
            put("invoice_status_lower", lower(&["invoice", "status"]));
        }
        "mark_invoice_paid" => {
            put(
                "payment_reference_trimmed",
                string_at(payload, &["payment_reference"]).map(|s| J::String(s.trim().to_owned())),
            );
        }
        "issue_refund" => {
            put("currency_upper", upper(&["currency"]));
            put(
                "original_currency_upper",
                upper(&["original_charge", "currency"]),
            );
        }
        "export_customer_data" => {
            let host = string_at(payload, &["destination", "host"]).map(str::to_lowercase);
            put(
                "host_is_eu_export_bucket",
                host.as_deref().map(|h| J::Bool(EU_BUCKET.is_match(h))),
            );
            put("host_lower", host.map(J::String));
            if let Some((h, wd)) = local_clock(now, Some("Europe/Berlin")) {
                put("berlin_hour", Some(J::from(h)));
                put("berlin_weekday", Some(J::from(wd)));
            }
        }
        _ => {}
    }
    d
}
