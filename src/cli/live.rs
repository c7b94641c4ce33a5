//! The commands on the live kernel: plan, apply, destroy, show and exec. Each reads its
//! arguments and the stack file, hands them to [`crate::reconcile`], prints what comes
//! back, and asks the user between the proposal and the reconcile. The order of things,
//! what is checked and what is changed when, is the reconcile's.

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use super::output::Style;
use super::stackfile::{Findings, load_stack};
use super::terminal::{Terminal, WAIT_ON_A_TERMINAL};
use super::{Exit, ShowFormat};
use crate::kernel::{HostNamespace, Places, enter, has_privileges, serve_names};
use crate::model::Attachment;
use crate::plan::{Fate, render_drift, render_steps, render_text};
use crate::reconcile::{Host, Intent, Options, Proposal, ReconcileError, Reconciler, Report, SavedPlanFile, Verb};
use crate::show::{Topology, render_table};

/// What the live commands share: which namespace plays the host, and how output looks.
pub struct Live {
    pub host: HostNamespace,
    pub style: Style,
}

/// The end of a command that went wrong: a message has been printed.
type Outcome<T> = Result<T, Exit>;

fn fail(message: impl std::fmt::Display) -> Exit {
    eprintln!("error: {message}");
    Exit::Error
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

/// How `apply` makes a swap: how long it waits for the containers that take the aliases.
#[derive(Debug, Clone, Copy)]
pub struct SwapOptions {
    /// `--wait`: `None` when not given.
    pub wait: Option<Duration>,
}

impl Live {
    /// The terminal of a command on this host with the stack file `file`.
    pub(super) fn terminal(&self, file: &Path) -> Terminal {
        Terminal::new(self.style, &self.host, file)
    }

    /// A session with the host, for a user with the privilege.
    pub(super) fn open(&self, terminal: &Terminal) -> Outcome<Reconciler> {
        Reconciler::open(self.host.clone()).map_err(|error| terminal.fail(error))
    }

    pub fn plan_command(&self, file: &Path, detailed_exitcode: bool, out: Option<&Path>) -> Exit {
        let terminal = self.terminal(file);
        let run = || -> Outcome<Exit> {
            let (source, stack) = load_stack(file, Findings::All, self.style)?;
            let reconciler = self.open(&terminal)?;
            let intent = Intent::Apply { file, source: &source, stack: &stack };
            // Nothing is applied: nothing waits or locks.
            let options = Options { fate: Fate::LeftRunning, wait: None, lock_timeout: Duration::ZERO };
            let proposal = reconciler.propose(intent, options, &terminal).map_err(|error| terminal.fail(error))?;
            self.print_proposal(&proposal);
            if let Some(out) = out {
                proposal.save(file, &source, out).map_err(|error| terminal.fail(error))?;
                println!("Saved the plan to {}; `stackctl apply {}` applies it.", out.display(), out.display());
            }
            Ok(if detailed_exitcode && !proposal.plan.is_empty() { Exit::Changes } else { Exit::Ok })
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
        let wait = swap.wait.or_else(|| std::io::stdin().is_terminal().then_some(WAIT_ON_A_TERMINAL));
        let options = Options { fate, wait, lock_timeout };
        let run = || -> Outcome<Exit> {
            consent.check(Verb::Apply)?;
            if let Some(saved) = saved {
                return self.apply_saved(saved, consent, verify, options);
            }
            let terminal = self.terminal(file);
            let (source, stack) = load_stack(file, Findings::All, self.style)?;
            let mut reconciler = self.open(&terminal)?;
            let intent = Intent::Apply { file, source: &source, stack: &stack };
            self.agree_and_reconcile(&mut reconciler, intent, options, consent, &terminal)?;
            Ok(self.verify(&reconciler, &stack, verify, &terminal))
        };
        run().unwrap_or_else(|exit| exit)
    }

    /// `apply PLAN`: the plan made again from the stack file the saved plan names and the
    /// host it names, applied only when it is the saved one.
    fn apply_saved(&self, path: &Path, consent: Consent, verify: bool, options: Options) -> Outcome<Exit> {
        let saved = SavedPlanFile::read(path, &self.host).map_err(|error| self.terminal(path).fail(error))?;
        let live = Live { host: saved.host(), style: self.style };
        let terminal = live.terminal(saved.stack_file());
        let (source, stack) = load_stack(saved.stack_file(), Findings::ErrorsOnly, self.style)?;
        let mut reconciler = live.open(&terminal)?;
        let intent = Intent::Saved { saved: &saved, source: &source, stack: &stack };
        live.agree_and_reconcile(&mut reconciler, intent, options, consent, &terminal)?;
        Ok(live.verify(&reconciler, &stack, verify, &terminal))
    }

    /// `apply --verify`: the truth table of what was just applied, when anything was.
    fn verify(&self, reconciler: &Reconciler, stack: &crate::model::Stack, verify: bool, terminal: &Terminal) -> Exit {
        if !verify || !reconciler.host_exists() {
            return Exit::Ok;
        }
        println!("\nVerifying with `stackctl check`:");
        let (format, timeout) = (super::check::CheckFormat::Text, super::check::DEFAULT_TIMEOUT);
        super::check::verify(reconciler, stack, format, timeout, terminal)
    }

    /// `destroy`: the plan to an empty state, and then, with nothing of the stack left on
    /// the host, the removal of the files it kept there.
    pub fn destroy_command(&self, file: &Path, consent: Consent, lock_timeout: Duration, fate: Fate) -> Exit {
        let terminal = self.terminal(file);
        let run = || -> Outcome<Exit> {
            consent.check(Verb::Destroy)?;
            let (_, stack) = load_stack(file, Findings::ErrorsOnly, self.style)?;
            let mut reconciler = self.open(&terminal)?;
            let options = Options { fate, wait: None, lock_timeout };
            self.agree_and_reconcile(&mut reconciler, Intent::Destroy { stack: &stack }, options, consent, &terminal)?;
            Ok(Exit::Ok)
        };
        run().unwrap_or_else(|exit| exit)
    }

    /// Shows the proposal, says what a swap waits for, asks (unless the user agreed on the
    /// command line, or nothing changes), reconciles, and says what was made.
    fn agree_and_reconcile(
        &self,
        reconciler: &mut Reconciler,
        intent: Intent,
        options: Options,
        consent: Consent,
        terminal: &Terminal,
    ) -> Outcome<()> {
        let proposal = reconciler.propose(intent, options, terminal).map_err(|error| terminal.fail(error))?;
        self.print_proposal(&proposal);
        let ready = reconciler.ready(proposal).map_err(|error| terminal.fail(error))?;
        if ready.changes() {
            let within = humantime::format_duration(ready.within);
            for problem in &ready.waits {
                println!("note: {problem}; once wired, apply waits up to {within} for it before the alias moves");
            }
            if consent == Consent::Ask {
                confirm(ready.verb())?;
            }
        }
        let report = reconciler.reconcile(ready, terminal).map_err(|error| terminal.fail(error))?;
        print_report(&report, terminal);
        Ok(())
    }

    /// The plan as text: for apply, after what changed outside stackctl since the last
    /// apply, and, for a scratch host that does not exist yet, that apply creates it
    /// first; for destroy on a scratch host that does not exist, after what the stack left
    /// for it and how destroy removes that.
    fn print_proposal(&self, proposal: &Proposal) {
        let plan = &proposal.plan;
        match (&proposal.host, proposal.verb) {
            (Host::Exists, _) => print!("{}", render_drift(&proposal.drift)),
            (Host::Absent { name, path }, _) if !plan.is_empty() => println!(
                "The scratch host `{name}` ({}) does not exist yet: apply creates it first, with its loopback up.\n",
                path.display()
            ),
            (Host::Absent { .. }, _) => {}
            (Host::Left { left, .. }, _) if left.is_empty() => {
                println!("No changes. The stack has nothing on this host.");
                return;
            }
            (Host::Left { name, path, left }, _) => {
                let how = if plan.is_empty() {
                    "destroy removes them."
                } else {
                    "destroy creates the host again, empty, to remove them, and then deletes it.\n"
                };
                println!(
                    "The scratch host `{name}` ({}) does not exist, but stack `{}` left these for it: {}; {how}",
                    path.display(),
                    proposal.scope.stack,
                    left.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ")
                );
                if plan.is_empty() {
                    return;
                }
            }
        }
        print!("{}", render_text(plan, self.style.color_out));
        let steps = render_steps(&proposal.program(), plan);
        if !steps.is_empty() {
            print!("\n{steps}");
        }
    }

    pub fn show_command(&self, file: &Path, format: ShowFormat) -> Exit {
        let terminal = self.terminal(file);
        let run = || -> Outcome<Exit> {
            let (_, stack) = load_stack(file, Findings::ErrorsOnly, self.style)?;
            let reconciler = self.open(&terminal)?;
            let state = reconciler.applied_state(&stack).map_err(|error| terminal.fail(error))?;
            let topology = Topology::read(&stack, &state);
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
            if !has_privileges() {
                return Err(self.terminal(file).fail(ReconcileError::Privilege));
            }
            let scope = crate::state::Scope::of(&stack, &self.host);
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

/// Says what a reconcile made: how swaps drained and what became of stranded processes,
/// the tally, and a scratch host deleted again.
fn print_report(report: &Report, terminal: &Terminal) {
    if let Some(made) = &report.made {
        terminal.made(made);
        let summary = made.done.summary();
        println!(
            "\n{} complete: {} added, {} changed, {} destroyed.",
            report.verb.title(),
            summary.add,
            summary.change,
            summary.destroy
        );
    }
    if let Some(name) = &report.deleted_host {
        println!("deleted the scratch host `{name}` again: destroy created it only to remove what was left");
    }
}

/// `stackctl resolver`: the host's name server, until it is asked to stop.
pub fn resolver_command(host: &HostNamespace, directory: Option<&Path>) -> Exit {
    match serve_names(host, &Places::system(), directory) {
        Ok(()) => Exit::Ok,
        Err(error) => {
            let error = ReconcileError::from(error);
            eprintln!("error: {error}");
            Exit::from(&error)
        }
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
