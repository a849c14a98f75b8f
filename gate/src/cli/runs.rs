//! `countersign runs list|show|tail`: a gate's runs at a terminal, read
//! over the HTTP API with an admin key.
//!
//! Everything an agent wrote (actor, reasoning, results, comments) is shown
//! with its control characters replaced, so a run cannot move the cursor,
//! recolour or rewrite the terminal of the person reading it.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use serde_json::Value;

/// The variable holding the admin key.
pub const ADMIN_KEY_ENV: &str = "COUNTERSIGN_ADMIN_KEY";
/// Read when [`ADMIN_KEY_ENV`] is unset (the SDK's variable).
pub const API_KEY_ENV: &str = "COUNTERSIGN_API_KEY";
/// The variable holding the gate's URL (the SDK's too).
pub const URL_ENV: &str = "COUNTERSIGN_URL";
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Which gate to ask.
#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// The gate's base URL [env: COUNTERSIGN_URL] (default:
    /// http://127.0.0.1:8080). The admin key is read from
    /// COUNTERSIGN_ADMIN_KEY, else COUNTERSIGN_API_KEY.
    #[arg(long, value_name = "URL")]
    gate: Option<String>,
}

/// `runs` subcommands.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List the newest runs of the key's workspace, newest first.
    List {
        #[command(flatten)]
        gate: GateArgs,
        /// Only runs in this governance status (allowed, pending_approval,
        /// blocked, approved, rejected, expired).
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
        /// Only runs in this execution status (not_executed,
        /// awaiting_execution, executed, failed).
        #[arg(long, value_name = "STATUS")]
        execution: Option<String>,
        /// Only runs of this action.
        #[arg(long)]
        action: Option<String>,
        /// Only runs of this actor.
        #[arg(long)]
        actor: Option<String>,
        /// How many runs (1–500).
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: u32,
        /// Continue after a previous page (the cursor it printed).
        #[arg(long)]
        cursor: Option<String>,
        /// Print the gate's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one run: decision, approval, answers, execution, deliveries.
    Show {
        #[command(flatten)]
        gate: GateArgs,
        /// The run id (`run_…`).
        run_id: String,
        /// Print the gate's JSON answer instead.
        #[arg(long)]
        json: bool,
    },
    /// Print the newest runs, then every new run and every change of a
    /// recent run's status as it happens, until interrupted.
    Tail {
        #[command(flatten)]
        gate: GateArgs,
        /// How many of the newest runs to print first.
        #[arg(long, short = 'n', default_value_t = 10)]
        lines: u32,
        /// How often to ask the gate (such as 500ms, 2s).
        #[arg(long, default_value = "1s")]
        interval: String,
    },
}

/// Why a command stopped: the message, and the exit code (1 for what the
/// gate answered or a network failure, 2 for a usage error).
struct Failure(String, u8);

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Self(message.into(), 2)
    }
}

