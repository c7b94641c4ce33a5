//! `stackctl suggest`: a network layout derived from the declared flows alone, with a
//! shared network for every pair that talks and none for any pair that does not. It reads a
//! [`Draft`], so the file's own networks may be missing or may not carry the flows.
//!
//! Every suggested network is a clique of the undirected "talks" graph (every two members
//! have a declared flow in one direction or the other, and it resolves there), and together
//! the networks hold every flow: an edge clique cover, kept small by
//! [`cover::edge_clique_cover`].

mod cover;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Attachment, Container, Draft, HOST};
use crate::spec::NAME_MAX_LEN;

/// One container of the suggested layout.
struct Placement<'a> {
    container: &'a Container,
    /// The suggested networks it joins, by name, each with the aliases it keeps there.
    networks: Vec<(&'a str, Vec<&'a str>)>,
    /// The `network_mode` to write, for a container that joins no network.
    network_mode: Option<&'static str>,
}

/// The suggested layout of a draft, as a stack file that `stackctl validate` accepts.
pub fn suggest(draft: &Draft) -> String {
    let names: Vec<&str> = draft.containers().keys().map(String::as_str).collect();
    let index: BTreeMap<&str, usize> = names.iter().enumerate().map(|(index, name)| (*name, index)).collect();
    let mut talks: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); names.len()];
    // Per pair of containers that talk, smaller first: for each flow between them, the
    // container whose name the flow reaches the pair through as an alias, if any. Such a
    // flow resolves only on a network without that container, where the alias may stand.
    let mut shadows: BTreeMap<(usize, usize), Vec<Option<usize>>> = BTreeMap::new();
    for container in draft.containers().values() {
        let source = index[container.name.as_str()];
        for flow in &container.talks_to {
            let target = flow.target.as_str();
            for destination in targets(draft, target) {
                let shadow = if destination == target { None } else { index.get(target).copied() };
                let destination = index[destination];
                if destination != source {
                    talks[source].insert(destination);
                    talks[destination].insert(source);
                    shadows.entry((source.min(destination), source.max(destination))).or_default().push(shadow);
                }
            }
        }
    }
    // A group fits when each two members have a flow that resolves among them.
    let fits = |members: &[usize]| {
        shadows.iter().all(|((a, b), flows)| {
            !(members.contains(a) && members.contains(b))
                || flows.iter().any(|shadow| shadow.is_none_or(|shadow| !members.contains(&shadow)))
        })
    };
    let mut groups = cover::edge_clique_cover(&talks, fits);
    // A container that talks with no one still needs a network to publish its ports through,
    // or to reach the host through (any network does: flows to the host ask for no other
    // member); one of its own reaches no other container.
    groups.extend(
        draft
            .containers()
            .values()
            .filter(|container| {
                let alone = talks[index[container.name.as_str()]].is_empty();
                let needs_one =
                    !container.ports.is_empty() || container.talks_to.iter().any(|flow| flow.target == HOST);
                alone && matches!(container.attachment, Attachment::Bridged(_)) && needs_one
            })
            .map(|container| vec![index[container.name.as_str()]]),
    );
    groups.sort();
    let groups: Vec<(String, Vec<&str>)> = network_names(&groups, &names)
        .into_iter()
        .zip(&groups)
        .map(|(name, members)| (name, members.iter().map(|member| names[*member]).collect()))
        .collect();
    let placements: Vec<Placement> =
        draft.containers().values().map(|container| placement(draft, container, &groups)).collect();
    let mut networks: Vec<&str> = groups.iter().map(|(name, _)| name.as_str()).collect();
    networks.sort_unstable();
    yaml::render(draft.name(), &networks, &placements)
}

/// The containers a flow's target means, whatever the current networks: the container of
/// that name and every container that declares the target as an alias on any network. The
/// model resolves a target on each network to both, so a flow to a container's name also
/// reaches, on another network, a container that stands in for it under that name as alias.
fn targets<'a>(draft: &'a Draft, target: &'a str) -> Vec<&'a str> {
    draft
        .containers()
        .values()
        .filter(|container| {
            container.name == target
                || container
                    .memberships()
                    .iter()
                    .any(|membership| membership.aliases.iter().any(|alias| alias == target))
        })
        .map(|container| container.name.as_str())
        .collect()
}

