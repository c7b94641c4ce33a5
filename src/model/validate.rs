//! From a [`StackSpec`] to a [`Stack`], reporting every mistake at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use serde_saphyr::Spanned;

use super::addresses::{default_gateway, host_problem, parse_address, parse_subnet};
use super::names::{name_problem, suggest_name};
use super::publish::{conflicts, same_random};
use super::syntax::{parse_flow, parse_publication};
use super::{Attachment, Container, Flow, Membership, Network, Publication, Stack};
use crate::diagnostic::{Diagnostic, Span};
use crate::graph::StackGraph;
use crate::spec::{ContainerSpec, Isolation, NetworkMode, NetworkSpec, StackSpec};

/// The outcome of validation: the stack when there was no error, and every finding.
#[derive(Debug)]
pub struct Validated {
    pub stack: Option<Stack>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Checks a stack file and builds its model. Errors and warnings come back sorted by their
/// place in the file.
pub fn validate(spec: &StackSpec) -> Validated {
    let mut check = Checker::default();
    check.name(&spec.name, "stack");
    let networks: BTreeMap<String, Network> =
        spec.networks.0.iter().map(|(name, network)| (name.value.clone(), check.network(name, network))).collect();
    check.overlapping_subnets(&networks);
    let containers: BTreeMap<String, Container> = spec
        .containers
        .0
        .iter()
        .map(|(name, container)| (name.value.clone(), check.container(name, container, &networks)))
        .collect();
    let stack = Stack::new(spec.name.value.clone(), networks, containers);
    check.static_addresses(&stack);
    check.aliases(&stack);
    check.publications(&stack);
    check.flows(&stack);

    let failed = check.diagnostics.iter().any(Diagnostic::is_error);
    if !failed {
        check.over_privilege(&stack);
    }
    let mut diagnostics = check.diagnostics;
    diagnostics.sort_by_key(|diagnostic| (diagnostic.span.offset, diagnostic.severity));
    Validated { stack: (!failed).then_some(stack), diagnostics }
}

/// Collects findings while the model is built, and remembers where each value was written
/// so that checks spanning several containers can point at both places.
#[derive(Default)]
struct Checker {
    diagnostics: Vec<Diagnostic>,
    network_names: HashMap<String, Span>,
    subnet_spans: HashMap<String, Span>,
    container_names: HashMap<String, Span>,
    /// (container, network) to the place of the membership, its aliases and its address.
    memberships: HashMap<(String, String), MembershipSpans>,
    /// Each container's publications and flows, in the order of its lists.
    publication_spans: HashMap<String, Vec<Span>>,
    flow_spans: HashMap<String, Vec<Span>>,
}

#[derive(Default)]
struct MembershipSpans {
    aliases: Vec<Span>,
    ipv4: Option<Span>,
}

impl Checker {
    fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn name(&mut self, name: &Spanned<String>, what: &str) {
        if let Some(problem) = name_problem(&name.value) {
            self.error(Diagnostic::error(
                Span::of(name),
                format!("invalid {what} name `{}`: {problem}", name.value),
                format!("invalid {what} name"),
            ));
        }
    }

