//! A Linux bridge: one network.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::{Key, Object, addresses, flag, shown};
use crate::model::Isolation;

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
    /// Its `net.ipv4.conf.<bridge>` settings: an older record that lacks them had them as
    /// every bridge has.
    #[serde(default = "InetConf::for_a_network")]
    pub conf: InetConf,
    /// The virtual addresses of the network's aliases, sorted, each as a /32 of its own:
    /// the host answers ARP for them, so members that reach the subnet on link send
    /// traffic for an alias to the host, where the alias's rule picks a backend.
    pub virtual_addresses: Vec<Ipv4Addr>,
}

/// A bridge's `net.ipv4.conf.<bridge>` settings, the host's IPv4 behaviour on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InetConf {
    /// The host routes between the bridge and the rest (the firewall decides what passes).
    pub forwarding: bool,
    /// The host forwards between members of an isolated network on the same interface, and
    /// must not tell them to go around it: off.
    pub send_redirects: bool,
    /// Connections from 127.0.0.1 to published ports can be forwarded to members (the
    /// firewall drops loopback addresses coming from containers).
    pub route_localnet: bool,
}

impl InetConf {
    /// What every network's bridge has.
    pub fn for_a_network() -> InetConf {
        InetConf { forwarding: true, send_redirects: false, route_localnet: true }
    }
}

impl std::fmt::Display for InetConf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bit = |on: bool| u8::from(on);
        write!(
            f,
            "forwarding={} send_redirects={} route_localnet={}",
            bit(self.forwarding),
            bit(self.send_redirects),
            bit(self.route_localnet)
        )
    }
}

impl Object for Bridge {
    fn key(&self) -> Key {
        Key::Bridge { network: self.network.clone() }
    }

    /// A bridge is its kernel name: another name is another bridge.
    fn needs_replacement(&self, other: &Self) -> bool {
        self.ifname != other.ifname
    }

    fn attributes(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ifname", self.ifname.clone()),
            ("address", shown(self.address)),
            ("internal", self.internal.to_string()),
            ("isolation", format!("{:?}", self.isolation).to_lowercase()),
            ("state", flag(self.up)),
            ("conf", self.conf.to_string()),
            ("virtual", addresses(&self.virtual_addresses)),
        ]
    }
}
