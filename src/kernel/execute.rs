//! Making one operation of a plan: the netlink requests and file writes it takes.
//!
//! Each creation ends by labelling the object, together with setting it up, so that an
//! object without its label is one whose creation was interrupted: it is down, and the
//! next plan changes it in place. Deleting what is already gone counts as done.

use std::io;
use std::net::Ipv4Addr;
use std::sync::Arc;

use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_core::DefaultNla;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use rtnetlink::packet_route::link::{
    AfSpecInet, AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoBridgePort, InfoData, InfoKind, InfoPortData,
    InfoPortKind, InfoVeth, LinkAttribute, LinkInfo,
};
use rtnetlink::packet_route::neighbour::{NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};
use sha2::{Digest, Sha256};

use super::error::{KernelError, io_error, is_absent};
use super::writing::{Access, Holder, directory, write_file};
use super::{Connected, Kernel, hosts_file, label, netns, processes, sysctl};
use crate::names::render_resolv_conf;
use crate::plan::{AdoptedFacts, AdoptedPath, Operation, Stranded};
use crate::state::{
    Bridge, Hosts, Link, NO_ADDRESS, Namespace, NamespaceName, Resource, Route, Scope, bridge_ifname, container_mac,
};

pub struct Executor<'k> {
    pub kernel: &'k Kernel,
    pub scope: &'k Scope,
    /// The processes in namespaces the plan deletes, and whether to end them first.
    pub stranded: &'k Stranded,
    /// What the adopted paths led to when the plan was checked against them.
    pub adopted: &'k AdoptedFacts,
}

type Outcome = Result<(), io::Error>;

