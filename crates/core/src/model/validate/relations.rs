//! Checks of what holds between containers: addresses, aliases, published ports and flows
//! that meet, and the over-privilege of open networks.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

use super::Checker;
use crate::diagnostic::{Diagnostic, Span};
use crate::model::identifiers::suggest_name;
use crate::model::publish::{conflicts, same_random};
use crate::model::{Attachment, HOST, Publication, Stack, write_publication};

/// The most ports a Linux bridge has: `BR_MAX_PORTS` (1024) less port 0, which the kernel
/// never gives (`net/bridge/br_if.c`).
const BRIDGE_PORTS: usize = 1023;

impl Checker {
    /// A declared subnet must hold its gateway, every member and a virtual address per
    /// alias; otherwise lowering would run out of addresses with no place in the file to
    /// point at.
    pub(super) fn subnet_capacity(&mut self, stack: &Stack) {
        for network in stack.networks.values() {
            let Some(subnet) = network.subnet else { continue };
            let members = stack.members(&network.name).count() as u64;
            let aliases = stack.aliases_on(&network.name).len() as u64;
            let needed = members + aliases;
            // The network, broadcast and gateway addresses are not for containers.
            let room = (1u64 << (32 - subnet.prefix_len())).saturating_sub(3);
            if needed <= room {
                continue;
            }
            let prefix = (3..=30u8).rev().find(|prefix| (1u64 << (32 - prefix)) - 3 >= needed);
            let wanted = match aliases {
                0 => format!("{members} join it"),
                _ => format!(
                    "{members} container{} and {aliases} alias{} need one",
                    if members == 1 { "" } else { "s" },
                    if aliases == 1 { "" } else { "es" }
                ),
            };
            let diagnostic = Diagnostic::error(
                self.subnet_spans[&network.name],
                format!(
                    "subnet {subnet} of network `{}` has room for {room} address{} besides its gateway, but {wanted}",
                    network.name,
                    if room == 1 { "" } else { "es" }
                ),
                "subnet too small",
            );
            self.error(match prefix {
                Some(prefix) => diagnostic.with_help(format!("use a prefix of /{prefix} or shorter")),
                None => diagnostic,
            });
        }
    }

    /// A network is a Linux bridge, and each member is one port of it: the kernel numbers a
    /// bridge's ports below `BR_MAX_PORTS` (1024) and keeps port 0, so the 1024th member
    /// would fail apply part way, with "Exchange full".
    pub(super) fn bridge_ports(&mut self, stack: &Stack) {
        for network in stack.networks.values() {
            let members = stack.members(&network.name).count();
            if members <= BRIDGE_PORTS {
                continue;
            }
            self.error(
                Diagnostic::error(
                    self.network_names[&network.name],
                    format!(
                        "network `{}` has {members} members, but a Linux bridge holds at most {BRIDGE_PORTS} ports \
                         (the kernel's BR_MAX_PORTS is 1024, and port 0 is never given)",
                        network.name
                    ),
                    "too many members for one bridge",
                )
                .with_help(format!(
                    "split the members over networks of at most {BRIDGE_PORTS} each (a container may join several)"
                )),
            );
        }
    }

    pub(super) fn static_addresses(&mut self, stack: &Stack) {
        let mut first: HashMap<(&str, Ipv4Addr), &str> = HashMap::new();
        for container in self.in_file_order(stack) {
            for membership in container.memberships() {
                let Some(address) = membership.ipv4 else { continue };
                let key = (membership.network.as_str(), address);
                match first.get(&key) {
                    None => {
                        first.insert(key, &container.name);
                    }
                    Some(owner) => {
                        let here = self.ipv4_span(&container.name, &membership.network);
                        let there = self.ipv4_span(owner, &membership.network);
                        self.error(
                            Diagnostic::error(
                                here,
                                format!(
                                    "containers `{owner}` and `{}` both have address {address} on network `{}`",
                                    container.name, membership.network
                                ),
                                "address already taken",
                            )
                            .with_related(there, "first taken here"),
                        );
                    }
                }
            }
        }
    }

