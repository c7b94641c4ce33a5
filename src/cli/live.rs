//! The commands on the live kernel: plan, apply, destroy, show and exec. Each reads the
//! stack, observes the kernel, calls the core for the plan, and hands it to the adapters.
//!
//! Nothing is changed before the user agrees: `plan`, and `apply` up to its question,
//! only read (a scratch host that does not exist yet is read as empty, not created). Once
//! the user agrees, apply creates the scratch host if needed, takes the stack's lock,
//! reads the stack's objects again and goes on only if they are still those the plan was
//! made against.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::output::Style;
use super::stackfile::{Findings, load_stack, report_in_file};
use super::{Exit, ShowFormat};
use crate::kernel::{
    Access, ApplyLock, HostNamespace, Kernel, KernelError, Observation, Places, SwapWait, enter, has_privileges,
    left_for_host, read_record, remove_files, serve_names, write_file, write_record,
};
use crate::model::{Attachment, Stack};
use crate::plan::{
    Fate, Listening, Marks, Operation, Plan, Program, Readiness, Rederived, Refusal, SAVED_PLAN_VERSION,
    STACK_FILE_LIMIT, SavedPlan, Start, Stranded, Swap, Tampering, Unready, Waiting, collisions, drift, new_subnets,
    plan as plan_operations, record_after, record_after_failure, render_drift, render_operations, render_steps,
    render_text, short_of_files, stack_digest, subnet_clashes, unusable_namespaces,
};
use crate::show::{Topology, render_table};
use crate::spec::{SourceFile, load};
use crate::state::{Desired, NamespaceName, Resource, Scope, fingerprint, lower};

/// What the live commands share: which namespace plays the host, and how output looks.
pub struct Live {
    pub host: HostNamespace,
    pub style: Style,
}

/// The end of a command that went wrong: a message has been printed.
type Outcome<T> = Result<T, Exit>;

pub(super) fn fail(message: impl std::fmt::Display) -> Exit {
    eprintln!("error: {message}");
    Exit::Error
}

pub(super) fn privileged() -> Outcome<()> {
    if has_privileges() {
        Ok(())
    } else {
        eprintln!(
            "error: reading and changing network namespaces needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): \
             run stackctl with sudo, or review changes without root with `stackctl diff`"
        );
        Err(Exit::NoPrivilege)
    }
}

pub(super) fn kernel_error(error: KernelError) -> Exit {
    if error.is_permission() {
        eprintln!("error: {error}: stackctl needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)");
        return Exit::NoPrivilege;
    }
    fail(error)
}

/// Whether the user agreed to the changes on the command line (`--yes`), or is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    Given,
    Ask,
}

impl Consent {
    /// Without a terminal nobody can be asked: that is a usage error, said before anything
    /// is read or printed.
    fn check(self, verb: Verb) -> Outcome<()> {
        if self == Consent::Ask && !std::io::stdin().is_terminal() {
            eprintln!(
                "error: standard input is not a terminal, so nothing can be confirmed: pass --yes to {}",
                verb.word()
            );
            return Err(Exit::Usage);
        }
        Ok(())
    }
}

/// What a plan is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Apply,
    Destroy,
}

impl Verb {
    fn word(self) -> &'static str {
        match self {
            Verb::Apply => "apply",
            Verb::Destroy => "destroy",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Verb::Apply => "Apply",
            Verb::Destroy => "Destroy",
        }
    }
}

/// How `apply` makes a swap: how long it waits for the containers that take the aliases.
#[derive(Debug, Clone, Copy)]
pub struct SwapOptions {
    /// `--wait`: `None` when not given.
    pub wait: Option<Duration>,
}

/// How long apply waits for a swap's new containers when `--wait` is not given: on a
/// terminal, where a person can start them, a few minutes; otherwise not at all.
const WAIT_ON_A_TERMINAL: Duration = Duration::from_secs(300);

/// A plan the user is asked to agree to, and what it was made against.
struct Proposal<'a> {
    file: &'a Path,
    scope: Scope,
    observation: Observation,
    plan: Plan,
    verb: Verb,
}

impl Live {
    /// Connects to the host; `None` for a scratch host that does not exist yet.
    fn open(&self) -> Outcome<Option<Kernel>> {
        Kernel::open(&self.host, Places::system()).map_err(kernel_error)
    }

    /// Connects to a host that must exist: the commands that show or probe what runs.
    pub(super) fn open_existing(&self, stack: &Stack) -> Outcome<Kernel> {
        match self.open()? {
            Some(kernel) => Ok(kernel),
            None => Err(self.not_applied(stack)),
        }
    }

