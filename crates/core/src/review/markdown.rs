//! A review as Markdown, ready to post as a pull request comment: a heading, a table of
//! counts, a loud warning for ports exposed on every interface, the reachability changes as
//! tables, a Mermaid drawing of them, and the plan in a `diff` block.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::Review;
use super::mermaid::flowchart;
use super::reachability::{PublishedPort, Reachability};
use crate::graph::{AllowedFlow, Grant};
use crate::plan::{Marks, render_operations};

pub fn render(review: &Review, old_name: &str, new_name: &str) -> String {
    let mut out = format!("## stackctl diff: `{old_name}` → `{new_name}`\n\n");
    if !review.has_changes() {
        out.push_str("No changes: both files want the same kernel objects and the same reachability.\n");
        return out;
    }
    let delta = &review.reachability;
    out.push_str(&exposed_warning(&delta.exposed_on_all_interfaces));
    out.push_str(&counts(review));
    if !delta.is_empty() {
        out.push_str(&reachability(delta));
        let _ = write!(out, "### Reachability graph\n\n```mermaid\n{}```\n\n", flowchart(delta));
    }
    out.push_str(&plan(review));
    out
}

/// A GitHub alert, which stands out from the rest of the comment, naming every port that
/// becomes reachable on all of the host's interfaces.
fn exposed_warning(exposed: &[PublishedPort]) -> String {
    if exposed.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "> [!CAUTION]\n> {} newly published on **every interface** of the host, possibly reachable from \
         outside it:\n",
        plural(exposed.len(), "port is", "ports are")
    );
    for port in exposed {
        let _ = writeln!(out, "> - `{}` on `{}`", port.publication, port.container);
    }
    out.push('\n');
    out
}

fn counts(review: &Review) -> String {
    let summary = review.plan.summary();
    let delta = &review.reachability;
    let rows = [
        ("resources to add", summary.add),
        ("resources to change", summary.change),
        ("resources to destroy", summary.destroy),
        ("flows allowed", delta.flows_allowed.len()),
        ("flows forbidden", delta.flows_forbidden.len()),
        ("ports published", delta.ports_published.len()),
        ("ports unpublished", delta.ports_unpublished.len()),
        ("ports exposed on all interfaces", delta.exposed_on_all_interfaces.len()),
        ("alias moves", delta.alias_moves.len()),
    ];
    let mut out = String::from("| change | count |\n| --- | ---: |\n");
    for (name, count) in rows {
        let _ = writeln!(out, "| {name} | {count} |");
    }
    out.push('\n');
    out
}

fn reachability(delta: &Reachability) -> String {
    let mut out = String::from("### Reachability changes\n\n");
    out.push_str(&flows("Flows allowed", &delta.flows_allowed));
    out.push_str(&flows("Flows forbidden", &delta.flows_forbidden));
    out.push_str(&ports("Ports published", &delta.ports_published));
    out.push_str(&ports("Ports unpublished", &delta.ports_unpublished));
    if !delta.alias_moves.is_empty() {
        out.push_str("**Alias moves**\n\n| network | alias | before | after |\n| --- | --- | --- | --- |\n");
        for alias in &delta.alias_moves {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} | {} |",
                alias.network,
                alias.alias,
                holders(&alias.before),
                holders(&alias.after)
            );
        }
        out.push('\n');
    }
    out
}

fn flows(title: &str, flows: &[AllowedFlow]) -> String {
    if flows.is_empty() {
        return String::new();
    }
    let mut out = format!("**{title}**\n\n| source | destination | network | traffic | granted by |\n");
    out.push_str("| --- | --- | --- | --- | --- |\n");
    for flow in flows {
        let grant = match flow.grant {
            Grant::Declared => "`talks_to`",
            Grant::OpenNetwork => "open network",
        };
        let _ = writeln!(
            out,
            "| `{}` | `{}` | `{}` | `{}` | {grant} |",
            flow.source, flow.destination, flow.network, flow.traffic
        );
    }
    out.push('\n');
    out
}

fn ports(title: &str, ports: &[PublishedPort]) -> String {
    if ports.is_empty() {
        return String::new();
    }
    let mut out = format!("**{title}**\n\n| container | host → container |\n| --- | --- |\n");
    for port in ports {
        let _ = writeln!(out, "| `{}` | `{}` |", port.container, port.publication);
    }
    out.push('\n');
    out
}

fn holders(containers: &BTreeSet<String>) -> String {
    if containers.is_empty() {
        return "*nobody*".to_owned();
    }
    containers.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
}

/// The plan in a collapsed `diff` block, whose summary line is the plan's count.
fn plan(review: &Review) -> String {
    if review.plan.is_empty() {
        return "### Plan\n\nNo changes to kernel objects.\n".to_owned();
    }
    let summary = review.plan.summary();
    let operations = render_operations(&review.plan, Marks::Diff, false);
    format!(
        "### Plan\n\n<details><summary>{summary}</summary>\n\n```diff\n{operations}\n{summary}\n```\n\n</details>\n"
    )
}

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}
