//! The YAML shape of a test file, read with serde. Unknown keys are errors,
//! so a misspelt expectation fails loudly instead of checking nothing.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

use crate::value::Value;

/// A whole `*_test.yaml` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTestFile {
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub policies: Option<Spanned<Sources>>,
    #[serde(default)]
    pub tests: Vec<RawTest>,
    #[serde(default)]
    pub load_errors: Option<Vec<RawDiagnostic>>,
    #[serde(default)]
    pub load_error_count: Option<usize>,
    #[serde(default)]
    pub same_version_as: Vec<Sources>,
    #[serde(default)]
    pub different_version_from: Vec<Sources>,
    #[serde(default)]
    pub expressions: Vec<RawExpression>,
}

/// One request and what the engine must decide for it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTest {
    pub name: Spanned<String>,
    pub action: String,
    #[serde(default)]
    pub actor: Value,
    #[serde(default)]
    pub payload: Option<Spanned<Value>>,
    #[serde(default)]
    pub payload_json: Option<Spanned<String>>,
    #[serde(default)]
    pub source: Value,
    #[serde(default)]
    pub context: Value,
    #[serde(default)]
    pub now: Option<Spanned<String>>,
    /// The values of the aggregates, keyed by their text.
    #[serde(default)]
    pub aggregates: Option<Spanned<Value>>,
    /// Past runs the aggregates are computed from (instead of `aggregates`).
    #[serde(default)]
    pub history: Option<Vec<RawPastRun>>,
    pub expect: RawExpect,
}

/// One past run of a test's `history`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPastRun {
    pub action: String,
    #[serde(default)]
    pub actor: Value,
    #[serde(default)]
    pub payload: Option<Value>,
    #[serde(default)]
    pub payload_json: Option<String>,
    #[serde(default)]
    pub source: Value,
    /// When it was proposed (RFC 3339).
    pub at: Spanned<String>,
    /// Its states (default `allowed`).
    #[serde(default)]
    pub status: Option<Spanned<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    pub decision: Spanned<String>,
    #[serde(default)]
    pub rule: Option<Value>,
    #[serde(default)]
    pub approvers: Option<Value>,
    #[serde(default)]
    pub quorum: Option<u32>,
    #[serde(default)]
    pub no_quorum: Option<bool>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub reason_exact: Option<String>,
    #[serde(default)]
    pub matched: Option<Vec<String>>,
    #[serde(default)]
    pub matched_decisions: Option<Vec<String>>,
    #[serde(default)]
    pub shadow: Option<Vec<String>>,
    #[serde(default)]
    pub errors: Option<Vec<String>>,
    #[serde(default)]
    pub error_contains: Option<String>,
    #[serde(default)]
    pub members: Option<Vec<String>>,
    #[serde(default, deserialize_with = "explicit")]
    pub timeout: Option<Option<String>>,
    #[serde(default, deserialize_with = "explicit")]
    pub timeout_seconds: Option<Option<u64>>,
    #[serde(default, deserialize_with = "explicit")]
    pub escalate_to: Option<Option<String>>,
    #[serde(default, deserialize_with = "explicit")]
    pub escalate_after_seconds: Option<Option<u64>>,
    #[serde(default)]
    pub declared: Option<bool>,
    #[serde(default, deserialize_with = "explicit")]
    pub risk: Option<Option<String>>,
}

/// One diagnostic the inline policy set must be rejected with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDiagnostic {
    pub message: String,
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub snippet: Option<String>,
    #[serde(default)]
    pub help: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
}

/// One expression compiled and evaluated on its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpression {
    pub expr: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub risk: Option<String>,
    #[serde(default)]
    pub actor: Value,
    #[serde(default)]
    pub payload: Option<Value>,
    #[serde(default)]
    pub payload_json: Option<String>,
    #[serde(default)]
    pub source: Value,
    #[serde(default)]
    pub context: Value,
    #[serde(default)]
    pub now: Option<String>,
    #[serde(default, deserialize_with = "explicit")]
    pub value: Option<Option<Value>>,
    #[serde(default)]
    pub eval_error: Option<String>,
    #[serde(default)]
    pub compile_error: Option<String>,
    #[serde(default)]
    pub folded: Option<bool>,
    #[serde(default)]
    pub at: Option<usize>,
    #[serde(default)]
    pub help: Option<String>,
}

/// Policy files in the order written: file name -> YAML text. A mapping
/// would lose the order, and the order of files is part of what a case pins.
#[derive(Debug, Clone, Default)]
pub(super) struct Sources(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Sources {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SourcesVisitor;
        impl<'de> Visitor<'de> for SourcesVisitor {
            type Value = Sources;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of file names to YAML text")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Sources, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = m.next_entry::<String, String>()? {
                    out.push(entry);
                }
                Ok(Sources(out))
            }
        }
        d.deserialize_map(SourcesVisitor)
    }
}

/// `Some(None)` for an explicit null, `None` (via `default`) when absent.
fn explicit<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
