//! A container's link to a network: a veth pair whose host end is a port of the network's
//! bridge, locked to the container's MAC address, and whose container end holds the
//! container's address (and, on an isolated network, the route to its subnet).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute, LinkInfo,
};
use rtnetlink::packet_route::neighbour::{NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::{Executor, Outcome, index_of, no_ipv6_addresses, remove_address, replace_address, set_up};
use crate::kernel::error::{io_error, is_absent};
use crate::kernel::label;
use crate::state::{Link, NO_ADDRESS, bridge_ifname, container_mac};

impl Executor<'_> {
    pub(super) async fn create_link(&self, link: &Link) -> Outcome {
        let host = &self.kernel.host;
        let connected = self.namespace(&link.container).await?;
        let bridge = index_of(host, &bridge_ifname(&self.scope.stack, &link.network)).await?;
        // The peer is made directly inside the container's namespace. Neither end can be
        // set up in this message: the peer is not ready yet. The namespace's file is open
        // only for this message: an apply of thousands of containers keeps a connection
        // to each, and a file as well would double the files it holds.
        let namespace = self.namespace_file(&link.container)?;
        let peer = LinkUnspec::new_with_name(&link.ifname)
            .address(container_mac(link.address.addr()).to_vec())
            .setns_by_fd(std::os::fd::AsRawFd::as_raw_fd(&namespace));
        let message = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(link.host_ifname.clone())
            .link_group(self.scope.group)
            .controller(bridge)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .build();
        host.link().add(message).execute().await.map_err(io_error)?;
        drop(namespace);
        let index = index_of(&connected.handle, &link.ifname).await?;
        replace_address(&connected.handle, index, NO_ADDRESS, link.address, link.subnet_via.is_some()).await?;
        set_up(&connected.handle, index).await?;
        route_subnet(&connected.handle, index, link).await?;
        no_ipv6_addresses(host, &link.host_ifname).await?;
        self.label_link(link, None).await
    }

    pub(super) async fn update_link(&self, before: &Link, after: &Link) -> Outcome {
        if !before.attached {
            let bridge = index_of(&self.kernel.host, &bridge_ifname(&self.scope.stack, &after.network)).await?;
            let message = LinkUnspec::new_with_name(&after.host_ifname).controller(bridge).build();
            self.kernel.host.link().set(message).execute().await.map_err(io_error)?;
        }
        let connected = self.namespace(&after.container).await?;
        let index = index_of(&connected.handle, &after.ifname).await?;
        // Whether the address brings its own subnet route is one of its flags: a
        // change of isolation takes the address away and gives it back.
        let before_address = if before.subnet_via.is_some() == after.subnet_via.is_some() {
            before.address
        } else {
            remove_address(&connected.handle, index, before.address).await?;
            NO_ADDRESS
        };
        if let Some(gateway) = before.subnet_via.filter(|_| after.subnet_via.is_none()) {
            let route = subnet_route(index, before.address.trunc(), gateway);
            match connected.handle.route().del(route).execute().await.map_err(io_error) {
                Err(error) if !is_absent(&error) => return Err(error),
                _ => {}
            }
        }
        let routed = after.subnet_via.is_some();
        replace_address(&connected.handle, index, before_address, after.address, routed).await?;
        let mac = container_mac(after.address.addr()).to_vec();
        let message = LinkUnspec::new_with_index(index).address(mac).up().build();
        connected.handle.link().set(message).execute().await.map_err(io_error)?;
        // A route on link needs its interface up.
        route_subnet(&connected.handle, index, after).await?;
        self.label_link(after, Some(before.address)).await
    }

    /// Deletes the host end, which takes the container's end with it.
    pub(super) async fn delete_link(&self, link: &Link) -> Outcome {
        self.delete_host_interface(&link.host_ifname).await
    }

    /// Makes the bridge send the container's MAC address only to its port, whatever frames
    /// other ports send: the bridge learns nothing from the port and floods it no frame
    /// for an unknown address, and the address is a static entry on the port (moved there
    /// from a port that held it before; the entry of the address the link had `before` is
    /// removed). The firewall drops frames from any other address.
    async fn lock_port(&self, link: &Link, before: Option<Ipv4Net>) -> Outcome {
        let host = &self.kernel.host;
        let settings = vec![InfoBridgePort::Learning(false), InfoBridgePort::UnicastFlood(false)];
        let port = LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(settings)),
        ]);
        let message = LinkUnspec::new_with_name(&link.host_ifname).append_extra_attribute(port).build();
        // A port's settings go in `RTM_NEWLINK`: `RTM_SETLINK` ignores them.
        host.link().set_port(message).execute().await.map_err(io_error)?;
        let index = index_of(host, &link.host_ifname).await?;
        let mac = container_mac(link.address.addr());
        let mut entry = host.neighbours().add_bridge(index, &mac).state(NeighbourState::Noarp).replace();
        entry.message_mut().header.flags = NeighbourFlags::Controller;
        entry.execute().await.map_err(io_error)?;
        // The entry of the address the container had before, if it changed.
        if let Some(before) = before.filter(|before| before.addr() != link.address.addr()) {
            let mut message = NeighbourMessage::default();
            message.header.family = AddressFamily::Bridge;
            message.header.ifindex = index;
            message.header.flags = NeighbourFlags::Controller;
            message.attributes.push(NeighbourAttribute::LinkLayerAddress(container_mac(before.addr()).to_vec()));
            match host.neighbours().del(message).execute().await.map_err(io_error) {
                Err(error) if !is_absent(&error) => return Err(error),
                _ => {}
            }
        }
        Ok(())
    }

    /// Locks the link's port to the container's MAC address (see `lock_port`), labels it
    /// and sets it up.
    async fn label_link(&self, link: &Link, before: Option<Ipv4Net>) -> Outcome {
        self.lock_port(link, before).await?;
        let label = label::link_label(&self.scope.stack, &link.container, &link.network);
        let message = LinkUnspec::new_with_name(&link.host_ifname).alias(label).up().build();
        self.kernel.host.link().set(message).execute().await.map_err(io_error)
    }
}

/// On an isolated network, routes the link's subnet through its gateway; its interface must
/// be up, since the route is on link.
async fn route_subnet(handle: &Handle, index: u32, link: &Link) -> Outcome {
    let Some(gateway) = link.subnet_via else { return Ok(()) };
    let route = subnet_route(index, link.address.trunc(), gateway);
    handle.route().add(route).replace().execute().await.map_err(io_error)
}

/// Routes a link's subnet through `gateway`, on link.
fn subnet_route(index: u32, subnet: Ipv4Net, gateway: Ipv4Addr) -> rtnetlink::packet_route::route::RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(subnet.network(), subnet.prefix_len())
        .gateway(gateway)
        .output_interface(index)
        .onlink()
        .build()
}
