//! A container's default route, from its namespace's routes.

use std::collections::HashMap;

use super::NamespaceView;
use crate::state::Route;

/// The container's default route, if it has one, on the network of the interface it goes
/// through (`networks`, by container and interface name, from the links).
pub(super) fn read(view: &NamespaceView, networks: &HashMap<(String, String), String>) -> Option<Route> {
    let default = view.snapshot.routes.iter().find(|route| route.destination.prefix_len() == 0)?;
    let (gateway, index) = (default.gateway?, default.interface?);
    let ifname = view
        .snapshot
        .interfaces
        .iter()
        .find(|interface| interface.index == index)
        .map_or_else(String::new, |interface| interface.name.clone());
    // A route through an interface that is not the stack's belongs to no network.
    let network = networks.get(&(view.container.clone(), ifname.clone())).cloned().unwrap_or_default();
    Some(Route { container: view.container.clone(), network, gateway, ifname })
}
