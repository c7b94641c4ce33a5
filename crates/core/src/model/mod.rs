//! The validated model: a stack in which every reference resolves, every address fits its
//! subnet and every port parses. Built only by [`validate`], so code that holds a
//! [`Stack`] never re-checks what validation proved. `stackctl suggest` alone reads a file
//! whose networks are missing or insufficient, as a [`Draft`], which is no stack.

mod addresses;
mod draft;
mod drain;
mod identifiers;
mod publish;
mod syntax;
mod validate;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub use crate::spec::Isolation;
pub use addresses::overlaps;
pub use draft::Draft;
pub use drain::Drain;
pub use identifiers::{name_problem, suggest_name};
pub use publish::conflicts;
pub use syntax::{parse_flow, parse_publication, write_flow, write_publication};
pub use validate::{Drafted, Validated, validate, validate_draft_file, validate_file};

/// A validated stack. Maps are ordered by name, so everything derived from a stack is
/// independent of the order of the file's entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stack {
    pub name: String,
    pub networks: BTreeMap<String, Network>,
    pub containers: BTreeMap<String, Container>,
    /// How long a swap waits for the connections of a container that an alias leaves.
    pub drain: Drain,
    /// Who is on which network under which names, derived from `containers` once, so that
    /// resolving a name does not scan every container.
    #[serde(skip)]
    index: NameIndex,
}

/// Per network: its members in name order, and each name (a member's own or an alias) with
/// the members it stands for there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct NameIndex {
    members: HashMap<String, Vec<String>>,
    names: HashMap<String, HashMap<String, Vec<String>>>,
}

impl NameIndex {
    fn new(containers: &BTreeMap<String, Container>) -> Self {
        let mut index = NameIndex::default();
        for container in containers.values() {
            for membership in container.memberships() {
                index.members.entry(membership.network.clone()).or_default().push(container.name.clone());
                let names = index.names.entry(membership.network.clone()).or_default();
                for name in std::iter::once(&container.name).chain(&membership.aliases) {
                    names.entry(name.clone()).or_default().push(container.name.clone());
                }
            }
        }
        index
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    pub name: String,
    /// The declared subnet; `None` lets stackctl pick one.
    pub subnet: Option<Ipv4Net>,
    /// The declared gateway; `None` means the first host address of the subnet.
    pub gateway: Option<Ipv4Addr>,
    pub internal: bool,
    pub isolation: Isolation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    pub name: String,
    pub attachment: Attachment,
    /// An existing namespace to adopt instead of creating one.
    pub netns: Option<String>,
    /// Flows this container opens, in file order.
    pub talks_to: Vec<Flow>,
    /// Published ports, in file order.
    pub ports: Vec<Publication>,
}

impl Container {
    /// The container's memberships; empty for `none` and `host` network modes.
    pub fn memberships(&self) -> &[Membership] {
        match &self.attachment {
            Attachment::Bridged(memberships) => memberships,
            Attachment::Loopback | Attachment::Host => &[],
        }
    }

    pub fn membership(&self, network: &str) -> Option<&Membership> {
        self.memberships().iter().find(|membership| membership.network == network)
    }
}

/// What a container's network stack is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "networks")]
pub enum Attachment {
    /// Joined to bridge networks, in the order written (it orders `eth0`, `eth1`, ...).
    Bridged(Vec<Membership>),
    /// `network_mode: none`: loopback only.
    Loopback,
    /// `network_mode: host`: the host's own stack.
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub network: String,
    pub aliases: Vec<String>,
    pub ipv4: Option<Ipv4Addr>,
}

/// The flow target that names the host itself: what a container may reach of the host's own
/// services besides its name server. No container or alias may take this name.
pub const HOST: &str = "host";

/// A declared flow, as written: `TARGET[:PORT[-PORT]][/tcp|/udp]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flow {
    /// A container name, an alias, or [`HOST`].
    pub target: String,
    pub traffic: Traffic,
}

/// Which traffic a flow allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Traffic {
    /// No port and no protocol: everything.
    All,
    /// A protocol and a range of destination ports (all ports when only a protocol is given).
    Ports { protocol: Protocol, ports: PortRange },
}

impl fmt::Display for Traffic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Traffic::All => f.write_str("all"),
            Traffic::Ports { protocol, ports } if *ports == PortRange::ALL => write!(f, "{protocol}/*"),
            Traffic::Ports { protocol, ports } => write!(f, "{protocol}/{ports}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// An inclusive range of ports, `first <= last`, never containing port 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub const ALL: PortRange = PortRange { first: 1, last: u16::MAX };

    pub fn single(port: u16) -> Self {
        PortRange { first: port, last: port }
    }

    /// How many ports the range holds; never zero.
    pub fn count(&self) -> u32 {
        u32::from(self.last - self.first) + 1
    }

    pub fn overlaps(&self, other: &PortRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last { write!(f, "{}", self.first) } else { write!(f, "{}-{}", self.first, self.last) }
    }
}

