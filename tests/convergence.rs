//! Plans converge: on an in-memory kernel that refuses what Linux refuses, applying the plan
//! from any starting state and planning again yields nothing. Plans are deterministic and
//! minimal: a change to one container touches only what depends on it.
//!
//! Stacks are generated as stack-file text and read through the same path as a user's
//! file, so the properties cover parsing and validation too. The generator builds valid
//! stacks by construction (names from disjoint pools, addresses and host ports derived from
//! slots, flows only to targets that resolve), so a stack that fails validation is a bug in
//! one of the two, and fails the test.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use proptest::collection::vec;
use proptest::prelude::*;
use stackctl::firewall::objects;
use stackctl::model::{Stack, validate};
use stackctl::plan::{Operation, Plan, Program, plan, render_text};
use stackctl::spec::{SourceFile, load};
use stackctl::state::{HostFacts, HostPorts, KernelState, Key, Resource, lower};
use support::memkernel::MemKernel;

/// Every generated stack has this name, so that one stack's objects are another's to
/// delete or change.
const STACK: &str = "st";

/// How many container names there are: more than a stack holds, so that two stacks share
/// some containers and not others, and an added container always finds a free name.
const CONTAINER_SLOTS: usize = 12;

/// Ports each published entry forwards to, by its place in the container's list. One port
/// published several times is covered by `one_container_port_on_several_host_sides`.
const CONTAINER_PORTS: [u16; 3] = [80, 443, 5000];

/// Suffixes of `talks_to` entries: all traffic, a port, a range, a protocol, both.
const TRAFFIC: [&str; 5] = ["", ":80", ":8000-8010", "/udp", ":53/udp"];

// The raw material of a stack: choices that `Doc` turns into a consistent stack file.

#[derive(Debug, Clone)]
struct RawNetwork {
    slot: usize,
    subnet: u8,
    gateway_last: bool,
    internal: bool,
    open: bool,
}

#[derive(Debug, Clone)]
struct RawMembership {
    network: usize,
    aliases: Vec<usize>,
    static_address: bool,
}

#[derive(Debug, Clone)]
struct RawContainer {
    slot: usize,
    mode: u8,
    memberships: Vec<RawMembership>,
    adopted: bool,
    talks: Vec<(usize, usize)>,
    ports: Vec<u8>,
}

#[derive(Debug, Clone)]
struct RawStack {
    networks: Vec<RawNetwork>,
    containers: Vec<RawContainer>,
}

/// A hand-made change to the kernel, by an index into the objects it may hit.
#[derive(Debug, Clone, Copy)]
enum Drift {
    DeleteLink(usize),
    LinkDown(usize),
    FlushAddress(usize),
    DeleteNamespace(usize),
}

/// What the kernel holds before the stack is applied.
#[derive(Debug, Clone)]
enum Start {
    Empty,
    /// Another stack of the same name, converged, then drifted.
    Other(RawStack, Vec<Drift>),
    /// Some of this stack's own objects (the ones `keep` selects, cyclically), then drifted.
    Subset(Vec<bool>, Vec<Drift>),
}

fn raw_network() -> impl Strategy<Value = RawNetwork> {
    (0..8usize, 0..6u8, any::<bool>(), prop::bool::weighted(0.25), any::<bool>()).prop_map(
        |(slot, subnet, gateway_last, internal, open)| RawNetwork { slot, subnet, gateway_last, internal, open },
    )
}

fn raw_membership() -> impl Strategy<Value = RawMembership> {
    (0..64usize, vec(0..4usize, 0..=2), prop::bool::weighted(0.3))
        .prop_map(|(network, aliases, static_address)| RawMembership { network, aliases, static_address })
}

fn raw_talks() -> impl Strategy<Value = Vec<(usize, usize)>> {
    vec((0..64usize, 0..TRAFFIC.len()), 0..=3)
}

fn raw_container() -> impl Strategy<Value = RawContainer> {
    (
        0..CONTAINER_SLOTS,
        0..10u8,
        vec(raw_membership(), 1..=3),
        prop::bool::weighted(0.15),
        raw_talks(),
        vec(0..6u8, 0..=CONTAINER_PORTS.len()),
    )
        .prop_map(|(slot, mode, memberships, adopted, talks, ports)| RawContainer {
            slot,
            mode,
            memberships,
            adopted,
            talks,
            ports,
        })
}

fn raw_stack() -> impl Strategy<Value = RawStack> {
    (vec(raw_network(), 1..=6), vec(raw_container(), 0..=10))
        .prop_map(|(networks, containers)| RawStack { networks, containers })
}

fn drifts() -> impl Strategy<Value = Vec<Drift>> {
    let drift = (0..4u8, any::<usize>()).prop_map(|(kind, pick)| match kind {
        0 => Drift::DeleteLink(pick),
        1 => Drift::LinkDown(pick),
        2 => Drift::FlushAddress(pick),
        _ => Drift::DeleteNamespace(pick),
    });
    vec(drift, 0..=3)
}

