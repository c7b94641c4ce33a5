//! Swaps: an alias that leaves containers moves make before break, so that no request
//! through it fails, whether the plan removes the containers it leaves, disconnects them,
//! or keeps them where they are.
//!
//! Such a plan runs in three phases between four states. The first wires everything new
//! while the containers the alias leaves keep serving (their links, rules and names stay,
//! and the alias still points at them). Then, once the containers that take the alias are
//! seen to accept connections on the ports declared flows open to it, the second phase
//! repoints the aliases: one rule transaction, since each alias is a virtual address whose
//! backends the kernel picks. New connections go to the new backends from then on, and
//! established ones stay where they are. The last phase removes what leaves (containers,
//! links, or only the flows that reached a container through the alias), after the
//! connections it would cut have finished or the drain timeout has passed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::model::Traffic;
use crate::model::{Drain, HOST};
use crate::state::{Backend, Desired, Flow, KernelState, Key, Kind, NamespaceName, Resource};

/// A make-before-break move of aliases, and where its phases start in the plan's
/// operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swap {
    pub moves: Vec<Move>,
    /// What must accept connections before the aliases move.
    pub verify: Vec<Readiness>,
    /// The containers whose established connections the swap waits for.
    pub drain: Vec<Leaving>,
    /// How long it waits for them at most.
    pub timeout: Drain,
    /// The first operation of the repoint: the ones before it wire what is new.
    pub repoint_at: usize,
    /// The first operation of the removal, which comes after the drain.
    pub remove_at: usize,
}

/// One alias on one network, moving from some containers to others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub network: String,
    pub alias: String,
    /// The alias's virtual address, which stays.
    pub address: Ipv4Addr,
    pub from: Vec<String>,
    pub to: Vec<String>,
    /// The backends the alias leaves, at their addresses on its network: connections
    /// through the alias to them drain.
    pub left: Vec<Backend>,
}

/// A port that a container taking an alias must accept connections on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    pub container: String,
    pub namespace: NamespaceName,
    pub network: String,
    /// The container's address on the alias's network.
    pub address: Ipv4Addr,
    pub port: u16,
}

/// A container that an alias leaves, and what of its connections the removal cuts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaving {
    pub container: String,
    pub namespace: NamespaceName,
    /// Its addresses on the aliases' networks that the plan takes away (it removes the
    /// container, disconnects it, or gives it another address): every connection to them
    /// is cut, so every one drains.
    pub addresses: Vec<Ipv4Addr>,
    /// Where it keeps its address on an alias's network, the flows to it there that the
    /// removal deletes: the connections they carry through the aliases drain. Empty when
    /// another flow still allows them, or the network is open (nothing to delete).
    pub flows: Vec<Flow>,
}

/// The states a swap passes through: after the wiring, and after the repoint.
pub(super) struct Phases {
    pub made: KernelState,
    pub repointed: KernelState,
    pub swap: Swap,
}

/// The phases of the plan from `observed` to `desired`, when an alias leaves a container
/// (for any reason: the plan removes the container, disconnects it from the alias's
/// network, or only takes the alias from it); `None` when no alias does.
pub(super) fn phases(desired: &Desired, observed: &KernelState) -> Option<Phases> {
    let mut moves = Vec::new();
    // Containers the aliases leave, with their addresses on the aliases' networks that the
    // plan takes away.
    let mut leaving: BTreeMap<String, BTreeSet<Ipv4Addr>> = BTreeMap::new();
    for (wanted, had) in moved_aliases(desired, observed) {
        let left: Vec<Backend> = lost(wanted, had)
            // A container whose address the new state gives to another (a static address
            // handed over) cannot serve beside it: that move is not made before break
            // (see `breaks`).
            .filter(|backend| !taken(desired, &wanted.network, backend))
            .cloned()
            .collect();
        if left.is_empty() {
            continue;
        }
        // On a network that changes whole (renumbered, or isolated otherwise), the old
        // containers' connections break at the wiring, which the plan says (`breaks`):
        // nothing of them is left to drain.
        let disrupted = disrupted(desired, observed, &wanted.network);
        for backend in left.iter().filter(|_| !disrupted) {
            let addresses = leaving.entry(backend.container.clone()).or_default();
            let link = Key::Link { container: backend.container.clone(), network: wanted.network.clone() };
            let kept = matches!(desired.state.get(&link), Some(Resource::Link(link)) if link.address.addr() == backend.address);
            if !kept {
                addresses.insert(backend.address);
            }
        }
        moves.push(Move {
            network: wanted.network.clone(),
            alias: wanted.name.clone(),
            address: wanted.address,
            from: had.backends.iter().map(|backend| backend.container.clone()).collect(),
            to: wanted.backends.iter().map(|backend| backend.container.clone()).collect(),
            left,
        });
    }
    if moves.is_empty() {
        return None;
    }

    let made = made(desired, observed, &moves);
    let mut repointed = made.clone();
    for moved in &moves {
        let key = Key::Alias { network: moved.network.clone(), name: moved.alias.clone() };
        repointed.insert(desired.state.get(&key).expect("a moved alias is desired").clone());
    }
    let drain = leaving
        .iter()
        .filter_map(|(container, addresses)| {
            let flows = cut_flows(desired, observed, &moves, container, addresses);
            (!addresses.is_empty() || !flows.is_empty()).then_some(())?;
            Some(Leaving {
                namespace: namespace_of(observed, container)?,
                container: container.clone(),
                addresses: addresses.iter().copied().collect(),
                flows,
            })
        })
        .collect();
    let swap =
        Swap { verify: readiness(desired, &moves), drain, moves, timeout: desired.drain, repoint_at: 0, remove_at: 0 };
    Some(Phases { made, repointed, swap })
}

