//! `countersign schema policy|tests`: JSON Schemas (draft 2020-12) of the
//! policy and test file formats, for editors (yaml-language-server) and
//! validators. The repository ships them in `schemas/`; a test keeps those
//! files equal to what this prints.
//!
//! The schemas describe structure: keys, types, enumerations, the shape of
//! durations and action names. What needs the whole set (a group that
//! exists, a quorum a group can reach, an expression that compiles) stays
//! the job of `countersign check`.

use std::process::ExitCode;

use clap::ValueEnum;
use serde_json::{Value as Json, json};

/// Which schema to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// Policy files (`*.yaml`).
    Policy,
    /// Policy test files (`*_test.yaml`).
    Tests,
}

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";
const VERDICTS: [&str; 3] = ["allow", "require_approval", "block"];

/// The schema as printed: pretty JSON with a final newline.
pub fn schema_text(kind: SchemaKind) -> String {
    let value = match kind {
        SchemaKind::Policy => policy_schema(),
        SchemaKind::Tests => tests_schema(),
    };
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

pub fn run(kind: SchemaKind) -> ExitCode {
    use std::io::Write as _;
    let _ = std::io::stdout()
        .lock()
        .write_all(schema_text(kind).as_bytes());
    ExitCode::SUCCESS
}

fn duration() -> Json {
    json!({
        "type": "string",
        "pattern": "^\\s*([0-9]+[smhdw])+\\s*$",
        "description": "A duration: digits and a unit (s, m, h, d, w), combinable: 30m, 24h, 1h30m, 7d.",
        "examples": ["15m", "24h", "1h30m", "7d"]
    })
}

fn verdict(description: &str) -> Json {
    json!({ "enum": VERDICTS, "description": description })
}

fn member() -> Json {
    json!({
        "type": "object",
        "description": "A person who may approve.",
        "additionalProperties": false,
        "required": ["id"],
        "properties": {
            "id": { "type": "string", "minLength": 1, "description": "Stable identifier, compared with the requesting actor (nobody approves their own request)." },
            "name": { "type": "string", "description": "Display name." },
            "email": { "type": "string", "description": "Email address, for the email transport." },
            "slack": { "type": "string", "description": "Slack user id, for the Slack transport." },
            "teams": { "type": "string", "description": "The member's own Teams Workflows URL (a 1:1 chat), for personal approval links." }
        }
    })
}

fn group() -> Json {
    json!({
        "type": "object",
        "description": "A named group of approvers.",
        "additionalProperties": false,
        "required": ["members"],
        "properties": {
            "description": { "type": "string" },
            "members": { "type": "array", "items": { "$ref": "#/$defs/member" } },
            "quorum": { "type": "integer", "minimum": 1, "maximum": 4294967295u64, "description": "Distinct approvals needed (default 1); at most the number of members." },
            "timeout": { "$ref": "#/$defs/duration", "description": "How long a request waits before it expires (default 24h)." },
            "escalate_to": { "type": "string", "description": "The group asked when this one has not answered in time." },
            "escalate_after": { "$ref": "#/$defs/duration", "description": "How long to wait before escalating." }
        }
    })
}

fn rule() -> Json {
    json!({
        "type": "object",
        "description": "One rule: when its condition holds, it decides.",
        "additionalProperties": false,
        "required": ["name", "decision"],
        "not": { "required": ["when", "when_cel"] },
        "properties": {
            "name": { "type": "string", "minLength": 1, "description": "Unique within its action." },
            "description": { "type": "string" },
            "when": { "type": "string", "minLength": 1, "description": "The condition, in Countersign's expression language (no `when` means always)." },
            "when_cel": { "type": "string", "minLength": 1, "description": "The condition in CEL, instead of `when`." },
            "decision": verdict("What the rule decides when it matches."),
            "reason": { "type": "string", "description": "The reason reported when this rule decides." },
            "quorum": { "type": "integer", "minimum": 1, "maximum": 4294967295u64, "description": "Overrides the group's quorum (require_approval rules only)." },
            "approvers": { "type": "string", "description": "Overrides the action's approver group." },
            "mode": { "enum": ["enforce", "shadow"], "description": "shadow: evaluated and reported, never counted." }
        }
    })
}

fn action() -> Json {
    json!({
        "type": "object",
        "description": "One declared action and its rules.",
        "additionalProperties": false,
        "properties": {
            "description": { "type": "string" },
            "summary": { "type": "string", "description": "The approvers' one-line title, with {payload.field} placeholders (e.g. `Refund {payload.amount} {payload.currency}`); checked at load." },
            "risk": { "enum": ["low", "medium", "high", "critical"], "description": "Declared risk (default medium)." },
            "approvers": { "type": "string", "description": "The approver group asked for require_approval." },
            "default": verdict("The decision when no rule matches (default block)."),
            "on_error": verdict("The decision of a rule whose condition cannot be evaluated (default block)."),
            "rules": { "type": "array", "items": { "$ref": "#/$defs/rule" } }
        }
    })
}

/// The schema of a policy file.
pub fn policy_schema() -> Json {
    json!({
        "$schema": DRAFT,
        "title": "Countersign policy file",
        "description": "A Countersign policy file (version 1). Every *.yaml file of a policy directory, except *_test.yaml, is one of these; `countersign check` validates the whole set.",
        "type": "object",
        "additionalProperties": false,
        "required": ["version"],
        "properties": {
            "version": { "const": 1, "description": "The policy format version: 1." },
            "on_error": verdict("The default on_error of this file's actions."),
            "approvers": {
                "type": ["object", "null"],
                "description": "Approver groups by name.",
                "additionalProperties": { "$ref": "#/$defs/group" }
            },
            "actions": {
                "type": ["object", "null"],
                "description": "Actions by the name agents send. An action with nothing under it has no rules (always blocked).",
                "propertyNames": { "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$" },
                "additionalProperties": { "anyOf": [{ "type": "null" }, { "$ref": "#/$defs/action" }] }
            }
        },
        "$defs": {
            "duration": duration(),
            "member": member(),
            "group": group(),
            "rule": rule(),
            "action": action()
        }
    })
}

fn sources() -> Json {
    json!({
        "type": "object",
        "description": "Policy files: file name -> YAML text.",
        "additionalProperties": { "type": "string" }
    })
}

fn nullable(t: &str) -> Json {
    json!({ "type": [t, "null"] })
}

fn strings() -> Json {
    json!({ "type": "array", "items": { "type": "string" } })
}

fn expect() -> Json {
    json!({
        "type": "object",
        "description": "What the engine must decide. Only the keys given are checked.",
        "additionalProperties": false,
        "required": ["decision"],
        "properties": {
            "decision": verdict("The expected decision."),
            "rule": { "type": ["string", "null"], "description": "The deciding rule; null: no rule matched." },
            "approvers": nullable("string"),
            "quorum": { "type": "integer", "minimum": 0 },
            "no_quorum": { "type": "boolean" },
            "reason": { "type": "string", "description": "A substring of the reason." },
            "reason_exact": { "type": "string" },
            "matched": strings(),
            "matched_decisions": strings(),
            "shadow": strings(),
            "errors": strings(),
            "error_contains": { "type": "string" },
            "members": strings(),
            "timeout": nullable("string"),
            "timeout_seconds": { "type": ["integer", "null"], "minimum": 0 },
            "escalate_to": nullable("string"),
            "escalate_after_seconds": { "type": ["integer", "null"], "minimum": 0 },
            "declared": { "type": "boolean" },
            "risk": nullable("string")
        }
    })
}

fn test_case() -> Json {
    json!({
        "type": "object",
        "description": "One request and the decision expected for it.",
        "additionalProperties": false,
        "required": ["name", "action", "expect"],
        "not": { "required": ["payload", "payload_json"] },
        "properties": {
            "name": { "type": "string" },
            "action": { "type": "string" },
            "actor": { "description": "Who proposes the action (usually a string)." },
            "payload": { "type": ["object", "null"], "description": "The payload, as YAML." },
            "payload_json": { "type": "string", "description": "The payload as JSON text (exact digits)." },
            "source": { "description": "Where the request comes from (any value)." },
            "context": { "description": "What the calling surface adds (e.g. `{mcp: {server, tool}}`), read as `context`." },
            "now": { "type": "string", "description": "The evaluation instant, RFC 3339 (2026-05-23T13:31:08Z)." },
            "aggregates": { "type": "object", "description": "The values of the rules' aggregates (`count(…)`, `sum(…)`), keyed by their text as written." },
            "history": { "type": "array", "description": "Past runs the aggregates are computed from (instead of `aggregates`).", "items": { "$ref": "#/$defs/past_run" } },
            "expect": { "$ref": "#/$defs/expect" }
        }
    })
}

fn load_error() -> Json {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["message"],
        "properties": {
            "message": { "type": "string" },
            "at": { "type": "string", "description": "file:line:col" },
            "snippet": { "type": "string" },
            "help": { "type": "string" },
            "kind": { "type": "string" },
            "file": { "type": "string" }
        }
    })
}

