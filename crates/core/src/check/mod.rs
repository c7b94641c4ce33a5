//! `stackctl check`: which probes prove the live stack, and the truth table they make.
//!
//! [`survey`] chooses, from the stack and its observed state, the connections to try from
//! inside each container's namespace: every allowed flow must get through, and a sample
//! of what is not allowed, on every ordered pair, must not. It also chooses, in
//! [`published`], the probes of every published port from the host, on each of the host's
//! addresses: a publication must arrive in its container from the addresses it was asked
//! for, and from no other. The kernel adapters make the probes and hand back one
//! [`Outcome`] or [`Delivery`] each; [`Survey::table`] turns them into the [`TruthTable`],
//! which renders as text ([`render_text`]) or versioned JSON.
//!
//! A probe needs no listener: a closed port that answers "connection refused" (or, for
//! UDP, "port unreachable") was reached, and only a timeout or an unreachable error counts
//! as blocked. So the firewall must drop what it blocks, or reject it with an ICMP
//! unreachable of its own (host or administratively prohibited): a rejection by TCP reset
//! or port unreachable is what a closed port says, and reads as reached. The one blind
//! spot is UDP: a listener that reads a datagram and stays silent looks exactly like a
//! firewall that drops it, so a declared UDP flow to such a service is reported as blocked.
//! From the host, a refusal proves nothing (the host answers its own ports): probes of
//! published ports need proof that they arrived in the container, see [`published`].

pub mod pacing;
pub mod published;
mod text;

pub use published::{Delivery, HostProbe, PublishedCell, PublishedSurvey};
pub use text::render_text;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::ops::Range;

use serde::{Serialize, Serializer};

use crate::graph::{AllowedFlow, StackGraph};
use crate::model::{Attachment, Container, HOST, PortRange, Protocol, Stack, Traffic};
use crate::state::{HostFacts, KernelState, Kind, NO_ADDRESS, Resource};

/// The version of the JSON format; it changes only when a field changes meaning or goes.
pub const FORMAT_VERSION: u32 = 1;

/// The port probed when any port does: a flow of all traffic, or a blocked probe with no
/// declared port to prefer. It is the discard service's, which hardly anything listens on,
/// so the probe meets a closed port and learns its answer at once.
const ANY_PORT: u16 = 9;

/// The ports a blocked probe falls back to, in order, when the preferred ones are allowed.
const FALLBACK_PORTS: [u16; 3] = [ANY_PORT, 1, u16::MAX];

/// Whether traffic must get through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    Allowed,
    Blocked,
}

/// One connection to try from inside the source's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub source: String,
    pub destination: String,
    /// The network of the destination's address.
    pub network: String,
    pub address: Ipv4Addr,
    pub protocol: Protocol,
    pub port: u16,
    pub expected: Expected,
    /// Whether the source is on `network` too and the network is open, so that the probe
    /// goes straight to the destination's interface (and each end learns the other's
    /// hardware address) instead of through the host. On an isolated network members
    /// reach each other through the gateway.
    pub direct: bool,
}

/// What one probe met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// TCP: the connection was accepted.
    Connected,
    /// TCP: connection refused; UDP: ICMP port unreachable. Nothing listens, but the
    /// destination was reached.
    Refused,
    /// TCP: no answer before the deadline.
    TimedOut,
    /// The source's kernel or a hop said the destination cannot be reached (no route,
    /// host unreachable, or a firewall that rejects).
    Unreachable,
    /// UDP: a reply came back.
    Answered,
    /// UDP: no reply and no error before the deadline: dropped, or a silent listener.
    NoAnswer,
}

impl Outcome {
    /// Whether the probe got through to the destination.
    pub fn reached(self) -> bool {
        match self {
            Outcome::Connected | Outcome::Refused | Outcome::Answered => true,
            Outcome::TimedOut | Outcome::Unreachable | Outcome::NoAnswer => false,
        }
    }

    /// How a person reads the outcome of a probe of `protocol`.
    pub fn describe(self, protocol: Protocol) -> &'static str {
        match (self, protocol) {
            (Outcome::Connected, _) => "connected",
            (Outcome::Refused, Protocol::Tcp) => "connection refused",
            (Outcome::Refused, Protocol::Udp) => "port unreachable",
            (Outcome::TimedOut, _) => "timed out",
            (Outcome::Unreachable, _) => "unreachable",
            (Outcome::Answered, _) => "answered",
            (Outcome::NoAnswer, _) => "no answer",
        }
    }
}

