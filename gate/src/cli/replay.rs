//! `countersign replay`: re-decide the stored history with a policy set and
//! report every run whose outcome would differ.
//!
//! Each run's own request (action, actor, payload, source) is decided again
//! with the run's decision time as `now`, and compared with what was
//! recorded: the decision, the approval requirement (group, quorum) and the
//! conditions that failed to evaluate. The store is read read-only, in
//! short windows, up to the log position reached when replay started
//! (`store::HistoryReader`), so the output is the same for the same history
//! and policies, even against a live gate.
//!
//! Exit codes: 0 nothing changes, 1 something does, 2 bad input (policies
//! that do not load, an unreadable store, bad arguments).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use countersign_engine::{
    Decision, PolicySet, Request, Value, Verdict, parse_duration, parse_json,
};
use countersign_gate::config::{Config, StoreUrl};
use countersign_store::{HISTORY_PAGE_EVENTS, HistoryQuery, HistoryReader, HistoryRun};

use super::replay_report::{
    ApprovalChange, Cause, NewError, RemovedAction, ReplayFormat, Report, Requirement, Transition,
    Window,
};

/// Arguments of `countersign replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The policy set to replay with (repeatable).
    #[arg(long = "policies", required = true)]
    policies: Vec<PathBuf>,
    /// The gate's configuration file, to read its store.
    #[arg(long, conflicts_with = "store")]
    config: Option<PathBuf>,
    /// The store: sqlite://PATH, a file path, or postgres://… (default: the
    /// configuration's store, else ./countersign-data/countersign.db).
    #[arg(long)]
    store: Option<String>,
    /// The workspace whose history to replay.
    #[arg(long, default_value = "default")]
    workspace: String,
    /// Only runs created within this long before now (30m, 24h, 7d).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    since: Option<String>,
    /// Only runs created at or after this instant (RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Only runs created before this instant (RFC 3339).
    #[arg(long)]
    to: Option<String>,
    /// Only runs of this action.
    #[arg(long)]
    action: Option<String>,
    /// text, json or markdown (for a pull request).
    #[arg(long, value_enum, default_value_t = ReplayFormat::Text)]
    format: ReplayFormat,
    /// Run ids listed per change.
    #[arg(long, default_value_t = 5)]
    samples: usize,
    /// Print to stderr where the time went (reading, parsing, deciding).
    #[arg(long)]
    stats: bool,
}

const BAD_INPUT: u8 = 2;

fn bad(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(BAD_INPUT)
}

fn instant(flag: &str, s: &str) -> Result<DateTime<Utc>, ExitCode> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            bad(format!(
                "{flag} `{s}` is not an RFC 3339 timestamp (e.g. 2026-05-23T13:31:08Z)"
            ))
        })
}

/// The store to read: `--store`, else the configuration's.
fn store_url(args: &ReplayArgs) -> Result<StoreUrl, ExitCode> {
    if let Some(s) = &args.store {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(s.clone()));
        }
        let path = s.strip_prefix("sqlite://").unwrap_or(s);
        if path.contains("://") {
            return Err(bad(format!(
                "--store `{s}`: use sqlite://PATH, a file path, or postgres://…"
            )));
        }
        return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
    }
    Config::from_option(args.config.as_deref())
        .map(|c| c.store)
        .map_err(bad)
}

fn recorded_verdict(status: &str) -> Option<Verdict> {
    match status {
        "allowed" => Some(Verdict::Allow),
        "pending_approval" => Some(Verdict::RequireApproval),
        "blocked" => Some(Verdict::Block),
        _ => None,
    }
}