/// Where one container goes. It keeps an alias on each of its suggested networks where a
/// fellow member talks to that alias, and nowhere else, since elsewhere no flow uses it. An
/// alias that is another container's name stays off a network that container joins, where
/// validation forbids it and the name already reaches that container.
fn placement<'a>(draft: &'a Draft, container: &'a Container, groups: &'a [(String, Vec<&'a str>)]) -> Placement<'a> {
    let aliases: BTreeSet<&str> =
        container.memberships().iter().flat_map(|membership| membership.aliases.iter().map(String::as_str)).collect();
    let mut networks: Vec<(&str, Vec<&str>)> = groups
        .iter()
        .filter(|(_, members)| members.contains(&container.name.as_str()))
        .map(|(network, members)| {
            let used = aliases
                .iter()
                .copied()
                .filter(|alias| {
                    !members.contains(alias)
                        && members
                            .iter()
                            .filter(|member| **member != container.name)
                            .any(|member| draft.containers()[*member].talks_to.iter().any(|flow| flow.target == *alias))
                })
                .collect();
            (network.as_str(), used)
        })
        .collect();
    networks.sort_unstable();
    let network_mode = match container.attachment {
        Attachment::Host => Some("host"),
        Attachment::Loopback => Some("none"),
        Attachment::Bridged(_) if networks.is_empty() => Some("none"),
        Attachment::Bridged(_) => None,
    };
    Placement { container, networks, network_mode }
}

/// A name for each group of containers: its members joined by `-` when that is a valid
/// name no other group would get, else `net-1`, `net-2`, ... in the order of the groups,
/// skipping names already given.
fn network_names(groups: &[Vec<usize>], names: &[&str]) -> Vec<String> {
    let joined: Vec<String> = groups
        .iter()
        .map(|members| members.iter().map(|member| names[*member]).collect::<Vec<_>>().join("-"))
        .collect();
    let unique =
        |name: &String| name.len() <= NAME_MAX_LEN && joined.iter().filter(|other| *other == name).count() == 1;
    let mut taken: BTreeSet<String> = joined.iter().filter(|name| unique(name)).cloned().collect();
    let mut number = 0;
    joined
        .iter()
        .map(|name| {
            if unique(name) {
                return name.clone();
            }
            loop {
                number += 1;
                let numbered = format!("net-{number}");
                if taken.insert(numbered.clone()) {
                    return numbered;
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::StackGraph;
    use crate::model::{Stack, validate_draft_file, validate_file};
    use crate::spec::SourceFile;

    fn file(text: &str) -> SourceFile {
        SourceFile { name: "test.yaml".to_owned(), text: text.to_owned() }
    }

    fn stack(text: &str) -> Stack {
        let validated = validate_file(&file(text));
        validated.stack.unwrap_or_else(|| panic!("invalid: {:#?}\n{text}", validated.diagnostics))
    }

    fn draft(text: &str) -> Draft {
        let drafted = validate_draft_file(&file(text));
        drafted.draft.unwrap_or_else(|| panic!("no draft: {:#?}\n{text}", drafted.diagnostics))
    }

    /// A layout in one line per network, `network: member, member (alias)`, and one per
    /// container without networks, `container: network_mode`.
    fn describe(stack: &Stack) -> Vec<String> {
        let mut lines: Vec<String> = stack
            .networks
            .keys()
            .map(|network| {
                let members: Vec<String> = stack
                    .members(network)
                    .map(|member| {
                        let aliases = &member.membership(network).expect("a member").aliases;
                        if aliases.is_empty() {
                            member.name.clone()
                        } else {
                            format!("{} ({})", member.name, aliases.join(", "))
                        }
                    })
                    .collect();
                format!("{network}: {}", members.join(", "))
            })
            .collect();
        for container in stack.containers.values() {
            match container.attachment {
                Attachment::Bridged(_) => {}
                Attachment::Loopback => lines.push(format!("{}: none", container.name)),
                Attachment::Host => lines.push(format!("{}: host", container.name)),
            }
        }
        lines
    }

    /// Every flow the original declares resolves in the suggestion, and every two members
    /// of a suggested network have a declared flow between them.
    fn assert_least_privilege(original: &Stack, suggested: &Stack) {
        let pairs = |stack| {
            StackGraph::build(stack)
                .declared_flows()
                .map(|flow| (flow.source, flow.destination))
                .collect::<BTreeSet<_>>()
        };
        let missing: Vec<_> = pairs(original).difference(&pairs(suggested)).cloned().collect();
        assert!(missing.is_empty(), "flows without a shared network: {missing:?}");
        for network in suggested.networks.keys() {
            assert_eq!(suggested.unflowed_pairs(network), Vec::<(String, String)>::new(), "on {network}");
        }
    }

    #[test]
    fn layouts_give_each_flow_a_network_and_nothing_more() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "three containers that all talk share one network",
                "name: s\nnetworks: {n: {}}\ncontainers:\n  \
                 a: {networks: [n], talks_to: [b, c]}\n  b: {networks: [n], talks_to: [c]}\n  c: {networks: [n]}\n",
                &["a-b-c: a, b, c"],
            ),
            (
                "an alias goes wherever a talker meets one of the containers that carry it",
                "name: s\nnetworks: {n: {}, m: {}}\ncontainers:\n  \
                 edge: {networks: [n], talks_to: [\"pool:80\"]}\n  \
                 a: {networks: {n: {aliases: [pool]}}}\n  b: {networks: {m: {aliases: [pool]}}}\n  \
                 c: {networks: {m: {aliases: [unused]}}}\n",
                &["a-edge: a (pool), edge", "b-edge: b (pool), edge", "c: none"],
            ),
            (
                "a flow to a name also reaches the containers that carry it as an alias elsewhere",
                "name: s\nnetworks: {n1: {}, n2: {}}\ncontainers:\n  \
                 db: {networks: [n1]}\n  newdb: {networks: {n2: {aliases: [db]}}}\n  \
                 app: {networks: [n1, n2], talks_to: [db]}\n",
                &["app-db: app, db", "app-newdb: app, newdb (db)"],
            ),
            (
                "an alias that is a name never joins that container, so the three do not share a network",
                "name: s\nnetworks: {n1: {}, n2: {}}\ncontainers:\n  \
                 db: {networks: [n1]}\n  newdb: {networks: {n1: {}, n2: {aliases: [db]}}, talks_to: [db]}\n  \
                 app: {networks: [n1, n2], talks_to: [db]}\n",
                &["app-db: app, db", "app-newdb: app, newdb (db)", "db-newdb: db, newdb"],
            ),
            (
                "one network per pair when the talkers do not talk to each other",
                "name: s\nnetworks: {n: {}}\ncontainers:\n  \
                 hub: {networks: [n], talks_to: [x, y]}\n  x: {networks: [n]}\n  y: {networks: [n]}\n",
                &["hub-x: hub, x", "hub-y: hub, y"],
            ),
            (
                "a silent container keeps a network only to publish its ports",
                "name: s\nnetworks: {n: {}}\ncontainers:\n  \
                 p: {networks: [n], ports: [\"127.0.0.1:80:80\"]}\n  q: {networks: [n]}\n  \
                 h: {network_mode: host}\n  l: {network_mode: none, netns: /run/netns/l}\n",
                &["p: p", "h: host", "l: none", "q: none"],
            ),
            (
                "names that would repeat or run long are numbered",
                "name: s\nnetworks: {n: {}}\ncontainers:\n  \
                 a-b: {networks: [n], talks_to: [c]}\n  c: {networks: [n]}\n  \
                 a: {networks: [n], talks_to: [b-c]}\n  b-c: {networks: [n]}\n  \
                 the-first-container-with-a-long-name: {networks: [n], talks_to: [the-second-container-with-a-long-name]}\n  \
                 the-second-container-with-a-long-name: {networks: [n]}\n",
                &[
                    "net-1: a, b-c",
                    "net-2: a-b, c",
                    "net-3: the-first-container-with-a-long-name, the-second-container-with-a-long-name",
                ],
            ),
            (
                "names that YAML would read as other things survive the round trip",
                "name: \"true\"\nnetworks: {n: {}}\ncontainers:\n  \
                 \"9lives\": {networks: [n], talks_to: [\"null:53/udp\"]}\n  \
                 \"null\": {networks: {n: {aliases: [\"no\"]}}}\n  \
                 yes.sir: {networks: [n], talks_to: [\"no\"]}\n",
                &["9lives-null: 9lives, null", "null-yes.sir: null (no), yes.sir"],
            ),
        ];
        for (what, text, expected) in cases {
            let original = stack(text);
            let suggested = stack(&suggest(&draft(text)));
            assert_eq!(describe(&suggested), *expected, "{what}");
            assert_eq!(suggested.name, original.name, "{what}");
            for (name, container) in &original.containers {
                let kept = &suggested.containers[name];
                assert_eq!(
                    (&kept.talks_to, &kept.ports, &kept.netns),
                    (&container.talks_to, &container.ports, &container.netns),
                    "{what}: {name}"
                );
            }
            assert_least_privilege(&original, &suggested);
        }
    }

    #[test]
    fn missing_or_insufficient_networks_change_nothing_in_the_layout() {
        // Each file beside one with the same containers and flows on networks that carry
        // them: the layout depends on the flows, not on the networks they were given.
        let cases: &[(&str, &str, &str)] = &[
            (
                "containers without networks",
                "name: s\ncontainers:\n  a: {talks_to: [b, c]}\n  b: {talks_to: [c]}\n  c: {}\n  \
                 p: {ports: [\"127.0.0.1:80:80\"]}\n  q: {}\n",
                "name: s\nnetworks: {n: {}}\ncontainers:\n  a: {networks: [n], talks_to: [b, c]}\n  \
                 b: {networks: [n], talks_to: [c]}\n  c: {networks: [n]}\n  \
                 p: {networks: [n], ports: [\"127.0.0.1:80:80\"]}\n  q: {network_mode: none}\n",
            ),
            (
                "an alias on a network its talker does not join",
                "name: s\nnetworks: {n: {}, m: {}}\ncontainers:\n  \
                 edge: {networks: [n], talks_to: [\"pool:80\"]}\n  a: {networks: {m: {aliases: [pool]}}}\n",
                "name: s\nnetworks: {n: {}}\ncontainers:\n  \
                 edge: {networks: [n], talks_to: [\"pool:80\"]}\n  a: {networks: {n: {aliases: [pool]}}}\n",
            ),
            (
                "ports on a container of internal networks only",
                "name: s\nnetworks: {i: {internal: true}}\ncontainers:\n  \
                 p: {networks: [i], ports: [\"127.0.0.1:80:80\"]}\n",
                "name: s\nnetworks: {n: {}}\ncontainers:\n  p: {networks: [n], ports: [\"127.0.0.1:80:80\"]}\n",
            ),
        ];
        for (what, gapped, carried) in cases {
            assert!(validate_file(&file(gapped)).stack.is_none(), "{what}: the file has no gap");
            let drafted = validate_draft_file(&file(gapped));
            assert!(!drafted.gaps.is_empty(), "{what}: no gap found");
            assert_eq!(suggest(&draft(gapped)), suggest(&draft(carried)), "{what}");
            assert_least_privilege(&stack(carried), &stack(&suggest(&draft(gapped))));
        }
    }

    #[test]
    fn an_empty_stack_suggests_an_empty_stack() {
        let suggested = suggest(&draft("name: empty\n"));
        assert!(suggested.ends_with("name: empty\nnetworks: {}\ncontainers: {}\n"), "{suggested}");
        assert_eq!(describe(&stack(&suggested)), Vec::<String>::new());
    }
}
