//! A name that stands for containers on one network, at a virtual address of its own.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{Key, Object};

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

impl Object for Alias {
    fn key(&self) -> Key {
        Key::Alias { network: self.network.clone(), name: self.name.clone() }
    }

    fn attributes(&self) -> Vec<(&'static str, String)> {
        vec![
            ("address", self.address.to_string()),
            (
                "backends",
                self.backends
                    .iter()
                    .map(|backend| format!("{}={}", backend.container, backend.address))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ]
    }
}
