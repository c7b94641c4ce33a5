//! `stackctl check`: probe the live stack and print its truth table. The probes are chosen
//! by the core (`crate::check`) and made by the reconcile's session with the kernel; this
//! only prints.

use std::path::Path;
use std::time::Duration;

use clap::ValueEnum;

use super::Exit;
use super::live::Live;
use super::stackfile::{Findings, load_stack};
use super::terminal::Terminal;
use crate::check::render_text;
use crate::model::Stack;
use crate::reconcile::Reconciler;

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
    let terminal = live.terminal(file);
    let run = || -> Result<Exit, Exit> {
        let (_, stack) = load_stack(file, Findings::ErrorsOnly, live.style)?;
        let reconciler = live.open(&terminal)?;
        Ok(verify(&reconciler, &stack, format, timeout, &terminal))
    };
    run().unwrap_or_else(|exit| exit)
}

/// Probes the stack as the kernel has it now and prints the truth table: the end of
/// `stackctl check`, and of `apply --verify` once its changes are made. Exit 0 when every
/// cell is right, 1 when one is wrong or the probes could not be made.
pub fn verify(
    reconciler: &Reconciler,
    stack: &Stack,
    format: CheckFormat,
    timeout: Duration,
    terminal: &Terminal,
) -> Exit {
    let table = match reconciler.check(stack, timeout, terminal) {
        Ok(table) => table,
        Err(error) => return terminal.fail(error),
    };
    match format {
        CheckFormat::Text => print!("{}", render_text(&table, terminal.style.color_out)),
        CheckFormat::Json => print!("{}", table.to_json()),
    }
    if table.correct { Exit::Ok } else { Exit::Error }
}
