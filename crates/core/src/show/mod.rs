//! `stackctl show`: the live topology of a stack, from its observed state and the names the
//! stack file gives, as a table or as versioned JSON.

mod table;

pub use table::render_table;

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::model::Stack;
use crate::state::{HostPorts, KernelState, Key, Kind, NO_ADDRESS, Resource};

/// The version of the JSON format; it changes only when a field changes meaning or goes.
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    pub format_version: u32,
    pub stack: String,
    pub networks: Vec<NetworkView>,
    pub containers: Vec<ContainerView>,
}

/// A network as it is on the host; `None` where the object is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkView {
    pub name: String,
    pub bridge: Option<String>,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub up: bool,
    pub members: Vec<MemberView>,
    /// The network's aliases, with the virtual address each resolves to and the containers
    /// behind it, as the host's firewall forwards them.
    pub aliases: Vec<AliasView>,
}

/// An alias on one network: its name, its virtual address, and its backends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AliasView {
    pub name: String,
    /// `None` while the alias's rule is missing.
    pub address: Option<Ipv4Addr>,
    pub backends: Vec<BackendView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendView {
    pub container: String,
    pub address: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    pub container: String,
    pub aliases: Vec<String>,
    pub address: Option<Ipv4Addr>,
    /// The interface inside the container.
    pub ifname: Option<String>,
    /// The veth end on the bridge.
    pub host_ifname: Option<String>,
    pub up: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerView {
    pub name: String,
    /// The namespace's name under `/run/netns`, or the adopted path; `None` when missing
    /// (or for a container on the host's network).
    pub netns: Option<String>,
    pub default_route: Option<String>,
    /// The ports published to it that the host's firewall holds.
    pub ports: Vec<PortView>,
}

/// A published port as the host's firewall forwards it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortView {
    /// `None`: every address of the host.
    pub host_ip: Option<Ipv4Addr>,
    pub host_ports: String,
    pub container_ports: String,
    pub protocol: String,
    /// Whether the host ports were picked at random (and are kept from then on).
    pub random: bool,
}

impl std::fmt::Display for PortView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = self.host_ip.map_or("*".to_owned(), |ip| ip.to_string());
        write!(f, "{ip}:{}->{}/{}", self.host_ports, self.container_ports, self.protocol)?;
        if self.random { f.write_str(" (random)") } else { Ok(()) }
    }
}

impl Topology {
    /// The stack's networks and containers, with what `observed` holds of each.
    pub fn read(stack: &Stack, observed: &KernelState) -> Topology {
        let networks = stack
            .networks
            .values()
            .map(|network| {
                let bridge = match observed.get(&Key::Bridge { network: network.name.clone() }) {
                    Some(Resource::Bridge(bridge)) => Some(bridge),
                    _ => None,
                };
                let address = bridge.map(|bridge| bridge.address).filter(|address| *address != NO_ADDRESS);
                let members = stack
                    .memberships_on(&network.name)
                    .map(|(container, membership)| {
                        let key = Key::Link { container: container.name.clone(), network: network.name.clone() };
                        let link = match observed.get(&key) {
                            Some(Resource::Link(link)) => Some(link),
                            _ => None,
                        };
                        MemberView {
                            container: container.name.clone(),
                            aliases: membership.aliases.clone(),
                            address: link.map(|link| link.address).filter(|a| *a != NO_ADDRESS).map(|a| a.addr()),
                            ifname: link.map(|link| link.ifname.clone()).filter(|name| !name.is_empty()),
                            host_ifname: link.map(|link| link.host_ifname.clone()),
                            up: link.is_some_and(|link| link.up && link.attached),
                        }
                    })
                    .collect();
                let aliases = stack
                    .aliases_on(&network.name)
                    .into_keys()
                    .map(|alias| {
                        let key = Key::Alias { network: network.name.clone(), name: alias.to_owned() };
                        let found = match observed.get(&key) {
                            Some(Resource::Alias(found)) => Some(found),
                            _ => None,
                        };
                        AliasView {
                            name: alias.to_owned(),
                            address: found.map(|found| found.address),
                            backends: found
                                .map(|found| &found.backends[..])
                                .unwrap_or_default()
                                .iter()
                                .map(|backend| BackendView {
                                    container: backend.container.clone(),
                                    address: backend.address,
                                })
                                .collect(),
                        }
                    })
                    .collect();
                NetworkView {
                    aliases,
                    name: network.name.clone(),
                    bridge: bridge.map(|bridge| bridge.ifname.clone()),
                    subnet: address.map(|address| address.trunc()),
                    gateway: address.map(|address| address.addr()),
                    up: bridge.is_some_and(|bridge| bridge.up),
                    members,
                }
            })
            .collect();
        let containers = stack
            .containers
            .values()
            .map(|container| {
                let namespace = match observed.get(&Key::Namespace { container: container.name.clone() }) {
                    Some(Resource::Namespace(namespace)) => Some(namespace.name.clone()),
                    _ => None,
                };
                let default_route = match observed.get(&Key::Route { container: container.name.clone() }) {
                    Some(Resource::Route(route)) => Some(format!("via {} dev {}", route.gateway, route.ifname)),
                    _ => None,
                };
                let ports = observed
                    .of_kind(Kind::Forward)
                    .filter_map(|resource| match resource {
                        Resource::Forward(forward) if forward.container == container.name => Some(forward),
                        _ => None,
                    })
                    .filter_map(|forward| {
                        Some(PortView {
                            host_ip: forward.host_ip,
                            host_ports: forward.host_ports.ports()?.to_string(),
                            container_ports: forward.container_ports.to_string(),
                            protocol: forward.protocol.to_string(),
                            random: matches!(forward.host_ports, HostPorts::Picked(_)),
                        })
                    })
                    .collect();
                ContainerView { name: container.name.clone(), netns: namespace, default_route, ports }
            })
            .collect();
        Topology { format_version: FORMAT_VERSION, stack: stack.name.clone(), networks, containers }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a topology serializes") + "\n"
    }
}