/// The probes that prove a stack, and the pairs they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    pub stack: String,
    /// The containers with a namespace of their own (all but `network_mode: host`), by name:
    /// the rows and the columns of the table.
    pub containers: Vec<String>,
    /// Every ordered pair of distinct containers, by source, then destination.
    pub pairs: Vec<Pair>,
    /// Every probe, those of each pair together and in the order of `pairs`.
    pub probes: Vec<Probe>,
    /// The published ports and their probes from the host.
    pub published: PublishedSurvey,
}

/// One ordered pair of containers: one cell of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub source: String,
    pub destination: String,
    /// Allowed when any flow from the source to the destination is.
    pub expected: Expected,
    /// The pair's probes, as a range of [`Survey::probes`].
    pub probes: Range<usize>,
    /// The networks on which a flow is allowed but the destination has no address, so
    /// that the flow cannot be made (the stack is not fully applied).
    pub missing: Vec<String>,
}

/// Chooses the probes that prove `stack` on `host`, whose observed state is `observed`;
/// the addresses come from the observed links, so that the probes go where the kernel
/// actually put the containers.
pub fn survey(stack: &Stack, observed: &KernelState, host: &HostFacts) -> Survey {
    // The truth table is between containers: the host's own services are not probed.
    let flows: Vec<AllowedFlow> =
        StackGraph::build(stack).allowed_flows().into_iter().filter(|flow| flow.destination != HOST).collect();
    let addresses: BTreeMap<(&str, &str), Ipv4Addr> = observed
        .of_kind(Kind::Link)
        .filter_map(|resource| match resource {
            Resource::Link(link) if link.address != NO_ADDRESS => {
                Some(((link.container.as_str(), link.network.as_str()), link.address.addr()))
            }
            _ => None,
        })
        .collect();
    let mut between: BTreeMap<(&str, &str), Vec<&AllowedFlow>> = BTreeMap::new();
    for flow in &flows {
        between.entry((flow.source.as_str(), flow.destination.as_str())).or_default().push(flow);
    }
    let inbound = Inbound::of(&flows);
    let containers: Vec<&Container> =
        stack.containers.values().filter(|container| container.attachment != Attachment::Host).collect();

    let mut survey = Survey {
        stack: stack.name.clone(),
        containers: containers.iter().map(|container| container.name.clone()).collect(),
        pairs: Vec::with_capacity(containers.len() * containers.len().saturating_sub(1)),
        probes: Vec::new(),
        published: published::survey(stack, observed, host, &addresses),
    };
    for source in &containers {
        for destination in containers.iter().filter(|destination| destination.name != source.name) {
            let allowed = between.get(&(source.name.as_str(), destination.name.as_str()));
            let allowed: &[&AllowedFlow] = allowed.map_or(&[], Vec::as_slice);
            let start = survey.probes.len();
            let mut choice = Choice { stack, source, destination, allowed, addresses: &addresses, probes: Vec::new() };
            let missing = choice.allowed_probes();
            choice.blocked_probes(&inbound);
            survey.probes.extend(choice.probes);
            survey.pairs.push(Pair {
                source: source.name.clone(),
                destination: destination.name.clone(),
                expected: if allowed.is_empty() { Expected::Blocked } else { Expected::Allowed },
                probes: start..survey.probes.len(),
                missing,
            });
        }
    }
    survey
}

/// The ports declared flows open into each container, by protocol, each with the
/// containers allowed to reach it: the ports a leak is likeliest on.
struct Inbound<'a> {
    ports: BTreeMap<(&'a str, Protocol), BTreeMap<u16, BTreeSet<&'a str>>>,
}

impl<'a> Inbound<'a> {
    fn of(flows: &'a [AllowedFlow]) -> Self {
        let mut ports: BTreeMap<(&str, Protocol), BTreeMap<u16, BTreeSet<&str>>> = BTreeMap::new();
        for flow in flows {
            if let Traffic::Ports { protocol, ports: range } = flow.traffic {
                ports
                    .entry((flow.destination.as_str(), protocol))
                    .or_default()
                    .entry(range.first)
                    .or_default()
                    .insert(flow.source.as_str());
            }
        }
        Inbound { ports }
    }

    /// The ports into `destination` over `protocol`, lowest first, that some container
    /// other than `except` (when given) is allowed to reach.
    fn ports<'s>(
        &'s self,
        destination: &'s str,
        protocol: Protocol,
        except: Option<&'s str>,
    ) -> impl Iterator<Item = u16> + 's {
        self.ports
            .get(&(destination, protocol))
            .into_iter()
            .flatten()
            .filter_map(move |(port, sources)| sources.iter().any(|source| Some(*source) != except).then_some(*port))
    }
}

