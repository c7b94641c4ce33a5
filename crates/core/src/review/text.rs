//! A review as text for a terminal: the plan in Terraform's idiom, then the reachability
//! changes in the same `+`/`-`/`~` idiom, with ports exposed on every interface first.

use std::fmt::Write;

use anstyle::{AnsiColor, Style};

use super::Review;
use super::reachability::Reachability;
use crate::graph::{AllowedFlow, Grant};
use crate::plan::render_text;

pub fn render(review: &Review, old_name: &str, new_name: &str, color: bool) -> String {
    let mut out = format!("Kernel objects, from {old_name} to {new_name}:\n\n");
    // The planner's own message for an empty plan speaks of a live kernel, which a review
    // of two files never looks at.
    if review.plan.is_empty() {
        out.push_str("No changes to kernel objects.\n");
    } else {
        out.push_str(&render_text(&review.plan, color));
    }
    out.push('\n');
    out.push_str(&reachability(&review.reachability, color));
    out
}

fn reachability(delta: &Reachability, color: bool) -> String {
    if delta.is_empty() {
        return "No reachability changes.\n".to_owned();
    }
    let paint = |color_of: AnsiColor| if color { Style::new().fg_color(Some(color_of.into())) } else { Style::new() };
    let loud = if color { paint(AnsiColor::Red).bold() } else { Style::new() };
    let mut out = String::from("Reachability changes:\n");
    let mut line = |style: Style, symbol: &str, what: &str, detail: &str| {
        let _ = writeln!(out, "{style}{symbol:>3} {what:<9}{style:#} {detail}");
    };
    for port in &delta.exposed_on_all_interfaces {
        line(loud, "!", "EXPOSED", &format!("{port} listens on every interface of the host"));
    }
    for flow in &delta.flows_allowed {
        line(paint(AnsiColor::Green), "+", "allow", &flow_label(flow));
    }
    for flow in &delta.flows_forbidden {
        line(paint(AnsiColor::Red), "-", "forbid", &flow_label(flow));
    }
    for port in &delta.ports_published {
        line(paint(AnsiColor::Green), "+", "publish", &port.to_string());
    }
    for port in &delta.ports_unpublished {
        line(paint(AnsiColor::Red), "-", "unpublish", &port.to_string());
    }
    for alias in &delta.alias_moves {
        line(paint(AnsiColor::Yellow), "~", "alias", &alias.to_string());
    }
    out
}

/// A flow named as the plan names a flow rule: `nginx -> app tcp/5000 on web_nw`.
/// A flow granted by an open network says so, since no `talks_to` line explains it.
fn flow_label(flow: &AllowedFlow) -> String {
    let grant = match flow.grant {
        Grant::Declared => "",
        Grant::OpenNetwork => " (open network)",
    };
    format!("{} -> {} {} on {}{grant}", flow.source, flow.destination, flow.traffic, flow.network)
}
