//! A plan saved by `plan --out` and applied later by `apply FILE`. The file is trusted for
//! nothing: apply reads the stack file it names, observes the host, plans again, and runs
//! only the plan it derived itself, and only when that plan is the saved one. Whatever
//! differs is refused, as stale (the stack file, the stack's objects or the host changed
//! since the plan was made) or as tampered with (the file holds what its own inputs do not
//! give), before anything changes.
//!
//! To tell the two apart, the file keeps what the plan was derived from: a digest of the
//! stack file's text, the fingerprint of the observed state and the host's facts that
//! lowering read. Derived again from the live state and the saved facts, the plan is the
//! saved one unless the file was edited; derived from the live facts, it is the saved one
//! unless the host changed too. A file whose recorded inputs were edited is refused as
//! stale: nothing in it can be told apart from a host that moved on.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::{Operation, Plan};
use crate::model::name_problem;
use crate::state::{HostFacts, HostNamespace, Key, NamespaceName, Resource, Scope, namespace_name};

/// The version of the file format; apply refuses other versions. Version 2 holds aliases,
/// swaps and the name servers of each container; version 3, the backends each alias of a
/// swap leaves; version 4, the digest of the stack file and the host's facts.
pub const SAVED_PLAN_VERSION: u32 = 4;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: u32,
    /// The stack file the plan was made from, absolute: apply reads it again.
    pub stack_file: String,
    /// The digest of the stack file's text ([`stack_digest`]) when the plan was made.
    pub stack_digest: String,
    /// The named namespace that played the host, if one did.
    pub host_netns: Option<String>,
    pub scope: Scope,
    /// The fingerprint of the stack's state as observed when planning.
    pub fingerprint: String,
    /// What lowering read of the host when planning (its routes, ports and addresses).
    pub host_facts: HostFacts,
    pub plan: Plan,
}

/// What apply derived again from the stack file the saved plan names and the host as it
/// is now.
#[derive(Debug, Clone, Copy)]
pub struct Rederived<'a> {
    pub stack_digest: &'a str,
    pub scope: &'a Scope,
    pub fingerprint: &'a str,
    /// The plan from the live state and the host facts the file holds; `None` when
    /// lowering with those facts fails (then they are no host's facts that gave the plan).
    pub from_saved_facts: Option<&'a Plan>,
    /// The plan from the live state and the live host facts: the one apply runs.
    pub from_live_facts: &'a Plan,
}

/// Why a saved plan is not applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    /// Planning again would give another plan because something it is made from changed;
    /// a new `plan --out` gives a good one.
    #[error("{0}")]
    Stale(Staleness),
    /// The file holds what no stack file and host give.
    #[error("{0}")]
    Tampered(Tampering),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Staleness {
    #[error("stack file `{file}` changed since the plan was made")]
    StackFile { file: String },
    #[error("the stack's objects on this host changed since the plan was made")]
    Objects,
    #[error("the host's routes, addresses or ports changed since the plan was made, so planning now picks other ones")]
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Tampering {
    #[error("it holds {what} `{name}`, which no stack file gives: {problem}")]
    Name { what: &'static str, name: String, problem: String },
    #[error("its scope (the stack's name, host, interfaces and namespaces) is not the one stack file `{file}` gives")]
    Scope { file: String },
    #[error("the host's facts it holds give no plan for stack file `{file}`")]
    HostFacts { file: String },
    #[error(
        "its operation {number} (`{shown}`) is not what stack file `{file}` gives for the state it was made against"
    )]
    Operation { number: usize, shown: String, file: String },
    #[error("it has {saved} operations, and stack file `{file}` gives {derived} for the state it was made against")]
    Length { saved: usize, derived: usize, file: String },
    #[error("its swap or the breaks it states are not what stack file `{file}` gives")]
    Swap { file: String },
    #[error("it names `{file}` as its stack file, which is no regular file of at most {limit} bytes")]
    StackFile { file: String, limit: u64 },
}

/// The largest stack file a saved plan may name: a stack at the kernel's limits is far
/// smaller, and a plan edited to name a device must not fill memory.
pub const STACK_FILE_LIMIT: u64 = 64 << 20;

