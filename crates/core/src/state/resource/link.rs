//! A container's membership of a network: a veth pair from the bridge into its namespace.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::{Key, Object, device, flag, shown};

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

impl Link {
    /// Whether changing the link into `other` takes its address away and gives one back
    /// (another address, or one that starts or stops bringing its subnet's route), which
    /// takes the routes through the link with it.
    pub fn disrupts(&self, other: &Link) -> bool {
        self.address != other.address || self.subnet_via.is_some() != other.subnet_via.is_some()
    }
}

impl Object for Link {
    fn key(&self) -> Key {
        Key::Link { container: self.container.clone(), network: self.network.clone() }
    }

    fn dependencies(&self) -> Vec<Key> {
        vec![Key::Bridge { network: self.network.clone() }, Key::Namespace { container: self.container.clone() }]
    }

    /// A veth pair is its two kernel names.
    fn needs_replacement(&self, other: &Self) -> bool {
        self.ifname != other.ifname || self.host_ifname != other.host_ifname
    }

    fn attributes(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ifname", device(&self.ifname)),
            ("address", shown(self.address)),
            ("host_ifname", self.host_ifname.clone()),
            ("bridge", if self.attached { "attached" } else { "detached" }.to_owned()),
            ("state", flag(self.up)),
            ("subnet", self.subnet_via.map_or("on link".to_owned(), |gateway| format!("via {gateway}"))),
        ]
    }
}
