//! The graph as JSON, for machines: version 1 of a documented format. Within a version,
//! fields may be added but none is removed, renamed or given another meaning; anything
//! else raises `format_version`. Every list is sorted, so equal stacks give equal text.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::graph::{AllowedFlow, Grant, StackGraph};
use crate::model::{Attachment, Container, Isolation, Network, PortRange, Protocol, Publication, Traffic};

/// The document `stackctl graph --format json` prints.
#[derive(Serialize)]
struct GraphDocument<'a> {
    /// The version of this format: 1.
    format_version: u32,
    /// The stack's name.
    stack: &'a str,
    /// Every network, by name.
    networks: Vec<NetworkEntry<'a>>,
    /// Every container, by name.
    containers: Vec<ContainerEntry<'a>>,
    /// Every allowed flow, by source, destination, network, traffic and grant: the declared
    /// flows resolved to a destination container (or the host) and network, and on `open` networks every
    /// ordered pair of members.
    flows: Vec<FlowEntry<'a>>,
    /// Every published port, by container and then in the order of its `ports` list.
    publications: Vec<PublicationEntry<'a>>,
    /// The pairs of members of `open` networks that no declared flow joins in either
    /// direction: the reach such a network grants beyond the declared flows.
    unflowed_pairs: Vec<UnflowedPair<'a>>,
}

#[derive(Serialize)]
struct NetworkEntry<'a> {
    name: &'a str,
    /// The declared subnet in CIDR form, or `null` when stackctl picks one.
    subnet: Option<Ipv4Net>,
    /// The declared gateway, or `null` for the first host address of the subnet.
    gateway: Option<Ipv4Addr>,
    /// `true` when the network has no route or NAT outside the stack.
    internal: bool,
    /// `"flows"` (only declared flows pass between members) or `"open"` (everything does).
    isolation: Isolation,
}

#[derive(Serialize)]
struct ContainerEntry<'a> {
    name: &'a str,
    /// `"bridge"` (joined to the networks in `memberships`), `"none"` (loopback only) or
    /// `"host"` (the host's own network stack).
    network_mode: &'static str,
    /// The existing network namespace the container adopts, or `null`.
    netns: Option<&'a str>,
    /// The networks joined, in the order written (which orders `eth0`, `eth1`, ...).
    memberships: Vec<MembershipEntry<'a>>,
}

#[derive(Serialize)]
struct MembershipEntry<'a> {
    network: &'a str,
    /// The container's extra names on this network.
    aliases: &'a [String],
    /// The static address on this network, or `null` when stackctl picks one.
    ipv4: Option<Ipv4Addr>,
}

#[derive(Serialize)]
struct FlowEntry<'a> {
    /// The container that opens connections.
    source: &'a str,
    /// The container that accepts them, or `"host"` for the host itself.
    destination: &'a str,
    /// The network the flow travels on.
    network: &'a str,
    traffic: TrafficEntry,
    /// `"declared"` (a `talks_to` entry asks for it) or `"open_network"` (both ends are
    /// members of an `open` network).
    grant: Grant,
}

/// Which traffic a flow allows.
#[derive(Serialize)]
struct TrafficEntry {
    /// As `stackctl` prints it: `"all"`, `"tcp/5000"`, `"udp/53-54"` or `"tcp/*"`.
    text: String,
    /// `"tcp"` or `"udp"`; `null` for all traffic of every protocol.
    protocol: Option<Protocol>,
    /// The destination ports; `null` for all traffic of every protocol.
    ports: Option<Ports>,
}

/// An inclusive range of ports; a single port has `first` equal to `last`.
#[derive(Serialize)]
struct Ports {
    first: u16,
    last: u16,
}

#[derive(Serialize)]
struct PublicationEntry<'a> {
    /// The container the host port forwards to.
    container: &'a str,
    /// As `stackctl` prints it, such as `"127.0.0.1:8080->80/tcp"` or `"*:443->443/tcp"`.
    text: String,
    /// The host address listened on, or `null` for every interface.
    host_ip: Option<Ipv4Addr>,
    /// `true` when the port is published on every interface of the host.
    all_interfaces: bool,
    /// The host ports, or `null` when stackctl picks them.
    host_ports: Option<Ports>,
    container_ports: Ports,
    /// `"tcp"` or `"udp"`.
    protocol: Protocol,
}

#[derive(Serialize)]
struct UnflowedPair<'a> {
    /// The `open` network the two share.
    network: &'a str,
    /// The two containers, by name.
    containers: [String; 2],
}

pub fn render(graph: &StackGraph) -> String {
    let stack = graph.stack();
    let flows = graph.allowed_flows();
    let unflowed_pairs = stack
        .unflowed_pairs_of_open_networks()
        .into_iter()
        .flat_map(|(network, pairs)| pairs.into_iter().map(move |(a, b)| UnflowedPair { network, containers: [a, b] }))
        .collect();
    let document = GraphDocument {
        format_version: 1,
        stack: &stack.name,
        networks: stack.networks.values().map(network).collect(),
        containers: stack.containers.values().map(container).collect(),
        flows: flows.iter().map(flow).collect(),
        publications: stack
            .containers
            .values()
            .flat_map(|owner| owner.ports.iter().map(|publication| self::publication(&owner.name, publication)))
            .collect(),
        unflowed_pairs,
    };
    let mut text = serde_json::to_string_pretty(&document).expect("the graph document serializes");
    text.push('\n');
    text
}

fn network(network: &Network) -> NetworkEntry<'_> {
    NetworkEntry {
        name: &network.name,
        subnet: network.subnet,
        gateway: network.gateway,
        internal: network.internal,
        isolation: network.isolation,
    }
}

fn container(container: &Container) -> ContainerEntry<'_> {
    ContainerEntry {
        name: &container.name,
        network_mode: match container.attachment {
            Attachment::Bridged(_) => "bridge",
            Attachment::Loopback => "none",
            Attachment::Host => "host",
        },
        netns: container.netns.as_deref(),
        memberships: container
            .memberships()
            .iter()
            .map(|membership| MembershipEntry {
                network: &membership.network,
                aliases: &membership.aliases,
                ipv4: membership.ipv4,
            })
            .collect(),
    }
}

fn flow(flow: &AllowedFlow) -> FlowEntry<'_> {
    let (protocol, ports) = match flow.traffic {
        Traffic::All => (None, None),
        Traffic::Ports { protocol, ports } => (Some(protocol), Some(self::ports(ports))),
    };
    FlowEntry {
        source: &flow.source,
        destination: &flow.destination,
        network: &flow.network,
        traffic: TrafficEntry { text: flow.traffic.to_string(), protocol, ports },
        grant: flow.grant,
    }
}

fn publication<'a>(container: &'a str, publication: &Publication) -> PublicationEntry<'a> {
    PublicationEntry {
        container,
        text: publication.to_string(),
        host_ip: publication.host_ip,
        all_interfaces: publication.host_ip.is_none(),
        host_ports: publication.host_ports.map(ports),
        container_ports: ports(publication.container_ports),
        protocol: publication.protocol,
    }
}

fn ports(range: PortRange) -> Ports {
    Ports { first: range.first, last: range.last }
}