pub fn run(args: ReplayArgs) -> ExitCode {
    let set = match PolicySet::load(&args.policies) {
        Ok(set) => set,
        Err(err) => {
            super::render::print_policy_error(&err);
            return ExitCode::from(BAD_INPUT);
        }
    };
    let (from, to) = match (&args.since, &args.from, &args.to) {
        (Some(since), _, _) => {
            match parse_duration(since).and_then(|d| chrono::Duration::from_std(d).ok()) {
                Some(d) => (Some(Utc::now() - d), None),
                None => {
                    return bad(format!(
                        "--since `{since}` is not a duration (30m, 24h, 7d)"
                    ));
                }
            }
        }
        (None, f, t) => {
            let f = match f.as_deref().map(|s| instant("--from", s)).transpose() {
                Ok(f) => f,
                Err(code) => return code,
            };
            let t = match t.as_deref().map(|s| instant("--to", s)).transpose() {
                Ok(t) => t,
                Err(code) => return code,
            };
            (f, t)
        }
    };
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return bad("--from must be before --to");
        }
    }
    let url = match store_url(&args) {
        Ok(u) => u,
        Err(code) => return code,
    };
    let query = HistoryQuery {
        workspace: args.workspace.clone(),
        from,
        to,
        action: args.action.clone(),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return bad(format!("cannot start the runtime: {e}")),
    };
    let result = rt.block_on(async {
        let mut reader = match &url {
            StoreUrl::Sqlite(path) => HistoryReader::open_sqlite(path)?,
            StoreUrl::Postgres(u) => HistoryReader::connect_postgres(u).await?,
        };
        let started = std::time::Instant::now();
        let acc = replay(&mut reader, &set, &query, args.samples).await;
        if let (true, Ok(acc)) = (args.stats, &acc) {
            let t = &acc.timing;
            eprintln!(
                "stats: {} runs in {} windows, {:.2} s in all: reading {:.2} s, \
                 parsing payloads {:.2} s, deciding and comparing {:.2} s",
                acc.replayed,
                t.windows,
                started.elapsed().as_secs_f64(),
                t.read.as_secs_f64(),
                t.parse.as_secs_f64(),
                t.decide.as_secs_f64()
            );
        }
        acc
    });
    let mut acc = match result {
        Ok(acc) => acc,
        Err(e) => return bad(format!("{} ({})", e, url.describe())),
    };
    let report = acc.report(&set, &url, &query);
    {
        use std::io::Write as _;
        let _ = std::io::stdout()
            .lock()
            .write_all(report.render(args.format).as_bytes());
    }
    if let Some(bad_row) = acc.unreadable.take() {
        return bad(bad_row);
    }
    if report.runs_changed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Reads the history window by window up to the high-water mark and
/// re-decides every run.
async fn replay(
    reader: &mut HistoryReader,
    set: &PolicySet,
    query: &HistoryQuery,
    samples: usize,
) -> Result<Accumulator, countersign_store::StoreError> {
    let high_water = reader.high_water_mark(&query.workspace).await?;
    let mut acc = Accumulator {
        samples,
        high_water,
        ..Accumulator::default()
    };
    let mut after = 0;
    while after < high_water {
        let upto = after.saturating_add(HISTORY_PAGE_EVENTS).min(high_water);
        let t = std::time::Instant::now();
        let runs = reader.window(query, after, upto).await?;
        acc.timing.read += t.elapsed();
        acc.timing.windows += 1;
        for run in &runs {
            acc.add(set, run);
        }
        after = upto;
    }
    Ok(acc)
}

#[derive(Default)]
struct Bucket {
    runs: u64,
    sample: Vec<String>,
    message: String,
}

impl Bucket {
    fn add(&mut self, run_id: &str, samples: usize) {
        self.runs += 1;
        if self.sample.len() < samples {
            self.sample.push(run_id.to_owned());
        }
    }
}

type TransitionKey = (Verdict, Verdict, Cause, Option<String>);
type ApprovalKey = (Requirement, Requirement, Option<String>);

#[derive(Default)]
struct Timing {
    windows: u64,
    read: std::time::Duration,
    parse: std::time::Duration,
    decide: std::time::Duration,
}

