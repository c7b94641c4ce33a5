//! Lowering a validated stack into the kernel state it wants.
//!
//! Choices that are free (automatic subnets, addresses, interface names, random ports) keep
//! whatever the observed state already has when it is still valid, and otherwise take the
//! lowest free value in name order. So adding a container never moves another's address,
//! and lowering the same stack against its own result changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::allocate::{AddressPool, auto_prefix, bridge_ifname, free_subnet, veth_ifname};
use super::ports::pick_random_ports;
use super::scope::{HostNamespace, namespace_name};
use super::{
    Alias, Backend, Bridge, Desired, Flow, Forward, HostPorts, Hosts, KernelState, Key, Link, Member, Namespace,
    Policy, Records, Resource, Route,
};
use crate::diagnostic::{Diagnostic, Span};
use crate::graph::{Grant, StackGraph};
use crate::model::{
    Attachment, Container, HOST, Isolation, PortRange, Protocol, Publication, Stack, Traffic, conflicts, overlaps,
};
use crate::spec::StackSpec;

/// What lowering (and `check`) needs to know of the host beyond the stack's own objects.
/// A saved plan keeps them, to be planned again from them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// Which namespace plays the host: the containers' namespaces are named after it.
    pub host: HostNamespace,
    /// Subnets routed on the host by anything but this stack, and by what: automatic
    /// subnets avoid them, and a declared subnet that overlaps one is refused.
    pub used_subnets: Vec<UsedSubnet>,
    /// The host's ports, when known: random host ports are picked among the free ones.
    /// Unknown (planning without a host), random ports stay to be picked.
    pub local_ports: Option<LocalPorts>,
    /// Every IPv4 address of the host's interfaces, with its prefix, the stack's bridges
    /// included: where `check` probes published ports.
    pub addresses: Vec<Ipv4Net>,
    /// The host's kernel settings that stacks need (`state::FORWARDING`), as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<super::HostSetting>,
}

/// A subnet that the host routes through something that is not the stack's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UsedSubnet {
    pub subnet: Ipv4Net,
    pub user: SubnetUser,
}

/// What routes a used subnet: another stack's bridge, any other interface, or a route
/// through none (a blackhole, say).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SubnetUser {
    Stack(String),
    Interface(String),
    Route,
}

impl std::fmt::Display for SubnetUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubnetUser::Stack(stack) => write!(f, "stack `{stack}`"),
            SubnetUser::Interface(ifname) => write!(f, "interface `{ifname}`"),
            SubnetUser::Route => write!(f, "a route without an interface"),
        }
    }
}

/// The ports of the host namespace: the range the kernel picks ephemeral ports from, and
/// the ports that sockets hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalPorts {
    pub ephemeral: PortRange,
    pub busy: BTreeSet<(Protocol, u16)>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LowerError {
    #[error("no free /{prefix} subnet left in {pool} for network `{network}`: declare `subnet:` for it")]
    NoFreeSubnet { network: String, prefix: u8, pool: Ipv4Net },
    #[error("subnet {subnet} of network `{network}` overlaps {used}, which {user} uses on this host")]
    SubnetTaken { network: String, subnet: Ipv4Net, used: Ipv4Net, user: SubnetUser },
    #[error("network `{network}` has no free address left in {subnet} for container `{container}`")]
    NoFreeAddress { network: String, subnet: Ipv4Net, container: String },
    #[error(
        "no free host ports left in the ephemeral range {range} for port {ports} of container `{container}`: declare the host port"
    )]
    NoFreePort { container: String, ports: PortRange, range: PortRange },
}

impl LowerError {
    /// The error at its place in the stack file, for an error about something written
    /// there: a declared subnet that the host uses.
    pub fn diagnostic(&self, spec: &StackSpec) -> Option<Diagnostic> {
        let LowerError::SubnetTaken { network, used, user, .. } = self else { return None };
        let (_, written) = spec.networks.0.iter().find(|(name, _)| name.value == *network)?;
        let subnet = written.subnet.as_ref()?;
        let diagnostic = Diagnostic::error(Span::of(subnet), self.to_string(), format!("{user} uses {used}"));
        Some(
            diagnostic
                .with_help("declare a subnet that overlaps no other, or leave `subnet:` out to have a free one picked"),
        )
    }
}

