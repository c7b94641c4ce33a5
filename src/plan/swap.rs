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

use crate::model::Drain;
use crate::state::{Backend, Desired, KernelState, Key, Kind, NamespaceName, Resource};

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

/// A container that an alias leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaving {
    pub container: String,
    pub namespace: NamespaceName,
    /// Its addresses on the aliases' networks that the plan takes away (it removes the
    /// container, or disconnects it from the network): every connection to them is cut,
    /// so every one drains. Empty when it stays on those networks: then only the
    /// connections that reached it through the aliases are cut (their flows go), and
    /// only those drain.
    pub addresses: Vec<Ipv4Addr>,
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
    for wanted in desired.state.of_kind(Kind::Alias) {
        let Resource::Alias(wanted) = wanted else { continue };
        let key = Key::Alias { network: wanted.network.clone(), name: wanted.name.clone() };
        let Some(Resource::Alias(had)) = observed.get(&key) else { continue };
        let left: Vec<Backend> = had
            .backends
            .iter()
            .filter(|backend| !wanted.backends.iter().any(|kept| kept.container == backend.container))
            // A container whose address the new state gives to another (a static address
            // handed over) cannot serve beside it: that move is not made before break.
            .filter(|backend| !taken(desired, &wanted.network, backend))
            .cloned()
            .collect();
        if left.is_empty() {
            continue;
        }
        for backend in &left {
            let addresses = leaving.entry(backend.container.clone()).or_default();
            let link = Key::Link { container: backend.container.clone(), network: wanted.network.clone() };
            if !desired.state.resources.contains_key(&link) {
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

    let made = made(desired, observed, &moves, &leaving);
    let mut repointed = made.clone();
    for moved in &moves {
        let key = Key::Alias { network: moved.network.clone(), name: moved.alias.clone() };
        repointed.insert(desired.state.get(&key).expect("a moved alias is desired").clone());
    }
    let swap = Swap {
        verify: readiness(desired, &moves),
        drain: leaving
            .into_iter()
            .filter_map(|(container, addresses)| {
                Some(Leaving {
                    namespace: namespace_of(observed, &container)?,
                    container,
                    addresses: addresses.into_iter().collect(),
                })
            })
            .collect(),
        moves,
        timeout: desired.drain,
        repoint_at: 0,
        remove_at: 0,
    };
    Some(Phases { made, repointed, swap })
}

/// The state once everything new is wired: the desired state, with the containers the
/// aliases leave still in place (their objects, their rules and their ports in their
/// networks' policies) and the moved aliases still pointing at them.
fn made(
    desired: &Desired,
    observed: &KernelState,
    moves: &[Move],
    leaving: &BTreeMap<String, BTreeSet<Ipv4Addr>>,
) -> KernelState {
    let involves = |key: &Key| match key {
        Key::Flow { source, destination, .. } => leaving.contains_key(source) || leaving.contains_key(destination),
        key => key.container().is_some_and(|container| leaving.contains_key(container)),
    };
    let mut made = desired.state.clone();
    // In key order, which puts every dependency before its dependents: what the plan
    // deletes anyway (a link on a network that goes) is not kept for its container.
    for (key, resource) in &observed.resources {
        let network = match key {
            Key::Flow { network, .. } => Some(Key::Policy { network: network.clone() }),
            _ => None,
        };
        let placed =
            key.dependencies(resource).iter().chain(&network).all(|needed| made.resources.contains_key(needed));
        if !made.resources.contains_key(key) && involves(key) && placed {
            made.insert(resource.clone());
        }
    }
    for moved in moves {
        let key = Key::Alias { network: moved.network.clone(), name: moved.alias.clone() };
        made.insert(observed.get(&key).expect("a moved alias is observed").clone());
    }
    for resource in made.resources.values_mut() {
        let Resource::Policy(policy) = resource else { continue };
        let Some(Resource::Policy(had)) = observed.get(&Key::Policy { network: policy.network.clone() }) else {
            continue;
        };
        for member in &had.members {
            let present = policy.members.iter().any(|kept| kept.container == member.container);
            if leaving.contains_key(&member.container) && !present {
                policy.members.push(member.clone());
            }
        }
        policy.members.sort();
    }
    made
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