    fn network(&mut self, name: &Spanned<String>, spec: &NetworkSpec) -> Network {
        self.name(name, "network");
        self.network_names.insert(name.value.clone(), Span::of(name));
        if let Some(subnet) = &spec.subnet {
            self.subnet_spans.insert(name.value.clone(), Span::of(subnet));
        }
        let subnet = spec.subnet.as_ref().and_then(|subnet| match parse_subnet(&subnet.value) {
            Ok(net) => Some(net),
            Err((message, help)) => {
                let diagnostic = Diagnostic::error(
                    Span::of(subnet),
                    format!("network `{}`: {message}", name.value),
                    "invalid subnet",
                );
                self.error(match help {
                    Some(help) => diagnostic.with_help(help),
                    None => diagnostic,
                });
                None
            }
        });
        let gateway = spec.gateway.as_ref().and_then(|gateway| {
            let span = Span::of(gateway);
            let address = match parse_address(&gateway.value) {
                Ok(address) => address,
                Err(message) => {
                    self.error(Diagnostic::error(
                        span,
                        format!("network `{}`: {message}", name.value),
                        "invalid gateway",
                    ));
                    return None;
                }
            };
            match (subnet, spec.subnet.is_some()) {
                (Some(subnet), _) => {
                    if let Some(problem) = host_problem(address, subnet) {
                        self.error(Diagnostic::error(
                            span,
                            format!("network `{}`: gateway {problem}", name.value),
                            "gateway outside the subnet's hosts",
                        ));
                    }
                }
                // The subnet itself is wrong and already reported.
                (None, true) => {}
                (None, false) => self.error(
                    Diagnostic::error(
                        span,
                        format!("network `{}`: a gateway needs a declared subnet", name.value),
                        "gateway without subnet",
                    )
                    .with_help("declare `subnet:` too, or remove `gateway:` to let stackctl pick both"),
                ),
            }
            Some(address)
        });
        Network {
            name: name.value.clone(),
            subnet,
            gateway,
            internal: spec.internal,
            isolation: spec.isolation.as_ref().map_or(Isolation::default(), |isolation| isolation.value),
        }
    }

    fn overlapping_subnets(&mut self, networks: &BTreeMap<String, Network>) {
        let mut declared: Vec<(&Network, ipnet::Ipv4Net)> =
            networks.values().filter_map(|network| Some((network, network.subnet?))).collect();
        declared.sort_by_key(|(_, subnet)| (subnet.network(), subnet.prefix_len()));
        // Sorted by start, a subnet can only overlap the widest one before it.
        let mut widest: Option<(&Network, ipnet::Ipv4Net)> = None;
        for (network, subnet) in declared {
            if let Some((earlier, earlier_subnet)) = widest
                && earlier_subnet.contains(&subnet.network())
            {
                // The error goes to whichever of the two was written later; the other is
                // the context.
                let (mut first, mut second) = ((earlier, earlier_subnet), (network, subnet));
                if self.subnet_spans[&first.0.name] > self.subnet_spans[&second.0.name] {
                    std::mem::swap(&mut first, &mut second);
                }
                self.error(
                    Diagnostic::error(
                        self.subnet_spans[&second.0.name],
                        format!(
                            "subnet {} of network `{}` overlaps subnet {} of network `{}`",
                            second.1, second.0.name, first.1, first.0.name
                        ),
                        "overlapping subnet",
                    )
                    .with_related(self.subnet_spans[&first.0.name], "overlapped subnet"),
                );
            }
            if widest.is_none_or(|(_, w)| subnet.broadcast() > w.broadcast()) {
                widest = Some((network, subnet));
            }
        }
    }