/// The kernel state `stack` wants on a host that has `observed` (this stack's objects as
/// they are) and `host` (everything else).
pub fn lower(stack: &Stack, observed: &KernelState, host: &HostFacts) -> Result<Desired, LowerError> {
    let subnets = subnets(stack, observed, host)?;
    let (addresses, alias_addresses) = addresses(stack, observed, &subnets)?;
    let mut state = KernelState::default();
    for network in stack.networks.values() {
        let (subnet, gateway) = subnets[&network.name];
        let mut virtual_addresses: Vec<Ipv4Addr> =
            alias_addresses.iter().filter(|((on, _), _)| *on == network.name).map(|(_, address)| *address).collect();
        virtual_addresses.sort_unstable();
        state.insert(Resource::Bridge(Bridge {
            network: network.name.clone(),
            ifname: bridge_ifname(&stack.name, &network.name),
            address: with_prefix(gateway, subnet),
            internal: network.internal,
            isolation: network.isolation,
            up: true,
            conf: super::InetConf::for_a_network(),
            virtual_addresses,
        }));
        for (alias, holders) in stack.aliases_on(&network.name) {
            state.insert(Resource::Alias(Alias {
                network: network.name.clone(),
                name: alias.to_owned(),
                bridge: bridge_ifname(&stack.name, &network.name),
                address: alias_addresses[&(network.name.as_str(), alias)],
                backends: holders
                    .into_iter()
                    .map(|container| Backend {
                        container: container.to_owned(),
                        address: addresses[&(container, network.name.as_str())],
                    })
                    .collect(),
            }));
        }
    }
    // Host ports declared anywhere in the stack: a random port picked earlier gives way to
    // them, so that the declaration can take effect.
    let declared: Vec<Publication> = stack
        .containers
        .values()
        .flat_map(|container| container.ports.iter().copied())
        .filter(|publication| publication.host_ports.is_some())
        .collect();
    // Containers on the same networks resolve the same names, so each set of networks has
    // its records made once and shared: in a large stack they are most of the state.
    let mut records_of: HashMap<Vec<&str>, Records> = HashMap::new();
    for container in stack.containers.values() {
        if container.attachment != Attachment::Host {
            state.insert(Resource::Namespace(Namespace {
                container: container.name.clone(),
                name: container
                    .netns
                    .clone()
                    .unwrap_or_else(|| namespace_name(&stack.name, &host.host, &container.name)),
                adopted: container.netns.is_some(),
                loopback_up: true,
                conf: container.netns.is_none().then(super::NamespaceConf::for_a_container),
            }));
        }
        lower_container(stack, container, observed, &subnets, &addresses, &declared, &mut state);
        // Containers on no bridge network (`none` and `host`) resolve no names of the stack.
        if !container.memberships().is_empty() {
            let mut networks: Vec<&str> = container.memberships().iter().map(|m| m.network.as_str()).collect();
            networks.sort_unstable();
            let records = records_of
                .entry(networks)
                .or_insert_with_key(|networks| Arc::new(records(stack, networks, &addresses, &alias_addresses)));
            state.insert(Resource::Hosts(Hosts {
                container: container.name.clone(),
                records: Arc::clone(records),
                nameservers: container.memberships().iter().map(|membership| subnets[&membership.network].1).collect(),
                upstream: container
                    .memberships()
                    .iter()
                    .any(|membership| !stack.networks[&membership.network].internal),
            }));
        }
    }
    if let Some(local_ports) = &host.local_ports {
        pick_random_ports(&stack.name, &mut state, &declared, local_ports)?;
    }
    for network in stack.networks.values() {
        let members = state
            .of_kind(super::Kind::Link)
            .filter_map(|resource| match resource {
                Resource::Link(link) if link.network == network.name => Some(Member {
                    container: link.container.clone(),
                    port: link.host_ifname.clone(),
                    address: link.address.addr(),
                }),
                _ => None,
            })
            .collect();
        state.insert(Resource::Policy(Policy {
            network: network.name.clone(),
            bridge: bridge_ifname(&stack.name, &network.name),
            subnet: subnets[&network.name].0,
            gateway: subnets[&network.name].1,
            internal: network.internal,
            isolation: network.isolation,
            members,
        }));
    }
    let graph = StackGraph::build(stack);
    for flow in flow_rules(stack, &graph) {
        // A flow to the host is to its address on the network: the gateway.
        let to = match flow.destination.as_str() {
            HOST => subnets[&flow.network].1,
            destination => addresses[&(destination, flow.network.as_str())],
        };
        state.insert(Resource::Flow(Flow {
            from: addresses[&(flow.source.as_str(), flow.network.as_str())],
            to,
            ..flow
        }));
    }
    for sysctl in super::resource::desired_sysctls(&state, observed, &host.settings) {
        state.insert(Resource::Sysctl(sysctl));
    }
    Ok(Desired {
        state,
        wiring_order: graph.wiring_order(),
        alias_ports: alias_ports(stack),
        drain: stack.drain,
        held_elsewhere: super::resource::held_elsewhere(&host.settings),
    })
}