/// The digest of a stack file's text.
pub fn stack_digest(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

impl SavedPlan {
    /// The host the plan was made for.
    pub fn host(&self) -> HostNamespace {
        self.host_netns.clone().map_or(HostNamespace::Current, HostNamespace::Named)
    }

    /// The first name in the file that no valid stack file gives: checked before the file
    /// is used for anything, with the rules of names in a stack file, and for the names
    /// stackctl derives (namespaces, interfaces), with the rule that derives them or the
    /// kernel's.
    pub fn misnamed(&self) -> Option<Tampering> {
        let named = |what: &'static str, name: &str| {
            name_problem(name).map(|problem| Tampering::Name { what, name: name.to_owned(), problem })
        };
        if let Some(host) = &self.host_netns
            && let Some(found) = named("host namespace", host)
        {
            return Some(found);
        }
        if let Some(found) = named("stack name", &self.scope.stack) {
            return Some(found);
        }
        let host = self.host();
        for (container, namespace) in &self.scope.namespaces {
            let found = named("container name", container)
                .or_else(|| namespace_problem(&self.scope.stack, &host, container, namespace));
            if found.is_some() {
                return found;
            }
        }
        for (interface, key) in &self.scope.interfaces {
            if let Some(found) = interface_problem(interface).or_else(|| key_problem(key)) {
                return Some(found);
            }
        }
        self.plan
            .operations
            .iter()
            .flat_map(resources)
            .find_map(|resource| key_problem(&resource.key()).or_else(|| self.resource_problem(&host, resource)))
    }

    /// A namespace or interface name in `resource` that stackctl would not derive.
    fn resource_problem(&self, host: &HostNamespace, resource: &Resource) -> Option<Tampering> {
        let interfaces: Vec<&str> = match resource {
            Resource::Namespace(namespace) => {
                let name = if namespace.adopted {
                    NamespaceName::Adopted(namespace.name.clone())
                } else {
                    NamespaceName::Created(namespace.name.clone())
                };
                return namespace_problem(&self.scope.stack, host, &namespace.container, &name);
            }
            Resource::Policy(policy) => vec![&policy.bridge],
            Resource::Bridge(bridge) => vec![&bridge.ifname],
            Resource::Link(link) => vec![&link.ifname, &link.host_ifname],
            Resource::Route(route) => vec![&route.ifname],
            Resource::Alias(alias) => vec![&alias.bridge],
            Resource::Sysctl(sysctl) => {
                return [Some(&sysctl.value), sysctl.before.as_ref()].into_iter().flatten().find_map(|value| {
                    (!crate::state::sysctl_value_is_known(value)).then(|| Tampering::Name {
                        what: "setting value",
                        name: value.clone(),
                        problem: format!("`{}` is set to 0 or 1", sysctl.name),
                    })
                });
            }
            Resource::Stray(_) | Resource::Hosts(_) | Resource::Forward(_) | Resource::Flow(_) => vec![],
        };
        interfaces.into_iter().find_map(interface_problem)
    }

    /// Whether the plan may be applied, given what apply derived again: the checks in the
    /// order that tells a stale plan from one tampered with (see the module's comment).
    pub fn judge(&self, now: &Rederived) -> Result<(), Refusal> {
        let file = || self.stack_file.clone();
        if now.stack_digest != self.stack_digest {
            return Err(Refusal::Stale(Staleness::StackFile { file: file() }));
        }
        if now.fingerprint != self.fingerprint {
            return Err(Refusal::Stale(Staleness::Objects));
        }
        if *now.scope != self.scope || self.host_facts.host != self.host() || self.scope.host != self.host() {
            return Err(Refusal::Tampered(Tampering::Scope { file: file() }));
        }
        match now.from_saved_facts {
            None => return Err(Refusal::Tampered(Tampering::HostFacts { file: file() })),
            Some(derived) => {
                if let Some(tampering) = difference(&self.plan, derived, &self.stack_file) {
                    return Err(Refusal::Tampered(tampering));
                }
            }
        }
        if difference(&self.plan, now.from_live_facts, &self.stack_file).is_some() {
            return Err(Refusal::Stale(Staleness::Host));
        }
        Ok(())
    }
}