/// Runs a `runs` subcommand.
pub fn run(cmd: RunsCommand) -> ExitCode {
    let rt = match super::admin::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(dispatch(cmd)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message, code)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

async fn dispatch(cmd: RunsCommand) -> Result<(), Failure> {
    match cmd {
        RunsCommand::List {
            gate,
            status,
            execution,
            action,
            actor,
            limit,
            cursor,
            json,
        } => {
            if !(1..=500).contains(&limit) {
                return Err(Failure::usage("--limit must be from 1 to 500"));
            }
            let api = Api::new(&gate)?;
            let mut query = vec![("limit", limit.to_string())];
            for (name, v) in [
                ("governance_status", status),
                ("execution_status", execution),
                ("action", action),
                ("actor", actor),
                ("cursor", cursor),
            ] {
                if let Some(v) = v {
                    query.push((name, v));
                }
            }
            let page = api.get("/v1/runs", &query).await?;
            if json {
                return emit(&pretty(&page));
            }
            let runs = page["runs"].as_array().map_or(&[][..], Vec::as_slice);
            if runs.is_empty() {
                eprintln!("no runs");
                return Ok(());
            }
            emit(&header())?;
            for r in runs {
                emit(&row(r))?;
            }
            if let Some(next) = page["next_cursor"].as_str() {
                eprintln!("more: countersign runs list --cursor {}", clean(next, 200));
            }
            Ok(())
        }
        RunsCommand::Show { gate, run_id, json } => {
            if run_id.is_empty()
                || run_id.len() > 64
                || !run_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(Failure::usage(format!(
                    "`{}` is not a run id (run_ and letters or digits)",
                    clean(&run_id, 64)
                )));
            }
            let api = Api::new(&gate)?;
            let run = api.get(&format!("/v1/runs/{run_id}"), &[]).await?;
            if json {
                emit(&pretty(&run))
            } else {
                emit(&details(&run))
            }
        }
        RunsCommand::Tail {
            gate,
            lines,
            interval,
        } => {
            let every = countersign_gate::config::parse_config_duration(&interval)
                .filter(|d| *d >= Duration::from_millis(100))
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "--interval `{}` is not a duration of 100ms or more",
                        clean(&interval, 40)
                    ))
                })?;
            if lines > 500 {
                return Err(Failure::usage("--lines must be at most 500"));
            }
            let api = Api::new(&gate)?;
            tail(&api, lines, every).await
        }
    }
}

/// The runs API of one gate, with the admin key.
struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    fn new(args: &GateArgs) -> Result<Self, Failure> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let key = env(ADMIN_KEY_ENV).or_else(|| env(API_KEY_ENV)).ok_or_else(|| {
            Failure::usage(format!(
                "no API key: set {ADMIN_KEY_ENV} to an admin key of the workspace \
                 (`countersign keys create --workspace W --role admin`); {API_KEY_ENV} is read when it is unset"
            ))
        })?;
        let base = args
            .gate
            .clone()
            .or_else(|| env(URL_ENV))
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Failure::usage(format!(
                "--gate `{}` must start with http:// or https://",
                clean(&base, 200)
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Failure(format!("cannot make an HTTP client: {e}"), 1))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            key: key.trim().to_owned(),
            http,
        })
    }

    /// GETs `path` and returns its JSON, or the gate's error in words.
    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .query(query)
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|e| Failure(format!("cannot reach the gate at {}: {e}", self.base), 1))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| Failure(format!("{url}: the answer broke off: {e}"), 1))?;
        let body: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return body
                .ok_or_else(|| Failure(format!("{url} answered with something not JSON"), 1));
        }
        let (code, message) = body
            .as_ref()
            .map(|b| {
                (
                    b["error"]["code"].as_str().unwrap_or("?").to_owned(),
                    b["error"]["message"].as_str().unwrap_or("").to_owned(),
                )
            })
            .unwrap_or_else(|| ("?".to_owned(), text.chars().take(200).collect()));
        let hint = match status.as_u16() {
            401 => " (is the key right, and not revoked?)",
            403 if code == "forbidden" || code == "admin_required" => {
                " (listing runs needs an admin key: `countersign keys create --role admin`)"
            }
            _ => "",
        };
        Err(Failure(
            format!(
                "the gate answered {} {}: {}{hint}",
                status.as_u16(),
                clean(&code, 64),
                clean(&message, 500)
            ),
            1,
        ))
    }
}