    fn not_applied(&self, stack: &Stack) -> Exit {
        let on = match &self.host {
            HostNamespace::Current => "this host".to_owned(),
            HostNamespace::Named(name) => {
                // A scratch host deleted by hand may have left the stack's namespaces and
                // files behind: destroy removes them, apply refuses until then.
                let scope = self.scope(stack);
                if left_for_host(&Places::system(), &scope).is_ok_and(|left| !left.is_empty()) {
                    return fail(format!(
                        "the scratch host `{name}` does not exist, but stack `{}` still has namespaces or files for \
                         it: `stackctl --host-netns {name} destroy` removes them",
                        stack.name
                    ));
                }
                format!("the scratch host `{name}`, which does not exist yet")
            }
        };
        fail(format!("stack `{}` is not applied on {on}: `stackctl apply` creates it", stack.name))
    }

    pub(super) fn scope(&self, stack: &Stack) -> Scope {
        Scope::of(stack, &self.host)
    }

    fn lock(&self, places: &Places, stack: &str, timeout: Duration) -> Outcome<ApplyLock> {
        let path = places.lock(&self.host, stack);
        places.run_directory(&self.host).map_err(|error| {
            fail(format!("cannot make stackctl's run directory {}: {error}", places.state.display()))
        })?;
        take_lock(&path, timeout, &format!("another apply of stack `{stack}`"), "finish")
    }

    /// The lock that one apply at a time on the host holds while it picks and makes subnets.
    fn subnets_lock(&self, places: &Places, timeout: Duration) -> Outcome<ApplyLock> {
        take_lock(&places.subnets_lock(&self.host), timeout, "another stack's apply", "make its networks")
    }

    /// The stack's objects as they are; on a scratch host that does not exist, those it
    /// has beside it (see [`Kernel::observe_absent`]).
    fn observe(kernel: Option<&Kernel>, scope: &Scope) -> Outcome<Observation> {
        match kernel {
            Some(kernel) => kernel.observe(scope).map_err(kernel_error),
            None => Kernel::observe_absent(scope, &Places::system()).map_err(kernel_error),
        }
    }

    /// Refuses to plan for a scratch host that does not exist while the stack still has
    /// namespaces or files for it: the host was deleted without a destroy, and they would
    /// stop the apply. Destroy removes them.
    fn refuse_leftovers(&self, kernel: Option<&Kernel>, scope: &Scope, file: &Path) -> Outcome<()> {
        let (None, HostNamespace::Named(name)) = (kernel, &self.host) else { return Ok(()) };
        let left = left_for_host(&Places::system(), scope).map_err(kernel_error)?;
        if left.is_empty() {
            return Ok(());
        }
        Err(fail(format!(
            "the scratch host `{name}` ({}) does not exist, but stack `{}` still has namespaces or files for it (was \
             the host deleted without `stackctl destroy`?), so nothing was changed: run `stackctl --host-netns {name} \
             -f {} destroy` first, which removes them: {}",
            Places::system().netns.join(name).display(),
            scope.stack,
            file.display(),
            listed(&left)
        )))
    }

    /// Observes the kernel and plans the changes that make it match `stack`; `fate` says
    /// what happens to the processes in the namespaces the plan deletes.
    fn plan(
        &self,
        kernel: Option<&Kernel>,
        (file, stack): (&SourceFile, &Stack),
        scope: &Scope,
        fate: Fate,
    ) -> Outcome<(Observation, Plan)> {
        let observation = Live::observe(kernel, scope)?;
        refuse_dead_namespaces(scope, &observation)?;
        if let Some(short) = short_of_files(observation.file_limit) {
            return Err(fail(short));
        }
        if !stack.networks.is_empty() {
            warn_of_dropping_chains(&observation.dropping_forward_chains);
        }
        let desired = lower(stack, &observation.state, &observation.host).map_err(|error| {
            match load(file).ok().and_then(|spec| error.diagnostic(&spec)) {
                Some(diagnostic) => report_in_file(file, diagnostic, self.style),
                None => fail(error),
            }
        })?;
        let mut plan = plan_operations(&desired, &observation.state);
        refuse_collisions(&plan, &observation)?;
        plan.stranded = Stranded::of(&plan, &observation.processes, fate);
        Ok((observation, plan))
    }

    /// The plan as text, after what changed outside stackctl since the last apply, and,
    /// for a scratch host that does not exist yet, that apply creates it first.
    fn print_plan(&self, kernel: Option<&Kernel>, scope: &Scope, observation: &Observation, plan: &Plan) {
        let observed = &observation.state;
        match (kernel, &self.host) {
            (Some(kernel), _) => {
                if let Some(record) = read_record(kernel.places(), &self.host, &scope.stack) {
                    print!("{}", render_drift(&drift(&record, observed)));
                }
            }
            (None, HostNamespace::Named(name)) if !plan.is_empty() => println!(
                "The scratch host `{name}` ({}) does not exist yet: apply creates it first, with its loopback up.\n",
                Places::system().netns.join(name).display()
            ),
            (None, _) => {}
        }
        print!("{}", plan_text(scope, observation, plan, self.style));
    }

