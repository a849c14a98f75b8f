//! Command-line interface: policy tools and the gate's administration.

/// `println!` that stops quietly when stdout is closed (`countersign eval
/// … | head`) instead of panicking on a broken pipe.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod admin;
mod audit;
mod bench;
mod check;
mod diff;
mod eval;
mod fetch;
mod log_writer;
mod mcp;
mod receipt_check;
mod render;
mod replay;
mod replay_report;
mod runs;
pub mod schema;
mod secrets;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Countersign: the approval gate for AI agents.
#[derive(Debug, Parser)]
#[command(name = "countersign", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate policy files; print a summary or every problem found.
    Check {
        /// Policy directories or files (default: ./policies).
        dirs: Vec<PathBuf>,
        /// text (a summary, or the problems on stderr), json, or sarif
        /// (SARIF 2.1.0, for code-scanning annotations). Exit 1 on problems.
        #[arg(long, value_enum, default_value_t = check::CheckFormat::Text)]
        format: check::CheckFormat,
    },
    /// Run the policy tests (`*_test.yaml`) found next to the policies.
    Test {
        /// Policy directories (default: ./policies).
        dirs: Vec<PathBuf>,
        /// Also list every rule that no test matched.
        #[arg(long)]
        coverage: bool,
        /// List passing tests too.
        #[arg(long, short)]
        verbose: bool,
        /// text, junit (JUnit XML for CI test reports) or json.
        #[arg(long, value_enum, default_value_t = test::TestFormat::Text)]
        format: test::TestFormat,
    },
    /// Time the evaluation of every test case's request, per action.
    Bench {
        /// Policy directories (default: ./policies).
        dirs: Vec<PathBuf>,
        /// Measured samples per test case.
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
    /// Decide one request and print the decision as JSON.
    Eval(eval::EvalArgs),
    /// Re-decide the stored history with a policy set and report every run
    /// whose outcome would differ. Exit 0: no change, 1: changes, 2: bad input.
    Replay(replay::ReplayArgs),
    /// Compare two policy sets by meaning (groups, members, actions, rules,
    /// conditions, quorum, timeouts). Exit 0: no change, 1: changes, 2: bad input.
    Diff(diff::DiffArgs),
    /// Print the JSON Schema (draft 2020-12) of policy or test files.
    Schema {
        /// policy or tests.
        #[arg(value_enum)]
        kind: schema::SchemaKind,
    },
    /// Run the HTTP gate.
    ///
    /// Flags win over COUNTERSIGN_* environment variables, which win over
    /// the configuration file, which wins over the defaults.
    Serve(admin::ServeArgs),
    /// Ask a running gate whether it is ready (GET /readyz).
    ///
    /// Exits 0 if it is, 1 if not (with the reason). The container image's
    /// health check.
    Health(admin::HealthArgs),
    /// Read a gate's runs with an admin key (COUNTERSIGN_ADMIN_KEY).
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// Check the audit store.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Work with signed receipts.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// Make the secrets every gate of a deployment shares.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Gate an MCP server: run it behind this proxy, in its place in the
    /// client's configuration (`countersign mcp -- npx -y SERVER ARGS…`).
    Mcp(mcp::McpArgs),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Audit every workspace in full (event MACs, hash chain, Merkle tree,
    /// signed checkpoints, every run, approval and key row recomputed from
    /// the events) and name each problem.
    Verify {
        /// Only this workspace.
        #[arg(long)]
        workspace: Option<String>,
        /// Configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Fetch a workspace's latest signed checkpoint, check its signature
    /// and its consistency with the last one saved in --state, and save it.
    /// Run it from cron on another machine or account.
    Witness {
        /// The gate's base URL.
        #[arg(long)]
        gate: String,
        /// The public signed-note verifier key (`name+id+base64`), or a
        /// file holding it or the JSON GET /v1/receipt-keys serves. Never
        /// an API key.
        #[arg(long)]
        key: String,
        /// Directory keeping the last verified checkpoint of each workspace.
        #[arg(long)]
        state: PathBuf,
        /// The workspace whose log to witness.
        #[arg(long, default_value = "default")]
        workspace: String,
    },
}

#[derive(Debug, Subcommand)]
enum ReceiptCommand {
    /// Check a receipt's signature offline.
    Verify {
        /// The receipt (JSON from GET /v1/runs/{id}/receipt).
        file: PathBuf,
        /// Public keys as served by GET /v1/receipt-keys.
        #[arg(long = "keys")]
        keys: Option<PathBuf>,
        /// One public key, base64.
        #[arg(long)]
        public_key: Option<String>,
        /// Configuration file, to use this gate's own key.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A checkpoint you kept (exactly as GET /v1/audit/checkpoint
        /// served it): checks the receipt's checkpoint is consistent with it.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The gate to fetch the consistency proof from (no key needed).
        #[arg(long)]
        gate: Option<String>,
    },
}

fn default_dirs(dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    if dirs.is_empty() {
        vec![PathBuf::from("policies")]
    } else {
        dirs
    }
}

/// Parses the command line and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { dirs, format } => check::run(&default_dirs(dirs), format),
        Command::Test {
            dirs,
            coverage,
            verbose,
            format,
        } => test::run(
            &default_dirs(dirs),
            test::TestOptions {
                coverage,
                verbose,
                format,
            },
        ),
        Command::Bench { dirs, samples } => bench::run(&default_dirs(dirs), samples),
        Command::Eval(args) => eval::run(args),
        Command::Serve(args) => admin::serve(args),
        Command::Health(args) => admin::health(args),
        Command::Runs(cmd) => runs::run(cmd),
        Command::Schema { kind } => schema::run(kind),
        Command::Replay(args) => replay::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Keys(cmd) => admin::keys(cmd),
        Command::Audit(AuditCommand::Verify { workspace, config }) => {
            audit::audit_verify(config.as_deref(), workspace)
        }
        Command::Audit(AuditCommand::Witness {
            gate,
            key,
            state,
            workspace,
        }) => audit::witness(&gate, &key, &state, &workspace),
        Command::Receipt(ReceiptCommand::Verify {
            file,
            keys,
            public_key,
            config,
            checkpoint,
            gate,
        }) => admin::receipt_verify(
            &file,
            keys.as_deref(),
            public_key,
            config.as_deref(),
            checkpoint.as_deref(),
            gate.as_deref(),
        ),
        Command::Secrets(cmd) => secrets::run(cmd),
        Command::Mcp(args) => mcp::run(args),
    }
}