/// The probes of one ordered pair, as they are chosen.
struct Choice<'a> {
    stack: &'a Stack,
    source: &'a Container,
    destination: &'a Container,
    /// The flows allowed from the source to the destination.
    allowed: &'a [&'a AllowedFlow],
    addresses: &'a BTreeMap<(&'a str, &'a str), Ipv4Addr>,
    probes: Vec<Probe>,
}

impl Choice<'_> {
    fn push(&mut self, network: &str, address: Ipv4Addr, protocol: Protocol, port: u16, expected: Expected) {
        let probe = Probe {
            source: self.source.name.clone(),
            destination: self.destination.name.clone(),
            network: network.to_owned(),
            address,
            protocol,
            port,
            expected,
            direct: self.source.membership(network).is_some()
                && self.stack.networks[network].isolation == crate::model::Isolation::Open,
        };
        if !self.probes.contains(&probe) {
            self.probes.push(probe);
        }
    }

    fn address(&self, network: &str) -> Option<Ipv4Addr> {
        self.addresses.get(&(self.destination.name.as_str(), network)).copied()
    }

    /// One probe per allowed flow, on the first port of its range (TCP on any port for all
    /// traffic). Returns the networks where a flow is allowed but the destination has no
    /// address.
    fn allowed_probes(&mut self) -> Vec<String> {
        let mut missing: Vec<String> = Vec::new();
        for flow in self.allowed {
            let Some(address) = self.address(&flow.network) else {
                if !missing.contains(&flow.network) {
                    missing.push(flow.network.clone());
                }
                continue;
            };
            let (protocol, port) = match flow.traffic {
                Traffic::All => (Protocol::Tcp, ANY_PORT),
                Traffic::Ports { protocol, ports } => (protocol, ports.first),
            };
            self.push(&flow.network, address, protocol, port, Expected::Allowed);
        }
        missing
    }

    /// One blocked probe on each of the destination's networks: on a network the two
    /// share, unless all traffic is allowed there, a port no allowed flow covers; on a
    /// network the source is not on, any port, since traffic must not cross networks.
    fn blocked_probes(&mut self, inbound: &Inbound) {
        let mut networks: Vec<&str> =
            self.destination.memberships().iter().map(|membership| membership.network.as_str()).collect();
        networks.sort_unstable();
        for network in networks {
            let Some(address) = self.address(network) else { continue };
            if self.source.membership(network).is_none() {
                let port = inbound.ports(&self.destination.name, Protocol::Tcp, None).next().unwrap_or(ANY_PORT);
                self.push(network, address, Protocol::Tcp, port, Expected::Blocked);
                continue;
            }
            let here: Vec<Traffic> =
                self.allowed.iter().filter(|flow| flow.network == network).map(|flow| flow.traffic).collect();
            if here.contains(&Traffic::All) {
                continue;
            }
            // TCP first; UDP only when every TCP candidate is allowed (a `tcp/*` flow).
            let unallowed = [Protocol::Tcp, Protocol::Udp].into_iter().find_map(|protocol| {
                let covered = |port: u16| {
                    here.iter().any(|traffic| {
                        matches!(traffic, Traffic::Ports { protocol: allowed, ports }
                            if *allowed == protocol && ports.overlaps(&PortRange::single(port)))
                    })
                };
                inbound
                    .ports(&self.destination.name, protocol, Some(&self.source.name))
                    .chain(FALLBACK_PORTS)
                    .find(|port| !covered(*port))
                    .map(|port| (protocol, port))
            });
            if let Some((protocol, port)) = unallowed {
                self.push(network, address, protocol, port, Expected::Blocked);
            }
        }
    }
}

/// How a cell of the table reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// `.`: allowed, and every probe got through.
    Allowed,
    /// `X`: not allowed, and every probe was blocked.
    Blocked,
    /// `!`: a probe that must be blocked got through. Wins over `#` in a cell with both,
    /// being the worse.
    Leak,
    /// `#`: a declared flow was blocked, or cannot be made for want of an address.
    Broken,
    /// `-`: a published port on an address the host lacks, which only another publication
    /// names: nothing is sent there, and nothing expected.
    NotApplicable,
}

/// The mark of a cell that must be `expected`, given whether a probe leaked (reached but
/// must be blocked) and whether one was broken (blocked but must be reached, or not made
/// for want of an address or port).
fn mark(expected: Expected, leak: bool, broken: bool) -> Mark {
    if leak {
        Mark::Leak
    } else if broken {
        Mark::Broken
    } else if expected == Expected::Allowed {
        Mark::Allowed
    } else {
        Mark::Blocked
    }
}

