//! Shared code for Countersign's side-by-side benchmarks.
//!
//! Each peer engine (CEL, Cedar, Rego) gets a hand-written translation of the
//! finance example policies (`policies/finance/`) that reaches the same
//! decision as Countersign for every finance test case; [`finance`] loads the
//! cases and [`check_finance_equivalence`] proves the translations agree
//! before anything is timed. [`scale`] generates large synthetic policy sets
//! for Countersign and Cedar.
//!
//! A decision is reduced to its verdict (`allow` < `require_approval` <
//! `block`) for the comparison: the peers have no notion of approver groups
//! or quorums, and computing those is a table lookup once the winning rule is
//! known.

pub mod cedar_peer;
pub mod cel_peer;
pub mod clock;
pub mod finance;
pub mod rego_peer;
pub mod scale;

pub use countersign_engine::Verdict;

/// A verdict's strength as a small integer: allow 1, require_approval 2,
/// block 3 (the encoding the Rego translation computes with).
pub fn strength(v: Verdict) -> u8 {
    match v {
        Verdict::Allow => 1,
        Verdict::RequireApproval => 2,
        Verdict::Block => 3,
    }
}

/// The verdict with strength `s` (see [`strength`]).
pub fn from_strength(s: i64) -> Option<Verdict> {
    match s {
        1 => Some(Verdict::Allow),
        2 => Some(Verdict::RequireApproval),
        3 => Some(Verdict::Block),
        _ => None,
    }
}

/// Decides every finance case with every peer and returns one line per
/// disagreement with Countersign (empty when all agree).
pub fn check_finance_equivalence() -> Vec<String> {
    let fin = finance::Finance::load();
    let cel = cel_peer::CelFinance::new();
    let cedar = cedar_peer::CedarFinance::new();
    let mut rego = rego_peer::RegoFinance::new();
    let mut problems = Vec::new();
    for case in &fin.cases {
        let ours = fin.set.decide(&case.test.request()).verdict;
        if ours != case.expected {
            problems.push(format!(
                "{}: countersign {ours:?} but the test expects {:?}",
                case.test.name, case.expected
            ));
        }
        let cel_input = cel.input(&case.test);
        let peers = [
            ("cel", cel.decide(&case.test.action, &cel_input)),
            ("cedar", cedar.decide(&cedar.input(&case.test))),
            (
                "regorus",
                rego.decide(&rego_peer::RegoFinance::input(&case.test)),
            ),
        ];
        for (name, verdict) in peers {
            if verdict != ours {
                problems.push(format!(
                    "{}: countersign {ours:?} but {name} {verdict:?}",
                    case.test.name
                ));
            }
        }
    }
    problems
}
