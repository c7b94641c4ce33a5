//! Published ports, probed from the host: each publication must arrive in its container
//! from every host address it was asked for (every address of the host, for a port
//! published without one) and from no other address of the host.
//!
//! [`survey`] chooses the probes. The host addresses are the columns of a table whose rows
//! are the published port ranges: 127.0.0.1, every other address of the host's interfaces
//! that lies on a subnet (its bridges' gateways too), and every host address a publication
//! names. The rest of loopback's subnet is left out unless named, and so is a single
//! address (`/32`): on a bridge it is an alias's virtual address, which the alias's rule
//! sends to its containers on every port, whatever a publication says. 127.0.0.1 is always
//! probed: a host whose loopback is down answers nothing there, and its cells say so. Each
//! cell is one publication on one address, and its probes go to the first host port of the
//! range and, for a range, to its last too (both ends of the mapping); a random port is
//! probed where it was picked, as the observed state has it. A probe goes only to an
//! address the host has. On a named address the host lacks nothing can be sent: the
//! publication that names it cannot arrive there, and its cell is wrong with no probe
//! ([`Missing::HostAddress`]); every other publication, on all interfaces or on another
//! address, is expected neither to arrive there nor not to ([`Spot::expected`] is `None`,
//! the mark `-`), since "all interfaces" are the host's own.
//!
//! # What counts as arrived
//!
//! From the host, "connected" and "connection refused" prove nothing: a host port that no
//! rule forwards is the host's own, and the host answers it itself, with a reset when
//! nothing listens there or with whatever listens there. So a probe counts as arrived only
//! on proof that it got into the container's namespace:
//!
//! - When nothing in the container holds the port that the publication forwards to, a
//!   *witness* holds it for the time of the probes (a TCP listener or a UDP socket, bound
//!   inside the container's namespace to the container's address and port) and answers
//!   every connection and every datagram with a token drawn at random for the run. Only
//!   the token proves arrival: a refusal, a connection accepted without the token or a
//!   reply without it came from something else, the host itself or whatever another
//!   table's rules send the port to.
//! - When a program of the container holds the port, no witness can. A TCP connection
//!   then counts as arrived when, once accepted, its other end is among the container's
//!   sockets: on the container's address and port, with the probe's own port as its peer's
//!   (the host's translation keeps a port unless two connections would collide, and then
//!   the probe reads as not arrived: a mistake in that direction only). A refusal cannot
//!   be the container's, whose program listens. A UDP datagram leaves no trace among the
//!   container's sockets, so a reply counts when no socket of the host holds the host
//!   port: nothing on the host could have sent it (only another table's rule that sends
//!   the port elsewhere could). A program that reads a datagram and stays silent looks
//!   like a rule that drops it, as between containers.
//! - When the container does not have the address, nothing can arrive: as with a witness,
//!   only a token would prove it.
//!
//! A witness listens where the container's program does not (yet): the probes prove the
//! path into the container, not that its program listens, as a refused connection
//! between containers counts as reached. While they run, a client of the published port
//! that the container would have refused gets the token instead.
//!
//! The probes leave from the host's own namespace, so they take the path of the host's own
//! programs, through the rules of the `output` hook. Traffic from other machines or from
//! containers takes the `prerouting` hook, whose rules have the same match and target; it
//! is not probed.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::ops::Range;

use serde::{Serialize, Serializer};

use super::{Expected, Mark, mark};
use crate::model::{Container, PortRange, Protocol, Publication, Stack};
use crate::state::{HostFacts, HostPorts, KernelState, Key, Resource};

/// A connection (TCP) or a datagram (UDP) from the host's own namespace to one of its
/// addresses, on a published port: it must or must not arrive in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostProbe {
    /// The container that publishes the port.
    pub container: String,
    pub protocol: Protocol,
    /// One of the host's addresses, and a host port.
    pub address: Ipv4Addr,
    pub port: u16,
    /// Where the publication forwards the port: the container's address and port, where
    /// the witness listens.
    pub to: Ipv4Addr,
    pub container_port: u16,
    pub expected: Expected,
    /// Whether a socket of the host holds `port` for `protocol`: then a reply without the
    /// token may be the host's own ([`Delivery::Replied`]).
    pub host_holds_port: bool,
}

