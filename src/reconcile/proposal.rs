//! A proposal: the plan that makes the host hold what is wanted (a stack file's stack, a
//! saved plan's, or nothing for destroy), made by reading only, with what it was made
//! against. Whoever asked sees it before anything changes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::saved::SavedPlanFile;
use super::{Notice, Options, Progress, ReconcileError, Reconciler, Verb};
use crate::kernel::{HostNamespace, Kernel, Observation, Places, left_for_host, read_record};
use crate::model::Stack;
use crate::plan::{
    Drift, Listening, Plan, Program, Start, Stranded, Unready, Waiting, collisions, drift, plan as plan_operations,
    short_of_files, unusable_namespaces,
};
use crate::spec::{SourceFile, load};
use crate::state::{Desired, Scope, lower};

/// What is wanted of the host.
#[derive(Clone, Copy)]
pub enum Intent<'a> {
    /// What the stack file `file` declares.
    Apply { file: &'a Path, source: &'a SourceFile, stack: &'a Stack },
    /// A saved plan, only if planning again from its stack file and the host as it is
    /// gives that very plan (see [`crate::plan::SavedPlan::judge`]).
    Saved { saved: &'a SavedPlanFile, source: &'a SourceFile, stack: &'a Stack },
    /// Nothing of the stack.
    Destroy { stack: &'a Stack },
}

/// The host a proposal is for, as it is before any change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Exists,
    /// A scratch host that does not exist yet: reconciling creates it first, with its
    /// loopback up.
    Absent {
        name: String,
        path: PathBuf,
    },
    /// A scratch host that does not exist, which destroy finds the stack left these for
    /// (nothing: there is nothing to do): it creates the host again, empty, to remove
    /// them, and then deletes it.
    Left {
        name: String,
        path: PathBuf,
        left: Vec<PathBuf>,
    },
}

/// A plan to agree to, and what it was made against.
pub struct Proposal {
    pub verb: Verb,
    pub scope: Scope,
    pub plan: Plan,
    /// What changed outside stackctl since the last apply (apply only).
    pub drift: Vec<Drift>,
    pub host: Host,
    pub(super) observation: Observation,
    pub(super) options: Options,
}

impl Proposal {
    /// The program apply runs to make the plan, for the tables as observed (see
    /// [`Program`]): what `plan` prints under the plan.
    pub fn program(&self) -> Program {
        Program::of(&self.scope.stack, &self.plan, &self.observation.state, &self.observation.tables)
    }

    /// Whether there is nothing to do at all: destroy on a scratch host that does not
    /// exist and that the stack left nothing for.
    pub fn nothing_left(&self) -> bool {
        matches!(&self.host, Host::Left { left, .. } if left.is_empty())
    }
}

/// A proposal whose swap may start: what whoever asked agrees to.
pub struct Ready {
    pub(super) proposal: Proposal,
    /// The swap's new containers that do not accept yet: once wired, apply waits for each
    /// up to `within`.
    pub waits: Vec<Unready>,
    pub within: Duration,
}

impl Ready {
    /// Whether anything changes, so that agreement is needed.
    pub fn changes(&self) -> bool {
        !self.proposal.plan.is_empty()
    }

    pub fn verb(&self) -> Verb {
        self.proposal.verb
    }
}

impl Reconciler {
    /// Observes the host and plans what `intent` wants of it, changing nothing. What
    /// stops nothing is told to `progress` as it is found.
    pub fn propose(
        &self,
        intent: Intent,
        options: Options,
        progress: &dyn Progress,
    ) -> Result<Proposal, ReconcileError> {
        match intent {
            Intent::Apply { file, source, stack } => self.propose_apply(file, source, stack, options, progress),
            Intent::Saved { saved, source, stack } => {
                let proposal = self.propose_apply(saved.stack_file(), source, stack, options, progress)?;
                saved.judge(&proposal, source, stack)?;
                Ok(proposal)
            }
            Intent::Destroy { stack } => self.propose_destroy(stack, options, progress),
        }
    }

    fn propose_apply(
        &self,
        file: &Path,
        source: &SourceFile,
        stack: &Stack,
        options: Options,
        progress: &dyn Progress,
    ) -> Result<Proposal, ReconcileError> {
        let scope = self.scope(stack);
        self.refuse_leftovers(&scope, file)?;
        let observation = observe(self.kernel.as_ref(), &scope, &self.places)?;
        refuse_unusable(&scope, &observation)?;
        if let Some(short) = short_of_files(observation.file_limit) {
            return Err(ReconcileError::ShortOfFiles(short));
        }
        if !stack.networks.is_empty() {
            for chain in &observation.dropping_forward_chains {
                progress.notice(&Notice::DroppingForwardChain(chain.clone()));
            }
        }
        let desired = lower(stack, &observation.state, &observation.host).map_err(|error| {
            let diagnostic = load(source).ok().and_then(|spec| error.diagnostic(&spec)).map(Box::new);
            ReconcileError::Lowering { error, file: Box::new(source.clone()), diagnostic }
        })?;
        let mut plan = plan_operations(&desired, &observation.state);
        let collisions = collisions(&plan, &observation.foreign);
        if !collisions.is_empty() {
            return Err(ReconcileError::Collisions(collisions));
        }
        plan.stranded = Stranded::of(&plan, &observation.processes, options.fate);
        let drift = match &self.kernel {
            Some(kernel) => read_record(kernel.places(), &self.host, &scope.stack)
                .map(|record| drift(&record, &observation.state))
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let host = match self.absent() {
            Some((name, path)) => Host::Absent { name, path },
            None => Host::Exists,
        };
        Ok(Proposal { verb: Verb::Apply, scope, plan, drift, host, observation, options })
    }

    fn propose_destroy(
        &self,
        stack: &Stack,
        options: Options,
        progress: &dyn Progress,
    ) -> Result<Proposal, ReconcileError> {
        let scope = self.scope(stack);
        let observation = observe(self.kernel.as_ref(), &scope, &self.places)?;
        // Destroy does not read them, and changes nothing inside them.
        for refused in unusable_namespaces(&scope, &observation.adopted) {
            if refused.is_someone_elses() {
                progress.notice(&Notice::ForeignNamespace(refused));
            }
        }
        let mut plan = plan_operations(&Desired::nothing(&observation.host), &observation.state);
        plan.stranded = Stranded::of(&plan, &observation.processes, options.fate);
        let host = match self.absent() {
            Some((name, path)) => Host::Left { name, path, left: left_for_host(&self.places, &scope)? },
            None => Host::Exists,
        };
        Ok(Proposal { verb: Verb::Destroy, scope, plan, drift: Vec::new(), host, observation, options })
    }

    /// The scratch host's name and path when it does not exist.
    fn absent(&self) -> Option<(String, PathBuf)> {
        match (&self.kernel, &self.host) {
            (None, HostNamespace::Named(name)) => Some((name.clone(), self.places.netns.join(name))),
            _ => None,
        }
    }

    /// Refuses to plan for a scratch host that does not exist while the stack still has
    /// namespaces or files for it: the host was deleted without a destroy, and they would
    /// stop the apply. Destroy removes them.
    fn refuse_leftovers(&self, scope: &Scope, file: &Path) -> Result<(), ReconcileError> {
        let Some((host, netns)) = self.absent() else { return Ok(()) };
        let left = left_for_host(&self.places, scope)?;
        if left.is_empty() {
            return Ok(());
        }
        Err(ReconcileError::Leftovers { host, netns, stack: scope.stack.clone(), file: file.to_owned(), left })
    }

    /// Decides whether the proposal's swap may start, before anything changes: it may when
    /// its new containers accept now, or when apply may wait for them; otherwise it is
    /// refused.
    pub fn ready(&self, proposal: Proposal) -> Result<Ready, ReconcileError> {
        let within = proposal.options.wait.unwrap_or_default();
        let Some(swap) = proposal.plan.swap.as_ref().filter(|_| !proposal.plan.is_empty()) else {
            return Ok(Ready { proposal, waits: Vec::new(), within });
        };
        let listening = match &self.kernel {
            Some(kernel) => kernel.listening(swap)?,
            None => swap.verify.iter().map(|readiness| (readiness.container.clone(), Listening::NoNamespace)).collect(),
        };
        let waiting = if within.is_zero() { Waiting::Forbidden } else { Waiting::Allowed };
        match swap.start(&listening, waiting) {
            Start::Ready => Ok(Ready { proposal, waits: Vec::new(), within }),
            Start::AfterWaiting(waits) => Ok(Ready { proposal, waits, within }),
            Start::Refused(problems) => Err(ReconcileError::SwapRefused {
                aliases: swap.moves.iter().map(|moved| format!("`{}` on `{}`", moved.alias, moved.network)).collect(),
                problems,
            }),
        }
    }
}

/// The stack's objects as they are; on a scratch host that does not exist, those it has
/// beside it (see [`Kernel::observe_absent`]).
pub(super) fn observe(kernel: Option<&Kernel>, scope: &Scope, places: &Places) -> Result<Observation, ReconcileError> {
    Ok(match kernel {
        Some(kernel) => kernel.observe(scope)?,
        None => Kernel::observe_absent(scope, places)?,
    })
}

/// Refuses the containers whose adopted namespace is gone or is not theirs to use (no
/// network namespace, a host's, another container's): nothing of theirs can be planned,
/// shown or probed, and nothing has changed yet.
pub(super) fn refuse_unusable(scope: &Scope, observation: &Observation) -> Result<(), ReconcileError> {
    let unusable = unusable_namespaces(scope, &observation.adopted);
    if unusable.is_empty() { Ok(()) } else { Err(ReconcileError::UnusableNamespaces(unusable)) }
}
