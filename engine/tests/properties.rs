//! Property tests of deciding: random policy sets (a few actions, random
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic in a test is a failing test"
)]
//! rules with simple conditions over payload fields, random decisions, shadow
//! rules, defaults, on_error, some CEL) against random payloads.
//!
//! 1. Deciding is deterministic: the same inputs give the identical report,
//!    also from a second load of the same files.
//! 2. Shuffling the rules within each action changes neither the decision
//!    nor the sets of matched, shadow and failed rules, nor the approval
//!    requirement.
//! 3. Splitting the actions and groups over several files, in any order,
//!    under any names and in other YAML styles, changes neither the reports
//!    nor the policy version.
//! 4. A payload read from JSON text whose object keys come in another order
//!    gives the identical report.
//! 5. The report agrees with an independent model of the semantics
//!    (strongest wins, first winning rule reported, on_error, shadow,
//!    defaults, approval requirements).
//!
//! 6. CEL macros over objects decide the same request the same way every
//!    time.
//! 7. Rule order does not change the approval requirement even when rules
//!    carry their own `approvers:` / `quorum:` (the strictest wins).

use std::fmt::Write as _;

use countersign_engine::{DecisionReport, Map, PolicySet, Request, Value, parse_json};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};
use rust_decimal::Decimal;

// ---------------------------------------------------------------------------
// The generated model

/// An approver group; the three groups always exist, with random settings.
#[derive(Debug, Clone)]
struct Group {
    name: &'static str,
    members: &'static [&'static str],
    quorum: Option<u32>,
    timeout: Option<(&'static str, u64)>,
}

const GROUP_NAMES: [&str; 3] = ["leads", "finance", "security"];
const GROUP_MEMBERS: [&[&str]; 3] = [&["alice", "bob", "carol"], &["dave", "erin"], &["frank"]];
const TIMEOUTS: [(&str, u64); 4] = [
    ("30m", 1_800),
    ("4h", 14_400),
    ("24h", 86_400),
    ("2d", 172_800),
];
const RISKS: [&str; 4] = ["low", "medium", "high", "critical"];
const DECISIONS: [&str; 3] = ["allow", "require_approval", "block"];
const ACTION_NAMES: [&str; 4] = ["a0", "a1", "a2", "a3"];

/// A number literal: its text and its exact value.
#[derive(Debug, Clone, Copy)]
struct Num {
    text: &'static str,
    mantissa: i64,
    scale: u32,
}

impl Num {
    fn value(self) -> Decimal {
        Decimal::new(self.mantissa, self.scale)
    }
}

const NUMS: [Num; 7] = [
    Num {
        text: "0",
        mantissa: 0,
        scale: 0,
    },
    Num {
        text: "10",
        mantissa: 10,
        scale: 0,
    },
    Num {
        text: "99.99",
        mantissa: 9_999,
        scale: 2,
    },
    Num {
        text: "100",
        mantissa: 100,
        scale: 0,
    },
    Num {
        text: "1000",
        mantissa: 1_000,
        scale: 0,
    },
    Num {
        text: "1250.10",
        mantissa: 125_010,
        scale: 2,
    },
    Num {
        text: "5000",
        mantissa: 5_000,
        scale: 0,
    },
];

