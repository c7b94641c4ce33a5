//! The commands on the live kernel: plan, apply, destroy, show and exec. Each reads the
//! stack, observes the kernel, calls the core for the plan, and hands it to the adapters.

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use super::output::Style;
use super::stackfile::load_stack;
use super::{Exit, ShowFormat};
use crate::kernel::{
    ApplyLock, HostNamespace, Kernel, KernelError, Observation, Places, enter, has_privileges, read_record,
    serve_names, write_record,
};
use crate::model::{Attachment, Stack};
use crate::plan::{
    Marks, Plan, SAVED_PLAN_VERSION, SavedPlan, collisions, drift, plan as plan_operations, record_after, render_drift,
    render_operations, render_text,
};
use crate::show::{Topology, render_table};
use crate::state::{Desired, KernelState, Scope, fingerprint, lower};

/// What the live commands share: where the host is, and how long to wait for the lock.
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

impl Live {
    pub(super) fn connect(&self, create: bool) -> Outcome<Kernel> {
        Kernel::connect(&self.host, Places::system(), create).map_err(kernel_error)
    }

    fn lock(&self, places: &Places, stack: &str, timeout: Duration) -> Outcome<ApplyLock> {
        let path = places.state.join(self.host.tag()).join(format!("{stack}.lock"));
        ApplyLock::acquire(&path, timeout, |pid| {
            let holder = pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default();
            eprintln!("waiting for another apply of stack `{stack}`{holder} to finish, at most {timeout:?}");
        })
        .map_err(fail)
    }

    /// Observes the kernel and plans the changes that make it match `stack`.
    fn plan(&self, kernel: &Kernel, stack: &Stack, scope: &Scope) -> Outcome<(Observation, Plan)> {
        let observation = kernel.observe(scope).map_err(kernel_error)?;
        if !stack.networks.is_empty() {
            warn_of_dropping_chains(&observation.dropping_forward_chains);
        }
        let desired = lower(stack, &observation.state, &observation.host).map_err(fail)?;
        let plan = plan_operations(&desired, &observation.state);
        refuse_collisions(&plan, &observation)?;
        Ok((observation, plan))
    }

    fn print_plan(&self, kernel: &Kernel, scope: &Scope, observed: &KernelState, plan: &Plan) {
        if let Some(record) = read_record(kernel.places(), &self.host, &scope.stack) {
            print!("{}", render_drift(&drift(&record, observed)));
        }
        print!("{}", render_text(plan, self.style.color_out));
    }

    pub fn plan_command(&self, file: &Path, detailed_exitcode: bool, out: Option<&Path>) -> Exit {
        let run = || -> Outcome<Exit> {
            let (_, stack) = load_stack(file, self.style)?;
            privileged()?;
            let kernel = self.connect(false)?;
            let scope = Scope::of(&stack);
            let (observation, plan) = self.plan(&kernel, &stack, &scope)?;
            self.print_plan(&kernel, &scope, &observation.state, &plan);
            let changes = !plan.is_empty();
            if let Some(out) = out {
                let saved = SavedPlan {
                    format_version: SAVED_PLAN_VERSION,
                    stack_file: file.display().to_string(),
                    host_netns: match &self.host {
                        HostNamespace::Current => None,
                        HostNamespace::Named(name) => Some(name.clone()),
                    },
                    scope,
                    fingerprint: fingerprint(&observation.state),
                    plan,
                };
                let json = serde_json::to_vec_pretty(&saved).expect("a plan serializes");
                std::fs::write(out, json)
                    .map_err(|error| fail(format!("cannot write plan `{}`: {error}", out.display())))?;
                println!("Saved the plan to {}; `stackctl apply {}` applies it.", out.display(), out.display());
            }
            Ok(if detailed_exitcode && changes { Exit::Changes } else { Exit::Ok })
        };
        run().unwrap_or_else(|exit| exit)
    }

