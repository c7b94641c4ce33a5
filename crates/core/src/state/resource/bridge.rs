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
    /// The virtual addresses of the network's aliases, sorted, each as a /32 of its own:
    /// the host answers ARP for them, so members that reach the subnet on link send
    /// traffic for an alias to the host, where the alias's rule picks a backend.
    pub virtual_addresses: Vec<Ipv4Addr>,
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
            ("virtual", addresses(&self.virtual_addresses)),
        ]
    }
}
