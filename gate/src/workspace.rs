//! A workspace's live policy set, reloaded when its files change.
//!
//! Requests take an `Arc` of the current set, so a reload never blocks or
//! changes a decision in flight. A reload that fails validation keeps the
//! previous set and keeps the diagnostics for `/v1/policies` and the logs.
//! Validation includes the gate's own rule about policies: members' Teams
//! URLs must be allowed by the configuration ([`LinkDestinations`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use countersign_engine::PolicySet;

use crate::config::LinkDestinations;

/// The outcome of a (re)load attempt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadReport {
    /// Whether the new files were accepted.
    pub ok: bool,
    /// Whether the policy version changed.
    pub changed: bool,
    /// The version in force after the attempt.
    pub policy_version: String,
    /// `file:line:col: message` for each problem, when rejected.
    pub diagnostics: Vec<String>,
}

/// One workspace: name, policy directory, current policy set.
pub struct Workspace {
    name: String,
    policy_dir: PathBuf,
    destinations: LinkDestinations,
    current: RwLock<Arc<PolicySet>>,
    last_error: RwLock<Option<Vec<String>>>,
    fingerprint: RwLock<Vec<(PathBuf, SystemTime, u64)>>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("name", &self.name)
            .finish()
    }
}

/// A fingerprint of every YAML file's path, modification time and size.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, SystemTime, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
                out.push((
                    p,
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Renders diagnostics as `file:line:col: message` lines.
pub fn plain_diagnostics(err: &countersign_engine::PolicyError) -> Vec<String> {
    err.diagnostics().iter().map(|d| d.to_plain()).collect()
}

/// Loads a policy set and checks it against the gate's own rules.
fn load(
    policy_dir: &Path,
    destinations: &LinkDestinations,
) -> Result<PolicySet, countersign_engine::PolicyError> {
    let set = PolicySet::load(&[policy_dir])?;
    destinations.check_policies(&set)?;
    Ok(set)
}

impl Workspace {
    /// Loads the workspace's policies; fails when they are invalid or name
    /// a Teams URL that `destinations` does not allow.
    pub fn open(
        name: &str,
        policy_dir: &Path,
        destinations: &LinkDestinations,
    ) -> Result<Self, countersign_engine::PolicyError> {
        let fp = fingerprint(policy_dir);
        let set = load(policy_dir, destinations)?;
        Ok(Self {
            name: name.to_owned(),
            policy_dir: policy_dir.to_owned(),
            destinations: destinations.clone(),
            current: RwLock::new(Arc::new(set)),
            last_error: RwLock::new(None),
            fingerprint: RwLock::new(fp),
        })
    }

    /// The workspace name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The policy directory.
    pub fn policy_dir(&self) -> &Path {
        &self.policy_dir
    }

    /// The policy set in force.
    pub fn policies(&self) -> Arc<PolicySet> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Diagnostics of the last rejected reload, if the last attempt failed.
    pub fn last_error(&self) -> Option<Vec<String>> {
        self.last_error.read().ok().and_then(|g| g.clone())
    }

    /// Whether the files changed since the last load attempt.
    pub fn files_changed(&self) -> bool {
        let now = fingerprint(&self.policy_dir);
        self.fingerprint.read().map(|f| *f != now).unwrap_or(true)
    }

    /// Reloads from disk. On failure the previous set stays in force.
    /// Builds no aggregate index: see [`Workspace::reload_with_store`].
    pub fn reload(&self) -> ReloadReport {
        let old_version = self.policies().version().to_owned();
        let loaded = self.load_candidate();
        self.install(loaded, old_version)
    }

    /// Reloads from disk, and before the new set decides anything builds
    /// from history the aggregate indexes it needs that do not exist yet
    /// (the reload waits for them; the store logs its progress). If they
    /// cannot be built, the previous set stays in force and the reload is
    /// reported failed: a limit is never silently off after a deploy.
    pub async fn reload_with_store(&self, store: &dyn countersign_store::Store) -> ReloadReport {
        let old_version = self.policies().version().to_owned();
        let loaded = match self.load_candidate() {
            Ok(set) => match crate::limits::prepare(store, &self.name, &set).await {
                Ok(_) => Ok(set),
                Err(e) => Err(vec![format!(
                    "the aggregate indexes of the new policies could not be built: {e}"
                )]),
            },
            Err(d) => Err(d),
        };
        self.install(loaded, old_version)
    }

    fn load_candidate(&self) -> Result<PolicySet, Vec<String>> {
        let fp = fingerprint(&self.policy_dir);
        if let Ok(mut f) = self.fingerprint.write() {
            *f = fp;
        }
        load(&self.policy_dir, &self.destinations).map_err(|err| plain_diagnostics(&err))
    }

    fn install(&self, loaded: Result<PolicySet, Vec<String>>, old_version: String) -> ReloadReport {
        match loaded {
            Ok(set) => {
                let version = set.version().to_owned();
                if let Ok(mut c) = self.current.write() {
                    *c = Arc::new(set);
                }
                if let Ok(mut e) = self.last_error.write() {
                    *e = None;
                }
                ReloadReport {
                    ok: true,
                    changed: version != old_version,
                    policy_version: version,
                    diagnostics: Vec::new(),
                }
            }
            Err(diagnostics) => {
                if let Ok(mut e) = self.last_error.write() {
                    *e = Some(diagnostics.clone());
                }
                ReloadReport {
                    ok: false,
                    changed: false,
                    policy_version: old_version,
                    diagnostics,
                }
            }
        }
    }
}