impl Executor<'_> {
    /// Makes one operation, naming it and its object when the kernel refuses.
    pub async fn run(&self, operation: &Operation) -> Result<(), KernelError> {
        let (verb, resource) = match operation {
            Operation::Create { resource } => ("create", resource),
            Operation::Update { after, .. } => ("change", after),
            Operation::Delete { resource } => ("delete", resource),
        };
        let outcome = match operation {
            Operation::Create { resource } => self.create(resource).await,
            Operation::Update { before, after } => self.update(before, after).await,
            Operation::Delete { resource } => match self.delete(resource).await {
                Err(error) if is_absent(&error) => Ok(()),
                outcome => outcome,
            },
        };
        outcome.map_err(|error| KernelError::new(format!("{verb} {}", resource.kind().name()), object(resource), error))
    }

    async fn create(&self, resource: &Resource) -> Outcome {
        match resource {
            Resource::Bridge(bridge) => self.create_bridge(bridge).await,
            Resource::Namespace(namespace) => self.create_namespace(namespace).await,
            Resource::Link(link) => self.create_link(link).await,
            Resource::Route(route) => self.set_route(route).await,
            Resource::Hosts(hosts) => self.write_hosts(hosts),
            Resource::Sysctl(sysctl) => sysctl::write(self.kernel.host_file.as_ref(), sysctl, &sysctl.value),
            Resource::Stray(_)
            | Resource::Policy(_)
            | Resource::Forward(_)
            | Resource::Flow(_)
            | Resource::Alias(_) => unreachable!("{}", IN_RULES_STEPS),
        }
    }

    async fn update(&self, before: &Resource, after: &Resource) -> Outcome {
        match (before, after) {
            (Resource::Bridge(before), Resource::Bridge(after)) => {
                let index = index_of(&self.kernel.host, &after.ifname).await?;
                replace_address(&self.kernel.host, index, before.address, after.address, false).await?;
                for gone in before.virtual_addresses.iter().filter(|address| !after.virtual_addresses.contains(address))
                {
                    remove_address(&self.kernel.host, index, single(*gone)).await?;
                }
                for added in
                    after.virtual_addresses.iter().filter(|address| !before.virtual_addresses.contains(address))
                {
                    replace_address(&self.kernel.host, index, NO_ADDRESS, single(*added), false).await?;
                }
                self.label_bridge(after).await
            }
            (Resource::Namespace(_), Resource::Namespace(namespace)) => {
                let connected = self.namespace(&namespace.container).await?;
                set_up(&connected.handle, 1).await
            }
            (Resource::Link(before), Resource::Link(after)) => {
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
            (Resource::Route(_), Resource::Route(route)) => self.set_route(route).await,
            (Resource::Hosts(_), Resource::Hosts(hosts)) => self.write_hosts(hosts),
            (Resource::Sysctl(_), Resource::Sysctl(sysctl)) => {
                sysctl::write(self.kernel.host_file.as_ref(), sysctl, &sysctl.value)
            }
            _ => unreachable!("{}", IN_RULES_STEPS),
        }
    }

    async fn delete(&self, resource: &Resource) -> Outcome {
        match resource {
            Resource::Bridge(Bridge { ifname, .. }) | Resource::Link(Link { host_ifname: ifname, .. }) => {
                let message = LinkUnspec::new_with_name(ifname).build();
                self.kernel.host.link().del_with_message(message).execute().await.map_err(io_error)
            }
            Resource::Namespace(namespace) => {
                self.kernel.forget(&namespace.container);
                // Names that were not observed (their server was gone) are not deleted on
                // their own: their files go with the namespace.
                self.remove_name_files(&namespace.container)?;
                // An adopted namespace belongs to whoever made it: it is released, never deleted.
                if namespace.adopted {
                    return Ok(());
                }
                let path = self.kernel.places.netns.join(&namespace.name);
                // The user's processes inside, when the user asked for them to be ended: as
                // they are now, with those started since the plan was read (a swap's drain
                // can last minutes).
                if self.stranded.ends() {
                    let inside = path.clone();
                    tokio::task::spawn_blocking(move || processes::end(&inside, &processes::running_at(&inside)?))
                        .await
                        .map_err(io::Error::other)??;
                }
                netns::delete(&path)
            }
            Resource::Route(route) => {
                let Some(connected) = self.kernel.connection(&route.container) else { return Ok(()) };
                let message = RouteMessageBuilder::<Ipv4Addr>::new().gateway(route.gateway).build();
                connected.handle.route().del(message).execute().await.map_err(io_error)
            }
            Resource::Hosts(hosts) => self.remove_name_files(&hosts.container),
            // Given back as it was before; an unknown value is left as it is.
            Resource::Sysctl(sysctl) => match &sysctl.before {
                Some(before) => sysctl::write(self.kernel.host_file.as_ref(), sysctl, before),
                None => Ok(()),
            },
            Resource::Stray(_)
            | Resource::Policy(_)
            | Resource::Forward(_)
            | Resource::Flow(_)
            | Resource::Alias(_) => unreachable!("{}", IN_RULES_STEPS),
        }
    }

    async fn create_bridge(&self, bridge: &Bridge) -> Outcome {
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

    /// Labels the bridge and sets it up, with the IPv4 settings its network's policy needs
    /// (see `bridge_settings`). The stack's firewall is in place before this runs: the
    /// planner makes rules before the objects they govern.
    async fn label_bridge(&self, bridge: &Bridge) -> Outcome {
        let label = label::bridge_label(&self.scope.stack, &bridge.network, bridge.internal, bridge.isolation);
        let message = LinkUnspec::new_with_name(&bridge.ifname)
            .alias(label)
            .up()
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(vec![bridge_settings()])]))
            .build();
        self.kernel.host.link().set(message).execute().await.map_err(io_error)
    }

    async fn create_namespace(&self, namespace: &Namespace) -> Outcome {
        let runtime = self.kernel.runtime.handle();
        let (_, handle) = if namespace.adopted {
            netns::connect(self.namespace_file(&namespace.container)?, runtime).await?
        } else {
            netns::create(&self.kernel.places.netns.join(&namespace.name), runtime).await?
        };
        let connected = self.kernel.remember(&namespace.container, Connected { handle });
        // The loopback interface is always index 1 in a network namespace.
        set_up(&connected.handle, 1).await
    }

    async fn create_link(&self, link: &Link) -> Outcome {
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

    async fn set_route(&self, route: &Route) -> Outcome {
        let connected = self.namespace(&route.container).await?;
        let index = index_of(&connected.handle, &route.ifname).await?;
        // On link: on an isolated network the address brings no subnet route that would
        // make the gateway a neighbour.
        let message =
            RouteMessageBuilder::<Ipv4Addr>::new().gateway(route.gateway).output_interface(index).onlink().build();
        connected.handle.route().add(message).replace().execute().await.map_err(io_error)
    }

    /// Removes the container's hosts file and `resolv.conf`, where they are, and their
    /// directory, when nothing else is in it (another tool's files keep it).
    fn remove_name_files(&self, container: &str) -> Outcome {
        let places = &self.kernel.places;
        for path in [places.hosts_file(self.scope, container), places.resolv_conf(self.scope, container)] {
            match std::fs::remove_file(&path) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        if let Some(directory) = places.hosts_file(self.scope, container).parent() {
            let _ = std::fs::remove_dir(directory);
        }
        Ok(())
    }

    /// Writes the container's hosts file and its `resolv.conf`, which sends its programs to
    /// the name server on its gateways. The names themselves are served once apply
    /// publishes the stack's zone.
    fn write_hosts(&self, hosts: &Hosts) -> Outcome {
        let path = self.kernel.places.hosts_file(self.scope, &hosts.container);
        // The container's programs read both, whoever they run as; only root writes them.
        directory(&self.kernel.places.etc_netns, Access::Everyone, Holder::Shared)?;
        directory(path.parent().expect("a hosts file is in a directory"), Access::Everyone, Holder::Stackctl)?;
        let text = hosts_file::render(&hosts.container, &hosts.records);
        write_file(&path, text.as_bytes(), Access::Everyone)?;
        let resolv_conf = self.kernel.places.resolv_conf(self.scope, &hosts.container);
        write_file(&resolv_conf, render_resolv_conf(&hosts.nameservers).as_bytes(), Access::Everyone)
    }

    /// The connection to a container's namespace: opened while observing or creating it, or
    /// now, for a namespace that appeared since.
    async fn namespace(&self, container: &str) -> io::Result<Arc<Connected>> {
        if let Some(connected) = self.kernel.connection(container) {
            return Ok(connected);
        }
        let (_, handle) = netns::connect(self.namespace_file(container)?, self.kernel.runtime.handle()).await?;
        Ok(self.kernel.remember(container, Connected { handle }))
    }

    /// A container's namespace, open; for an adopted one, only the namespace that the plan
    /// was checked against (see [`crate::plan::unusable_namespaces`]): the path may lead
    /// elsewhere since.
    fn namespace_file(&self, container: &str) -> io::Result<std::fs::File> {
        let name =
            self.scope.namespaces.get(container).ok_or_else(|| io::Error::other("the stack has no such container"))?;
        let file = netns::open(&self.kernel.places.namespace(name))?;
        if let NamespaceName::Adopted(_) = name {
            let checked = AdoptedPath::Namespace(netns::identity(&file)?);
            if self.adopted.found.get(container) != Some(&checked) {
                return Err(io::Error::other(
                    "the path leads to another namespace than when it was checked: plan again",
                ));
            }
        }
        Ok(file)
    }
}

/// How the plan names a resource, with the kernel name that errors should show.
fn object(resource: &Resource) -> String {
    let key = resource.key();
    let kernel_name = match resource {
        Resource::Bridge(bridge) => Some(bridge.ifname.as_str()),
        Resource::Link(link) => Some(link.host_ifname.as_str()),
        Resource::Namespace(namespace) => Some(namespace.name.as_str()),
        _ => None,
    };
    match kernel_name {
        Some(name) => format!("`{}` ({name})", key.label()),
        None => format!("`{}`", key.label()),
    }
}

/// The firewall's resources are made together, in a program's `Rules` steps: its stages
/// never hold them (`plan::Program` cuts them out).
const IN_RULES_STEPS: &str = "a program makes the firewall's operations in its rule transactions, never in a stage";

async fn index_of(handle: &Handle, name: &str) -> io::Result<u32> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await.map_err(io_error)? {
        Some(link) => Ok(link.header.index),
        None => Err(io::Error::from_raw_os_error(nix::errno::Errno::ENODEV as i32)),
    }
}