/// The TCP ports that declared flows open to each alias, from the members of its network.
/// A flow of all traffic names no port, so it gives none to verify.
fn alias_ports(stack: &Stack) -> Vec<super::AliasPorts> {
    let mut ports: BTreeMap<(&str, &str), BTreeSet<u16>> = BTreeMap::new();
    for network in stack.networks.values() {
        let aliases = stack.aliases_on(&network.name);
        for (source, _) in stack.memberships_on(&network.name) {
            for flow in &source.talks_to {
                let Some((alias, _)) = aliases.get_key_value(flow.target.as_str()) else { continue };
                if let Traffic::Ports { protocol: Protocol::Tcp, ports: range } = flow.traffic {
                    ports.entry((network.name.as_str(), alias)).or_default().insert(range.first);
                }
            }
        }
    }
    ports
        .into_iter()
        .map(|((network, alias), ports)| super::AliasPorts {
            network: network.to_owned(),
            alias: alias.to_owned(),
            ports: ports.into_iter().collect(),
        })
        .collect()
}

/// The flows that need a rule, without addresses: those declared on networks with
/// `isolation: flows` (on open networks everything passes between members), and those to
/// the host on any network (nothing else of the host's passes). A pair that may exchange all
/// traffic on a network needs no narrower rule there, and the port ranges of one pair and
/// protocol are merged into disjoint ranges: the kernel's interval sets take no overlaps.
fn flow_rules(stack: &Stack, graph: &StackGraph) -> Vec<Flow> {
    type Pair = (String, String, String);
    let mut unrestricted: BTreeSet<Pair> = BTreeSet::new();
    let mut ranges: BTreeMap<(Pair, Protocol), Vec<PortRange>> = BTreeMap::new();
    for flow in graph.declared_flows().filter(|flow| flow.grant == Grant::Declared) {
        if stack.networks[&flow.network].isolation == Isolation::Open && flow.destination != HOST {
            continue;
        }
        let pair = (flow.network, flow.source, flow.destination);
        match flow.traffic {
            Traffic::All => {
                unrestricted.insert(pair);
            }
            Traffic::Ports { protocol, ports } => ranges.entry((pair, protocol)).or_default().push(ports),
        }
    }
    let flow = |(network, source, destination): Pair, traffic| Flow {
        network,
        source,
        destination,
        traffic,
        from: std::net::Ipv4Addr::UNSPECIFIED,
        to: std::net::Ipv4Addr::UNSPECIFIED,
    };
    let mut flows: Vec<Flow> = Vec::new();
    for ((pair, protocol), mut ports) in ranges {
        if unrestricted.contains(&pair) {
            continue;
        }
        ports.sort_unstable();
        let mut merged: Vec<PortRange> = Vec::new();
        for range in ports {
            match merged.last_mut() {
                Some(last) if u32::from(range.first) <= u32::from(last.last) + 1 => {
                    last.last = last.last.max(range.last)
                }
                _ => merged.push(range),
            }
        }
        flows.extend(merged.into_iter().map(|ports| flow(pair.clone(), Traffic::Ports { protocol, ports })));
    }
    flows.extend(unrestricted.into_iter().map(|pair| flow(pair, Traffic::All)));
    flows
}

type Subnets = BTreeMap<String, (Ipv4Net, Ipv4Addr)>;
/// The virtual address of each (network, alias).
type VirtualAddresses<'a> = HashMap<(&'a str, &'a str), Ipv4Addr>;
/// Addresses by (container, network), borrowing the stack's names: lowering looks them up
/// for every name record, and owned keys would allocate on each lookup.
type Addresses<'a> = HashMap<(&'a str, &'a str), Ipv4Addr>;
fn with_prefix(address: Ipv4Addr, subnet: Ipv4Net) -> Ipv4Net {
    Ipv4Net::new(address, subnet.prefix_len()).expect("prefix of a valid subnet")
}

