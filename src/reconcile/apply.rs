//! A reconcile once whoever asked agreed: create the scratch host if needed, lock, check
//! that the stack's objects are still those the proposal was made against, make the plan,
//! keep the record; for destroy, remove the files the stack kept and delete a scratch host
//! that destroy created only to empty it.

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use super::proposal::{Host, observe, refuse_unusable};
use super::{Lock, Made, Notice, Progress, Proposal, Ready, ReconcileError, Reconciler, Report, Verb};
use crate::kernel::{ApplyLock, HostNamespace, Kernel, Places, SwapWait, remove_files, write_record};
use crate::plan::{
    Operation, Plan, Readiness, Stranded, changes_what_stacks_share, record_after, record_after_failure, subnet_clashes,
};
use crate::state::{Scope, fingerprint};

impl Reconciler {
    /// Runs a reconcile that was agreed to: the one way anything of a stack changes on a
    /// host. Takes the host's locks for the time they are needed, and tells `progress`
    /// what it waits for.
    pub fn reconcile(&mut self, ready: Ready, progress: &dyn Progress) -> Result<Report, ReconcileError> {
        let mut report = Report { verb: ready.verb(), made: None, deleted_host: None };
        if ready.proposal.nothing_left() {
            return Ok(report);
        }
        let Proposal { verb, scope, plan, host, observation, options, .. } = ready.proposal;
        if !plan.is_empty() {
            let kernel = match self.kernel.take() {
                Some(kernel) => kernel,
                None => Kernel::open_or_create(&self.host, self.places.clone())?,
            };
            let kernel = self.kernel.insert(kernel);
            let agreed = Agreed { verb, scope: &scope, observed: &observation, plan, wait: options.wait };
            report.made = Some(agreed.make(kernel, &self.host, options.lock_timeout, progress)?);
        }
        if verb == Verb::Destroy && self.remove_files(&scope, options.lock_timeout, progress)? {
            // Created again only to remove what the stack had left.
            if let (Host::Left { name, .. }, Some(kernel)) = (&host, self.kernel.take()) {
                kernel.delete_host()?;
                report.deleted_host = Some(name.clone());
            }
        }
        Ok(report)
    }

    /// Once destroy has removed the stack's objects: removes the files the stack kept for
    /// the host, under its lock, unless something of the stack is there again (another
    /// apply came between), and the lock's file last. Says whether it removed them.
    fn remove_files(&self, scope: &Scope, timeout: Duration, progress: &dyn Progress) -> Result<bool, ReconcileError> {
        let lock = stack_lock(&self.places, &self.host, &scope.stack, timeout, progress)?;
        let now = observe(self.kernel.as_ref(), scope, &self.places)?;
        if !now.state.is_released() {
            return Ok(false);
        }
        remove_files(&self.places, scope, lock)?;
        Ok(true)
    }
}

/// A plan agreed to, and what it was made against.
struct Agreed<'a> {
    verb: Verb,
    scope: &'a Scope,
    observed: &'a crate::kernel::Observation,
    plan: Plan,
    wait: Option<Duration>,
}

impl Agreed<'_> {
    /// Makes the plan if the stack's objects are still those it was made against, and
    /// keeps the record of what it made.
    fn make(
        self,
        kernel: &Kernel,
        host: &HostNamespace,
        lock_timeout: Duration,
        progress: &dyn Progress,
    ) -> Result<Made, ReconcileError> {
        let Agreed { verb, scope, observed, mut plan, wait } = self;
        let places = kernel.places();
        let _lock = stack_lock(places, host, &scope.stack, lock_timeout, progress)?;
        // What the stacks of a host share (subnets, the host's settings, the bridges that
        // hold them) changes one apply or destroy at a time: every stack's apply checks its
        // new subnets against the others' and makes its bridges, and a setting is given
        // back only if no other stack came to need it meanwhile: from here until its
        // bridges are made and its record says what it holds.
        let subnets_lock = match changes_what_stacks_share(&plan) {
            true => Some(take_lock(&places.subnets_lock(host), Lock::Subnets, lock_timeout, progress)?),
            false => None,
        };
        let now = kernel.observe(scope)?;
        if fingerprint(&now.state) != fingerprint(&observed.state)
            || (subnets_lock.is_some() && now.host.settings != observed.host.settings)
        {
            return Err(ReconcileError::Changed { verb });
        }
        if verb == Verb::Apply {
            refuse_unusable(scope, &now)?;
            let clashes = subnet_clashes(&plan, &now.host.used_subnets);
            if !clashes.is_empty() {
                return Err(ReconcileError::SubnetClashes(clashes));
            }
        }
        // The processes as they are now: those started since the plan was shown too.
        plan.stranded = Stranded::of(&plan, &now.processes, plan.stranded.fate);
        // The same objects as planned against (their fingerprint says so), read under the
        // lock, with the tables' chains and sets as they are now.
        let observed = &now.state;
        let keep_record = |record| {
            if let Err(error) = write_record(places, host, &scope.stack, &record) {
                progress.notice(&Notice::RecordNotKept { stack: scope.stack.clone(), error });
            }
        };
        let waiting = |readiness: &Readiness, within: Duration| progress.waiting_for_container(readiness, within);
        // A swap's first phase made its bridges: other stacks may take subnets while it waits.
        let subnets_lock = RefCell::new(subnets_lock);
        let made = |done: &[Operation]| {
            subnets_lock.borrow_mut().take();
            keep_record(record_after(observed, done));
        };
        let applied = kernel.apply(scope, &now, &plan, &SwapWait { within: wait, waiting: &waiting, made: &made });
        keep_record(match &applied.failed {
            None => record_after(observed, &applied.done),
            // What a failed operation made in part is the apply's, not a change outside.
            Some(_) => match kernel.observe(scope) {
                Ok(after) => record_after_failure(observed, &applied.done, &after.state),
                Err(_) => record_after(observed, &applied.done),
            },
        });
        let made = Made {
            done: Plan { operations: applied.done, ..Plan::default() },
            planned: plan.operations.len(),
            drained: applied.drained,
            stranded: plan.stranded,
            swap: plan.swap,
        };
        match applied.failed {
            None => Ok(made),
            Some(error) => Err(ReconcileError::ApplyFailed { error, made: Box::new(made) }),
        }
    }
}

/// The stack's lock on `host`, in stackctl's run directory, made if needed.
fn stack_lock(
    places: &Places,
    host: &HostNamespace,
    stack: &str,
    timeout: Duration,
    progress: &dyn Progress,
) -> Result<ApplyLock, ReconcileError> {
    places.run_directory(host).map_err(|source| ReconcileError::RunDirectory { path: places.state.clone(), source })?;
    take_lock(&places.lock(host, stack), Lock::Stack(stack.to_owned()), timeout, progress)
}

/// Takes the lock at `path`, telling `progress` when it has to wait for it, and failing
/// when `timeout` passes first.
fn take_lock(path: &Path, lock: Lock, timeout: Duration, progress: &dyn Progress) -> Result<ApplyLock, ReconcileError> {
    ApplyLock::acquire(path, timeout, |holder| progress.waiting_for_lock(&lock, holder, timeout))
        .map_err(|source| ReconcileError::LockBusy { lock, source })
}
