//! An in-memory kernel: a [`KernelState`] that applies plan operations the way the Linux
//! kernel (and an adapter driving it) would, and refuses what the kernel would refuse.
//!
//! It is strict on purpose. A real kernel answers `EEXIST`, `ENOENT` or `ENETDOWN` to an
//! operation that runs in the wrong order or against the wrong state, so every such case is
//! a planner bug that only shows up on a live host; here it shows up as an `Err`. It also
//! models the kernel's side effects that a planner must expect: deleting a namespace
//! destroys the interfaces and routes inside it, deleting an interface (or taking it down,
//! or removing its last address) drops the routes through it, and deleting a bridge
//! detaches its ports instead of deleting them.

use stackctl::model::{PortRange, Protocol, Traffic};
use stackctl::names::zone;
use stackctl::plan::{Operation, Plan, Program, Step};
use stackctl::state::{Flow, Forward, HostPorts, KernelState, Key, Kind, NO_ADDRESS, Resource, sysctl_value_is_known};

/// Linux's default `net.ipv4.ip_local_port_range`, where the kernel picks random ports.
const EPHEMERAL_FIRST: u32 = 32768;
const EPHEMERAL_LAST: u32 = 60999;

#[derive(Debug, Clone, Default)]
pub struct MemKernel {
    state: KernelState,
}

impl MemKernel {
    /// A kernel holding the resources of `state` that `keep` selects, created in key order
    /// (the order kinds depend on each other). A selected resource whose dependencies were
    /// not selected is left out, as a kernel would refuse it; a link whose bridge was left
    /// out exists detached, the state a bridge deleted by hand leaves behind.
    pub fn subset(state: &KernelState, mut keep: impl FnMut(&Key) -> bool) -> Self {
        let mut kernel = MemKernel::default();
        for (key, resource) in &state.resources {
            if !keep(key) {
                continue;
            }
            let mut resource = resource.clone();
            if let Resource::Link(link) = &mut resource {
                link.attached &= kernel.state.get(&Key::Bridge { network: link.network.clone() }).is_some();
            }
            // A refusal only means a dependency was not selected: the resource is skipped.
            let _ = kernel.apply_operation(&Operation::Create { resource }, &[]);
        }
        kernel
    }

    pub fn state(&self) -> &KernelState {
        &self.state
    }

    /// Runs the program of `plan` for stack `stack` as the shell runs it, step by step, and
    /// checks at each step what the shell relies on there: a rule transaction leaves sets
    /// the kernel takes; names are published for the state the kernel holds at that
    /// point; a swap verifies containers that are wired on the alias's network, with the
    /// alias not moved yet; and it drains only once the aliases point at their new
    /// containers.
    pub fn run(&mut self, stack: &str, plan: &Plan, program: &Program) -> Result<(), String> {
        let reserved = reserved_ports(plan);
        let mut made = 0;
        for (number, step) in program.steps.iter().enumerate() {
            let at = |reason: String| format!("step {} ({step:?}) refused: {reason}", number + 1);
            match step {
                Step::ReplaceTables { .. } => {}
                Step::Rules { operations, .. } | Step::Stage { operations } => {
                    if operations.start != made {
                        return Err(at(format!("it starts at operation {}, after {made} were made", operations.start)));
                    }
                    for operation in &plan.operations[operations.clone()] {
                        let rule = operation.key().kind().is_firewall();
                        if rule != matches!(step, Step::Rules { .. }) {
                            return Err(at(format!("{} is made in the wrong kind of step", operation.key().label())));
                        }
                        self.apply_operation(operation, &reserved).map_err(at)?;
                    }
                    self.flows_fit().map_err(at)?;
                    made = operations.end;
                }
                Step::Record => {}
                Step::PublishNames { zone: published } => {
                    if *published != zone(stack, &self.state) {
                        return Err(at("it publishes other names than the kernel's state gives".to_owned()));
                    }
                }
                Step::Verify { ports } => {
                    for ready in ports {
                        let link = Key::Link { container: ready.container.clone(), network: ready.network.clone() };
                        match self.state.get(&link) {
                            Some(Resource::Link(link)) if link.up && link.address.addr() == ready.address => {}
                            _ => return Err(at(format!("{} is not wired at {}", link.label(), ready.address))),
                        }
                    }
                }
                Step::Drain { swap } => {
                    for moved in &swap.moves {
                        let key = Key::Alias { network: moved.network.clone(), name: moved.alias.clone() };
                        let Some(Resource::Alias(alias)) = self.state.get(&key) else {
                            return Err(at(format!("alias {} is gone before its drain", key.label())));
                        };
                        let now: Vec<&str> = alias.backends.iter().map(|backend| backend.container.as_str()).collect();
                        if now != moved.to {
                            return Err(at(format!("alias {} points at {now:?} during its drain", key.label())));
                        }
                    }
                }
            }
        }
        if made != plan.operations.len() {
            return Err(format!("the program made {made} of {} operations", plan.operations.len()));
        }
        Ok(())
    }

