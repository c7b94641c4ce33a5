//! What stops a reconcile: what failed, on which object, and whether trying again can help.
//! Each error is a value, so that the command line prints it and picks its exit code in
//! one place (`cli/exit.rs`), and a loop that reconciles without a terminal decides from
//! [`ReconcileError::retry`] whether to try again.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use super::{Made, Verb};
use crate::diagnostic::Diagnostic;
use crate::kernel::{HostNamespace, KernelError, LockError};
use crate::plan::{Collision, Refusal, SAVED_PLAN_VERSION, ShortOfFiles, SubnetClash, Unready, UnusableNamespace};
use crate::spec::SourceFile;
use crate::state::LowerError;

/// Whether trying again can help, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Never as asked: the request itself is wrong (a saved plan tampered with or for
    /// another host, a process without the privilege).
    Never,
    /// Once somebody changes the stack file or the host (frees a name, starts a
    /// container, runs a destroy): trying again before gives the same error.
    AfterChange,
    /// Planning again, at once: what the plan was made against changed meanwhile.
    Replan,
    /// The same, later: something that another process holds or the kernel is busy with.
    Later,
}

/// A lock that a reconcile takes, and waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lock {
    /// The stack's own: one apply or destroy of a stack at a time on a host.
    Stack(String),
    /// The host's subnets lock: one stack at a time picks and makes subnets.
    Subnets,
}

impl Lock {
    /// Who holds it while it is busy.
    pub fn holder(&self) -> String {
        match self {
            Lock::Stack(stack) => format!("another apply of stack `{stack}`"),
            Lock::Subnets => "another stack's apply".to_owned(),
        }
    }

    /// What its holder does until it lets it go.
    pub fn until(&self) -> &'static str {
        match self {
            Lock::Stack(_) => "finish",
            Lock::Subnets => "make its networks",
        }
    }
}

#[derive(Debug, Error)]
pub enum ReconcileError {
    #[error(
        "reading and changing network namespaces needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): run stackctl with \
         sudo, or review changes without root with `stackctl diff`"
    )]
    Privilege,
    /// The kernel refused or failed an operation that is no part of a plan's changes.
    #[error("{error}{}", if error.is_permission() { ": stackctl needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)" } else { "" })]
    Kernel {
        #[from]
        error: KernelError,
    },
    /// The stack is valid, but the host leaves no room for it: `diagnostic` places the
    /// error in the stack file when it is about something written there.
    #[error("{error}")]
    Lowering { error: LowerError, file: Box<SourceFile>, diagnostic: Option<Box<Diagnostic>> },
    /// Containers whose adopted namespace is gone or is not theirs to use.
    #[error("{}", joined(.0))]
    UnusableNamespaces(Vec<UnusableNamespace>),
    /// Names the plan would give that foreign interfaces hold.
    #[error("{}", joined(.0))]
    Collisions(Vec<Collision>),
    /// New subnets that another stack took while the plan was shown.
    #[error("{}; nothing was changed: run `stackctl apply` again to plan other subnets", joined(.0))]
    SubnetClashes(Vec<SubnetClash>),
    #[error("{0}")]
    ShortOfFiles(ShortOfFiles),
    /// A scratch host deleted without a destroy, whose stack's namespaces or files remain.
    #[error(
        "the scratch host `{host}` ({}) does not exist, but stack `{stack}` still has namespaces or files for it (was \
         the host deleted without `stackctl destroy`?), so nothing was changed: run `stackctl --host-netns {host} -f \
         {} destroy` first, which removes them: {}",
        netns.display(),
        file.display(),
        listed(.left)
    )]
    Leftovers { host: String, netns: PathBuf, stack: String, file: PathBuf, left: Vec<PathBuf> },
    /// What `show` and `check` found of a stack that another command would have to apply.
    #[error("stack `{stack}` is not applied on {}: `stackctl apply` creates it", on(host))]
    NotApplied { stack: String, host: HostNamespace },
    #[error(
        "the scratch host `{host}` does not exist, but stack `{stack}` still has namespaces or files for it: \
         `stackctl --host-netns {host} destroy` removes them"
    )]
    LeftForDeletedHost { host: String, stack: String },
    #[error(
        "stack `{stack}` is not applied on this host: no namespace for container(s) {}; run `stackctl apply` first",
        containers.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
    )]
    Unprobed { stack: String, containers: Vec<String> },
    /// A swap whose new containers cannot take the aliases now, when apply may not wait.
    #[error(
        "the swap of {} {} cannot start, so nothing was changed: {}",
        if aliases.len() == 1 { "alias" } else { "aliases" },
        aliases.join(", "),
        joined(.problems)
    )]
    SwapRefused { aliases: Vec<String>, problems: Vec<Unready> },
    #[error("cannot make stackctl's run directory {}: {source}", path.display())]
    RunDirectory { path: PathBuf, source: io::Error },
    #[error("{} did not {}: {source}", lock.holder(), lock.until())]
    LockBusy { lock: Lock, source: LockError },
    /// The stack's objects changed between the plan and the lock.
    #[error(
        "the stack's objects on this host changed while the plan was shown (another apply?), so nothing was \
         changed: run `stackctl {}` again",
        verb.word()
    )]
    Changed { verb: Verb },
    /// The apply stopped at `error`; `made` says what it made before.
    #[error("{error}")]
    ApplyFailed { error: KernelError, made: Box<Made> },
    #[error("cannot read plan `{}`: {source}", path.display())]
    SavedUnreadable { path: PathBuf, source: io::Error },
    #[error("`{}` is not a plan saved by `stackctl plan --out`: {source}", path.display())]
    NotAPlan { path: PathBuf, source: serde_json::Error },
    #[error(
        "plan `{}` has format version {version}, this stackctl reads version {SAVED_PLAN_VERSION}: run `stackctl \
         plan --out` again",
        path.display()
    )]
    SavedVersion { path: PathBuf, version: u32 },
    #[error(
        "plan `{}` was made for {}, and this is the scratch host `{this}`: apply it without `--host-netns` (it names \
         its own host), or plan again for this one",
        path.display(),
        host_made_for(made_for)
    )]
    SavedForAnotherHost { path: PathBuf, made_for: HostNamespace, this: String },
    /// A saved plan that planning again does not give: stale, or tampered with.
    #[error("{}", refused(path, refusal))]
    SavedRefused { path: PathBuf, refusal: Refusal },
    #[error("cannot write plan `{}`: {source}", path.display())]
    SavedUnwritable { path: PathBuf, source: io::Error },
}

