//! The kinds of kernel object a stack owns, as plain values.

use std::cmp::Ordering;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::model::{Isolation, PortRange, Protocol, Traffic};

/// The kinds of resource. They compare in the order they are created ([`Kind::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Stray,
    Policy,
    Forward,
    Flow,
    Alias,
    Sysctl,
    Bridge,
    Namespace,
    Link,
    Route,
    Hosts,
}

impl Kind {
    /// Every kind, in the order they are created (and the reverse of the order they are
    /// deleted in): each kind may depend on the kinds before it. The firewall's kinds come
    /// first, so that the rules that govern a network are in place before its bridge can
    /// carry a packet, and are the last thing destroy removes.
    ///
    /// The one place that order is written: kinds compare by their place here, keys by
    /// their kind's first, and the planner orders its operations by both.
    pub const ALL: [Kind; 11] = [
        Kind::Stray,
        Kind::Policy,
        Kind::Forward,
        Kind::Flow,
        Kind::Alias,
        // The host's settings follow the rules that govern what they open, and go before
        // them: forwarding is on only while the firewall judges what is forwarded.
        Kind::Sysctl,
        Kind::Bridge,
        Kind::Namespace,
        Kind::Link,
        Kind::Route,
        Kind::Hosts,
    ];

    /// The kind's place in [`Kind::ALL`]. A kind missing there has none: its discriminant
    /// is past the table, and the first comparison of it panics.
    pub fn rank(self) -> usize {
        usize::from(KIND_RANKS[self as usize])
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Stray => "stray",
            Kind::Policy => "policy",
            Kind::Bridge => "bridge",
            Kind::Namespace => "netns",
            Kind::Link => "link",
            Kind::Route => "route",
            Kind::Hosts => "hosts",
            Kind::Forward => "forward",
            Kind::Flow => "flow",
            Kind::Alias => "alias",
            Kind::Sysctl => "sysctl",
        }
    }

    /// Whether resources of this kind are nftables rules, made together in one transaction.
    pub fn is_firewall(self) -> bool {
        matches!(self, Kind::Stray | Kind::Policy | Kind::Forward | Kind::Flow | Kind::Alias)
    }
}

/// The place of each kind in [`Kind::ALL`], by discriminant, computed when compiling, so
/// that comparing keys, the planner's inner loop, does not search the list.
const KIND_RANKS: [u8; Kind::ALL.len()] = {
    let mut ranks = [u8::MAX; Kind::ALL.len()];
    let mut place = 0;
    while place < Kind::ALL.len() {
        let kind = Kind::ALL[place] as usize;
        assert!(ranks[kind] == u8::MAX, "Kind::ALL lists a kind twice");
        ranks[kind] = place as u8;
        place += 1;
    }
    ranks
};

impl Ord for Kind {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl PartialOrd for Kind {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What identifies a resource across desired and observed state. Keys order by kind first
/// ([`Kind::ALL`]), so a pass over a state in key order meets every resource after those it
/// depends on; then by their fields, in the order they are declared.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Key {
    /// What the stack's tables hold that no resource of the stack made.
    Stray,
    Policy {
        network: String,
    },
    Bridge {
        network: String,
    },
    Namespace {
        container: String,
    },
    Link {
        container: String,
        network: String,
    },
    Route {
        container: String,
    },
    Hosts {
        container: String,
    },
    /// A container may publish one port on several host addresses and ports, so the host
    /// side is part of the key; a random host port is not, so that picking it changes
    /// nothing.
    Forward {
        container: String,
        protocol: Protocol,
        container_port: u16,
        host_ip: Option<Ipv4Addr>,
        host_port: Option<u16>,
    },
    Flow {
        network: String,
        source: String,
        destination: String,
        traffic: Traffic,
    },
    Alias {
        network: String,
        name: String,
    },
    /// A setting of the host's kernel, by its name: `net.ipv4.ip_forward`.
    Sysctl {
        name: String,
    },
}

impl Key {
    pub fn kind(&self) -> Kind {
        match self {
            Key::Stray => Kind::Stray,
            Key::Policy { .. } => Kind::Policy,
            Key::Bridge { .. } => Kind::Bridge,
            Key::Namespace { .. } => Kind::Namespace,
            Key::Link { .. } => Kind::Link,
            Key::Route { .. } => Kind::Route,
            Key::Hosts { .. } => Kind::Hosts,
            Key::Forward { .. } => Kind::Forward,
            Key::Flow { .. } => Kind::Flow,
            Key::Alias { .. } => Kind::Alias,
            Key::Sysctl { .. } => Kind::Sysctl,
        }
    }