/// A condition of our expression language, small enough to model exactly.
#[derive(Debug, Clone)]
enum Cond {
    AmountGt(Num),
    AmountLe(Num),
    TagEq(&'static str),
    TagIn,
    Has(&'static str),
    Flag,
    Ratio,
    LowerTagIsX,
    Region,
    ActionIs(&'static str),
    RiskIs(&'static str),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    fn text(&self) -> String {
        match self {
            Cond::AmountGt(n) => format!("payload.amount > {}", n.text),
            Cond::AmountLe(n) => format!("payload.amount <= {}", n.text),
            Cond::TagEq(t) => format!("payload.tag == \"{t}\""),
            Cond::TagIn => "payload.tag in [\"x\", \"y\"]".to_owned(),
            Cond::Has(k) => format!("has(payload.{k})"),
            Cond::Flag => "payload.flag".to_owned(),
            Cond::Ratio => "payload.n / payload.d >= 2".to_owned(),
            Cond::LowerTagIsX => "lower(payload.tag) == \"x\"".to_owned(),
            Cond::Region => "payload.nested.region == \"eu\"".to_owned(),
            Cond::ActionIs(a) => format!("action == \"{a}\""),
            Cond::RiskIs(r) => format!("risk == \"{r}\""),
            Cond::And(a, b) => format!("({}) and ({})", a.text(), b.text()),
            Cond::Or(a, b) => format!("({}) or ({})", a.text(), b.text()),
            Cond::Not(a) => format!("not ({})", a.text()),
        }
    }

    /// The model: `Err` when the engine cannot evaluate the condition.
    /// Evaluation is left to right with short circuits, as in the engine.
    fn eval(&self, p: &Map, action: &str, risk: &str) -> Result<bool, ()> {
        let num = |k: &str| match p.get(k) {
            Some(Value::Number(n)) => Ok(*n),
            _ => Err(()),
        };
        match self {
            Cond::AmountGt(n) => Ok(num("amount")? > n.value()),
            Cond::AmountLe(n) => Ok(num("amount")? <= n.value()),
            Cond::TagEq(t) => match p.get("tag") {
                Some(v) => Ok(v.as_str() == Some(*t)),
                None => Err(()),
            },
            Cond::TagIn => match p.get("tag") {
                Some(v) => Ok(matches!(v.as_str(), Some("x" | "y"))),
                None => Err(()),
            },
            Cond::Has(k) => Ok(p.get(k).is_some()),
            Cond::Flag => match p.get("flag") {
                Some(Value::Bool(b)) => Ok(*b),
                _ => Err(()),
            },
            Cond::Ratio => {
                let (n, d) = (num("n")?, num("d")?);
                if d.is_zero() {
                    return Err(());
                }
                // n / d >= 2 with d > 0, without the rounding of a quotient.
                Ok(n >= d * Decimal::TWO)
            }
            Cond::LowerTagIsX => match p.get("tag") {
                Some(Value::String(s)) => Ok(s.to_lowercase() == "x"),
                _ => Err(()),
            },
            Cond::Region => match p.get("nested") {
                Some(Value::Object(m)) => match m.get("region") {
                    Some(v) => Ok(v.as_str() == Some("eu")),
                    None => Err(()),
                },
                _ => Err(()),
            },
            Cond::ActionIs(a) => Ok(action == *a),
            Cond::RiskIs(r) => Ok(risk == *r),
            Cond::And(a, b) => Ok(a.eval(p, action, risk)? && b.eval(p, action, risk)?),
            Cond::Or(a, b) => Ok(a.eval(p, action, risk)? || b.eval(p, action, risk)?),
            Cond::Not(a) => Ok(!a.eval(p, action, risk)?),
        }
    }
}

/// A rule's condition.
#[derive(Debug, Clone)]
enum When {
    Always,
    Expr(Cond),
    Cel(String),
}

#[derive(Debug, Clone)]
struct RuleSpec {
    name: String,
    when: When,
    decision: &'static str,
    shadow: bool,
    quorum: Option<u32>,
    approvers: Option<usize>,
}

#[derive(Debug, Clone)]
struct ActionSpec {
    name: &'static str,
    risk: Option<&'static str>,
    approvers: Option<usize>,
    default: Option<&'static str>,
    on_error: Option<&'static str>,
    rules: Vec<RuleSpec>,
}

impl ActionSpec {
    fn risk(&self) -> &'static str {
        self.risk.unwrap_or("medium")
    }
}

#[derive(Debug, Clone)]
struct SetSpec {
    groups: Vec<Group>,
    actions: Vec<ActionSpec>,
}

// ---------------------------------------------------------------------------
// Strategies

fn cond() -> impl Strategy<Value = Cond> {
    let leaf = prop_oneof![
        (0..NUMS.len()).prop_map(|i| Cond::AmountGt(NUMS[i])),
        (0..NUMS.len()).prop_map(|i| Cond::AmountLe(NUMS[i])),
        prop_oneof![Just("x"), Just("y"), Just("z")].prop_map(Cond::TagEq),
        Just(Cond::TagIn),
        prop_oneof![Just("k"), Just("amount"), Just("tag"), Just("e1")].prop_map(Cond::Has),
        Just(Cond::Flag),
        Just(Cond::Ratio),
        Just(Cond::LowerTagIsX),
        Just(Cond::Region),
        (0..ACTION_NAMES.len()).prop_map(|i| Cond::ActionIs(ACTION_NAMES[i])),
        (0..RISKS.len()).prop_map(|i| Cond::RiskIs(RISKS[i])),
    ];
    leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Cond::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Cond::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Cond::Not(Box::new(a))),
        ]
    })
}

