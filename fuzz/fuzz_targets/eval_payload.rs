//! Arbitrary bytes as a JSON request body, decided against a fixed,
//! realistic policy set.
//!
//! The bytes go through `parse_json` (the gate's reader: exact decimals,
//! duplicate keys rejected, depth and size limits). What parses is decided
//! for every action of the set, once as the payload (wrapped as `{"x": …}`
//! when it is not an object) and once as the actor and the source, with and
//! without a `now`. The policy set uses paths, indexing, `in`, arithmetic,
//! string functions, regexes, `has`, `hour`/`weekday` with fixed and
//! payload-chosen time zones, CEL conditions, shadow rules, rule-level
//! approvers and quorums, and every `on_error` setting, so values of the wrong
//! type, missing fields, decimal overflow and division by zero all reach the
//! evaluator.
//!
//! Checks: nothing panics; deciding is deterministic (same report twice);
//! a value read with tight limits equals the value read with the defaults;
//! and `to_json` round-trips through `parse_json`.

#![no_main]

use std::sync::LazyLock;

use chrono::DateTime;
use countersign_engine::{JsonLimits, Map, PolicySet, Request, Value, parse_json, parse_json_with_limits};
use libfuzzer_sys::fuzz_target;

const APPROVERS: &str = r#"
version: 1
approvers:
  finance:
    description: Finance leads
    members:
      - id: alice
        name: Alice Martin
        email: alice@example.com
      - id: bob
        slack: U012345
    quorum: 1
    timeout: 24h
    escalate_to: cfo
    escalate_after: 4h
  cfo:
    members:
      - id: carol
        email: carol@example.com
    timeout: 2d
  oncall:
    members:
      - id: dave
      - id: erin
    quorum: 2
    timeout: 30m
"#;

const ACTIONS: &str = r#"
version: 1
on_error: block
actions:
  payments.refund:
    description: Refund a customer
    risk: high
    approvers: finance
    default: allow
    on_error: require_approval
    rules:
      - name: small
        when: payload.amount <= 100 and payload.currency in ["EUR", "USD", "GBP"]
        decision: allow
      - name: large
        when: payload.amount * 1.2 + len(payload.items) > 5000
        decision: require_approval
        quorum: 2
      - name: odd_split
        when: payload.amount / payload.parts % 7 == 1 or payload.amount - payload.fee < 0
        decision: require_approval
        approvers: cfo
      - name: sanctioned_country
        when: upper(trim(payload.country)) in ["KP", "IR", "SY"]
        decision: block
        reason: the destination country is sanctioned
      - name: iban_format
        when: not matches(payload.iban, "^[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}$")
        decision: block
        mode: shadow
      - name: vip
        when_cel: has(payload.customer) && payload.customer.tier == "gold" && payload.items.size() < 3
        decision: allow
  infra.deploy:
    risk: critical
    approvers: oncall
    default: require_approval
    rules:
      - name: business_hours
        when: |
          hour(now, "Europe/Paris") >= 9 and hour(now, "Europe/Paris") < 18
            and weekday(now, "Europe/Paris") <= 5
        decision: allow
      - name: friday_freeze
        when: weekday(now, "America/New_York") == 5 and hour(now, "America/New_York") >= 15
        decision: block
      - name: prod_by_agent
        when: payload.env == "prod" and not starts_with(actor, "human:")
        decision: require_approval
      - name: deployer_local_night
        when: hour(payload.at, payload.tz) < 6
        decision: block
        mode: shadow
  files.delete:
    risk: medium
    default: allow
    rules:
      - name: system_paths
        when: starts_with(payload.path, "/etc") or ends_with(lower(payload.path), ".key") or contains(payload.path, "..")
        decision: block
      - name: many
        when: len(payload.paths) > 10 or payload.paths[0] == "/" or payload["paths"][len(payload.paths) - 1] == "~"
        decision: block
      - name: untrusted_source
        when_cel: "!source.ip.startsWith('10.') && size(payload.paths) > 0"
        decision: block
        mode: shadow
      - name: forced
        when: has(payload.options.force) and payload.options.force == true
        decision: block
  email.send:
    risk: low
    on_error: allow
    rules:
      - name: internal
        when: ends_with(payload.to, "@example.com") and len(payload.body) < 10000
        decision: allow
      - name: secrets
        when: contains(payload.attachments, "secrets.txt") or -payload.size < -1000000
        decision: block
      - name: trusted_sender
        when: actor in ["agent:mailer", "agent:support"] or source.channel == "api"
        decision: allow
      - name: audit_everything
        decision: block
        mode: shadow
        reason: shadow rule that always matches