    /// Applies a plan's operations in order, stopping at the first one the kernel refuses.
    pub fn apply(&mut self, plan: &Plan) -> Result<(), String> {
        let reserved = reserved_ports(plan);
        for (index, operation) in plan.operations.iter().enumerate() {
            self.apply_operation(operation, &reserved)
                .map_err(|reason| format!("operation {index} refused: {reason}\n{operation:#?}"))?;
            // The firewall's operations next to each other are one transaction: the
            // kernel judges its sets as the transaction leaves them.
            let ends_a_transaction = operation.key().kind().is_firewall()
                && plan.operations.get(index + 1).is_none_or(|next| !next.key().kind().is_firewall());
            if ends_a_transaction {
                self.flows_fit().map_err(|reason| format!("the rules up to operation {index} refused: {reason}"))?;
            }
        }
        Ok(())
    }

    /// The flows of one protocol are an interval set, which refuses an element whose ports
    /// overlap another's of the same addresses; the flows of all traffic a set that takes
    /// each pair of addresses once.
    fn flows_fit(&self) -> Result<(), String> {
        let flows: Vec<&Flow> = self
            .state
            .resources
            .values()
            .filter_map(|resource| match resource {
                Resource::Flow(flow) => Some(flow),
                _ => None,
            })
            .collect();
        for (index, flow) in flows.iter().enumerate() {
            for other in &flows[index + 1..] {
                let overlap = match (flow.traffic, other.traffic) {
                    (Traffic::Ports { protocol: a, ports: x }, Traffic::Ports { protocol: b, ports: y }) => {
                        a == b && x.first <= y.last && y.first <= x.last
                    }
                    (Traffic::All, Traffic::All) => true,
                    _ => false,
                };
                if flow.from == other.from && flow.to == other.to && overlap {
                    return Err(format!("flows {:?} and {:?} overlap in the kernel's sets", flow, other));
                }
            }
        }
        Ok(())
    }

