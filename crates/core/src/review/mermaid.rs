//! The reachability delta as a Mermaid flowchart, which GitHub draws in a comment: the
//! containers a change touches, flows and publications added as thick green edges and
//! removed ones as dashed red edges, and each moved alias as a node pointing at its holders.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::reachability::{PublishedPort, Reachability};

const ADDED: &str = "stroke:#1a7f37,stroke-width:3px";
const REMOVED: &str = "stroke:#cf222e,stroke-width:2px,stroke-dasharray:5 5";

/// Whether an edge is new, gone, or context that stays.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Added,
    Removed,
    Kept,
}

/// The flowchart's source, without the code fence.
pub fn flowchart(delta: &Reachability) -> String {
    let mut chart = Flowchart::default();
    for container in touched(delta) {
        let id = format!("c{}", chart.containers.len());
        let _ = writeln!(chart.nodes, "    {id}[\"{container}\"]");
        chart.containers.insert(container, id);
    }
    for (flows, change) in [(&delta.flows_allowed, Change::Added), (&delta.flows_forbidden, Change::Removed)] {
        for flow in flows {
            let label = format!("{} on {}", flow.traffic, flow.network);
            let (from, to) = (chart.containers[&flow.source].clone(), chart.containers[&flow.destination].clone());
            chart.edge(&from, &to, Some(&label), change);
        }
    }
    for (ports, change) in [(&delta.ports_published, Change::Added), (&delta.ports_unpublished, Change::Removed)] {
        for port in ports {
            let id = chart.port_node(port, delta.exposed_on_all_interfaces.contains(port));
            let container = chart.containers[&port.container].clone();
            chart.edge(&id, &container, None, change);
        }
    }
    for (index, alias) in delta.alias_moves.iter().enumerate() {
        let id = format!("a{index}");
        let _ = writeln!(chart.nodes, "    {id}([\"alias {} on {}\"])", alias.alias, alias.network);
        for holder in alias.before.union(&alias.after) {
            let change = match (alias.before.contains(holder), alias.after.contains(holder)) {
                (false, _) => Change::Added,
                (_, false) => Change::Removed,
                (true, true) => Change::Kept,
            };
            let container = chart.containers[holder].clone();
            chart.edge(&id, &container, None, change);
        }
    }
    chart.finish()
}

/// Every container a change names, sorted, so node ids are stable.
fn touched(delta: &Reachability) -> BTreeSet<String> {
    let flows = delta.flows_allowed.iter().chain(&delta.flows_forbidden);
    let ports = delta.ports_published.iter().chain(&delta.ports_unpublished);
    flows
        .flat_map(|flow| [flow.source.clone(), flow.destination.clone()])
        .chain(ports.map(|port| port.container.clone()))
        .chain(delta.alias_moves.iter().flat_map(|alias| alias.before.union(&alias.after).cloned()))
        .collect()
}

#[derive(Default)]
struct Flowchart {
    nodes: String,
    edges: String,
    /// Node ids by container name.
    containers: BTreeMap<String, String>,
    ports: usize,
    any_exposed: bool,
    /// Edge indexes, for `linkStyle`, which styles edges by their position in the source.
    added_edges: Vec<usize>,
    removed_edges: Vec<usize>,
    edge_count: usize,
}

impl Flowchart {
    fn port_node(&mut self, port: &PublishedPort, exposed: bool) -> String {
        let id = format!("p{}", self.ports);
        self.ports += 1;
        self.any_exposed |= exposed;
        let class = if exposed { ":::exposed" } else { "" };
        let _ = writeln!(self.nodes, "    {id}[/\"{}\"/]{class}", port.publication);
        id
    }

    fn edge(&mut self, from: &str, to: &str, label: Option<&str>, change: Change) {
        let arrow = match change {
            Change::Added => "==>",
            Change::Removed => "-.->",
            Change::Kept => "-->",
        };
        let label = label.map(|label| format!("|\"{label}\"|")).unwrap_or_default();
        let _ = writeln!(self.edges, "    {from} {arrow}{label} {to}");
        match change {
            Change::Added => self.added_edges.push(self.edge_count),
            Change::Removed => self.removed_edges.push(self.edge_count),
            Change::Kept => {}
        }
        self.edge_count += 1;
    }

    fn finish(self) -> String {
        let mut out = format!("flowchart LR\n{}{}", self.nodes, self.edges);
        for (indexes, style) in [(&self.added_edges, ADDED), (&self.removed_edges, REMOVED)] {
            if !indexes.is_empty() {
                let list = indexes.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
                let _ = writeln!(out, "    linkStyle {list} {style}");
            }
        }
        if self.any_exposed {
            let _ = writeln!(out, "    classDef exposed fill:#ffebe9,stroke:#cf222e,stroke-width:3px");
        }
        out
    }
}