/// What a probe of a published port met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// The witness in the container's namespace answered with the run's token.
    Token,
    /// TCP, to a port a program of the container holds: accepted, and its other end is
    /// among the container's sockets.
    InContainer,
    /// Accepted or answered, but not by the container: without the token while the witness
    /// listened, or not among the container's sockets.
    Elsewhere,
    /// UDP, to a port a program of the container holds: a reply, which carries no token.
    Replied,
    /// TCP: connection refused; UDP: port unreachable.
    Refused,
    /// TCP: no answer before the deadline.
    TimedOut,
    /// The host's kernel said the address cannot be reached.
    Unreachable,
    /// UDP: no reply and no error before the deadline.
    NoAnswer,
}

impl Delivery {
    /// Whether the probe arrived in the container (see the module's documentation).
    pub fn reached(self, host_holds_port: bool) -> bool {
        match self {
            Delivery::Token | Delivery::InContainer => true,
            Delivery::Replied => !host_holds_port,
            Delivery::Elsewhere
            | Delivery::Refused
            | Delivery::TimedOut
            | Delivery::Unreachable
            | Delivery::NoAnswer => false,
        }
    }

    /// How a person reads the outcome of a probe of `protocol`.
    pub fn describe(self, protocol: Protocol) -> &'static str {
        match (self, protocol) {
            (Delivery::Token, _) => "the witness in the container answered",
            (Delivery::InContainer, _) => "accepted in the container",
            (Delivery::Elsewhere, _) => "answered, but not by the container",
            (Delivery::Replied, _) => "answered",
            (Delivery::Refused, Protocol::Tcp) => "connection refused",
            (Delivery::Refused, Protocol::Udp) => "port unreachable",
            (Delivery::TimedOut, _) => "timed out",
            (Delivery::Unreachable, _) => "unreachable",
            (Delivery::NoAnswer, _) => "no answer",
        }
    }
}

/// Why a published port that must answer on an address has no probe there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// The host has no such address.
    HostAddress,
    /// A random host port that the host's rules hold no pick for.
    HostPort,
    /// The container has no address where the publication forwards to.
    ContainerAddress,
}

/// The published ports of a stack, and the probes that prove them from the host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishedSurvey {
    /// The host's addresses, 127.0.0.1 first, then in order, with the addresses the host
    /// lacks that a publication names: the columns.
    pub addresses: Vec<Ipv4Addr>,
    /// Every published port range, containers by name, each's in file order: the rows.
    pub ports: Vec<PublishedPort>,
    /// Every probe, those of each cell together, row by row.
    pub probes: Vec<HostProbe>,
}

/// One published port range of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    pub container: String,
    pub publication: Publication,
    /// The host ports as declared, or as picked at random (from the observed state);
    /// `None` for a random port that the host's rules hold no pick for.
    pub host_ports: Option<PortRange>,
    /// One per host address of [`PublishedSurvey::addresses`], in that order.
    pub spots: Vec<Spot>,
}

/// A published port range on one host address: one cell, before its probes are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spot {
    pub address: Ipv4Addr,
    /// Allowed on the host address the publication names, or on every one of the host's
    /// when it names none; blocked on the host's others. `None` on an address the host
    /// lacks and the publication does not name: nothing is sent there, nothing expected.
    pub expected: Option<Expected>,
    /// The cell's probes, as a range of [`PublishedSurvey::probes`].
    pub probes: Range<usize>,
    /// Why a cell that must answer has no probe.
    pub missing: Option<Missing>,
}