    fn container(
        &mut self,
        name: &Spanned<String>,
        spec: &ContainerSpec,
        networks: &BTreeMap<String, Network>,
    ) -> Container {
        self.name(name, "container");
        let span = Span::of(name);
        self.container_names.insert(name.value.clone(), span);
        let memberships = self.memberships(&name.value, spec, networks);
        let attachment = match &spec.network_mode {
            // Unknown networks are reported already; only a container that names none is bare.
            None if spec.networks.0.is_empty() => {
                self.error(
                    Diagnostic::error(span, format!("container `{}` joins no network", name.value), "no network")
                        .with_help(
                            "add `networks: [NAME]`, or `network_mode: none` for a container with loopback only",
                        ),
                );
                Attachment::Loopback
            }
            None => Attachment::Bridged(memberships),
            Some(mode) => {
                let mode_name = match mode.value {
                    NetworkMode::None => "none",
                    NetworkMode::Host => "host",
                };
                if let Some((network, _)) = spec.networks.0.first() {
                    self.error(
                        Diagnostic::error(
                            Span::of(network),
                            format!("container `{}` has `network_mode: {mode_name}` and networks", name.value),
                            "network with network_mode",
                        )
                        .with_related(Span::of(mode), "network mode set here")
                        .with_help("remove either `network_mode` or `networks`"),
                    );
                }
                if let Some(port) = spec.ports.first() {
                    self.error(
                        Diagnostic::error(
                            Span::of(&port.0),
                            format!("container `{}` has `network_mode: {mode_name}` and published ports", name.value),
                            "port with network_mode",
                        )
                        .with_related(Span::of(mode), "network mode set here")
                        .with_help(match mode.value {
                            NetworkMode::Host => "a host-mode container's ports are the host's ports: remove `ports`",
                            NetworkMode::None => "a container without networks cannot be reached: remove `ports`",
                        }),
                    );
                }
                if let (NetworkMode::Host, Some(netns)) = (mode.value, &spec.netns) {
                    self.error(
                        Diagnostic::error(
                            Span::of(netns),
                            format!("container `{}` has `network_mode: host` and its own `netns`", name.value),
                            "netns with host mode",
                        )
                        .with_related(Span::of(mode), "network mode set here"),
                    );
                }
                match mode.value {
                    NetworkMode::None => Attachment::Loopback,
                    NetworkMode::Host => Attachment::Host,
                }
            }
        };
        if let Some(netns) = &spec.netns
            && !netns.value.starts_with('/')
        {
            self.error(
                Diagnostic::error(
                    Span::of(netns),
                    format!("container `{}`: netns `{}` is not an absolute path", name.value, netns.value),
                    "relative path",
                )
                .with_help(format!("did you mean `/run/netns/{}`?", netns.value)),
            );
        }
        let ports = self.parse_each(
            &name.value,
            spec.ports.iter().map(|port| &port.0),
            parse_publication,
            "invalid published port",
        );
        let talks_to = self.parse_each(&name.value, spec.talks_to.iter(), parse_flow, "invalid flow");
        let (publication_spans, ports): (Vec<Span>, Vec<Publication>) = ports.into_iter().unzip();
        let (flow_spans, talks_to): (Vec<Span>, Vec<Flow>) = talks_to.into_iter().unzip();
        self.publication_spans.insert(name.value.clone(), publication_spans);
        self.flow_spans.insert(name.value.clone(), flow_spans);
        Container {
            name: name.value.clone(),
            attachment,
            netns: spec.netns.as_ref().map(|netns| netns.value.clone()),
            talks_to,
            ports,
        }
    }

    /// Parses each string of a list, reporting the ones that do not parse and keeping the
    /// place of the ones that do.
    fn parse_each<'s, T>(
        &mut self,
        container: &str,
        texts: impl Iterator<Item = &'s Spanned<String>>,
        parse: fn(&str) -> Result<T, String>,
        label: &str,
    ) -> Vec<(Span, T)> {
        texts
            .filter_map(|text| match parse(&text.value) {
                Ok(value) => Some((Span::of(text), value)),
                Err(message) => {
                    self.error(Diagnostic::error(Span::of(text), format!("container `{container}`: {message}"), label));
                    None
                }
            })
            .collect()
    }

    fn memberships(
        &mut self,
        container: &str,
        spec: &ContainerSpec,
        networks: &BTreeMap<String, Network>,
    ) -> Vec<Membership> {
        let mut memberships: Vec<Membership> = Vec::new();
        for (network_name, settings) in &spec.networks.0 {
            let span = Span::of(network_name);
            let Some(network) = networks.get(&network_name.value) else {
                let diagnostic = Diagnostic::error(
                    span,
                    format!("container `{container}` joins unknown network `{}`", network_name.value),
                    "unknown network",
                );
                self.error(match suggest_name(&network_name.value, networks.keys().map(String::as_str)) {
                    Some(near) => diagnostic.with_help(format!("did you mean `{near}`?")),
                    None => diagnostic.with_help("declare it under `networks:`"),
                });
                continue;
            };
            if memberships.iter().any(|earlier| earlier.network == network.name) {
                self.error(Diagnostic::error(
                    span,
                    format!("container `{container}` joins network `{}` twice", network.name),
                    "joined again here",
                ));
                continue;
            }
            let mut aliases: Vec<String> = Vec::new();
            let mut spans = MembershipSpans::default();
            for alias in &settings.aliases {
                self.name(alias, "alias");
                if aliases.contains(&alias.value) {
                    self.error(Diagnostic::error(
                        Span::of(alias),
                        format!(
                            "container `{container}` declares alias `{}` twice on network `{}`",
                            alias.value, network.name
                        ),
                        "repeated alias",
                    ));
                    continue;
                }
                aliases.push(alias.value.clone());
                spans.aliases.push(Span::of(alias));
            }
            let ipv4 = settings.ipv4.as_ref().and_then(|ipv4| {
                spans.ipv4 = Some(Span::of(ipv4));
                self.static_address(container, network, ipv4)
            });
            self.memberships.insert((container.to_owned(), network.name.clone()), spans);
            memberships.push(Membership { network: network.name.clone(), aliases, ipv4 });
        }
        memberships
    }