fn start() -> impl Strategy<Value = Start> {
    prop_oneof![
        Just(Start::Empty),
        (raw_stack(), drifts()).prop_map(|(other, drifts)| Start::Other(other, drifts)),
        (vec(any::<bool>(), 1..=16), drifts()).prop_map(|(keep, drifts)| Start::Subset(keep, drifts)),
    ]
}

// A stack file as data, consistent by construction.

#[derive(Debug, Clone)]
struct Doc {
    networks: Vec<NetworkDoc>,
    containers: Vec<ContainerDoc>,
}

#[derive(Debug, Clone)]
struct NetworkDoc {
    slot: usize,
    name: String,
    subnet: Option<Ipv4Net>,
    gateway: Option<Ipv4Addr>,
    internal: bool,
    open: bool,
}

#[derive(Debug, Clone)]
struct ContainerDoc {
    slot: usize,
    name: String,
    mode: Mode,
    netns: Option<String>,
    talks_to: Vec<String>,
    ports: Vec<String>,
}

#[derive(Debug, Clone)]
enum Mode {
    Bridged(Vec<MemberDoc>),
    None,
    Host,
}

#[derive(Debug, Clone)]
struct MemberDoc {
    network: String,
    aliases: Vec<String>,
    ipv4: Option<Ipv4Addr>,
}

impl ContainerDoc {
    fn memberships(&self) -> &[MemberDoc] {
        match &self.mode {
            Mode::Bridged(memberships) => memberships,
            Mode::None | Mode::Host => &[],
        }
    }
}

/// The target of a `talks_to` entry: what stands before its port or protocol.
fn target_of(flow: &str) -> &str {
    flow.split([':', '/']).next().unwrap_or(flow)
}

impl Doc {
    fn build(raw: &RawStack) -> Doc {
        let mut doc = Doc { networks: Vec::new(), containers: Vec::new() };
        for network in &raw.networks {
            if !doc.networks.iter().any(|kept| kept.slot == network.slot) {
                doc.networks.push(NetworkDoc::build(network));
            }
        }
        // Flows go to any container of the stack, so they are resolved once all exist.
        let mut kept = Vec::new();
        for container in &raw.containers {
            if !doc.containers.iter().any(|other| other.slot == container.slot) {
                doc.containers.push(doc.container(container, container.slot));
                kept.push(container);
            }
        }
        for (index, container) in kept.into_iter().enumerate() {
            doc.containers[index].talks_to = doc.talks(index, &container.talks);
        }
        doc
    }

    fn container(&self, raw: &RawContainer, slot: usize) -> ContainerDoc {
        let mode = match raw.mode {
            0 => Mode::None,
            1 => Mode::Host,
            _ => {
                let mut memberships: Vec<MemberDoc> = Vec::new();
                for membership in &raw.memberships {
                    let network = &self.networks[membership.network % self.networks.len()];
                    if memberships.iter().any(|earlier| earlier.network == network.name) {
                        continue;
                    }
                    let aliases: BTreeSet<String> =
                        membership.aliases.iter().map(|alias| format!("a{alias}")).collect();
                    let ipv4 = network.subnet.filter(|_| membership.static_address).map(|subnet| {
                        // Distinct per container and clear of the gateway, first or last.
                        let offset = if subnet.prefix_len() >= 28 { 2 } else { 10 } + slot as u32;
                        Ipv4Addr::from(u32::from(subnet.network()) + offset)
                    });
                    memberships.push(MemberDoc {
                        network: network.name.clone(),
                        aliases: aliases.into_iter().collect(),
                        ipv4,
                    });
                }
                Mode::Bridged(memberships)
            }
        };
        let uplink = mode_uplink(&mode, &self.networks);
        let ports = if uplink {
            raw.ports.iter().enumerate().map(|(index, kind)| publication(*kind, slot, index)).collect()
        } else {
            Vec::new()
        };
        let netns = (raw.adopted && !matches!(mode, Mode::Host)).then(|| format!("/run/netns/legacy-{slot}"));
        ContainerDoc { slot, name: format!("c{slot}"), mode, netns, talks_to: Vec::new(), ports }
    }

    /// The names `index` can talk to: the names and aliases of the other containers it
    /// shares a network with, and the host when it joins one. An alias it holds itself counts only through another holder:
    /// a container reaches itself without a flow.
    fn targets(&self, index: usize) -> Vec<String> {
        let source = &self.containers[index];
        let mine: Vec<&str> = source.memberships().iter().map(|membership| membership.network.as_str()).collect();
        let mut targets = BTreeSet::new();
        for other in &self.containers {
            for membership in
                other.memberships().iter().filter(|membership| mine.contains(&membership.network.as_str()))
            {
                if other.name != source.name {
                    targets.insert(other.name.clone());
                    targets.extend(membership.aliases.iter().cloned());
                }
            }
        }
        // The host, through any network.
        if !mine.is_empty() {
            targets.insert("host".to_owned());
        }
        targets.into_iter().collect()
    }

