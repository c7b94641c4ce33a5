//! Checks of each container on its own: its networks, addresses, ports and flows as written.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_saphyr::Spanned;

use super::{Checker, MembershipSpans};
use crate::diagnostic::{Diagnostic, Span};
use crate::model::addresses::{default_gateway, host_problem, parse_address};
use crate::model::identifiers::suggest_name;
use crate::model::syntax::{parse_flow, parse_publication};
use crate::model::{Attachment, Container, Flow, Membership, Network, Publication};
use crate::spec::{ContainerSpec, NetworkMode};

impl Checker {
    pub(super) fn container(
        &mut self,
        name: &Spanned<String>,
        spec: &ContainerSpec,
        networks: &BTreeMap<String, Network>,
    ) -> Container {
        self.name(name, "container");
        self.unreserved(name, "container");
        let span = Span::of(name);
        self.container_names.insert(name.value.clone(), span);
        let memberships = self.memberships(&name.value, spec, networks);
        let attachment = match &spec.network_mode {
            // Unknown networks are reported already; only a container that names none is bare.
            // It is bridged all the same, on no network yet: its ports are checked like any
            // other's, and `suggest` gives it the networks its flows need.
            None if spec.networks.0.is_empty() => {
                self.gap(
                    Diagnostic::error(span, format!("container `{}` joins no network", name.value), "no network")
                        .with_help(
                            "add `networks: [NAME]` (`stackctl suggest` derives them from the flows), or \
                             `network_mode: none` for a container with loopback only",
                        ),
                );
                Attachment::Bridged(Vec::new())
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
    pub(super) fn parse_each<'s, T>(
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

    pub(super) fn memberships(
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
                self.unreserved(alias, "alias");
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

    pub(super) fn static_address(
        &mut self,
        container: &str,
        network: &Network,
        ipv4: &Spanned<String>,
    ) -> Option<Ipv4Addr> {
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
}
