//! Command-line interface.

mod bench;
mod check;
mod eval;
mod render;
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
        Command::Check { dirs } => check::run(&default_dirs(dirs)),
        Command::Test {
            dirs,
            coverage,
            verbose,
        } => test::run(&default_dirs(dirs), coverage, verbose),
        Command::Bench { dirs, samples } => bench::run(&default_dirs(dirs), samples),
        Command::Eval(args) => eval::run(args),
    }
}