    pub fn plan_command(&self, file: &Path, detailed_exitcode: bool, out: Option<&Path>) -> Exit {
        let run = || -> Outcome<Exit> {
            let (source, stack) = load_stack(file, Findings::All, self.style)?;
            privileged()?;
            let kernel = self.open()?;
            let scope = self.scope(&stack);
            self.refuse_leftovers(kernel.as_ref(), &scope, file)?;
            let (observation, plan) = self.plan(kernel.as_ref(), (&source, &stack), &scope, Fate::LeftRunning)?;
            self.print_plan(kernel.as_ref(), &scope, &observation, &plan);
            let changes = !plan.is_empty();
            if let Some(out) = out {
                // Absolute, so that apply reads the same file from any directory.
                let stack_file = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
                let saved = SavedPlan {
                    format_version: SAVED_PLAN_VERSION,
                    stack_file: stack_file.display().to_string(),
                    stack_digest: stack_digest(&source.text),
                    host_netns: match &self.host {
                        HostNamespace::Current => None,
                        HostNamespace::Named(name) => Some(name.clone()),
                    },
                    scope,
                    fingerprint: fingerprint(&observation.state),
                    host_facts: observation.host,
                    plan,
                };
                let json = serde_json::to_vec_pretty(&saved).expect("a plan serializes");
                write_file(out, &json, Access::RootOnly)
                    .map_err(|error| fail(format!("cannot write plan `{}`: {error}", out.display())))?;
                println!("Saved the plan to {}; `stackctl apply {}` applies it.", out.display(), out.display());
            }
            Ok(if detailed_exitcode && changes { Exit::Changes } else { Exit::Ok })
        };
        run().unwrap_or_else(|exit| exit)
    }

    /// `apply`; with `verify`, `check` runs once the changes are made and decides the exit.
    #[allow(clippy::too_many_arguments)] // One per option of the command.
    pub fn apply_command(
        &self,
        file: &Path,
        saved: Option<&Path>,
        consent: Consent,
        verify: bool,
        lock_timeout: Duration,
        swap: SwapOptions,
        fate: Fate,
    ) -> Exit {
        let run = || -> Outcome<Exit> {
            consent.check(Verb::Apply)?;
            if let Some(saved) = saved {
                return self.apply_saved(saved, consent, verify, lock_timeout, swap, fate);
            }
            let (source, stack) = load_stack(file, Findings::All, self.style)?;
            privileged()?;
            let kernel = self.open()?;
            let scope = self.scope(&stack);
            self.refuse_leftovers(kernel.as_ref(), &scope, file)?;
            let (observation, plan) = self.plan(kernel.as_ref(), (&source, &stack), &scope, fate)?;
            self.print_plan(kernel.as_ref(), &scope, &observation, &plan);
            let proposal = Proposal { file, scope, observation, plan, verb: Verb::Apply };
            let kernel = self.agree_and_apply(kernel, proposal, consent, lock_timeout, swap)?;
            Ok(match kernel {
                Some(kernel) if verify => self.verify(&kernel, &stack),
                _ => Exit::Ok,
            })
        };
        run().unwrap_or_else(|exit| exit)
    }

