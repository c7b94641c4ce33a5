//! The kinds of kernel object a stack owns, as plain values: one module per kind, each with
//! its value, its key, what it depends on, when a change replaces it, and how plans show it
//! (the [`Object`] it is). This module holds what is common: the [`Kind`]s in creation
//! order, the [`Key`]s, and [`Resource`], any one of them.
//!
//! Adding a kind: a module here with its value and its `Object`, a variant in `Kind`, declared at
//! its place in creation order (and listed in `Kind::ALL`), `Key` and `Resource`, and the shell's modules for it in
//! `src/kernel/execute/` (make, change, delete) and `src/kernel/observe/` (read); the
//! compiler lists every match that must learn of it.

mod alias;
mod bridge;
mod flow;
mod forward;
mod hosts;
mod link;
mod namespace;
mod policy;
mod route;
mod stray;
mod sysctl;

pub use alias::{Alias, Backend};
pub use bridge::{Bridge, InetConf};
pub use flow::Flow;
pub use forward::{Forward, HostPorts};
pub use hosts::{Hosts, Records};
pub use link::Link;
pub use namespace::{Namespace, NamespaceConf};
pub use policy::{Member, Policy};
pub use route::Route;
pub use stray::Stray;
pub use sysctl::{
    FORWARDING, HostSetting, Sysctl, desired as desired_sysctls, held_elsewhere, observe_forwarding,
    sysctl_value_is_known,
};

use std::cmp::Ordering;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::model::{Protocol, Traffic};

/// What every kind of resource says of itself.
pub trait Object {
    /// What identifies it across desired and observed state.
    fn key(&self) -> Key;

    /// The resources that must exist before it, and whose replacement replaces it.
    fn dependencies(&self) -> Vec<Key> {
        Vec::new()
    }

    /// Whether turning it into `other` needs the object deleted and created again: its
    /// kernel name or its namespace changes. Everything else is changed in place.
    fn needs_replacement(&self, _other: &Self) -> bool {
        false
    }

