//! Exit codes, a contract with scripts and pipelines.

use std::process::ExitCode;

use crate::plan::Refusal;
use crate::reconcile::ReconcileError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// An error other than the ones below.
    Error = 1,
    /// There are changes (only with `--detailed-exitcode`).
    Changes = 2,
    /// The command line is wrong (clap's own default of 2 is remapped: 2 means changes).
    Usage = 64,
    /// The stack file is invalid, or a saved plan was tampered with: it holds what its stack
    /// file does not give.
    InvalidInput = 65,
    /// A saved plan is stale: its stack file, the stack's objects or the host changed since
    /// it was made (sysexits' "temporary failure": planning again gives a good one).
    StalePlan = 75,
    /// The live kernel needs root (or `CAP_NET_ADMIN` and `CAP_SYS_ADMIN`).
    NoPrivilege = 77,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// The exit code of each way a reconcile fails: the one place that decides them.
impl From<&ReconcileError> for Exit {
    fn from(error: &ReconcileError) -> Exit {
        match error {
            ReconcileError::Privilege => Exit::NoPrivilege,
            ReconcileError::Kernel { error } if error.is_permission() => Exit::NoPrivilege,
            // A declared subnet that the host uses: an error in the file, placed in it.
            ReconcileError::Lowering { diagnostic: Some(_), .. } => Exit::InvalidInput,
            ReconcileError::SavedRefused { refusal: Refusal::Stale(_), .. } => Exit::StalePlan,
            ReconcileError::SavedRefused { refusal: Refusal::Tampered(_), .. } => Exit::InvalidInput,
            // Listed, not matched by a wildcard: a new way to fail is given its code here.
            ReconcileError::Kernel { .. }
            | ReconcileError::Lowering { diagnostic: None, .. }
            | ReconcileError::UnusableNamespaces(_)
            | ReconcileError::Collisions(_)
            | ReconcileError::SubnetClashes(_)
            | ReconcileError::ShortOfFiles(_)
            | ReconcileError::Leftovers { .. }
            | ReconcileError::NotApplied { .. }
            | ReconcileError::LeftForDeletedHost { .. }
            | ReconcileError::Unprobed { .. }
            | ReconcileError::SwapRefused { .. }
            | ReconcileError::RunDirectory { .. }
            | ReconcileError::LockBusy { .. }
            | ReconcileError::Changed { .. }
            | ReconcileError::ApplyFailed { .. }
            | ReconcileError::SavedUnreadable { .. }
            | ReconcileError::NotAPlan { .. }
            | ReconcileError::SavedVersion { .. }
            | ReconcileError::SavedForAnotherHost { .. }
            | ReconcileError::SavedUnwritable { .. } => Exit::Error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::KernelError;
    use crate::plan::{Staleness, Tampering};

    #[test]
    fn saved_plans_privilege_and_the_rest_keep_their_codes() {
        let path = std::path::PathBuf::from("plan.json");
        let refused = |refusal| ReconcileError::SavedRefused { path: path.clone(), refusal };
        let tampered = Refusal::Tampered(Tampering::Scope { file: "stack.yaml".to_owned() });
        let denied = KernelError::new("read", "the host namespace", std::io::Error::from_raw_os_error(1));
        let cases = [
            (refused(Refusal::Stale(Staleness::Host)), Exit::StalePlan),
            (refused(tampered), Exit::InvalidInput),
            (ReconcileError::Privilege, Exit::NoPrivilege),
            (ReconcileError::from(denied), Exit::NoPrivilege),
            (ReconcileError::Changed { verb: crate::reconcile::Verb::Destroy }, Exit::Error),
        ];
        for (error, exit) in cases {
            assert_eq!(Exit::from(&error), exit, "{error}");
        }
    }
}
