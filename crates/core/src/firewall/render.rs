//! The nft script that makes a stack's tables hold exactly its firewall resources.
//!
//! How traffic is governed, network by network (`B` is the network's bridge):
//! - Between networks nothing passes: a packet routed into `B` from anywhere else is
//!   accepted only as part of a connection made from inside `B` (a reply) or sent to a
//!   published port; from another network of the stack it is rejected, from anywhere else
//!   dropped. This holds whatever `ip_forward` and `br_netfilter` are.
//! - Inside a network with `isolation: flows`, the bridge forwards nothing from port to
//!   port (a `bridge` family rule), and each member routes the subnet through the gateway
//!   (see `Link::subnet_via`), so members reach each other only through the host's IP
//!   layer. There the declared flows pass, with their replies, and everything else is
//!   rejected. Conntrack is needed for replies, and the kernel may have none for bridged
//!   traffic: routing every packet through the host gives it conntrack with
//!   `br_netfilter` on or off.
//! - With `br_netfilter` on, a container's connection to a published port of its own
//!   network is bridged after DNAT instead of routed; such packets are marked, and the
//!   bridge lets marked packets through.
//! - Traffic entering through a container's port must carry that container's addresses,
//!   IPv4 and MAC, so a container cannot borrow another's flows, nor take its MAC address
//!   to have the bridge send it the other's traffic (the bridge learns nothing from
//!   containers' ports either: each container's MAC address is a static entry on its port,
//!   which the kernel adapter keeps).
//! - An ICMP error passes as related to a connection only from one of the connection's
//!   ends, so a container cannot send errors along connections it is no part of.
//! - Networks that are not internal leave the host through masquerade; internal networks
//!   reach nothing outside the stack.
//! - Of the host itself, a container reaches the name server on its network's gateway
//!   (port 53), the flows to `host` it declares (on any of the host's addresses), and
//!   replies to the host's own connections; nothing else, internal network or not.
//! - An alias is a virtual address that DNAT sends to one of its backends, per connection
//!   in turn; the flows are judged after it, on the backend's address.
//! - Published ports are DNAT rules: from outside on the host's addresses (or the one
//!   asked for), from the host itself, including 127.0.0.1 (which needs `route_localnet`
//!   on the bridge and a masquerade), and from containers through the host's address.
//!
//! How a script changes the tables ([`render`]): in place, in one transaction that keeps
//! the tables, their chains and their sets, empties them, deletes the chains and sets no
//! longer wanted, and fills them again. Replacing the tables whole ([`render_replacing`])
//! is atomic too, but not for every packet: the kernel makes a transaction's new rules
//! the ones in use before it makes a new interval set's elements visible (it switches
//! those sets over at the end of the commit), so a packet that arrives in between meets
//! rules that look up an empty `flows` set, and a declared flow's new connection is
//! rejected. A set that stays meets its old elements in that instant instead, which the
//! plans' make-before-break order allows. Replacing is only for tables that cannot be
//! changed in place (a base chain that an earlier stackctl made differently).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

use super::{rule_id, table_name};
use crate::model::{HOST, Isolation, Traffic};
use crate::state::{Alias, Flow, Forward, KernelState, Policy, Resource, container_mac, mac_text};

/// The packet mark (one bit, the others kept) that lets a DNAT'd packet that is bridged
/// between two ports of an isolated network through.
pub const MARK: u32 = 0x0100_0000;

/// The types of a network's sets of ports, of ports with their addresses, and of ports
/// with their MAC addresses.
const PORTS: &str = "type ifname;";
const SOURCES: &str = "type ifname . ipv4_addr;";
const MACS: &str = "type ifname . ether_addr;";

/// `icmpx`, so that the reject also stops IPv6, which `icmp` would let through.
const REJECT: &str = "reject with icmpx type admin-prohibited";

/// The two families of the stack's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    Inet,
    Bridge,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Bridge => "bridge",
        }
    }

    pub fn of(name: &str) -> Option<Family> {
        match name {
            "inet" => Some(Family::Inet),
            "bridge" => Some(Family::Bridge),
            _ => None,
        }
    }
}

/// What a table holds beside rules and elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectKind {
    Chain,
    Set,
    Map,
    /// A named object that stackctl never makes (a counter, a quota, a flowtable, ...), by
    /// the word nft names its kind with.
    Other(&'static str),
}

