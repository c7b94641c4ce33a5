//! What a picture of the graph shows, decided once for every picture format: the nodes and
//! edges, their labels and their kinds, sorted by name so that a drawing only changes when
//! the stack does.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::visit::EdgeRef;

use crate::graph::{Edge, Node, StackGraph};
use crate::model::{Attachment, HOST, Isolation};

/// The nodes and edges of one picture, in drawing order.
pub struct Scene {
    pub stack: String,
    pub nodes: Vec<SceneNode>,
    pub edges: Vec<SceneEdge>,
}

pub struct SceneNode {
    /// An identifier of letters, digits and `_` only, safe in Mermaid and DOT alike.
    pub id: String,
    pub kind: NodeKind,
    /// The label, one entry per line.
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A bridge network; `open` when every member reaches every other.
    Network {
        open: bool,
    },
    Container,
    /// A published host port; `all_interfaces` when no host address narrows it.
    Port {
        all_interfaces: bool,
    },
    /// The host itself, drawn when a container has a flow to it.
    Host,
}

pub struct SceneEdge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    pub label: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// Container to network, undirected.
    Membership,
    /// Container to container, or to the host: the declared flows from one to the other.
    Flow,
    /// Host port to container.
    Publish,
    /// Two members of an `open` network that reach each other with no declared flow.
    OverPrivilege,
}

impl Scene {
    pub fn of(graph: &StackGraph) -> Scene {
        let stack = graph.stack();
        let mut nodes = Vec::new();
        let mut edges = Vec::new();
        for network in stack.networks.values() {
            let mut details: Vec<String> = network.subnet.iter().map(ToString::to_string).collect();
            if network.internal {
                details.push("internal".to_owned());
            }
            details.push(match network.isolation {
                Isolation::Flows => "isolation: flows".to_owned(),
                Isolation::Open => "isolation: open".to_owned(),
            });
            nodes.push(SceneNode {
                id: network_id(&network.name),
                kind: NodeKind::Network { open: network.isolation == Isolation::Open },
                lines: vec![network.name.clone(), details.join(", ")],
            });
        }
        for container in stack.containers.values() {
            let mut lines = vec![container.name.clone()];
            match container.attachment {
                Attachment::Bridged(_) => {}
                Attachment::Loopback => lines.push("loopback only".to_owned()),
                Attachment::Host => lines.push("host network stack".to_owned()),
            }
            if let Some(netns) = &container.netns {
                lines.push(format!("netns {netns}"));
            }
            nodes.push(SceneNode { id: container_id(&container.name), kind: NodeKind::Container, lines });
        }
        for container in stack.containers.values() {
            for (index, publication) in container.ports.iter().enumerate() {
                let mut lines = vec![publication.to_string()];
                if publication.host_ip.is_none() {
                    lines.push("all interfaces".to_owned());
                }
                let kind = NodeKind::Port { all_interfaces: publication.host_ip.is_none() };
                nodes.push(SceneNode { id: port_id(&container.name, index), kind, lines });
            }
        }
        for container in stack.containers.values() {
            let mut memberships: Vec<_> = container.memberships().iter().collect();
            memberships.sort_by(|a, b| a.network.cmp(&b.network));
            for membership in memberships {
                let mut details = Vec::new();
                match membership.aliases.as_slice() {
                    [] => {}
                    [alias] => details.push(format!("alias {alias}")),
                    aliases => details.push(format!("aliases {}", aliases.join(", "))),
                }
                details.extend(membership.ipv4.map(|ipv4| ipv4.to_string()));
                edges.push(SceneEdge {
                    from: container_id(&container.name),
                    to: network_id(&membership.network),
                    kind: EdgeKind::Membership,
                    label: (!details.is_empty()).then(|| details.join(", ")),
                });
            }
        }
        let flows = flows(graph);
        if flows.keys().any(|(_, destination)| *destination == HOST) {
            nodes.push(SceneNode { id: HOST_ID.to_owned(), kind: NodeKind::Host, lines: vec![HOST.to_owned()] });
        }
        for ((source, destination), traffic) in flows {
            edges.push(SceneEdge {
                from: container_id(source),
                to: if destination == HOST { HOST_ID.to_owned() } else { container_id(destination) },
                kind: EdgeKind::Flow,
                label: Some(traffic.into_iter().collect::<Vec<_>>().join(", ")),
            });
        }
        for container in stack.containers.values() {
            for index in 0..container.ports.len() {
                edges.push(SceneEdge {
                    from: port_id(&container.name, index),
                    to: container_id(&container.name),
                    kind: EdgeKind::Publish,
                    label: None,
                });
            }
        }
        for (network, pairs) in stack.unflowed_pairs_of_open_networks() {
            for (a, b) in pairs {
                edges.push(SceneEdge {
                    from: container_id(&a),
                    to: container_id(&b),
                    kind: EdgeKind::OverPrivilege,
                    label: Some(format!("over-privilege on {}", network)),
                });
            }
        }
        Scene { stack: stack.name.clone(), nodes, edges }
    }
}