"#;

static SET: LazyLock<PolicySet> = LazyLock::new(|| {
    match PolicySet::from_sources([("approvers.yaml", APPROVERS), ("actions.yaml", ACTIONS)]) {
        Ok(set) => set,
        Err(e) => {
            let all: Vec<String> = e.diagnostics().iter().map(|d| d.to_plain()).collect();
            panic!("the fuzz target's own policy set does not load:\n{}", all.join("\n"))
        }
    }
});

struct Fixtures {
    actor: Value,
    payload: Value,
    source: Value,
    now: Value,
    null: Value,
}

static FIXTURES: LazyLock<Fixtures> = LazyLock::new(|| {
    let json = |text: &str| match parse_json(text.as_bytes()) {
        Ok(v) => v,
        Err(e) => panic!("the fuzz target's own fixture is invalid JSON: {e}"),
    };
    Fixtures {
        actor: Value::string("agent:ops-bot"),
        payload: json(
            r#"{"amount": 250, "currency": "EUR", "country": "fr", "parts": 2, "fee": 1.5,
                "items": [{"sku": "A-1"}], "iban": "FR7630006000011234567890189",
                "customer": {"tier": "gold"}, "env": "prod", "path": "/tmp/x",
                "paths": ["/tmp/x"], "to": "ana@example.com", "body": "hi",
                "attachments": [], "size": 10, "at": "2024-03-05T14:30:00Z", "tz": "Asia/Tokyo"}"#,
        ),
        source: json(r#"{"ip": "10.0.0.7", "channel": "slack"}"#),
        // Tuesday 2024-03-05 14:30:00 UTC.
        now: match DateTime::from_timestamp(1_709_649_000, 0) {
            Some(t) => Value::Timestamp(t),
            None => panic!("fixture timestamp out of range"),
        },
        null: Value::Null,
    }
});

fn decide_twice(set: &PolicySet, req: &Request<'_>) {
    let first = set.decide(req).to_report(req.action);
    let second = set.decide(req).to_report(req.action);
    assert_eq!(first, second, "deciding `{}` twice gave different reports", req.action);
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = parse_json(data) else {
        return;
    };

    // Reading with tight limits either fails or agrees with the defaults.
    let tight = JsonLimits { max_depth: 3, max_bytes: 512 };
    if let Ok(limited) = parse_json_with_limits(data, tight) {
        assert_eq!(limited, value, "tight limits changed the value read");
    }
    // What the gate stores is what it read.
    let written = value.to_json();
    match parse_json(written.as_bytes()) {
        Ok(again) => assert_eq!(again, value, "to_json does not round-trip: {written}"),
        Err(e) => panic!("to_json wrote invalid JSON {written:?}: {e}"),
    }

    let payload = if value.as_object().is_some() {
        value.clone()
    } else {
        let mut m = Map::new();
        m.insert("x".to_owned(), value.clone());
        Value::Object(m)
    };
    let set = &*SET;
    let f = &*FIXTURES;
    for action in set.actions() {
        let action = action.name.as_str();
        // The input as the payload, at a fixed instant and with none.
        for now in [&f.now, &f.null] {
            decide_twice(set, &Request { action, actor: &f.actor, payload: &payload, source: &f.source, context: &f.null, now });
        }
        // The input as who and where the request comes from.
        decide_twice(set, &Request { action, actor: &value, payload: &f.payload, source: &value, context: &value, now: &f.now });
    }
});
