//! The stack's links: each host end that is the stack's, with its peer in the container's
//! namespace.

use std::collections::HashMap;

use ipnet::Ipv4Net;

use super::{NamespaceView, Owned};
use crate::kernel::dump::{Interface, Snapshot};
use crate::state::{KernelState, Key, Link, NO_ADDRESS, Resource, container_mac};

/// Puts the stack's links into `state`, given the bridges' indices by network; returns the
/// network of each container interface, by container and interface name, for the default
/// routes.
pub(super) fn read(
    host: &Snapshot,
    owned: &[Owned],
    namespaces: &[NamespaceView],
    bridges: &HashMap<&str, u32>,
    state: &mut KernelState,
) -> HashMap<(String, String), String> {
    let mut networks = HashMap::new();
    let views: HashMap<&str, &NamespaceView> = namespaces.iter().map(|view| (view.container.as_str(), view)).collect();
    for Owned { interface: host_end, key, .. } in owned {
        let Key::Link { container, network } = key else { continue };
        let peer =
            views.get(container.as_str()).and_then(|view| Some((view, host_end.peer?))).and_then(|(view, peer)| {
                view.snapshot.interfaces.iter().find(|interface| interface.index == peer).map(|peer| (view, peer))
            });
        let ifname = peer.map_or_else(String::new, |(_, peer)| peer.name.clone());
        let address = peer.and_then(|(view, peer)| view.snapshot.address_of(peer.index)).unwrap_or(NO_ADDRESS);
        // The route to the link's subnet through a gateway, on an isolated network.
        let subnet_via = peer.and_then(|(view, peer)| {
            view.snapshot
                .routes
                .iter()
                .find(|route| {
                    route.interface == Some(peer.index) && route.destination == address.trunc() && address != NO_ADDRESS
                })
                .and_then(|route| route.gateway)
        });
        networks.insert((container.clone(), ifname.clone()), network.clone());
        state.insert(Resource::Link(Link {
            container: container.clone(),
            network: network.clone(),
            ifname,
            host_ifname: host_end.name.clone(),
            address,
            attached: host_end.controller.is_some()
                && host_end.controller == bridges.get(network.as_str()).copied()
                && locked(host, host_end, peer.map(|(_, peer)| peer), address),
            up: host_end.up && peer.is_some_and(|(_, peer)| peer.up),
            subnet_via,
        }));
    }
    networks
}

/// Whether a container's port is locked to the container's MAC address: the container's
/// end carries it, the bridge holds it as a static entry on the port, learns nothing from
/// the port and floods it no frame for an unknown address. Anything less is a port to
/// lock again.
fn locked(host: &Snapshot, host_end: &Interface, peer: Option<&Interface>, address: Ipv4Net) -> bool {
    let mac = container_mac(address.addr());
    peer.is_some_and(|peer| peer.mac == Some(mac))
        && host_end.learning == Some(false)
        && host_end.unicast_flood == Some(false)
        && host.forwarding.contains(&(host_end.index, mac))
}
