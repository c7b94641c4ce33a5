//! `stackctl check`: probe the live stack and print its truth table. The probes are chosen
//! by the core (`crate::check`) and made by the kernel adapters; this only joins them.

use std::path::Path;
use std::time::Duration;

use clap::ValueEnum;

use super::Exit;
use super::live::{Live, fail, kernel_error, privileged, refuse_dead_namespaces};
use super::output::Style;
use super::stackfile::{Findings, load_stack};
use crate::check::{render_text, survey};
use crate::kernel::Kernel;
use crate::model::Stack;
use crate::state::{Key, Scope};

/// How long `apply --verify` waits for each probe: the default of `check --timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
}

/// `stackctl check`: exits 0 when the live stack does exactly what it declares, 1 when a
/// cell of the truth table is wrong.
pub fn check_command(live: &Live, file: &Path, format: CheckFormat, timeout: Duration) -> Exit {
    let run = || -> Result<Exit, Exit> {
        let (_, stack) = load_stack(file, Findings::ErrorsOnly, live.style)?;
        privileged()?;
        let kernel = live.open_existing(&stack)?;
        Ok(verify(&kernel, &stack, &live.scope(&stack), format, timeout, live.style))
    };
    run().unwrap_or_else(|exit| exit)
}

/// Probes the stack as the kernel has it now and prints the truth table: the end of
/// `stackctl check`, and of `apply --verify` once its changes are made. Exit 0 when every
/// cell is right, 1 when one is wrong or the probes could not be made.
pub fn verify(
    kernel: &Kernel,
    stack: &Stack,
    scope: &Scope,
    format: CheckFormat,
    timeout: Duration,
    style: Style,
) -> Exit {
    let observation = match kernel.observe(scope) {
        Ok(observation) => observation,
        Err(error) => return kernel_error(error),
    };
    if let Err(exit) = refuse_dead_namespaces(scope, &observation) {
        return exit;
    }
    let survey = survey(stack, &observation.state, &observation.host);
    // A probe must start inside its source's namespace: without one, the stack is not
    // applied, and that is the thing to say.
    let unapplied: Vec<&str> = survey
        .containers
        .iter()
        .filter(|container| observation.state.get(&Key::Namespace { container: (*container).clone() }).is_none())
        .map(String::as_str)
        .collect();
    if !unapplied.is_empty() {
        return fail(format!(
            "stack `{}` is not applied on this host: no namespace for container(s) {}; run `stackctl apply` first",
            stack.name,
            unapplied.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(pacing) = kernel.pacing(&survey.probes) {
        eprintln!(
            "note: the probes may make {} neighbour (ARP) entries, and the kernel's neighbour table has room for {}: \
             probing in {} rounds, {} apart; raising net.ipv4.neigh.default.gc_thresh3 lets them run at once",
            pacing.needed,
            pacing.room,
            pacing.rounds,
            humantime::format_duration(pacing.interval)
        );
    }
    let outcomes = match kernel.probe(scope, &survey.probes, timeout) {
        Ok(outcomes) => outcomes,
        Err(error) => return kernel_error(error),
    };
    // After the probes between containers, so that no witness listens while they run.
    let deliveries = match kernel.probe_from_host(scope, &survey.published.probes, timeout) {
        Ok(deliveries) => deliveries,
        Err(error) => return kernel_error(error),
    };
    let table = survey.table(&outcomes, &deliveries);
    match format {
        CheckFormat::Text => print!("{}", render_text(&table, style.color_out)),
        CheckFormat::Json => print!("{}", table.to_json()),
    }
    if table.correct { Exit::Ok } else { Exit::Error }
}
