//! Turning what the kernel reports into the stack's observed state: which objects are the
//! stack's, what they are, and what the rest of the host occupies.
//!
//! Each kind read from the dumps has its reader in its own file (`bridge.rs`, `link.rs`,
//! `namespace.rs`, `route.rs`, `hosts.rs`); this one sorts the host's interfaces into the
//! stack's and the rest, runs the readers in the order their facts need (a link's bridge,
//! a route's link), and reads what the rest of the host occupies. The stack's settings
//! (`Sysctl`) are read by `Kernel::observe` under `/proc/sys`, not from dumps.

mod bridge;
mod hosts;
mod link;
mod namespace;
mod route;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use super::dump::{Interface, Snapshot};
use super::label;
use crate::names::Served;
use crate::plan::{AdoptedFacts, FileLimit, Process};
use crate::state::{HostFacts, KernelState, Key, NamespaceName, Resource, Scope, SubnetUser, UsedSubnet};

/// What was read from one of the stack's namespaces.
#[derive(Debug, Clone)]
pub struct NamespaceView {
    pub container: String,
    pub name: NamespaceName,
    pub snapshot: Snapshot,
    /// Whether the container has the hosts file stackctl writes.
    pub hosts_file: bool,
    /// The name servers of the container's `resolv.conf`, when stackctl wrote it.
    pub nameservers: Option<Vec<Ipv4Addr>>,
}

/// The stack's objects as they are, and what the rest of the host holds.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub state: KernelState,
    pub host: HostFacts,
    /// Names of the interfaces in the host namespace that the stack does not own.
    pub foreign: BTreeSet<String>,
    /// Other tables' forward chains that drop what they do not accept (Docker's `ip
    /// filter FORWARD`): they drop the stack's routed traffic too.
    pub dropping_forward_chains: Vec<String>,
    /// The chains and sets the stack's tables have: an apply that changes rules keeps
    /// those it wants and deletes the others.
    pub tables: crate::firewall::Objects,
    /// What is at each adopted `netns:` path, and what is not the stack's to adopt.
    pub adopted: AdoptedFacts,
    /// The limit on open files, raised as far as stackctl may for the stack's namespaces.
    pub file_limit: FileLimit,
    /// The processes in each of the stack's namespaces, by container.
    pub processes: BTreeMap<String, Vec<Process>>,
}

impl Observation {
    /// What a named host that does not exist yet holds: nothing of any stack's, and the
    /// ports of a new network namespace (the kernel's default ephemeral range, none
    /// held), which is what apply creates before it makes anything else.
    pub fn of_absent_host(scope: &Scope) -> Observation {
        let ephemeral = crate::model::PortRange { first: 32768, last: 60999 };
        let local_ports = crate::state::LocalPorts { ephemeral, busy: BTreeSet::new() };
        Observation {
            host: HostFacts {
                host: scope.host.clone(),
                used_subnets: Vec::new(),
                local_ports: Some(local_ports),
                // Its loopback's, once apply has created it.
                addresses: vec![ipnet::Ipv4Net::new(std::net::Ipv4Addr::LOCALHOST, 8).expect("a valid prefix")],
                // Read with the stack's record (`Kernel::observe_absent`).
                settings: Vec::new(),
            },
            ..Observation::default()
        }
    }
}

/// An interface of the host namespace that belongs to the stack, and what it is.
struct Owned<'a> {
    interface: &'a Interface,
    key: Key,
    label: Option<label::Label>,
}

/// Reads the stack's state out of the host's snapshot and its namespaces' snapshots.
///
/// An interface is the stack's when it carries the stack's group. Its label says which
/// resource it is; an interface that has the group but no label yet (apply was stopped
/// between creating and labelling it) is known by its derived name. Everything else is
/// foreign: observed only so that nothing of the stack's collides with it.
///
/// A container's names (its `Hosts`) are observed when the host's name server serves them
/// (`served`, by container) and its hosts file is stackctl's.
pub fn read(
    scope: &Scope,
    host: &Snapshot,
    namespaces: &[NamespaceView],
    served: &BTreeMap<String, Served>,
) -> Observation {
    let mut owned = Vec::new();
    let mut foreign = BTreeSet::new();
    for interface in &host.interfaces {
        let labelled = interface.alias.as_deref().and_then(label::parse).filter(|label| label.stack == scope.stack);
        let key =
            labelled.as_ref().map(|label| label.key.clone()).or_else(|| scope.interfaces.get(&interface.name).cloned());
        match key {
            Some(key) if interface.group == scope.group => owned.push(Owned { interface, key, label: labelled }),
            _ => {
                foreign.insert(interface.name.clone());
            }
        }
    }

    let mut state = KernelState::default();
    let bridges = bridge::read(host, &owned, &mut state);
    let networks = link::read(host, &owned, namespaces, &bridges, &mut state);
    for view in namespaces {
        state.insert(Resource::Namespace(namespace::read(view)));
        if let Some(route) = route::read(view, &networks) {
            state.insert(Resource::Route(route));
        }
        if let Some(hosts) = hosts::read(view, served.get(&view.container)) {
            state.insert(Resource::Hosts(hosts));
        }
    }

    let used_subnets = used_subnets(host, &owned);
    Observation {
        state,
        host: HostFacts {
            host: scope.host.clone(),
            used_subnets,
            local_ports: None,
            addresses: host.addresses.iter().map(|(_, address)| *address).collect(),
            settings: Vec::new(),
        },
        foreign,
        ..Observation::default()
    }
}

