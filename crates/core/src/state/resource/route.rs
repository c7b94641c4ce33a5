//! A container's default route.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{Key, Object, device};

/// A container's default route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub container: String,
    pub network: String,
    pub gateway: Ipv4Addr,
    pub ifname: String,
}

impl Object for Route {
    fn key(&self) -> Key {
        Key::Route { container: self.container.clone() }
    }

    fn dependencies(&self) -> Vec<Key> {
        vec![Key::Link { container: self.container.clone(), network: self.network.clone() }]
    }

    fn attributes(&self) -> Vec<(&'static str, String)> {
        vec![("default", format!("via {} dev {}", self.gateway, device(&self.ifname)))]
    }
}
