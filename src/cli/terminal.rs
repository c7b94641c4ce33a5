//! How a reconcile speaks on a terminal: what it tells as it goes ([`Progress`]), what it
//! made, and its errors, each printed in one place, with the exit code `exit.rs` gives it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::Exit;
use super::output::Style;
use super::stackfile::print_in_file;
use crate::kernel::{HostNamespace, LockHolder, Places};
use crate::plan::{Fate, Marks, Readiness, Unready, render_operations};
use crate::reconcile::{Lock, Made, Notice, Progress, ReconcileError, Retry};
use crate::state::NamespaceName;

/// How long apply waits for a swap's new containers when `--wait` is not given: on a
/// terminal, where a person can start them, a few minutes; otherwise not at all.
pub const WAIT_ON_A_TERMINAL: Duration = Duration::from_secs(300);

/// The terminal of one command on the live kernel.
pub struct Terminal {
    pub style: Style,
    starting: Starting,
}

impl Terminal {
    /// For the command on `host` with the stack file `file`, which the advice repeats.
    pub fn new(style: Style, host: &HostNamespace, file: &Path) -> Terminal {
        let host = match host {
            HostNamespace::Current => String::new(),
            HostNamespace::Named(name) => format!(" --host-netns {name}"),
        };
        Terminal { style, starting: Starting { stackctl: format!("stackctl{host} -f {}", file.display()) } }
    }

    /// Prints `error` as the end of the command, and gives its exit code.
    pub fn fail(&self, error: ReconcileError) -> Exit {
        match &error {
            ReconcileError::Lowering { file, diagnostic: Some(diagnostic), .. } => {
                print_in_file(file, (**diagnostic).clone(), self.style);
            }
            ReconcileError::UnusableNamespaces(refused) => each_line(refused),
            ReconcileError::Collisions(collisions) => each_line(collisions),
            ReconcileError::SubnetClashes(clashes) => {
                each_line(clashes);
                eprintln!("error: nothing was changed: run `stackctl apply` again to plan other subnets");
            }
            ReconcileError::SwapRefused { aliases, problems } => {
                let alias = if aliases.len() == 1 { "alias" } else { "aliases" };
                eprintln!("error: the swap of {alias} {} cannot start, so nothing was changed:", aliases.join(", "));
                // One piece of advice per container: a container has either one problem
                // of not running, or one per port it does not listen on.
                let mut advised = BTreeMap::new();
                for problem in problems {
                    eprintln!("  {problem}");
                    advised.entry(problem.container()).or_insert(problem);
                }
                for problem in advised.into_values() {
                    eprintln!("  {}", self.starting.advice(problem));
                }
            }
            ReconcileError::ApplyFailed { error, made } => {
                self.made(made);
                eprintln!("\nerror: {error}");
                if made.done.is_empty() {
                    eprintln!("nothing was changed before it failed");
                } else {
                    eprintln!(
                        "{} of {} operations were made before it failed; the next apply continues from there. They \
                         were:",
                        made.done.operations.len(),
                        made.planned
                    );
                    eprint!("{}", render_operations(&made.done, Marks::Terraform, self.style.color_err));
                }
                if let Some(from) = made.unmoved() {
                    eprintln!("the swap stopped before the repoint: the aliases still point at {}", from.join("; "));
                }
            }
            _ => eprintln!("error: {error}"),
        }
        // The others say what to change, or that nothing will.
        if error.retry() == Retry::Later {
            eprintln!("note: what stopped it is busy, not wrong: the same command may succeed if run again later");
        }
        Exit::from(&error)
    }

    /// Says how the containers that a swap's aliases left drained, and what became of the
    /// processes in the namespaces that apply deleted: ended, or left running there, and
    /// then how to end them.
    pub fn made(&self, made: &Made) {
        for drained in &made.drained {
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
        for (container, processes) in made.stranded_in_deleted() {
            let listed: Vec<String> =
                processes.iter().map(|process| format!("pid {} ({})", process.pid, process.shown())).collect();
            match made.stranded.fate {
                Fate::Ended => println!(
                    "ended the processes in the namespace of `{container}` before deleting it: {}",
                    listed.join(", ")
                ),
                Fate::LeftRunning => {
                    let pids: Vec<String> = processes.iter().map(|process| process.pid.to_string()).collect();
                    eprintln!(
                        "warning: left running in the deleted namespace of `{container}`, cut off from every network: \
                         {}; they are yours to end, e.g. `kill {}` (with --kill-processes, apply and destroy end them)",
                        listed.join(", "),
                        pids.join(" ")
                    );
                }
            }
        }
    }
}

impl Progress for Terminal {
    fn notice(&self, notice: &Notice) {
        match notice {
            // stackctl never changes other tables, and an accept in its own cannot
            // override their drop.
            Notice::DroppingForwardChain(chain) => eprintln!(
                "warning: chain `{chain}` drops forwarded traffic that it does not accept (Docker sets this up), so it \
                 also drops what the stack's networks route: egress, published ports from outside, and flows between \
                 members of isolated networks; stackctl's own tables still decide what passes once it lets the \
                 stack's bridges through, e.g. with Docker: `iptables -I DOCKER-USER -i stb+ -j ACCEPT && iptables \
                 -I DOCKER-USER -o stb+ -j ACCEPT`"
            ),
            Notice::ForeignNamespace(refused) => {
                eprintln!("warning: {refused}; destroy leaves what is inside it as it is")
            }
            Notice::RecordNotKept { stack, error } => {
                eprintln!("warning: cannot keep the apply record of stack `{stack}`: {error}")
            }
            Notice::Pacing(pacing) => eprintln!(
                "note: the probes may make {} neighbour (ARP) entries, and the kernel's neighbour table has room for \
                 {}: probing in {} rounds, {} apart; raising net.ipv4.neigh.default.gc_thresh3 lets them run at once",
                pacing.needed,
                pacing.room,
                pacing.rounds,
                humantime::format_duration(pacing.interval)
            ),
        }
    }

    fn waiting_for_lock(&self, lock: &Lock, holder: Option<&LockHolder>, within: Duration) {
        let holder = holder.map(|holder| format!(" ({holder})")).unwrap_or_default();
        eprintln!("waiting for {}{holder} to {}, at most {within:?}", lock.holder(), lock.until());
    }

    fn waiting_for_container(&self, readiness: &Readiness, within: Duration) {
        eprintln!(
            "waiting up to {} for container `{}` to accept tcp/{} at {}: {}",
            humantime::format_duration(within),
            readiness.container,
            readiness.port,
            readiness.address,
            self.starting.hint(&readiness.container, &readiness.namespace)
        );
    }
}

/// Each error of a list on a line of its own.
fn each_line(errors: &[impl std::fmt::Display]) {
    for error in errors {
        eprintln!("error: {error}");
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
