//! The least-privilege graph: containers, networks, declared flows and published ports,
//! and the questions asked of them: which flows are allowed, which pairs share a network
//! without a flow, and in which order containers are wired. The drawings of the graph are
//! in [`draw()`]; [`suggest()`] derives a fresh network layout from the declared flows alone.

mod draw;
mod suggest;

pub use draw::{Drawing, draw};
pub use suggest::suggest;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;

use crate::model::{HOST, Isolation, Publication, Stack, Traffic};

/// A node of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Container(String),
    Network(String),
    /// A published port.
    Port(Publication),
    /// The host itself, as the target of flows to its own services.
    Host,
}

/// An edge of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edge {
    /// Container to network: a membership, with its aliases there.
    Member { aliases: Vec<String> },
    /// Container to container, or container to the host: a declared flow, resolved on one
    /// network (a flow to the host on each network of its source: any of them reaches it).
    Flow { network: String, traffic: Traffic, target: String },
    /// Port to container: traffic from the host's port to the container.
    Publish,
}

/// Why a flow is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// A `talks_to` entry asks for it.
    Declared,
    /// Both ends are on an `open` network, where everything passes.
    OpenNetwork,
}

/// One allowed flow: `source` may open connections to `destination` on `network`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct AllowedFlow {
    pub source: String,
    pub destination: String,
    pub network: String,
    pub traffic: Traffic,
    pub grant: Grant,
}

/// The graph of one stack.
pub struct StackGraph<'a> {
    stack: &'a Stack,
    graph: DiGraph<Node, Edge>,
    containers: HashMap<&'a str, NodeIndex>,
}

impl<'a> StackGraph<'a> {
    pub fn build(stack: &'a Stack) -> Self {
        let mut graph = DiGraph::new();
        let networks: HashMap<&str, NodeIndex> =
            stack.networks.keys().map(|name| (name.as_str(), graph.add_node(Node::Network(name.clone())))).collect();
        let containers: HashMap<&str, NodeIndex> = stack
            .containers
            .keys()
            .map(|name| (name.as_str(), graph.add_node(Node::Container(name.clone()))))
            .collect();
        let host = graph.add_node(Node::Host);
        for container in stack.containers.values() {
            let node = containers[container.name.as_str()];
            for membership in container.memberships() {
                graph.add_edge(
                    node,
                    networks[membership.network.as_str()],
                    Edge::Member { aliases: membership.aliases.clone() },
                );
            }
            for flow in &container.talks_to {
                if flow.target == HOST {
                    for membership in container.memberships() {
                        let edge = Edge::Flow {
                            network: membership.network.clone(),
                            traffic: flow.traffic,
                            target: HOST.to_owned(),
                        };
                        graph.add_edge(node, host, edge);
                    }
                    continue;
                }
                for (network, destination) in stack.resolve(container, &flow.target) {
                    let edge =
                        Edge::Flow { network: network.to_owned(), traffic: flow.traffic, target: flow.target.clone() };
                    graph.add_edge(node, containers[destination.name.as_str()], edge);
                }
            }
            for publication in &container.ports {
                let port = graph.add_node(Node::Port(*publication));
                graph.add_edge(port, node, Edge::Publish);
            }
        }
        StackGraph { stack, graph, containers }
    }