fn cel_cond() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..NUMS.len()).prop_map(|i| format!("payload.amount > {}", NUMS[i].text)),
        Just("payload.tag == \"x\"".to_owned()),
        Just("has(payload.k) && payload.flag == true".to_owned()),
        Just("payload.tag in [\"x\", \"y\"] || risk == \"high\"".to_owned()),
        Just("payload.flag".to_owned()),
    ]
}

fn when(cel: bool) -> BoxedStrategy<When> {
    if cel {
        prop_oneof![
            1 => Just(When::Always),
            6 => cond().prop_map(When::Expr),
            2 => cel_cond().prop_map(When::Cel),
        ]
        .boxed()
    } else {
        prop_oneof![1 => Just(When::Always), 6 => cond().prop_map(When::Expr)].boxed()
    }
}

fn opt_decision() -> impl Strategy<Value = Option<&'static str>> {
    proptest::option::of((0..DECISIONS.len()).prop_map(|i| DECISIONS[i]))
}

/// `Some` with probability `p` when `enabled`, else always `None`.
fn sometimes<S>(enabled: bool, p: f64, s: S) -> BoxedStrategy<Option<S::Value>>
where
    S: Strategy + 'static,
    S::Value: Clone,
{
    if enabled {
        proptest::option::weighted(p, s).boxed()
    } else {
        Just(None).boxed()
    }
}

/// Rules as generated; `fix` makes every set valid.
fn rule(cel: bool, overrides: bool) -> impl Strategy<Value = RuleSpec> {
    (
        when(cel),
        (0..DECISIONS.len()).prop_map(|i| DECISIONS[i]),
        proptest::bool::weighted(0.2),
        sometimes(overrides, 0.5, 1u32..=3),
        sometimes(overrides, 0.4, 0..GROUP_NAMES.len()),
    )
        .prop_map(|(when, decision, shadow, quorum, approvers)| RuleSpec {
            name: String::new(),
            when,
            decision,
            shadow,
            quorum,
            approvers,
        })
}

fn action(name: &'static str, cel: bool, overrides: bool) -> impl Strategy<Value = ActionSpec> {
    (
        proptest::option::of((0..RISKS.len()).prop_map(|i| RISKS[i])),
        proptest::option::of(0..GROUP_NAMES.len()),
        opt_decision(),
        opt_decision(),
        proptest::collection::vec(rule(cel, overrides), 0..6),
    )
        .prop_map(
            move |(risk, approvers, default, on_error, rules)| ActionSpec {
                name,
                risk,
                approvers,
                default,
                on_error,
                rules,
            },
        )
}

fn group(i: usize) -> impl Strategy<Value = Group> {
    let members = GROUP_MEMBERS[i];
    let most = u32::try_from(members.len()).unwrap_or(1);
    (
        proptest::option::of(1..=most),
        proptest::option::of((0..TIMEOUTS.len()).prop_map(|t| TIMEOUTS[t])),
    )
        .prop_map(move |(quorum, timeout)| Group {
            name: GROUP_NAMES[i],
            members,
            quorum,
            timeout,
        })
}

fn set(cel: bool, overrides: bool) -> impl Strategy<Value = SetSpec> {
    (
        (group(0), group(1), group(2)),
        proptest::sample::subsequence(ACTION_NAMES.to_vec(), 1..=ACTION_NAMES.len()),
    )
        .prop_flat_map(move |(groups, names)| {
            let actions: Vec<_> = names
                .into_iter()
                .map(|n| action(n, cel, overrides))
                .collect();
            (Just(vec![groups.0, groups.1, groups.2]), actions)
        })
        .prop_map(|(groups, actions)| fix(SetSpec { groups, actions }))
}

/// Makes a generated set valid: unique rule names, approval only where an
/// approver group exists, reachable quorums only on approval rules.
fn fix(mut s: SetSpec) -> SetSpec {
    let sizes: Vec<u32> = s
        .groups
        .iter()
        .map(|g| u32::try_from(g.members.len()).unwrap_or(1))
        .collect();
    for a in &mut s.actions {
        let group = a.approvers;
        let demote = |d: &'static str, g: Option<usize>| {
            if d == "require_approval" && g.is_none() {
                "block"
            } else {
                d
            }
        };
        a.default = a.default.map(|d| demote(d, group));
        a.on_error = a.on_error.map(|d| demote(d, group));
        for (i, r) in a.rules.iter_mut().enumerate() {
            r.name = format!("r{i}");
            r.decision = demote(r.decision, r.approvers.or(group));
            r.quorum = match (r.quorum, r.approvers.or(group)) {
                (Some(q), Some(g)) if r.decision == "require_approval" => Some(q.min(sizes[g])),
                _ => None,
            };
        }
    }
    s
}

