//! Saved plans: writing one from a proposal, and reading and judging one. Nothing a saved
//! plan holds reaches the kernel: its names are checked first, then the plan is made
//! again from the stack file it names and the host as it is, and only that plan is run,
//! and only when it is the saved one.

use std::path::{Path, PathBuf};

use super::{Proposal, ReconcileError};
use crate::kernel::{Access, HostNamespace, write_file};
use crate::model::Stack;
use crate::plan::{
    Rederived, Refusal, SAVED_PLAN_VERSION, STACK_FILE_LIMIT, SavedPlan, Tampering, plan as plan_operations,
    stack_digest,
};
use crate::spec::SourceFile;
use crate::state::{fingerprint, lower};

/// A saved plan read from its file, whose names are checked and whose stack file is one a
/// stack file can be.
pub struct SavedPlanFile {
    path: PathBuf,
    saved: SavedPlan,
}

/// The format version of a saved plan, read before the rest, whose shape it says.
#[derive(serde::Deserialize)]
struct SavedVersion {
    format_version: u32,
}

impl SavedPlanFile {
    /// Reads the plan at `path`, to apply on `host` (the one flagged, which a plan made for
    /// another refuses).
    pub fn read(path: &Path, host: &HostNamespace) -> Result<SavedPlanFile, ReconcileError> {
        let text =
            std::fs::read(path).map_err(|source| ReconcileError::SavedUnreadable { path: path.to_owned(), source })?;
        let not_a_plan = |source| ReconcileError::NotAPlan { path: path.to_owned(), source };
        let version: SavedVersion = serde_json::from_slice(&text).map_err(not_a_plan)?;
        if version.format_version != SAVED_PLAN_VERSION {
            return Err(ReconcileError::SavedVersion { path: path.to_owned(), version: version.format_version });
        }
        let saved: SavedPlan = serde_json::from_slice(&text).map_err(not_a_plan)?;
        let tampered =
            |tampering| ReconcileError::SavedRefused { path: path.to_owned(), refusal: Refusal::Tampered(tampering) };
        if let Some(tampering) = saved.misnamed() {
            return Err(tampered(tampering));
        }
        if let HostNamespace::Named(this) = host
            && saved.host() != *host
        {
            return Err(ReconcileError::SavedForAnotherHost {
                path: path.to_owned(),
                made_for: saved.host(),
                this: this.clone(),
            });
        }
        // The plan names the file it is read with: only a regular one of a stack file's
        // size, so that a plan edited to name a FIFO or a device neither hangs nor fills
        // memory (`stat` does not open it).
        match std::fs::metadata(&saved.stack_file) {
            Ok(metadata) if metadata.is_file() && metadata.len() <= STACK_FILE_LIMIT => {}
            _ => {
                let file = saved.stack_file.clone();
                return Err(tampered(Tampering::StackFile { file, limit: STACK_FILE_LIMIT }));
            }
        }
        Ok(SavedPlanFile { path: path.to_owned(), saved })
    }

    /// The stack file the plan was made from.
    pub fn stack_file(&self) -> &Path {
        Path::new(&self.saved.stack_file)
    }

    /// The host the plan was made for.
    pub fn host(&self) -> HostNamespace {
        self.saved.host()
    }

    /// Refuses `proposal`, made again from the stack file and the host as it is, unless it
    /// is the saved plan: as stale, or as tampered with (see [`SavedPlan::judge`]).
    pub(super) fn judge(&self, proposal: &Proposal, source: &SourceFile, stack: &Stack) -> Result<(), ReconcileError> {
        let observed = &proposal.observation.state;
        let from_saved_facts =
            lower(stack, observed, &self.saved.host_facts).ok().map(|desired| plan_operations(&desired, observed));
        let now = Rederived {
            stack_digest: &stack_digest(&source.text),
            scope: &proposal.scope,
            fingerprint: &fingerprint(observed),
            from_saved_facts: from_saved_facts.as_ref(),
            from_live_facts: &proposal.plan,
        };
        self.saved.judge(&now).map_err(|refusal| ReconcileError::SavedRefused { path: self.path.clone(), refusal })
    }
}

impl Proposal {
    /// Writes the proposal to `out` as a saved plan of the stack file `file` (read as
    /// `source`), root's alone.
    pub fn save(&self, file: &Path, source: &SourceFile, out: &Path) -> Result<(), ReconcileError> {
        // Absolute, so that apply reads the same file from any directory.
        let stack_file = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
        let saved = SavedPlan {
            format_version: SAVED_PLAN_VERSION,
            stack_file: stack_file.display().to_string(),
            stack_digest: stack_digest(&source.text),
            host_netns: match &self.scope.host {
                HostNamespace::Current => None,
                HostNamespace::Named(name) => Some(name.clone()),
            },
            scope: self.scope.clone(),
            fingerprint: fingerprint(&self.observation.state),
            host_facts: self.observation.host.clone(),
            plan: self.plan.clone(),
        };
        let json = serde_json::to_vec_pretty(&saved).expect("a plan serializes");
        write_file(out, &json, Access::RootOnly)
            .map_err(|source| ReconcileError::SavedUnwritable { path: out.to_owned(), source })
    }
}
