//! The reachability delta between two validated stacks: which flows become allowed or
//! forbidden, which ports are published or unpublished, and which aliases change hands.
//!
//! It is computed from the models, not from kernel state, so it says what the change means
//! for who may reach whom, whatever objects the kernel needs to get there.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::graph::{AllowedFlow, Grant, StackGraph};
use crate::model::{Publication, Stack, Traffic};

/// What a change does to reachability. Every list is sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reachability {
    /// Flows the new stack allows and the old one did not.
    pub flows_allowed: Vec<AllowedFlow>,
    /// Flows the old stack allowed and the new one does not.
    pub flows_forbidden: Vec<AllowedFlow>,
    pub ports_published: Vec<PublishedPort>,
    pub ports_unpublished: Vec<PublishedPort>,
    /// The newly published ports that listen on every host interface: the ones a reviewer
    /// must not miss, since they may be reachable from outside the host.
    pub exposed_on_all_interfaces: Vec<PublishedPort>,
    /// Aliases whose holders differ, including aliases that appear or disappear.
    pub alias_moves: Vec<AliasMove>,
}

/// One publication of one container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PublishedPort {
    pub container: String,
    pub publication: Publication,
}

/// The containers that hold an alias on one network, before and after. Either side is empty
/// when the alias appears or disappears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasMove {
    pub network: String,
    pub alias: String,
    pub before: BTreeSet<String>,
    pub after: BTreeSet<String>,
}

impl Reachability {
    pub fn between(old: &Stack, new: &Stack) -> Self {
        let (old_flows, new_flows) = (flows(old), flows(new));
        let (old_ports, new_ports) = (publications(old), publications(new));
        let ports_published: Vec<PublishedPort> = new_ports.difference(&old_ports).cloned().collect();
        let exposed_on_all_interfaces =
            ports_published.iter().filter(|port| port.publication.host_ip.is_none()).cloned().collect();
        Reachability {
            flows_allowed: only_in(&new_flows, &old_flows),
            flows_forbidden: only_in(&old_flows, &new_flows),
            ports_unpublished: old_ports.difference(&new_ports).cloned().collect(),
            ports_published,
            exposed_on_all_interfaces,
            alias_moves: alias_moves(old, new),
        }
    }

    pub fn is_empty(&self) -> bool {
        // The exposed ports are a subset of the published ones, so they need no check.
        self.flows_allowed.is_empty()
            && self.flows_forbidden.is_empty()
            && self.ports_published.is_empty()
            && self.ports_unpublished.is_empty()
            && self.alias_moves.is_empty()
    }
}

type FlowKey = (String, String, String, Traffic);

/// The allowed flows by what they allow. Why a flow is allowed does not change who can
/// reach whom, so a flow that is both declared and granted by an open network counts once,
/// as declared (declared flows sort first).
fn flows(stack: &Stack) -> BTreeMap<FlowKey, Grant> {
    let mut flows = BTreeMap::new();
    for flow in StackGraph::build(stack).allowed_flows() {
        flows.entry((flow.source, flow.destination, flow.network, flow.traffic)).or_insert(flow.grant);
    }
    flows
}

/// The flows of `these` that `others` lacks.
fn only_in(these: &BTreeMap<FlowKey, Grant>, others: &BTreeMap<FlowKey, Grant>) -> Vec<AllowedFlow> {
    these
        .iter()
        .filter(|(key, _)| !others.contains_key(*key))
        .map(|((source, destination, network, traffic), grant)| AllowedFlow {
            source: source.clone(),
            destination: destination.clone(),
            network: network.clone(),
            traffic: *traffic,
            grant: *grant,
        })
        .collect()
}

fn publications(stack: &Stack) -> BTreeSet<PublishedPort> {
    stack
        .containers
        .values()
        .flat_map(|container| {
            container
                .ports
                .iter()
                .map(|publication| PublishedPort { container: container.name.clone(), publication: *publication })
        })
        .collect()
}

/// Per network and alias, the containers that hold it.
type AliasHolders = BTreeMap<(String, String), BTreeSet<String>>;

fn alias_holders(stack: &Stack) -> AliasHolders {
    let mut holders = AliasHolders::new();
    for container in stack.containers.values() {
        for membership in container.memberships() {
            for alias in &membership.aliases {
                holders.entry((membership.network.clone(), alias.clone())).or_default().insert(container.name.clone());
            }
        }
    }
    holders
}

fn alias_moves(old: &Stack, new: &Stack) -> Vec<AliasMove> {
    let (before, after) = (alias_holders(old), alias_holders(new));
    let names: BTreeSet<&(String, String)> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let holders = |side: &AliasHolders| side.get(name).cloned().unwrap_or_default();
            let (before, after) = (holders(&before), holders(&after));
            (before != after).then(|| AliasMove { network: name.0.clone(), alias: name.1.clone(), before, after })
        })
        .collect()
}

impl fmt::Display for PublishedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.container, self.publication)
    }
}

impl fmt::Display for AliasMove {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}: {} -> {}", self.alias, self.network, holders(&self.before), holders(&self.after))
    }
}

/// Containers as `a, b`, or `nobody` when there are none.
fn holders(containers: &BTreeSet<String>) -> String {
    if containers.is_empty() { "nobody".to_owned() } else { containers.iter().cloned().collect::<Vec<_>>().join(", ") }
}
