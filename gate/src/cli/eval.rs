//! `countersign eval`: decide one request from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use countersign_engine::{Aggregates, Bindings, PolicySet, Request, Value, parse_json};

/// Arguments of `countersign eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Policy directory (repeatable).
    #[arg(long = "policies", required = true)]
    policies: Vec<PathBuf>,
    /// The action name.
    #[arg(long)]
    action: String,
    /// The payload: a JSON object, or @FILE to read it from a file.
    #[arg(long, default_value = "{}")]
    payload: String,
    /// Who proposes the action.
    #[arg(long)]
    actor: Option<String>,
    /// Where the request comes from, as JSON.
    #[arg(long)]
    source: Option<String>,
    /// What the surface adds about the request (`{"mcp": {"tool": "…"}}`), as JSON.
    #[arg(long)]
    context: Option<String>,
    /// The evaluation instant (RFC 3339); defaults to the current time.
    #[arg(long)]
    now: Option<String>,
    /// The values of the aggregates the action's rules read (`count(…)`,
    /// `sum(…)`): a JSON object from each aggregate's text, as written in
    /// the rule, to its number; or @FILE.
    #[arg(long, default_value = "{}")]
    aggregates: String,
    /// Exit with the decision, for scripts: 0 allow, 3 require_approval,
    /// 4 block (2 stays bad input).
    #[arg(long)]
    exit_code: bool,
}

/// The exit code `--exit-code` gives a decision.
pub fn verdict_exit_code(verdict: countersign_engine::Verdict) -> u8 {
    match verdict {
        countersign_engine::Verdict::Allow => 0,
        countersign_engine::Verdict::RequireApproval => 3,
        countersign_engine::Verdict::Block => 4,
    }
}

const BAD_ARGUMENTS: u8 = 2;

fn fail(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(BAD_ARGUMENTS)
}

pub fn run(args: EvalArgs) -> ExitCode {
    let payload_text = match args.payload.strip_prefix('@') {
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => return fail(format!("cannot read payload file `{path}`: {e}")),
        },
        None => args.payload.clone().into_bytes(),
    };
    let payload = match parse_json(&payload_text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) => {
            return fail(format!(
                "--payload must be a JSON object, not {}",
                other.json_type_name()
            ));
        }
        Err(e) => return fail(format!("--payload is not valid JSON: {e}")),
    };
    let source = match args.source.as_deref().map(|s| parse_json(s.as_bytes())) {
        None => Value::Null,
        Some(Ok(v)) => v,
        Some(Err(e)) => return fail(format!("--source is not valid JSON: {e}")),
    };
    let context = match args.context.as_deref().map(|s| parse_json(s.as_bytes())) {
        None => Value::Null,
        Some(Ok(v)) => v,
        Some(Err(e)) => return fail(format!("--context is not valid JSON: {e}")),
    };
    let now = match args.now.as_deref() {
        None => Utc::now(),
        Some(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.with_timezone(&Utc),
            Err(_) => {
                return fail(format!(
                    "--now `{s}` is not an RFC 3339 timestamp (e.g. 2026-05-23T13:31:08Z)"
                ));
            }
        },
    };
    let set = match PolicySet::load(&args.policies) {
        Ok(set) => set,
        Err(err) => {
            super::render::print_policy_error(&err);
            return ExitCode::from(BAD_ARGUMENTS);
        }
    };
    let actor = args.actor.clone().map_or(Value::Null, Value::String);
    let now = Value::Timestamp(now);
    let aggregates = match aggregates(&set, &args, &actor, &payload, &source, &context, &now) {
        Ok(a) => a,
        Err(message) => return fail(message),
    };
    let decision = set.decide_with(
        &Request {
            action: &args.action,
            actor: &actor,
            payload: &payload,
            source: &source,
            context: &context,
            now: &now,
        },
        &aggregates,
    );
    match serde_json::to_string_pretty(&decision.to_report(&args.action)) {
        Ok(json) => {
            outln!("{json}");
            if args.exit_code {
                ExitCode::from(verdict_exit_code(decision.verdict))
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => fail(format!("cannot print the decision: {e}")),
    }
}

/// The aggregates' values from `--aggregates`, as the gate would hand them
/// over: an aggregate whose `where:` values the request lacks fails (and
/// `on_error` applies). A value for no aggregate of the action, or an
/// aggregate without a value, is a usage error.
fn aggregates(
    set: &PolicySet,
    args: &EvalArgs,
    actor: &Value,
    payload: &Value,
    source: &Value,
    context: &Value,
    now: &Value,
) -> Result<Aggregates, String> {
    let text = match args.aggregates.strip_prefix('@') {
        Some(path) => {
            std::fs::read(path).map_err(|e| format!("cannot read aggregates file `{path}`: {e}"))?
        }
        None => args.aggregates.clone().into_bytes(),
    };
    let given = match parse_json(&text) {
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            return Err(format!(
                "--aggregates must be a JSON object, not {}",
                other.json_type_name()
            ));
        }
        Err(e) => return Err(format!("--aggregates is not valid JSON: {e}")),
    };
    let specs = set.aggregates(&args.action);
    let bindings = Bindings {
        actor,
        payload,
        source,
        context,
        now,
    };
    let mut out = Aggregates::new();
    for (key, value) in given.iter() {
        let known = countersign_engine::aggregate_key(key);
        if !specs.iter().any(|s| s.key() == known) {
            return Err(format!(
                "--aggregates: `{key}` is not an aggregate of `{}`'s rules{}",
                args.action,
                list(&specs)
            ));
        }
        if !matches!(value, Value::Number(_)) {
            return Err(format!(
                "--aggregates: the value of `{key}` must be a number"
            ));
        }
        out.insert(key, value.clone());
    }
    let mut missing = Vec::new();
    for spec in &specs {
        match spec.group_values(&bindings) {
            Err(e) => out.insert_error(spec.key(), e.message()),
            Ok(_) if out.get(spec.key()).is_none() => missing.push(format!("`{}`", spec.key())),
            Ok(_) => {}
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "give the value of each aggregate with --aggregates '{{\"<text>\": <number>}}': {}",
            missing.join(", ")
        ));
    }
    Ok(out)
}

fn list(specs: &[&countersign_engine::AggregateSpec]) -> String {
    if specs.is_empty() {
        return " (they read none)".to_owned();
    }
    let keys: Vec<String> = specs.iter().map(|s| format!("`{}`", s.key())).collect();
    format!(" (they read {})", keys.join(", "))
}