    /// The container the resource belongs to, if any; it places the resource in the wiring
    /// order. A flow belongs to the container that opens it.
    pub fn container(&self) -> Option<&str> {
        match self {
            Key::Stray | Key::Policy { .. } | Key::Bridge { .. } | Key::Alias { .. } | Key::Sysctl { .. } => None,
            Key::Namespace { container }
            | Key::Link { container, .. }
            | Key::Route { container }
            | Key::Hosts { container }
            | Key::Forward { container, .. } => Some(container),
            Key::Flow { source, .. } => Some(source),
        }
    }

    /// The resources that must exist before this one, and whose replacement replaces it.
    pub fn dependencies(&self, resource: &Resource) -> Vec<Key> {
        let namespace = |container: &str| Key::Namespace { container: container.to_owned() };
        match (self, resource) {
            (Key::Link { container, network }, _) => {
                vec![Key::Bridge { network: network.clone() }, namespace(container)]
            }
            (Key::Route { container }, Resource::Route(route)) => {
                vec![Key::Link { container: container.clone(), network: route.network.clone() }]
            }
            (Key::Hosts { container }, _) => vec![namespace(container)],
            _ => Vec::new(),
        }
    }

    /// How the plan names the resource: `web_nw`, `flaskapp@db_nw`, `nginx -> app tcp/5000`.
    pub fn label(&self) -> String {
        match self {
            Key::Stray => "rules no resource made".to_owned(),
            Key::Policy { network } | Key::Bridge { network } => network.clone(),
            Key::Sysctl { name } => name.clone(),
            Key::Namespace { container } | Key::Route { container } | Key::Hosts { container } => container.clone(),
            Key::Link { container, network } => format!("{container}@{network}"),
            Key::Alias { network, name } => format!("{name}@{network}"),
            Key::Forward { container, protocol, container_port, host_ip, host_port } => {
                let ip = host_ip.map_or("*".to_owned(), |ip| ip.to_string());
                let port = host_port.map_or("random".to_owned(), |port| port.to_string());
                format!("{container}:{container_port}/{protocol} <- {ip}:{port}")
            }
            Key::Flow { network, source, destination, traffic } => {
                format!("{source} -> {destination} {traffic} on {network}")
            }
        }
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.kind().cmp(&other.kind()).then_with(|| match (self, other) {
            (Key::Stray, Key::Stray) => Ordering::Equal,
            (Key::Policy { network }, Key::Policy { network: other })
            | (Key::Bridge { network }, Key::Bridge { network: other }) => network.cmp(other),
            (Key::Namespace { container }, Key::Namespace { container: other })
            | (Key::Route { container }, Key::Route { container: other })
            | (Key::Hosts { container }, Key::Hosts { container: other }) => container.cmp(other),
            (Key::Link { container, network }, Key::Link { container: other_container, network: other_network }) => {
                (container, network).cmp(&(other_container, other_network))
            }
            (
                Key::Forward { container, protocol, container_port, host_ip, host_port },
                Key::Forward {
                    container: other_container,
                    protocol: other_protocol,
                    container_port: other_container_port,
                    host_ip: other_host_ip,
                    host_port: other_host_port,
                },
            ) => (container, protocol, container_port, host_ip, host_port).cmp(&(
                other_container,
                other_protocol,
                other_container_port,
                other_host_ip,
                other_host_port,
            )),
            (
                Key::Flow { network, source, destination, traffic },
                Key::Flow {
                    network: other_network,
                    source: other_source,
                    destination: other_destination,
                    traffic: other_traffic,
                },
            ) => (network, source, destination, traffic).cmp(&(
                other_network,
                other_source,
                other_destination,
                other_traffic,
            )),
            (Key::Alias { network, name }, Key::Alias { network: other_network, name: other_name }) => {
                (network, name).cmp(&(other_network, other_name))
            }
            (Key::Sysctl { name }, Key::Sysctl { name: other }) => name.cmp(other),
            (key, other) => unreachable!("keys of one kind are of one variant: {key:?} and {other:?}"),
        })
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The address of an interface that has none, as observed: an address flushed by hand is
/// drift to repair, not a reason to pick a new one.
pub const NO_ADDRESS: Ipv4Net = match Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 32) {
    Ok(net) => net,
    Err(_) => panic!("valid prefix"),
};

/// Shows an interface address, or that it has none.
fn shown(address: Ipv4Net) -> String {
    if address == NO_ADDRESS { "none".to_owned() } else { address.to_string() }
}

/// Shows the name of an interface inside a container: observed without one when it could
/// not be read there.
fn device(ifname: &str) -> String {
    if ifname.is_empty() { "unknown".to_owned() } else { ifname.to_owned() }
}

/// Shows a list of addresses, or that there is none.
fn addresses(addresses: &[Ipv4Addr]) -> String {
    if addresses.is_empty() {
        return "none".to_owned();
    }
    addresses.iter().map(Ipv4Addr::to_string).collect::<Vec<_>>().join(" ")
}

/// The firewall of one network: what may leave it, enter it and pass inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub network: String,
    /// The network's bridge.
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// The bridge's own address: traffic to it is for the host, not for a member.
    pub gateway: Ipv4Addr,
    /// Internal networks reach nothing outside the stack; the others leave through
    /// masquerade.
    pub internal: bool,
    pub isolation: Isolation,
    /// The network's ports, sorted by container: traffic entering through a port must come
    /// from its container's address.
    pub members: Vec<Member>,
}

/// Rules and set elements in the stack's tables that carry no comment of a resource the
/// stack has, and chains and sets that none of its resources makes: added by hand, or made
/// by an apply whose record is lost. Never desired, so the next apply (or destroy) leaves
/// the tables without them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stray {
    pub rules: usize,
}