    /// `apply PLAN`: plans again from the stack file the saved plan names and the host as
    /// it is, and applies that plan only when it is the saved one. Nothing the file holds
    /// reaches the kernel: its names are checked first, and then every difference is
    /// refused, as stale or as tampered with (see [`SavedPlan::judge`]).
    fn apply_saved(
        &self,
        path: &Path,
        consent: Consent,
        verify: bool,
        lock_timeout: Duration,
        swap: SwapOptions,
        fate: Fate,
    ) -> Outcome<Exit> {
        let text =
            std::fs::read(path).map_err(|error| fail(format!("cannot read plan `{}`: {error}", path.display())))?;
        let version: SavedVersion = serde_json::from_slice(&text).map_err(|error| not_a_plan(path, error))?;
        if version.format_version != SAVED_PLAN_VERSION {
            return Err(fail(format!(
                "plan `{}` has format version {}, this stackctl reads version {SAVED_PLAN_VERSION}: run `stackctl \
                 plan --out` again",
                path.display(),
                version.format_version
            )));
        }
        let saved: SavedPlan = serde_json::from_slice(&text).map_err(|error| not_a_plan(path, error))?;
        if let Some(tampering) = saved.misnamed() {
            return Err(refused(path, &Refusal::Tampered(tampering)));
        }
        let host = saved.host();
        if let HostNamespace::Named(this) = &self.host
            && host != self.host
        {
            let made_for = match &host {
                HostNamespace::Current => "the machine's own host".to_owned(),
                HostNamespace::Named(name) => format!("the scratch host `{name}`"),
            };
            return Err(fail(format!(
                "plan `{}` was made for {made_for}, and this is the scratch host `{this}`: apply it without \
                 `--host-netns` (it names its own host), or plan again for this one",
                path.display()
            )));
        }
        let live = Live { host, style: self.style };
        let stack_file = Path::new(&saved.stack_file);
        // The plan names the file it is read with: only a regular one of a stack file's
        // size, so that a plan edited to name a FIFO or a device neither hangs nor fills
        // memory (`stat` does not open it).
        match std::fs::metadata(stack_file) {
            Ok(metadata) if metadata.is_file() && metadata.len() <= STACK_FILE_LIMIT => {}
            _ => {
                let tampering = Tampering::StackFile { file: saved.stack_file.clone(), limit: STACK_FILE_LIMIT };
                return Err(refused(path, &Refusal::Tampered(tampering)));
            }
        }
        let (source, stack) = load_stack(stack_file, Findings::ErrorsOnly, self.style)?;
        privileged()?;
        let kernel = live.open()?;
        let scope = live.scope(&stack);
        live.refuse_leftovers(kernel.as_ref(), &scope, stack_file)?;
        let (observation, plan) = live.plan(kernel.as_ref(), (&source, &stack), &scope, fate)?;
        let from_saved_facts = lower(&stack, &observation.state, &saved.host_facts)
            .ok()
            .map(|desired| plan_operations(&desired, &observation.state));
        let now = Rederived {
            stack_digest: &stack_digest(&source.text),
            scope: &scope,
            fingerprint: &fingerprint(&observation.state),
            from_saved_facts: from_saved_facts.as_ref(),
            from_live_facts: &plan,
        };
        saved.judge(&now).map_err(|refusal| refused(path, &refusal))?;
        print!("{}", plan_text(&scope, &observation, &plan, self.style));
        let proposal = Proposal { file: stack_file, scope, observation, plan, verb: Verb::Apply };
        let kernel = live.agree_and_apply(kernel, proposal, consent, lock_timeout, swap)?;
        Ok(match kernel {
            Some(kernel) if verify => live.verify(&kernel, &stack),
            _ => Exit::Ok,
        })
    }

    /// `apply --verify`: the truth table of what was just applied.
    fn verify(&self, kernel: &Kernel, stack: &Stack) -> Exit {
        println!("\nVerifying with `stackctl check`:");
        super::check::verify(
            kernel,
            stack,
            &self.scope(stack),
            super::check::CheckFormat::Text,
            super::check::DEFAULT_TIMEOUT,
            self.style,
        )
    }

    /// `destroy`: the plan to an empty state, and then, with nothing of the stack left on
    /// the host, the removal of the files it kept there. A scratch host deleted by hand
    /// leaves the stack's namespaces and files beside it: once the user agrees, destroy
    /// creates the host again to remove them as from any host, and then deletes it.
    pub fn destroy_command(&self, file: &Path, consent: Consent, lock_timeout: Duration, fate: Fate) -> Exit {
        let run = || -> Outcome<Exit> {
            consent.check(Verb::Destroy)?;
            let (_, stack) = load_stack(file, Findings::ErrorsOnly, self.style)?;
            privileged()?;
            let scope = self.scope(&stack);
            let kernel = self.open()?;
            let observation = Live::observe(kernel.as_ref(), &scope)?;
            warn_of_foreign_namespaces(&scope, &observation);
            let mut plan = plan_operations(&Desired::nothing(&observation.host), &observation.state);
            plan.stranded = Stranded::of(&plan, &observation.processes, fate);
            let absent = kernel.is_none();
            if absent {
                let left = left_for_host(&Places::system(), &scope).map_err(kernel_error)?;
                if left.is_empty() {
                    println!("No changes. The stack has nothing on this host.");
                    return Ok(Exit::Ok);
                }
                self.print_left(&scope, &left, &plan);
            }
            if !(absent && plan.is_empty()) {
                print!("{}", plan_text(&scope, &observation, &plan, self.style));
            }
            let proposal = Proposal { file, scope: scope.clone(), observation, plan, verb: Verb::Destroy };
            let swap = SwapOptions { wait: None };
            let kernel = self.agree_and_apply(kernel, proposal, consent, lock_timeout, swap)?;
            let released = self.remove_files(kernel.as_ref(), &scope, lock_timeout)?;
            // Created again only to remove what the stack had left.
            if let (Some(kernel), HostNamespace::Named(name)) = (kernel.filter(|_| absent && released), &self.host) {
                kernel.delete_host().map_err(kernel_error)?;
                println!("deleted the scratch host `{name}` again: destroy created it only to remove what was left");
            }
            Ok(Exit::Ok)
        };
        run().unwrap_or_else(|exit| exit)
    }

    /// Says what a stack left for a scratch host that does not exist, and how destroy
    /// removes it.
    fn print_left(&self, scope: &Scope, left: &[PathBuf], plan: &Plan) {
        let HostNamespace::Named(name) = &self.host else { return };
        let how = if plan.is_empty() {
            "destroy removes them."
        } else {
            "destroy creates the host again, empty, to remove them, and then deletes it.\n"
        };
        println!(
            "The scratch host `{name}` ({}) does not exist, but stack `{}` left these for it: {}; {how}",
            Places::system().netns.join(name).display(),
            scope.stack,
            listed(left)
        );
    }

