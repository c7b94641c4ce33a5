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
        vec![(if self.adopted { "adopted" } else { "name" }, self.name.clone()), ("loopback", flag(self.loopback_up))]
    }
}