fn payload() -> impl Strategy<Value = Value> {
    let amount = prop_oneof![
        4 => (-10i64..6_000).prop_map(|n| Value::Number(Decimal::from(n))),
        4 => (0i64..600_000).prop_map(|c| Value::Number(Decimal::new(c, 2))),
        1 => (0usize..3).prop_map(|i| Value::Number(NUMS[[2, 4, 5][i]].value())),
        1 => Just(Value::string("lots")),
        1 => Just(Value::Null),
    ];
    let tag = prop_oneof![
        Just(Value::string("x")),
        Just(Value::string("y")),
        Just(Value::string("z")),
        Just(Value::string("X")),
        Just(Value::Number(Decimal::from(5))),
    ];
    let flag = prop_oneof![
        3 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::string("yes")),
    ];
    let nested = prop_oneof![
        Just(Value::Object(Map::from_entries(vec![(
            "region".into(),
            Value::string("eu")
        )]))),
        Just(Value::Object(Map::from_entries(vec![(
            "region".into(),
            Value::string("us")
        )]))),
        Just(Value::Object(Map::new())),
        Just(Value::string("eu")),
    ];
    let small = || (0i64..10).prop_map(|n| Value::Number(Decimal::from(n)));
    (
        proptest::option::weighted(0.85, amount),
        proptest::option::weighted(0.8, tag),
        proptest::option::weighted(0.6, flag),
        proptest::option::of(any::<bool>().prop_map(Value::Bool)),
        proptest::option::weighted(
            0.7,
            (
                small(),
                (0i64..3).prop_map(|n| Value::Number(Decimal::from(n))),
            ),
        ),
        proptest::option::weighted(0.6, nested),
        proptest::collection::vec(proptest::option::of(small()), 5),
    )
        .prop_map(|(amount, tag, flag, k, ratio, nested, extras)| {
            let mut entries: Vec<(String, Value)> = Vec::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    entries.push((k.to_owned(), v));
                }
            };
            put("amount", amount);
            put("tag", tag);
            put("flag", flag);
            put("k", k);
            if let Some((n, d)) = ratio {
                put("n", Some(n));
                put("d", Some(d));
            }
            put("nested", nested);
            for (i, e) in extras.into_iter().enumerate() {
                put(&format!("e{i}"), e);
            }
            Value::Object(Map::from_entries(entries))
        })
}

// ---------------------------------------------------------------------------
// Rendering policy files

/// A small deterministic generator for shuffles and layout choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    fn flip(&mut self) -> bool {
        self.next() & 1 == 1
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// How to write the files: all choices leave the meaning unchanged.
#[derive(Clone, Copy)]
struct Style {
    flow_rules: bool,
    block_when: bool,
    comments: bool,
    explicit_defaults: bool,
    hoist_on_error: bool,
}

const PLAIN: Style = Style {
    flow_rules: false,
    block_when: false,
    comments: false,
    explicit_defaults: false,
    hoist_on_error: false,
};

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn render_groups(out: &mut String, groups: &[&Group], style: Style) {
    if groups.is_empty() {
        return;
    }
    out.push_str("approvers:\n");
    for g in groups {
        let _ = writeln!(out, "  {}:", g.name);
        if style.comments {
            out.push_str("    # who approves\n");
        }
        let members: Vec<String> = g.members.iter().map(|m| format!("{{id: {m}}}")).collect();
        let _ = writeln!(out, "    members: [{}]", members.join(", "));
        if let Some(q) = g.quorum {
            let _ = writeln!(out, "    quorum: {q}");
        } else if style.explicit_defaults {
            out.push_str("    quorum: 1\n");
        }
        if let Some((t, _)) = g.timeout {
            let _ = writeln!(out, "    timeout: {t}");
        } else if style.explicit_defaults {
            out.push_str("    timeout: 24h\n");
        }
    }
}