    fn talks(&self, index: usize, raw: &[(usize, usize)]) -> Vec<String> {
        let targets = self.targets(index);
        if targets.is_empty() {
            return Vec::new();
        }
        raw.iter().map(|(pick, traffic)| format!("{}{}", targets[pick % targets.len()], TRAFFIC[*traffic])).collect()
    }

    /// The stack with one more container, built from `raw` under the first free name from
    /// its slot on; and that name.
    fn with(&self, raw: &RawContainer) -> (Doc, String) {
        let slot = (raw.slot..raw.slot + CONTAINER_SLOTS)
            .map(|slot| slot % CONTAINER_SLOTS)
            .find(|slot| !self.containers.iter().any(|container| container.slot == *slot))
            .expect("fewer containers than slots");
        let mut doc = self.clone();
        doc.containers.push(self.container(raw, slot));
        let index = doc.containers.len() - 1;
        doc.containers[index].talks_to = doc.talks(index, &raw.talks);
        let name = doc.containers[index].name.clone();
        (doc, name)
    }

    /// The stack without container `index`, and without the flows that then resolve to
    /// nothing (a stack file that still named it would be refused).
    fn without(&self, index: usize) -> Doc {
        let mut doc = self.clone();
        doc.containers.remove(index);
        for index in 0..doc.containers.len() {
            let targets = doc.targets(index);
            doc.containers[index].talks_to.retain(|flow| targets.iter().any(|target| target == target_of(flow)));
        }
        doc
    }

    /// The stack with container `index` holding no alias any more, without the flows that
    /// then resolve to nothing.
    fn without_aliases(&self, index: usize) -> Doc {
        let mut doc = self.clone();
        if let Mode::Bridged(memberships) = &mut doc.containers[index].mode {
            for membership in memberships {
                membership.aliases.clear();
            }
        }
        for index in 0..doc.containers.len() {
            let targets = doc.targets(index);
            doc.containers[index].talks_to.retain(|flow| targets.iter().any(|target| target == target_of(flow)));
        }
        doc
    }

    /// The stack with every container's flows drawn again from `talks`.
    fn with_talks(&self, talks: &[Vec<(usize, usize)>]) -> Doc {
        let mut doc = self.clone();
        for index in 0..doc.containers.len() {
            doc.containers[index].talks_to = doc.talks(index, &talks[index % talks.len()]);
        }
        doc
    }

    /// The stack with container `index`'s static addresses moved up, past every other
    /// container's, on networks whose subnets have room for that.
    fn with_addresses_moved(&self, index: usize) -> Doc {
        let mut doc = self.clone();
        let subnets: BTreeMap<String, Option<Ipv4Net>> =
            doc.networks.iter().map(|network| (network.name.clone(), network.subnet)).collect();
        if let Mode::Bridged(memberships) = &mut doc.containers[index].mode {
            for membership in memberships {
                let roomy = subnets[&membership.network].is_some_and(|subnet| subnet.prefix_len() <= 24);
                if let Some(address) = membership.ipv4.filter(|_| roomy) {
                    membership.ipv4 = Some(Ipv4Addr::from(u32::from(address) + CONTAINER_SLOTS as u32));
                }
            }
        }
        doc
    }