/// Each network's subnet and gateway: declared, else kept from the observed bridge, else
/// the first free one of the pool.
fn subnets(stack: &Stack, observed: &KernelState, host: &HostFacts) -> Result<Subnets, LowerError> {
    let mut taken: Vec<Ipv4Net> = host.used_subnets.iter().map(|used| used.subnet).collect();
    taken.extend(stack.networks.values().filter_map(|network| network.subnet));
    let mut chosen = Subnets::new();
    let mut automatic = Vec::new();
    for network in stack.networks.values() {
        if let Some(subnet) = network.subnet {
            // A subnet the network already has stays: what came to overlap it since (a
            // route added by hand, a VPN) is the host's to sort out, not a reason to stop
            // every change to the stack.
            let kept = matches!(
                observed.get(&Key::Bridge { network: network.name.clone() }),
                Some(Resource::Bridge(bridge)) if bridge.address.trunc() == subnet
            );
            if let Some(used) = host.used_subnets.iter().find(|used| !kept && overlaps(&subnet, &used.subnet)) {
                return Err(LowerError::SubnetTaken {
                    network: network.name.clone(),
                    subnet,
                    used: used.subnet,
                    user: used.user.clone(),
                });
            }
            chosen.insert(network.name.clone(), (subnet, network.gateway.unwrap_or_else(|| first_host(subnet))));
            continue;
        }
        // Every member and every alias takes an address.
        let members = stack.members(&network.name).count() + stack.aliases_on(&network.name).len();
        let kept = match observed.get(&Key::Bridge { network: network.name.clone() }) {
            Some(Resource::Bridge(bridge)) => Some(bridge.address.trunc()),
            _ => None,
        }
        .filter(|subnet| subnet.prefix_len() <= auto_prefix(members))
        .filter(|subnet| !taken.iter().any(|used| overlaps(subnet, used)));
        match kept {
            Some(subnet) => {
                taken.push(subnet);
                chosen.insert(network.name.clone(), (subnet, first_host(subnet)));
            }
            None => automatic.push((network, members)),
        }
    }
    for (network, members) in automatic {
        let prefix = auto_prefix(members);
        let subnet = free_subnet(prefix, &taken).ok_or_else(|| LowerError::NoFreeSubnet {
            network: network.name.clone(),
            prefix,
            pool: super::AUTO_SUBNET_POOL,
        })?;
        taken.push(subnet);
        chosen.insert(network.name.clone(), (subnet, first_host(subnet)));
    }
    Ok(chosen)
}