impl ObjectKind {
    /// The named objects a table may hold that stackctl never makes, as nft names them.
    pub const OTHERS: [&'static str; 9] =
        ["counter", "quota", "limit", "flowtable", "secmark", "synproxy", "ct helper", "ct timeout", "ct expectation"];

    fn name(self) -> &'static str {
        match self {
            ObjectKind::Chain => "chain",
            ObjectKind::Set => "set",
            ObjectKind::Map => "map",
            ObjectKind::Other(kind) => kind,
        }
    }
}

/// A chain, set or map of one of the stack's tables.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Object {
    pub family: Family,
    pub kind: ObjectKind,
    pub name: String,
}

/// The chains, sets and maps of the stack's tables.
pub type Objects = BTreeSet<Object>;

/// A table being written: its sets and chains, in the order they are first named.
#[derive(Default)]
struct Table {
    /// (name, declaration, elements)
    sets: Vec<(String, String, Vec<String>)>,
    /// (name, base chain header or empty, rules)
    chains: Vec<(String, String, Vec<String>)>,
    index: HashMap<String, usize>,
}

impl Table {
    fn set(&mut self, name: &str, declaration: &str) {
        self.index.insert(format!("set {name}"), self.sets.len());
        self.sets.push((name.to_owned(), declaration.to_owned(), Vec::new()));
    }

    fn chain(&mut self, name: &str, header: &str) {
        self.index.insert(format!("chain {name}"), self.chains.len());
        self.chains.push((name.to_owned(), header.to_owned(), Vec::new()));
    }

    fn element(&mut self, set: &str, element: String) {
        let index = self.index[&format!("set {set}")];
        self.sets[index].2.push(element);
    }

    fn rule(&mut self, chain: &str, rule: String) {
        let index = self.index[&format!("chain {chain}")];
        self.chains[index].2.push(rule);
    }

    /// The table's sets and chains, without elements and rules, and `stale`, so that
    /// everything the rest of a script names exists, whatever the table held before.
    fn write_declarations(&self, out: &mut String, family: &str, name: &str, stale: &[(&str, &str)]) {
        let _ = writeln!(out, "table {family} {name} {{");
        for (set, declaration, _) in &self.sets {
            let _ = writeln!(out, "  set {set} {{ {declaration} }}");
        }
        // A stale set is declared by its type; a stale chain by nothing.
        for (object, declaration) in stale {
            match declaration.is_empty() {
                true => {
                    let _ = writeln!(out, "  chain {object} {{\n  }}");
                }
                false => {
                    let _ = writeln!(out, "  set {object} {{ {declaration} }}");
                }
            }
        }
        for (chain, header, _) in &self.chains {
            let _ = writeln!(out, "  chain {chain} {{");
            if !header.is_empty() {
                let _ = writeln!(out, "    {header}");
            }
            out.push_str("  }\n");
        }
        out.push_str("}\n");
    }

    fn objects(&self, family: Family) -> impl Iterator<Item = Object> + '_ {
        let object = move |kind, name: &String| Object { family, kind, name: name.clone() };
        let sets = self.sets.iter().map(move |(name, _, _)| object(ObjectKind::Set, name));
        sets.chain(self.chains.iter().map(move |(name, _, _)| object(ObjectKind::Chain, name)))
    }

    fn write(&self, out: &mut String, family: &str, name: &str) {
        let _ = writeln!(out, "table {family} {name} {{");
        for (set, declaration, elements) in &self.sets {
            let _ = write!(out, "  set {set} {{ {declaration}");
            if !elements.is_empty() {
                let _ = write!(out, "\n    elements = {{\n      {}\n    }}\n  ", elements.join(",\n      "));
            } else {
                out.push(' ');
            }
            out.push_str("}\n");
        }
        for (chain, header, rules) in &self.chains {
            let _ = writeln!(out, "  chain {chain} {{");
            if !header.is_empty() {
                let _ = writeln!(out, "    {header}");
            }
            for rule in rules {
                let _ = writeln!(out, "    {rule}");
            }
            out.push_str("  }\n");
        }
        out.push_str("}\n");
    }
}

/// The two tables being written, and the comment that marks what is being added.
struct Script {
    inet: Table,
    bridge: Table,
    comment: String,
}

