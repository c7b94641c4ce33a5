//! A stack's names as the name server serves them: who may ask, on which gateway, and what
//! each asker sees.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::state::{KernelState, NO_ADDRESS, Records, Resource};

/// The version of the zone file's JSON; a server reads only its own.
pub const ZONE_FORMAT_VERSION: u32 = 1;

/// One stack's names as served, written to a file the name server reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub format_version: u32,
    pub stack: String,
    /// The addresses the server listens on: the gateways of the networks that have clients.
    pub gateways: Vec<Ipv4Addr>,
    /// Who may ask: each container, from its address on a network, at that network's gateway.
    pub clients: Vec<Client>,
    /// What clients see; clients that see the same names share one view.
    pub views: Vec<View>,
    /// The containers on no network: no one resolves their names, which exist for no
    /// one and are never asked of the world.
    pub isolated: Vec<String>,
}

/// A container asking from its address on one network, at that network's gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub gateway: Ipv4Addr,
    pub source: Ipv4Addr,
    pub container: String,
    /// The index of its view in [`Zone::views`].
    pub view: usize,
}

/// The names a client resolves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// Each name, as written in the stack, with its addresses in order.
    pub records: BTreeMap<String, Vec<Ipv4Addr>>,
    /// The name each address answers for: a container's address gives the container's
    /// name, any other address (an alias's) the first name that has it.
    pub reverse: BTreeMap<Ipv4Addr, String>,
    /// Whether names outside the stack are forwarded to the host's name servers.
    pub upstream: bool,
}

/// What the server has for one container, in the shape of its `Hosts` resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub records: Records,
    pub upstream: bool,
}

/// The zone of `stack` in `state`: a client for each link of each container that has
/// names (a `Hosts` resource), at the gateway of the link's network.
pub fn zone(stack: &str, state: &KernelState) -> Zone {
    let mut gateway_of: HashMap<&str, Ipv4Addr> = HashMap::new();
    for resource in state.resources.values() {
        match resource {
            Resource::Policy(policy) => {
                gateway_of.entry(&policy.network).or_insert(policy.gateway);
            }
            // The bridge holds the address the server listens on: it wins over the policy.
            Resource::Bridge(bridge) if bridge.address != NO_ADDRESS => {
                gateway_of.insert(&bridge.network, bridge.address.addr());
            }
            _ => {}
        }
    }
    let mut links: HashMap<&str, Vec<(Ipv4Addr, Ipv4Addr)>> = HashMap::new();
    let mut owners: HashMap<Ipv4Addr, &str> = HashMap::new();
    for resource in state.resources.values() {
        if let Resource::Link(link) = resource
            && link.address != NO_ADDRESS
        {
            owners.insert(link.address.addr(), &link.container);
            if let Some(gateway) = gateway_of.get(link.network.as_str()) {
                links.entry(&link.container).or_default().push((*gateway, link.address.addr()));
            }
        }
    }
    let mut views: Vec<View> = Vec::new();
    let mut shared: HashMap<(&Records, bool), usize> = HashMap::new();
    let mut clients = Vec::new();
    for resource in state.resources.values() {
        let Resource::Hosts(hosts) = resource else { continue };
        let Some(links) = links.get(hosts.container.as_str()) else { continue };
        let view = *shared.entry((&hosts.records, hosts.upstream)).or_insert_with(|| {
            views.push(view_of(&hosts.records, hosts.upstream, &owners));
            views.len() - 1
        });
        for (gateway, source) in links {
            clients.push(Client { gateway: *gateway, source: *source, container: hosts.container.clone(), view });
        }
    }
    let gateways: BTreeSet<Ipv4Addr> = clients.iter().map(|client| client.gateway).collect();
    let isolated = state
        .resources
        .values()
        .filter_map(|resource| match resource {
            Resource::Namespace(namespace) if !links.contains_key(namespace.container.as_str()) => {
                Some(namespace.container.clone())
            }
            _ => None,
        })
        .collect();
    Zone {
        format_version: ZONE_FORMAT_VERSION,
        stack: stack.to_owned(),
        gateways: gateways.into_iter().collect(),
        clients,
        views,
        isolated,
    }
}

fn view_of(records: &Records, upstream: bool, owners: &HashMap<Ipv4Addr, &str>) -> View {
    let mut names: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
    let mut reverse: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
    for (name, address) in records.iter() {
        names.entry(name.clone()).or_default().push(*address);
        if owners.get(address) == Some(&name.as_str()) {
            reverse.insert(*address, name.clone());
        } else {
            reverse.entry(*address).or_insert_with(|| name.clone());
        }
    }
    for addresses in names.values_mut() {
        addresses.sort_unstable();
        addresses.dedup();
    }
    View { records: names, reverse, upstream }
}

impl Zone {
    /// The zone file's text.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a zone serializes")
    }

    /// What each container resolves, as its `Hosts` resource holds it: containers that
    /// share a view share their records.
    pub fn served(&self) -> BTreeMap<String, Served> {
        let mut records: HashMap<usize, Records> = HashMap::new();
        let mut served = BTreeMap::new();
        for client in &self.clients {
            let Some(view) = self.views.get(client.view) else { continue };
            let records = records.entry(client.view).or_insert_with(|| {
                Arc::new(
                    view.records
                        .iter()
                        .flat_map(|(name, addresses)| addresses.iter().map(move |address| (name.clone(), *address)))
                        .collect(),
                )
            });
            served.insert(client.container.clone(), Served { records: Arc::clone(records), upstream: view.upstream });
        }
        served
    }
}

/// The digest by which the server acknowledges a zone file: of its bytes, as it read them.
pub fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().take(16).map(|byte| format!("{byte:02x}")).collect()
}