/// Each alias that both states have, as wanted and as it was.
fn moved_aliases<'a>(
    desired: &'a Desired,
    observed: &'a KernelState,
) -> impl Iterator<Item = (&'a crate::state::Alias, &'a crate::state::Alias)> {
    desired.state.of_kind(Kind::Alias).filter_map(move |wanted| {
        let Resource::Alias(wanted) = wanted else { return None };
        let key = Key::Alias { network: wanted.network.clone(), name: wanted.name.clone() };
        match observed.get(&key) {
            Some(Resource::Alias(had)) => Some((wanted, had)),
            _ => None,
        }
    })
}

/// The backends an alias had and no longer has.
fn lost<'a>(wanted: &'a crate::state::Alias, had: &'a crate::state::Alias) -> impl Iterator<Item = &'a Backend> {
    had.backends.iter().filter(|backend| !wanted.backends.iter().any(|kept| kept.container == backend.container))
}

/// An alias move that cannot be made before break: the connections through the alias to
/// the container it leaves break at the wiring. The plan says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Break {
    pub network: String,
    pub alias: String,
    /// The container the alias leaves.
    pub from: String,
    pub reason: BreakReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BreakReason {
    /// Another container takes its address: both cannot hold it at once.
    AddressTaken { address: Ipv4Addr },
    /// The network gets another subnet: every member's address changes at once.
    Renumbered,
    /// The network's isolation changes: every member's routes and rules change at once.
    IsolationChanges,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match &self.reason {
            BreakReason::AddressTaken { address } => format!("for a container that takes its address {address}"),
            BreakReason::Renumbered => format!("while `{}` gets another subnet", self.network),
            BreakReason::IsolationChanges => format!("while the isolation of `{}` changes", self.network),
        };
        write!(
            f,
            "alias `{}` on `{}` leaves `{}` {why}: this move is not make before break, and connections through \
             the alias to `{}` are cut",
            self.alias, self.network, self.from, self.from
        )
    }
}

/// The alias moves that cannot be made before break, and why.
pub(super) fn breaks(desired: &Desired, observed: &KernelState) -> Vec<Break> {
    moved_aliases(desired, observed)
        .flat_map(|(wanted, had)| {
            let network = wanted.network.as_str();
            lost(wanted, had).filter_map(move |backend| {
                let reason = if taken(desired, network, backend) {
                    BreakReason::AddressTaken { address: backend.address }
                } else if renumbered(desired, observed, network) {
                    BreakReason::Renumbered
                } else if isolation_changes(desired, observed, network) {
                    BreakReason::IsolationChanges
                } else {
                    return None;
                };
                Some(Break {
                    network: network.to_owned(),
                    alias: wanted.name.clone(),
                    from: backend.container.clone(),
                    reason,
                })
            })
        })
        .collect()
}

/// Whether a network gets another gateway (and so another subnet): every member's address
/// changes with it.
fn renumbered(desired: &Desired, observed: &KernelState, network: &str) -> bool {
    let key = Key::Bridge { network: network.to_owned() };
    match (desired.state.get(&key), observed.get(&key)) {
        (Some(Resource::Bridge(wanted)), Some(Resource::Bridge(had))) => wanted.address != had.address,
        _ => true,
    }
}