impl Script {
    fn table(&mut self, family: Family) -> &mut Table {
        match family {
            Family::Inet => &mut self.inet,
            Family::Bridge => &mut self.bridge,
        }
    }

    fn rule(&mut self, family: Family, chain: &str, rule: impl AsRef<str>) {
        let rule = format!("{} comment \"{}\"", rule.as_ref(), self.comment);
        self.table(family).rule(chain, rule);
    }

    fn element(&mut self, family: Family, set: &str, element: impl AsRef<str>) {
        let element = format!("{} comment \"{}\"", element.as_ref(), self.comment);
        self.table(family).element(set, element);
    }
}

/// The nft script that makes the stack's two tables hold exactly the rules of the
/// firewall resources in `state` (its other resources are ignored), changing them in
/// place (see the module's documentation) from tables that hold at most `existing`. With
/// no firewall resource, it deletes the tables. One `nft -f` of it is one transaction:
/// all of it takes effect, or none.
///
/// The script does not depend on what the tables hold: it declares every set and chain
/// it names before it empties or deletes them, so it can be checked against the kernel
/// before the changes that come before it are made. Only objects of `existing` that no
/// stackctl makes (added by hand) are deleted without being declared: they exist.
pub fn render(stack: &str, state: &KernelState, existing: &Objects) -> String {
    let name = table_name(stack);
    let Some(script) = script_of(state) else { return delete_tables(&name) };
    let wanted = objects_of(&script);
    let mut out = String::new();
    let stale: Vec<&Object> = existing.iter().filter(|object| !wanted.contains(object)).collect();
    for family in [Family::Inet, Family::Bridge] {
        let ours: Vec<(&str, &str)> = stale
            .iter()
            .filter(|object| object.family == family)
            .filter_map(|object| Some((object.name.as_str(), declaration(object)?)))
            .collect();
        let table = match family {
            Family::Inet => &script.inet,
            Family::Bridge => &script.bridge,
        };
        table.write_declarations(&mut out, family.name(), &name, &ours);
    }
    for family in [Family::Inet, Family::Bridge] {
        let _ = writeln!(out, "flush table {} {name}", family.name());
    }
    for set in wanted.iter().filter(|object| object.kind != ObjectKind::Chain) {
        let _ = writeln!(out, "flush {} {} {name} {}", set.kind.name(), set.family.name(), set.name);
    }
    // Sets, maps and named objects last: the chains that were deleted may have named them.
    for object in stale
        .iter()
        .filter(|object| object.kind == ObjectKind::Chain)
        .chain(stale.iter().filter(|object| object.kind != ObjectKind::Chain))
    {
        let _ = writeln!(out, "delete {} {} {name} {}", object.kind.name(), object.family.name(), object.name);
    }
    script.inet.write(&mut out, "inet", &name);
    script.bridge.write(&mut out, "bridge", &name);
    out
}

/// The nft script that replaces the stack's two tables whole with the rules of the
/// firewall resources in `state`, whatever they held: for tables that cannot be changed
/// in place. With no firewall resource, it deletes the tables.
pub fn render_replacing(stack: &str, state: &KernelState) -> String {
    let name = table_name(stack);
    let mut out = delete_tables(&name);
    if let Some(script) = script_of(state) {
        script.inet.write(&mut out, "inet", &name);
        script.bridge.write(&mut out, "bridge", &name);
    }
    out
}

/// The chains and sets that the stack's tables hold once a script of `state` is made.
pub fn objects(state: &KernelState) -> Objects {
    script_of(state).map(|script| objects_of(&script)).unwrap_or_default()
}

/// Deletes both tables; creating a table that exists is no error, so the deletes always
/// succeed.
fn delete_tables(name: &str) -> String {
    format!("table inet {name} {{}}\ndelete table inet {name}\ntable bridge {name} {{}}\ndelete table bridge {name}\n")
}

fn objects_of(script: &Script) -> Objects {
    script.inet.objects(Family::Inet).chain(script.bridge.objects(Family::Bridge)).collect()
}

/// How to declare a chain (empty: a chain needs nothing) or set (its type) that stackctl
/// makes for a network, to delete it; `None` for objects that no stackctl makes.
fn declaration(object: &Object) -> Option<&'static str> {
    let name = object.name.as_str();
    match (object.family, object.kind) {
        (Family::Inet, ObjectKind::Chain) if name.starts_with("to_") || name.starts_with("within_") => Some(""),
        (Family::Bridge, ObjectKind::Set) if name.starts_with("ports_") => Some(PORTS),
        (Family::Bridge, ObjectKind::Set) if name.starts_with("sources_") => Some(SOURCES),
        (Family::Bridge, ObjectKind::Set) if name.starts_with("macs_") => Some(MACS),
        _ => None,
    }
}

