//! The names a container resolves, its name servers, and whether other names are forwarded.

use std::net::Ipv4Addr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Key, Object};

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

impl Object for Hosts {
    fn key(&self) -> Key {
        Key::Hosts { container: self.container.clone() }
    }

    fn dependencies(&self) -> Vec<Key> {
        vec![Key::Namespace { container: self.container.clone() }]
    }

    fn attributes(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "records",
                self.records.iter().map(|(name, address)| format!("{name}={address}")).collect::<Vec<_>>().join(" "),
            ),
            ("nameservers", self.nameservers.iter().map(Ipv4Addr::to_string).collect::<Vec<_>>().join(" ")),
            ("upstream", if self.upstream { "forwarded" } else { "none (internal)" }.to_owned()),
        ]
    }
}
