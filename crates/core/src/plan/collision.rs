//! Names and subnets the plan would take that something else on the host already holds.

use std::collections::BTreeSet;

use ipnet::Ipv4Net;

use super::{Operation, Plan};
use crate::model::overlaps;
use crate::state::{Key, Resource, UsedSubnet};

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

/// A subnet that the plan gives a network's bridge, which something else on the host uses
/// by now: another stack applied while the plan was shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetClash {
    pub network: String,
    pub subnet: Ipv4Net,
    pub used: UsedSubnet,
}

impl std::fmt::Display for SubnetClash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "network `{}` would take subnet {}, which overlaps {} that {} uses now (it changed while the plan was shown)",
            self.network, self.subnet, self.used.subnet, self.used.user
        )
    }
}

/// The subnets that `plan` gives networks' bridges, by network: those it creates, and
/// those it gives another subnet.
pub fn new_subnets(plan: &Plan) -> Vec<(&str, Ipv4Net)> {
    plan.operations
        .iter()
        .filter_map(|operation| match operation {
            Operation::Create { resource: Resource::Bridge(bridge) } => Some(bridge),
            Operation::Update { before: Resource::Bridge(before), after: Resource::Bridge(after) }
                if before.address.trunc() != after.address.trunc() =>
            {
                Some(after)
            }
            _ => None,
        })
        .map(|bridge| (bridge.network.as_str(), bridge.address.trunc()))
        .collect()
}

/// The new subnets of `plan` (see [`new_subnets`]) that overlap one of `used`.
pub fn subnet_clashes(plan: &Plan, used: &[UsedSubnet]) -> Vec<SubnetClash> {
    new_subnets(plan)
        .into_iter()
        .filter_map(|(network, subnet)| {
            let used = used.iter().find(|used| overlaps(&subnet, &used.subnet))?;
            Some(SubnetClash { network: network.to_owned(), subnet, used: used.clone() })
        })
        .collect()
}
