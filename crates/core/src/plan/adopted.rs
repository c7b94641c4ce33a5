//! Namespaces adopted through `netns:`, and whether the stack may use them: a path must
//! lead to a network namespace that is a container's and no one else's. A container that
//! a runtime restarted has a new namespace, and the old path names nothing, or an empty
//! file; a path may also lead to something that is no namespace at all (a FIFO, a file, a
//! directory), to the host's own namespace, or to a namespace another stack owns. Wiring
//! any of those would change what is not the container's: the host's interfaces and
//! default route, or another container's.

use std::collections::BTreeMap;

use crate::state::{HostNamespace, NamespaceName, Scope, namespace_owner};

/// What names a network namespace, whatever path leads to it: the device and inode of its
/// file on the kernel's namespace file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NamespaceId {
    pub device: u64,
    pub inode: u64,
}

/// What a file that is no namespace is, as `stat` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// The empty file that stays when a runtime unmounts the namespace of a container that
    /// stopped or restarted, or that an interrupted creation left.
    EmptyFile,
    RegularFile,
    Directory,
    Fifo,
    Socket,
    Device,
    /// Anything else that is no namespace, such as a file of `/proc` or `/sys`.
    Other,
}

impl FileKind {
    fn described(self) -> &'static str {
        match self {
            FileKind::EmptyFile => "an empty file",
            FileKind::RegularFile => "a regular file",
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a FIFO (named pipe)",
            FileKind::Socket => "a socket",
            FileKind::Device => "a device",
            FileKind::Other => "a file that is no namespace",
        }
    }
}

/// What an adopted `netns:` path was found to be on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdoptedPath {
    /// A network namespace, and which.
    Namespace(NamespaceId),
    /// Nothing is at the path.
    Missing,
    /// A file that is not a namespace (found without opening it, so that a FIFO or a
    /// device is never opened).
    NotANamespace(FileKind),
    /// A namespace of another type, such as `/proc/PID/ns/uts` or a bind mount of one.
    OtherNamespace,
    /// The path could not be read, for this reason.
    Unreadable(String),
}

/// A namespace that plays a host, which no container may adopt: stackctl puts bridges and
/// the host ends of links there, and a container's default route would replace the host's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRole {
    /// The namespace stackctl runs in: the machine's own network.
    Running,
    /// The namespace of process 1: the machine's own network too.
    Init,
    /// A named namespace that plays a host (`--host-netns NAME`) for this stack or others.
    Scratch(String),
}

/// A namespace that another stack adopted, as that stack's last apply recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptedElsewhere {
    pub stack: String,
    pub host: HostNamespace,
    pub container: String,
    pub path: String,
    pub id: NamespaceId,
}

/// The facts about the namespaces a stack adopts, as the shell finds them on the machine:
/// what is at each adopted path, and which namespaces are not the stack's to adopt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdoptedFacts {
    /// What is at each adopted path, by container.
    pub found: BTreeMap<String, AdoptedPath>,
    /// The namespaces that play a host.
    pub hosts: Vec<(NamespaceId, HostRole)>,
    /// The named namespaces under `/run/netns`, by name: those stackctl made carry their
    /// stack's and container's names.
    pub named: BTreeMap<String, NamespaceId>,
    /// What the other stacks' records say they adopt.
    pub elsewhere: Vec<AdoptedElsewhere>,
}

/// Why a container may not use the namespace it adopts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// The path leads to no network namespace.
    Dead(AdoptedPath),
    /// It is a host's namespace.
    Host(HostRole),
    /// stackctl made it for a container of a stack (this one's other containers included).
    Made { stack: String, host: HostNamespace, container: String },
    /// Another stack adopts it.
    Adopted(AdoptedElsewhere),
    /// Another container of this stack adopts it too.
    Shared { with: String },
}

/// A container whose adopted namespace cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableNamespace {
    pub container: String,
    pub path: String,
    pub why: Unusable,
}

