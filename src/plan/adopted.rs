//! Namespaces adopted through `netns:` that are no longer there: a container that a runtime
//! restarted has a new namespace, and the old path names nothing, or an empty file.

use std::collections::BTreeMap;

use crate::state::{NamespaceName, Scope};

/// What an adopted `netns:` path was found to be on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdoptedPath {
    /// A network namespace: the container runs.
    Namespace,
    /// Nothing is at the path.
    Missing,
    /// Something that is not a network namespace, such as the empty file that stays when
    /// a runtime unmounts the namespace of a container that stopped or restarted.
    NotANamespace,
    /// A namespace of another type, such as `/proc/PID/ns/uts` or a bind mount of one.
    OtherNamespace,
    /// The path could not be read, for this reason.
    Unreadable(String),
}

/// A container whose adopted namespace cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadNamespace {
    pub container: String,
    pub path: String,
    pub found: AdoptedPath,
}

impl std::fmt::Display for DeadNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let DeadNamespace { container, path, found } = self;
        let what = match found {
            AdoptedPath::Namespace => "which is a network namespace".to_owned(),
            AdoptedPath::Missing => "which does not exist".to_owned(),
            AdoptedPath::NotANamespace => "which is not a network namespace (any more)".to_owned(),
            AdoptedPath::OtherNamespace => "which is not a network namespace but one of another type".to_owned(),
            AdoptedPath::Unreadable(reason) => format!("which cannot be read ({reason})"),
        };
        write!(
            f,
            "container `{container}` adopts {path} (`netns:`), {what}: if the container stopped or restarted, it has \
             no namespace there; start it and set `netns:` to the path of its namespace now (for Docker or Podman: \
             `docker inspect --format '{{{{.NetworkSettings.SandboxKey}}}}' CONTAINER`), or remove `netns:` to have \
             stackctl create one"
        )
    }
}

/// The containers of the stack whose adopted path is `found` to be anything but a network
/// namespace, in name order. Nothing can be planned for them: their links, routes and names
/// live inside that namespace.
pub fn dead_namespaces(scope: &Scope, found: &BTreeMap<String, AdoptedPath>) -> Vec<DeadNamespace> {
    scope
        .namespaces
        .iter()
        .filter_map(|(container, name)| match name {
            NamespaceName::Adopted(path) => Some((container, path, found.get(container)?)),
            NamespaceName::Created(_) => None,
        })
        .filter(|(_, _, found)| **found != AdoptedPath::Namespace)
        .map(|(container, path, found)| DeadNamespace {
            container: container.clone(),
            path: path.clone(),
            found: found.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate_file;
    use crate::spec::SourceFile;
    use crate::state::HostNamespace;

    fn scope() -> Scope {
        let text = "name: s\nnetworks: { n: {} }\ncontainers:\n  a: { networks: [n], netns: /run/netns/a }\n  \
                    b: { networks: [n], netns: /var/run/docker/netns/b }\n  c: { networks: [n] }\n";
        let stack =
            validate_file(&SourceFile { name: "s.yaml".to_owned(), text: text.to_owned() }).stack.expect("valid");
        Scope::of(&stack, &HostNamespace::Current)
    }

    #[test]
    fn only_adopted_paths_that_are_no_namespace_are_dead() {
        let cases = [
            (AdoptedPath::Namespace, AdoptedPath::Namespace, vec![]),
            (AdoptedPath::Missing, AdoptedPath::Namespace, vec!["a"]),
            (AdoptedPath::Namespace, AdoptedPath::NotANamespace, vec!["b"]),
            (AdoptedPath::Unreadable("denied".to_owned()), AdoptedPath::Missing, vec!["a", "b"]),
            (AdoptedPath::OtherNamespace, AdoptedPath::Namespace, vec!["a"]),
        ];
        for (a, b, dead) in cases {
            let found = BTreeMap::from([("a".to_owned(), a.clone()), ("b".to_owned(), b.clone())]);
            let containers: Vec<String> =
                dead_namespaces(&scope(), &found).into_iter().map(|dead| dead.container).collect();
            assert_eq!(containers, dead, "a: {a:?}, b: {b:?}");
        }
    }

    #[test]
    fn the_message_names_the_container_the_path_and_what_to_do() {
        let found = BTreeMap::from([
            ("a".to_owned(), AdoptedPath::Missing),
            ("b".to_owned(), AdoptedPath::NotANamespace),
            ("c".to_owned(), AdoptedPath::Missing),
        ]);
        let messages: Vec<String> = dead_namespaces(&scope(), &found).iter().map(ToString::to_string).collect();
        insta::assert_snapshot!(messages.join("\n"));
    }

    #[test]
    fn a_namespace_of_another_type_is_no_network_namespace() {
        let found = BTreeMap::from([("a".to_owned(), AdoptedPath::OtherNamespace)]);
        let messages: Vec<String> = dead_namespaces(&scope(), &found).iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 1);
        let expected = "container `a` adopts /run/netns/a (`netns:`), which is not a network namespace but one of \
                        another type: ";
        assert!(messages[0].starts_with(expected), "{}", messages[0]);
    }
}