    pub fn stack(&self) -> &'a Stack {
        self.stack
    }

    /// The underlying petgraph graph, for drawing.
    pub fn graph(&self) -> &DiGraph<Node, Edge> {
        &self.graph
    }

    /// Every allowed flow, sorted: the declared ones resolved to containers and networks, and
    /// on `open` networks every ordered pair of members.
    pub fn allowed_flows(&self) -> Vec<AllowedFlow> {
        let mut flows: BTreeSet<AllowedFlow> = self.declared_flows().collect();
        for network in self.stack.networks.values().filter(|network| network.isolation == Isolation::Open) {
            for source in self.stack.members(&network.name) {
                for destination in
                    self.stack.members(&network.name).filter(|destination| destination.name != source.name)
                {
                    flows.insert(AllowedFlow {
                        source: source.name.clone(),
                        destination: destination.name.clone(),
                        network: network.name.clone(),
                        traffic: Traffic::All,
                        grant: Grant::OpenNetwork,
                    });
                }
            }
        }
        flows.into_iter().collect()
    }

    /// The declared flows, resolved to one destination container (or [`HOST`]) and network
    /// each.
    pub fn declared_flows(&self) -> impl Iterator<Item = AllowedFlow> + '_ {
        self.graph.edge_references().filter_map(|edge| match edge.weight() {
            Edge::Flow { network, traffic, .. } => Some(AllowedFlow {
                source: self.container_name(edge.source()).to_owned(),
                destination: self.end_name(edge.target()).to_owned(),
                network: network.clone(),
                traffic: *traffic,
                grant: Grant::Declared,
            }),
            Edge::Member { .. } | Edge::Publish => None,
        })
    }

    /// Containers in the order they are wired: every container after the targets of its
    /// flows, so that names exist before a dependent starts. Containers in a cycle of flows
    /// are wired together, by name; otherwise ties go by name too, so the order is stable.
    pub fn wiring_order(&self) -> Vec<String> {
        // Flow edges only: a cycle through networks or ports says nothing about start-up.
        let mut flows: DiGraph<&str, ()> = DiGraph::with_capacity(self.containers.len(), 0);
        let mut node_of: HashMap<NodeIndex, NodeIndex> = HashMap::with_capacity(self.containers.len());
        for name in self.stack.containers.keys() {
            node_of.insert(self.containers[name.as_str()], flows.add_node(name));
        }
        // The host is no container: it is there before any of them.
        let between_containers =
            |edge: &petgraph::graph::EdgeReference<'_, Edge>| self.graph[edge.target()] != Node::Host;
        for edge in self
            .graph
            .edge_references()
            .filter(|edge| matches!(edge.weight(), Edge::Flow { .. }))
            .filter(between_containers)
        {
            flows.add_edge(node_of[&edge.source()], node_of[&edge.target()], ());
        }
        let components = tarjan_scc(&flows);
        let mut component_of = vec![0; flows.node_count()];
        for (index, component) in components.iter().enumerate() {
            for node in component {
                component_of[node.index()] = index;
            }
        }
        // A component waits for the components its members talk to.
        let mut waiting = vec![0usize; components.len()];
        let mut dependents: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); components.len()];
        for edge in flows.edge_references() {
            let (from, to) = (component_of[edge.source().index()], component_of[edge.target().index()]);
            if from != to && dependents[to].insert(from) {
                waiting[from] += 1;
            }
        }
        let names: Vec<Vec<&str>> = components
            .iter()
            .map(|component| {
                let mut names: Vec<&str> = component.iter().map(|node| flows[*node]).collect();
                names.sort_unstable();
                names
            })
            .collect();
        let mut ready: BinaryHeap<Reverse<(&str, usize)>> = (0..components.len())
            .filter(|component| waiting[*component] == 0)
            .map(|component| Reverse((names[component][0], component)))
            .collect();
        let mut order = Vec::with_capacity(self.containers.len());
        while let Some(Reverse((_, component))) = ready.pop() {
            order.extend(names[component].iter().map(|name| (*name).to_owned()));
            for dependent in &dependents[component] {
                waiting[*dependent] -= 1;
                if waiting[*dependent] == 0 {
                    ready.push(Reverse((names[*dependent][0], *dependent)));
                }
            }
        }
        order
    }

    fn container_name(&self, node: NodeIndex) -> &str {
        match &self.graph[node] {
            Node::Container(name) => name,
            Node::Network(_) | Node::Port(_) | Node::Host => unreachable!("flow edges start at containers"),
        }
    }

    /// The name of a flow's destination: a container's, or [`HOST`].
    fn end_name(&self, node: NodeIndex) -> &str {
        match &self.graph[node] {
            Node::Host => HOST,
            _ => self.container_name(node),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PortRange, Protocol, validate_file};
    use crate::spec::SourceFile;

    fn stack(text: &str) -> Stack {
        let validated = validate_file(&SourceFile { name: "test.yaml".to_owned(), text: text.to_owned() });
        validated.stack.unwrap_or_else(|| panic!("invalid: {:#?}\n{text}", validated.diagnostics))
    }

    const SCENARIO_ONE: &str = "name: shop
networks:
  web_nw: {}
  db_nw: {}
containers:
  nginx: { networks: [web_nw], talks_to: ['app:5000/tcp'] }
  flaskapp:
    networks: { web_nw: { aliases: [app] }, db_nw: {} }
    talks_to: ['db:5432']
  db: { networks: [db_nw] }
";

    #[test]
    fn declared_flows_resolve_aliases_to_containers_and_networks() {
        let stack = stack(SCENARIO_ONE);
        let tcp = |port| Traffic::Ports { protocol: Protocol::Tcp, ports: PortRange::single(port) };
        let flow = |source: &str, destination: &str, network: &str, traffic| AllowedFlow {
            source: source.to_owned(),
            destination: destination.to_owned(),
            network: network.to_owned(),
            traffic,
            grant: Grant::Declared,
        };
        assert_eq!(
            StackGraph::build(&stack).allowed_flows(),
            [flow("flaskapp", "db", "db_nw", tcp(5432)), flow("nginx", "flaskapp", "web_nw", tcp(5000))]
        );
    }

    #[test]
    fn open_networks_allow_every_ordered_pair_and_name_the_unflowed_ones() {
        let stack = stack(
            "name: s
networks: { flat: { isolation: open } }
containers:
  a: { networks: [flat], talks_to: [b] }
  b: { networks: [flat] }
  c: { networks: [flat] }
",
        );
        let graph = StackGraph::build(&stack);
        let open: Vec<(String, String)> = graph
            .allowed_flows()
            .into_iter()
            .filter(|flow| flow.grant == Grant::OpenNetwork)
            .map(|flow| (flow.source, flow.destination))
            .collect();
        assert_eq!(open.len(), 6, "{open:?}");
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(stack.unflowed_pairs("flat"), [pair("a", "c"), pair("b", "c")]);
    }

    /// A flow to the host resolves on every network of its source, on open networks too,
    /// and the host is no container to wait for.
    #[test]
    fn a_flow_to_the_host_resolves_on_each_network_of_its_source() {
        let stack = stack(
            "name: s
networks: { a: {}, b: { isolation: open } }
containers:
  app: { networks: [a, b], talks_to: ['host:22'] }
  db: { networks: [a], talks_to: ['host/udp', app] }
",
        );
        let graph = StackGraph::build(&stack);
        let to_host: Vec<(String, String, Traffic)> = graph
            .declared_flows()
            .filter(|flow| flow.destination == HOST)
            .map(|flow| (flow.source, flow.network, flow.traffic))
            .collect();
        let tcp_22 = Traffic::Ports { protocol: Protocol::Tcp, ports: PortRange::single(22) };
        let udp = Traffic::Ports { protocol: Protocol::Udp, ports: PortRange::ALL };
        assert_eq!(
            to_host,
            [
                ("app".to_owned(), "a".to_owned(), tcp_22),
                ("app".to_owned(), "b".to_owned(), tcp_22),
                ("db".to_owned(), "a".to_owned(), udp)
            ]
        );
        assert_eq!(graph.wiring_order(), ["app", "db"]);
        assert_eq!(stack.unflowed_pairs("b"), Vec::<(String, String)>::new());
    }

    #[test]
    fn containers_are_wired_after_their_targets() {
        let stack = stack(SCENARIO_ONE);
        assert_eq!(StackGraph::build(&stack).wiring_order(), ["db", "flaskapp", "nginx"]);
    }

    #[test]
    fn a_cycle_of_flows_is_wired_together_after_what_it_needs() {
        // `a` and `b` talk to each other and both need `z`; `m` needs the cycle.
        let stack = stack(
            "name: s
networks: { n: {} }
containers:
  m: { networks: [n], talks_to: [a] }
  a: { networks: [n], talks_to: [b, z] }
  b: { networks: [n], talks_to: [a] }
  z: { networks: [n] }
  lone: { networks: [n] }
",
        );
        assert_eq!(StackGraph::build(&stack).wiring_order(), ["lone", "z", "a", "b", "m"]);
    }
}
