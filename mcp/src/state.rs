//! The proxy's local state file: for each call still in progress (its run
//! pending, approved and not yet executed, or being executed), the nonce of
//! its idempotency key, its run and whether it was forwarded. Written
//! atomically and synced before the proxy acts on it, so a restart keeps it.
//!
//! The gate's run is the source of truth; the file only remembers which run
//! a retried call belongs to, and that a call was handed to the upstream
//! (so a restart never forwards it a second time).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Why the state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not one this proxy wrote.
    #[error("state file {path} is not valid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// One call in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// Random hex making this round's idempotency key: a retry of the call
    /// reuses it and so reaches the same run, even if the proxy stopped
    /// before it learnt the run's id.
    pub nonce: String,
    /// The run, once the gate answered.
    pub run_id: Option<String>,
    /// The call was handed to the upstream server for this run.
    #[serde(default)]
    pub forwarded: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Doc {
    version: u32,
    calls: BTreeMap<String, Entry>,
}

/// One change, appended as a line after the document.
#[derive(Debug, Serialize, Deserialize)]
struct Change {
    key: String,
    entry: Option<Entry>,
}

/// The state file, loaded: a JSON document (`{"version": 1, "calls":
/// {…}}`) on its first line, then one line per change since, each synced
/// before the proxy acts on it (one `fdatasync` per change). Loading
/// replays the changes and writes the result back as a single document.
#[derive(Debug)]
pub(crate) struct StateFile {
    path: PathBuf,
    doc: Mutex<(Doc, std::fs::File)>,
}

impl StateFile {
    /// Loads `path`; a missing file is an empty state.
    pub(crate) fn load(path: &Path) -> Result<Self, StateError> {
        let io = |source| StateError::Io {
            path: path.to_owned(),
            source,
        };
        let invalid = |message: String| StateError::Invalid {
            path: path.to_owned(),
            message,
        };
        let mut doc = Doc {
            version: 1,
            calls: BTreeMap::new(),
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut lines = text.lines().filter(|l| !l.trim().is_empty());
                if let Some(first) = lines.next() {
                    doc = serde_json::from_str(first).map_err(|e| invalid(e.to_string()))?;
                    if doc.version != 1 {
                        return Err(invalid(format!("unknown version {}", doc.version)));
                    }
                }
                for line in lines {
                    // A torn last line (a crash mid-append) was never acted on.
                    let Ok(change) = serde_json::from_str::<Change>(line) else {
                        continue;
                    };
                    match change.entry {
                        Some(e) => doc.calls.insert(change.key, e),
                        None => doc.calls.remove(&change.key),
                    };
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // Compact: the document alone, written atomically, then appended to.
        let mut text = serde_json::to_string(&doc).map_err(|e| invalid(e.to_string()))?;
        text.push('\n');
        let mut tmp = path.to_owned().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Self {
            path: path.to_owned(),
            doc: Mutex::new((doc, file)),
        })
    }

    /// The entry of `key`, if a call with that key is in progress.
    pub(crate) fn get(&self, key: &str) -> Option<Entry> {
        self.doc
            .lock()
            .map_or(None, |doc| doc.0.calls.get(key).cloned())
    }

    /// Sets (or, with `None`, removes) the entry of `key`, durably (the
    /// change is synced) before returning.
    pub(crate) fn set(&self, key: &str, entry: Option<Entry>) -> Result<(), StateError> {
        let mut guard = self.doc.lock().map_err(|_| StateError::Invalid {
            path: self.path.clone(),
            message: "a writer panicked".to_owned(),
        })?;
        let (doc, file) = &mut *guard;
        let change = Change {
            key: key.to_owned(),
            entry,
        };
        let mut line = serde_json::to_string(&change).map_err(|e| StateError::Invalid {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        line.push('\n');
        let io = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        file.write_all(line.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        match change.entry {
            Some(e) => doc.calls.insert(change.key, e),
            None => doc.calls.remove(&change.key),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_reload_and_removal_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let s = StateFile::load(&path).unwrap();
        assert_eq!(s.get("k"), None);
        let e = Entry {
            nonce: "n".into(),
            run_id: Some("r".into()),
            forwarded: true,
        };
        s.set("k", Some(e.clone())).unwrap();
        s.set("other", Some(Entry::default())).unwrap();
        s.set("other", None).unwrap();
        // A torn last line is ignored.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"key\":\"k\",\"ent")
            .unwrap();
        let again = StateFile::load(&path).unwrap();
        assert_eq!(again.get("k"), Some(e.clone()));
        assert_eq!(again.get("other"), None);
        // Compacted into one document on load.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        drop(again);
        assert_eq!(StateFile::load(&path).unwrap().get("k"), Some(e));
    }

    #[test]
    fn a_corrupt_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{nope\n").unwrap();
        assert!(matches!(
            StateFile::load(&path),
            Err(StateError::Invalid { .. })
        ));
    }
}