    fn static_address(&mut self, container: &str, network: &Network, ipv4: &Spanned<String>) -> Option<Ipv4Addr> {
        let span = Span::of(ipv4);
        let address = match parse_address(&ipv4.value) {
            Ok(address) => address,
            Err(message) => {
                self.error(Diagnostic::error(span, format!("container `{container}`: {message}"), "invalid address"));
                return None;
            }
        };
        let Some(subnet) = network.subnet else {
            self.error(
                Diagnostic::error(span, format!("container `{container}`: static address {address} on network `{}`, which has no declared subnet", network.name), "static address without subnet")
                    .with_help(format!("declare `subnet:` on network `{}`", network.name)),
            );
            return None;
        };
        let gateway = network.gateway.unwrap_or_else(|| default_gateway(subnet));
        let problem = host_problem(address, subnet).or_else(|| {
            (address == gateway).then(|| format!("address {address} is the gateway of network `{}`", network.name))
        });
        match problem {
            Some(problem) => {
                self.error(Diagnostic::error(span, format!("container `{container}`: {problem}"), "unusable address"));
                None
            }
            None => Some(address),
        }
    }

    /// The stack's containers in the order the file declares them, so that a conflict is
    /// reported at the second place a person reads, with the first one as its context.
    fn in_file_order<'s>(&self, stack: &'s Stack) -> Vec<&'s Container> {
        let mut containers: Vec<&Container> = stack.containers.values().collect();
        containers.sort_by_key(|container| self.container_names[&container.name].offset);
        containers
    }

    fn static_addresses(&mut self, stack: &Stack) {
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

    fn ipv4_span(&self, container: &str, network: &str) -> Span {
        self.memberships[&(container.to_owned(), network.to_owned())].ipv4.unwrap_or_default()
    }

    fn aliases(&mut self, stack: &Stack) {
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

    fn publications(&mut self, stack: &Stack) {
        let mut seen: Vec<(&str, usize, &Publication)> = Vec::new();
        for container in self.in_file_order(stack) {
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
                            "bind it to one address, such as `127.0.0.1:{}`",
                            publication_text_without_ip(publication)
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
                self.error(
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

    fn flows(&mut self, stack: &Stack) {
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
                if target == container.name || (own_alias && stack.resolve(container, target).next().is_none()) {
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
                    self.error(match suggest_name(target, targets.iter().copied()) {
                        Some(near) => diagnostic.with_help(format!("did you mean `{near}`?")),
                        None => diagnostic,
                    });
                } else if stack.resolve(container, target).next().is_none() {
                    self.error(
                        Diagnostic::error(span, format!("container `{}` talks to `{target}` but shares no network with it, so it could never connect", container.name), "no shared network")
                            .with_help("join both to one network, or run `stackctl suggest` for a layout"),
                    );
                }
            }
        }
    }

    /// On `open` networks every member reaches every other: warn of the pairs that no
    /// declared flow asks for, one warning per network.
    fn over_privilege(&mut self, stack: &Stack) {
        let graph = StackGraph::build(stack);
        for network in stack.networks.values().filter(|network| network.isolation == Isolation::Open) {
            let pairs = graph.unflowed_pairs(&network.name);
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

/// A publication written back without its host address, for the fix of a warning.
fn publication_text_without_ip(publication: &Publication) -> String {
    // With no host port the address still needs its colon: `127.0.0.1::443` picks one.
    let host = publication.host_ports.map_or_else(|| ":".to_owned(), |ports| format!("{ports}:"));
    format!("{host}{}/{}", publication.container_ports, publication.protocol)
}