fn first_host(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

/// Each membership's address: static, else kept from the observed link, else the lowest
/// free one; and each alias's virtual address: kept from the observed alias, else the
/// highest free one, so that members and aliases grow toward each other.
///
/// Addresses that observed links of containers leaving a network still hold are not
/// handed out: a swap keeps the old container serving while the new one is wired.
fn addresses<'a>(
    stack: &'a Stack,
    observed: &KernelState,
    subnets: &Subnets,
) -> Result<(Addresses<'a>, VirtualAddresses<'a>), LowerError> {
    let mut addresses = Addresses::new();
    let mut alias_addresses = VirtualAddresses::new();
    for network in stack.networks.values() {
        let (subnet, gateway) = subnets[&network.name];
        let usable = |address: &Ipv4Addr| {
            subnet.contains(address) && *address != subnet.network() && *address != subnet.broadcast()
        };
        let members: Vec<_> = stack.memberships_on(&network.name).collect();
        let statics: BTreeSet<Ipv4Addr> =
            members.iter().filter_map(|(_, membership)| membership.ipv4).chain([gateway]).collect();
        let aliases = stack.aliases_on(&network.name);
        let kept_aliases: Vec<(&str, Ipv4Addr)> = aliases
            .keys()
            .filter_map(|alias| {
                match observed.get(&Key::Alias { network: network.name.clone(), name: (*alias).to_owned() }) {
                    Some(Resource::Alias(kept)) => Some((*alias, kept.address)),
                    _ => None,
                }
            })
            .filter(|(_, address)| usable(address) && !statics.contains(address))
            .collect();
        let leaving = observed.of_kind(super::Kind::Link).filter_map(|resource| match resource {
            Resource::Link(link)
                if link.network == network.name && !members.iter().any(|(member, _)| member.name == link.container) =>
            {
                Some(link.address.addr())
            }
            _ => None,
        });
        let mut taken = statics.clone();
        taken.extend(kept_aliases.iter().map(|(_, address)| *address));
        taken.extend(leaving.filter(|address| usable(address) && !statics.contains(address)));
        let mut pool = AddressPool::new(subnet, taken);
        let mut unplaced = Vec::new();
        for (member, membership) in members {
            let key = (member.name.as_str(), network.name.as_str());
            if let Some(address) = membership.ipv4 {
                addresses.insert(key, address);
                continue;
            }
            let kept = match observed.get(&Key::Link { container: key.0.to_owned(), network: key.1.to_owned() }) {
                Some(Resource::Link(link)) => Some(link.address.addr()),
                _ => None,
            }
            .filter(usable)
            .filter(|address| pool.take(*address));
            match kept {
                Some(address) => {
                    addresses.insert(key, address);
                }
                None => unplaced.push(key),
            }
        }
        for key in unplaced {
            let address = pool.next_free().ok_or_else(|| LowerError::NoFreeAddress {
                network: network.name.clone(),
                subnet,
                container: key.0.to_owned(),
            })?;
            addresses.insert(key, address);
        }
        for (alias, address) in &kept_aliases {
            alias_addresses.insert((network.name.as_str(), *alias), *address);
        }
        // A new virtual address also avoids the addresses that links hold now: the bridge
        // takes it before links change or go.
        for resource in observed.of_kind(super::Kind::Link) {
            if let Resource::Link(link) = resource
                && link.network == network.name
            {
                pool.take(link.address.addr());
            }
        }
        for alias in aliases.keys().filter(|alias| !kept_aliases.iter().any(|(kept, _)| kept == *alias)) {
            let address = pool.last_free().ok_or_else(|| LowerError::NoFreeAddress {
                network: network.name.clone(),
                subnet,
                container: format!("alias {alias}"),
            })?;
            alias_addresses.insert((network.name.as_str(), *alias), address);
        }
    }
    Ok((addresses, alias_addresses))
}

/// A container's links, default route and published ports (its namespace is lowered with
/// the host's name).
fn lower_container(
    stack: &Stack,
    container: &Container,
    observed: &KernelState,
    subnets: &Subnets,
    addresses: &Addresses,
    declared: &[Publication],
    state: &mut KernelState,
) {
    if container.attachment == Attachment::Host {
        return;
    }
    let memberships = container.memberships();
    if memberships.is_empty() {
        return;
    }
    let ifnames = interface_names(container, observed);
    let address = |network: &str| addresses[&(container.name.as_str(), network)];
    for membership in memberships {
        let (subnet, _) = subnets[&membership.network];
        state.insert(Resource::Link(Link {
            container: container.name.clone(),
            network: membership.network.clone(),
            ifname: ifnames[&membership.network].clone(),
            host_ifname: veth_ifname(&stack.name, &container.name, &membership.network),
            address: with_prefix(address(&membership.network), subnet),
            attached: true,
            up: true,
            subnet_via: (stack.networks[&membership.network].isolation == Isolation::Flows)
                .then_some(subnets[&membership.network].1),
        }));
    }
    // The default route leaves through the first network, in the order written, that
    // reaches outside the stack; a container only on internal networks has none.
    let uplink = memberships.iter().find(|membership| !stack.networks[&membership.network].internal);
    if let Some(uplink) = uplink {
        state.insert(Resource::Route(Route {
            container: container.name.clone(),
            network: uplink.network.clone(),
            gateway: subnets[&uplink.network].1,
            ifname: ifnames[&uplink.network].clone(),
        }));
    }
    if let Some(uplink) = uplink {
        for publication in &container.ports {
            let key = Key::Forward {
                container: container.name.clone(),
                protocol: publication.protocol,
                container_port: publication.container_ports.first,
                host_ip: publication.host_ip,
                host_port: publication.host_ports.map(|ports| ports.first),
            };
            let host_ports = match (publication.host_ports, observed.get(&key)) {
                (Some(ports), _) => HostPorts::Fixed(ports),
                // A random port, once picked, is kept while the publication stays the same
                // and no other publication declares it.
                (None, Some(Resource::Forward(picked)))
                    if matches!(picked.host_ports, HostPorts::Picked(_))
                        && picked.container_ports == publication.container_ports
                        && !declared.iter().any(|other| claims(other, picked)) =>
                {
                    picked.host_ports
                }
                (None, _) => HostPorts::Random,
            };
            state.insert(Resource::Forward(Forward {
                container: container.name.clone(),
                protocol: publication.protocol,
                host_ip: publication.host_ip,
                host_ports,
                container_ports: publication.container_ports,
                to: address(&uplink.network),
            }));
        }
    }
}

