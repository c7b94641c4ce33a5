//! The stack's bridges, from the host's interfaces that are the stack's.

use std::collections::HashMap;

use super::Owned;
use crate::kernel::dump::Snapshot;
use crate::model::Isolation;
use crate::state::{Bridge, InetConf, KernelState, Key, NO_ADDRESS, Resource};

/// Puts the stack's bridges into `state`; returns each one's interface index by network,
/// which says whether a link is attached to its network's bridge.
pub(super) fn read<'a>(host: &Snapshot, owned: &'a [Owned], state: &mut KernelState) -> HashMap<&'a str, u32> {
    let mut bridges = HashMap::new();
    for Owned { interface, key, label } in owned {
        if let Key::Bridge { network } = key {
            bridges.insert(network.as_str(), interface.index);
            state.insert(Resource::Bridge(Bridge {
                network: network.clone(),
                ifname: interface.name.clone(),
                address: host.address_of(interface.index).unwrap_or(NO_ADDRESS),
                virtual_addresses: host.virtual_addresses_of(interface.index),
                internal: label.as_ref().is_some_and(|label| label.internal),
                isolation: label.as_ref().map_or(Isolation::default(), |label| label.isolation),
                up: interface.up,
                // Unread, it is a setting to make again.
                conf: interface.inet_conf.unwrap_or(InetConf {
                    forwarding: false,
                    send_redirects: true,
                    route_localnet: false,
                }),
            }));
        }
    }
    bridges
}