    fn apply_operation(&mut self, operation: &Operation, reserved: &[(Protocol, PortRange)]) -> Result<(), String> {
        match operation {
            Operation::Create { resource } => {
                let key = resource.key();
                if self.state.get(&key).is_some() {
                    return Err(format!("{} {} already exists", key.kind().name(), key.label()));
                }
                let admitted = self.admit(resource, &key, reserved)?;
                self.state.insert(admitted);
            }
            Operation::Update { before, after } => {
                let key = after.key();
                if before.key() != key {
                    return Err("an update cannot change what it updates".to_owned());
                }
                let current = self.existing(&key)?;
                // The plan was made against another state than the one it runs on: an
                // earlier operation of the same plan changed the object as a side effect.
                if current != before {
                    return Err(format!("{} {} is not as planned: {current:?}", key.kind().name(), key.label()));
                }
                if before.needs_replacement(after) {
                    return Err("a kernel object cannot be renamed or moved in place".to_owned());
                }
                let admitted = self.admit(after, &key, reserved)?;
                // A link whose address changes, or starts or stops bringing its own subnet
                // route, has its address taken away and given back: the routes through it go.
                if let (Resource::Link(before), Resource::Link(after)) = (before, after)
                    && before.disrupts(after)
                {
                    self.drop_routes_via(&after.container, &after.ifname);
                }
                self.state.insert(admitted);
            }
            Operation::Delete { resource } => {
                let key = resource.key();
                let current = self.existing(&key)?;
                // What deleting a host setting gives back is the planner's to say (as it was
                // before, or as it is while something still needs it), not the kernel's.
                let as_planned = match (current, resource) {
                    (Resource::Sysctl(current), Resource::Sysctl(deleted)) => {
                        current.name == deleted.name && current.value == deleted.value
                    }
                    (current, deleted) => current == deleted,
                };
                if !as_planned {
                    return Err(format!("{} {} is not as planned: {current:?}", key.kind().name(), key.label()));
                }
                self.remove(&key)?;
            }
        }
        Ok(())
    }

    fn existing(&self, key: &Key) -> Result<&Resource, String> {
        self.state.get(key).ok_or_else(|| format!("{} {} does not exist", key.kind().name(), key.label()))
    }

    /// Checks what the kernel checks before it creates `resource` (or changes the object
    /// under `key` into it), and returns the object as the kernel then holds it.
    fn admit(&self, resource: &Resource, key: &Key, reserved: &[(Protocol, PortRange)]) -> Result<Resource, String> {
        match resource {
            Resource::Bridge(bridge) => self.host_ifname_free(&bridge.ifname, key)?,
            Resource::Namespace(namespace) => {
                // An adopted namespace exists outside the stack; only a created one takes a
                // name under /run/netns.
                let taken = !namespace.adopted
                    && self.others(key).any(|other| {
                        matches!(other, Resource::Namespace(other) if !other.adopted && other.name == namespace.name)
                    });
                if taken {
                    return Err(format!("namespace name {} is taken", namespace.name));
                }
            }
            Resource::Link(link) => {
                self.requires(&Key::Namespace { container: link.container.clone() })?;
                if link.attached {
                    self.requires(&Key::Bridge { network: link.network.clone() })?;
                }
                let clash = self.others(key).any(|other| {
                    matches!(other, Resource::Link(other) if other.container == link.container && other.ifname == link.ifname)
                });
                if clash {
                    return Err(format!("{} already has an interface {}", link.container, link.ifname));
                }
                self.host_ifname_free(&link.host_ifname, key)?;
            }
            Resource::Route(route) => {
                let via =
                    self.requires(&Key::Link { container: route.container.clone(), network: route.network.clone() })?;
                let Resource::Link(via) = via else { unreachable!("a link key holds a link") };
                if via.ifname != route.ifname {
                    return Err(format!("{} has no device {} on {}", route.container, route.ifname, route.network));
                }
                if !via.up {
                    return Err(format!("device {} of {} is down", via.ifname, route.container));
                }
                if !via.address.contains(&route.gateway) || via.address.addr() == route.gateway {
                    return Err(format!("gateway {} is not on link {}", route.gateway, via.address));
                }
            }
            Resource::Hosts(hosts) => {
                self.requires(&Key::Namespace { container: hosts.container.clone() })?;
            }
            Resource::Sysctl(sysctl) if !sysctl_value_is_known(&sysctl.value) => {
                return Err(format!("{} takes 0 or 1, not {}", sysctl.name, sysctl.value));
            }
            Resource::Sysctl(_) => {}
            Resource::Forward(forward) if forward.host_ports == HostPorts::Random => {
                let ports = self.pick_ports(forward, key, reserved)?;
                return Ok(Resource::Forward(Forward { host_ports: HostPorts::Picked(ports), ..forward.clone() }));
            }
            // Rules name interfaces and addresses; nftables takes them before they exist, so
            // the firewall is made before the objects it governs.
            Resource::Stray(_)
            | Resource::Policy(_)
            | Resource::Forward(_)
            | Resource::Flow(_)
            | Resource::Alias(_) => {}
        }
        self.address_free(resource, key)?;
        Ok(resource.clone())
    }