/// Follows the gate: the newest `first` runs, then, every `every`, the
/// runs not seen before (oldest first) and the seen ones whose status
/// changed. Pages back through the list until it reaches a run it knows, so
/// a burst larger than a page is not skipped (up to 20 pages a poll).
async fn tail(api: &Api, first: u32, every: Duration) -> Result<(), Failure> {
    const PAGE: u32 = 200;
    const MAX_PAGES: usize = 20;
    // Run id -> its updated_at when last printed.
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut started = false;
    emit(&header())?;
    loop {
        let mut fresh: Vec<Value> = Vec::new();
        let mut changed: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        for page_no in 0..MAX_PAGES {
            let mut query = vec![("limit", PAGE.to_string())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let page = api.get("/v1/runs", &query).await?;
            let runs = page["runs"].as_array().cloned().unwrap_or_default();
            let mut reached_known = false;
            for r in runs {
                let id = r["run_id"].as_str().unwrap_or_default().to_owned();
                let updated = r["updated_at"].as_str().unwrap_or_default().to_owned();
                match seen.get(&id) {
                    Some(before) => {
                        reached_known = true;
                        if *before != updated && page_no == 0 {
                            changed.push(r);
                        }
                    }
                    None => fresh.push(r),
                }
            }
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            // The first poll reads one page only: it prints the newest.
            if reached_known || cursor.is_none() || !started {
                break;
            }
            if page_no + 1 == MAX_PAGES {
                eprintln!(
                    "note: more than {} new runs since the last look; the older ones are not shown",
                    PAGE as usize * MAX_PAGES
                );
            }
        }
        let skip = if started {
            0
        } else {
            fresh.len().saturating_sub(first as usize)
        };
        // Everything read is now known, printed or not.
        for r in fresh.iter().chain(changed.iter()) {
            seen.insert(
                r["run_id"].as_str().unwrap_or_default().to_owned(),
                r["updated_at"].as_str().unwrap_or_default().to_owned(),
            );
        }
        // Oldest first, as a log reads.
        let mut shown: Vec<&Value> = fresh.iter().collect();
        shown.reverse();
        for r in shown.into_iter().skip(skip).chain(changed.iter().rev()) {
            emit(&row(r))?;
        }
        started = true;
        // Forget the oldest when the map grows large: only recent runs
        // change, and ids sort by creation time.
        if seen.len() > 100_000 {
            let mut ids: Vec<String> = seen.keys().cloned().collect();
            ids.sort();
            for id in ids.iter().take(seen.len() - 50_000) {
                seen.remove(id);
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Writes a line to stdout and flushes it; a closed stdout (`| head`)
/// ends the command quietly.
fn emit(line: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
    Ok(())
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Text from the gate made safe for a terminal: control and bidi-override
/// characters become `�`, and at most `max` characters are kept (`…` after).
fn clean(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| {
            if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    if s.chars().nth(max).is_some() {
        out.pop();
        out.push('…');
    }
    out
}

/// A string field of a run, cleaned, or `-`.
fn field(v: &Value, max: usize) -> String {
    v.as_str().map_or_else(|| "-".to_owned(), |s| clean(s, max))
}

/// `2026-11-22T02:21:31.270541Z` -> `2026-11-22 02:21:31Z`.
fn short_time(v: &Value) -> String {
    let Some(t) = v.as_str() else {
        return "-".to_owned();
    };
    let t = clean(t, 40).replacen('T', " ", 1);
    match t.find('.') {
        Some(dot) => format!("{}Z", &t[..dot]),
        None => t,
    }
}

fn header() -> String {
    format!(
        "{:<20}  {:<36}  {:<24}  {:<16}  {:<36}  RULE",
        "CREATED (UTC)", "RUN", "ACTION", "ACTOR", "STATUS"
    )
}

/// One line for a run: when, which, what, who, its two statuses, the rule.
fn row(r: &Value) -> String {
    let status = format!(
        "{}/{}",
        field(&r["governance_status"], 20),
        field(&r["execution_status"], 20)
    );
    format!(
        "{:<20}  {:<36}  {:<24}  {:<16}  {:<36}  {}",
        short_time(&r["created_at"]),
        field(&r["run_id"], 64),
        field(&r["action"], 24),
        field(&r["actor"], 16),
        status,
        field(&r["rule"], 64)
    )
}

/// Everything about one run, a field a line.
fn details(r: &Value) -> String {
    let mut out = Vec::new();
    let mut line = |name: &str, value: String| out.push(format!("{name:<11} {value}"));
    line("run", field(&r["run_id"], 64));
    line("workspace", field(&r["workspace"], 64));
    line("action", field(&r["action"], 128));
    line("actor", field(&r["actor"], 200));
    line("created", short_time(&r["created_at"]));
    line("updated", short_time(&r["updated_at"]));
    line(
        "status",
        format!(
            "{} / {}{}",
            field(&r["governance_status"], 40),
            field(&r["execution_status"], 40),
            if r["executable"] == Value::Bool(true) {
                " (executable)"
            } else {
                ""
            }
        ),
    );
    line(
        "decision",
        format!(
            "rule {}: {}",
            field(&r["rule"], 128),
            field(&r["governance_reason"], 500)
        ),
    );
    if !r["risk"].is_null() {
        line("risk", field(&r["risk"], 40));
    }
    line("policy", field(&r["policy_version"], 64));
    if !r["reasoning"].is_null() {
        line("reasoning", field(&r["reasoning"], 2000));
    }
    line("payload", field(&r["payload_summary"], 500));
    line("sha256", field(&r["payload_sha256"], 64));
    if let Some(a) = r["approval"].as_object() {
        let approvers: Vec<String> = a
            .get("approvers")
            .and_then(Value::as_array)
            .map(|l| l.iter().map(|m| field(m, 64)).collect())
            .unwrap_or_default();
        line(
            "approval",
            format!(
                "{} of group {} ({}), expires {}",
                a.get("quorum").and_then(Value::as_u64).unwrap_or(0),
                a.get("group")
                    .map_or_else(|| "-".to_owned(), |g| field(g, 64)),
                approvers.join(", "),
                a.get("expires_at")
                    .map_or_else(|| "-".to_owned(), short_time)
            ),
        );
    }
    for answer in r["approvals"].as_array().map_or(&[][..], Vec::as_slice) {
        let comment = answer["comment"]
            .as_str()
            .map(|c| format!(": \"{}\"", clean(c, 500)))
            .unwrap_or_default();
        line(
            "answer",
            format!(
                "{} {} via {} at {}{}{comment}",
                field(&answer["approver"], 64),
                field(&answer["decision"], 20),
                field(&answer["channel"], 20),
                short_time(&answer["answered_at"]),
                if answer["counted"] == Value::Bool(false) {
                    " (not counted)"
                } else {
                    ""
                },
            ),
        );
    }
    if let Some(e) = r["execution"].as_object() {
        let what = match e.get("status").and_then(Value::as_str) {
            Some("executed") => format!(
                "executed, result {}",
                clean(
                    &e.get("execution_result")
                        .map_or_else(String::new, Value::to_string),
                    1000
                )
            ),
            _ => format!(
                "failed: {}",
                e.get("execution_error")
                    .map_or_else(|| "-".to_owned(), |m| field(m, 1000))
            ),
        };
        line(
            "execution",
            format!(
                "{what} (reported {})",
                e.get("reported_at")
                    .map_or_else(|| "-".to_owned(), short_time)
            ),
        );
    }
    for d in r["deliveries"].as_array().map_or(&[][..], Vec::as_slice) {
        let error = d["last_error"]
            .as_str()
            .map(|e| format!(", last error: {}", clean(e, 300)))
            .unwrap_or_default();
        line(
            "delivery",
            format!(
                "{} by {}: {} after {} attempt(s){error}",
                field(&d["approver"], 64),
                field(&d["channel"], 20),
                field(&d["status"], 20),
                d["attempts"].as_u64().unwrap_or(0)
            ),
        );
    }
    line(
        "audit",
        format!(
            "event {} {}",
            r["audit"]["seq"].as_u64().unwrap_or(0),
            field(&r["audit"]["hash"], 64)
        ),
    );
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_control_characters_never_reach_the_screen() {
        assert_eq!(
            clean("ok\u{1b}[2Jx\u{202e}y\n", 100),
            "ok\u{fffd}[2Jx\u{fffd}y\u{fffd}"
        );
        assert_eq!(clean("abcdef", 4), "abc…");
        assert_eq!(clean("abcd", 4), "abcd");
    }
}