/// Whether the declared host ports of `publication` take any of the ports picked for
/// `picked`: the same test as between two declared publications.
fn claims(publication: &Publication, picked: &Forward) -> bool {
    let picked = Publication {
        host_ip: picked.host_ip,
        host_ports: picked.host_ports.ports(),
        container_ports: picked.container_ports,
        protocol: picked.protocol,
    };
    conflicts(publication, &picked)
}

/// `eth0`, `eth1`, ... in the order networks are written, keeping the names the container
/// already has: connecting one more network never renames an interface.
///
/// An observed link whose end inside the container could not be read (its namespace is
/// gone, or no longer where the stack says) has no name: it keeps none, and takes none.
fn interface_names(container: &Container, observed: &KernelState) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    // The names of links to networks the container leaves stay taken: a swap keeps those
    // links until the new ones are wired.
    let mut used: BTreeSet<String> = observed
        .of_kind(super::Kind::Link)
        .filter_map(|resource| match resource {
            Resource::Link(link)
                if link.container == container.name
                    && container.membership(&link.network).is_none()
                    && !link.ifname.is_empty() =>
            {
                Some(link.ifname.clone())
            }
            _ => None,
        })
        .collect();
    for membership in container.memberships() {
        let key = Key::Link { container: container.name.clone(), network: membership.network.clone() };
        if let Some(Resource::Link(link)) = observed.get(&key)
            && !link.ifname.is_empty()
            && used.insert(link.ifname.clone())
        {
            names.insert(membership.network.clone(), link.ifname.clone());
        }
    }
    let mut next = 0;
    for membership in container.memberships() {
        if names.contains_key(&membership.network) {
            continue;
        }
        while used.contains(&format!("eth{next}")) {
            next += 1;
        }
        used.insert(format!("eth{next}"));
        names.insert(membership.network.clone(), format!("eth{next}"));
    }
    names
}

