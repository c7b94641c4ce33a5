//! A network's bridge in the host namespace: created down with its addresses, then labelled
//! and set up with the settings its network's policy needs.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use rtnetlink::packet_core::DefaultNla;
use rtnetlink::packet_route::link::{AfSpecInet, AfSpecUnspec, LinkAttribute};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec};
use sha2::{Digest, Sha256};

use super::{Executor, Outcome, index_of, no_ipv6_addresses, remove_address, replace_address};
use crate::kernel::error::io_error;
use crate::kernel::label;
use crate::state::{Bridge, InetConf, NO_ADDRESS};

impl Executor<'_> {
    pub(super) async fn create_bridge(&self, bridge: &Bridge) -> Outcome {
        let host = &self.kernel.host;
        // Created down and without IPv6 addresses; a pinned MAC address keeps the bridge's
        // address stable as ports come and go (a changing bridge MAC stalls ARP).
        let message = LinkMessageBuilder::<LinkBridge>::new(&bridge.ifname)
            .link_group(self.scope.group)
            .address(mac_address(&bridge.ifname))
            .build();
        host.link().add(message).execute().await.map_err(io_error)?;
        no_ipv6_addresses(host, &bridge.ifname).await?;
        let index = index_of(host, &bridge.ifname).await?;
        replace_address(host, index, NO_ADDRESS, bridge.address, false).await?;
        for address in &bridge.virtual_addresses {
            replace_address(host, index, NO_ADDRESS, single(*address), false).await?;
        }
        self.label_bridge(bridge).await
    }

    pub(super) async fn update_bridge(&self, before: &Bridge, after: &Bridge) -> Outcome {
        let index = index_of(&self.kernel.host, &after.ifname).await?;
        replace_address(&self.kernel.host, index, before.address, after.address, false).await?;
        for gone in before.virtual_addresses.iter().filter(|address| !after.virtual_addresses.contains(address)) {
            remove_address(&self.kernel.host, index, single(*gone)).await?;
        }
        for added in after.virtual_addresses.iter().filter(|address| !before.virtual_addresses.contains(address)) {
            replace_address(&self.kernel.host, index, NO_ADDRESS, single(*added), false).await?;
        }
        self.label_bridge(after).await
    }

    pub(super) async fn delete_bridge(&self, bridge: &Bridge) -> Outcome {
        self.delete_host_interface(&bridge.ifname).await
    }

    /// Labels the bridge and sets it up, with the IPv4 settings its network's policy needs
    /// (its `conf`). The stack's firewall is in place before this runs: the
    /// planner makes rules before the objects they govern.
    async fn label_bridge(&self, bridge: &Bridge) -> Outcome {
        let label = label::bridge_label(&self.scope.stack, &bridge.network, bridge.internal, bridge.isolation);
        let message = LinkUnspec::new_with_name(&bridge.ifname)
            .alias(label)
            .up()
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(vec![inet_conf(bridge.conf)])]))
            .build();
        self.kernel.host.link().set(message).execute().await.map_err(io_error)
    }
}

/// A bridge's `net.ipv4.conf.<bridge>` settings (see [`InetConf`]), as one netlink
/// attribute. The crate's typed request leaves out values of 0, so `IFLA_INET_CONF` is
/// written out here: nested (id, u32 value) pairs.
fn inet_conf(conf: InetConf) -> AfSpecInet {
    const IFLA_INET_CONF: u16 = 1;
    const NLA_F_NESTED: u16 = 0x8000;
    const FORWARDING: u16 = 1;
    const SEND_REDIRECTS: u16 = 6;
    const ROUTE_LOCALNET: u16 = 26;
    let settings =
        [(FORWARDING, conf.forwarding), (SEND_REDIRECTS, conf.send_redirects), (ROUTE_LOCALNET, conf.route_localnet)];
    let mut value = Vec::with_capacity(8 * settings.len());
    for (id, setting) in settings {
        value.extend_from_slice(&8u16.to_ne_bytes());
        value.extend_from_slice(&id.to_ne_bytes());
        value.extend_from_slice(&u32::from(setting).to_ne_bytes());
    }
    AfSpecInet::Other(DefaultNla::new(IFLA_INET_CONF | NLA_F_NESTED, value))
}

/// A virtual address as the bridge holds it: alone, so it brings no route of its own.
fn single(address: Ipv4Addr) -> Ipv4Net {
    Ipv4Net::new(address, 32).expect("a /32 is a valid prefix")
}

/// A locally administered unicast MAC address derived from the interface name.
fn mac_address(ifname: &str) -> Vec<u8> {
    let digest = Sha256::digest(ifname.as_bytes());
    vec![0x02, digest[0], digest[1], digest[2], digest[3], digest[4]]
}