impl UnusableNamespace {
    /// Whether the path leads to a namespace that is somebody else's (a host's, another
    /// container's): reading it would read what is not the stack's.
    pub fn is_someone_elses(&self) -> bool {
        !matches!(self.why, Unusable::Dead(_))
    }
}

/// How the docs tell a user to find a container's namespace.
const FIND_IT: &str = "for Docker or Podman: `docker inspect --format '{{.NetworkSettings.SandboxKey}}' CONTAINER`";

fn on_host(host: &HostNamespace) -> String {
    match host {
        HostNamespace::Current => String::new(),
        HostNamespace::Named(name) => format!(" on the scratch host `{name}`"),
    }
}

impl std::fmt::Display for UnusableNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let UnusableNamespace { container, path, why } = self;
        write!(f, "container `{container}` adopts {path} (`netns:`), ")?;
        let restarted = format!(
            "if the container stopped or restarted, it has no namespace there; start it and set `netns:` to the path of \
             its namespace now ({FIND_IT}), or remove `netns:` to have stackctl create one"
        );
        let elsewhere = format!(
            "set `netns:` to the path of the container's own namespace ({FIND_IT}), or remove `netns:` to have \
             stackctl create one"
        );
        match why {
            Unusable::Dead(found) => {
                let what = match found {
                    AdoptedPath::Namespace(_) => "which is a network namespace".to_owned(),
                    AdoptedPath::Missing => "which does not exist".to_owned(),
                    AdoptedPath::NotANamespace(FileKind::EmptyFile) => {
                        "which is not a network namespace (any more)".to_owned()
                    }
                    AdoptedPath::NotANamespace(kind) => {
                        let what = kind.described();
                        return write!(f, "which is {what}, not a network namespace: {elsewhere}");
                    }
                    AdoptedPath::OtherNamespace => {
                        "which is not a network namespace but one of another type".to_owned()
                    }
                    AdoptedPath::Unreadable(reason) => format!("which cannot be read ({reason})"),
                };
                write!(f, "{what}: {restarted}")
            }
            Unusable::Host(role) => {
                let what = match role {
                    HostRole::Running => "the network namespace stackctl runs in, the machine's own network".to_owned(),
                    HostRole::Init => "the network namespace of process 1, the machine's own network".to_owned(),
                    HostRole::Scratch(name) => format!("the scratch host `{name}` (`--host-netns {name}`)"),
                };
                write!(
                    f,
                    "which is {what}: a host's namespace is no container's, and wiring it would change the host's \
                     interfaces and default route; {elsewhere}"
                )
            }
            Unusable::Made { stack, host, container: owner } => write!(
                f,
                "which is the namespace stackctl made for container `{owner}` of stack `{stack}`{}: a namespace is one \
                 container's, and wiring it would change that container's interfaces and default route; {elsewhere}",
                on_host(host)
            ),
            Unusable::Adopted(AdoptedElsewhere { stack, host, container: owner, path: theirs, .. }) => write!(
                f,
                "which is the namespace that stack `{stack}`{} adopts for its container `{owner}` (as {theirs}): a \
                 namespace is one container's, and wiring it would change that container's interfaces and default \
                 route; {elsewhere}",
                on_host(host)
            ),
            Unusable::Shared { with } => write!(
                f,
                "which is the namespace that container `{with}` of this stack adopts too: a namespace is one \
                 container's; {elsewhere}"
            ),
        }
    }
}