/// The names a container on `networks` resolves: on each of them, every member's name at
/// its address there, and every alias declared there at its virtual address.
fn records(
    stack: &Stack,
    networks: &[&str],
    addresses: &Addresses,
    alias_addresses: &VirtualAddresses,
) -> Vec<(String, Ipv4Addr)> {
    let mut records = BTreeSet::new();
    for network in networks {
        for (member, _) in stack.memberships_on(network) {
            records.insert((member.name.clone(), addresses[&(member.name.as_str(), *network)]));
        }
        for alias in stack.aliases_on(network).into_keys() {
            records.insert((alias.to_owned(), alias_addresses[&(*network, alias)]));
        }
    }
    records.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate_file;
    use crate::spec::SourceFile;
    use crate::state::Kind;

    fn desired(text: &str) -> Desired {
        let validated = validate_file(&SourceFile { name: "test.yaml".to_owned(), text: text.to_owned() });
        let stack = validated.stack.unwrap_or_else(|| panic!("invalid: {:#?}", validated.diagnostics));
        lower(&stack, &KernelState::default(), &HostFacts::default()).expect("lowers")
    }

    fn flows(desired: &Desired) -> Vec<String> {
        desired.state.resources.keys().filter(|key| key.kind() == Kind::Flow).map(Key::label).collect()
    }

    #[test]
    fn a_flow_of_all_traffic_makes_narrower_ones_to_the_same_container_redundant() {
        let desired = desired(
            "name: s\nnetworks: { n: {} }\ncontainers:\n  a: { networks: [n], talks_to: [b, 'b:80', 'c:53/udp'] }\n  b: { networks: [n] }\n  c: { networks: [n] }\n",
        );
        assert_eq!(flows(&desired), ["a -> b all on n", "a -> c udp/53 on n"]);
    }

    #[test]
    fn port_ranges_of_one_pair_merge_into_disjoint_ranges() {
        let desired = desired(
            "name: s\nnetworks: { n: {} }\ncontainers:\n  a: { networks: [n], talks_to: ['b:80', 'b:1-100', 'b:101-200', 'b:443', 'b:80/udp'] }\n  b: { networks: [n] }\n",
        );
        assert_eq!(flows(&desired), ["a -> b tcp/1-200 on n", "a -> b tcp/443 on n", "a -> b udp/80 on n"]);
    }

    #[test]
    fn open_networks_need_no_flow_rules() {
        let desired = desired(
            "name: s\nnetworks: { n: { isolation: open } }\ncontainers:\n  a: { networks: [n], talks_to: ['b:80'] }\n  b: { networks: [n] }\n",
        );
        assert!(flows(&desired).is_empty());
    }

    /// A declared subnet that something else on the host uses is refused, naming it, unless
    /// the network already has it: a route added later does not stop every change.
    #[test]
    fn a_declared_subnet_the_host_uses_is_refused_unless_the_network_has_it() {
        let text = "name: s\nnetworks:\n  n: { subnet: 10.20.0.0/24 }\ncontainers:\n  a: { networks: [n] }\n";
        let stack =
            validate_file(&SourceFile { name: "test.yaml".to_owned(), text: text.to_owned() }).stack.expect("valid");
        let used =
            UsedSubnet { subnet: "10.0.0.0/8".parse().expect("subnet"), user: SubnetUser::Stack("t".to_owned()) };
        let host = HostFacts { used_subnets: vec![used], ..HostFacts::default() };
        let refused = lower(&stack, &KernelState::default(), &host).map(|_| ()).expect_err("overlaps");
        assert_eq!(
            refused.to_string(),
            "subnet 10.20.0.0/24 of network `n` overlaps 10.0.0.0/8, which stack `t` uses on this host"
        );
        let converged = lower(&stack, &KernelState::default(), &HostFacts::default()).expect("lowers");
        assert!(lower(&stack, &converged.state, &host).is_ok(), "a subnet the network has is kept");
    }

    /// Observed links whose end inside the container could not be read have no name; the
    /// plan never names a device "".
    #[test]
    fn lowering_never_yields_an_empty_interface_name() {
        let text = "name: s\nnetworks: { n: {}, m: {}, o: {} }\ncontainers:\n  a: { networks: [n, m] }\n  b: { networks: [n] }\n";
        let stack =
            validate_file(&SourceFile { name: "test.yaml".to_owned(), text: text.to_owned() }).stack.expect("valid");
        let converged = lower(&stack, &KernelState::default(), &HostFacts::default()).expect("lowers");
        // Every link unread, and `b` with one more, unread too, to a network it has left.
        let mut observed = KernelState::default();
        for resource in converged.state.of_kind(Kind::Link) {
            let Resource::Link(link) = resource else { continue };
            observed.insert(Resource::Link(Link { ifname: String::new(), ..link.clone() }));
            if link.container == "b" {
                let left = Link { network: "o".to_owned(), ifname: String::new(), ..link.clone() };
                observed.insert(Resource::Link(left));
            }
        }
        let after = lower(&stack, &observed, &HostFacts::default()).expect("lowers");
        let mut ifnames = Vec::new();
        for resource in after.state.resources.values() {
            match resource {
                Resource::Link(link) => ifnames.push((link.container.clone(), link.ifname.clone())),
                Resource::Route(route) => ifnames.push((route.container.clone(), route.ifname.clone())),
                _ => {}
            }
        }
        assert!(ifnames.iter().all(|(_, ifname)| !ifname.is_empty()), "{ifnames:?}");
        assert_eq!(after.state, converged.state, "unread names are chosen as on a new host");
    }

    #[test]
    fn adding_a_container_keeps_every_other_address() {
        let before =
            desired("name: s\nnetworks: { n: {} }\ncontainers:\n  b: { networks: [n] }\n  d: { networks: [n] }\n");
        let stack = validate_file(&SourceFile {
            name: "test.yaml".to_owned(),
            text: "name: s\nnetworks: { n: {} }\ncontainers:\n  a: { networks: [n] }\n  b: { networks: [n] }\n  d: { networks: [n] }\n".to_owned(),
        })
        .stack
        .expect("valid");
        let after = lower(&stack, &before.state, &HostFacts::default()).expect("lowers");
        for (key, resource) in &before.state.resources {
            if let Resource::Link(link) = resource {
                assert_eq!(after.state.get(key), Some(&Resource::Link(link.clone())), "{}", key.label());
            }
        }
    }
}