/// Whether a network's isolation changes: its members' routes and its rules change with it.
fn isolation_changes(desired: &Desired, observed: &KernelState, network: &str) -> bool {
    let key = Key::Policy { network: network.to_owned() };
    match (desired.state.get(&key), observed.get(&key)) {
        (Some(Resource::Policy(wanted)), Some(Resource::Policy(had))) => wanted.isolation != had.isolation,
        _ => false,
    }
}

/// Whether a network changes whole, so that nothing of the old containers on it can be
/// kept as it was.
fn disrupted(desired: &Desired, observed: &KernelState, network: &str) -> bool {
    renumbered(desired, observed, network) || isolation_changes(desired, observed, network)
}

/// The flows to `container`, where it keeps its address on a moved alias's network, that
/// the plan deletes (or changes): the removal cuts the connections they carry.
fn cut_flows(
    desired: &Desired,
    observed: &KernelState,
    moves: &[Move],
    container: &str,
    taken_away: &BTreeSet<Ipv4Addr>,
) -> Vec<Flow> {
    let kept_on: BTreeSet<&str> = moves
        .iter()
        .filter(|moved| {
            moved.left.iter().any(|backend| backend.container == container && !taken_away.contains(&backend.address))
                && !disrupted(desired, observed, &moved.network)
        })
        .map(|moved| moved.network.as_str())
        .collect();
    // A flow the plan widens or replaces by one that still lets the same traffic through
    // cuts nothing.
    let covered = |flow: &Flow| {
        desired.state.of_kind(Kind::Flow).any(|resource| match resource {
            Resource::Flow(wanted) => {
                wanted.network == flow.network
                    && wanted.source == flow.source
                    && wanted.destination == flow.destination
                    && covers(wanted.traffic, flow.traffic)
            }
            _ => false,
        })
    };
    observed
        .of_kind(Kind::Flow)
        .filter_map(|resource| match resource {
            Resource::Flow(flow) if flow.destination == container && kept_on.contains(flow.network.as_str()) => {
                (desired.state.get(&resource.key()) != Some(resource) && !covered(flow)).then(|| flow.clone())
            }
            _ => None,
        })
        .collect()
}