/// How `saved` differs from `derived`, if it does: the first operation that differs.
fn difference(saved: &Plan, derived: &Plan, file: &str) -> Option<Tampering> {
    let file = file.to_owned();
    let differing = saved.operations.iter().zip(&derived.operations).position(|(saved, derived)| saved != derived);
    if let Some(index) = differing {
        let shown = shown(&saved.operations[index]);
        return Some(Tampering::Operation { number: index + 1, shown, file });
    }
    if saved.operations.len() != derived.operations.len() {
        return Some(Tampering::Length { saved: saved.operations.len(), derived: derived.operations.len(), file });
    }
    if saved.swap != derived.swap || saved.breaks != derived.breaks {
        return Some(Tampering::Swap { file });
    }
    None
}

/// An operation as a plan's line starts it: its mark, kind and key.
fn shown(operation: &Operation) -> String {
    let mark = match operation {
        Operation::Create { .. } => '+',
        Operation::Update { .. } => '~',
        Operation::Delete { .. } => '-',
    };
    let key = operation.key();
    format!("{mark} {} {}", key.kind().name(), key.label())
}

fn resources(operation: &Operation) -> Vec<&Resource> {
    match operation {
        Operation::Create { resource } | Operation::Delete { resource } => vec![resource],
        Operation::Update { before, after } => vec![before, after],
    }
}

/// A name in a key that breaks the rule of names in a stack file.
fn key_problem(key: &Key) -> Option<Tampering> {
    let names: Vec<(&'static str, &str)> = match key {
        Key::Stray => vec![],
        Key::Policy { network } | Key::Bridge { network } => vec![("network name", network)],
        Key::Namespace { container } | Key::Route { container } | Key::Hosts { container } => {
            vec![("container name", container)]
        }
        Key::Forward { container, .. } => vec![("container name", container)],
        Key::Link { container, network } => vec![("container name", container), ("network name", network)],
        Key::Flow { network, source, destination, .. } => {
            vec![("network name", network), ("container name", source), ("container name", destination)]
        }
        Key::Alias { network, name } => vec![("network name", network), ("alias", name)],
        Key::Sysctl { name } if name == crate::state::FORWARDING => vec![],
        Key::Sysctl { name } => {
            let problem = format!("stackctl sets only `{}`", crate::state::FORWARDING);
            return Some(Tampering::Name { what: "setting", name: name.clone(), problem });
        }
    };
    names.into_iter().find_map(|(what, name)| {
        name_problem(name).map(|problem| Tampering::Name { what, name: name.to_owned(), problem })
    })
}

/// A namespace of a container that its stack file cannot give: one stackctl creates is
/// named by [`namespace_name`], and an adopted one is an absolute path, as `netns:` must be.
fn namespace_problem(
    stack: &str,
    host: &HostNamespace,
    container: &str,
    namespace: &NamespaceName,
) -> Option<Tampering> {
    match namespace {
        NamespaceName::Created(name) => {
            let derived = namespace_name(stack, host, container);
            (*name != derived).then(|| Tampering::Name {
                what: "namespace name",
                name: name.clone(),
                problem: format!("the namespace of container `{container}` is named `{derived}`"),
            })
        }
        NamespaceName::Adopted(path) => (!path.starts_with('/')).then(|| Tampering::Name {
            what: "adopted namespace",
            name: path.clone(),
            problem: "`netns:` is an absolute path".to_owned(),
        }),
    }
}

/// An interface name the kernel would refuse, or take for a path: the kernel's own rule
/// (at most 15 bytes; no `/`, `:` or white space; not `.` or `..`).
fn interface_problem(name: &str) -> Option<Tampering> {
    let problem = if name.is_empty() || name.len() > 15 {
        Some("an interface name has 1 to 15 bytes")
    } else if name == "." || name == ".." || name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace()) {
        Some("an interface name has no `/`, `:` or white space and is not `.` or `..`")
    } else {
        None
    };
    problem.map(|problem| Tampering::Name {
        what: "interface name",
        name: name.to_owned(),
        problem: problem.to_owned(),
    })
}

#[cfg(test)]
mod tests;