    /// The stack file, with networks and containers in the given orders.
    fn yaml_in(&self, network_order: &[usize], container_order: &[usize]) -> String {
        let mut out = format!("name: {STACK}\n");
        out.push_str(if self.networks.is_empty() { "networks: {}\n" } else { "networks:\n" });
        for network in network_order.iter().map(|index| &self.networks[*index]) {
            let mut body = String::new();
            if let Some(subnet) = network.subnet {
                body.push_str(&format!("    subnet: {subnet}\n"));
            }
            if let Some(gateway) = network.gateway {
                body.push_str(&format!("    gateway: {gateway}\n"));
            }
            if network.internal {
                body.push_str("    internal: true\n");
            }
            if network.open {
                body.push_str("    isolation: open\n");
            }
            if body.is_empty() {
                out.push_str(&format!("  {}: {{}}\n", network.name));
            } else {
                out.push_str(&format!("  {}:\n{body}", network.name));
            }
        }
        out.push_str(if self.containers.is_empty() { "containers: {}\n" } else { "containers:\n" });
        for container in container_order.iter().map(|index| &self.containers[*index]) {
            out.push_str(&format!("  {}:\n", container.name));
            match &container.mode {
                Mode::None => out.push_str("    network_mode: none\n"),
                Mode::Host => out.push_str("    network_mode: host\n"),
                // The short form when nothing but names is said, else the long one, where
                // a network with no settings is left null.
                Mode::Bridged(memberships)
                    if memberships
                        .iter()
                        .all(|membership| membership.aliases.is_empty() && membership.ipv4.is_none()) =>
                {
                    let names: Vec<&str> = memberships.iter().map(|membership| membership.network.as_str()).collect();
                    out.push_str(&format!("    networks: [{}]\n", names.join(", ")));
                }
                Mode::Bridged(memberships) => {
                    out.push_str("    networks:\n");
                    for membership in memberships {
                        out.push_str(&format!("      {}:\n", membership.network));
                        if !membership.aliases.is_empty() {
                            out.push_str(&format!("        aliases: [{}]\n", membership.aliases.join(", ")));
                        }
                        if let Some(ipv4) = membership.ipv4 {
                            out.push_str(&format!("        ipv4: {ipv4}\n"));
                        }
                    }
                }
            }
            if let Some(netns) = &container.netns {
                out.push_str(&format!("    netns: {netns}\n"));
            }
            for (key, list) in [("talks_to", &container.talks_to), ("ports", &container.ports)] {
                if !list.is_empty() {
                    let quoted: Vec<String> = list.iter().map(|entry| format!("\"{entry}\"")).collect();
                    out.push_str(&format!("    {key}: [{}]\n", quoted.join(", ")));
                }
            }
        }
        out
    }

    fn yaml(&self) -> String {
        self.yaml_in(&(0..self.networks.len()).collect::<Vec<_>>(), &(0..self.containers.len()).collect::<Vec<_>>())
    }

    /// The validated stack of this file; a refusal fails the test, with its reasons.
    fn stack(&self) -> Result<Stack, TestCaseError> {
        stack_of(&self.yaml())
    }
}

impl NetworkDoc {
    fn build(raw: &RawNetwork) -> NetworkDoc {
        let slot = raw.slot as u8;
        let subnet = match raw.subnet {
            // Inside the automatic pool, so automatic subnets must step around it.
            3 => Some(Ipv4Net::new(Ipv4Addr::new(10, 89, slot, 0), 24)),
            4 => Some(Ipv4Net::new(Ipv4Addr::new(10, 100 + slot, 0, 0), 24)),
            5 => Some(Ipv4Net::new(Ipv4Addr::new(10, 100 + slot, 0, 0), 28)),
            _ => None,
        }
        .map(|subnet| subnet.expect("valid prefix"));
        let gateway =
            subnet.filter(|_| raw.gateway_last).map(|subnet| Ipv4Addr::from(u32::from(subnet.broadcast()) - 1));
        NetworkDoc {
            slot: raw.slot,
            name: format!("n{}", raw.slot),
            subnet,
            gateway,
            internal: raw.internal,
            open: raw.open,
        }
    }
}

/// Whether a container reaches outside the stack, which publishing ports needs.
fn mode_uplink(mode: &Mode, networks: &[NetworkDoc]) -> bool {
    match mode {
        Mode::Bridged(memberships) => memberships
            .iter()
            .any(|membership| networks.iter().any(|network| network.name == membership.network && !network.internal)),
        Mode::None | Mode::Host => false,
    }
}

/// A published port in one of the syntax's forms. Host ports are derived from the slot and
/// place so that no two collide; the fourth form sits in the kernel's ephemeral range,
/// where random ports are picked, so that fixed and picked ports meet.
fn publication(kind: u8, slot: usize, index: usize) -> String {
    let port = CONTAINER_PORTS[index];
    let host = 20000 + slot * 16 + index * 4;
    let ephemeral = 32768 + slot * 8 + index * 3;
    match kind {
        0 => format!("{host}:{port}"),
        1 => format!("{port}"),
        2 => format!("127.0.0.1:{host}:{port}"),
        3 => format!("{host}-{}:{port}-{}", host + 2, port + 2),
        4 => format!("{ephemeral}:{port}/udp"),
        _ => format!("127.0.0.1::{port}/udp"),
    }
}

fn stack_of(text: &str) -> Result<Stack, TestCaseError> {
    let file = SourceFile { name: "generated.yaml".to_owned(), text: text.to_owned() };
    let spec = load(&file).map_err(|error| TestCaseError::fail(format!("{error:?}\n{text}")))?;
    let validated = validate(&spec);
    // A declared /28 may have no room for the members and aliases drawn for it: such a file
    // is refused, as it should be, and there is nothing to apply.
    if validated.diagnostics.iter().any(|diagnostic| diagnostic.message.contains("has room for")) {
        return Err(TestCaseError::reject("no room in a declared subnet"));
    }
    validated.stack.ok_or_else(|| TestCaseError::fail(format!("refused: {:#?}\n{text}", validated.diagnostics)))
}