/// The subnets that anything but the stack routes or addresses on the host.
fn used_subnets(host: &Snapshot, owned: &[Owned]) -> Vec<UsedSubnet> {
    let ours: BTreeSet<u32> = owned.iter().map(|owned| owned.interface.index).collect();
    // Another stack's bridge says whose it is in its label.
    let user = |index: Option<u32>| {
        let Some(index) = index else { return SubnetUser::Route };
        let interface = host.interfaces.iter().find(|interface| interface.index == index);
        match interface.and_then(|interface| interface.alias.as_deref()).and_then(label::parse) {
            Some(label) => SubnetUser::Stack(label.stack),
            None => SubnetUser::Interface(interface.map_or_else(|| format!("#{index}"), |found| found.name.clone())),
        }
    };
    let routed = host
        .routes
        .iter()
        .filter(|route| route.destination.prefix_len() > 0)
        .filter(|route| !route.interface.is_some_and(|index| ours.contains(&index)))
        .map(|route| UsedSubnet { subnet: route.destination.trunc(), user: user(route.interface) });
    let addressed = host
        .addresses
        .iter()
        .filter(|(index, address)| !ours.contains(index) && !address.addr().is_loopback())
        .map(|(index, address)| UsedSubnet { subnet: address.trunc(), user: user(Some(*index)) });
    let mut used: Vec<UsedSubnet> = routed.chain(addressed).collect();
    used.sort();
    used.dedup_by(|later, earlier| later.subnet == earlier.subnet);
    used
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{Isolation, validate_file};
    use crate::spec::SourceFile;
    use crate::state::{Hosts, NO_ADDRESS, bridge_ifname};

    fn scope() -> Scope {
        let text = "name: s\nnetworks: { n: {} }\ncontainers:\n  a: { networks: [n] }\n";
        let stack =
            validate_file(&SourceFile { name: "s.yaml".to_owned(), text: text.to_owned() }).stack.expect("valid");
        Scope::of(&stack, &crate::state::HostNamespace::Current)
    }

    fn interface(index: u32, name: &str, group: u32, alias: Option<String>) -> Interface {
        Interface { index, name: name.to_owned(), group, alias, up: is_up(index), ..Interface::default() }
    }

    /// Interfaces 1 and 2 are up in these cases, others down.
    fn is_up(index: u32) -> bool {
        index <= 2
    }

    #[test]
    fn an_interface_is_the_stacks_only_with_its_group() {
        let scope = scope();
        let bridge = bridge_ifname("s", "n");
        let host = Snapshot {
            interfaces: vec![interface(1, &bridge, 7, None), interface(2, "eth0", 0, None)],
            ..Snapshot::default()
        };
        let observation = read(&scope, &host, &[], &BTreeMap::new());
        assert!(observation.state.is_empty());
        assert_eq!(observation.foreign, BTreeSet::from([bridge, "eth0".to_owned()]));
    }

    #[test]
    fn an_interrupted_creation_is_known_by_its_derived_name_and_seen_down() {
        let scope = scope();
        let bridge = bridge_ifname("s", "n");
        let labelled = Some(label::bridge_label("s", "n", true, Isolation::Open));
        let host = Snapshot { interfaces: vec![interface(3, &bridge, scope.group, None)], ..Snapshot::default() };
        let Some(Resource::Bridge(observed)) =
            read(&scope, &host, &[], &BTreeMap::new()).state.get(&Key::Bridge { network: "n".to_owned() }).cloned()
        else {
            panic!("the bridge is the stack's");
        };
        assert!(!observed.up);
        assert_eq!(observed.address, NO_ADDRESS);

        let host = Snapshot { interfaces: vec![interface(1, &bridge, scope.group, labelled)], ..Snapshot::default() };
        let Some(Resource::Bridge(observed)) =
            read(&scope, &host, &[], &BTreeMap::new()).state.get(&Key::Bridge { network: "n".to_owned() }).cloned()
        else {
            panic!("the bridge is the stack's");
        };
        assert!(observed.up && observed.internal);
        assert_eq!(observed.isolation, Isolation::Open);
    }

    #[test]
    fn names_are_observed_only_while_the_name_server_serves_them() {
        let scope = scope();
        let records: crate::state::Records = Arc::new(vec![("a".to_owned(), "10.89.0.2".parse().expect("address"))]);
        let served = BTreeMap::from([("a".to_owned(), Served { records: Arc::clone(&records), upstream: true })]);
        let view = |hosts_file: bool, nameservers: Option<Vec<Ipv4Addr>>| NamespaceView {
            container: "a".to_owned(),
            name: NamespaceName::Created("s:a".to_owned()),
            snapshot: Snapshot::default(),
            hosts_file,
            nameservers,
        };
        let hosts = |view: NamespaceView, served: &BTreeMap<String, Served>| {
            read(&scope, &Snapshot::default(), &[view], served)
                .state
                .get(&Key::Hosts { container: "a".to_owned() })
                .cloned()
        };
        let gateway: Ipv4Addr = "10.89.0.1".parse().expect("address");
        let expected = Resource::Hosts(Hosts {
            container: "a".to_owned(),
            records: Arc::clone(&records),
            nameservers: vec![gateway],
            upstream: true,
        });
        assert_eq!(hosts(view(true, Some(vec![gateway])), &served), Some(expected));
        assert_eq!(hosts(view(true, Some(vec![gateway])), &BTreeMap::new()), None, "no server serves them");
        assert_eq!(hosts(view(false, Some(vec![gateway])), &served), None, "no hosts file of stackctl's");
        let Some(Resource::Hosts(without)) = hosts(view(true, None), &served) else { panic!("served names") };
        assert!(without.nameservers.is_empty(), "no resolv.conf of stackctl's: no name servers");
    }
}
