//! Names the plan would create that something else on the host already holds.

use std::collections::BTreeSet;

use super::{Operation, Plan};
use crate::state::{Key, Resource};

/// An interface the plan creates whose name a foreign interface holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    pub key: Key,
    pub ifname: String,
}

impl std::fmt::Display for Collision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} `{}` needs interface name `{}`, which an interface that this stack does not own already has: \
             stackctl leaves it untouched; rename or remove it",
            self.key.kind().name(),
            self.key.label(),
            self.ifname
        )
    }
}

/// The creations of `plan` whose host interface names are taken by `foreign` interfaces
/// (those of the host, of other stacks, or of other tools).
pub fn collisions(plan: &Plan, foreign: &BTreeSet<String>) -> Vec<Collision> {
    plan.operations
        .iter()
        .filter_map(|operation| match operation {
            Operation::Create { resource: Resource::Bridge(bridge) } => Some((operation.key(), &bridge.ifname)),
            Operation::Create { resource: Resource::Link(link) } => Some((operation.key(), &link.host_ifname)),
            _ => None,
        })
        .filter(|(_, ifname)| foreign.contains(*ifname))
        .map(|(key, ifname)| Collision { key, ifname: ifname.clone() })
        .collect()
}
