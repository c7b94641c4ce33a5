//! Every zone of a host, arranged for answering: the view of each client found in one
//! lookup, and every name and address of every stack, so that a name a client may not see
//! is answered as absent instead of being asked of the world.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use super::zone::{View, Zone};

/// What one client sees, with names in lower case: names match without regard to case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Lookup {
    pub records: HashMap<String, Vec<Ipv4Addr>>,
    pub reverse: HashMap<Ipv4Addr, String>,
    pub upstream: bool,
}

/// The zones of every stack on a host, ready to answer from.
#[derive(Debug, Clone, Default)]
pub struct Index {
    clients: HashMap<(Ipv4Addr, Ipv4Addr), Arc<Lookup>>,
    names: HashSet<String>,
    addresses: HashSet<Ipv4Addr>,
    gateways: BTreeSet<Ipv4Addr>,
}

impl Index {
    /// The index of `zones`. A client that two zones claim (two stacks that declared the
    /// same subnet) sees the view of the first zone in `zones`.
    pub fn build<'a>(zones: impl IntoIterator<Item = &'a Zone>) -> Index {
        let mut index = Index::default();
        for zone in zones {
            let lookups: Vec<Arc<Lookup>> = zone.views.iter().map(|view| Arc::new(lookup(view))).collect();
            for lookup in &lookups {
                index.names.extend(lookup.records.keys().cloned());
                index.addresses.extend(lookup.reverse.keys().copied());
            }
            index.names.extend(zone.isolated.iter().map(|name| name.to_ascii_lowercase()));
            index.gateways.extend(zone.gateways.iter().copied());
            for client in &zone.clients {
                if let Some(lookup) = lookups.get(client.view) {
                    index.clients.entry((client.gateway, client.source)).or_insert_with(|| Arc::clone(lookup));
                }
            }
        }
        index
    }

    /// What the client at `source` sees when it asks at `local`; `None` for anyone who is
    /// not a container of a stack on that gateway's network.
    pub(super) fn client(&self, local: Ipv4Addr, source: Ipv4Addr) -> Option<&Lookup> {
        self.clients.get(&(local, source)).map(Arc::as_ref)
    }

    /// Whether `source` is a container that may ask at `local`: anyone else's connection
    /// is closed before it is read.
    pub fn knows(&self, local: Ipv4Addr, source: Ipv4Addr) -> bool {
        self.clients.contains_key(&(local, source))
    }

    /// Whether any stack on the host has this name (in lower case).
    pub fn has_name(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Whether any stack on the host answers for this address.
    pub fn has_address(&self, address: Ipv4Addr) -> bool {
        self.addresses.contains(&address)
    }

    /// The addresses to listen on: every gateway of every zone.
    pub fn gateways(&self) -> &BTreeSet<Ipv4Addr> {
        &self.gateways
    }
}

fn lookup(view: &View) -> Lookup {
    let mut records: HashMap<String, Vec<Ipv4Addr>> = HashMap::new();
    for (name, addresses) in &view.records {
        let merged = records.entry(name.to_ascii_lowercase()).or_default();
        merged.extend(addresses);
        merged.sort_unstable();
        merged.dedup();
    }
    Lookup {
        records,
        reverse: view.reverse.iter().map(|(address, name)| (*address, name.clone())).collect(),
        upstream: view.upstream,
    }
}