    /// Decides whether a swap may start, asks for confirmation when needed, and only then
    /// changes anything: creates the scratch host if needed, takes the lock, and makes the
    /// plan if the stack's objects are still those it was made against. Keeps the record
    /// and reports. Returns the kernel the plan was applied to (`None` for an empty plan on
    /// a host that does not exist).
    fn agree_and_apply(
        &self,
        kernel: Option<Kernel>,
        proposal: Proposal,
        consent: Consent,
        lock_timeout: Duration,
        options: SwapOptions,
    ) -> Outcome<Option<Kernel>> {
        let Proposal { file, scope, observation, mut plan, verb } = proposal;
        if plan.is_empty() {
            return Ok(kernel);
        }
        let wait = options.wait.or_else(|| std::io::stdin().is_terminal().then_some(WAIT_ON_A_TERMINAL));
        if let Some(swap) = &plan.swap {
            self.decide_swap(kernel.as_ref(), swap, file, wait)?;
        }
        if consent == Consent::Ask {
            confirm(verb)?;
        }
        let kernel = match kernel {
            Some(kernel) => kernel,
            None => Kernel::open_or_create(&self.host, Places::system()).map_err(kernel_error)?,
        };
        let _lock = self.lock(kernel.places(), &scope.stack, lock_timeout)?;
        // Every stack's apply on this host checks its new subnets against the others' and
        // makes its bridges one at a time: from here until its bridges are made.
        let subnets_lock = match verb == Verb::Apply && !new_subnets(&plan).is_empty() {
            true => Some(self.subnets_lock(kernel.places(), lock_timeout)?),
            false => None,
        };
        let now = kernel.observe(&scope).map_err(kernel_error)?;
        if fingerprint(&now.state) != fingerprint(&observation.state) {
            return Err(fail(format!(
                "the stack's objects on this host changed while the plan was shown (another apply?), so nothing \
                 was changed: run `stackctl {}` again",
                verb.word()
            )));
        }
        if verb == Verb::Apply {
            refuse_dead_namespaces(&scope, &now)?;
            refuse_subnet_clashes(&plan, &now)?;
        }
        // The processes as they are now: those started since the plan was shown too.
        plan.stranded = Stranded::of(&plan, &now.processes, plan.stranded.fate);
        // The same objects as planned against (their fingerprint says so), read under the
        // lock, with the tables' chains and sets as they are now.
        let observed = &now.state;
        let hint = self.start_hint(file);
        let waiting = |readiness: &Readiness, within: Duration| {
            let within = humantime::format_duration(within);
            eprintln!(
                "waiting up to {within} for container `{}` to accept tcp/{} at {}: {}",
                readiness.container,
                readiness.port,
                readiness.address,
                hint(&readiness.container, &readiness.namespace)
            );
        };
        // A swap's first phase made its bridges: other stacks may take subnets while it waits.
        let subnets_lock = std::cell::RefCell::new(subnets_lock);
        let keep = |done: &[Operation]| {
            subnets_lock.borrow_mut().take();
            if let Err(error) = write_record(kernel.places(), &self.host, &scope.stack, &record_after(observed, done)) {
                eprintln!("warning: cannot keep the apply record of stack `{}`: {error}", scope.stack);
            }
        };
        let applied = kernel.apply(&scope, &now, &plan, &SwapWait { within: wait, waiting: &waiting, made: &keep });
        let record = match &applied.failed {
            None => record_after(observed, &applied.done),
            // What a failed operation made in part is the apply's, not a change outside.
            Some(_) => match kernel.observe(&scope) {
                Ok(after) => record_after_failure(observed, &applied.done, &after.state),
                Err(_) => record_after(observed, &applied.done),
            },
        };
        if let Err(error) = write_record(kernel.places(), &self.host, &scope.stack, &record) {
            eprintln!("warning: cannot keep the apply record of stack `{}`: {error}", scope.stack);
        }
        report_drained(&applied.drained);
        report_stranded(&plan.stranded, &applied.done);
        let done = Plan { operations: applied.done, ..Plan::default() };
        let Some(error) = applied.failed else {
            let summary = done.summary();
            println!(
                "\n{} complete: {} added, {} changed, {} destroyed.",
                verb.title(),
                summary.add,
                summary.change,
                summary.destroy
            );
            return Ok(Some(kernel));
        };
        eprintln!("\nerror: {error}");
        if done.is_empty() {
            eprintln!("nothing was changed before it failed");
        } else {
            eprintln!(
                "{} of {} operations were made before it failed; the next apply continues from there. They were:",
                done.operations.len(),
                plan.operations.len()
            );
            eprint!("{}", render_operations(&done, Marks::Terraform, self.style.color_err));
        }
        if let Some(swap) = plan.swap.as_ref().filter(|swap| !swap.repointed(done.operations.len())) {
            let from: Vec<String> = swap.moves.iter().map(|moved| moved.from.join(", ")).collect();
            eprintln!("the swap stopped before the repoint: the aliases still point at {}", from.join("; "));
        }
        Err(Exit::Error)
    }

