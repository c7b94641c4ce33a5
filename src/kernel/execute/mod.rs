//! Making one operation of a plan: the netlink requests and file writes it takes.
//!
//! Each creation ends by labelling the object, together with setting it up, so that an
//! object without its label is one whose creation was interrupted: it is down, and the
//! next plan changes it in place. Deleting what is already gone counts as done.
//!
//! Each kind the executor makes has its create, update and delete in its own file
//! (`bridge.rs`, `namespace.rs`, `link.rs`, `route.rs`, `hosts.rs`, `sysctl.rs`); this one
//! dispatches by kind and holds what several kinds share.

mod bridge;
mod hosts;
mod link;
mod namespace;
mod route;
mod sysctl;

use std::io;
use std::sync::Arc;

use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use rtnetlink::packet_route::link::{AfSpecInet6, AfSpecUnspec, In6AddrGenMode, LinkAttribute};
use rtnetlink::{Handle, LinkUnspec};

use super::error::{KernelError, io_error, is_absent};
use super::{Connected, Kernel, netns};
use crate::plan::{AdoptedFacts, AdoptedPath, Operation, Stranded};
use crate::state::{NO_ADDRESS, NamespaceName, Resource, Scope};

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
            Resource::Sysctl(sysctl) => self.set_sysctl(sysctl),
            Resource::Stray(_)
            | Resource::Policy(_)
            | Resource::Forward(_)
            | Resource::Flow(_)
            | Resource::Alias(_) => unreachable!("{}", IN_RULES_STEPS),
        }
    }

    async fn update(&self, before: &Resource, after: &Resource) -> Outcome {
        match (before, after) {
            (Resource::Bridge(before), Resource::Bridge(after)) => self.update_bridge(before, after).await,
            (Resource::Namespace(_), Resource::Namespace(namespace)) => self.update_namespace(namespace).await,
            (Resource::Link(before), Resource::Link(after)) => self.update_link(before, after).await,
            (Resource::Route(_), Resource::Route(route)) => self.set_route(route).await,
            (Resource::Hosts(_), Resource::Hosts(hosts)) => self.write_hosts(hosts),
            (Resource::Sysctl(_), Resource::Sysctl(sysctl)) => self.set_sysctl(sysctl),
            _ => unreachable!("{}", IN_RULES_STEPS),
        }
    }

    async fn delete(&self, resource: &Resource) -> Outcome {
        match resource {
            Resource::Bridge(bridge) => self.delete_bridge(bridge).await,
            Resource::Link(link) => self.delete_link(link).await,
            Resource::Namespace(namespace) => self.delete_namespace(namespace).await,
            Resource::Route(route) => self.delete_route(route).await,
            Resource::Hosts(hosts) => self.remove_name_files(&hosts.container),
            Resource::Sysctl(sysctl) => self.restore_sysctl(sysctl),
            Resource::Stray(_)
            | Resource::Policy(_)
            | Resource::Forward(_)
            | Resource::Flow(_)
            | Resource::Alias(_) => unreachable!("{}", IN_RULES_STEPS),
        }
    }

    /// Deletes an interface of the host namespace by name.
    async fn delete_host_interface(&self, ifname: &str) -> Outcome {
        let message = LinkUnspec::new_with_name(ifname).build();
        self.kernel.host.link().del_with_message(message).execute().await.map_err(io_error)
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