async fn set_up(handle: &Handle, index: u32) -> Outcome {
    handle.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await.map_err(io_error)
}

/// Turns off IPv6 address generation on a host-side interface before it goes up: each
/// link-local address and its duplicate detection costs more than the rest of the wiring.
async fn no_ipv6_addresses(handle: &Handle, name: &str) -> Outcome {
    let mode =
        LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)])]);
    let message = LinkUnspec::new_with_name(name).append_extra_attribute(mode).build();
    match handle.link().set(message).execute().await.map_err(io_error) {
        // A host without IPv6 has nothing to turn off.
        Err(error) if error.raw_os_error() == Some(nix::errno::Errno::EAFNOSUPPORT as i32) => Ok(()),
        outcome => outcome,
    }
}

/// A bridge's `net.ipv4.conf.<bridge>` settings, as one netlink attribute:
/// - `forwarding` on: the host routes between the bridge and the rest (the firewall decides
///   what passes);
/// - `send_redirects` off: the host forwards between members of an isolated network on
///   the same interface, and must not tell them to go around it;
/// - `route_localnet` on: connections from 127.0.0.1 to published ports can be forwarded
///   (the firewall drops loopback addresses coming from containers).
///
/// The crate's typed request leaves out values of 0, so `IFLA_INET_CONF` is written out
/// here: nested (id, u32 value) pairs.
fn bridge_settings() -> AfSpecInet {
    const IFLA_INET_CONF: u16 = 1;
    const NLA_F_NESTED: u16 = 0x8000;
    const FORWARDING: u16 = 1;
    const SEND_REDIRECTS: u16 = 6;
    const ROUTE_LOCALNET: u16 = 26;
    let settings = [(FORWARDING, 1), (SEND_REDIRECTS, 0), (ROUTE_LOCALNET, 1)];
    let mut value = Vec::with_capacity(8 * settings.len());
    for (id, setting) in settings {
        value.extend_from_slice(&8u16.to_ne_bytes());
        value.extend_from_slice(&id.to_ne_bytes());
        value.extend_from_slice(&u32::to_ne_bytes(setting));
    }
    AfSpecInet::Other(DefaultNla::new(IFLA_INET_CONF | NLA_F_NESTED, value))
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

/// Takes an interface's IPv4 address away (none: nothing to do).
async fn remove_address(handle: &Handle, index: u32, address: Ipv4Net) -> Outcome {
    if address == NO_ADDRESS {
        return Ok(());
    }
    let mut addresses = handle.address().get().set_link_index_filter(index).execute();
    while let Some(found) = addresses.try_next().await.map_err(io_error)? {
        if found.header.prefix_len == address.prefix_len()
            && found.attributes.iter().any(|attribute| {
                matches!(attribute, AddressAttribute::Local(ip) if *ip == std::net::IpAddr::V4(address.addr()))
            })
        {
            return handle.address().del(found).execute().await.map_err(io_error);
        }
    }
    Ok(())
}

/// Swaps an interface's IPv4 address `before` (none: `NO_ADDRESS`) for `after`; a `routed`
/// address brings no route to its subnet (the link's subnet route goes via the gateway).
async fn replace_address(handle: &Handle, index: u32, before: Ipv4Net, after: Ipv4Net, routed: bool) -> Outcome {
    if before == after {
        return Ok(());
    }
    remove_address(handle, index, before).await?;
    let mut request = handle.address().add(index, after.addr().into(), after.prefix_len()).replace();
    if routed {
        request.message_mut().attributes.push(AddressAttribute::Flags(AddressFlags::Noprefixroute));
    }
    request.execute().await.map_err(io_error)
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
