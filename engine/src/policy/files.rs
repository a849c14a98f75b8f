//! Reading policy files: walking directories, reading files with a size
//! limit, and parsing their YAML into the raw shape. Problems become located
//! diagnostics. Nothing here knows what a group or a rule means.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::diagnostic::{DiagnosticKind, PolicyDiagnostic, PolicyError, SourceFile};
use super::raw::RawFile;

/// The largest policy file accepted.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// Whether a path names a policy test file (`*_test.yaml` / `*_test.yml`).
pub fn is_test_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with("_test.yaml") || n.ends_with("_test.yml"))
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Finds YAML files under `roots` (recursively, sorted, hidden entries
/// skipped). A root that is a file is taken as is.
pub(crate) fn find_yaml_files(
    roots: &[PathBuf],
    tests: bool,
) -> Result<Vec<PathBuf>, Vec<PolicyDiagnostic>> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for root in roots {
        if root.is_file() {
            if is_test_file(root) == tests {
                files.push(root.clone());
            }
            continue;
        }
        if !root.is_dir() {
            problems.push(PolicyDiagnostic::new(
                DiagnosticKind::Io,
                format!("`{}` is not a directory or file", root.display()),
            ));
            continue;
        }
        let walker = walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walker {
            match entry {
                Ok(e)
                    if e.file_type().is_file()
                        && is_yaml(e.path())
                        && is_test_file(e.path()) == tests =>
                {
                    files.push(e.into_path());
                }
                Ok(_) => {}
                Err(e) => problems.push(PolicyDiagnostic::new(
                    DiagnosticKind::Io,
                    format!("cannot read `{}`: {e}", root.display()),
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(problems)
    }
}

/// Reads a file into a [`SourceFile`].
pub(crate) fn read_source(path: &Path) -> Result<Arc<SourceFile>, Box<PolicyDiagnostic>> {
    let meta = std::fs::metadata(path).map_err(|e| {
        PolicyDiagnostic::new(
            DiagnosticKind::Io,
            format!("cannot read `{}`: {e}", path.display()),
        )
    })?;
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(Box::new(PolicyDiagnostic::new(
            DiagnosticKind::Io,
            format!(
                "`{}` is larger than {} bytes",
                path.display(),
                MAX_FILE_BYTES
            ),
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        PolicyDiagnostic::new(
            DiagnosticKind::Io,
            format!("cannot read `{}`: {e}", path.display()),
        )
    })?;
    Ok(Arc::new(SourceFile::new(path, text)))
}

/// Turns a serde-saphyr error into a located diagnostic.
pub(crate) fn yaml_diagnostic(file: &Arc<SourceFile>, e: &serde_saphyr::Error) -> PolicyDiagnostic {
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    let message = strip_location_prefix(first.strip_prefix("error: ").unwrap_or(first));
    let mut d = PolicyDiagnostic::new(DiagnosticKind::Yaml, message.to_owned());
    if message.contains("mapping values are not allowed") {
        d = d.help("a value that contains `: ` must be quoted, for example `reason: \"Note: needs review\"`");
    }
    match e.location() {
        Some(loc) if loc.line() > 0 => {
            let start = file.offset_of(loc.line() as usize, loc.column() as usize);
            let end = file.text()[start..]
                .find(['\n', ':'])
                .map_or(file.text().len(), |i| start + i)
                .max(start + 1)
                .min(file.text().len());
            d.at(file, (start, end))
        }
        _ => d.at(file, (0, 0)),
    }
}

/// Drops the position serde-saphyr writes into its messages (we show our
/// own `file:line:col`): a leading `line 2 column 3: ` and a trailing
/// ` at line 2, column 3`.
fn strip_location_prefix(s: &str) -> &str {
    let mut s = s;
    if let Some(rest) = s.strip_prefix("line ") {
        if let Some((_, tail)) = rest.split_once(": ") {
            s = tail;
        }
    }
    if let Some(i) = s.rfind(" at line ") {
        let tail = &s[i + " at line ".len()..];
        if tail.chars().all(|c| {
            c.is_ascii_digit() || matches!(c, ',' | ' ' | 'c' | 'o' | 'l' | 'u' | 'm' | 'n')
        }) {
            s = &s[..i];
        }
    }
    s
}

/// Byte range of a spanned scalar in its file.
pub(crate) fn span_of<T>(file: &SourceFile, s: &Spanned<T>) -> (usize, usize) {
    let span = s.referenced.span();
    match (span.byte_offset(), span.byte_len()) {
        (Some(o), Some(l)) => (o as usize, (o + l.max(1)) as usize),
        _ => {
            let o = file.offset_of(s.referenced.line() as usize, s.referenced.column() as usize);
            (o, o + 1)
        }
    }
}

/// Reads the policy files under `roots` (test files excluded).
pub(crate) fn read_sources(roots: &[PathBuf]) -> Result<Vec<Arc<SourceFile>>, PolicyError> {
    let files = find_yaml_files(roots, false).map_err(PolicyError::new)?;
    let mut sources = Vec::new();
    let mut diags = Vec::new();
    for path in &files {
        match read_source(path) {
            Ok(s) => sources.push(s),
            Err(d) => diags.push(*d),
        }
    }
    if !diags.is_empty() {
        return Err(PolicyError::new(diags));
    }
    if sources.is_empty() {
        let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        return Err(PolicyError::new(vec![PolicyDiagnostic::new(
            DiagnosticKind::Empty,
            format!("no policy files (*.yaml) found in {}", shown.join(", ")),
        )]));
    }
    Ok(sources)
}

/// Parses each file's YAML. Files that do not parse, or that declare a
/// format version this release does not read, add a diagnostic; a file with
/// a wrong version is still returned, so its other problems are reported
/// too.
pub(crate) fn parse_policy_files(
    sources: Vec<Arc<SourceFile>>,
    diags: &mut Vec<PolicyDiagnostic>,
) -> Vec<(Arc<SourceFile>, RawFile)> {
    let mut parsed = Vec::new();
    for file in sources {
        match serde_saphyr::from_str::<RawFile>(file.text()) {
            Ok(raw) => {
                if raw.version.value != 1 {
                    diags.push(
                        PolicyDiagnostic::new(
                            DiagnosticKind::InvalidValue,
                            format!("unsupported policy version `{}`", raw.version.value),
                        )
                        .at(&file, span_of(&file, &raw.version))
                        .help("this release reads `version: 1`"),
                    );
                }
                parsed.push((file, raw));
            }
            Err(e) => diags.push(yaml_diagnostic(&file, &e)),
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_messages_do_not_repeat_the_position() {
        assert_eq!(
            strip_location_prefix("line 2 column 3: unknown field `x`"),
            "unknown field `x`"
        );
        assert_eq!(
            strip_location_prefix(
                "mapping values are not allowed in this context at line 35, column 27"
            ),
            "mapping values are not allowed in this context"
        );
        assert_eq!(strip_location_prefix("plain message"), "plain message");
    }
}