    pub(super) fn aliases(&mut self, stack: &Stack) {
        for container in stack.containers.values() {
            for membership in container.memberships() {
                for (index, alias) in membership.aliases.iter().enumerate() {
                    let clash = stack.members(&membership.network).find(|member| member.name == *alias);
                    if let Some(member) = clash {
                        let span =
                            self.memberships[&(container.name.clone(), membership.network.clone())].aliases[index];
                        let whose = if member.name == container.name {
                            "its own name".to_owned()
                        } else {
                            format!("the name of container `{}`", member.name)
                        };
                        self.error(
                            Diagnostic::error(
                                span,
                                format!(
                                    "alias `{alias}` of container `{}` on network `{}` is {whose}",
                                    container.name, membership.network
                                ),
                                "alias equal to a container name",
                            )
                            .with_related(self.container_names[&member.name], "container declared here"),
                        );
                    }
                }
            }
        }
    }

    pub(super) fn publications(&mut self, stack: &Stack) {
        let mut seen: Vec<(&str, usize, &Publication)> = Vec::new();
        for container in self.in_file_order(stack) {
            // Ports on a `none` or `host` container are an error of their own already; a
            // warning about the same entry would only repeat it.
            if !matches!(container.attachment, Attachment::Bridged(_)) {
                continue;
            }
            let spans = self.publication_spans[&container.name].clone();
            for (index, publication) in container.ports.iter().enumerate() {
                let span = spans[index];
                if let Some((owner, owner_index, earlier)) = seen.iter().find(|(owner, _, earlier)| {
                    conflicts(earlier, publication) || (*owner == container.name && same_random(earlier, publication))
                }) {
                    let there = self.publication_spans[*owner][*owner_index];
                    self.error(
                        Diagnostic::error(
                            span,
                            format!(
                                "container `{}` publishes {publication}, which {} already publishes as {earlier}",
                                container.name,
                                if *owner == container.name { "it".to_owned() } else { format!("container `{owner}`") }
                            ),
                            "host port already published",
                        )
                        .with_related(there, "first published here"),
                    );
                } else if publication.host_ip.is_none() {
                    self.diagnostics.push(
                        Diagnostic::warning(
                            span,
                            format!("container `{}` publishes {publication} on all interfaces", container.name),
                            "reachable from every network the host is on",
                        )
                        .with_help(format!(
                            "bind it to one address, such as `{}`",
                            write_publication(&Publication { host_ip: Some(Ipv4Addr::LOCALHOST), ..*publication })
                        )),
                    );
                }
                seen.push((&container.name, index, publication));
            }
            let bridged = container.memberships();
            if !container.ports.is_empty()
                && !bridged.is_empty()
                && bridged.iter().all(|membership| stack.networks[&membership.network].internal)
            {
                // What is missing is a network that reaches outside: a gap.
                self.gap(
                    Diagnostic::error(
                        spans[0],
                        format!("container `{}` publishes ports but joins only internal networks", container.name),
                        "unreachable publication",
                    )
                    .with_help("join a network that is not `internal: true`, or remove `ports`"),
                );
            }
        }
    }

    pub(super) fn flows(&mut self, stack: &Stack) {
        let targets: BTreeSet<&str> = stack
            .containers
            .values()
            .flat_map(|container| {
                let aliases =
                    container.memberships().iter().flat_map(|membership| membership.aliases.iter().map(String::as_str));
                std::iter::once(container.name.as_str()).chain(aliases)
            })
            .collect();
        for container in stack.containers.values() {
            let spans = self.flow_spans[&container.name].clone();
            for (flow, span) in container.talks_to.iter().zip(spans) {
                let target = flow.target.as_str();
                let own_alias = container
                    .memberships()
                    .iter()
                    .any(|membership| membership.aliases.iter().any(|alias| alias == target));
                if target == HOST {
                    // A container on no network is a gap of its own already.
                    if let Some(mode) = network_mode(&container.attachment) {
                        self.error(
                            Diagnostic::error(
                                span,
                                format!(
                                    "container `{}` talks to the host but has `network_mode: {mode}`, so no network \
                                     carries the flow",
                                    container.name
                                ),
                                "flow to the host without a network",
                            )
                            .with_help(match container.attachment {
                                Attachment::Host => "a host-mode container is on the host already: remove this flow",
                                _ => "give the container networks, or remove this flow",
                            }),
                        );
                    }
                } else if target == container.name || (own_alias && stack.resolve(container, target).next().is_none()) {
                    self.error(
                        Diagnostic::error(
                            span,
                            format!("container `{}` talks to itself", container.name),
                            "flow to itself",
                        )
                        .with_help("a container always reaches itself: remove this flow"),
                    );
                } else if !targets.contains(target) {
                    let diagnostic = Diagnostic::error(
                        span,
                        format!("container `{}` talks to `{target}`, which is no container or alias", container.name),
                        "unknown target",
                    );
                    self.error(match suggest_name(target, targets.iter().copied().chain([HOST])) {
                        Some(near) => diagnostic.with_help(format!("did you mean `{near}`?")),
                        None => diagnostic,
                    });
                } else if stack.resolve(container, target).next().is_none() {
                    match unreachable_target(stack, &container.name, target, span) {
                        Unreachable::Gap(diagnostic) => self.gap(diagnostic),
                        Unreachable::Error(diagnostic) => self.error(diagnostic),
                    }
                }
            }
        }
    }

