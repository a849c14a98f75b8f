//! Policy sets: YAML files of approver groups and actions with their rules,
//! loaded, validated and compiled once.

mod build;
mod diagnostic;
mod files;
mod model;
mod raw;
mod summary;
mod version;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use diagnostic::{DiagnosticKind, Location, PolicyDiagnostic, PolicyError, SourceFile};
pub use files::{MAX_FILE_BYTES, is_test_file};
pub use model::{
    Action, ApproverGroup, Condition, DEFAULT_TIMEOUT, Member, Mode, Origin, PolicySet, Risk, Rule,
    Verdict, format_duration, is_valid_action_name, parse_duration,
};
pub use summary::{MAX_TITLE_CHARS, SummaryError, SummaryTemplate};

pub(crate) use files::{find_yaml_files, read_source, span_of, yaml_diagnostic};

impl PolicySet {
    /// Loads every policy file under `roots` (directories are searched
    /// recursively; `*_test.yaml` files are skipped). All problems are
    /// reported together.
    pub fn load<P: AsRef<Path>>(roots: &[P]) -> Result<Self, PolicyError> {
        let roots: Vec<PathBuf> = roots.iter().map(|p| p.as_ref().to_owned()).collect();
        build::build(files::read_sources(&roots)?)
    }

    /// Builds a policy set from `(name, YAML text)` pairs, for tests, fuzzing
    /// and tools that hold policies in memory.
    ///
    /// ```
    /// use countersign_engine::PolicySet;
    /// let set = PolicySet::from_sources([(
    ///     "inline.yaml",
    ///     "version: 1\nactions:\n  ping:\n    rules:\n      - name: ok\n        decision: allow\n",
    /// )]).unwrap();
    /// assert_eq!(set.actions().len(), 1);
    /// ```
    pub fn from_sources<N, T>(
        sources: impl IntoIterator<Item = (N, T)>,
    ) -> Result<Self, PolicyError>
    where
        N: Into<PathBuf>,
        T: Into<Arc<str>>,
    {
        let files = sources
            .into_iter()
            .map(|(n, t)| Arc::new(SourceFile::new(n, t)))
            .collect();
        build::build(files)
    }
}