// Properties.

/// Lowers `stack` against the kernel's state, applies the plan, and checks that the kernel
/// then holds what was wanted and that planning again finds nothing to do. Returns the plan
/// that was applied.
fn converge(stack: &Stack, kernel: &mut MemKernel) -> Result<Plan, TestCaseError> {
    let host = HostFacts::default();
    let desired = lower(stack, kernel.state(), &host).map_err(|error| TestCaseError::fail(error.to_string()))?;
    let applied = plan(&desired, kernel.state());
    let program = Program::of(&stack.name, &applied, kernel.state(), &objects(kernel.state()));
    kernel
        .run(&stack.name, &applied, &program)
        .map_err(|error| TestCaseError::fail(format!("{error}\nin the plan\n{}", render_text(&applied, false))))?;
    let again = lower(stack, kernel.state(), &host).map_err(|error| TestCaseError::fail(error.to_string()))?;
    let replan = plan(&again, kernel.state());
    prop_assert!(
        replan.is_empty(),
        "planning again after\n{}finds\n{}",
        render_text(&applied, false),
        render_text(&replan, false)
    );
    prop_assert_eq!(kernel.state(), &again.state);
    prop_assert_eq!(&again.state, &with_picked_ports(&desired.state, kernel.state()));
    check_invariants(stack, kernel.state())?;
    Ok(applied)
}

/// `desired` with each random host port as the kernel picked it.
fn with_picked_ports(desired: &KernelState, applied: &KernelState) -> KernelState {
    let mut state = desired.clone();
    for (key, resource) in &mut state.resources {
        if let (Resource::Forward(wanted), Some(Resource::Forward(picked))) = (resource, applied.get(key))
            && wanted.host_ports == HostPorts::Random
        {
            wanted.host_ports = picked.host_ports;
        }
    }
    state
}

/// What must hold of any converged state: addresses are unique on each network and inside
/// its subnet, no two forwards claim one host port, and every publication is forwarded.
fn check_invariants(stack: &Stack, state: &KernelState) -> Result<(), TestCaseError> {
    let mut addresses: BTreeMap<(&str, Ipv4Addr), &str> = BTreeMap::new();
    let mut forwards = Vec::new();
    for resource in state.resources.values() {
        match resource {
            Resource::Link(link) => {
                let Some(Resource::Bridge(bridge)) = state.get(&Key::Bridge { network: link.network.clone() }) else {
                    return Err(TestCaseError::fail(format!("link {}@{} has no bridge", link.container, link.network)));
                };
                prop_assert_eq!(link.address.trunc(), bridge.address.trunc(), "{}@{}", link.container, link.network);
                prop_assert_ne!(link.address.addr(), bridge.address.addr());
                let owner = addresses.insert((&link.network, link.address.addr()), &link.container);
                prop_assert!(owner.is_none(), "{} and {} share {}", link.container, owner.unwrap_or(""), link.address);
            }
            Resource::Forward(forward) => forwards.push(forward),
            _ => {}
        }
    }
    for (index, a) in forwards.iter().enumerate() {
        for b in &forwards[index + 1..] {
            let meet = a.protocol == b.protocol
                && (a.host_ip.is_none() || b.host_ip.is_none() || a.host_ip == b.host_ip)
                && matches!((a.host_ports.ports(), b.host_ports.ports()), (Some(x), Some(y)) if x.overlaps(&y));
            prop_assert!(!meet, "forwards claim one host port: {:?} and {:?}", a, b);
        }
    }
    let publications: usize = stack
        .containers
        .values()
        .filter(|container| {
            container.memberships().iter().any(|membership| !stack.networks[&membership.network].internal)
        })
        .map(|container| container.ports.len())
        .sum();
    prop_assert_eq!(forwards.len(), publications);
    Ok(())
}

fn drift(kernel: &mut MemKernel, drifts: &[Drift]) {
    for drift in drifts {
        match *drift {
            Drift::DeleteLink(pick) => kernel.delete_link(pick),
            Drift::LinkDown(pick) => kernel.set_link_down(pick),
            Drift::FlushAddress(pick) => kernel.flush_address(pick),
            Drift::DeleteNamespace(pick) => kernel.delete_namespace(pick),
        }
    }
}

/// The kernel as `start` describes it, for `stack`.
fn starting_kernel(stack: &Stack, start: &Start) -> Result<MemKernel, TestCaseError> {
    Ok(match start {
        Start::Empty => MemKernel::default(),
        Start::Other(other, drifts) => {
            let mut kernel = MemKernel::default();
            converge(&Doc::build(other).stack()?, &mut kernel)?;
            drift(&mut kernel, drifts);
            kernel
        }
        Start::Subset(keep, drifts) => {
            let mut full = MemKernel::default();
            converge(stack, &mut full)?;
            let mut choices = keep.iter().cycle();
            let mut kernel = MemKernel::subset(full.state(), |_| *choices.next().expect("a cycle never ends"));
            drift(&mut kernel, drifts);
            kernel
        }
    })
}