#[derive(Default)]
struct Accumulator {
    aggregates_not_recorded: BTreeSet<String>,
    timing: Timing,
    samples: usize,
    high_water: u64,
    replayed: u64,
    changed: u64,
    decided_by: BTreeMap<String, u64>,
    transitions: BTreeMap<TransitionKey, Bucket>,
    approvals: BTreeMap<ApprovalKey, Bucket>,
    errors: BTreeMap<(String, String, bool), Bucket>,
    removed: BTreeMap<String, Bucket>,
    /// The first stored run that could not be read back (bad JSON, an
    /// unknown status): replay fails with exit 2 after printing.
    unreadable: Option<String>,
}

fn cause(decision: &Decision<'_>) -> (Cause, Option<String>) {
    if decision.action.is_none() {
        return (Cause::Undeclared, None);
    }
    match decision.rule {
        None => (Cause::Default, None),
        Some(rule) => {
            let errored = decision
                .matched
                .iter()
                .any(|h| std::ptr::eq(h.rule, rule) && h.errored && h.decision == decision.verdict);
            (
                if errored { Cause::Error } else { Cause::Rule },
                Some(rule.name.clone()),
            )
        }
    }
}

/// The names of the rules whose condition failed when the run was decided.
fn recorded_errors(details: &serde_json::Value) -> BTreeSet<String> {
    details
        .get("errors")
        .and_then(|e| e.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|e| e.get("rule").and_then(|r| r.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Accumulator {
    fn add(&mut self, set: &PolicySet, run: &HistoryRun) {
        let t = std::time::Instant::now();
        let parsed = (|| -> Result<_, String> {
            let payload =
                parse_json(run.payload_json.as_bytes()).map_err(|e| format!("payload: {e}"))?;
            let source = match &run.source_json {
                Some(s) => parse_json(s.as_bytes()).map_err(|e| format!("source: {e}"))?,
                None => Value::Null,
            };
            let details: serde_json::Value =
                serde_json::from_str(&run.details_json).map_err(|e| format!("details: {e}"))?;
            let old = recorded_verdict(&run.decision_status)
                .ok_or_else(|| format!("unknown decision status `{}`", run.decision_status))?;
            Ok((payload, source, details, old))
        })();
        let t2 = std::time::Instant::now();
        self.timing.parse += t2 - t;
        let (payload, source, details, old) = match parsed {
            Ok(p) => p,
            Err(e) => {
                if self.unreadable.is_none() {
                    self.unreadable = Some(format!("run {} cannot be read: {e}", run.run_id));
                }
                return;
            }
        };
        self.replayed += 1;
        *self
            .decided_by
            .entry(run.policy_version.clone())
            .or_default() += 1;
        let actor = run.actor.clone().map_or(Value::Null, Value::String);
        let now = Value::Timestamp(run.created_at);
        // Aggregates (limits over time) take the values recorded with the
        // run (`details.aggregates`); one the run has no value for fails,
        // so `on_error` applies, and the report names it.
        let mut aggregates = countersign_engine::Aggregates::new();
        let recorded = details.get("aggregates");
        for spec in set.aggregates(&run.action) {
            let key = spec.key();
            match recorded.and_then(|r| r.get(key)) {
                Some(serde_json::Value::Number(n)) => match parse_json(n.to_string().as_bytes()) {
                    Ok(v) => aggregates.insert(key, v),
                    Err(e) => aggregates.insert_error(key, format!("recorded value: {e}")),
                },
                Some(other) => aggregates.insert_error(
                    key,
                    other
                        .get("error")
                        .and_then(|e| e.as_str())
                        .unwrap_or("no number recorded")
                        .to_owned(),
                ),
                None => {
                    self.aggregates_not_recorded.insert(key.to_owned());
                    aggregates.insert_error(key, "not recorded with this run".to_owned());
                }
            }
        }
        let context = match &run.context_json {
            Some(c) => parse_json(c.as_bytes()).unwrap_or(Value::Null),
            None => Value::Null,
        };
        let decision = set.decide_with(
            &Request {
                action: &run.action,
                actor: &actor,
                payload: &payload,
                source: &source,
                context: &context,
                now: &now,
            },
            &aggregates,
        );
        let mut changed = false;
        if decision.verdict != old {
            changed = true;
            let (c, rule) = cause(&decision);
            self.transitions
                .entry((old, decision.verdict, c, rule))
                .or_default()
                .add(&run.run_id, self.samples);
        } else if old == Verdict::RequireApproval {
            let before = Requirement {
                group: run.approval_group.clone(),
                quorum: run.approval_quorum.and_then(|q| u64::try_from(q).ok()),
            };
            let after = Requirement {
                group: decision.approval.map(|a| a.group.name.clone()),
                quorum: decision.approval.map(|a| u64::from(a.quorum)),
            };
            if before != after {
                changed = true;
                let rule = decision
                    .approval
                    .and_then(|a| a.rule)
                    .map(|r| r.name.clone());
                self.approvals
                    .entry((before, after, rule))
                    .or_default()
                    .add(&run.run_id, self.samples);
            }
        }
        let had = recorded_errors(&details);
        for e in &decision.errors {
            if had.contains(&e.rule.name) {
                continue;
            }
            changed = true;
            let shadow = e.rule.mode == countersign_engine::Mode::Shadow;
            let bucket = self
                .errors
                .entry((run.action.clone(), e.rule.name.clone(), shadow))
                .or_default();
            if bucket.runs == 0 {
                bucket.message.clone_from(&e.message);
            }
            bucket.add(&run.run_id, self.samples);
        }
        if decision.action.is_none() && run.risk.is_some() {
            // Declared when it was decided (it had a risk), not any more.
            changed = true;
            self.removed
                .entry(run.action.clone())
                .or_default()
                .add(&run.run_id, self.samples);
        }
        if changed {
            self.changed += 1;
        }
        self.timing.decide += t2.elapsed();
    }

    fn report(&mut self, set: &PolicySet, url: &StoreUrl, query: &HistoryQuery) -> Report {
        fn ordered<K: Clone, T>(
            map: &mut BTreeMap<K, Bucket>,
            make: impl Fn(K, Bucket) -> T,
            runs: impl Fn(&T) -> u64,
        ) -> Vec<T> {
            // BTreeMap order breaks ties; a stable sort keeps it.
            let mut out: Vec<T> = std::mem::take(map)
                .into_iter()
                .map(|(k, b)| make(k, b))
                .collect();
            out.sort_by_key(|t| std::cmp::Reverse(runs(t)));
            out
        }
        Report {
            workspace: query.workspace.clone(),
            store: url.describe(),
            policy_version: set.version().to_owned(),
            high_water_mark: self.high_water,
            window: Window {
                from: query
                    .from
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                to: query
                    .to
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                action: query.action.clone(),
            },
            runs_replayed: self.replayed,
            runs_changed: self.changed,
            decided_by: std::mem::take(&mut self.decided_by),
            transitions: ordered(
                &mut self.transitions,
                |(from, to, cause, rule), b| Transition {
                    from: from.as_str().to_owned(),
                    to: to.as_str().to_owned(),
                    rule,
                    cause,
                    runs: b.runs,
                    sample: b.sample,
                },
                |t| t.runs,
            ),
            approval_changes: ordered(
                &mut self.approvals,
                |(from, to, rule), b| ApprovalChange {
                    from,
                    to,
                    rule,
                    runs: b.runs,
                    sample: b.sample,
                },
                |t| t.runs,
            ),
            new_errors: ordered(
                &mut self.errors,
                |(action, rule, shadow), b| NewError {
                    action,
                    rule,
                    shadow,
                    message: b.message,
                    runs: b.runs,
                    sample: b.sample,
                },
                |t| t.runs,
            ),
            removed_actions: ordered(
                &mut self.removed,
                |action, b| RemovedAction {
                    action,
                    runs: b.runs,
                    sample: b.sample,
                },
                |t| t.runs,
            ),
            aggregates_not_recorded: self.aggregates_not_recorded.iter().cloned().collect(),
        }
    }
}
