//! Kernel state as values: what a stack wants ([`Desired`], from [`lower`]) and what a host
//! has (observed by the kernel adapters, or simulated in tests), in one shape so that the
//! planner can compare them.

mod allocate;
mod lower;
mod resource;

pub use allocate::{AUTO_SUBNET_POOL, derived_ifname};
pub use lower::{HostFacts, LowerError, lower};
pub use resource::{Bridge, Flow, Forward, HostPorts, Hosts, Key, Kind, Link, Namespace, Records, Resource, Route};

use std::collections::BTreeMap;

use serde::Serialize;

/// A set of kernel objects of one stack, each under its [`Key`]. The keys order by kind
/// first, in the order kinds are created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KernelState {
    pub resources: BTreeMap<Key, Resource>,
}

impl KernelState {
    pub fn insert(&mut self, resource: Resource) {
        self.resources.insert(resource.key(), resource);
    }

    pub fn get(&self, key: &Key) -> Option<&Resource> {
        self.resources.get(key)
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// The resources of one kind, in key order.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Resource> {
        self.resources.values().filter(move |resource| resource.kind() == kind)
    }
}

/// The state a stack wants, and the order its containers are wired in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Desired {
    pub state: KernelState,
    /// Container names, every container after the targets of its flows.
    pub wiring_order: Vec<String>,
}