    /// On `open` networks every member reaches every other: warn of the pairs that no
    /// declared flow asks for, one warning per network.
    pub(super) fn over_privilege(&mut self, stack: &Stack) {
        for (network, pairs) in stack.unflowed_pairs_of_open_networks() {
            let network = &stack.networks[network];
            if pairs.is_empty() {
                continue;
            }
            const SHOWN: usize = 5;
            let mut listed =
                pairs.iter().take(SHOWN).map(|(a, b)| format!("`{a}` and `{b}`")).collect::<Vec<_>>().join(", ");
            if pairs.len() > SHOWN {
                listed.push_str(&format!(" and {} more", pairs.len() - SHOWN));
            }
            self.diagnostics.push(
                Diagnostic::warning(
                    self.network_names[&network.name],
                    format!(
                        "open network `{}` lets {} reach each other with no declared flow: {listed}",
                        network.name,
                        if pairs.len() == 1 { "1 pair".to_owned() } else { format!("{} pairs", pairs.len()) }
                    ),
                    "over-privileged network",
                )
                .with_help("set `isolation: flows` to let only declared flows pass"),
            );
        }
    }
}

/// Why a flow's target cannot be reached, as a gap in the networks when networks could carry
/// the flow, else as an error.
enum Unreachable {
    Gap(Diagnostic),
    Error(Diagnostic),
}

/// Why a flow's target cannot be reached: a container that shares no network with the
/// source, or an alias declared only on networks the source does not join. Both are gaps,
/// unless an end has a `network_mode`, which no network can change.
fn unreachable_target(stack: &Stack, source: &str, target: &str, span: Span) -> Unreachable {
    let (diagnostic, help) = if stack.containers.contains_key(target) {
        (
            Diagnostic::error(
                span,
                format!(
                    "container `{source}` talks to `{target}` but shares no network with it, so it could never connect"
                ),
                "no shared network",
            ),
            "join both to one network, or run `stackctl suggest` for a layout".to_owned(),
        )
    } else {
        let networks: BTreeSet<&str> = stack
            .containers
            .values()
            .flat_map(|holder| holder.memberships())
            .filter(|membership| membership.aliases.iter().any(|alias| alias == target))
            .map(|membership| membership.network.as_str())
            .collect();
        let listed = networks.iter().map(|network| format!("`{network}`")).collect::<Vec<_>>().join(", ");
        (
            Diagnostic::error(
                span,
                format!(
                    "container `{source}` talks to alias `{target}`, which is declared only on {listed}, which `{source}` does not join"
                ),
                "alias not on a shared network",
            ),
            format!("join `{source}` to {listed}, or declare the alias on a network both share"),
        )
    };
    // Only bridged containers hold aliases, so an alias's holders have no network mode.
    let moded = [source, target].into_iter().filter_map(|end| stack.containers.get(end)).find_map(|end| {
        let mode = network_mode(&end.attachment)?;
        Some((end.name.as_str(), mode))
    });
    match moded {
        Some((end, mode)) => Unreachable::Error(diagnostic.with_help(format!(
            "`{end}` has `network_mode: {mode}`, so no network can carry this flow: remove the flow, or remove \
             `network_mode` and give `{end}` networks"
        ))),
        None => Unreachable::Gap(diagnostic.with_help(help)),
    }
}

/// The `network_mode` a container was given, as written; `None` for a bridged container.
fn network_mode(attachment: &Attachment) -> Option<&'static str> {
    match attachment {
        Attachment::Bridged(_) => None,
        Attachment::Loopback => Some("none"),
        Attachment::Host => Some("host"),
    }
}
