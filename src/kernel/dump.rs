//! Reading a namespace's interfaces, IPv4 addresses and IPv4 routes as plain values.

use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::Handle;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    AfSpecInet, AfSpecInet6, AfSpecUnspec, InfoBridgePort, InfoKind, InfoPortData, LinkAttribute, LinkFlags, LinkInfo,
    LinkMessage,
};
use rtnetlink::packet_route::neighbour::{NeighbourAttribute, NeighbourMessage, NeighbourState};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType};

use crate::state::InetConf;

/// One interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    pub index: u32,
    pub name: String,
    pub alias: Option<String>,
    pub group: u32,
    pub up: bool,
    pub bridge: bool,
    /// The bridge it is a port of.
    pub controller: Option<u32>,
    /// For a veth end, the index of its peer (in the peer's namespace).
    pub peer: Option<u32>,
    pub mac: Option<[u8; 6]>,
    /// For a bridge port, whether the bridge learns MAC addresses from it and floods it
    /// frames for unknown ones; `None` when the kernel did not say (its default is on).
    pub learning: Option<bool>,
    pub unicast_flood: Option<bool>,
    /// Its IPv4 settings (`net.ipv4.conf.<interface>`), when it has IPv4.
    pub inet_conf: Option<InetConf>,
    /// Whether IPv6 is off on it (`net.ipv6.conf.<interface>.disable_ipv6`), when the
    /// kernel says.
    pub ipv6_disabled: Option<bool>,
}

/// An IPv4 route of the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteEntry {
    pub destination: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    pub interface: Option<u32>,
}

/// Everything read from one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub interfaces: Vec<Interface>,
    /// IPv4 addresses with their prefix, by interface index.
    pub addresses: Vec<(u32, Ipv4Net)>,
    pub routes: Vec<RouteEntry>,
    /// The static entries of its bridges' forwarding databases (see [`static_forwarding`]);
    /// read for the host namespace only.
    pub forwarding: Vec<(u32, [u8; 6])>,
}

impl Snapshot {
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|interface| interface.name == name)
    }

    /// The first IPv4 address of an interface.
    /// The interface's address: the first one that is not a single address (`/32`), which
    /// only virtual addresses are.
    pub fn address_of(&self, index: u32) -> Option<Ipv4Net> {
        let mut addresses = self.addresses.iter().filter(|(owner, _)| *owner == index).map(|(_, address)| *address);
        let first = addresses.clone().next();
        addresses.find(|address| address.prefix_len() < 32).or(first)
    }

    /// The single addresses (`/32`) of a bridge besides its own: its aliases' virtual
    /// addresses, sorted.
    pub fn virtual_addresses_of(&self, index: u32) -> Vec<std::net::Ipv4Addr> {
        let own = self.address_of(index);
        let mut addresses: Vec<std::net::Ipv4Addr> = self
            .addresses
            .iter()
            .filter(|(owner, address)| *owner == index && address.prefix_len() == 32 && Some(*address) != own)
            .map(|(_, address)| address.addr())
            .collect();
        addresses.sort_unstable();
        addresses
    }
}

/// Reads the interfaces, addresses and main-table routes of the namespace `handle` talks to.
/// The three dumps run one after the other: a netlink socket holds one dump at a time, and
/// answers a second with `EBUSY`.
pub async fn snapshot(handle: &Handle) -> Result<Snapshot, rtnetlink::Error> {
    let interfaces = handle.link().get().execute().map_ok(interface).try_collect::<Vec<_>>().await?;
    let addresses = handle
        .address()
        .get()
        .execute()
        .try_filter_map(|message| async move { Ok(address(&message)) })
        .try_collect::<Vec<_>>()
        .await?;
    let routes = handle
        .route()
        .get(
            rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new()
                .table_id(0)
                .protocol(RouteProtocol::Unspec)
                .kind(RouteType::Unspec)
                .build(),
        )
        .execute()
        .try_filter_map(|message| async move { Ok(route(&message)) })
        .try_collect::<Vec<_>>()
        .await?;
    Ok(Snapshot { interfaces, addresses, routes, forwarding: Vec::new() })
}