/// The state once everything new is wired: the desired state, with the containers the
/// aliases leave still in place until the removal. What the plan deletes of them stays;
/// and on each network where an alias leaves a container (but for a network that changes
/// whole), that container keeps its address (in its link, its place in the network's
/// policy, the flows to it, the published ports and the names), the aliases it is
/// behind, and the names it resolves.
fn made(desired: &Desired, observed: &KernelState, moves: &[Move]) -> KernelState {
    let leaving: BTreeSet<&str> =
        moves.iter().flat_map(|moved| moved.left.iter().map(|backend| backend.container.as_str())).collect();
    let involves = |key: &Key| match key {
        Key::Flow { source, destination, .. } => {
            leaving.contains(source.as_str()) || leaving.contains(destination.as_str())
        }
        key => key.container().is_some_and(|container| leaving.contains(container)),
    };
    // (network, container): where an alias leaves a container on a network that stays.
    let left: BTreeSet<(&str, &str)> = moves
        .iter()
        .filter(|moved| !disrupted(desired, observed, &moved.network))
        .flat_map(|moved| moved.left.iter().map(|backend| (moved.network.as_str(), backend.container.as_str())))
        .collect();
    // The names a container the alias leaves resolves stay as they were.
    let as_it_was = |key: &Key| match key {
        Key::Hosts { container } => left.iter().any(|(_, kept)| kept == container),
        _ => false,
    };
    let mut made = desired.state.clone();
    // In key order, which puts every dependency before its dependents: what the plan
    // deletes anyway (a link on a network that goes) is not kept for its container.
    let mut kept_flows = BTreeSet::new();
    for (key, resource) in &observed.resources {
        let network = match key {
            Key::Flow { network, .. } => Some(Key::Policy { network: network.clone() }),
            _ => None,
        };
        // What it lives in is there, as it was: a route through a link that changes, or a
        // link on a renumbered network, would not work.
        let placed = resource.dependencies().iter().chain(&network).all(|needed| match needed {
            Key::Bridge { network } => made.resources.contains_key(needed) && !renumbered(desired, observed, network),
            Key::Link { .. } => made.get(needed).is_some() && made.get(needed) == observed.get(needed),
            _ => made.resources.contains_key(needed),
        });
        // A flow is kept only between containers that are still there on its network
        // until the removal: one whose other end the plan removes now would pass to
        // whichever container takes that end's address meanwhile.
        let ends_stay = match key {
            Key::Flow { network, source, destination, .. } => [source, destination].into_iter().all(|end| {
                end == HOST
                    || leaving.contains(end.as_str())
                    || desired
                        .state
                        .resources
                        .contains_key(&Key::Link { container: end.clone(), network: network.clone() })
            }),
            _ => true,
        };
        let kept = match made.get(key) {
            None => involves(key) && ends_stay,
            Some(wanted) => wanted != resource && as_it_was(key),
        };
        if kept && placed {
            made.insert(resource.clone());
            if key.kind() == Kind::Flow {
                kept_flows.insert(key.clone());
            }
        }
    }
    keep_addresses(&mut made, observed, &left);
    // A flow the plan adds that the kernel's sets cannot hold beside one kept until the
    // removal (the same addresses, with ports that overlap) comes with the removal.
    let kept: Vec<Flow> = kept_flows
        .iter()
        .filter_map(|key| match made.get(key) {
            Some(Resource::Flow(flow)) => Some(flow.clone()),
            _ => None,
        })
        .collect();
    made.resources.retain(|key, resource| match resource {
        Resource::Flow(flow) if !kept_flows.contains(key) => {
            !kept.iter().any(|kept| kept.from == flow.from && kept.to == flow.to && overlap(kept.traffic, flow.traffic))
        }
        _ => true,
    });
    for moved in moves {
        let key = Key::Alias { network: moved.network.clone(), name: moved.alias.clone() };
        made.insert(observed.get(&key).expect("a moved alias is observed").clone());
    }
    // The other aliases behind a container where an alias leaves it change with the
    // removal too: a backend's new address does not exist before it.
    let behind: Vec<Resource> = made
        .of_kind(Kind::Alias)
        .filter_map(|resource| match resource {
            Resource::Alias(alias)
                if alias
                    .backends
                    .iter()
                    .any(|backend| left.contains(&(alias.network.as_str(), backend.container.as_str()))) =>
            {
                observed.get(&resource.key()).filter(|had| *had != resource).cloned()
            }
            _ => None,
        })
        .collect();
    for resource in behind {
        made.insert(resource);
    }
    for resource in made.resources.values_mut() {
        let Resource::Policy(policy) = resource else { continue };
        let Some(Resource::Policy(had)) = observed.get(&Key::Policy { network: policy.network.clone() }) else {
            continue;
        };
        let network = policy.network.clone();
        let stays = |member: &crate::state::Member| {
            left.contains(&(network.as_str(), member.container.as_str()))
                || (leaving.contains(member.container.as_str())
                    && !policy.members.iter().any(|kept| kept.container == member.container))
        };
        let restored: Vec<crate::state::Member> = had.members.iter().filter(|member| stays(member)).cloned().collect();
        policy.members.retain(|member| !restored.iter().any(|had| had.container == member.container));
        policy.members.extend(restored);
        policy.members.sort();
    }
    made
}

/// Where an alias leaves a container that the plan gives another address on the
/// alias's network, the container keeps its old one until the removal: in its link (which
/// takes every other change of the plan at once, a repair included), and wherever `made`
/// holds the container's address: the flows (whose ends take the addresses their links
/// have in `made`, a client's new one included), the published ports and the names.
fn keep_addresses(made: &mut KernelState, observed: &KernelState, left: &BTreeSet<(&str, &str)>) {
    let mut old: std::collections::HashMap<Ipv4Addr, Ipv4Addr> = std::collections::HashMap::new();
    for (network, container) in left {
        let key = Key::Link { container: (*container).to_owned(), network: (*network).to_owned() };
        if let (Some(Resource::Link(wanted)), Some(Resource::Link(had))) = (made.get(&key), observed.get(&key))
            && wanted.address != had.address
            && had.address != crate::state::NO_ADDRESS
        {
            old.insert(wanted.address.addr(), had.address.addr());
            let kept = crate::state::Link { address: had.address, ..wanted.clone() };
            made.insert(Resource::Link(kept));
        }
    }
    let link_address = |made: &KernelState, container: &str, network: &str| match made
        .get(&Key::Link { container: container.to_owned(), network: network.to_owned() })
    {
        Some(Resource::Link(link)) if link.address != crate::state::NO_ADDRESS => Some(link.address.addr()),
        _ => None,
    };
    let flows: Vec<Flow> = made
        .of_kind(Kind::Flow)
        .filter_map(|resource| match resource {
            Resource::Flow(flow) => Some(flow.clone()),
            _ => None,
        })
        .collect();
    for mut flow in flows {
        flow.from = link_address(made, &flow.source, &flow.network).unwrap_or(flow.from);
        flow.to = link_address(made, &flow.destination, &flow.network).unwrap_or(flow.to);
        made.insert(Resource::Flow(flow));
    }
    if old.is_empty() {
        return;
    }
    for resource in made.resources.values_mut() {
        match resource {
            Resource::Forward(forward) => forward.to = old.get(&forward.to).copied().unwrap_or(forward.to),
            Resource::Hosts(hosts) if hosts.records.iter().any(|(_, address)| old.contains_key(address)) => {
                let records = hosts
                    .records
                    .iter()
                    .map(|(name, address)| (name.clone(), old.get(address).copied().unwrap_or(*address)))
                    .collect();
                hosts.records = std::sync::Arc::new(records);
            }
            _ => {}
        }
    }
}