    /// Refuses, before anything changes, a swap whose new containers cannot take the
    /// aliases now when apply may not wait for them; says what it will wait for when it
    /// may.
    fn decide_swap(&self, kernel: Option<&Kernel>, swap: &Swap, file: &Path, wait: Option<Duration>) -> Outcome<()> {
        let listening = match kernel {
            Some(kernel) => kernel.listening(swap).map_err(kernel_error)?,
            None => swap.verify.iter().map(|readiness| (readiness.container.clone(), Listening::NoNamespace)).collect(),
        };
        let waiting = if wait.is_some_and(|wait| !wait.is_zero()) { Waiting::Allowed } else { Waiting::Forbidden };
        match swap.start(&listening, waiting) {
            Start::Ready => Ok(()),
            Start::AfterWaiting(problems) => {
                let within = humantime::format_duration(wait.unwrap_or_default());
                for problem in &problems {
                    println!("note: {problem}; once wired, apply waits up to {within} for it before the alias moves");
                }
                Ok(())
            }
            Start::Refused(problems) => {
                let aliases: Vec<String> =
                    swap.moves.iter().map(|moved| format!("`{}` on `{}`", moved.alias, moved.network)).collect();
                let alias = if aliases.len() == 1 { "alias" } else { "aliases" };
                eprintln!("error: the swap of {alias} {} cannot start, so nothing was changed:", aliases.join(", "));
                // One piece of advice per container: a container has either one problem
                // of not running, or one per port it does not listen on.
                let mut advised = BTreeMap::new();
                for problem in &problems {
                    eprintln!("  {problem}");
                    advised.entry(problem.container()).or_insert(problem);
                }
                let starting = self.starting(file);
                for problem in advised.into_values() {
                    eprintln!("  {}", starting.advice(problem));
                }
                Err(Exit::Error)
            }
        }
    }

    /// How a user starts a container in its namespace, to say while apply waits for it.
    fn start_hint(&self, file: &Path) -> impl Fn(&str, &NamespaceName) -> String {
        let starting = self.starting(file);
        move |container: &str, namespace: &NamespaceName| starting.hint(container, namespace)
    }

    fn starting(&self, file: &Path) -> Starting {
        let host = match &self.host {
            HostNamespace::Current => String::new(),
            HostNamespace::Named(name) => format!(" --host-netns {name}"),
        };
        Starting { stackctl: format!("stackctl{host} -f {}", file.display()) }
    }

    /// Once destroy has removed the stack's objects: removes the files the stack kept for
    /// the host, under its lock, unless something of the stack is there again (another
    /// apply came between), and the lock's file last. Says whether it removed them.
    fn remove_files(&self, kernel: Option<&Kernel>, scope: &Scope, lock_timeout: Duration) -> Outcome<bool> {
        let places = Places::system();
        let lock = self.lock(&places, &scope.stack, lock_timeout)?;
        let now = Live::observe(kernel, scope)?;
        if !now.state.is_released() {
            return Ok(false);
        }
        remove_files(&places, scope, lock).map_err(kernel_error)?;
        Ok(true)
    }

    pub fn show_command(&self, file: &Path, format: ShowFormat) -> Exit {
        let run = || -> Outcome<Exit> {
            let (_, stack) = load_stack(file, Findings::ErrorsOnly, self.style)?;
            privileged()?;
            let kernel = self.open_existing(&stack)?;
            let scope = self.scope(&stack);
            let observation = kernel.observe(&scope).map_err(kernel_error)?;
            refuse_dead_namespaces(&scope, &observation)?;
            if observation.state.is_empty() {
                return Err(self.not_applied(&stack));
            }
            let topology = Topology::read(&stack, &observation.state);
            match format {
                ShowFormat::Table => print!("{}", render_table(&topology)),
                ShowFormat::Json => print!("{}", topology.to_json()),
            }
            Ok(Exit::Ok)
        };
        run().unwrap_or_else(|exit| exit)
    }