/// Checks a swap's phases, from `observed` to `desired`: until the removal, every
/// container an alias leaves keeps its link on the alias's network, its place in the
/// network's policy and every flow that reached it there; until the repoint the alias
/// still points where it did, and from then on where it is wanted.
fn check_swap_phases(desired: &KernelState, observed: &KernelState, applied: &Plan) -> Result<(), TestCaseError> {
    let lost: Vec<(Key, Resource)> = observed
        .resources
        .iter()
        .filter(|(key, had)| match (had, desired.get(key)) {
            (Resource::Alias(had), Some(Resource::Alias(wanted))) => had.backends.iter().any(|backend| {
                !wanted.backends.iter().any(|kept| kept.container == backend.container)
                    && !desired.resources.values().any(|resource| {
                        matches!(resource, Resource::Link(link) if link.network == had.network
                            && link.address.addr() == backend.address && link.container != backend.container)
                    })
            }),
            _ => false,
        })
        .map(|(key, had)| (key.clone(), had.clone()))
        .collect();
    let Some(swap) = &applied.swap else {
        prop_assert!(lost.is_empty(), "aliases leave backends without a swap:\n{}", render_text(applied, false));
        return Ok(());
    };
    prop_assert!(!lost.is_empty(), "a swap that moves nothing:\n{}", render_text(applied, false));
    let mut kernel = MemKernel::subset(observed, |_| true);
    let phases = [(swap.repoint_at, false), (swap.remove_at, true)];
    let mut done = 0;
    for (end, repointed) in phases {
        kernel
            .apply(&Plan { operations: applied.operations[done..end].to_vec(), ..Plan::default() })
            .map_err(TestCaseError::fail)?;
        done = end;
        let state = kernel.state();
        for (key, had) in &lost {
            let Resource::Alias(had) = had else { continue };
            let now = state.get(key);
            let expected = if repointed { desired.get(key) } else { observed.get(key) };
            prop_assert_eq!(now, expected, "alias {} after {} operations", key.label(), end);
            let Some(Resource::Alias(wanted)) = desired.get(key) else { continue };
            for backend in
                had.backends.iter().filter(|had| !wanted.backends.iter().any(|kept| kept.container == had.container))
            {
                // A container the alias leaves keeps its address, its place and the flows to
                // it until the removal.
                let link = Key::Link { container: backend.container.clone(), network: had.network.clone() };
                let address = |state: &KernelState| match state.get(&link) {
                    Some(Resource::Link(link)) => Some(link.address),
                    _ => None,
                };
                prop_assert_eq!(
                    address(state),
                    address(observed),
                    "{} changed its address before the removal",
                    link.label()
                );
                let member = |state: &KernelState| match state.get(&Key::Policy { network: had.network.clone() }) {
                    Some(Resource::Policy(policy)) => {
                        policy.members.iter().find(|member| member.container == backend.container).cloned()
                    }
                    _ => None,
                };
                prop_assert_eq!(
                    member(state),
                    member(observed),
                    "{} moved in the policy of {}",
                    backend.container,
                    had.network
                );
                for (flow, resource) in observed.resources.iter().filter(|(flow, _)| {
                    matches!(flow, Key::Flow { destination, network, .. } if *destination == backend.container && *network == had.network)
                }) {
                    prop_assert_eq!(state.get(flow), Some(resource), "{} changed before the removal", flow.label());
                }
            }
        }
    }
    Ok(())
}

/// A converged kernel for `stack`, from an empty host.
fn converged(stack: &Stack) -> Result<MemKernel, TestCaseError> {
    let mut kernel = MemKernel::default();
    converge(stack, &mut kernel)?;
    Ok(kernel)
}

/// Fails unless every operation of `plan` is one `allowed` accepts.
fn touches_only(plan: &Plan, allowed: impl Fn(&Operation, &Key) -> bool) -> Result<(), TestCaseError> {
    for operation in &plan.operations {
        let key = operation.key();
        prop_assert!(allowed(operation, &key), "unexpected change of {}:\n{}", key.label(), render_text(plan, false));
    }
    Ok(())
}

/// The other containers that share a network with `name` in `stack`: the only ones whose
/// name records hold its names and aliases.
fn neighbours(stack: &Stack, name: &str) -> BTreeSet<String> {
    stack.containers[name]
        .memberships()
        .iter()
        .flat_map(|membership| stack.members(&membership.network))
        .filter(|member| member.name != name)
        .map(|member| member.name.clone())
        .collect()
}

/// The networks a container joins.
fn networks_of(stack: &Stack, name: &str) -> BTreeSet<String> {
    stack.containers[name].memberships().iter().map(|membership| membership.network.clone()).collect()
}

