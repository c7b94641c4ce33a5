//! A network's firewall: what may leave it, enter it and pass inside it.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::{Key, Object};
use crate::model::Isolation;

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

/// A container's port on a network, as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Member {
    pub container: String,
    /// The host end of the container's veth pair.
    pub port: String,
    pub address: Ipv4Addr,
}

impl Object for Policy {
    fn key(&self) -> Key {
        Key::Policy { network: self.network.clone() }
    }

    fn attributes(&self) -> Vec<(&'static str, String)> {
        vec![
            ("bridge", self.bridge.clone()),
            ("subnet", self.subnet.to_string()),
            ("egress", if self.internal { "none (internal)" } else { "masquerade" }.to_owned()),
            (
                "isolation",
                match self.isolation {
                    Isolation::Flows => "declared flows only".to_owned(),
                    Isolation::Open => "open".to_owned(),
                },
            ),
            (
                "members",
                self.members
                    .iter()
                    .map(|member| format!("{}={}", member.container, member.address))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ]
    }
}