/// A container's port on a network, as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Member {
    pub container: String,
    /// The host end of the container's veth pair.
    pub port: String,
    pub address: Ipv4Addr,
}

/// A Linux bridge: one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bridge {
    pub network: String,
    pub ifname: String,
    /// The gateway address with the subnet's prefix.
    pub address: Ipv4Net,
    pub internal: bool,
    pub isolation: Isolation,
    pub up: bool,
    /// The virtual addresses of the network's aliases, sorted, each as a /32 of its own:
    /// the host answers ARP for them, so members that reach the subnet on link send
    /// traffic for an alias to the host, where the alias's rule picks a backend.
    pub virtual_addresses: Vec<Ipv4Addr>,
}

/// A container's network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    pub container: String,
    /// The name under `/run/netns`, or the path of an adopted namespace.
    pub name: String,
    /// An adopted namespace is used, never created or deleted.
    pub adopted: bool,
    pub loopback_up: bool,
}

/// A container's membership of a network: a veth pair from the bridge into the namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub container: String,
    pub network: String,
    /// The name inside the container: `eth0`, `eth1`, ...
    pub ifname: String,
    /// The name of the end on the bridge, in the host.
    pub host_ifname: String,
    pub address: Ipv4Net,
    /// Whether the host end is a port of the network's bridge, locked to the container's
    /// MAC address: the bridge learns nothing from it and holds that address there.
    pub attached: bool,
    pub up: bool,
    /// On a network with `isolation: flows`, the gateway through which the container
    /// reaches the whole subnet: its address brings no route of its own, so every packet
    /// to another member goes to the host, where the firewall judges it, and the container
    /// resolves one neighbour (the gateway) instead of every member.
    pub subnet_via: Option<Ipv4Addr>,
}

/// A container's default route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub container: String,
    pub network: String,
    pub gateway: Ipv4Addr,
    pub ifname: String,
}

/// Name records sorted by name, then address; shared between the containers that resolve
/// the same names.
pub type Records = Arc<Vec<(String, Ipv4Addr)>>;

/// The names a container resolves: its own and those of the containers and aliases it
/// shares a network with, served to it by the host's name server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hosts {
    pub container: String,
    pub records: Records,
    /// The gateways of the container's networks, in the order its networks are written:
    /// the name server listens on each, and the container's `resolv.conf` lists them.
    pub nameservers: Vec<Ipv4Addr>,
    /// Whether names outside the stack are forwarded to the host's own name servers: only
    /// for a container on at least one network that is not internal.
    pub upstream: bool,
}