fn render_rule(out: &mut String, r: &RuleSpec, groups: &[Group], style: Style) {
    let cond = match &r.when {
        When::Always => None,
        When::Expr(c) => Some(("when", c.text())),
        When::Cel(c) => Some(("when_cel", c.clone())),
    };
    let mode = if r.shadow {
        Some("shadow")
    } else if style.explicit_defaults {
        Some("enforce")
    } else {
        None
    };
    if style.flow_rules && !style.block_when {
        let mut parts = vec![format!("name: {}", r.name)];
        if let Some((key, text)) = &cond {
            parts.push(format!("{key}: {}", quote(text)));
        }
        parts.push(format!("decision: {}", r.decision));
        if let Some(q) = r.quorum {
            parts.push(format!("quorum: {q}"));
        }
        if let Some(g) = r.approvers {
            parts.push(format!("approvers: {}", groups[g].name));
        }
        if let Some(m) = mode {
            parts.push(format!("mode: {m}"));
        }
        let _ = writeln!(out, "      - {{{}}}", parts.join(", "));
        return;
    }
    let _ = writeln!(out, "      - name: {}", r.name);
    if let Some((key, text)) = &cond {
        if style.block_when {
            let _ = writeln!(out, "        {key}: |\n          {text}");
        } else {
            let _ = writeln!(out, "        {key}: {}", quote(text));
        }
    }
    let _ = writeln!(out, "        decision: {}", r.decision);
    if let Some(q) = r.quorum {
        let _ = writeln!(out, "        quorum: {q}");
    }
    if let Some(g) = r.approvers {
        let _ = writeln!(out, "        approvers: {}", groups[g].name);
    }
    if let Some(m) = mode {
        let _ = writeln!(out, "        mode: {m}");
    }
}

fn render_file(
    groups: &[&Group],
    actions: &[&ActionSpec],
    all_groups: &[Group],
    style: Style,
) -> String {
    let mut out = String::new();
    if style.comments {
        out.push_str("# generated policy file\n");
    }
    out.push_str("version: 1\n");
    // A file-level on_error is the same as writing it on each action.
    let hoisted = match actions.first() {
        Some(first)
            if style.hoist_on_error
                && first.on_error.is_some()
                && actions.iter().all(|a| a.on_error == first.on_error) =>
        {
            first.on_error
        }
        _ => None,
    };
    if let Some(v) = hoisted {
        let _ = writeln!(out, "on_error: {v}");
    }
    render_groups(&mut out, groups, style);
    if actions.is_empty() {
        return out;
    }
    out.push_str("actions:\n");
    for a in actions {
        let start = out.len();
        let _ = writeln!(out, "  {}:", a.name);
        let header = out.len();
        if style.comments {
            out.push_str("    # an action\n");
        }
        match (a.risk, style.explicit_defaults) {
            (Some(r), _) => {
                let _ = writeln!(out, "    risk: {r}");
            }
            (None, true) => out.push_str("    risk: medium\n"),
            (None, false) => {}
        }
        if let Some(g) = a.approvers {
            let _ = writeln!(out, "    approvers: {}", all_groups[g].name);
        }
        if let Some(d) = a.default {
            let _ = writeln!(out, "    default: {d}");
        }
        match (a.on_error, hoisted, style.explicit_defaults) {
            (_, Some(_), _) => {}
            (Some(v), None, _) => {
                let _ = writeln!(out, "    on_error: {v}");
            }
            (None, None, true) => out.push_str("    on_error: block\n"),
            (None, None, false) => {}
        }
        if a.rules.is_empty() {
            if style.explicit_defaults {
                out.push_str("    rules: []\n");
            }
            if out.len() == header {
                // Nothing under the name: YAML would read null, not a mapping.
                out.truncate(start);
                let _ = writeln!(out, "  {}: {{}}", a.name);
            }
            continue;
        }
        out.push_str("    rules:\n");
        for r in &a.rules {
            render_rule(&mut out, r, all_groups, style);
        }
    }
    out
}

/// The whole set in one file, plainly written.
fn render_single(s: &SetSpec) -> Vec<(String, String)> {
    let groups: Vec<&Group> = s.groups.iter().collect();
    let actions: Vec<&ActionSpec> = s.actions.iter().collect();
    vec![(
        "all.yaml".to_owned(),
        render_file(&groups, &actions, &s.groups, PLAIN),
    )]
}