    /// Runs a command inside a container's namespace; returns only on failure.
    pub fn exec_command(&self, file: &Path, container: &str, command: &[OsString]) -> Exit {
        let run = || -> Outcome<Exit> {
            let (_, stack) = load_stack(file, Findings::ErrorsOnly, self.style)?;
            let Some(declared) = stack.containers.get(container) else {
                let names: Vec<&str> = stack.containers.keys().map(String::as_str).collect();
                return Err(fail(format!(
                    "stack `{}` has no container `{container}` (it has: {})",
                    stack.name,
                    names.join(", ")
                )));
            };
            if declared.attachment == Attachment::Host {
                return Err(fail(format!("container `{container}` uses the host's network: run the command directly")));
            }
            privileged()?;
            let scope = self.scope(&stack);
            let places = Places::system();
            let namespace = places.namespace(&scope.namespaces[container]);
            if !namespace.exists() {
                let on = match &self.host {
                    HostNamespace::Current => "this host".to_owned(),
                    HostNamespace::Named(name) => format!("the scratch host `{name}`"),
                };
                return Err(fail(format!(
                    "container `{container}` of stack `{}` does not run on {on}: its namespace {} does not exist; \
                     `stackctl apply` creates it",
                    stack.name,
                    namespace.display()
                )));
            }
            let hosts = places.hosts_file(&scope, container);
            let resolv_conf = places.resolv_conf(&scope, container);
            let error = enter(&namespace, &hosts, &resolv_conf, command);
            Err(fail(format!(
                "cannot run `{}` in container `{container}` ({}): {error}",
                command[0].to_string_lossy(),
                namespace.display()
            )))
        };
        run().unwrap_or_else(|exit| exit)
    }
}

/// How a user starts a program in a container's namespace: with `stackctl exec`, or with
/// Podman.
struct Starting {
    /// `stackctl`, with the host and the stack file of this command.
    stackctl: String,
}

impl Starting {
    fn exec(&self, container: &str) -> String {
        format!("{} exec {container} -- COMMAND", self.stackctl)
    }

    fn podman(namespace: &NamespaceName) -> String {
        format!("podman run --network ns:{} ...", Places::system().namespace(namespace).display())
    }

    /// While apply waits for the container: from another terminal, since apply holds this
    /// one.
    fn hint(&self, container: &str, namespace: &NamespaceName) -> String {
        format!(
            "start it in its namespace from another terminal, e.g. `{}`, or `{}`",
            self.exec(container),
            Starting::podman(namespace)
        )
    }

    /// What to do about a container that keeps a swap from starting. One that does not
    /// run yet cannot be started before an apply has created its namespace, so only an
    /// apply that waits for it makes the swap; one that runs can also be started first.
    fn advice(&self, problem: &Unready) -> String {
        let wait = humantime::format_duration(WAIT_ON_A_TERMINAL);
        match problem {
            Unready::NotRunning { container, namespace } => format!(
                "apply with `--wait {wait}`: it creates the namespace of `{container}` and waits while you start \
                 it there, e.g. from another terminal with `{}` or `{}`",
                self.exec(container),
                Starting::podman(namespace)
            ),
            Unready::NotListening(readiness) => format!(
                "start a program in `{container}` that accepts on tcp/{port}, e.g. with `{} &` or `{}`, then apply \
                 again; or apply with `--wait {wait}` and start it while apply waits",
                self.exec(&readiness.container),
                Starting::podman(&readiness.namespace),
                container = readiness.container,
                port = readiness.port,
            ),
        }
    }
}

/// Says how the containers that a swap's aliases left drained.
/// The plan as text, and under it the steps apply takes to make it.
fn plan_text(scope: &Scope, observation: &Observation, plan: &Plan, style: Style) -> String {
    let program = Program::of(&scope.stack, plan, &observation.state, &observation.tables);
    let steps = render_steps(&program, plan);
    let text = render_text(plan, style.color_out);
    if steps.is_empty() { text } else { format!("{text}\n{steps}") }
}

fn report_drained(drained: &[crate::kernel::Drained]) {
    for drained in drained {
        let waited = humantime::format_duration(Duration::from_millis(drained.waited.as_millis() as u64));
        match drained.remaining {
            0 => println!("drained `{}`: its connections finished within {waited}", drained.container),
            open => eprintln!(
                "warning: `{}` still had {open} established connection{} after the drain timeout ({waited}); \
                 what follows cuts them",
                drained.container,
                if open == 1 { "" } else { "s" }
            ),
        }
    }
}