    /// The attributes shown in plans, as (name, value) in a fixed order.
    fn attributes(&self) -> Vec<(&'static str, String)>;
}

/// The kinds of resource, declared in the order they are created (and the reverse of the
/// order they are deleted in), which is how they compare: each kind may depend on the
/// kinds before it. The firewall's kinds come first, so that the rules that govern a
/// network are in place before its bridge can carry a packet, and are the last thing
/// destroy removes; the host's settings follow the rules that govern what they open
/// (forwarding is on only while the firewall judges what is forwarded). This declaration
/// is the one place that order is written: keys compare by their kind first, and the
/// planner orders its operations by both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
    /// Every kind, in creation order (a test checks it follows the declaration).
    pub const ALL: [Kind; 11] = [
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

/// What identifies a resource across desired and observed state. Keys order by kind first
/// (in creation order, see [`Kind`]), so a pass over a state in key order meets every resource after those it
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

/// Shows whether an object is up.
fn flag(on: bool) -> String {
    if on { "up" } else { "down" }.to_owned()
}

/// Shows a list of addresses, or that there is none.
fn addresses(addresses: &[Ipv4Addr]) -> String {
    if addresses.is_empty() {
        return "none".to_owned();
    }
    addresses.iter().map(Ipv4Addr::to_string).collect::<Vec<_>>().join(" ")
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

/// Calls `$call` on the value of whatever kind `$resource` is.
macro_rules! each_kind {
    ($resource:expr, $object:ident => $call:expr) => {
        match $resource {
            Resource::Stray($object) => $call,
            Resource::Policy($object) => $call,
            Resource::Forward($object) => $call,
            Resource::Flow($object) => $call,
            Resource::Alias($object) => $call,
            Resource::Sysctl($object) => $call,
            Resource::Bridge($object) => $call,
            Resource::Namespace($object) => $call,
            Resource::Link($object) => $call,
            Resource::Route($object) => $call,
            Resource::Hosts($object) => $call,
        }
    };
}

impl Resource {
    pub fn key(&self) -> Key {
        each_kind!(self, object => object.key())
    }

    pub fn kind(&self) -> Kind {
        match self {
            Resource::Stray(_) => Kind::Stray,
            Resource::Policy(_) => Kind::Policy,
            Resource::Forward(_) => Kind::Forward,
            Resource::Flow(_) => Kind::Flow,
            Resource::Alias(_) => Kind::Alias,
            Resource::Sysctl(_) => Kind::Sysctl,
            Resource::Bridge(_) => Kind::Bridge,
            Resource::Namespace(_) => Kind::Namespace,
            Resource::Link(_) => Kind::Link,
            Resource::Route(_) => Kind::Route,
            Resource::Hosts(_) => Kind::Hosts,
        }
    }

    /// The resources that must exist before this one, and whose replacement replaces it.
    pub fn dependencies(&self) -> Vec<Key> {
        each_kind!(self, object => object.dependencies())
    }

    /// Whether turning `self` into `other` needs the object deleted and created again (see
    /// [`Object::needs_replacement`]); a resource never turns into another kind.
    pub fn needs_replacement(&self, other: &Resource) -> bool {
        match (self, other) {
            (Resource::Stray(a), Resource::Stray(b)) => a.needs_replacement(b),
            (Resource::Policy(a), Resource::Policy(b)) => a.needs_replacement(b),
            (Resource::Forward(a), Resource::Forward(b)) => a.needs_replacement(b),
            (Resource::Flow(a), Resource::Flow(b)) => a.needs_replacement(b),
            (Resource::Alias(a), Resource::Alias(b)) => a.needs_replacement(b),
            (Resource::Sysctl(a), Resource::Sysctl(b)) => a.needs_replacement(b),
            (Resource::Bridge(a), Resource::Bridge(b)) => a.needs_replacement(b),
            (Resource::Namespace(a), Resource::Namespace(b)) => a.needs_replacement(b),
            (Resource::Link(a), Resource::Link(b)) => a.needs_replacement(b),
            (Resource::Route(a), Resource::Route(b)) => a.needs_replacement(b),
            (Resource::Hosts(a), Resource::Hosts(b)) => a.needs_replacement(b),
            _ => true,
        }
    }

    /// The attributes shown in plans, as (name, value) in a fixed order.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        each_kind!(self, object => object.attributes())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::PortRange;

    /// A key of `kind` named after `name`. The match stops compiling when a kind is added,
    /// until the kind has a key here; the order test then fails until it is in [`Kind::ALL`].
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
        // In the order kinds compare, each once; `key` and `sample` match every kind, so a
        // kind left out of the list fails below when it is added to them.
        assert!(Kind::ALL.windows(2).all(|pair| pair[0] < pair[1]), "{:?}", Kind::ALL);
        for kind in Kind::ALL {
            assert_eq!(key(kind, "a").kind(), kind);
        }
        assert_eq!(Kind::ALL.len(), Kind::Hosts as usize + 1, "every kind is listed");
    }

    #[test]
    fn keys_sort_by_kind_in_creation_order_then_by_their_fields() {
        // Kinds taken in reverse, and names that sort against them: only the kinds' order
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

    /// A resource of `kind`. The match stops compiling when a kind is added, until the kind
    /// has a sample here.
    fn sample(kind: Kind) -> Resource {
        let name = || "a".to_owned();
        let address = Ipv4Addr::new(10, 0, 0, 2);
        let subnet = Ipv4Net::new(address, 24).expect("a prefix");
        match kind {
            Kind::Stray => Resource::Stray(Stray { rules: 1 }),
            Kind::Policy => Resource::Policy(Policy {
                network: name(),
                bridge: name(),
                subnet,
                gateway: address,
                internal: false,
                isolation: crate::model::Isolation::Flows,
                members: Vec::new(),
            }),
            Kind::Forward => Resource::Forward(Forward {
                container: name(),
                protocol: Protocol::Tcp,
                host_ip: None,
                host_ports: HostPorts::Random,
                container_ports: PortRange { first: 80, last: 80 },
                to: address,
            }),
            Kind::Flow => Resource::Flow(Flow {
                network: name(),
                source: name(),
                destination: name(),
                traffic: Traffic::All,
                from: address,
                to: address,
            }),
            Kind::Alias => {
                Resource::Alias(Alias { network: name(), name: name(), bridge: name(), address, backends: Vec::new() })
            }
            Kind::Sysctl => {
                Resource::Sysctl(Sysctl { name: FORWARDING.to_owned(), value: "1".to_owned(), before: None })
            }
            Kind::Bridge => Resource::Bridge(Bridge {
                network: name(),
                ifname: name(),
                address: subnet,
                internal: false,
                isolation: crate::model::Isolation::Flows,
                up: true,
                conf: InetConf::for_a_network(),
                virtual_addresses: Vec::new(),
            }),
            Kind::Namespace => Resource::Namespace(Namespace {
                container: name(),
                name: name(),
                adopted: false,
                loopback_up: true,
                conf: Some(NamespaceConf::for_a_container()),
            }),
            Kind::Link => Resource::Link(Link {
                container: name(),
                network: name(),
                ifname: name(),
                host_ifname: name(),
                address: subnet,
                attached: true,
                up: true,
                subnet_via: None,
            }),
            Kind::Route => {
                Resource::Route(Route { container: name(), network: name(), gateway: address, ifname: name() })
            }
            Kind::Hosts => Resource::Hosts(Hosts {
                container: name(),
                records: std::sync::Arc::new(Vec::new()),
                nameservers: Vec::new(),
                upstream: true,
            }),
        }
    }

    #[test]
    fn every_resource_depends_only_on_keys_of_earlier_kinds() {
        for kind in Kind::ALL {
            let resource = sample(kind);
            assert_eq!(resource.kind(), kind);
            assert_eq!(resource.key().kind(), kind, "{resource:?}'s key is of its kind");
            for dependency in resource.dependencies() {
                assert!(dependency < resource.key(), "{resource:?} depends on {dependency:?}, which sorts after it");
            }
        }
    }
}