/// The declared flows from each container to each other, one entry per pair: a flow that
/// resolves on several networks is drawn once, and a flow through an alias says which.
fn flows<'g>(graph: &'g StackGraph) -> BTreeMap<(&'g str, &'g str), BTreeSet<String>> {
    let petgraph = graph.graph();
    let name = |node| match &petgraph[node] {
        Node::Container(name) => name.as_str(),
        Node::Host => HOST,
        Node::Network(_) | Node::Port(_) => unreachable!("flow edges join containers and the host"),
    };
    let mut flows: BTreeMap<(&str, &str), BTreeSet<String>> = BTreeMap::new();
    for edge in petgraph.edge_references() {
        let Edge::Flow { traffic, target, .. } = edge.weight() else { continue };
        let (source, destination) = (name(edge.source()), name(edge.target()));
        let text = if target == destination { traffic.to_string() } else { format!("{traffic} via {target}") };
        flows.entry((source, destination)).or_default().insert(text);
    }
    flows
}

/// The host's node: no kind prefix of the others starts with `h`.
const HOST_ID: &str = "h_host";

fn network_id(name: &str) -> String {
    format!("n_{}", escape(name))
}

fn container_id(name: &str) -> String {
    format!("c_{}", escape(name))
}

/// A port is named by its owner and its place in the owner's `ports` list, which no other
/// port shares.
fn port_id(container: &str, index: usize) -> String {
    format!("p_{}_{index}", escape(container))
}

/// Rewrites a name into letters, digits and `_`, one to one: Mermaid reads `-` and `.` as
/// parts of arrows and DOT does not allow them in a bare identifier. `_` doubles so that
/// `_h` (for `-`) and `_d` (for `.`) stay unambiguous, and the kind prefix keeps names like
/// `end` or `o1` from reading as Mermaid keywords or arrow heads.
fn escape(name: &str) -> String {
    let mut escaped = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '_' => escaped.push_str("__"),
            '-' => escaped.push_str("_h"),
            '.' => escaped.push_str("_d"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_names_are_plain_identifiers_and_never_collide() {
        let names = ["web", "web_nw", "web-nw", "web.nw", "web__nw", "web_h", "a-_b", "a_-b", "end", "9lives"];
        let escaped: BTreeSet<String> = names.iter().map(|name| escape(name)).collect();
        assert_eq!(escaped.len(), names.len(), "{escaped:?}");
        for id in &escaped {
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{id}");
        }
        let cases = [("web_nw", "web__nw"), ("cat-db", "cat_hdb"), ("v1.2", "v1_d2"), ("a-_b", "a_h__b")];
        for (name, expected) in cases {
            assert_eq!(escape(name), expected, "{name}");
        }
    }

    #[test]
    fn identifiers_carry_their_kind() {
        assert_eq!(network_id("end"), "n_end");
        assert_eq!(container_id("o-1"), "c_o_h1");
        assert_eq!(port_id("web_1", 2), "p_web__1_2");
    }
}