/// The (network, alias) pairs a container holds.
fn aliases_of(stack: &Stack, name: &str) -> BTreeSet<(String, String)> {
    stack.containers[name]
        .memberships()
        .iter()
        .flat_map(|membership| membership.aliases.iter().map(|alias| (membership.network.clone(), alias.clone())))
        .collect()
}

/// The interface name and address of every link of containers other than `except`.
fn other_links(state: &KernelState, except: &str) -> BTreeMap<Key, (String, Ipv4Net)> {
    state
        .resources
        .iter()
        .filter_map(|(key, resource)| match resource {
            Resource::Link(link) if link.container != except => {
                Some((key.clone(), (link.ifname.clone(), link.address)))
            }
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn applying_a_plan_converges_from_any_start(raw in raw_stack(), start in start()) {
        let stack = Doc::build(&raw).stack()?;
        let mut kernel = starting_kernel(&stack, &start)?;
        converge(&stack, &mut kernel)?;
    }

    #[test]
    fn plans_are_deterministic_and_independent_of_file_order(
        (doc, network_order, container_order) in raw_stack().prop_map(|raw| Doc::build(&raw)).prop_flat_map(|doc| {
            let networks = Just((0..doc.networks.len()).collect::<Vec<_>>()).prop_shuffle();
            let containers = Just((0..doc.containers.len()).collect::<Vec<_>>()).prop_shuffle();
            (Just(doc), networks, containers)
        }),
        start in start(),
    ) {
        let stack = doc.stack()?;
        let kernel = starting_kernel(&stack, &start)?;
        let host = HostFacts::default();
        let first = lower(&stack, kernel.state(), &host).map_err(|error| TestCaseError::fail(error.to_string()))?;
        let second = lower(&stack, kernel.state(), &host).map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert_eq!(&first, &second);
        let text = render_text(&plan(&first, kernel.state()), false);
        prop_assert_eq!(&text, &render_text(&plan(&second, kernel.state()), false));

        let reordered = stack_of(&doc.yaml_in(&network_order, &container_order))?;
        prop_assert_eq!(&reordered, &stack);
        let desired = lower(&reordered, kernel.state(), &host).map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert_eq!(text, render_text(&plan(&desired, kernel.state()), false));
    }

    #[test]
    fn adding_a_container_touches_only_it_and_who_resolves_it(raw in raw_stack(), extra in raw_container()) {
        let doc = Doc::build(&raw);
        let mut kernel = converged(&doc.stack()?)?;
        let before = kernel.state().clone();
        let (mut grown, added) = doc.with(&extra);
        // A static address that an existing container or alias holds would move it: the
        // declared address wins. That is by design, and not what this property is about.
        let taken: BTreeSet<Ipv4Addr> = before
            .resources
            .values()
            .flat_map(|resource| match resource {
                Resource::Link(link) => vec![link.address.addr()],
                Resource::Bridge(bridge) => bridge.virtual_addresses.clone(),
                _ => Vec::new(),
            })
            .collect();
        if let Some(container) = grown.containers.last_mut()
            && let Mode::Bridged(memberships) = &mut container.mode
        {
            for membership in memberships {
                membership.ipv4 = membership.ipv4.filter(|address| !taken.contains(address));
            }
        }
        // A declared subnet may have no room for one more member (see `stack_of`).
        let grown = grown.stack()?;
        let neighbours = neighbours(&grown, &added);
        let aliases = aliases_of(&grown, &added);
        let applied = converge(&grown, &mut kernel)?;
        touches_only(&applied, |operation, key| match (operation, key) {
            // Flows belong to their source: this arm also covers the flows the new one opens.
            (Operation::Create { .. }, Key::Flow { source, destination, .. }) => {
                *source == added || *destination == added
            }
            (Operation::Create { .. }, key) if key.container() == Some(added.as_str()) => true,
            // Only who shares a network with the new container resolves its names.
            (Operation::Update { .. }, Key::Hosts { container }) => neighbours.contains(container),
            // The policies of its networks list their members.
            (Operation::Update { .. }, Key::Policy { network }) => networks_of(&grown, &added).contains(network),
            // A port picked for another container that the new one declares is picked again.
            (Operation::Update { after: Resource::Forward(forward), .. }, _) => forward.host_ports == HostPorts::Random,
            // The aliases it holds gain a backend, or appear with a virtual address on
            // their network's bridge.
            (_, Key::Alias { network, name }) => aliases.contains(&(network.clone(), name.clone())),
            (Operation::Update { .. }, Key::Bridge { network }) => aliases.iter().any(|(on, _)| on == network),
            _ => false,
        })?;
        prop_assert_eq!(other_links(&before, &added), other_links(kernel.state(), &added));
    }

    #[test]
    fn removing_a_container_touches_only_it_and_who_resolved_it(raw in raw_stack(), pick in any::<usize>()) {
        let doc = Doc::build(&raw);
        prop_assume!(!doc.containers.is_empty());
        let index = pick % doc.containers.len();
        let removed = doc.containers[index].name.clone();
        let full = doc.stack()?;
        let neighbours = neighbours(&full, &removed);
        let aliases = aliases_of(&full, &removed);
        let mut kernel = converged(&full)?;
        let before = kernel.state().clone();
        let applied = converge(&doc.without(index).stack()?, &mut kernel)?;
        touches_only(&applied, |operation, key| match (operation, key) {
            // Flows belong to their source: this arm also covers the flows the removed one opened.
            (Operation::Delete { .. }, Key::Flow { source, destination, .. }) => {
                *source == removed || *destination == removed
            }
            (Operation::Delete { .. }, key) if key.container() == Some(removed.as_str()) => true,
            // Only who shared a network with the removed container resolved its names.
            (Operation::Update { .. }, Key::Hosts { container }) => neighbours.contains(container),
            // The policies of its networks list their members.
            (Operation::Update { .. }, Key::Policy { network }) => networks_of(&full, &removed).contains(network),
            // The aliases it held lose a backend, or go with their virtual address.
            (_, Key::Alias { network, name }) => aliases.contains(&(network.clone(), name.clone())),
            (Operation::Update { .. }, Key::Bridge { network }) => aliases.iter().any(|(on, _)| on == network),
            _ => false,
        })?;
        prop_assert_eq!(other_links(&before, &removed), other_links(kernel.state(), &removed));
    }

    #[test]
    fn an_alias_that_leaves_a_container_keeps_serving_it_until_the_removal(
        raw in raw_stack(),
        pick in any::<usize>(),
        edit in 0..4usize,
        talks in vec(raw_talks(), CONTAINER_SLOTS),
    ) {
        let doc = Doc::build(&raw);
        let holders: Vec<usize> = (0..doc.containers.len())
            .filter(|index| doc.containers[*index].memberships().iter().any(|membership| !membership.aliases.is_empty()))
            .collect();
        prop_assume!(!holders.is_empty());
        let index = holders[pick % holders.len()];
        let mut kernel = converged(&doc.stack()?)?;
        let observed = kernel.state().clone();
        // The container the alias leaves is removed; or it stays and only loses its
        // aliases; or it stays while the flows to it change, or its static addresses.
        let changed = match edit {
            0 => doc.without(index),
            1 => doc.without_aliases(index),
            2 => doc.without_aliases(index).with_talks(&talks),
            _ => doc.without_aliases(index).with_addresses_moved(index),
        };
        let stack = changed.stack()?;
        let desired = lower(&stack, &observed, &HostFacts::default()).map_err(|error| TestCaseError::fail(error.to_string()))?;
        check_swap_phases(&desired.state, &observed, &plan(&desired, &observed))?;
        converge(&stack, &mut kernel)?;
    }

    #[test]
    fn changing_flows_touches_only_flow_rules(raw in raw_stack(), pick in any::<usize>(), talks in raw_talks()) {
        let doc = Doc::build(&raw);
        prop_assume!(!doc.containers.is_empty());
        let index = pick % doc.containers.len();
        let source = doc.containers[index].name.clone();
        let mut kernel = converged(&doc.stack()?)?;
        let mut changed = doc.clone();
        changed.containers[index].talks_to = doc.talks(index, &talks);
        let applied = converge(&changed.stack()?, &mut kernel)?;
        touches_only(&applied, |_, key| matches!(key, Key::Flow { source: from, .. } if *from == source))?;
    }
}

/// Docker lets one container port be published on several host addresses and ports, and a
/// random pick must survive the next plan: each publication is a forward of its own.
#[test]
fn one_container_port_on_several_host_sides() -> Result<(), TestCaseError> {
    let stack = stack_of(
        "name: st\nnetworks:\n  n: {}\ncontainers:\n  web:\n    networks: [n]\n    ports:\n      - \"127.0.0.1:8080:80\"\n      - \"127.0.0.2:8080:80\"\n      - \"127.0.0.1:8081:80\"\n      - \"127.0.0.1::80\"\n",
    )?;
    let kernel = converged(&stack)?;
    let forwards: Vec<String> = kernel
        .state()
        .resources
        .values()
        .filter_map(|resource| match resource {
            Resource::Forward(forward) => Some(resource.attributes()[0].1.clone() + " -> " + &forward.to.to_string()),
            _ => None,
        })
        .collect();
    prop_assert_eq!(forwards.len(), 4, "{:?}", forwards);
    prop_assert!(forwards.iter().any(|forward| forward.contains("(picked at random)")), "{:?}", forwards);
    Ok(())
}