/// The set split over 1–4 files, in a shuffled order, under other names and
/// in a random style.
fn render_split(s: &SetSpec, seed: u64) -> Vec<(String, String)> {
    let mut rng = Rng(seed);
    let n = 1 + rng.below(4);
    let style = Style {
        flow_rules: rng.flip(),
        block_when: rng.flip(),
        comments: rng.flip(),
        explicit_defaults: rng.flip(),
        hoist_on_error: rng.flip(),
    };
    let mut group_files: Vec<Vec<&Group>> = vec![Vec::new(); n];
    for g in &s.groups {
        group_files[rng.below(n)].push(g);
    }
    let mut action_files: Vec<Vec<&ActionSpec>> = vec![Vec::new(); n];
    let mut actions: Vec<&ActionSpec> = s.actions.iter().collect();
    rng.shuffle(&mut actions);
    for a in actions {
        action_files[rng.below(n)].push(a);
    }
    let mut files: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                format!("part-{}-{i}.yaml", rng.next() % 1000),
                render_file(&group_files[i], &action_files[i], &s.groups, style),
            )
        })
        .collect();
    rng.shuffle(&mut files);
    files
}

fn shuffle_rules(s: &SetSpec, seed: u64) -> SetSpec {
    let mut rng = Rng(seed);
    let mut out = s.clone();
    for a in &mut out.actions {
        rng.shuffle(&mut a.rules);
    }
    out
}

// ---------------------------------------------------------------------------
// Deciding

fn load(files: &[(String, String)]) -> Result<PolicySet, TestCaseError> {
    PolicySet::from_sources(files.iter().map(|(n, t)| (n.as_str(), t.as_str()))).map_err(|e| {
        let mut msg = String::from("the generated set does not load:\n");
        for d in e.diagnostics() {
            let _ = writeln!(msg, "  {}", d.to_plain());
        }
        for (n, t) in files {
            let _ = writeln!(msg, "--- {n}\n{t}");
        }
        TestCaseError::fail(msg)
    })
}

fn decide(set: &PolicySet, action: &str, payload: &Value) -> DecisionReport {
    let null = Value::Null;
    let req = Request {
        action,
        actor: &null,
        payload,
        source: &null,
        context: &null,
        now: &null,
    };
    set.decide(&req).to_report(action)
}

/// Every declared action plus one that is not.
fn action_names(s: &SetSpec) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = s.actions.iter().map(|a| a.name).collect();
    names.push("undeclared");
    names
}

fn sorted(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = names.collect();
    v.sort();
    v
}

/// What must not depend on rule order.
#[derive(Debug, PartialEq)]
struct OrderFree {
    decision: String,
    matched: Vec<String>,
    shadow: Vec<String>,
    errors: Vec<String>,
    approvers: Option<String>,
    quorum: Option<u32>,
    timeout_seconds: Option<u64>,
}

fn order_free(r: &DecisionReport) -> OrderFree {
    OrderFree {
        decision: r.decision.as_str().to_owned(),
        matched: sorted(
            r.matched
                .iter()
                .map(|h| format!("{}:{}", h.rule, h.decision)),
        ),
        shadow: sorted(r.shadow.iter().map(|h| h.rule.clone())),
        errors: sorted(r.errors.iter().map(|e| e.rule.clone())),
        approvers: r.approvers.clone(),
        quorum: r.quorum,
        timeout_seconds: r.timeout_seconds,
    }
}

/// Writes a value as JSON with every object's keys in a shuffled order.
fn shuffled_json(v: &Value, rng: &mut Rng, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&str, &Value)> = m.iter().collect();
            rng.shuffle(&mut entries);
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(if rng.flip() { ", " } else { "," });
                }
                out.push_str(&Value::string(k).to_json());
                out.push(':');
                shuffled_json(v, rng, out);
            }
            out.push('}');
        }
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                shuffled_json(item, rng, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_json()),
    }
}

// ---------------------------------------------------------------------------
// The model of deciding

/// What the model expects for one request.
#[derive(Debug, PartialEq)]
struct Expected {
    decision: String,
    rule: Option<String>,
    matched: Vec<(String, String)>,
    shadow: Vec<String>,
    errors: Vec<String>,
    approvers: Option<String>,
    quorum: Option<u32>,
    timeout_seconds: Option<u64>,
}

fn strength(d: &str) -> u8 {
    match d {
        "allow" => 0,
        "require_approval" => 1,
        _ => 2,
    }
}