/// The host ports of a forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "ports")]
pub enum HostPorts {
    /// As declared.
    Fixed(PortRange),
    /// To be picked when applied.
    Random,
    /// Picked at random when first applied, and kept from then on.
    Picked(PortRange),
}

impl HostPorts {
    /// The ports the forward holds on the host, once they are known.
    pub fn ports(self) -> Option<PortRange> {
        match self {
            HostPorts::Fixed(ports) | HostPorts::Picked(ports) => Some(ports),
            HostPorts::Random => None,
        }
    }
}

/// A published port range: host ports forwarded to a container's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    pub container: String,
    pub protocol: Protocol,
    /// `None` is every interface.
    pub host_ip: Option<Ipv4Addr>,
    pub host_ports: HostPorts,
    pub container_ports: PortRange,
    pub to: Ipv4Addr,
}

/// A declared flow on a network with `isolation: flows`, resolved to addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub network: String,
    pub source: String,
    pub destination: String,
    pub traffic: Traffic,
    pub from: Ipv4Addr,
    pub to: Ipv4Addr,
}

impl Link {
    /// Whether changing the link into `other` takes its address away and gives one back
    /// (another address, or one that starts or stops bringing its subnet's route), which
    /// takes the routes through the link with it.
    pub fn disrupts(&self, other: &Link) -> bool {
        self.address != other.address || self.subnet_via.is_some() != other.subnet_via.is_some()
    }
}

impl Flow {
    /// Whether a connection of `protocol` to `port` is one the flow lets through.
    pub fn carries(&self, protocol: Protocol, port: u16) -> bool {
        match self.traffic {
            Traffic::All => true,
            Traffic::Ports { protocol: carried, ports } => {
                carried == protocol && ports.first <= port && port <= ports.last
            }
        }
    }
}

/// A name that stands for containers on one network, at a virtual address of its own, as
/// Docker Swarm's service addresses do: a new connection to it goes to one of its backends,
/// picked in the kernel. Moving the name to other containers is one rule change, which
/// clients that resolved it once follow too, while their established connections stay
/// where they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    pub network: String,
    pub name: String,
    /// The network's bridge: only its members reach the alias.
    pub bridge: String,
    /// The virtual address, from the network's subnet.
    pub address: Ipv4Addr,
    /// The containers that hold the alias, sorted by name.
    pub backends: Vec<Backend>,
}

/// A container behind an alias, at its address on the alias's network.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Backend {
    pub container: String,
    pub address: Ipv4Addr,
}

/// A setting of the host's kernel that the stack needs: IPv4 forwarding, for the replies to
/// its containers' connections out. The host had it as `before` when the first stack that
/// holds it set it; every stack that holds it keeps that value, and the last one to let
/// it go gives it back (`Desired::held_elsewhere` says whether others still hold it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctl {
    /// The name, as `sysctl` writes it: `net.ipv4.ip_forward`.
    pub name: String,
    pub value: String,
    /// What the host had before any stack set it; unknown when planned without a host.
    pub before: Option<String>,
}

impl Sysctl {
    /// The setting's file under `/proc/sys`, relative to it: `net/ipv4/ip_forward`.
    pub fn path(&self) -> String {
        self.name.replace('.', "/")
    }
}

/// Any resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Resource {
    Stray(Stray),
    Policy(Policy),
    Bridge(Bridge),
    Namespace(Namespace),
    Link(Link),
    Route(Route),
    Hosts(Hosts),
    Forward(Forward),
    Flow(Flow),
    Alias(Alias),
    Sysctl(Sysctl),
}