/// Whether traffic `wide` lets through everything traffic `narrow` does.
fn covers(wide: Traffic, narrow: Traffic) -> bool {
    match (wide, narrow) {
        (Traffic::All, _) => true,
        (Traffic::Ports { protocol: pw, ports: w }, Traffic::Ports { protocol: pn, ports: n }) => {
            pw == pn && w.first <= n.first && n.last <= w.last
        }
        (Traffic::Ports { .. }, Traffic::All) => false,
    }
}

/// Whether the kernel's sets refuse two flows' traffic between the same addresses: the
/// interval set of a protocol's ports takes no overlapping ranges, and the set of flows of
/// all traffic takes each pair of addresses once.
fn overlap(a: Traffic, b: Traffic) -> bool {
    match (a, b) {
        (Traffic::Ports { protocol: pa, ports: a }, Traffic::Ports { protocol: pb, ports: b }) => {
            pa == pb && a.first <= b.last && b.first <= a.last
        }
        (Traffic::All, Traffic::All) => true,
        _ => false,
    }
}

/// What the containers that take an alias must accept before it moves: every port that
/// declared flows open to the alias, at the container's address on its network.
fn readiness(desired: &Desired, moves: &[Move]) -> Vec<Readiness> {
    let mut verify = Vec::new();
    for moved in moves {
        let ports = desired
            .alias_ports
            .iter()
            .find(|ports| ports.network == moved.network && ports.alias == moved.alias)
            .map_or(&[][..], |ports| ports.ports.as_slice());
        for container in moved.to.iter().filter(|container| !moved.from.contains(container)) {
            let link = Key::Link { container: container.clone(), network: moved.network.clone() };
            let (Some(Resource::Link(link)), Some(namespace)) =
                (desired.state.get(&link), namespace_of(&desired.state, container))
            else {
                continue;
            };
            for port in ports {
                let readiness = Readiness {
                    container: container.clone(),
                    namespace: namespace.clone(),
                    network: moved.network.clone(),
                    address: link.address.addr(),
                    port: *port,
                };
                if !verify.contains(&readiness) {
                    verify.push(readiness);
                }
            }
        }
    }
    verify
}

/// Whether the desired state gives the address of `backend` on `network` to something
/// else: another member, or an alias.
fn taken(desired: &Desired, network: &str, backend: &Backend) -> bool {
    let address = backend.address;
    desired.state.resources.values().any(|resource| match resource {
        Resource::Link(link) => {
            link.network == network && link.address.addr() == address && link.container != backend.container
        }
        Resource::Bridge(bridge) => bridge.network == network && bridge.virtual_addresses.contains(&address),
        _ => false,
    })
}

fn namespace_of(state: &KernelState, container: &str) -> Option<NamespaceName> {
    match state.get(&Key::Namespace { container: container.to_owned() }) {
        Some(Resource::Namespace(namespace)) if namespace.adopted => {
            Some(NamespaceName::Adopted(namespace.name.clone()))
        }
        Some(Resource::Namespace(namespace)) => Some(NamespaceName::Created(namespace.name.clone())),
        _ => None,
    }
}

/// What a container's namespace has listening on TCP, as read before any change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listening {
    /// The namespace does not exist yet: the container does not run.
    NoNamespace,
    /// The local addresses of its listening TCP sockets.
    On(Vec<(IpAddr, u16)>),
}

