//! The CEL peer: the finance rules written as CEL, one program per rule,
//! compiled once with the `cel` crate (the version the engine pins).
//!
//! Deciding is the straightforward loop a team would write around a CEL
//! library: look the action up, execute each of its rule programs against a
//! context holding the request, and keep the strongest verdict (a program
//! that fails counts as the action's `on_error` verdict; no match gives the
//! action's default). Like Countersign, it evaluates every rule of the action
//! rather than stopping at the first `block`, and it reports only the
//! verdict, with no reasons.
//!
//! CEL has no `lower()`/`trim()` in its standard library; the `strings`
//! extension's `lowerAscii()`, `upperAscii()` and `trim()` stand in, which is
//! the same on this data. `has()` on a missing parent is an error in CEL
//! and `false` in Countersign, so the translations test each parent.
//! Payload numbers reach CEL as `int` when whole and `double` otherwise, as
//! the engine's own `when_cel:` bridge does; a sum of an `int` and a
//! `double` has no overload in CEL, so sums convert with `double()` first.

use std::collections::HashMap;
use std::sync::Arc;

use cel::{Context, Env, Program};
use countersign_engine::testing::TestCase;
use countersign_engine::{Value, Verdict, to_cel};

use crate::finance;

use Verdict::{Allow as A, Block as B, RequireApproval as R};

/// `(action, rule, verdict, CEL condition)` for every enforced finance rule,
/// in file order. The shadow rule `proposed-threshold-250` is left out: it
/// never changes a verdict (Countersign still evaluates it, so this peer
/// does slightly less work).
pub const RULES: &[(&str, &str, Verdict, &str)] = &[
    // access.yaml
    (
        "grant_access",
        "self-grant",
        B,
        "payload.user.lowerAscii() == actor.lowerAscii()",
    ),
    (
        "grant_access",
        "untrusted-channel",
        B,
        r#"type(source) == map && has(source.channel) && source.channel in ["email", "public-chat"]"#,
    ),
    (
        "grant_access",
        "external-account",
        B,
        r#"!payload.user_email.lowerAscii().endsWith("@example.com")"#,
    ),
    (
        "grant_access",
        "missing-justification",
        B,
        "!has(payload.justification) || payload.justification.trim().size() < 15",
    ),
    (
        "grant_access",
        "privileged-role",
        R,
        r#"payload.role in ["admin", "owner", "billing_admin", "payments_approver", "security_admin"]"#,
    ),
    (
        "grant_access",
        "no-expiry",
        R,
        "!has(payload.expires_in_days) || payload.expires_in_days > 90",
    ),
    (
        "grant_access",
        "temporary-read-only",
        A,
        r#"payload.role in ["viewer", "read_only"] && has(payload.expires_in_days) && payload.expires_in_days <= 30"#,
    ),
    (
        "change_bank_details",
        "not-verified-by-callback",
        B,
        r#"payload.verification.method != "callback""#,
    ),
    (
        "change_bank_details",
        "self-verified",
        B,
        "payload.verification.verified_by == actor",
    ),
    (
        "change_bank_details",
        "malformed-iban",
        B,
        r#"!payload.new_iban.matches("^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")"#,
    ),
    (
        "change_bank_details",
        "foreign-account",
        R,
        "!payload.new_iban.startsWith(payload.vendor.country.upperAscii())",
    ),
    ("change_bank_details", "cfo-sign-off", R, "true"),
    // invoices.yaml
    (
        "send_invoice_reminder",
        "too-many-reminders",
        B,
        "payload.reminders_sent >= 3",
    ),
    (
        "send_invoice_reminder",
        "outside-customer-business-hours",
        B,
        "now.getHours(payload.customer.timezone) < 8 || now.getHours(payload.customer.timezone) >= 18 \
         || now.getDayOfWeek(payload.customer.timezone) in [0, 6]",
    ),
    (
        "send_invoice_reminder",
        "disputed-invoice",
        B,
        r#"has(payload.invoice) && has(payload.invoice.status) && payload.invoice.status.lowerAscii() in ["disputed", "in_collections"]"#,
    ),
    (
        "send_invoice_reminder",
        "very-large-amount",
        R,
        "payload.amount > 10000",
    ),
    (
        "send_invoice_reminder",
        "large-amount",
        R,
        "payload.amount > 500",
    ),
    (
        "send_invoice_reminder",
        "strategic-customer",
        R,
        r#"has(payload.customer) && has(payload.customer.tier) && payload.customer.tier == "strategic""#,
    ),
    (
        "mark_invoice_paid",
        "missing-payment-reference",
        B,
        r#"!has(payload.payment_reference) || payload.payment_reference.trim() == """#,
    ),
    (
        "mark_invoice_paid",
        "short-payment",
        B,
        "payload.amount_received < payload.amount_due",
    ),
    (
        "mark_invoice_paid",
        "large-payment",
        R,
        "payload.amount_due >= 50000",
    ),
    ("mark_invoice_paid", "two-controllers", R, "true"),
    // refunds.yaml
    (
        "issue_refund",
        "non-positive-amount",
        B,
        "payload.amount <= 0",
    ),
    (
        "issue_refund",
        "exceeds-original-charge",
        B,
        "payload.amount > payload.original_charge.amount",
    ),
    (
        "issue_refund",
        "exceeds-remaining-balance",
        B,
        "has(payload.original_charge) && has(payload.original_charge.refunded) \
         && double(payload.amount) + double(payload.original_charge.refunded) > double(payload.original_charge.amount)",
    ),
    (
        "issue_refund",
        "currency-mismatch",
        B,
        "payload.currency.upperAscii() != payload.original_charge.currency.upperAscii()",
    ),
    // Already CEL in refunds.yaml (`when_cel:`): copied as written.
    (
        "issue_refund",
        "disputed-charge",
        B,
        r#"has(payload.original_charge.flags) && ("chargeback_open" in payload.original_charge.flags || "fraud_review" in payload.original_charge.flags)"#,
    ),
    ("issue_refund", "large-refund", R, "payload.amount > 1000"),
    ("issue_refund", "medium-refund", R, "payload.amount > 50"),
    ("issue_refund", "small-refund", A, "payload.amount <= 50"),
    // exports.yaml
    (
        "export_customer_data",
        "unapproved-destination",
        B,
        r#"!(payload.destination.host.lowerAscii().endsWith(".corp.example.com") || payload.destination.host.lowerAscii().matches("^exports-[a-z0-9-]+\\.s3\\.eu-central-1\\.amazonaws\\.com$"))"#,
    ),
    (
        "export_customer_data",
        "restricted-dataset",
        B,
        r#"has(payload.dataset) && has(payload.dataset.labels) && "data-classification" in payload.dataset.labels && payload.dataset.labels["data-classification"] == "restricted""#,
    ),
    (
        "export_customer_data",
        "bulk-export-after-hours",
        B,
        r#"payload.row_count > 10000 && (now.getHours("Europe/Berlin") < 8 || now.getHours("Europe/Berlin") >= 19 || now.getDayOfWeek("Europe/Berlin") in [0, 6])"#,
    ),
    (
        "export_customer_data",
        "personal-data",
        R,
        r#""email" in payload.fields || "phone" in payload.fields || "full_name" in payload.fields || "postal_address" in payload.fields || "date_of_birth" in payload.fields || "iban" in payload.fields || "tax_id" in payload.fields"#,
    ),
    (
        "export_customer_data",
        "bulk-export",
        R,
        "payload.row_count > 10000",
    ),
    (
        "export_customer_data",
        "routine-export",
        A,
        "payload.row_count <= 10000",
    ),
];

