//! The one way a stack is reconciled with a host, between the command line and the
//! kernel: observe, lower, plan, check collisions ([`Reconciler::propose`]); then, once
//! whoever asked agrees, lock, observe again, check nothing changed, apply, record
//! ([`Reconciler::reconcile`]); and probe what was made ([`Reconciler::check`]). `plan`,
//! `apply`, `apply PLAN` and `destroy` all go this way, and so can a loop that runs
//! without a terminal: nothing here prints or reads standard input. What a person must
//! be told comes back as values, as it happens through [`Progress`], and failures as a
//! [`ReconcileError`] that says whether trying again can help.
//!
//! Nothing is changed before the agreement: proposing only reads (a scratch host that
//! does not exist yet is read as empty, not created). Reconciling creates the scratch
//! host if needed, takes the stack's lock, reads the stack's objects again and goes on
//! only if they are still those the proposal was made against.

// It speaks through values and `Progress`, never to a terminal itself.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod apply;
mod error;
mod proposal;
mod saved;
mod verify;

pub use error::{Lock, ReconcileError, Retry};
pub use proposal::{Host, Intent, Proposal, Ready};
pub use saved::SavedPlanFile;

use std::time::Duration;

use crate::kernel::{Drained, HostNamespace, Kernel, LockHolder, Pacing, Places, has_privileges, left_for_host};
use crate::model::Stack;
use crate::plan::{Fate, Operation, Plan, Process, Readiness, Stranded, Swap, UnusableNamespace};
use crate::state::{KernelState, Scope};

/// What a reconcile is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Make the host hold what the stack declares.
    Apply,
    /// Remove everything of the stack from the host.
    Destroy,
}

impl Verb {
    pub fn word(self) -> &'static str {
        match self {
            Verb::Apply => "apply",
            Verb::Destroy => "destroy",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Verb::Apply => "Apply",
            Verb::Destroy => "Destroy",
        }
    }
}

/// What a reconcile tells as it goes, for whoever runs it to show: a terminal, a log.
/// Called from the threads that make the changes, so it is `Sync`.
pub trait Progress: Sync {
    /// Something that stops nothing, when it is found.
    fn notice(&self, notice: &Notice);
    /// A lock is busy, held by `holder` when the kernel says who; it is waited for up to
    /// `within`.
    fn waiting_for_lock(&self, lock: &Lock, holder: Option<&LockHolder>, within: Duration);
    /// A swap's new container does not accept on a port yet; it is waited for up to
    /// `within` before the aliases move.
    fn waiting_for_container(&self, readiness: &Readiness, within: Duration);
}

/// What a reconcile says that stops nothing.
#[derive(Debug)]
pub enum Notice {
    /// Another table's forward chain drops what the stack's networks route.
    DroppingForwardChain(String),
    /// An adopted namespace that is somebody else's: destroy leaves what is inside it.
    ForeignNamespace(UnusableNamespace),
    /// The apply record could not be written: the next plan sees drift that is not.
    RecordNotKept { stack: String, error: std::io::Error },
    /// `check`'s probes run in rounds, so that the kernel's neighbour table holds them.
    Pacing(Pacing),
}

/// What an apply made, also when it stopped part way.
#[derive(Debug)]
pub struct Made {
    /// The operations made, in order.
    pub done: Plan,
    /// How many operations the plan had.
    pub planned: usize,
    /// How the containers that a swap's aliases left drained.
    pub drained: Vec<Drained>,
    /// The processes in the namespaces the plan deletes, and what became of them.
    pub stranded: Stranded,
    /// The plan's swap, if it had one.
    pub swap: Option<Swap>,
}

impl Made {
    /// The processes in each namespace that was deleted, by container.
    pub fn stranded_in_deleted(&self) -> impl Iterator<Item = (&str, &[Process])> {
        self.done.operations.iter().filter_map(|operation| {
            let Operation::Delete { resource: crate::state::Resource::Namespace(namespace) } = operation else {
                return None;
            };
            let processes = self.stranded.processes.get(&namespace.container)?;
            Some((namespace.container.as_str(), processes.as_slice()))
        })
    }

    /// The aliases of a swap that stopped before its repoint, with the backends they still
    /// point at; `None` when there was no swap or its aliases moved.
    pub fn unmoved(&self) -> Option<Vec<String>> {
        let swap = self.swap.as_ref().filter(|swap| !swap.repointed(self.done.operations.len()))?;
        Some(swap.moves.iter().map(|moved| moved.from.join(", ")).collect())
    }
}

/// What a reconcile did.
#[derive(Debug)]
pub struct Report {
    pub verb: Verb,
    /// What it made; `None` when the plan was empty.
    pub made: Option<Made>,
    /// The scratch host that destroy created only to remove what a stack had left beside
    /// it, and deleted again.
    pub deleted_host: Option<String>,
}

/// A session with one host: the kernel, once connected, and where stackctl keeps its
/// files.
pub struct Reconciler {
    host: HostNamespace,
    places: Places,
    /// `None` for a scratch host that does not exist (yet).
    kernel: Option<Kernel>,
}

impl Reconciler {
    /// Connects to `host` when it exists; a scratch host that does not is read as empty
    /// until a reconcile creates it.
    pub fn open(host: HostNamespace) -> Result<Reconciler, ReconcileError> {
        if !has_privileges() {
            return Err(ReconcileError::Privilege);
        }
        let places = Places::system();
        let kernel = Kernel::open(&host, places.clone())?;
        Ok(Reconciler { host, places, kernel })
    }

    /// Whether the host exists: a scratch host exists once a reconcile created it.
    pub fn host_exists(&self) -> bool {
        self.kernel.is_some()
    }

    fn scope(&self, stack: &Stack) -> Scope {
        Scope::of(stack, &self.host)
    }

    /// The kernel of a host that must exist, for what reads or probes what runs.
    fn existing(&self, stack: &Stack) -> Result<&Kernel, ReconcileError> {
        self.kernel.as_ref().ok_or_else(|| self.not_applied(stack))
    }

    /// The stack's objects as they run, for `show`: refused when they are not there.
    pub fn applied_state(&self, stack: &Stack) -> Result<KernelState, ReconcileError> {
        let kernel = self.existing(stack)?;
        let scope = self.scope(stack);
        let observation = kernel.observe(&scope)?;
        proposal::refuse_unusable(&scope, &observation)?;
        if observation.state.is_empty() {
            return Err(self.not_applied(stack));
        }
        Ok(observation.state)
    }

    /// Why a stack cannot be shown or probed: not applied, or applied on a scratch host
    /// that was deleted by hand and left the stack's namespaces and files behind (destroy
    /// removes them; apply refuses until then).
    fn not_applied(&self, stack: &Stack) -> ReconcileError {
        if let HostNamespace::Named(name) = &self.host
            && left_for_host(&self.places, &self.scope(stack)).is_ok_and(|left| !left.is_empty())
        {
            return ReconcileError::LeftForDeletedHost { host: name.clone(), stack: stack.name.clone() };
        }
        ReconcileError::NotApplied { stack: stack.name.clone(), host: self.host.clone() }
    }
}

/// What a proposal is made with besides the stack.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// What happens to the processes in the namespaces the plan deletes.
    pub fate: Fate,
    /// How long a swap waits for its new containers once they are wired: `None` or zero
    /// for not at all, which refuses a swap whose containers do not accept yet.
    pub wait: Option<Duration>,
    /// How long the locks are waited for.
    pub lock_timeout: Duration,
}