impl Mark {
    pub fn symbol(self) -> char {
        match self {
            Mark::Allowed => '.',
            Mark::Blocked => 'X',
            Mark::Leak => '!',
            Mark::Broken => '#',
            Mark::NotApplicable => '-',
        }
    }

    pub fn is_wrong(self) -> bool {
        matches!(self, Mark::Leak | Mark::Broken)
    }
}

impl Serialize for Mark {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_char(self.symbol())
    }
}

/// The truth table: for every ordered pair, whether the live stack does what it declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TruthTable {
    pub format_version: u32,
    pub stack: String,
    /// The rows and the columns, by name.
    pub containers: Vec<String>,
    /// Whether every cell is.
    pub correct: bool,
    /// Every ordered pair of distinct containers, by source, then destination.
    pub cells: Vec<Cell>,
    /// The host's addresses that published ports are probed on, 127.0.0.1 first, and the
    /// addresses the host lacks that a publication names: the columns of `published`.
    pub host_addresses: Vec<Ipv4Addr>,
    /// Every published port range (containers by name, each's in file order) on every
    /// host address, in the order of `host_addresses`.
    pub published: Vec<PublishedCell>,
    pub summary: Summary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub source: String,
    pub destination: String,
    pub expected: Expected,
    pub correct: bool,
    pub mark: Mark,
    pub probes: Vec<ProbeResult>,
    /// See [`Pair::missing`].
    pub missing: Vec<String>,
}

impl Cell {
    /// Its wrong probes, and its allowed flows that could not be probed.
    fn wrong(&self) -> usize {
        self.probes.iter().filter(|probe| !probe.correct()).count() + self.missing.len()
    }
}

/// A probe of a cell and what it met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeResult {
    pub network: String,
    pub address: Ipv4Addr,
    pub protocol: Protocol,
    pub port: u16,
    pub expected: Expected,
    pub outcome: Outcome,
    pub reached: bool,
}

impl ProbeResult {
    pub fn correct(&self) -> bool {
        self.reached == (self.expected == Expected::Allowed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Ordered pairs of distinct containers: the cells.
    pub pairs: usize,
    /// Published port ranges on host addresses: the published cells.
    pub published: usize,
    /// The probes between containers and from the host.
    pub probes: usize,
    /// Wrong probes, allowed flows that could not be probed for want of an address, and
    /// published cells that must answer but could not be probed.
    pub wrong: usize,
}

impl Survey {
    /// The truth table, given the outcome of each of [`Survey::probes`] and of each probe
    /// of [`Survey::published`], in order.
    ///
    /// # Panics
    /// When there is not one outcome per probe: the kernel adapters make every probe.
    pub fn table(&self, outcomes: &[Outcome], deliveries: &[Delivery]) -> TruthTable {
        assert_eq!(outcomes.len(), self.probes.len(), "one outcome per probe");
        let cells: Vec<Cell> = self
            .pairs
            .iter()
            .map(|pair| {
                let probes: Vec<ProbeResult> = self.probes[pair.probes.clone()]
                    .iter()
                    .zip(&outcomes[pair.probes.clone()])
                    .map(|(probe, outcome)| ProbeResult {
                        network: probe.network.clone(),
                        address: probe.address,
                        protocol: probe.protocol,
                        port: probe.port,
                        expected: probe.expected,
                        outcome: *outcome,
                        reached: outcome.reached(),
                    })
                    .collect();
                let wrong =
                    |expected: Expected| probes.iter().any(|probe| probe.expected == expected && !probe.correct());
                let mark =
                    mark(pair.expected, wrong(Expected::Blocked), wrong(Expected::Allowed) || !pair.missing.is_empty());
                Cell {
                    source: pair.source.clone(),
                    destination: pair.destination.clone(),
                    expected: pair.expected,
                    correct: !mark.is_wrong(),
                    mark,
                    probes,
                    missing: pair.missing.clone(),
                }
            })
            .collect();
        let published = self.published.cells(deliveries);
        let wrong =
            cells.iter().map(Cell::wrong).sum::<usize>() + published.iter().map(PublishedCell::wrong).sum::<usize>();
        TruthTable {
            format_version: FORMAT_VERSION,
            stack: self.stack.clone(),
            containers: self.containers.clone(),
            correct: cells.iter().all(|cell| cell.correct) && published.iter().all(|cell| cell.correct),
            summary: Summary {
                pairs: cells.len(),
                published: published.len(),
                probes: self.probes.len() + self.published.probes.len(),
                wrong,
            },
            cells,
            host_addresses: self.published.addresses.clone(),
            published,
        }
    }
}

impl TruthTable {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a truth table serializes") + "\n"
    }
}

#[cfg(test)]
mod tests;