impl ReconcileError {
    /// Whether trying again can help, and when.
    pub fn retry(&self) -> Retry {
        match self {
            ReconcileError::Privilege
            | ReconcileError::NotAPlan { .. }
            | ReconcileError::SavedVersion { .. }
            | ReconcileError::SavedForAnotherHost { .. }
            | ReconcileError::SavedRefused { refusal: Refusal::Tampered(_), .. } => Retry::Never,
            ReconcileError::Kernel { error } | ReconcileError::ApplyFailed { error, .. } => kernel_retry(error),
            ReconcileError::Changed { .. }
            | ReconcileError::SubnetClashes(_)
            | ReconcileError::SavedRefused { refusal: Refusal::Stale(_), .. } => Retry::Replan,
            ReconcileError::LockBusy { source: LockError::Timeout { .. }, .. } => Retry::Later,
            ReconcileError::Lowering { .. }
            | ReconcileError::UnusableNamespaces(_)
            | ReconcileError::Collisions(_)
            | ReconcileError::ShortOfFiles(_)
            | ReconcileError::Leftovers { .. }
            | ReconcileError::NotApplied { .. }
            | ReconcileError::LeftForDeletedHost { .. }
            | ReconcileError::Unprobed { .. }
            | ReconcileError::SwapRefused { .. }
            | ReconcileError::RunDirectory { .. }
            | ReconcileError::LockBusy { .. }
            | ReconcileError::SavedUnreadable { .. }
            | ReconcileError::SavedUnwritable { .. } => Retry::AfterChange,
        }
    }
}

/// A kernel that is busy may do it later; one that refused for lack of privilege never
/// will for this process; anything else needs a change first.
fn kernel_retry(error: &KernelError) -> Retry {
    if error.is_permission() {
        Retry::Never
    } else if error.is_transient() {
        Retry::Later
    } else {
        Retry::AfterChange
    }
}

fn joined(items: &[impl std::fmt::Display]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Paths, one after another.
pub(super) fn listed(paths: &[PathBuf]) -> String {
    paths.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn on(host: &HostNamespace) -> String {
    match host {
        HostNamespace::Current => "this host".to_owned(),
        HostNamespace::Named(name) => format!("the scratch host `{name}`, which does not exist yet"),
    }
}

fn host_made_for(host: &HostNamespace) -> String {
    match host {
        HostNamespace::Current => "the machine's own host".to_owned(),
        HostNamespace::Named(name) => format!("the scratch host `{name}`"),
    }
}

/// Why a saved plan is not applied, and what to do: plan again, or look at the file.
fn refused(path: &std::path::Path, refusal: &Refusal) -> String {
    let path = path.display();
    match refusal {
        Refusal::Stale(staleness) => {
            format!("stale plan `{path}`: {staleness}; nothing was changed: run `stackctl plan --out {path}` again")
        }
        Refusal::Tampered(tampering) => format!(
            "plan `{path}` was tampered with: {tampering}; nothing was changed: apply the stack file, or run \
             `stackctl plan --out` again and review what it saves"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Staleness, Tampering};

    fn kernel(errno: nix::errno::Errno) -> KernelError {
        KernelError::new("create", "bridge `front`", io::Error::from_raw_os_error(errno as i32))
    }

    #[test]
    fn a_busy_kernel_is_retried_later_and_a_refusing_one_never() {
        use nix::errno::Errno;
        assert_eq!(ReconcileError::from(kernel(Errno::EBUSY)).retry(), Retry::Later);
        assert_eq!(ReconcileError::from(kernel(Errno::EAGAIN)).retry(), Retry::Later);
        assert_eq!(ReconcileError::from(kernel(Errno::EPERM)).retry(), Retry::Never);
        assert_eq!(ReconcileError::from(kernel(Errno::EEXIST)).retry(), Retry::AfterChange);
    }

    #[test]
    fn a_stale_saved_plan_is_planned_again_and_a_tampered_one_never_applies() {
        let path = PathBuf::from("plan.json");
        let stale = ReconcileError::SavedRefused { path: path.clone(), refusal: Refusal::Stale(Staleness::Objects) };
        assert_eq!(stale.retry(), Retry::Replan);
        let file = "stack.yaml".to_owned();
        let tampered = ReconcileError::SavedRefused { path, refusal: Refusal::Tampered(Tampering::Scope { file }) };
        assert_eq!(tampered.retry(), Retry::Never);
        assert_eq!(ReconcileError::Changed { verb: Verb::Apply }.retry(), Retry::Replan);
    }

    #[test]
    fn a_kernel_refusal_for_privilege_says_what_stackctl_needs() {
        let error = ReconcileError::from(kernel(nix::errno::Errno::EACCES));
        assert_eq!(
            error.to_string(),
            "create bridge `front`: Permission denied (os error 13): stackctl needs root (CAP_NET_ADMIN and \
             CAP_SYS_ADMIN)"
        );
    }
}