/// Why a container that takes an alias cannot take it yet, as read before any change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unready {
    /// Its namespace does not exist yet, so nothing runs in it: the apply creates it.
    NotRunning { container: String, namespace: NamespaceName },
    /// Nothing in it listens on a port the swap verifies.
    NotListening(Readiness),
}

impl Unready {
    pub fn container(&self) -> &str {
        match self {
            Unready::NotRunning { container, .. } => container,
            Unready::NotListening(readiness) => &readiness.container,
        }
    }
}

impl std::fmt::Display for Unready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unready::NotRunning { container, .. } => {
                write!(f, "container `{container}` does not run yet: this apply creates its network namespace")
            }
            Unready::NotListening(readiness) => write!(
                f,
                "nothing in container `{}` listens on tcp/{} (at {} or any address)",
                readiness.container, readiness.port, readiness.address
            ),
        }
    }
}

/// Whether a swap may start, given what its new containers do before any change and
/// whether the apply may wait for them once they are wired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Every new container already accepts on every verified port.
    Ready,
    /// Some do not yet: the apply wires them, then waits until they accept.
    AfterWaiting(Vec<Unready>),
    /// Some do not, and the apply may not wait: nothing is changed.
    Refused(Vec<Unready>),
}

impl Swap {
    /// Each (virtual address, backend address) that the aliases leave: connections to the
    /// address that a DNAT rule sent to the backend.
    pub fn left(&self) -> impl Iterator<Item = (Ipv4Addr, &Backend)> {
        self.moves.iter().flat_map(|moved| moved.left.iter().map(|backend| (moved.address, backend)))
    }

    /// Whether the aliases moved, once the plan's first `done` operations are made: the
    /// repoint is the first thing after the wiring.
    pub fn repointed(&self, done: usize) -> bool {
        done > self.repoint_at
    }

    /// What keeps the containers taking the aliases from taking them now, given what they
    /// listen on: one entry per port that nothing accepts, or per container that does not
    /// run yet. Empty when every port is served.
    pub fn unready(&self, listening: &BTreeMap<String, Listening>) -> Vec<Unready> {
        let mut problems = Vec::new();
        let mut absent = BTreeSet::new();
        for readiness in &self.verify {
            match listening.get(&readiness.container) {
                Some(Listening::On(sockets)) => {
                    let served = sockets.iter().any(|(address, port)| {
                        *port == readiness.port
                            && (address.is_unspecified() || *address == IpAddr::V4(readiness.address))
                    });
                    if !served {
                        problems.push(Unready::NotListening(readiness.clone()));
                    }
                }
                Some(Listening::NoNamespace) | None => {
                    if absent.insert(readiness.container.clone()) {
                        problems.push(Unready::NotRunning {
                            container: readiness.container.clone(),
                            namespace: readiness.namespace.clone(),
                        });
                    }
                }
            }
        }
        problems
    }

    /// Whether the swap may start: at once, after waiting for its new containers (when the
    /// apply may wait), or not at all. Decided before any change, so that a refused swap
    /// changes nothing.
    pub fn start(&self, listening: &BTreeMap<String, Listening>, wait: Waiting) -> Start {
        let problems = self.unready(listening);
        match (problems.is_empty(), wait) {
            (true, _) => Start::Ready,
            (false, Waiting::Allowed) => Start::AfterWaiting(problems),
            (false, Waiting::Forbidden) => Start::Refused(problems),
        }
    }
}