/// Chooses the probes of every port `stack` publishes, on the addresses of `host`;
/// `links` holds the containers' observed addresses by (container, network).
pub(super) fn survey(
    stack: &Stack,
    observed: &KernelState,
    host: &HostFacts,
    links: &BTreeMap<(&str, &str), Ipv4Addr>,
) -> PublishedSurvey {
    let named = stack.containers.values().flat_map(|container| &container.ports).filter_map(|port| port.host_ip);
    let own = host
        .addresses
        .iter()
        .filter(|address| address.prefix_len() < 32 && !address.addr().is_loopback())
        .map(|address| address.addr());
    let mut addresses: Vec<Ipv4Addr> = own.chain(named).filter(|address| *address != Ipv4Addr::LOCALHOST).collect();
    addresses.sort_unstable();
    addresses.dedup();
    addresses.insert(0, Ipv4Addr::LOCALHOST);
    // Every loopback address is the host's while its loopback is up; when it is down, the
    // probes say so.
    let local = |address: Ipv4Addr| address.is_loopback() || host.addresses.iter().any(|own| own.addr() == address);
    let holds = |protocol: Protocol, port: u16| {
        host.local_ports.as_ref().is_some_and(|ports| ports.busy.contains(&(protocol, port)))
    };

    let mut survey = PublishedSurvey { addresses, ports: Vec::new(), probes: Vec::new() };
    for container in stack.containers.values() {
        // Publications forward to the container's address on its first network that is
        // not internal, as `lower` has it.
        let uplink = container.memberships().iter().find(|membership| !stack.networks[&membership.network].internal);
        let to = uplink.and_then(|uplink| links.get(&(container.name.as_str(), uplink.network.as_str())).copied());
        for publication in &container.ports {
            let host_ports = publication.host_ports.or_else(|| picked(observed, container, publication));
            let mut spots = Vec::with_capacity(survey.addresses.len());
            for &address in &survey.addresses {
                let expected = match publication.host_ip {
                    Some(named) if named == address => Some(Expected::Allowed),
                    // Only a publication that names it brings an address the host lacks
                    // into the table; "all interfaces" are the host's own.
                    _ if !local(address) => None,
                    Some(_) => Some(Expected::Blocked),
                    None => Some(Expected::Allowed),
                };
                let start = survey.probes.len();
                let missing = match (expected, local(address), host_ports, to) {
                    (None, ..) => None,
                    (Some(_), false, ..) => Some(Missing::HostAddress),
                    (Some(_), true, None, _) => Some(Missing::HostPort),
                    (Some(_), true, Some(_), None) => Some(Missing::ContainerAddress),
                    (Some(expected), true, Some(ports), Some(to)) => {
                        // The first port, and the last of a range: the ends of the mapping.
                        let last = ports.last - ports.first;
                        for offset in if last == 0 { vec![0] } else { vec![0, last] } {
                            let port = ports.first + offset;
                            survey.probes.push(HostProbe {
                                container: container.name.clone(),
                                protocol: publication.protocol,
                                address,
                                port,
                                to,
                                container_port: publication.container_ports.first + offset,
                                expected,
                                host_holds_port: holds(publication.protocol, port),
                            });
                        }
                        None
                    }
                };
                spots.push(Spot {
                    address,
                    expected,
                    probes: start..survey.probes.len(),
                    missing: missing.filter(|_| expected == Some(Expected::Allowed)),
                });
            }
            survey.ports.push(PublishedPort {
                container: container.name.clone(),
                publication: *publication,
                host_ports,
                spots,
            });
        }
    }
    survey
}

/// The host ports picked at random for `publication`, as the host's rules hold them.
fn picked(observed: &KernelState, container: &Container, publication: &Publication) -> Option<PortRange> {
    let key = Key::Forward {
        container: container.name.clone(),
        protocol: publication.protocol,
        container_port: publication.container_ports.first,
        host_ip: publication.host_ip,
        host_port: None,
    };
    match observed.get(&key) {
        Some(Resource::Forward(forward)) if forward.container_ports == publication.container_ports => {
            match forward.host_ports {
                HostPorts::Picked(ports) => Some(ports),
                HostPorts::Fixed(_) | HostPorts::Random => None,
            }
        }
        _ => None,
    }
}