    fn requires(&self, key: &Key) -> Result<&Resource, String> {
        self.state.get(key).ok_or_else(|| format!("needs {} {}, which does not exist", key.kind().name(), key.label()))
    }

    /// Every object but the one under `key`.
    fn others<'a>(&'a self, key: &'a Key) -> impl Iterator<Item = &'a Resource> {
        self.state.resources.iter().filter(move |(other, _)| *other != key).map(|(_, resource)| resource)
    }

    /// An address serves one thing on a network: a member, or an alias's virtual address on
    /// the bridge. Two would split its traffic between them.
    fn address_free(&self, resource: &Resource, key: &Key) -> Result<(), String> {
        let (network, mine) = match resource {
            Resource::Link(link) => (&link.network, vec![link.address.addr()]),
            Resource::Bridge(bridge) => (&bridge.network, bridge.virtual_addresses.clone()),
            _ => return Ok(()),
        };
        let mut used = self.others(key).flat_map(|other| match other {
            Resource::Link(link) if &link.network == network => vec![link.address.addr()],
            Resource::Bridge(bridge) if &bridge.network == network => bridge.virtual_addresses.clone(),
            _ => Vec::new(),
        });
        match used.find(|address| mine.contains(address)) {
            Some(address) => Err(format!("address {address} is already in use on {network}")),
            None => Ok(()),
        }
    }

    /// Bridges and the host ends of veth pairs share the host's interface names.
    fn host_ifname_free(&self, ifname: &str, key: &Key) -> Result<(), String> {
        let taken = self.others(key).any(|resource| match resource {
            Resource::Bridge(bridge) => bridge.ifname == ifname,
            Resource::Link(link) => link.host_ifname == ifname,
            _ => false,
        });
        if taken { Err(format!("host interface {ifname} exists")) } else { Ok(()) }
    }

    /// The lowest free run of ephemeral ports for a random publication: free of every other
    /// forward of the protocol and of the plan's fixed ports. Lowest, so runs are repeatable.
    fn pick_ports(
        &self,
        forward: &Forward,
        key: &Key,
        reserved: &[(Protocol, PortRange)],
    ) -> Result<PortRange, String> {
        let taken: Vec<PortRange> = self
            .others(key)
            .filter_map(|resource| match resource {
                Resource::Forward(Forward { protocol, host_ports, .. }) => Some((*protocol, host_ports.ports()?)),
                _ => None,
            })
            .chain(reserved.iter().copied())
            .filter(|(protocol, _)| *protocol == forward.protocol)
            .map(|(_, ports)| ports)
            .collect();
        let count = forward.container_ports.count();
        let mut first = EPHEMERAL_FIRST;
        while first + count - 1 <= EPHEMERAL_LAST {
            let candidate = PortRange { first: first as u16, last: (first + count - 1) as u16 };
            match taken.iter().filter(|ports| ports.overlaps(&candidate)).map(|ports| ports.last).max() {
                None => return Ok(candidate),
                Some(last) => first = u32::from(last) + 1,
            }
        }
        Err(format!("no {count} free ephemeral ports"))
    }