/// Paths, one after another.
fn listed(paths: &[PathBuf]) -> String {
    paths.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// The format version of a saved plan, read before the rest, whose shape it says.
#[derive(serde::Deserialize)]
struct SavedVersion {
    format_version: u32,
}

fn not_a_plan(path: &Path, error: serde_json::Error) -> Exit {
    fail(format!("`{}` is not a plan saved by `stackctl plan --out`: {error}", path.display()))
}

/// Why a saved plan is not applied, with the exit that says which: stale (plan again) or
/// tampered with (the file is bad input).
fn refused(path: &Path, refusal: &Refusal) -> Exit {
    let path = path.display();
    match refusal {
        Refusal::Stale(staleness) => {
            eprintln!(
                "error: stale plan `{path}`: {staleness}; nothing was changed: run `stackctl plan --out {path}` again"
            );
            Exit::StalePlan
        }
        Refusal::Tampered(tampering) => {
            eprintln!(
                "error: plan `{path}` was tampered with: {tampering}; nothing was changed: apply the stack file, or \
                 run `stackctl plan --out` again and review what it saves"
            );
            Exit::InvalidInput
        }
    }
}

/// `stackctl resolver`: the host's name server, until it is asked to stop.
pub fn resolver_command(host: &HostNamespace, directory: Option<&Path>) -> Exit {
    match serve_names(host, &Places::system(), directory) {
        Ok(()) => Exit::Ok,
        Err(error) => kernel_error(error),
    }
}

/// Says which other tables drop what the stack routes: stackctl never changes them, and an
/// accept in its own tables cannot override their drop.
fn warn_of_dropping_chains(chains: &[String]) {
    for chain in chains {
        eprintln!(
            "warning: chain `{chain}` drops forwarded traffic that it does not accept (Docker sets this up), so it \
             also drops what the stack's networks route: egress, published ports from outside, and flows between \
             members of isolated networks; stackctl's own tables still decide what passes once it lets the stack's \
             bridges through, e.g. with Docker: `iptables -I DOCKER-USER -i stb+ -j ACCEPT && iptables -I \
             DOCKER-USER -o stb+ -j ACCEPT`"
        );
    }
}

/// Refuses, naming each, the containers whose adopted namespace is gone or is not theirs to
/// use (no network namespace, a host's, another container's): nothing of theirs can be
/// planned, shown or probed, and nothing has changed yet.
pub(super) fn refuse_dead_namespaces(scope: &Scope, observation: &Observation) -> Outcome<()> {
    let unusable = unusable_namespaces(scope, &observation.adopted);
    for refused in &unusable {
        eprintln!("error: {refused}");
    }
    if unusable.is_empty() { Ok(()) } else { Err(Exit::Error) }
}

/// Says which adopted namespaces destroy leaves as they are because they are somebody
/// else's: it did not read them, and changes nothing inside them.
fn warn_of_foreign_namespaces(scope: &Scope, observation: &Observation) {
    for refused in unusable_namespaces(scope, &observation.adopted).iter().filter(|refused| refused.is_someone_elses())
    {
        eprintln!("warning: {refused}; destroy leaves what is inside it as it is");
    }
}

/// Says what became of the processes in the namespaces that apply deleted: ended, or left
/// running there, and then how to end them.
fn report_stranded(stranded: &Stranded, done: &[Operation]) {
    for operation in done {
        let Operation::Delete { resource: Resource::Namespace(namespace) } = operation else { continue };
        let Some(processes) = stranded.processes.get(&namespace.container) else { continue };
        let listed: Vec<String> =
            processes.iter().map(|process| format!("pid {} ({})", process.pid, process.shown())).collect();
        match stranded.fate {
            Fate::Ended => println!(
                "ended the processes in the namespace of `{}` before deleting it: {}",
                namespace.container,
                listed.join(", ")
            ),
            Fate::LeftRunning => {
                let pids: Vec<String> = processes.iter().map(|process| process.pid.to_string()).collect();
                eprintln!(
                    "warning: left running in the deleted namespace of `{}`, cut off from every network: {}; they are \
                     yours to end, e.g. `kill {}` (with --kill-processes, apply and destroy end them)",
                    namespace.container,
                    listed.join(", "),
                    pids.join(" ")
                );
            }
        }
    }
}

fn refuse_collisions(plan: &Plan, observation: &Observation) -> Outcome<()> {
    let collisions = collisions(plan, &observation.foreign);
    for collision in &collisions {
        eprintln!("error: {collision}");
    }
    if collisions.is_empty() { Ok(()) } else { Err(Exit::Error) }
}

/// Takes the lock at `path`, saying while it waits for `who` (and its holder) to `end`,
/// and failing when `timeout` passes first.
fn take_lock(path: &Path, timeout: Duration, who: &str, end: &str) -> Outcome<ApplyLock> {
    ApplyLock::acquire(path, timeout, |holder| {
        let holder = holder.map(|holder| format!(" ({holder})")).unwrap_or_default();
        eprintln!("waiting for {who}{holder} to {end}, at most {timeout:?}");
    })
    .map_err(|error| fail(format!("{who} did not {end}: {error}")))
}

/// Refuses a plan whose new subnets another stack took while it was shown: its bridges
/// would share their routes.
fn refuse_subnet_clashes(plan: &Plan, now: &Observation) -> Outcome<()> {
    let clashes = subnet_clashes(plan, &now.host.used_subnets);
    for clash in &clashes {
        eprintln!("error: {clash}");
    }
    match clashes.is_empty() {
        true => Ok(()),
        false => Err(fail("nothing was changed: run `stackctl apply` again to plan other subnets")),
    }
}

/// Asks on the terminal (checked to be one before anything was read).
fn confirm(verb: Verb) -> Outcome<()> {
    print!("\n{} these changes? Only `yes` is accepted: ", verb.title());
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        eprintln!("{} cancelled: nothing was changed", verb.word());
        Err(Exit::Error)
    }
}