fn past_run() -> Json {
    json!({
        "type": "object",
        "description": "One past run of a test's history.",
        "additionalProperties": false,
        "required": ["action", "at"],
        "not": { "required": ["payload", "payload_json"] },
        "properties": {
            "action": { "type": "string", "minLength": 1 },
            "actor": {},
            "payload": { "type": ["object", "null"] },
            "payload_json": { "type": "string" },
            "source": {},
            "at": { "type": "string", "description": "When it was proposed, RFC 3339." },
            "status": { "description": "Its state (default allowed): one status or a list." }
        }
    })
}

fn expression() -> Json {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["expr"],
        "properties": {
            "expr": { "type": "string" },
            "name": { "type": "string" },
            "action": { "type": "string" },
            "risk": { "type": "string" },
            "actor": {},
            "payload": {},
            "payload_json": { "type": "string" },
            "source": {},
            "context": {},
            "now": { "type": "string" },
            "value": { "description": "The expected value (any, null included)." },
            "eval_error": { "type": "string" },
            "compile_error": { "type": "string" },
            "folded": { "type": "boolean" },
            "at": { "type": "integer", "minimum": 0 },
            "help": { "type": "string" }
        }
    })
}

/// The schema of a test file.
pub fn tests_schema() -> Json {
    json!({
        "$schema": DRAFT,
        "title": "Countersign policy test file",
        "description": "A *_test.yaml file: requests and the decisions expected for them (`countersign test`). The keys besides `tests` make a file self-contained (the engine's own case files).",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "note": { "type": "string" },
            "tests": { "type": "array", "items": { "$ref": "#/$defs/test" } },
            "policies": sources(),
            "load_errors": { "type": "array", "items": { "$ref": "#/$defs/load_error" } },
            "load_error_count": { "type": "integer", "minimum": 0 },
            "same_version_as": { "type": "array", "items": sources() },
            "different_version_from": { "type": "array", "items": sources() },
            "expressions": { "type": "array", "items": { "$ref": "#/$defs/expression" } }
        },
        "$defs": {
            "test": test_case(),
            "expect": expect(),
            "load_error": load_error(),
            "expression": expression(),
            "past_run": past_run()
        }
    })
}