    /// Deletes the object under `key` with the kernel's side effects.
    fn remove(&mut self, key: &Key) -> Result<(), String> {
        match self.state.resources.remove(key) {
            Some(Resource::Bridge(bridge)) => {
                for resource in self.state.resources.values_mut() {
                    if let Resource::Link(link) = resource
                        && link.network == bridge.network
                    {
                        link.attached = false;
                    }
                }
            }
            Some(Resource::Namespace(namespace)) if namespace.adopted => {
                // stackctl never deletes an adopted namespace, so what it put inside would
                // stay behind in it, out of the stack's reach.
                let left = self
                    .state
                    .of_kind(Kind::Link)
                    .chain(self.state.of_kind(Kind::Route))
                    .any(|resource| resource.key().container() == Some(namespace.container.as_str()));
                if left {
                    self.state.insert(Resource::Namespace(namespace));
                    return Err("releasing an adopted namespace that still holds the stack's interfaces".to_owned());
                }
            }
            Some(Resource::Namespace(namespace)) => self.destroy_namespace_contents(&namespace.container),
            Some(Resource::Link(link)) => self.drop_routes_via(&link.container, &link.ifname),
            Some(_) => {}
            None => return Err(format!("{} {} does not exist", key.kind().name(), key.label())),
        }
        Ok(())
    }

    /// A deleted namespace takes its interfaces (both ends of each veth pair) and routes.
    fn destroy_namespace_contents(&mut self, container: &str) {
        self.state.resources.retain(|key, _| {
            !(matches!(key, Key::Link { .. } | Key::Route { .. }) && key.container() == Some(container))
        });
    }

    /// The kernel flushes the routes through a device that goes away, goes down or loses
    /// its last address.
    fn drop_routes_via(&mut self, container: &str, ifname: &str) {
        self.state
            .resources
            .retain(|_, resource| !matches!(resource, Resource::Route(route) if route.container == container && route.ifname == ifname));
    }

    fn links(&self) -> Vec<Key> {
        self.state.of_kind(Kind::Link).map(Resource::key).collect()
    }

    /// Drift: `ip link del` of the `pick`-th link (modulo their number), if any.
    pub fn delete_link(&mut self, pick: usize) {
        if let Some(key) = pick_from(&self.links(), pick) {
            let _ = self.remove(&key);
        }
    }

    /// Drift: `ip link set down` of the container end of the `pick`-th link.
    pub fn set_link_down(&mut self, pick: usize) {
        self.change_link(pick, |link| link.up = false);
    }

    /// Drift: `ip addr flush` of the container end of the `pick`-th link. A state has no
    /// way to say "no address", so the flushed link holds the unspecified address, which
    /// lies in no subnet a stack uses.
    pub fn flush_address(&mut self, pick: usize) {
        self.change_link(pick, |link| link.address = NO_ADDRESS);
    }

    fn change_link(&mut self, pick: usize, change: impl FnOnce(&mut stackctl::state::Link)) {
        let Some(key) = pick_from(&self.links(), pick) else { return };
        let Some(Resource::Link(link)) = self.state.resources.get_mut(&key) else { return };
        change(link);
        let (container, ifname) = (link.container.clone(), link.ifname.clone());
        self.drop_routes_via(&container, &ifname);
    }

    /// Drift: `ip netns del` of the `pick`-th namespace that stackctl created.
    pub fn delete_namespace(&mut self, pick: usize) {
        let created: Vec<Key> = self
            .state
            .of_kind(Kind::Namespace)
            .filter(|resource| matches!(resource, Resource::Namespace(namespace) if !namespace.adopted))
            .map(Resource::key)
            .collect();
        if let Some(key) = pick_from(&created, pick) {
            let _ = self.remove(&key);
        }
    }
}

/// The fixed host ports a plan's forwards claim. An adapter sees the whole plan before it
/// runs, so a random port it picks avoids the fixed ports that later operations of the same
/// plan claim; otherwise a pick could take a port a later creation needs.
fn reserved_ports(plan: &Plan) -> Vec<(Protocol, PortRange)> {
    plan.operations
        .iter()
        .filter_map(|operation| match operation {
            Operation::Create { resource: Resource::Forward(forward) }
            | Operation::Update { after: Resource::Forward(forward), .. } => {
                forward.host_ports.ports().map(|ports| (forward.protocol, ports))
            }
            _ => None,
        })
        .collect()
}

fn pick_from(keys: &[Key], pick: usize) -> Option<Key> {
    (!keys.is_empty()).then(|| keys[pick % keys.len()].clone())
}