/// Whether an apply may wait for a swap's new containers to start, once it has wired them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    Allowed,
    Forbidden,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Operation;

    fn swap() -> Swap {
        Swap {
            moves: Vec::new(),
            verify: vec![Readiness {
                container: "v2".to_owned(),
                namespace: NamespaceName::Created("shop:v2".to_owned()),
                network: "web".to_owned(),
                address: Ipv4Addr::new(10, 89, 0, 4),
                port: 5000,
            }],
            drain: Vec::new(),
            timeout: Drain::DEFAULT,
            repoint_at: 0,
            remove_at: 0,
        }
    }

    fn listening(sockets: &[(&str, u16)]) -> BTreeMap<String, Listening> {
        let sockets = sockets.iter().map(|(address, port)| (address.parse().expect("address"), *port)).collect();
        BTreeMap::from([("v2".to_owned(), Listening::On(sockets))])
    }

    /// The plan from the state of stack file `before` to stack file `after`.
    fn planned(before: &str, after: &str) -> crate::plan::Plan {
        let lowered = |text: &str, observed: &KernelState| {
            let file = crate::spec::SourceFile { name: "s.yaml".to_owned(), text: text.to_owned() };
            let stack = crate::model::validate_file(&file).stack.expect("valid");
            crate::state::lower(&stack, observed, &crate::state::HostFacts::default()).expect("lowers")
        };
        let observed = lowered(before, &KernelState::default()).state;
        crate::plan::plan(&lowered(after, &observed), &observed)
    }

    fn swap_between(before: &str, after: &str) -> Swap {
        planned(before, after).swap.expect("a swap")
    }

    const BEFORE: &str = "name: s\nnetworks: { n: { isolation: ISOLATION } }\ncontainers:\n  client: { networks: [n], talks_to: ['app:80'] }\n  old: { networks: { n: { aliases: [app] } } }\n  new: { networks: [n] }\n";

    #[test]
    fn a_container_that_stays_drains_only_the_connections_of_flows_that_go() {
        let after = |isolation: &str| {
            BEFORE
                .replace("ISOLATION", isolation)
                .replace("old: { networks: { n: { aliases: [app] } } }", "old: { networks: [n] }")
                .replace("new: { networks: [n] }", "new: { networks: { n: { aliases: [app] } } }")
        };
        let isolated = swap_between(&BEFORE.replace("ISOLATION", "flows"), &after("flows"));
        let [leaving] = isolated.drain.as_slice() else { panic!("one container drains: {isolated:?}") };
        assert!(leaving.addresses.is_empty(), "it keeps its address");
        assert_eq!(
            leaving.flows.iter().map(|flow| (flow.source.as_str(), flow.destination.as_str())).collect::<Vec<_>>(),
            [("client", "old")]
        );
        // On an open network no flow goes, so nothing is cut and nothing drains.
        let open = swap_between(&BEFORE.replace("ISOLATION", "open"), &after("open"));
        assert!(open.drain.is_empty(), "{open:?}");
        // Nor when the client's flow to it is widened: the wider one still carries it.
        let widened = |text: String| text.replace("talks_to: ['app:80']", "talks_to: ['app:80', 'old:80-90']");
        let wider = |text: String| text.replace("talks_to: ['app:80']", "talks_to: ['app:80', 'old:79-90']");
        let kept = swap_between(&widened(BEFORE.replace("ISOLATION", "flows")), &wider(after("flows")));
        assert!(kept.drain.is_empty(), "{kept:?}");
        // Nor when another flow still lets the client reach the old container.
        let also = |text: String| text.replace("talks_to: ['app:80']", "talks_to: ['app:80', 'old:80']");
        let kept = swap_between(&also(BEFORE.replace("ISOLATION", "flows")), &also(after("flows")));
        assert!(kept.drain.is_empty(), "{kept:?}");
    }

    /// A client that gets another address in the same edit still reaches the old
    /// container through the alias until the repoint: the flow kept for it takes the
    /// client's new address.
    #[test]
    fn a_kept_flow_follows_its_clients_new_address() {
        let before = "name: s\nnetworks: { n: { subnet: 10.9.0.0/24 } }\ncontainers:\n  client: { networks: { n: { ipv4: 10.9.0.3 } }, talks_to: ['app:80'] }\n  old: { networks: { n: { aliases: [app] } } }\n  new: { networks: [n] }\n";
        let after = before
            .replace("ipv4: 10.9.0.3", "ipv4: 10.9.0.5")
            .replace("old: { networks: { n: { aliases: [app] } } }", "old: { networks: [n] }")
            .replace("new: { networks: [n] }", "new: { networks: { n: { aliases: [app] } } }");
        let plan = planned(before, &after);
        let swap = plan.swap.as_ref().expect("a swap");
        let wiring = &plan.operations[..swap.repoint_at];
        let kept_flow = wiring.iter().find_map(|operation| match operation {
            Operation::Update { after: Resource::Flow(flow), .. } if flow.destination == "old" => Some(flow),
            _ => None,
        });
        assert_eq!(kept_flow.map(|flow| flow.from), Some(Ipv4Addr::new(10, 9, 0, 5)), "{wiring:#?}");
    }

    #[test]
    fn an_alias_that_follows_its_address_to_another_container_is_said_to_cut_connections() {
        let text = "name: s\nnetworks: { n: { subnet: 10.9.0.0/24 } }\ncontainers:\n  client: { networks: [n], talks_to: ['app:80'] }\n  old: { networks: { n: { aliases: [app], ipv4: 10.9.0.10 } } }\n  new: { networks: [n] }\n";
        let after = text
            .replace("old: { networks: { n: { aliases: [app], ipv4: 10.9.0.10 } } }", "old: { networks: [n] }")
            .replace("new: { networks: [n] }", "new: { networks: { n: { aliases: [app], ipv4: 10.9.0.10 } } }");
        let plan = planned(text, &after);
        assert!(plan.swap.is_none());
        let address = Ipv4Addr::new(10, 9, 0, 10);
        assert_eq!(
            plan.breaks,
            [Break {
                network: "n".to_owned(),
                alias: "app".to_owned(),
                from: "old".to_owned(),
                reason: BreakReason::AddressTaken { address }
            }]
        );
        let shown = crate::plan::render_text(&plan, false);
        assert!(
            shown.contains("Note: alias `app` on `n` leaves `old` for a container that takes its address 10.9.0.10: this move is not make before break"),
            "{shown}"
        );
    }

    /// A network that changes whole (another subnet, or other isolation) takes every
    /// member's connections at the wiring: the move still waits for the new container,
    /// but the plan says the old one's connections break, and nothing drains.
    #[test]
    fn an_alias_moving_while_its_network_changes_whole_is_said_to_break() {
        let text = "name: s\nnetworks: { n: { subnet: 10.9.0.0/24 } }\ncontainers:\n  client: { networks: [n], talks_to: ['app:80'] }\n  old: { networks: { n: { aliases: [app] } } }\n  new: { networks: [n] }\n";
        let moved = text
            .replace("old: { networks: { n: { aliases: [app] } } }", "old: { networks: [n] }")
            .replace("new: { networks: [n] }", "new: { networks: { n: { aliases: [app] } } }");
        for (after, reason) in [
            (moved.replace("10.9.0.0/24", "10.8.0.0/24"), BreakReason::Renumbered),
            (
                moved.replace("subnet: 10.9.0.0/24", "subnet: 10.9.0.0/24, isolation: open"),
                BreakReason::IsolationChanges,
            ),
        ] {
            let plan = planned(text, &after);
            assert_eq!(plan.breaks.iter().map(|cut| &cut.reason).collect::<Vec<_>>(), [&reason], "{after}");
            let swap = plan.swap.expect("the new container is still verified before the alias moves");
            assert!(swap.drain.is_empty(), "nothing of the old container is left to drain: {swap:?}");
        }
    }

    fn messages(problems: &[Unready]) -> Vec<String> {
        problems.iter().map(Unready::to_string).collect()
    }

    #[test]
    fn a_port_served_on_any_address_or_the_containers_own_is_ready() {
        for address in ["0.0.0.0", "::", "10.89.0.4"] {
            assert!(swap().unready(&listening(&[(address, 5000)])).is_empty(), "{address}");
            assert_eq!(swap().start(&listening(&[(address, 5000)]), Waiting::Forbidden), Start::Ready);
        }
    }

    #[test]
    fn another_port_or_address_is_not_ready() {
        for (address, port) in [("0.0.0.0", 5001), ("127.0.0.1", 5000), ("10.89.0.9", 5000)] {
            let problems = swap().unready(&listening(&[(address, port)]));
            assert_eq!(
                messages(&problems),
                ["nothing in container `v2` listens on tcp/5000 (at 10.89.0.4 or any address)"]
            );
        }
    }

    #[test]
    fn a_container_that_does_not_run_cannot_take_an_alias_at_once() {
        let listening = BTreeMap::from([("v2".to_owned(), Listening::NoNamespace)]);
        let problems = swap().unready(&listening);
        assert_eq!(messages(&problems), ["container `v2` does not run yet: this apply creates its network namespace"]);
        assert_eq!(problems[0].container(), "v2");
    }

    #[test]
    fn an_unready_swap_starts_after_waiting_or_is_refused() {
        for listening in [
            BTreeMap::from([("v2".to_owned(), Listening::NoNamespace)]),
            listening(&[("127.0.0.1", 5000)]),
            BTreeMap::new(),
        ] {
            let problems = swap().unready(&listening);
            assert!(!problems.is_empty());
            assert_eq!(swap().start(&listening, Waiting::Allowed), Start::AfterWaiting(problems.clone()));
            assert_eq!(swap().start(&listening, Waiting::Forbidden), Start::Refused(problems));
        }
    }
}
