//! The workspace pages, one module each: overview, runs, run detail,
//! receipt, policies, and the start page;
//! `common` holds what they share. This file only names them.

mod common;
mod home;
mod overview;
mod policies;
mod receipt;
mod run;
mod runs;

pub use common::{approver_id_for, listed_as, load_run};
pub use home::home;
pub use overview::overview;
pub use policies::policies;
pub use receipt::{receipt, receipt_download, receipt_json, receipt_page};
pub use run::run_detail;
pub use runs::{filter_query, parse_filter, runs};