/// The tables of the firewall resources in `state`; `None` when it has none.
fn script_of(state: &KernelState) -> Option<Script> {
    let firewall: Vec<&Resource> = state.resources.values().filter(|resource| resource.kind().is_firewall()).collect();
    if firewall.is_empty() {
        return None;
    }
    let mut script = Script { inet: skeleton_inet(), bridge: skeleton_bridge(), comment: String::new() };
    // Chains and sets of each network are declared first, so that any rule may name them.
    for resource in &firewall {
        if let Resource::Policy(policy) = resource {
            declare_network(&mut script, policy);
        }
    }
    for resource in firewall {
        script.comment = rule_id(resource);
        add_rules(&mut script, resource);
    }
    Some(script)
}

/// The rules and set elements `render` writes for a firewall resource, each with the place
/// it goes to, without their comment.
pub(super) fn items(resource: &Resource) -> Vec<String> {
    let mut script = Script { inet: skeleton_inet(), bridge: skeleton_bridge(), comment: String::new() };
    if let Resource::Policy(policy) = resource {
        declare_network(&mut script, policy);
    }
    add_rules(&mut script, resource);
    let mut items = Vec::new();
    for (family, table) in [("inet", &script.inet), ("bridge", &script.bridge)] {
        for (set, _, elements) in &table.sets {
            items.extend(elements.iter().map(|element| format!("{family} set {set}: {element}")));
        }
        for (chain, _, rules) in &table.chains {
            items.extend(rules.iter().map(|rule| format!("{family} chain {chain}: {rule}")));
        }
    }
    items
}

/// The number of rules and set elements `render` writes for a firewall resource.
pub(super) fn item_count(resource: &Resource) -> usize {
    items(resource).len()
}

/// Adds the rules and set elements of one firewall resource (a stray has none: it is what
/// the tables hold beyond the stack's resources).
fn add_rules(script: &mut Script, resource: &Resource) {
    match resource {
        Resource::Policy(policy) => policy_rules(script, policy),
        Resource::Forward(forward) => forward_rules(script, forward),
        Resource::Flow(flow) => flow_elements(script, flow),
        Resource::Alias(alias) => alias_rules(script, alias),
        _ => {}
    }
}

fn skeleton_inet() -> Table {
    let mut table = Table::default();
    table.set("bridges", "type ifname;");
    table.set("flows", "type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags interval;");
    table.set("flows_any", "type ipv4_addr . ipv4_addr;");
    // The flows to the host: from a member's address, by protocol and port, or all traffic.
    table.set("host_flows", "type ipv4_addr . inet_proto . inet_service; flags interval;");
    table.set("host_flows_any", "type ipv4_addr;");
    // Every member's address, twice: `ip saddr . ct original ip saddr @members` is how nft
    // says that two addresses of a packet are the same member's.
    table.set("members", "type ipv4_addr . ipv4_addr;");
    table.chain("guard", "type filter hook prerouting priority raw; policy accept;");
    table.chain("nat_prerouting", "type nat hook prerouting priority dstnat; policy accept;");
    table.chain("tag_dnat", "type filter hook prerouting priority dstnat + 10; policy accept;");
    // Traffic between members of an isolated network is judged before it is routed: the
    // host would otherwise send a redirect first, which spends the ICMP rate allowance
    // toward the sender, so that the reject that follows is not sent and a blocked
    // connection waits for a timeout instead of failing at once.
    table.chain("isolation", "type filter hook prerouting priority dstnat + 20; policy accept;");
    table.chain("forward", "type filter hook forward priority filter; policy accept;");
    // What leaves an internal network is judged before anything may accept it, whatever
    // the order of the networks' names.
    table.chain("leave", "type filter hook forward priority filter - 1; policy accept;");
    table.chain("input", "type filter hook input priority filter; policy accept;");
    // `priority dstnat` is refused on the output hook: -100 is its value.
    table.chain("nat_output", "type nat hook output priority -100; policy accept;");
    table.chain("output", "type filter hook output priority filter; policy accept;");
    table.chain("nat_postrouting", "type nat hook postrouting priority srcnat; policy accept;");
    table.chain("published", "");
    table
}