/// A published port range on one host address, and whether it does what it declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedCell {
    pub container: String,
    /// `None`: every address of the host.
    pub host_ip: Option<Ipv4Addr>,
    /// The host ports probed, as declared or picked; `None` for a random port with no pick.
    pub host_ports: Option<String>,
    pub container_ports: String,
    pub protocol: Protocol,
    /// Whether the host ports are to be picked at random (and kept once picked).
    pub random: bool,
    /// The host address probed: the column.
    pub address: Ipv4Addr,
    /// See [`Spot::expected`]; `not_applicable` in JSON for `None`.
    #[serde(serialize_with = "expected_or_not_applicable")]
    pub expected: Option<Expected>,
    pub correct: bool,
    pub mark: Mark,
    pub probes: Vec<HostProbeResult>,
    /// See [`Spot::missing`].
    pub missing: Option<Missing>,
}

/// A published cell's expectation in JSON: `allowed`, `blocked` or `not_applicable`.
fn expected_or_not_applicable<S: Serializer>(expected: &Option<Expected>, serializer: S) -> Result<S::Ok, S::Error> {
    match expected {
        Some(expected) => expected.serialize(serializer),
        None => serializer.serialize_str("not_applicable"),
    }
}

impl PublishedCell {
    /// Its wrong probes, and one more when it must answer but could not be probed.
    pub(super) fn wrong(&self) -> usize {
        self.probes.iter().filter(|probe| !probe.correct()).count() + usize::from(self.missing.is_some())
    }

    /// The publication as `show` writes it: `*:8080->80/tcp`, `*:49152->80/tcp (random)`.
    pub fn publication(&self) -> String {
        let ip = self.host_ip.map_or("*".to_owned(), |ip| ip.to_string());
        let ports = self.host_ports.as_deref().unwrap_or("random");
        let random = if self.random && self.host_ports.is_some() { " (random)" } else { "" };
        format!("{ip}:{ports}->{}/{}{random}", self.container_ports, self.protocol)
    }
}

/// A probe of a published cell and what it met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostProbeResult {
    pub port: u16,
    pub container_port: u16,
    pub expected: Expected,
    pub outcome: Delivery,
    pub reached: bool,
}

impl HostProbeResult {
    pub fn correct(&self) -> bool {
        self.reached == (self.expected == Expected::Allowed)
    }
}

impl PublishedSurvey {
    /// The cells, row by row, given the outcome of each of [`PublishedSurvey::probes`].
    pub(super) fn cells(&self, deliveries: &[Delivery]) -> Vec<PublishedCell> {
        assert_eq!(deliveries.len(), self.probes.len(), "one delivery per probe from the host");
        let mut cells = Vec::with_capacity(self.ports.len() * self.addresses.len());
        for port in &self.ports {
            for spot in &port.spots {
                let probes: Vec<HostProbeResult> = self.probes[spot.probes.clone()]
                    .iter()
                    .zip(&deliveries[spot.probes.clone()])
                    .map(|(probe, delivery)| HostProbeResult {
                        port: probe.port,
                        container_port: probe.container_port,
                        expected: probe.expected,
                        outcome: *delivery,
                        reached: delivery.reached(probe.host_holds_port),
                    })
                    .collect();
                let wrong =
                    |expected: Expected| probes.iter().any(|probe| probe.expected == expected && !probe.correct());
                let mark = spot.expected.map_or(Mark::NotApplicable, |expected| {
                    mark(expected, wrong(Expected::Blocked), wrong(Expected::Allowed) || spot.missing.is_some())
                });
                cells.push(PublishedCell {
                    container: port.container.clone(),
                    host_ip: port.publication.host_ip,
                    host_ports: port.host_ports.map(|ports| ports.to_string()),
                    container_ports: port.publication.container_ports.to_string(),
                    protocol: port.publication.protocol,
                    random: port.publication.host_ports.is_none(),
                    address: spot.address,
                    expected: spot.expected,
                    correct: !mark.is_wrong(),
                    mark,
                    probes,
                    missing: spot.missing,
                });
            }
        }
        cells
    }
}
