//! Kernel state as values: what a stack wants ([`Desired`], from [`lower`]) and what a host
//! has (observed by the kernel adapters, or simulated in tests), in one shape so that the
//! planner can compare them.

mod allocate;
mod lower;
mod ports;
mod resource;
mod scope;

pub use allocate::{AUTO_SUBNET_POOL, bridge_ifname, container_mac, mac_text, veth_ifname};
pub use lower::{HostFacts, LocalPorts, LowerError, SubnetUser, UsedSubnet, lower};
pub use resource::{
    Alias, Backend, Bridge, FORWARDING, Flow, Forward, HostPorts, HostSetting, Hosts, InetConf, Key, Kind, Link,
    Member, NO_ADDRESS, Namespace, NamespaceConf, Policy, Records, Resource, Route, Stray, Sysctl, observe_forwarding,
    sysctl_value_is_known,
};
pub use scope::{HostNamespace, NamespaceName, Scope, fingerprint, namespace_name, namespace_owner};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A set of kernel objects of one stack, each under its [`Key`]. The keys order by kind
/// first, in the order kinds are created.
/// Serialized as the list of its resources: their keys are derived from them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Vec<Resource>", from = "Vec<Resource>")]
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

    /// Makes equal name records one shared value, as `lower` makes them: a state read from a
    /// file holds a copy per container, which in a large stack is most of its memory.
    pub fn share_records(&mut self) {
        let mut shared: std::collections::HashSet<Records> = std::collections::HashSet::new();
        for resource in self.resources.values_mut() {
            if let Resource::Hosts(hosts) = resource {
                match shared.get(&hosts.records) {
                    Some(records) => hosts.records = std::sync::Arc::clone(records),
                    None => {
                        shared.insert(std::sync::Arc::clone(&hosts.records));
                    }
                }
            }
        }
    }

    /// Whether nothing of the stack is left but the namespaces it adopted, which it never
    /// deletes: what a destroy leaves.
    pub fn is_released(&self) -> bool {
        self.resources.values().all(|resource| matches!(resource, Resource::Namespace(namespace) if namespace.adopted))
    }

    /// The resources of one kind, in key order.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Resource> {
        self.resources.values().filter(move |resource| resource.kind() == kind)
    }
}

impl From<KernelState> for Vec<Resource> {
    fn from(state: KernelState) -> Self {
        state.resources.into_values().collect()
    }
}

impl From<Vec<Resource>> for KernelState {
    fn from(resources: Vec<Resource>) -> Self {
        KernelState { resources: resources.into_iter().map(|resource| (resource.key(), resource)).collect() }
    }
}

/// The state a stack wants, the order its containers are wired in, and what a swap of its
/// aliases needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Desired {
    pub state: KernelState,
    /// Container names, every container after the targets of its flows.
    pub wiring_order: Vec<String>,
    /// The TCP ports that declared flows open to each alias: a container that takes the
    /// alias must accept connections on them before the alias moves to it.
    pub alias_ports: Vec<AliasPorts>,
    /// How long a swap waits for the connections of a container that an alias leaves.
    pub drain: crate::model::Drain,
    /// The host's settings (`Sysctl`) that other stacks still hold: when this stack lets
    /// one go, the host keeps it as it is.
    #[serde(default)]
    pub held_elsewhere: std::collections::BTreeSet<String>,
}

impl Desired {
    /// Nothing: what destroy plans to, with the host's settings that other stacks hold.
    pub fn nothing(host: &HostFacts) -> Desired {
        Desired { held_elsewhere: resource::held_elsewhere(&host.settings), ..Desired::default() }
    }
}

/// The TCP ports declared flows open to one alias on one network, in order, each range by
/// its first port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasPorts {
    pub network: String,
    pub alias: String,
    pub ports: Vec<u16>,
}
