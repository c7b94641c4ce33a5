//! A declared flow on a network with `isolation: flows`, resolved to addresses.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{Key, Object};
use crate::model::{Protocol, Traffic};

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

impl Object for Flow {
    fn key(&self) -> Key {
        Key::Flow {
            network: self.network.clone(),
            source: self.source.clone(),
            destination: self.destination.clone(),
            traffic: self.traffic,
        }
    }

    fn attributes(&self) -> Vec<(&'static str, String)> {
        vec![("from", self.from.to_string()), ("to", self.to.to_string())]
    }
}
