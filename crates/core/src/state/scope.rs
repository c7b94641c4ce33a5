//! What a stack owns on a host, derived from the stack alone: where observation looks, and
//! how it tells the stack's objects from everyone else's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::allocate::{bridge_ifname, veth_ifname};
use super::{KernelState, Key};
use crate::model::name_problem;
use crate::model::{Attachment, Stack};

/// Which network namespace plays the host: the machine's own (the process's), or a named
/// one, a scratch host that keeps a trial away from the machine's network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum HostNamespace {
    #[default]
    Current,
    Named(String),
}

impl HostNamespace {
    /// A name for the host in file names: locks, records and the name server's files are
    /// per host.
    pub fn tag(&self) -> String {
        match self {
            HostNamespace::Current => "host".to_owned(),
            HostNamespace::Named(name) => format!("netns-{name}"),
        }
    }

    /// The host a directory of stackctl's run directory is for: the inverse of
    /// [`HostNamespace::tag`]; `None` for a name no tag has.
    pub fn of_tag(tag: &str) -> Option<HostNamespace> {
        match tag {
            "host" => Some(HostNamespace::Current),
            _ => tag
                .strip_prefix("netns-")
                .filter(|name| !name.is_empty())
                .map(|name| HostNamespace::Named(name.to_owned())),
        }
    }
}

/// The stack's ownership marks and the names it derives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub stack: String,
    /// The host the stack is applied on: its containers' namespaces carry the name of a
    /// named host, so that one stack runs on several hosts of one machine at once.
    pub host: HostNamespace,
    /// The interface group that marks the stack's interfaces. The kernel sets a group in
    /// the same message that creates the interface, so an interface is marked from its
    /// first moment, even when apply is killed before it can label it.
    pub group: u32,
    /// Every interface name the stack derives, with the resource it belongs to: bridges
    /// and the host ends of veth pairs.
    pub interfaces: BTreeMap<String, Key>,
    /// The containers' namespaces: the name under `/run/netns` for those stackctl creates,
    /// the path for those adopted from `netns:`.
    pub namespaces: BTreeMap<String, NamespaceName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum NamespaceName {
    Created(String),
    Adopted(String),
}

impl Scope {
    pub fn of(stack: &Stack, host: &HostNamespace) -> Scope {
        let mut interfaces = BTreeMap::new();
        for network in stack.networks.keys() {
            interfaces.insert(bridge_ifname(&stack.name, network), Key::Bridge { network: network.clone() });
        }
        let mut namespaces = BTreeMap::new();
        for container in stack.containers.values() {
            if container.attachment == Attachment::Host {
                continue;
            }
            namespaces.insert(
                container.name.clone(),
                match &container.netns {
                    Some(path) => NamespaceName::Adopted(path.clone()),
                    None => NamespaceName::Created(namespace_name(&stack.name, host, &container.name)),
                },
            );
            for membership in container.memberships() {
                interfaces.insert(
                    veth_ifname(&stack.name, &container.name, &membership.network),
                    Key::Link { container: container.name.clone(), network: membership.network.clone() },
                );
            }
        }
        Scope { stack: stack.name.clone(), host: host.clone(), group: group_of(&stack.name), interfaces, namespaces }
    }

    /// The prefix of the names of the namespaces that stackctl creates for this stack on
    /// its host.
    pub fn namespace_prefix(&self) -> String {
        namespace_name(&self.stack, &self.host, "")
    }

    /// The name of a container's own directory under `/etc/netns` (its hosts file and
    /// `resolv.conf`): that of the namespace stackctl would create for it, also for an
    /// adopted namespace, so that two stacks or two hosts never share one.
    pub fn files_name(&self, container: &str) -> String {
        namespace_name(&self.stack, &self.host, container)
    }
}

/// The name under `/run/netns` of a container's namespace: `STACK:CONTAINER` on the
/// machine's own host, `STACK@HOST:CONTAINER` on a named one. Neither `:` nor `@` can
/// appear in a stack's, a host's or a container's name, so no two stacks' or hosts'
/// containers share a namespace name (with `-`, stack `a-b`'s container `c` would meet
/// stack `a`'s container `b-c`), and no prefix of one host's is another's.
pub fn namespace_name(stack: &str, host: &HostNamespace, container: &str) -> String {
    match host {
        HostNamespace::Current => format!("{stack}:{container}"),
        HostNamespace::Named(host) => format!("{stack}@{host}:{container}"),
    }
}

/// Whose namespace the name under `/run/netns` is, when stackctl made it: the stack, the
/// host and the container of a `STACK:CONTAINER` or `STACK@HOST:CONTAINER` name (the inverse
/// of [`namespace_name`]); `None` for any other name. Neither a stack's nor a container's
/// name can hold `:` or `@`, so the container follows the last `:` and the stack ends at
/// the first `@`.
pub fn namespace_owner(name: &str) -> Option<(String, HostNamespace, String)> {
    let (before, container) = name.rsplit_once(':')?;
    let (stack, host) = match before.split_once('@') {
        Some((stack, host)) if !host.is_empty() => (stack, HostNamespace::Named(host.to_owned())),
        Some(_) => return None,
        None => (before, HostNamespace::Current),
    };
    if name_problem(stack).is_some() || name_problem(container).is_some() {
        return None;
    }
    Some((stack.to_owned(), host, container.to_owned()))
}

/// A stack's interface group: a hash of its name, with the top bit set so that it never
/// meets the small numbers people give groups by hand (0 is every interface's default).
fn group_of(stack: &str) -> u32 {
    let digest = Sha256::new().chain_update(b"stackctl group\0").chain_update(stack.as_bytes()).finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) | 0x8000_0000
}

/// A digest of a state: a saved plan applies only while the state it was made against is
/// still the one observed.
pub fn fingerprint(state: &KernelState) -> String {
    let json = serde_json::to_vec(state).expect("kernel state serializes");
    Sha256::digest(json).iter().map(|byte| format!("{byte:02x}")).collect()
}