impl Resource {
    pub fn key(&self) -> Key {
        match self {
            Resource::Stray(_) => Key::Stray,
            Resource::Policy(policy) => Key::Policy { network: policy.network.clone() },
            Resource::Bridge(bridge) => Key::Bridge { network: bridge.network.clone() },
            Resource::Namespace(namespace) => Key::Namespace { container: namespace.container.clone() },
            Resource::Link(link) => Key::Link { container: link.container.clone(), network: link.network.clone() },
            Resource::Route(route) => Key::Route { container: route.container.clone() },
            Resource::Hosts(hosts) => Key::Hosts { container: hosts.container.clone() },
            Resource::Forward(forward) => Key::Forward {
                container: forward.container.clone(),
                protocol: forward.protocol,
                container_port: forward.container_ports.first,
                host_ip: forward.host_ip,
                host_port: match forward.host_ports {
                    HostPorts::Fixed(ports) => Some(ports.first),
                    HostPorts::Random | HostPorts::Picked(_) => None,
                },
            },
            Resource::Flow(flow) => Key::Flow {
                network: flow.network.clone(),
                source: flow.source.clone(),
                destination: flow.destination.clone(),
                traffic: flow.traffic,
            },
            Resource::Alias(alias) => Key::Alias { network: alias.network.clone(), name: alias.name.clone() },
            Resource::Sysctl(sysctl) => Key::Sysctl { name: sysctl.name.clone() },
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Resource::Stray(_) => Kind::Stray,
            Resource::Policy(_) => Kind::Policy,
            Resource::Bridge(_) => Kind::Bridge,
            Resource::Namespace(_) => Kind::Namespace,
            Resource::Link(_) => Kind::Link,
            Resource::Route(_) => Kind::Route,
            Resource::Hosts(_) => Kind::Hosts,
            Resource::Forward(_) => Kind::Forward,
            Resource::Flow(_) => Kind::Flow,
            Resource::Alias(_) => Kind::Alias,
            Resource::Sysctl(_) => Kind::Sysctl,
        }
    }

    /// Whether turning `self` into `other` needs the object deleted and created again: its
    /// kernel name or its namespace changes. Everything else is changed in place.
    pub fn needs_replacement(&self, other: &Resource) -> bool {
        match (self, other) {
            (Resource::Bridge(a), Resource::Bridge(b)) => a.ifname != b.ifname,
            (Resource::Namespace(a), Resource::Namespace(b)) => a.name != b.name || a.adopted != b.adopted,
            (Resource::Link(a), Resource::Link(b)) => a.ifname != b.ifname || a.host_ifname != b.host_ifname,
            (a, b) => a.kind() != b.kind(),
        }
    }

