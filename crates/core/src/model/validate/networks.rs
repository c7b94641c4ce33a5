//! Checks of each network on its own, and of subnets against each other.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;

use serde_saphyr::Spanned;

use super::Checker;
use crate::diagnostic::{Diagnostic, Span};
use crate::model::addresses::{host_problem, parse_address, parse_subnet};
use crate::model::{Network, overlaps};
use crate::spec::{Isolation, NetworkSpec};

impl Checker {
    pub(super) fn network(&mut self, name: &Spanned<String>, spec: &NetworkSpec) -> Network {
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

    /// Reports every pair of overlapping subnets once, at the one written later. Networks are
    /// few, so comparing every pair is cheap, and unlike a sweep it misses no pair.
    pub(super) fn overlapping_subnets(&mut self, networks: &BTreeMap<String, Network>) {
        let mut declared: Vec<(&Network, Ipv4Net)> =
            networks.values().filter_map(|network| Some((network, network.subnet?))).collect();
        declared.sort_by_key(|(network, _)| self.subnet_spans[&network.name]);
        for (index, (network, subnet)) in declared.iter().enumerate() {
            for (earlier, earlier_subnet) in &declared[..index] {
                if overlaps(subnet, earlier_subnet) {
                    self.error(
                        Diagnostic::error(
                            self.subnet_spans[&network.name],
                            format!(
                                "subnet {subnet} of network `{}` overlaps subnet {earlier_subnet} of network `{}`",
                                network.name, earlier.name
                            ),
                            "overlapping subnet",
                        )
                        .with_related(self.subnet_spans[&earlier.name], "overlapped subnet"),
                    );
                }
            }
        }
    }
}
