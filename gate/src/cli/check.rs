//! `countersign check`: validate a policy set.

use std::path::PathBuf;
use std::process::ExitCode;

use countersign_engine::PolicySet;

pub fn run(dirs: &[PathBuf]) -> ExitCode {
    match PolicySet::load(dirs) {
        Ok(set) => {
            let actions = set.actions().len();
            let rules = set.rule_count();
            outln!(
                "ok: {actions} action{}, {rules} rule{}, policy version {}",
                if actions == 1 { "" } else { "s" },
                if rules == 1 { "" } else { "s" },
                set.version()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            super::render::print_policy_error(&err);
            ExitCode::FAILURE
        }
    }
}