fn skeleton_bridge() -> Table {
    let mut table = Table::default();
    table.chain("prerouting", "type filter hook prerouting priority filter; policy accept;");
    table.chain("forward", "type filter hook forward priority filter; policy accept;");
    table
}

fn declare_network(script: &mut Script, policy: &Policy) {
    let bridge = &policy.bridge;
    script.inet.chain(&format!("to_{bridge}"), "");
    if policy.isolation == Isolation::Flows {
        script.inet.chain(&format!("within_{bridge}"), "");
    }
    script.bridge.set(&format!("ports_{bridge}"), PORTS);
    script.bridge.set(&format!("sources_{bridge}"), SOURCES);
    script.bridge.set(&format!("macs_{bridge}"), MACS);
}

fn policy_rules(script: &mut Script, policy: &Policy) {
    use Family::{Bridge, Inet};
    let bridge = &policy.bridge;
    let subnet = policy.subnet;
    let (to, within) = (format!("to_{bridge}"), format!("within_{bridge}"));
    let (ports, sources, macs) = (format!("ports_{bridge}"), format!("sources_{bridge}"), format!("macs_{bridge}"));
    let flows = policy.isolation == Isolation::Flows;

    script.element(Inet, "bridges", format!("\"{bridge}\""));
    // `route_localnet` lets 127.0.0.1 reach published ports; it must not let a container
    // reach the host's loopback services, or pose as them.
    script.rule(Inet, "guard", format!("iifname \"{bridge}\" ip saddr 127.0.0.0/8 drop"));
    script.rule(Inet, "guard", format!("iifname \"{bridge}\" ip daddr 127.0.0.0/8 drop"));
    if flows {
        script.rule(
            Inet,
            "tag_dnat",
            format!("iifname \"{bridge}\" ct status dnat meta mark set meta mark | {MARK:#x}"),
        );
    }
    if !policy.internal {
        script.rule(Inet, "nat_postrouting", format!("ip saddr {subnet} oifname != \"{bridge}\" masquerade"));
    }
    // Published ports reached from the host's loopback or from the same network answer
    // through the host, not straight back to a peer that did not address them.
    script.rule(
        Inet,
        "nat_postrouting",
        format!("oifname \"{bridge}\" ct status dnat ip saddr {{ {subnet}, 127.0.0.0/8 }} masquerade"),
    );

    script.rule(Inet, "forward", format!("oifname \"{bridge}\" jump {to}"));
    if policy.internal {
        script.rule(Inet, "leave", format!("iifname \"{bridge}\" oifname != \"{bridge}\" {REJECT}"));
    }
    // What a container reaches of the host itself: replies to the host's own connections,
    // the stack's name server on the gateway (port 53), and the declared flows to the host;
    // on any of the host's addresses. Published ports and aliases are DNAT'd before this
    // (they are forwarded, not delivered to the host).
    script.rule(Inet, "input", format!("iifname \"{bridge}\" ct state established,related accept"));
    let gateway = policy.gateway;
    script.rule(
        Inet,
        "input",
        format!("iifname \"{bridge}\" ip daddr {gateway} meta l4proto {{ tcp, udp }} th dport 53 accept"),
    );
    script.rule(Inet, "input", format!("iifname \"{bridge}\" ip saddr . meta l4proto . th dport @host_flows accept"));
    script.rule(Inet, "input", format!("iifname \"{bridge}\" ip saddr @host_flows_any accept"));
    script.rule(Inet, "input", format!("iifname \"{bridge}\" {REJECT}"));
    // Between members, the verdict was given before routing (`isolation`).
    script.rule(Inet, &to, format!("iifname \"{bridge}\" accept"));
    script.rule(Inet, &to, "ct state established,related accept");
    script.rule(Inet, &to, "ct status dnat jump published");
    script.rule(Inet, &to, format!("iifname @bridges {REJECT}"));
    script.rule(Inet, &to, "drop");
    // An ICMP error is related to the connection it quotes, whoever sends it: it passes
    // only from one of that connection's ends (its client, or the server that answered).
    script.rule(
        Inet,
        "isolation",
        format!(
            "iifname \"{bridge}\" ct state related ip saddr . ct original ip saddr != @members \
             ip saddr . ct reply ip saddr != @members drop"
        ),
    );
    if flows {
        let gateway = policy.gateway;
        script.rule(
            Inet,
            "isolation",
            format!("iifname \"{bridge}\" ip daddr {subnet} ip daddr != {gateway} jump {within}"),
        );
        script.rule(Inet, &within, "ct direction original ip saddr . ip daddr . meta l4proto . th dport @flows accept");
        script.rule(Inet, &within, "ct direction reply ip daddr . ip saddr . meta l4proto . th sport @flows accept");
        script.rule(Inet, &within, "ct direction original ip saddr . ip daddr @flows_any accept");
        script.rule(Inet, &within, "ct direction reply ip daddr . ip saddr @flows_any accept");
        script.rule(Inet, &within, "ct status dnat jump published");
        script.rule(Inet, &within, "ct state related accept");
        script.rule(Inet, &within, REJECT);
        // The host forwards between members on the same interface; a redirect would tell
        // them to go straight to each other, which the bridge does not carry.
        script.rule(Inet, "output", format!("oifname \"{bridge}\" icmp type redirect drop"));
    }

    for member in &policy.members {
        script.element(Inet, "members", format!("{0} . {0}", member.address));
        script.element(Bridge, &ports, format!("\"{}\"", member.port));
        script.element(Bridge, &sources, format!("\"{}\" . {}", member.port, member.address));
        let mac = mac_text(container_mac(member.address));
        script.element(Bridge, &macs, format!("\"{}\" . {mac}", member.port));
    }
    // Only IPv4 and ARP enter from a container: a VLAN tag (even 0, which the kernel strips
    // later) or IPv6 would pass the address checks below unseen.
    script.rule(Bridge, "prerouting", format!("iifname @{ports} ether type != {{ ip, arp }} drop"));
    // A frame from another MAC address would teach the bridge that it is behind this port;
    // this chain runs before the bridge learns.
    script.rule(Bridge, "prerouting", format!("iifname @{ports} iifname . ether saddr != @{macs} drop"));
    script.rule(
        Bridge,
        "prerouting",
        format!("iifname @{ports} ether type arp iifname . arp saddr ether != @{macs} drop"),
    );
    script.rule(Bridge, "prerouting", format!("iifname @{ports} ether type ip iifname . ip saddr != @{sources} drop"));
    script.rule(
        Bridge,
        "prerouting",
        format!("iifname @{ports} ether type arp iifname . arp saddr ip != @{sources} drop"),
    );
    if flows {
        script.rule(Bridge, "forward", format!("iifname @{ports} meta mark & {MARK:#x} == {MARK:#x} accept"));
        script.rule(Bridge, "forward", format!("iifname @{ports} drop"));
    }
}

