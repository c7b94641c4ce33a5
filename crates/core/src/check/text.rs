//! The truth table as text for a terminal. Containers are numbered, so that the columns
//! stay one mark wide however long the names are: the rows carry number and name, the
//! columns the number only. The published ports follow in a table of their own, whose
//! columns are the host's addresses, numbered too.

use std::fmt::Write;

use anstyle::{AnsiColor, Style};

use super::published::Missing;
use super::{Cell, Expected, Mark, PublishedCell, TruthTable};

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
    render_published(&mut out, table, wrong_style);

    out.push('\n');
    let legend = [
        (Mark::Allowed, "allowed, as declared", Mark::Leak, "leak: must be blocked, reached"),
        (Mark::Blocked, "blocked, as declared", Mark::Broken, "broken: must be reached, blocked"),
    ];
    for (left, meaning, right, right_meaning) in legend {
        let _ = writeln!(out, "  {}  {meaning:<24}{}  {right_meaning}", left.symbol(), right.symbol());
    }
    let _ = writeln!(out, "  \\  a container and itself: not probed");
    // Rare, and only in the published ports: explained where it is seen.
    if table.published.iter().any(|cell| cell.mark == Mark::NotApplicable) {
        let _ = writeln!(
            out,
            "  {}  not applicable: the host lacks the address, nothing is sent there",
            Mark::NotApplicable.symbol()
        );
    }

    let wrong: Vec<String> = table
        .cells
        .iter()
        .flat_map(wrong_lines)
        .chain(table.published.iter().flat_map(published_wrong_lines))
        .collect();
    if !wrong.is_empty() {
        out.push_str("\nwrong:\n");
        for line in &wrong {
            let _ = writeln!(out, "  {wrong_style}{line}{wrong_style:#}");
        }
    }
    let summary = &table.summary;
    let published = match (summary.published, table.host_addresses.len()) {
        (0, _) | (_, 0) => String::new(),
        (cells, columns) => {
            let (rows, plural) = (cells / columns, if columns == 1 { "" } else { "es" });
            format!(", {rows} published port{} on {columns} host address{plural}", if rows == 1 { "" } else { "s" })
        }
    };
    let _ = writeln!(out, "\n{} pairs{published}, {} probes, {} wrong", summary.pairs, summary.probes, summary.wrong);
    out
}

/// The published ports: a row per published port range, a column per host address.
fn render_published(out: &mut String, table: &TruthTable, wrong_style: Style) {
    let columns = table.host_addresses.len();
    if table.published.is_empty() || columns == 0 {
        return;
    }
    let number_width = columns.to_string().len();
    let rows: Vec<&[PublishedCell]> = table.published.chunks(columns).collect();
    let name_width = rows.iter().map(|row| row[0].container.len()).max().unwrap_or(0);
    let labels: Vec<String> =
        rows.iter().map(|row| format!("{:<name_width$} {}", row[0].container, row[0].publication())).collect();
    let label_width = labels.iter().map(String::len).max().unwrap_or(0);

    out.push_str("\npublished ports: from the host, on each column's address of the host\n\n");
    let mut header = " ".repeat(2 + label_width);
    for column in 1..=columns {
        let _ = write!(header, " {column:>number_width$}");
    }
    let _ = writeln!(out, "{}", header.trim_end());
    for (row, label) in rows.iter().zip(&labels) {
        let mut line = format!("  {label:<label_width$}");
        for cell in *row {
            let style = if cell.mark.is_wrong() { wrong_style } else { Style::new() };
            let _ = write!(line, " {style}{:>number_width$}{style:#}", cell.mark.symbol());
        }
        let _ = writeln!(out, "{line}");
    }
    let key: Vec<String> = table
        .host_addresses
        .iter()
        .enumerate()
        .map(|(index, address)| format!("{:>number_width$} {address}", index + 1))
        .collect();
    let _ = writeln!(out, "\n  {}", key.join("   "));
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

/// One line per wrong probe of a published cell, or why it could not be probed:
/// `host -> 10.89.0.1:8080/tcp (nginx 127.0.0.1:8080->80/tcp): must not arrive in nginx,
/// arrived (the witness in the container answered)`.
fn published_wrong_lines(cell: &PublishedCell) -> Vec<String> {
    let label = format!("{} {}", cell.container, cell.publication());
    let mut lines: Vec<String> = cell
        .probes
        .iter()
        .filter(|probe| !probe.correct())
        .map(|probe| {
            let (must, was) = match probe.expected {
                Expected::Allowed => ("must arrive", "did not"),
                Expected::Blocked => ("must not arrive", "arrived"),
            };
            format!(
                "host -> {}:{}/{} ({label}): {must} in {}, {was} ({})",
                cell.address,
                probe.port,
                cell.protocol,
                cell.container,
                probe.outcome.describe(cell.protocol)
            )
        })
        .collect();
    if let Some(missing) = cell.missing {
        let why = match missing {
            Missing::HostAddress => format!("the host has no address {}", cell.address),
            Missing::HostPort => "the host's rules hold no port picked for it".to_owned(),
            Missing::ContainerAddress => format!("{} has no address to forward to", cell.container),
        };
        lines.push(format!("host -> {} ({label}): must arrive in {}, {why}", cell.address, cell.container));
    }
    lines
}