struct CelAction {
    default: Verdict,
    on_error: Verdict,
    rules: Vec<(Verdict, Program)>,
}

/// The finance rules compiled as CEL programs, grouped by action.
pub struct CelFinance {
    env: Arc<Env>,
    actions: HashMap<&'static str, CelAction>,
}

impl Default for CelFinance {
    fn default() -> Self {
        Self::new()
    }
}

impl CelFinance {
    /// Compiles every rule once.
    pub fn new() -> Self {
        let mut env = Env::stdlib();
        if let Err(e) = env.add_extension(cel::extensions::strings) {
            panic!("the CEL strings extension does not register: {e:?}");
        }
        let env = Arc::new(env);
        let mut actions: HashMap<&'static str, CelAction> = finance::ACTIONS
            .iter()
            .map(|&(name, default, on_error)| {
                (
                    name,
                    CelAction {
                        default,
                        on_error,
                        rules: Vec::new(),
                    },
                )
            })
            .collect();
        for &(action, rule, verdict, src) in RULES {
            let program = env
                .compile(src)
                .unwrap_or_else(|e| panic!("CEL rule {action}/{rule} does not compile: {e:?}"));
            match actions.get_mut(action) {
                Some(a) => a.rules.push((verdict, program)),
                None => panic!("CEL rule {rule} names the undeclared action {action}"),
            }
        }
        CelFinance { env, actions }
    }

    /// A context holding one request's variables (built outside the timed
    /// loop, as Countersign's payload is parsed outside it).
    pub fn input(&self, case: &TestCase) -> Context<'static, 'static> {
        self.input_parts(&case.actor, &case.payload, &case.source, &case.now)
    }

    /// A context from the request's parts.
    pub fn input_parts(
        &self,
        actor: &Value,
        payload: &Value,
        source: &Value,
        now: &Value,
    ) -> Context<'static, 'static> {
        let mut ctx = Context::with_env(Arc::clone(&self.env));
        ctx.add_variable_from_value("actor", to_cel(actor));
        ctx.add_variable_from_value("payload", to_cel(payload));
        ctx.add_variable_from_value("source", to_cel(source));
        ctx.add_variable_from_value("now", to_cel(now));
        ctx
    }

    /// The strongest verdict among the action's matching rules.
    pub fn decide(&self, action: &str, ctx: &Context<'_, '_>) -> Verdict {
        let Some(a) = self.actions.get(action) else {
            return Verdict::Block;
        };
        let mut best: Option<Verdict> = None;
        for (verdict, program) in &a.rules {
            let hit = match program.execute(ctx) {
                Ok(cel::Value::Bool(true)) => Some(*verdict),
                Ok(cel::Value::Bool(false)) => None,
                _ => Some(a.on_error),
            };
            best = best.max(hit);
        }
        best.unwrap_or(a.default)
    }
}