/// The containers of the stack that may not use the namespace they adopt, in name order:
/// nothing can be planned for them (their links, routes and names live inside that
/// namespace), and nothing may be read there as theirs. A path must lead to a network
/// namespace that plays no host, that stackctl did not make for any container, that no
/// other stack adopts and that no other container of this stack adopts.
pub fn unusable_namespaces(scope: &Scope, facts: &AdoptedFacts) -> Vec<UnusableNamespace> {
    let adopted: Vec<(&String, &String, &AdoptedPath)> = scope
        .namespaces
        .iter()
        .filter_map(|(container, name)| match name {
            NamespaceName::Adopted(path) => Some((container, path, facts.found.get(container)?)),
            NamespaceName::Created(_) => None,
        })
        .collect();
    let made: BTreeMap<NamespaceId, (String, HostNamespace, String)> =
        facts.named.iter().filter_map(|(name, id)| Some((*id, namespace_owner(name)?))).collect();
    let why = |container: &String, found: &AdoptedPath| -> Option<Unusable> {
        let AdoptedPath::Namespace(id) = found else { return Some(Unusable::Dead(found.clone())) };
        if let Some((_, role)) = facts.hosts.iter().find(|(host, _)| host == id) {
            return Some(Unusable::Host(role.clone()));
        }
        if let Some((stack, host, owner)) = made.get(id) {
            return Some(Unusable::Made { stack: stack.clone(), host: host.clone(), container: owner.clone() });
        }
        let theirs = |elsewhere: &&AdoptedElsewhere| {
            elsewhere.id == *id && (elsewhere.stack != scope.stack || elsewhere.host != scope.host)
        };
        if let Some(elsewhere) = facts.elsewhere.iter().find(theirs) {
            return Some(Unusable::Adopted(elsewhere.clone()));
        }
        let shared =
            adopted.iter().find(|(other, _, found)| *other != container && **found == AdoptedPath::Namespace(*id));
        shared.map(|(with, _, _)| Unusable::Shared { with: (*with).clone() })
    };
    adopted
        .iter()
        .filter_map(|(container, path, found)| {
            Some(UnusableNamespace {
                container: (*container).clone(),
                path: (*path).clone(),
                why: why(container, found)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate_file;
    use crate::spec::SourceFile;

    fn scope_on(host: HostNamespace) -> Scope {
        let text = "name: s\nnetworks: { n: {} }\ncontainers:\n  a: { networks: [n], netns: /run/netns/a }\n  \
                    b: { networks: [n], netns: /var/run/docker/netns/b }\n  c: { networks: [n] }\n";
        let stack =
            validate_file(&SourceFile { name: "s.yaml".to_owned(), text: text.to_owned() }).stack.expect("valid");
        Scope::of(&stack, &host)
    }

    fn scope() -> Scope {
        scope_on(HostNamespace::Current)
    }

    fn id(inode: u64) -> NamespaceId {
        NamespaceId { device: 4, inode }
    }

    fn found(a: AdoptedPath, b: AdoptedPath) -> AdoptedFacts {
        AdoptedFacts { found: BTreeMap::from([("a".to_owned(), a), ("b".to_owned(), b)]), ..AdoptedFacts::default() }
    }

    fn refused(scope: &Scope, facts: &AdoptedFacts) -> Vec<String> {
        unusable_namespaces(scope, facts).into_iter().map(|unusable| unusable.container).collect()
    }

    #[test]
    fn only_adopted_paths_that_are_no_network_namespace_are_dead() {
        let cases = [
            (AdoptedPath::Namespace(id(1)), AdoptedPath::Namespace(id(2)), vec![]),
            (AdoptedPath::Missing, AdoptedPath::Namespace(id(2)), vec!["a"]),
            (AdoptedPath::Namespace(id(1)), AdoptedPath::NotANamespace(FileKind::EmptyFile), vec!["b"]),
            (AdoptedPath::Unreadable("denied".to_owned()), AdoptedPath::Missing, vec!["a", "b"]),
            (AdoptedPath::OtherNamespace, AdoptedPath::Namespace(id(2)), vec!["a"]),
            (
                AdoptedPath::NotANamespace(FileKind::Fifo),
                AdoptedPath::NotANamespace(FileKind::Directory),
                vec!["a", "b"],
            ),
        ];
        for (a, b, dead) in cases {
            assert_eq!(refused(&scope(), &found(a.clone(), b.clone())), dead, "a: {a:?}, b: {b:?}");
        }
    }

    #[test]
    fn a_namespace_that_is_someone_elses_is_refused() {
        let other = AdoptedElsewhere {
            stack: "other".to_owned(),
            host: HostNamespace::Current,
            container: "x".to_owned(),
            path: "/run/netns/legacy".to_owned(),
            id: id(1),
        };
        let same_stack_elsewhere =
            AdoptedElsewhere { stack: "s".to_owned(), host: HostNamespace::Named("h".to_owned()), ..other.clone() };
        let own_record = AdoptedElsewhere { stack: "s".to_owned(), container: "a".to_owned(), ..other.clone() };
        let namespace = AdoptedPath::Namespace(id(1));
        let cases: Vec<(&str, AdoptedFacts, Option<Unusable>)> = vec![
            ("nobody else's", AdoptedFacts::default(), None),
            (
                "the namespace stackctl runs in",
                AdoptedFacts { hosts: vec![(id(1), HostRole::Running)], ..AdoptedFacts::default() },
                Some(Unusable::Host(HostRole::Running)),
            ),
            (
                "process 1's",
                AdoptedFacts {
                    hosts: vec![(id(9), HostRole::Running), (id(1), HostRole::Init)],
                    ..AdoptedFacts::default()
                },
                Some(Unusable::Host(HostRole::Init)),
            ),
            (
                "a scratch host",
                AdoptedFacts { hosts: vec![(id(1), HostRole::Scratch("h".to_owned()))], ..AdoptedFacts::default() },
                Some(Unusable::Host(HostRole::Scratch("h".to_owned()))),
            ),
            (
                "made for another stack's container",
                AdoptedFacts {
                    named: BTreeMap::from([("legacy".to_owned(), id(1)), ("other@h:db".to_owned(), id(1))]),
                    ..AdoptedFacts::default()
                },
                Some(Unusable::Made {
                    stack: "other".to_owned(),
                    host: HostNamespace::Named("h".to_owned()),
                    container: "db".to_owned(),
                }),
            ),
            (
                "made for this stack's container",
                AdoptedFacts { named: BTreeMap::from([("s:c".to_owned(), id(1))]), ..AdoptedFacts::default() },
                Some(Unusable::Made { stack: "s".to_owned(), host: HostNamespace::Current, container: "c".to_owned() }),
            ),
            (
                "a named namespace no stack made",
                AdoptedFacts { named: BTreeMap::from([("legacy".to_owned(), id(1))]), ..AdoptedFacts::default() },
                None,
            ),
            (
                "adopted by another stack",
                AdoptedFacts { elsewhere: vec![other.clone()], ..AdoptedFacts::default() },
                Some(Unusable::Adopted(other.clone())),
            ),
            (
                "adopted by this stack on another host",
                AdoptedFacts { elsewhere: vec![same_stack_elsewhere.clone()], ..AdoptedFacts::default() },
                Some(Unusable::Adopted(same_stack_elsewhere)),
            ),
            ("this stack's own record", AdoptedFacts { elsewhere: vec![own_record], ..AdoptedFacts::default() }, None),
        ];
        for (case, facts, why) in cases {
            let facts = AdoptedFacts { found: BTreeMap::from([("a".to_owned(), namespace.clone())]), ..facts };
            let found: Vec<Unusable> =
                unusable_namespaces(&scope(), &facts).into_iter().map(|unusable| unusable.why).collect();
            assert_eq!(found, why.into_iter().collect::<Vec<_>>(), "{case}");
        }
    }

    #[test]
    fn two_containers_that_adopt_one_namespace_are_both_refused() {
        let facts = found(AdoptedPath::Namespace(id(1)), AdoptedPath::Namespace(id(1)));
        let refused = unusable_namespaces(&scope(), &facts);
        let whys: Vec<(&str, &Unusable)> =
            refused.iter().map(|unusable| (unusable.container.as_str(), &unusable.why)).collect();
        assert_eq!(
            whys,
            vec![("a", &Unusable::Shared { with: "b".to_owned() }), ("b", &Unusable::Shared { with: "a".to_owned() })]
        );
    }

    #[test]
    fn only_stackctls_names_have_an_owner() {
        let cases = [
            ("s:c", Some(("s", HostNamespace::Current, "c"))),
            ("s@h:c", Some(("s", HostNamespace::Named("h".to_owned()), "c"))),
            ("legacy", None),
            ("s@:c", None),
            (":c", None),
            ("s:", None),
            ("s:-c", None),
        ];
        for (name, owner) in cases {
            let expected = owner.map(|(stack, host, container)| (stack.to_owned(), host, container.to_owned()));
            assert_eq!(namespace_owner(name), expected, "{name}");
        }
        assert_eq!(
            HostNamespace::of_tag(&HostNamespace::Named("h".to_owned()).tag()),
            Some(HostNamespace::Named("h".to_owned()))
        );
        assert_eq!(HostNamespace::of_tag(&HostNamespace::Current.tag()), Some(HostNamespace::Current));
        assert_eq!(HostNamespace::of_tag("netns-"), None);
    }

    #[test]
    fn the_message_names_the_container_the_path_and_why() {
        let dead = |container: &str, path: &str, found: AdoptedPath| UnusableNamespace {
            container: container.to_owned(),
            path: path.to_owned(),
            why: Unusable::Dead(found),
        };
        let someone =
            |why: Unusable| UnusableNamespace { container: "a".to_owned(), path: "/proc/1/ns/net".to_owned(), why };
        let messages = [
            dead("a", "/run/netns/a", AdoptedPath::Missing),
            dead("b", "/var/run/docker/netns/b", AdoptedPath::NotANamespace(FileKind::EmptyFile)),
            dead("b", "/run/netns/fifo", AdoptedPath::NotANamespace(FileKind::Fifo)),
            dead("b", "/etc/passwd", AdoptedPath::NotANamespace(FileKind::RegularFile)),
            dead("b", "/run/netns", AdoptedPath::NotANamespace(FileKind::Directory)),
            dead("b", "/proc/1/ns/uts", AdoptedPath::OtherNamespace),
            someone(Unusable::Host(HostRole::Running)),
            someone(Unusable::Host(HostRole::Init)),
            someone(Unusable::Host(HostRole::Scratch("h".to_owned()))),
            someone(Unusable::Made {
                stack: "other".to_owned(),
                host: HostNamespace::Current,
                container: "db".to_owned(),
            }),
            someone(Unusable::Made {
                stack: "other".to_owned(),
                host: HostNamespace::Named("h".to_owned()),
                container: "db".to_owned(),
            }),
            someone(Unusable::Adopted(AdoptedElsewhere {
                stack: "other".to_owned(),
                host: HostNamespace::Current,
                container: "x".to_owned(),
                path: "/run/netns/legacy".to_owned(),
                id: id(1),
            })),
            someone(Unusable::Shared { with: "b".to_owned() }),
        ];
        let messages: Vec<String> = messages.iter().map(ToString::to_string).collect();
        insta::assert_snapshot!(messages.join("\n"));
    }

    #[test]
    fn a_scratch_hosts_stack_is_told_from_the_machines() {
        let facts = AdoptedFacts {
            found: BTreeMap::from([("a".to_owned(), AdoptedPath::Namespace(id(1)))]),
            elsewhere: vec![AdoptedElsewhere {
                stack: "s".to_owned(),
                host: HostNamespace::Current,
                container: "a".to_owned(),
                path: "/run/netns/a".to_owned(),
                id: id(1),
            }],
            ..AdoptedFacts::default()
        };
        assert_eq!(refused(&scope_on(HostNamespace::Named("h".to_owned())), &facts), vec!["a"]);
        assert!(refused(&scope(), &facts).is_empty());
    }
}
