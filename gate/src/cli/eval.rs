//! `countersign eval`: decide one request from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use countersign_engine::{PolicySet, Request, Value, parse_json};

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
    /// The evaluation instant (RFC 3339); defaults to the current time.
    #[arg(long)]
    now: Option<String>,
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
        None => args.payload.into_bytes(),
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
    let actor = args.actor.map_or(Value::Null, Value::String);
    let now = Value::Timestamp(now);
    let decision = set.decide(&Request {
        action: &args.action,
        actor: &actor,
        payload: &payload,
        source: &source,
        now: &now,
    });
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