/// A published port range: host ports forwarded to the container's ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Publication {
    /// The host address to listen on; `None` is every interface.
    pub host_ip: Option<Ipv4Addr>,
    /// The host ports; `None` lets stackctl pick them once and keep them.
    pub host_ports: Option<PortRange>,
    pub container_ports: PortRange,
    pub protocol: Protocol,
}

impl fmt::Display for Publication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(ip) => write!(f, "{ip}:")?,
            None => f.write_str("*:")?,
        }
        match self.host_ports {
            Some(ports) => write!(f, "{ports}")?,
            None => f.write_str("random")?,
        }
        write!(f, "->{}/{}", self.container_ports, self.protocol)
    }
}

impl Stack {
    pub fn new(
        name: String,
        networks: BTreeMap<String, Network>,
        containers: BTreeMap<String, Container>,
        drain: Drain,
    ) -> Self {
        let index = NameIndex::new(&containers);
        Stack { name, networks, containers, drain, index }
    }

    /// The aliases declared on `network`, in name order, each with the containers that
    /// hold it there (in name order).
    pub fn aliases_on<'a>(&'a self, network: &'a str) -> BTreeMap<&'a str, Vec<&'a str>> {
        let mut aliases: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (member, membership) in self.memberships_on(network) {
            for alias in &membership.aliases {
                aliases.entry(alias.as_str()).or_default().push(member.name.as_str());
            }
        }
        aliases
    }

    /// The containers a flow's target reaches from `source`, with the network each is
    /// reached on: a container name resolves on every network the two share, an alias only
    /// on the networks where it is declared and the source is a member.
    pub fn resolve<'a>(
        &'a self,
        source: &'a Container,
        target: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Container)> + 'a {
        source.memberships().iter().flat_map(move |membership| {
            let network = membership.network.as_str();
            let named = self.index.names.get(network).and_then(|names| names.get(target));
            // A container reaches itself without any flow, so an alias group it belongs to
            // resolves to the other members only.
            named
                .into_iter()
                .flatten()
                .filter(move |name| **name != source.name)
                .map(move |name| (network, &self.containers[name]))
        })
    }

    /// The members of `network`, by name, each with its membership there.
    pub fn memberships_on<'a>(
        &'a self,
        network: &'a str,
    ) -> impl Iterator<Item = (&'a Container, &'a Membership)> + 'a {
        self.members(network).filter_map(move |member| Some((member, member.membership(network)?)))
    }

    /// The containers that are members of `network`, by name.
    pub fn members<'a>(&'a self, network: &'a str) -> impl Iterator<Item = &'a Container> + 'a {
        self.index.members.get(network).into_iter().flatten().map(|name| &self.containers[name])
    }

    /// The unordered pairs of members of `network` that no declared flow joins on it, in
    /// either direction, in name order: what an `open` network grants beyond the declared
    /// flows. Validation warns of them, and the graph draws them.
    pub fn unflowed_pairs(&self, network: &str) -> Vec<(String, String)> {
        self.pairs_without_flows(network, &self.flowing_pairs())
    }

    /// [`Stack::unflowed_pairs`] of every `open` network, by name, with the flows resolved
    /// once for all of them.
    pub fn unflowed_pairs_of_open_networks(&self) -> Vec<(&str, Vec<(String, String)>)> {
        let flowing = self.flowing_pairs();
        self.networks
            .values()
            .filter(|network| network.isolation == Isolation::Open)
            .map(|network| (network.name.as_str(), self.pairs_without_flows(&network.name, &flowing)))
            .collect()
    }

    /// Every (network, container, container) that a declared flow joins, the two names in
    /// order. A flow to the host joins no pair of members.
    fn flowing_pairs(&self) -> BTreeSet<(&str, &str, &str)> {
        let mut flowing = BTreeSet::new();
        for source in self.containers.values() {
            for flow in source.talks_to.iter().filter(|flow| flow.target != HOST) {
                for (on, destination) in self.resolve(source, &flow.target) {
                    let (a, b) = (source.name.as_str(), destination.name.as_str());
                    flowing.insert((on, a.min(b), a.max(b)));
                }
            }
        }
        flowing
    }

    fn pairs_without_flows(&self, network: &str, flowing: &BTreeSet<(&str, &str, &str)>) -> Vec<(String, String)> {
        let members: Vec<&str> = self.members(network).map(|member| member.name.as_str()).collect();
        let mut pairs = Vec::new();
        for (index, a) in members.iter().enumerate() {
            for b in &members[index + 1..] {
                if !flowing.contains(&(network, *a, *b)) {
                    pairs.push(((*a).to_owned(), (*b).to_owned()));
                }
            }
        }
        pairs
    }
}