fn model(s: &SetSpec, action: &str, payload: &Value) -> Expected {
    let Some(a) = s.actions.iter().find(|a| a.name == action) else {
        return Expected {
            decision: "block".into(),
            rule: None,
            matched: vec![],
            shadow: vec![],
            errors: vec![],
            approvers: None,
            quorum: None,
            timeout_seconds: None,
        };
    };
    let empty = Map::new();
    let p = payload.as_object().unwrap_or(&empty);
    let on_error = a.on_error.unwrap_or("block");
    let mut matched: Vec<(&RuleSpec, &'static str)> = Vec::new();
    let mut shadow = Vec::new();
    let mut errors = Vec::new();
    for r in &a.rules {
        let outcome = match &r.when {
            When::Always => Ok(true),
            When::Expr(c) => c.eval(p, a.name, a.risk()),
            When::Cel(_) => Err(()),
        };
        let decision = match outcome {
            Ok(true) => r.decision,
            Ok(false) => continue,
            Err(()) => {
                errors.push(r.name.clone());
                on_error
            }
        };
        if r.shadow {
            shadow.push(r.name.clone());
        } else {
            matched.push((r, decision));
        }
    }
    let winner = matched.iter().map(|(_, d)| *d).max_by_key(|d| strength(d));
    let (decision, deciding) = match winner {
        Some(w) => (w, matched.iter().find(|(_, d)| *d == w).map(|(r, _)| *r)),
        None => (a.default.unwrap_or("block"), None),
    };
    // The strictest requirement among matching approval rules: highest
    // quorum, then group name; a rule that failed into require_approval asks
    // what it would have asked had it matched.
    let (approvers, quorum, timeout_seconds) = if decision == "require_approval" {
        let requirement = |g: usize, q: Option<u32>| {
            let group = &s.groups[g];
            (
                group.name.to_owned(),
                q.or(group.quorum).unwrap_or(1),
                group.timeout.map_or(86_400, |(_, secs)| secs),
            )
        };
        let mut candidates: Vec<(String, u32, u64)> = matched
            .iter()
            .filter(|(_, d)| *d == "require_approval")
            .filter_map(|(r, _)| {
                r.approvers
                    .or(a.approvers)
                    .map(|g| requirement(g, r.quorum))
            })
            .collect();
        if candidates.is_empty() {
            if let Some(g) = a.approvers {
                candidates.push(requirement(g, None));
            }
        }
        candidates.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        match candidates.into_iter().next() {
            Some((g, q, t)) => (Some(g), Some(q), Some(t)),
            None => (None, None, None),
        }
    } else {
        (None, None, None)
    };
    Expected {
        decision: decision.to_owned(),
        rule: deciding.map(|r| r.name.clone()),
        matched: matched
            .iter()
            .map(|(r, d)| (r.name.clone(), (*d).to_owned()))
            .collect(),
        shadow,
        errors,
        approvers,
        quorum,
        timeout_seconds,
    }
}

fn observed(r: &DecisionReport) -> Expected {
    Expected {
        decision: r.decision.as_str().to_owned(),
        rule: r.rule.clone(),
        matched: r
            .matched
            .iter()
            .map(|h| (h.rule.clone(), h.decision.as_str().to_owned()))
            .collect(),
        shadow: r.shadow.iter().map(|h| h.rule.clone()).collect(),
        errors: r.errors.iter().map(|e| e.rule.clone()).collect(),
        approvers: r.approvers.clone(),
        quorum: r.quorum,
        timeout_seconds: r.timeout_seconds,
    }
}

fn config() -> Config {
    Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------
// The properties

proptest! {
    #![proptest_config(config())]

    /// Same inputs, same report: twice on one set, and on a second load.
    #[test]
    fn deciding_is_deterministic(
        spec in set(true, true),
        payloads in proptest::collection::vec(payload(), 1..4),
    ) {
        let files = render_single(&spec);
        let first = load(&files)?;
        let second = load(&files)?;
        prop_assert_eq!(first.version(), second.version());
        for action in action_names(&spec) {
            for p in &payloads {
                let a = decide(&first, action, p);
                let b = decide(&first, action, p);
                let c = decide(&second, action, p);
                prop_assert_eq!(&a, &b, "same set, decided twice: {}", action);
                prop_assert_eq!(&a, &c, "a second load of the same files: {}", action);
            }
        }
    }

    /// Rule order within an action changes neither the decision, the sets of
    /// matched, shadow and failed rules, nor the approval requirement.
    #[test]
    fn rule_order_does_not_change_the_decision(
        spec in set(true, false),
        seed in any::<u64>(),
        payloads in proptest::collection::vec(payload(), 1..4),
    ) {
        let shuffled = shuffle_rules(&spec, seed);
        let base = load(&render_single(&spec))?;
        let other = load(&render_single(&shuffled))?;
        for action in action_names(&spec) {
            for p in &payloads {
                let a = decide(&base, action, p);
                let b = decide(&other, action, p);
                prop_assert_eq!(order_free(&a), order_free(&b), "action {} payload {}", action, p);
                // The reported rule is one of the winners, in either order.
                if let Some(rule) = &b.rule {
                    prop_assert!(
                        b.matched.iter().any(|h| &h.rule == rule && h.decision == b.decision),
                        "reported rule {} does not carry the decision", rule
                    );
                }
            }
        }
    }

    /// Files, their names, their order and their style are not meaning:
    /// identical reports and the same policy version.
    #[test]
    fn splitting_files_changes_nothing(
        spec in set(true, true),
        seed in any::<u64>(),
        payloads in proptest::collection::vec(payload(), 1..4),
    ) {
        let single = render_single(&spec);
        let split = render_split(&spec, seed);
        let a_set = load(&single)?;
        let b_set = load(&split)?;
        prop_assert_eq!(a_set.version(), b_set.version(), "files: {:#?}", split);
        for action in action_names(&spec) {
            for p in &payloads {
                prop_assert_eq!(decide(&a_set, action, p), decide(&b_set, action, p), "action {}", action);
            }
        }
    }

    /// The order of keys in the payload's JSON text does not matter.
    #[test]
    fn payload_key_order_does_not_matter(
        spec in set(true, true),
        seed in any::<u64>(),
        p in payload(),
    ) {
        let set = load(&render_single(&spec))?;
        let mut rng = Rng(seed);
        let mut texts = Vec::new();
        for _ in 0..2 {
            let mut text = String::new();
            shuffled_json(&p, &mut rng, &mut text);
            texts.push(text);
        }
        let parsed: Vec<Value> = texts
            .iter()
            .map(|t| parse_json(t.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {t}"))))
            .collect::<Result<_, _>>()?;
        for (text, value) in texts.iter().zip(&parsed) {
            prop_assert_eq!(value, &p, "{}", text);
        }
        for action in action_names(&spec) {
            let direct = decide(&set, action, &p);
            for (text, value) in texts.iter().zip(&parsed) {
                prop_assert_eq!(&direct, &decide(&set, action, value), "payload {}", text);
            }
        }
    }

    /// The report matches an independent model of the semantics.
    #[test]
    fn decisions_follow_the_model(
        spec in set(false, true),
        payloads in proptest::collection::vec(payload(), 1..4),
    ) {
        let set = load(&render_single(&spec))?;
        for action in action_names(&spec) {
            for p in &payloads {
                let got = decide(&set, action, p);
                prop_assert_eq!(observed(&got), model(&spec, action, p), "action {} payload {}\n{:#?}", action, p, spec);
            }
        }
    }

    /// CEL macros over an object's keys decide the same request the same way
    /// every time (order-dependent `map`/`filter` are refused at load).
    #[test]
    fn cel_macros_over_objects_are_deterministic(
        keys in proptest::sample::subsequence(vec!["a", "b", "c", "d", "e", "f", "g", "h"], 3..=8),
    ) {
        let policy = "version: 1\nactions:\n  probe:\n    default: block\n    rules:\n      - name: first\n        when_cel: payload.m.exists(k, k == payload.first) && payload.m.exists_one(k, k == payload.first)\n        decision: allow\n";
        let set = load(&[("p.yaml".to_owned(), policy.to_owned())])?;
        let m = Map::from_entries(keys.iter().map(|k| ((*k).to_owned(), Value::Bool(true))).collect());
        let p = Value::Object(Map::from_entries(vec![
            ("m".to_owned(), Value::Object(m)),
            ("first".to_owned(), Value::string(keys.first().copied().unwrap_or("a"))),
        ]));
        let first = decide(&set, "probe", &p);
        prop_assert_eq!(first.decision.as_str(), "allow");
        for _ in 0..16 {
            prop_assert_eq!(&first, &decide(&set, "probe", &p));
        }
    }

    /// With rule-level `approvers:` and `quorum:`, rule order does not change
    /// the approval requirement (the strictest one wins).
    #[test]
    fn rule_order_does_not_change_the_approval_requirement(
        spec in set(false, true),
        seed in any::<u64>(),
        payloads in proptest::collection::vec(payload(), 1..4),
    ) {
        let shuffled = shuffle_rules(&spec, seed);
        let base = load(&render_single(&spec))?;
        let other = load(&render_single(&shuffled))?;
        for action in action_names(&spec) {
            for p in &payloads {
                prop_assert_eq!(
                    order_free(&decide(&base, action, p)),
                    order_free(&decide(&other, action, p)),
                    "action {} payload {}", action, p
                );
            }
        }
    }
}