fn forward_rules(script: &mut Script, forward: &Forward) {
    use Family::Inet;
    // Random ports not yet picked have no rule: apply picks them first.
    let Some(host_ports) = forward.host_ports.ports() else { return };
    let protocol = forward.protocol;
    let to = forward.to;
    let containers = forward.container_ports;
    let dnat = if host_ports.count() == 1 {
        format!("dnat ip to {to}:{}", containers.first)
    } else if host_ports == containers {
        format!("dnat ip to {to}")
    } else {
        // Each host port goes to the container port at the same offset.
        let pairs: Vec<String> = (0..host_ports.count())
            .map(|offset| {
                let offset = offset as u16;
                format!("{} : {to} . {}", host_ports.first + offset, containers.first + offset)
            })
            .collect();
        format!("dnat ip to {protocol} dport map {{ {} }}", pairs.join(", "))
    };
    let ports = host_ports;
    match forward.host_ip {
        // Loopback addresses only exist for the host's own programs.
        Some(ip) if ip.is_loopback() => {}
        Some(ip) => script.rule(Inet, "nat_prerouting", format!("ip daddr {ip} {protocol} dport {ports} {dnat}")),
        None => script.rule(
            Inet,
            "nat_prerouting",
            format!("fib daddr type local ip daddr != 127.0.0.0/8 {protocol} dport {ports} {dnat}"),
        ),
    }
    match forward.host_ip {
        Some(ip) => script.rule(Inet, "nat_output", format!("ip daddr {ip} {protocol} dport {ports} {dnat}")),
        None => script.rule(Inet, "nat_output", format!("fib daddr type local {protocol} dport {ports} {dnat}")),
    }
    script.rule(Inet, "published", format!("ct direction original ip daddr {to} {protocol} dport {containers} accept"));
    script.rule(Inet, "published", format!("ct direction reply ip saddr {to} {protocol} sport {containers} accept"));
}

