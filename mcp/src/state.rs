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

/// The state file, loaded.
#[derive(Debug)]
pub(crate) struct StateFile {
    path: PathBuf,
    doc: Mutex<Doc>,
}

impl StateFile {
    /// Loads `path`; a missing file is an empty state.
    pub(crate) fn load(path: &Path) -> Result<Self, StateError> {
        let io = |source| StateError::Io {
            path: path.to_owned(),
            source,
        };
        let doc = match std::fs::read(path) {
            Ok(bytes) => {
                let doc: Doc = serde_json::from_slice(&bytes).map_err(|e| StateError::Invalid {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?;
                if doc.version != 1 {
                    return Err(StateError::Invalid {
                        path: path.to_owned(),
                        message: format!("unknown version {}", doc.version),
                    });
                }
                doc
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Doc {
                version: 1,
                calls: BTreeMap::new(),
            },
            Err(e) => return Err(io(e)),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        Ok(Self {
            path: path.to_owned(),
            doc: Mutex::new(doc),
        })
    }

    /// The entry of `key`, if a call with that key is in progress.
    pub(crate) fn get(&self, key: &str) -> Option<Entry> {
        self.doc
            .lock()
            .map_or(None, |doc| doc.calls.get(key).cloned())
    }

    /// Sets (or, with `None`, removes) the entry of `key` and writes the
    /// file durably before returning.
    pub(crate) fn set(&self, key: &str, entry: Option<Entry>) -> Result<(), StateError> {
        let mut doc = self.doc.lock().map_err(|_| StateError::Invalid {
            path: self.path.clone(),
            message: "a writer panicked".to_owned(),
        })?;
        match entry {
            Some(e) => {
                doc.calls.insert(key.to_owned(), e);
            }
            None => {
                doc.calls.remove(key);
            }
        }
        let text = serde_json::to_vec_pretty(&*doc).map_err(|e| StateError::Invalid {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        self.write(&text)
    }

    fn write(&self, bytes: &[u8]) -> Result<(), StateError> {
        let io = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
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
        let again = StateFile::load(&path).unwrap();
        assert_eq!(again.get("k"), Some(e));
        assert_eq!(again.get("other"), None);
    }

    #[test]
    fn a_corrupt_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{nope").unwrap();
        assert!(matches!(
            StateFile::load(&path),
            Err(StateError::Invalid { .. })
        ));
    }
}
