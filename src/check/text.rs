//! The truth table as text for a terminal. Containers are numbered, so that the columns
//! stay one mark wide however long the names are: the rows carry number and name, the
//! columns the number only.

use std::fmt::Write;

use anstyle::{AnsiColor, Style};

use super::{Cell, Expected, Mark, TruthTable};

pub fn render_text(table: &TruthTable, color: bool) -> String {
    let wrong_style = if color { Style::new().fg_color(Some(AnsiColor::Red.into())).bold() } else { Style::new() };
    let count = table.containers.len();
    let number_width = count.to_string().len();
    let name_width = table.containers.iter().map(String::len).max().unwrap_or(0);

    let mut out = format!("stack {}: from each row's namespace to each column's addresses\n\n", table.stack);
    let mut header = " ".repeat(2 + number_width + 1 + name_width);
    for column in 1..=count {
        let _ = write!(header, " {column:>number_width$}");
    }
    let _ = writeln!(out, "{}", header.trim_end());
    // The cells come row by row, without the diagonal.
    let mut cells = table.cells.iter();
    for (row, name) in table.containers.iter().enumerate() {
        let mut line = format!("  {:>number_width$} {name:<name_width$}", row + 1);
        for column in 0..count {
            let (symbol, style) = if column == row {
                ('\\', Style::new())
            } else {
                let mark = cells.next().expect("a cell per ordered pair").mark;
                (mark.symbol(), if mark.is_wrong() { wrong_style } else { Style::new() })
            };
            let _ = write!(line, " {style}{symbol:>number_width$}{style:#}");
        }
        let _ = writeln!(out, "{line}");
    }

    out.push('\n');
    let legend = [
        (Mark::Allowed, "allowed, as declared", Mark::Leak, "leak: must be blocked, reached"),
        (Mark::Blocked, "blocked, as declared", Mark::Broken, "broken: must be reached, blocked"),
    ];
    for (left, meaning, right, right_meaning) in legend {
        let _ = writeln!(out, "  {}  {meaning:<24}{}  {right_meaning}", left.symbol(), right.symbol());
    }

    let wrong: Vec<String> = table.cells.iter().flat_map(wrong_lines).collect();
    if !wrong.is_empty() {
        out.push_str("\nwrong:\n");
        for line in &wrong {
            let _ = writeln!(out, "  {wrong_style}{line}{wrong_style:#}");
        }
    }
    let summary = &table.summary;
    let _ = writeln!(out, "\n{} pairs, {} probes, {} wrong", summary.pairs, summary.probes, summary.wrong);
    out
}

/// One line per wrong probe of a cell, and per allowed flow it could not probe:
/// `nginx -> db 10.89.1.3:5432/tcp: must be blocked, reached (connection refused)`.
fn wrong_lines(cell: &Cell) -> Vec<String> {
    let pair = format!("{} -> {}", cell.source, cell.destination);
    let probes = cell.probes.iter().filter(|probe| !probe.correct()).map(|probe| {
        let (must, was) = match probe.expected {
            Expected::Allowed => ("reached", "blocked"),
            Expected::Blocked => ("blocked", "reached"),
        };
        format!(
            "{pair} {}:{}/{}: must be {must}, {was} ({})",
            probe.address,
            probe.port,
            probe.protocol,
            probe.outcome.describe(probe.protocol)
        )
    });
    let missing = cell
        .missing
        .iter()
        .map(|network| format!("{pair} on {network}: must be reached, {} has no address there", cell.destination));
    probes.chain(missing).collect()
}