/// An alias's virtual address goes to one of its backends, picked per connection in turn
/// (conntrack sends the rest of a connection where its first packet went). Only address
/// translation: the flows, judged after it, decide which ports pass. Replies from the
/// backend pass back through the host, which gives them the virtual address again: on an
/// isolated network members route the subnet through the gateway, and on an open one the
/// masquerade of DNAT'd traffic from the subnet (in `policy_rules`) makes the backend
/// answer the gateway.
fn alias_rules(script: &mut Script, alias: &Alias) {
    let targets: Vec<String> = alias.backends.iter().map(|backend| backend.address.to_string()).collect();
    let dnat = match targets.as_slice() {
        [one] => format!("dnat ip to {one}"),
        many => {
            let pairs: Vec<String> =
                many.iter().enumerate().map(|(index, target)| format!("{index} : {target}")).collect();
            format!("dnat ip to numgen inc mod {} map {{ {} }}", many.len(), pairs.join(", "))
        }
    };
    let (bridge, address) = (&alias.bridge, alias.address);
    script.rule(Family::Inet, "nat_prerouting", format!("iifname \"{bridge}\" ip daddr {address} {dnat}"));
    // The host reaches the alias too: its probes and its own programs.
    script.rule(Family::Inet, "nat_output", format!("ip daddr {address} {dnat}"));
}

