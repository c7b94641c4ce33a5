//! A published port range: host ports forwarded to a container's address.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{Key, Object};
use crate::model::{PortRange, Protocol};

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

impl Object for Forward {
    fn key(&self) -> Key {
        Key::Forward {
            container: self.container.clone(),
            protocol: self.protocol,
            container_port: self.container_ports.first,
            host_ip: self.host_ip,
            host_port: match self.host_ports {
                HostPorts::Fixed(ports) => Some(ports.first),
                HostPorts::Random | HostPorts::Picked(_) => None,
            },
        }
    }

    fn attributes(&self) -> Vec<(&'static str, String)> {
        vec![
            ("host", {
                let ip = self.host_ip.map_or("*".to_owned(), |ip| ip.to_string());
                let ports = match self.host_ports {
                    HostPorts::Fixed(ports) => format!("{ip}:{ports}"),
                    HostPorts::Random => format!("{ip}:random"),
                    HostPorts::Picked(ports) => format!("{ip}:{ports} (picked at random)"),
                };
                // The classic leak: a port meant for one address, published on all.
                if self.host_ip.is_none() { format!("{ports} EXPOSED ON ALL INTERFACES") } else { ports }
            }),
            ("to", format!("{}:{}", self.to, self.container_ports)),
        ]
    }
}
