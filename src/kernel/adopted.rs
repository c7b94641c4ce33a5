//! The facts about the namespaces a stack adopts through `netns:`: what is at each path,
//! which namespaces play a host, which stackctl made for containers, and which other
//! stacks adopt. Found without blocking (see [`netns::look`]); whether the stack may use
//! them is decided by [`unusable_namespaces`].

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use super::{Places, netns, read_record};
use crate::plan::{AdoptedElsewhere, AdoptedFacts, AdoptedPath, HostRole, NamespaceId, unusable_namespaces};
use crate::state::{HostNamespace, NamespaceName, Resource, Scope};

/// The adopted namespaces of a stack as found, and those it may use, open: what is read
/// in them is read through these descriptors, so a path that changes after it was judged
/// leads nowhere new.
#[derive(Debug, Default)]
pub struct Adopted {
    pub facts: AdoptedFacts,
    /// The namespaces the stack may use, open, by container.
    pub usable: BTreeMap<String, File>,
}

/// Looks at each path the stack adopts, and, when it adopts any, at what is not its own to
/// adopt: the namespace stackctl runs in, process 1's, every scratch host's (`host`, the
/// open host namespace when it is a named one, and those stackctl keeps files for), every
/// named namespace, and what every other stack's record says it adopts.
pub fn find(places: &Places, scope: &Scope, host: Option<&File>) -> Adopted {
    let mut found = BTreeMap::new();
    let mut opened = BTreeMap::new();
    for (container, name) in &scope.namespaces {
        let NamespaceName::Adopted(path) = name else { continue };
        let (what, file) = netns::look(Path::new(path));
        found.insert(container.clone(), what);
        if let Some(file) = file {
            opened.insert(container.clone(), file);
        }
    }
    if found.is_empty() {
        return Adopted::default();
    }
    let facts =
        AdoptedFacts { found, hosts: hosts(places, scope, host), named: named(places), elsewhere: elsewhere(places) };
    let unusable = unusable_namespaces(scope, &facts);
    opened.retain(|container, _| !unusable.iter().any(|refused| refused.container == *container));
    Adopted { facts, usable: opened }
}

fn id_at(path: &Path) -> Option<NamespaceId> {
    match netns::look(path).0 {
        AdoptedPath::Namespace(id) => Some(id),
        _ => None,
    }
}

/// The namespaces that play a host.
fn hosts(places: &Places, scope: &Scope, host: Option<&File>) -> Vec<(NamespaceId, HostRole)> {
    let mut hosts = Vec::new();
    for (path, role) in [("/proc/self/ns/net", HostRole::Running), ("/proc/1/ns/net", HostRole::Init)] {
        hosts.extend(id_at(Path::new(path)).map(|id| (id, role)));
    }
    if let (Some(file), HostNamespace::Named(name)) = (host, &scope.host) {
        hosts.extend(netns::identity(file).ok().map(|id| (id, HostRole::Scratch(name.clone()))));
    }
    for host in host_directories(places) {
        let HostNamespace::Named(name) = host else { continue };
        hosts.extend(id_at(&places.netns.join(&name)).map(|id| (id, HostRole::Scratch(name))));
    }
    hosts
}

/// The hosts stackctl keeps files for: the directories of its run directory.
fn host_directories(places: &Places) -> Vec<HostNamespace> {
    let Ok(entries) = std::fs::read_dir(&places.state) else { return Vec::new() };
    entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .filter_map(|entry| HostNamespace::of_tag(entry.file_name().to_str()?))
        .collect()
}

/// Every named namespace under `/run/netns`.
fn named(places: &Places) -> BTreeMap<String, NamespaceId> {
    let Ok(entries) = std::fs::read_dir(&places.netns) else { return BTreeMap::new() };
    entries
        .flatten()
        .filter_map(|entry| Some((entry.file_name().to_str()?.to_owned(), id_at(&entry.path())?)))
        .collect()
}

/// What the records of every stack on every host say it adopts (this stack's too: the
/// core tells its own from the others').
fn elsewhere(places: &Places) -> Vec<AdoptedElsewhere> {
    let mut elsewhere = Vec::new();
    for host in host_directories(places) {
        let Ok(entries) = std::fs::read_dir(places.state.join(host.tag())) else { continue };
        for entry in entries.flatten() {
            // Only a regular file is read: a FIFO there would block.
            if !entry.file_type().is_ok_and(|kind| kind.is_file()) {
                continue;
            }
            let file_name = entry.file_name();
            let Some(stack) = file_name.to_str().and_then(|name| name.strip_suffix(".record.json")) else { continue };
            let Some(record) = read_record(places, &host, stack) else { continue };
            for resource in record.resources.values() {
                let Resource::Namespace(namespace) = resource else { continue };
                if !namespace.adopted {
                    continue;
                }
                let Some(id) = id_at(Path::new(&namespace.name)) else { continue };
                elsewhere.push(AdoptedElsewhere {
                    stack: stack.to_owned(),
                    host: host.clone(),
                    container: namespace.container.clone(),
                    path: namespace.name.clone(),
                    id,
                });
            }
        }
    }
    elsewhere
}