fn flow_elements(script: &mut Script, flow: &Flow) {
    let (from, to) = (flow.from, flow.to);
    if flow.destination == HOST {
        // Any of the host's addresses: the input chain sees only what is for the host.
        match flow.traffic {
            Traffic::All => script.element(Family::Inet, "host_flows_any", format!("{from}")),
            Traffic::Ports { protocol, ports } => {
                script.element(Family::Inet, "host_flows", format!("{from} . {protocol} . {ports}"))
            }
        }
        return;
    }
    match flow.traffic {
        Traffic::All => script.element(Family::Inet, "flows_any", format!("{from} . {to}")),
        Traffic::Ports { protocol, ports } => {
            script.element(Family::Inet, "flows", format!("{from} . {to} . {protocol} . {ports}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PortRange, Protocol, validate_file};
    use crate::spec::SourceFile;
    use crate::state::{HostFacts, HostPorts, LocalPorts, lower};

    fn script(text: &str) -> String {
        let validated = validate_file(&SourceFile { name: "example.yaml".to_owned(), text: text.to_owned() });
        let stack = validated.stack.expect("valid example");
        let local_ports = LocalPorts { ephemeral: PortRange { first: 32768, last: 60999 }, busy: Default::default() };
        let host = HostFacts { local_ports: Some(local_ports), ..HostFacts::default() };
        let desired = lower(&stack, &KernelState::default(), &host).expect("lowers");
        render(&stack.name, &desired.state, &Objects::new())
    }

    #[test]
    fn the_rules_of_scenario_1() {
        insta::assert_snapshot!(script(include_str!("../../../../examples/web-app-db.yaml")));
    }

    #[test]
    fn the_rules_of_every_form_of_publication() {
        insta::assert_snapshot!(script(include_str!("../../../../examples/port-publishing.yaml")));
    }

    /// A flow to the host is an element of `host_flows` (or `host_flows_any`) by the source's
    /// address, on open networks too; every bridge's traffic to the host is judged in `input`.
    #[test]
    fn the_rules_of_flows_to_the_host() {
        let script = script(
            "name: lab
networks:
  front: { subnet: 10.30.0.0/24, isolation: open }
  back: { subnet: 10.31.0.0/24, internal: true }
containers:
  app: { networks: [front, back], talks_to: ['host:22', 'host:2000-2100/udp'] }
  agent: { networks: [back], talks_to: [host] }
",
        );
        for line in ["10.30.0.2 . tcp . 22", "10.31.0.3 . tcp . 22", "10.31.0.3 . udp . 2000-2100", "10.31.0.2 comment"]
        {
            assert!(script.contains(line), "missing `{line}`:\n{script}");
        }
        insta::assert_snapshot!(script);
    }

    fn lowered(text: &str) -> KernelState {
        let validated = validate_file(&SourceFile { name: "example.yaml".to_owned(), text: text.to_owned() });
        let stack = validated.stack.expect("valid example");
        lower(&stack, &KernelState::default(), &HostFacts::default()).expect("lowers").state
    }

    /// Applies after the first change the tables in place: they, their chains and their
    /// sets stay (a new interval set would be empty for a moment after the commit); what
    /// is no longer wanted is declared, so that the script does not depend on what the
    /// tables hold, and deleted; foreign objects are deleted as they are.
    #[test]
    fn a_change_keeps_the_tables_and_deletes_what_is_no_longer_wanted() {
        let before = lowered(include_str!("../../../../examples/web-app-db.yaml"));
        let text = include_str!("../../../../examples/web-app-db.yaml")
            .replace("      db_nw: {}\n", "")
            .replace("  db:\n    networks: [db_nw]\n", "  db:\n    network_mode: none\n");
        let text = text
            .replace("    talks_to: [db:5432]\n", "")
            .replace("  db_nw:\n    subnet: 10.20.0.0/24\n    internal: true\n", "");
        let after = lowered(&text);
        let mut existing = objects(&before);
        existing.insert(Object { family: Family::Inet, kind: ObjectKind::Set, name: "by_hand".to_owned() });
        let script = render("shop", &after, &existing);
        assert!(!script.contains("delete table"), "{script}");
        for line in [
            "flush table inet stackctl-shop",
            "flush table bridge stackctl-shop",
            "flush set inet stackctl-shop flows",
            "delete chain inet stackctl-shop to_stb3ac96d9d46",
            "delete chain inet stackctl-shop within_stb3ac96d9d46",
            "delete set bridge stackctl-shop ports_stb3ac96d9d46",
            "delete set bridge stackctl-shop sources_stb3ac96d9d46",
            "delete set inet stackctl-shop by_hand",
            "  set ports_stb3ac96d9d46 { type ifname; }",
        ] {
            assert!(script.lines().any(|found| found == line), "missing `{line}`:\n{script}");
        }
        let deleted = script.find("delete chain").expect("chains deleted");
        assert!(script.find("flush table inet").expect("flushed") < deleted, "rules go before the chains they name");
        assert!(!script.contains("by_hand {"), "a set no stackctl makes is deleted, never declared: {script}");
        assert_eq!(objects(&after).iter().filter(|object| object.name.contains("stb3ac96d9d46")).count(), 0);
        insta::assert_snapshot!(script);
    }

    #[test]
    fn replacing_deletes_the_tables_first() {
        let state = lowered(include_str!("../../../../examples/web-app-db.yaml"));
        let script = render_replacing("shop", &state);
        assert!(script.starts_with(&render_replacing("shop", &KernelState::default())), "{script}");
        assert!(!script.contains("flush"), "{script}");
    }

    #[test]
    fn no_firewall_resources_delete_the_tables() {
        assert_eq!(
            render("shop", &KernelState::default(), &Objects::new()),
            "table inet stackctl-shop {}\ndelete table inet stackctl-shop\ntable bridge stackctl-shop {}\ndelete table bridge stackctl-shop\n"
        );
    }

    #[test]
    fn item_counts_match_what_render_writes() {
        let text = include_str!("../../../../examples/pets-tenants.yaml").to_owned();
        let stack = validate_file(&SourceFile { name: "pets".to_owned(), text }).stack.expect("valid");
        let desired = lower(&stack, &KernelState::default(), &HostFacts::default()).expect("lowers");
        let script = render(&stack.name, &desired.state, &Objects::new());
        for resource in desired.state.resources.values().filter(|resource| resource.kind().is_firewall()) {
            let id = rule_id(resource);
            assert_eq!(script.matches(&format!("\"{id}\"")).count(), item_count(resource), "{id}");
        }
    }

    #[test]
    fn a_random_port_not_yet_picked_has_no_rule() {
        let forward = Forward {
            container: "web".to_owned(),
            protocol: Protocol::Tcp,
            host_ip: None,
            host_ports: HostPorts::Random,
            container_ports: PortRange::single(80),
            to: "10.89.0.2".parse().expect("address"),
        };
        assert_eq!(item_count(&Resource::Forward(forward)), 0);
    }
}
