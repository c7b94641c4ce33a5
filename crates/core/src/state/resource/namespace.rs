//! A container's network namespace.

use serde::{Deserialize, Serialize};

use super::{Key, Object, flag};

/// A container's network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    pub container: String,
    /// The name under `/run/netns`, or the path of an adopted namespace.
    pub name: String,
    /// An adopted namespace is used, never created or deleted.
    pub adopted: bool,
    pub loopback_up: bool,
    /// Its own settings, for a namespace stackctl creates; `None` for an adopted one, whose
    /// maker decides them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conf: Option<NamespaceConf>,
}

/// A namespace's own IPv4 and IPv6 settings (`net.ipv4.ip_forward`,
/// `net.ipv6.conf.{all,default}.disable_ipv6` inside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceConf {
    /// Whether it routes between its interfaces.
    pub forwarding: bool,
    /// Whether its interfaces have IPv6.
    pub ipv6: bool,
}

impl NamespaceConf {
    /// What a container's namespace has: it does not route between its networks (that is
    /// the host's firewall's to decide, not a container's), and has no IPv6 (the stack's
    /// networks carry IPv4; a container's IPv6 would reach nothing but its own link).
    pub fn for_a_container() -> NamespaceConf {
        NamespaceConf { forwarding: false, ipv6: false }
    }
}

impl std::fmt::Display for NamespaceConf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = |on: bool| if on { "on" } else { "off" };
        write!(f, "forwarding={} ipv6={}", on(self.forwarding), on(self.ipv6))
    }
}

impl Object for Namespace {
    fn key(&self) -> Key {
        Key::Namespace { container: self.container.clone() }
    }

    /// Another name, or adopting a namespace stackctl made (or the other way round), is
    /// another namespace.
    fn needs_replacement(&self, other: &Self) -> bool {
        self.name != other.name || self.adopted != other.adopted
    }

    fn attributes(&self) -> Vec<(&'static str, String)> {
        vec![
            (if self.adopted { "adopted" } else { "name" }, self.name.clone()),
            ("loopback", flag(self.loopback_up)),
            ("conf", self.conf.map_or_else(|| "its maker's".to_owned(), |conf| conf.to_string())),
        ]
    }
}