    /// The attributes shown in plans, as (name, value) in a fixed order.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        let flag = |on: bool| if on { "up" } else { "down" }.to_owned();
        match self {
            Resource::Stray(stray) => vec![("rules", stray.rules.to_string())],
            Resource::Policy(policy) => vec![
                ("bridge", policy.bridge.clone()),
                ("subnet", policy.subnet.to_string()),
                ("egress", if policy.internal { "none (internal)" } else { "masquerade" }.to_owned()),
                (
                    "isolation",
                    match policy.isolation {
                        Isolation::Flows => "declared flows only".to_owned(),
                        Isolation::Open => "open".to_owned(),
                    },
                ),
                (
                    "members",
                    policy
                        .members
                        .iter()
                        .map(|member| format!("{}={}", member.container, member.address))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            ],
            Resource::Bridge(bridge) => vec![
                ("ifname", bridge.ifname.clone()),
                ("address", shown(bridge.address)),
                ("internal", bridge.internal.to_string()),
                ("isolation", format!("{:?}", bridge.isolation).to_lowercase()),
                ("state", flag(bridge.up)),
                ("virtual", addresses(&bridge.virtual_addresses)),
            ],
            Resource::Namespace(namespace) => vec![
                (if namespace.adopted { "adopted" } else { "name" }, namespace.name.clone()),
                ("loopback", flag(namespace.loopback_up)),
            ],
            Resource::Link(link) => vec![
                ("ifname", device(&link.ifname)),
                ("address", shown(link.address)),
                ("host_ifname", link.host_ifname.clone()),
                ("bridge", if link.attached { "attached" } else { "detached" }.to_owned()),
                ("state", flag(link.up)),
                ("subnet", link.subnet_via.map_or("on link".to_owned(), |gateway| format!("via {gateway}"))),
            ],
            Resource::Route(route) => {
                vec![("default", format!("via {} dev {}", route.gateway, device(&route.ifname)))]
            }
            Resource::Hosts(hosts) => vec![
                (
                    "records",
                    hosts
                        .records
                        .iter()
                        .map(|(name, address)| format!("{name}={address}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                ("nameservers", hosts.nameservers.iter().map(Ipv4Addr::to_string).collect::<Vec<_>>().join(" ")),
                ("upstream", if hosts.upstream { "forwarded" } else { "none (internal)" }.to_owned()),
            ],
            Resource::Forward(forward) => vec![
                ("host", {
                    let ip = forward.host_ip.map_or("*".to_owned(), |ip| ip.to_string());
                    let ports = match forward.host_ports {
                        HostPorts::Fixed(ports) => format!("{ip}:{ports}"),
                        HostPorts::Random => format!("{ip}:random"),
                        HostPorts::Picked(ports) => format!("{ip}:{ports} (picked at random)"),
                    };
                    // The classic leak: a port meant for one address, published on all.
                    if forward.host_ip.is_none() { format!("{ports} EXPOSED ON ALL INTERFACES") } else { ports }
                }),
                ("to", format!("{}:{}", forward.to, forward.container_ports)),
            ],
            Resource::Flow(flow) => vec![("from", flow.from.to_string()), ("to", flow.to.to_string())],
            Resource::Sysctl(sysctl) => {
                let mut attributes = vec![("value", sysctl.value.clone())];
                // Unknown when planned without a host (`diff`).
                if let Some(before) = &sysctl.before {
                    attributes.push(("before", before.clone()));
                }
                attributes
            }
            Resource::Alias(alias) => vec![
                ("address", alias.address.to_string()),
                (
                    "backends",
                    alias
                        .backends
                        .iter()
                        .map(|backend| format!("{}={}", backend.container, backend.address))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::PortRange;

    /// A key of `kind` named after `name`. The match stops compiling when a kind is added,
    /// until the kind has a key here; its rank then panics until it is in [`Kind::ALL`].
    fn key(kind: Kind, name: &str) -> Key {
        let name = name.to_owned();
        match kind {
            Kind::Stray => Key::Stray,
            Kind::Policy => Key::Policy { network: name },
            Kind::Forward => Key::Forward {
                container: name,
                protocol: Protocol::Tcp,
                container_port: 80,
                host_ip: None,
                host_port: None,
            },
            Kind::Flow => Key::Flow {
                network: name.clone(),
                source: name.clone(),
                destination: name,
                traffic: Traffic::Ports { protocol: Protocol::Tcp, ports: PortRange::ALL },
            },
            Kind::Alias => Key::Alias { network: name.clone(), name },
            Kind::Sysctl => Key::Sysctl { name },
            Kind::Bridge => Key::Bridge { network: name },
            Kind::Namespace => Key::Namespace { container: name },
            Kind::Link => Key::Link { container: name.clone(), network: name },
            Kind::Route => Key::Route { container: name },
            Kind::Hosts => Key::Hosts { container: name },
        }
    }

    #[test]
    fn the_creation_order_lists_every_kind_once() {
        for (place, kind) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(kind.rank(), place, "{kind:?} is listed once");
            assert_eq!(key(kind, "a").kind(), kind);
        }
    }

    #[test]
    fn keys_sort_by_kind_in_creation_order_then_by_their_fields() {
        // Kinds taken in reverse, and names that sort against them: only the kinds' ranks
        // can put the keys in creation order.
        let keys: BTreeSet<Key> =
            Kind::ALL.into_iter().rev().flat_map(|kind| [key(kind, "z"), key(kind, "a")]).collect();
        let mut kinds: Vec<Kind> = keys.iter().map(Key::kind).collect();
        kinds.dedup();
        // Written out rather than read from Kind::ALL: the firewall's kinds first, then
        // each kind after those it depends on.
        let creation_order = [
            Kind::Stray,
            Kind::Policy,
            Kind::Forward,
            Kind::Flow,
            Kind::Alias,
            Kind::Sysctl,
            Kind::Bridge,
            Kind::Namespace,
            Kind::Link,
            Kind::Route,
            Kind::Hosts,
        ];
        assert_eq!(kinds, creation_order);
        let firsts: Vec<&Key> = keys.iter().filter(|key| **key != Key::Stray).step_by(2).collect();
        assert!(firsts.iter().all(|first| first.label().starts_with('a')), "{firsts:?}");
    }

    #[test]
    fn every_key_depends_only_on_keys_of_earlier_kinds() {
        let route = Resource::Route(Route {
            container: "a".to_owned(),
            network: "a".to_owned(),
            gateway: Ipv4Addr::new(10, 0, 0, 1),
            ifname: "eth0".to_owned(),
        });
        for kind in Kind::ALL {
            let key = key(kind, "a");
            for dependency in key.dependencies(&route) {
                assert!(dependency < key, "{key:?} depends on {dependency:?}, which does not sort before it");
            }
        }
    }
}
