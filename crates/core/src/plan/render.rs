//! Plans as text, in Terraform's idiom: `+` create, `~` change in place, `-` destroy,
//! `-/+` replace, and a closing count.

use std::collections::HashMap;
use std::fmt::Write;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use super::{Fate, Operation, Plan, Stranded, Swap};
use crate::state::{Key, Resource};

/// The counts of a plan, as Terraform counts them: a replacement is one add and one destroy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for operation in &self.operations {
            match operation {
                Operation::Create { .. } => summary.add += 1,
                Operation::Update { .. } => summary.change += 1,
                Operation::Delete { .. } => summary.destroy += 1,
            }
        }
        summary
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plan: {} to add, {} to change, {} to destroy.", self.add, self.change, self.destroy)
    }
}

/// The widest label column; longer labels push their attributes right.
const LABEL_WIDTH: usize = 28;

/// How the lines of a plan mark their change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marks {
    /// Terraform's: `+`, `~`, `-` and `-/+`, right-aligned in three columns.
    Terraform,
    /// A unified diff's, in the first column where diff highlighting looks for them: `+`
    /// and `-` as they are, `-/+` as a deletion, and `!` for a change in place.
    Diff,
}

/// The plan as lines of text, one per resource, ending with the summary.
pub fn render_text(plan: &Plan, color: bool) -> String {
    if plan.is_empty() {
        return "No changes. The kernel matches the stack.\n".to_owned();
    }
    format!("{}\n{}{}\n", render_operations(plan, Marks::Terraform, color), render_breaks(plan), plan.summary())
}

/// What cannot move make before break, and why.
fn render_breaks(plan: &Plan) -> String {
    plan.breaks.iter().map(|cut| format!("Note: {cut}.\n")).collect()
}

/// One line per changed resource, marked as `marks` says.
pub fn render_operations(plan: &Plan, marks: Marks, color: bool) -> String {
    let replaced = plan.replaced();
    // The old value of each replaced resource, to show what forces the replacement.
    let old_values: HashMap<Key, &Resource> = plan
        .operations
        .iter()
        .filter_map(|operation| match operation {
            Operation::Delete { resource } if replaced.contains(&resource.key()) => Some((resource.key(), resource)),
            _ => None,
        })
        .collect();
    let width =
        plan.operations.iter().map(|operation| operation.key().label().len()).max().unwrap_or(0).min(LABEL_WIDTH);
    let mut out = String::new();
    for (index, operation) in plan.operations.iter().enumerate() {
        if let Some(swap) = &plan.swap {
            if index == swap.repoint_at {
                out.push_str(&render_swap(swap, marks, color, width));
            }
            // The repoint is the swap's line.
            if (swap.repoint_at..swap.remove_at).contains(&index) {
                continue;
            }
        }
        let key = operation.key();
        let (symbol, style, detail) = match operation {
            // The delete half of a replacement is shown once, at its create.
            Operation::Delete { .. } if replaced.contains(&key) => continue,
            Operation::Delete { resource } => ("-", AnsiColor::Red, attributes(resource)),
            Operation::Create { resource } if replaced.contains(&key) => {
                ("-/+", AnsiColor::Magenta, replacement(old_values[&key], resource))
            }
            Operation::Create { resource } => ("+", AnsiColor::Green, attributes(resource)),
            Operation::Update { before, after } => ("~", AnsiColor::Yellow, changed(before, after)),
        };
        let style = if color { Style::new().fg_color(Some(style.into())) } else { Style::new() };
        let mark = match (marks, symbol) {
            (Marks::Terraform, symbol) => format!("{symbol:>3}"),
            (Marks::Diff, "~") => "!  ".to_owned(),
            (Marks::Diff, symbol) => format!("{symbol:<3}"),
        };
        let _ = writeln!(out, "{style}{mark} {:<7} {:<width$}{style:#} {detail}", key.kind().name(), key.label());
        if let (Key::Namespace { container }, Operation::Delete { .. } | Operation::Create { .. }) = (&key, operation) {
            out.push_str(&render_stranded(&plan.stranded, container));
        }
    }
    out
}

/// The processes that run in a namespace the plan deletes, under its line.
fn render_stranded(stranded: &Stranded, container: &str) -> String {
    let Some(processes) = stranded.processes.get(container) else { return String::new() };
    let fate = match stranded.fate {
        Fate::LeftRunning => "left running, cut off; --kill-processes ends it",
        Fate::Ended => "ended first: --kill-processes",
    };
    let indent = " ".repeat(12);
    let mut out = String::new();
    for process in processes {
        let _ = writeln!(out, "{indent}runs   pid {}: {} ({fate})", process.pid, process.shown());
    }
    out
}

/// A swap, in Terraform's idiom for create-before-destroy (`+/-`): which aliases move
/// where, what is verified before, and how long the old containers drain after.
fn render_swap(swap: &Swap, marks: Marks, color: bool, width: usize) -> String {
    let style = if color { Style::new().fg_color(Some(AnsiColor::Cyan.into())) } else { Style::new() };
    let mark = match marks {
        Marks::Terraform => "+/-",
        Marks::Diff => "!  ",
    };
    let mut out = String::new();
    for moved in &swap.moves {
        let label = format!("{}@{}", moved.alias, moved.network);
        let _ = writeln!(
            out,
            "{style}{mark} {:<7} {label:<width$}{style:#} {} -> {} at {} (make before break)",
            "swap",
            moved.from.join(", "),
            moved.to.join(", "),
            moved.address
        );
    }
    let indent = " ".repeat(12);
    let verify = if swap.verify.is_empty() {
        "nothing: no flow declares a TCP port to the aliases".to_owned()
    } else {
        swap.verify
            .iter()
            .map(|readiness| format!("{} accepts tcp/{} at {}", readiness.container, readiness.port, readiness.address))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "{indent}verify {verify}; then repoint in one rule transaction");
    // A container that stays drains only what reached it through the aliases.
    let leaving: Vec<String> = swap
        .drain
        .iter()
        .map(|leaving| {
            if !leaving.addresses.is_empty() {
                return format!("of {}", leaving.container);
            }
            // Where it stays, only the connections of the flows that go drain.
            let aliases: Vec<&str> = swap
                .moves
                .iter()
                .filter(|moved| moved.left.iter().any(|backend| backend.container == leaving.container))
                .map(|moved| moved.alias.as_str())
                .collect();
            format!("through {} to {}", aliases.join(", "), leaving.container)
        })
        .collect();
    if leaving.is_empty() {
        let _ = writeln!(out, "{indent}drain  nothing: what follows cuts no connection of the containers it leaves");
    } else {
        let _ = writeln!(
            out,
            "{indent}drain  established connections {} finish, up to {}, before what follows",
            leaving.join(", "),
            swap.timeout
        );
    }
    out
}

fn attributes(resource: &Resource) -> String {
    resource.attributes().into_iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join(" ")
}

/// What forces a replacement: the attributes that change, or, when none does, the thing the
/// resource lives in, which is itself replaced.
fn replacement(before: &Resource, after: &Resource) -> String {
    let changes = changed(before, after);
    if changes.is_empty() {
        "recreated with what it lives in".to_owned()
    } else {
        format!("{changes} (forces replacement)")
    }
}

/// The attributes that differ, as `name: old -> new`.
pub(super) fn changed(before: &Resource, after: &Resource) -> String {
    before
        .attributes()
        .into_iter()
        .zip(after.attributes())
        .filter(|(old, new)| old != new)
        .map(|((name, old), (_, new))| format!("{name}: {old} -> {new}"))
        .collect::<Vec<_>>()
        .join(", ")
}