/// The static entries of the bridges' forwarding databases: (port index, MAC address).
pub async fn static_forwarding(handle: &Handle) -> Result<Vec<(u32, [u8; 6])>, rtnetlink::Error> {
    handle
        .neighbours()
        .get()
        .set_address_family(AddressFamily::Bridge)
        .execute()
        .try_filter_map(|message| async move { Ok(static_entry(&message)) })
        .try_collect()
        .await
}

/// The bridge marks its own entries with the bridge's index (`NDA_MASTER`); static ones
/// are `NUD_NOARP` (learned ones are reachable or stale, the ports' own permanent).
fn static_entry(message: &NeighbourMessage) -> Option<(u32, [u8; 6])> {
    let held = message.attributes.iter().any(|attribute| matches!(attribute, NeighbourAttribute::Controller(_)));
    let mac = message.attributes.iter().find_map(|attribute| match attribute {
        NeighbourAttribute::LinkLayerAddress(mac) => mac.as_slice().try_into().ok(),
        _ => None,
    })?;
    (held && message.header.state == NeighbourState::Noarp).then_some((message.header.ifindex, mac))
}

fn interface(message: LinkMessage) -> Interface {
    let mut interface = Interface {
        index: message.header.index,
        up: message.header.flags.contains(LinkFlags::Up),
        ..Interface::default()
    };
    for attribute in message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => interface.name = name,
            LinkAttribute::IfAlias(alias) => interface.alias = Some(alias),
            LinkAttribute::Group(group) => interface.group = group,
            LinkAttribute::Controller(index) => interface.controller = Some(index),
            LinkAttribute::Link(index) => interface.peer = Some(index),
            LinkAttribute::Address(mac) => interface.mac = mac.try_into().ok(),
            LinkAttribute::AfSpecUnspec(families) => {
                for family in families {
                    match family {
                        AfSpecUnspec::Inet(settings) => {
                            for setting in settings {
                                if let AfSpecInet::DevConf(conf) = setting {
                                    interface.inet_conf = Some(InetConf {
                                        forwarding: conf.forwarding != 0,
                                        send_redirects: conf.send_redirects != 0,
                                        route_localnet: conf.route_localnet != 0,
                                    });
                                }
                            }
                        }
                        AfSpecUnspec::Inet6(settings) => {
                            for setting in settings {
                                if let AfSpecInet6::DevConf(conf) = setting {
                                    interface.ipv6_disabled = Some(conf.disable_ipv6 != 0);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(InfoKind::Bridge) => interface.bridge = true,
                        LinkInfo::PortData(InfoPortData::BridgePort(settings)) => {
                            for setting in settings {
                                match setting {
                                    InfoBridgePort::Learning(on) => interface.learning = Some(on),
                                    InfoBridgePort::UnicastFlood(on) => interface.unicast_flood = Some(on),
                                    _ => {}
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    interface
}

fn address(message: &AddressMessage) -> Option<(u32, Ipv4Net)> {
    if message.header.family != AddressFamily::Inet {
        return None;
    }
    message.attributes.iter().find_map(|attribute| match attribute {
        AddressAttribute::Local(IpAddr::V4(address)) | AddressAttribute::Address(IpAddr::V4(address)) => {
            Some((message.header.index, Ipv4Net::new(*address, message.header.prefix_len).ok()?))
        }
        _ => None,
    })
}

/// Only the main table's routes: the stack's are there, and the host's routed subnets that
/// automatic subnets must avoid.
fn route(message: &RouteMessage) -> Option<RouteEntry> {
    const MAIN: u8 = 254;
    let table = message.attributes.iter().find_map(|attribute| match attribute {
        RouteAttribute::Table(table) => Some(*table),
        _ => None,
    });
    if table.unwrap_or(u32::from(message.header.table)) != u32::from(MAIN) {
        return None;
    }
    let mut entry = RouteEntry {
        destination: Ipv4Net::new(Ipv4Addr::UNSPECIFIED, message.header.destination_prefix_length).ok()?,
        gateway: None,
        interface: None,
    };
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(RouteAddress::Inet(address)) => {
                entry.destination = Ipv4Net::new(*address, message.header.destination_prefix_length).ok()?;
            }
            RouteAttribute::Gateway(RouteAddress::Inet(address)) => entry.gateway = Some(*address),
            RouteAttribute::Oif(index) => entry.interface = Some(*index),
            _ => {}
        }
    }
    Some(entry)
}