    /// `apply`; with `verify`, `check` runs once the changes are made and decides the exit.
    pub fn apply_command(
        &self,
        file: &Path,
        saved: Option<&Path>,
        yes: bool,
        verify: bool,
        lock_timeout: Duration,
    ) -> Exit {
        let run = || -> Outcome<Exit> {
            match saved {
                Some(saved) => self.apply_saved(saved, yes, verify, lock_timeout),
                None => {
                    let (_, stack) = load_stack(file, self.style)?;
                    privileged()?;
                    let kernel = self.connect(true)?;
                    let scope = Scope::of(&stack);
                    let _lock = self.lock(kernel.places(), &scope.stack, lock_timeout)?;
                    let (observation, plan) = self.plan(&kernel, &stack, &scope)?;
                    self.print_plan(&kernel, &scope, &observation.state, &plan);
                    self.confirm_and_apply(&kernel, &scope, &observation.state, &plan, yes, "Apply")?;
                    Ok(if verify { self.verify(&kernel, &stack) } else { Exit::Ok })
                }
            }
        };
        run().unwrap_or_else(|exit| exit)
    }

    fn apply_saved(&self, path: &Path, yes: bool, verify: bool, lock_timeout: Duration) -> Outcome<Exit> {
        let text =
            std::fs::read(path).map_err(|error| fail(format!("cannot read plan `{}`: {error}", path.display())))?;
        let saved: SavedPlan = serde_json::from_slice(&text).map_err(|error| {
            fail(format!("`{}` is not a plan saved by `stackctl plan --out`: {error}", path.display()))
        })?;
        if saved.format_version != SAVED_PLAN_VERSION {
            return Err(fail(format!(
                "plan `{}` has format version {}, this stackctl reads version {SAVED_PLAN_VERSION}",
                path.display(),
                saved.format_version
            )));
        }
        let host = saved.host_netns.clone().map_or(HostNamespace::Current, HostNamespace::Named);
        if host != self.host && self.host != HostNamespace::Current {
            return Err(fail(format!("plan `{}` was made for another host namespace", path.display())));
        }
        let live = Live { host, style: self.style };
        privileged()?;
        let kernel = live.connect(true)?;
        let _lock = live.lock(kernel.places(), &saved.scope.stack, lock_timeout)?;
        let observation = kernel.observe(&saved.scope).map_err(kernel_error)?;
        if fingerprint(&observation.state) != saved.fingerprint {
            return Err(fail(format!(
                "stale plan `{}`: the stack's objects on this host changed since it was made; run `stackctl plan` again",
                path.display()
            )));
        }
        print!("{}", render_text(&saved.plan, self.style.color_out));
        live.confirm_and_apply(&kernel, &saved.scope, &observation.state, &saved.plan, yes, "Apply")?;
        if !verify {
            return Ok(Exit::Ok);
        }
        let (_, stack) = load_stack(Path::new(&saved.stack_file), self.style)?;
        Ok(live.verify(&kernel, &stack))
    }

    /// `apply --verify`: the truth table of what was just applied.
    fn verify(&self, kernel: &Kernel, stack: &Stack) -> Exit {
        println!("\nVerifying with `stackctl check`:");
        super::check::verify(kernel, stack, super::check::CheckFormat::Text, super::check::DEFAULT_TIMEOUT, self.style)
    }

    pub fn destroy_command(&self, file: &Path, yes: bool, lock_timeout: Duration) -> Exit {
        let run = || -> Outcome<Exit> {
            let (_, stack) = load_stack(file, self.style)?;
            privileged()?;
            let kernel = match self.connect(false) {
                Ok(kernel) => kernel,
                // A scratch host that is gone holds nothing of the stack.
                Err(_) if matches!(self.host, HostNamespace::Named(_)) => {
                    println!("No changes. The stack has nothing on this host.");
                    return Ok(Exit::Ok);
                }
                Err(exit) => return Err(exit),
            };
            let scope = Scope::of(&stack);
            let _lock = self.lock(kernel.places(), &scope.stack, lock_timeout)?;
            let observation = kernel.observe(&scope).map_err(kernel_error)?;
            let nothing = Desired::default();
            let plan = plan_operations(&nothing, &observation.state);
            print!("{}", render_text(&plan, self.style.color_out));
            self.confirm_and_apply(&kernel, &scope, &observation.state, &plan, yes, "Destroy")
        };
        run().unwrap_or_else(|exit| exit)
    }

    /// Asks for confirmation when needed, makes the plan, keeps the record, and reports.
    fn confirm_and_apply(
        &self,
        kernel: &Kernel,
        scope: &Scope,
        observed: &KernelState,
        plan: &Plan,
        yes: bool,
        verb: &str,
    ) -> Outcome<Exit> {
        if plan.is_empty() {
            return Ok(Exit::Ok);
        }
        if !yes {
            confirm(verb)?;
        }
        let applied = kernel.apply(scope, observed, plan);
        if applied.forwarding_turned_on {
            eprintln!(
                "note: turned on IPv4 forwarding on the host (net.ipv4.ip_forward = 1): replies to containers' connections out come back through it"
            );
        }
        let record = record_after(observed, &applied.done);
        if let Err(error) = write_record(kernel.places(), &self.host, &scope.stack, &record) {
            eprintln!("warning: cannot keep the apply record of stack `{}`: {error}", scope.stack);
        }
        for drained in &applied.drained {
            let waited = humantime::format_duration(Duration::from_millis(drained.waited.as_millis() as u64));
            match drained.remaining {
                0 => println!("drained `{}`: its connections finished within {waited}", drained.container),
                open => eprintln!(
                    "warning: `{}` still had {open} established connection{} after the drain timeout ({waited}); \
                     removing it closes them",
                    drained.container,
                    if open == 1 { "" } else { "s" }
                ),
            }
        }
        let done = Plan { operations: applied.done, swap: None };
        match applied.failed {
            None => {
                let summary = done.summary();
                println!(
                    "\n{verb} complete: {} added, {} changed, {} destroyed.",
                    summary.add, summary.change, summary.destroy
                );
                Ok(Exit::Ok)
            }
            Some(error) => {
                eprintln!("\nerror: {error}");
                eprintln!(
                    "{} of {} operations were made before it failed; the next apply continues from there:",
                    done.operations.len(),
                    plan.operations.len()
                );
                eprint!("{}", render_operations(&done, Marks::Terraform, self.style.color_err));
                if let Some(swap) = plan.swap.as_ref().filter(|swap| !swap.repointed(done.operations.len())) {
                    let from: Vec<String> = swap.moves.iter().map(|moved| moved.from.join(", ")).collect();
                    eprintln!("the swap stopped before the repoint: the aliases still point at {}", from.join("; "));
                }
                Err(Exit::Error)
            }
        }
    }

    pub fn show_command(&self, file: &Path, format: ShowFormat) -> Exit {
        let run = || -> Outcome<Exit> {
            let (_, stack) = load_stack(file, self.style)?;
            privileged()?;
            let kernel = self.connect(false)?;
            let observation = kernel.observe(&Scope::of(&stack)).map_err(kernel_error)?;
            let topology = Topology::read(&stack, &observation.state);
            match format {
                ShowFormat::Table => print!("{}", render_table(&topology)),
                ShowFormat::Json => print!("{}", topology.to_json()),
            }
            Ok(Exit::Ok)
        };
        run().unwrap_or_else(|exit| exit)
    }
}

/// Runs a command inside a container's namespace; returns only on failure.
pub fn exec_command(file: &Path, container: &str, command: &[OsString], style: Style) -> Exit {
    let run = || -> Outcome<Exit> {
        let (_, stack) = load_stack(file, style)?;
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
        let scope = Scope::of(&stack);
        let places = Places::system();
        let namespace = places.namespace(&scope.namespaces[container]);
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

fn refuse_collisions(plan: &Plan, observation: &Observation) -> Outcome<()> {
    let collisions = collisions(plan, &observation.foreign);
    for collision in &collisions {
        eprintln!("error: {collision}");
    }
    if collisions.is_empty() { Ok(()) } else { Err(Exit::Error) }
}

/// Asks on the terminal; without one, `--yes` is required.
fn confirm(verb: &str) -> Outcome<()> {
    if !std::io::stdin().is_terminal() {
        eprintln!(
            "error: standard input is not a terminal, so nothing can be confirmed: pass --yes to {}",
            verb.to_lowercase()
        );
        return Err(Exit::Usage);
    }
    print!("\n{verb} these changes? Only `yes` is accepted: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        eprintln!("{verb} cancelled: nothing was changed.");
        Err(Exit::Error)
    }
}
