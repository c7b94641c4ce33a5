//! `stackctl check` on the live kernel, always in a sandbox (`support::sandbox`): the
//! prober's outcomes between namespaces joined by a veth pair, with a listener, a closed
//! port, a firewall that drops and routes that refuse; probes from more sources than one
//! batch holds; the whole command on scenario one; on every example, a rule deleted by
//! hand failing exactly the cells it governs; and published ports, probed from the host on
//! each of its addresses, a publication broken or leaked by hand failing exactly its cell,
//! and one on an address the host lacks failing only its own cell there.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/stacks.rs"]
mod stacks;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use sandbox::{Sandbox, assert_success};
use serde_json::Value;
use stackctl::check::{Expected, Outcome, Probe};
use stackctl::kernel::{HostNamespace, Kernel, Places};
use stackctl::model::Protocol;
use stackctl::state::{NamespaceName, Scope};
use stacks::{addresses, example, stack_of, topology};

/// A kernel whose places are the sandbox's, seen from this process through the sandbox's
/// root, and whose host is a namespace of the sandbox: nothing outside it is touched.
fn kernel(sandbox: &Sandbox) -> Kernel {
    sandbox.sh("ip netns add host");
    let root = PathBuf::from(format!("/proc/{}/root", sandbox.pid()));
    let places =
        Places { netns: root.join("run/netns"), etc_netns: root.join("etc/netns"), state: root.join("run/stackctl") };
    Kernel::open(&HostNamespace::Named("host".to_owned()), places)
        .expect("connect to the sandbox")
        .expect("the sandbox's host namespace exists")
}

/// A scope whose containers are the named namespaces of the sandbox.
fn scope(namespaces: &[String]) -> Scope {
    Scope {
        stack: "probe".to_owned(),
        host: HostNamespace::Named("host".to_owned()),
        group: 0,
        interfaces: BTreeMap::new(),
        namespaces: namespaces.iter().map(|name| (name.clone(), NamespaceName::Created(name.clone()))).collect(),
    }
}

fn probe(source: &str, address: [u8; 4], protocol: Protocol, port: u16) -> Probe {
    Probe {
        source: source.to_owned(),
        destination: "somewhere".to_owned(),
        network: "n".to_owned(),
        address: Ipv4Addr::from(address),
        protocol,
        port,
        expected: Expected::Allowed,
        direct: false,
    }
}

/// Answers one datagram on `port` in a namespace of the sandbox, echoing it back.
fn udp_echo(sandbox: &Sandbox, netns: &str, port: u16) -> std::thread::JoinHandle<()> {
    let namespace = File::open(sandbox.netns_path(netns)).expect("open the namespace");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        setns(namespace.as_fd(), CloneFlags::CLONE_NEWNET).expect("join the namespace");
        let socket = UdpSocket::bind(("0.0.0.0", port)).expect("bind a UDP echo");
        socket.set_read_timeout(Some(Duration::from_secs(5))).expect("read timeout");
        ready_tx.send(()).expect("report the echo ready");
        let mut buffer = [0; 16];
        if let Ok((length, peer)) = socket.recv_from(&mut buffer) {
            let _ = socket.send_to(&buffer[..length], peer);
        }
    });
    ready_rx.recv().expect("echo started");
    thread
}

fn probes_tell_reached_from_blocked() {
    let sandbox = Sandbox::new();
    sandbox.sh("ip netns add a && ip netns add b
         ip link add va type veth peer name vb
         ip link set va netns a && ip link set vb netns b
         ip -n a addr add 10.9.0.1/24 dev va && ip -n a link set va up && ip -n a link set lo up
         ip -n b addr add 10.9.0.2/24 dev vb && ip -n b link set vb up && ip -n b link set lo up
         ip -n a route add unreachable 10.9.1.0/24
         ip -n a route add prohibit 10.9.2.0/24
         ip netns exec b nft add table inet probe
         ip netns exec b nft add chain inet probe input '{ type filter hook input priority 0; policy accept; }'
         ip netns exec b nft add rule inet probe input tcp dport 81 drop
         ip netns exec b nft add rule inet probe input udp dport 81 drop");
    let kernel = kernel(&sandbox);
    let _listener = sandbox.listen("b", 80, "hello");
    let echo = udp_echo(&sandbox, "b", 53);
    let (tcp, udp) = (Protocol::Tcp, Protocol::Udp);
    let cases = [
        (probe("a", [10, 9, 0, 2], tcp, 80), Outcome::Connected),
        (probe("a", [10, 9, 0, 2], tcp, 82), Outcome::Refused),
        (probe("a", [10, 9, 0, 2], tcp, 81), Outcome::TimedOut),
        (probe("a", [10, 9, 1, 1], tcp, 80), Outcome::Unreachable),
        (probe("a", [10, 9, 2, 1], tcp, 80), Outcome::Unreachable),
        (probe("a", [192, 0, 2, 1], tcp, 80), Outcome::Unreachable),
        (probe("a", [10, 9, 0, 2], udp, 53), Outcome::Answered),
        (probe("a", [10, 9, 0, 2], udp, 54), Outcome::Refused),
        (probe("a", [10, 9, 0, 2], udp, 81), Outcome::NoAnswer),
        (probe("a", [10, 9, 1, 1], udp, 53), Outcome::Unreachable),
        (probe("b", [10, 9, 0, 1], tcp, 9), Outcome::Refused),
        (probe("b", [10, 9, 0, 2], tcp, 80), Outcome::Connected),
    ];
    let probes: Vec<Probe> = cases.iter().map(|(probe, _)| probe.clone()).collect();
    let started = Instant::now();
    let outcomes = kernel
        .probe(&scope(&["a".to_owned(), "b".to_owned()]), &probes, Duration::from_millis(500))
        .expect("probes are made");
    let elapsed = started.elapsed();
    echo.join().expect("the echo thread");
    for ((probe, expected), outcome) in cases.iter().zip(&outcomes) {
        assert_eq!(outcome, expected, "{} -> {}:{}/{}", probe.source, probe.address, probe.port, probe.protocol);
    }
    assert!(elapsed < Duration::from_secs(2), "the probes waited together, not one after another: {elapsed:?}");
}

fn probes_run_in_their_own_namespace_past_one_batch() {
    let sandbox = Sandbox::new();
    // More sources than one batch of threads holds; each has its own address on loopback,
    // which only a socket in that namespace reaches.
    let names: Vec<String> = (0..70).map(|index| format!("n{index}")).collect();
    let script: String = (0..70)
        .map(|index| format!("ip netns add n{index} && ip -n n{index} addr add 10.10.{index}.1/32 dev lo && ip -n n{index} link set lo up\n"))
        .collect();
    sandbox.sh(&script);
    let kernel = kernel(&sandbox);
    let mut probes = Vec::new();
    for index in 0..70u8 {
        let source = format!("n{index}");
        probes.push(probe(&source, [10, 10, index, 1], Protocol::Tcp, 9));
        probes.push(probe(&source, [10, 10, (index + 1) % 70, 1], Protocol::Tcp, 9));
    }
    let started = Instant::now();
    let outcomes = kernel.probe(&scope(&names), &probes, Duration::from_millis(500)).expect("probes are made");
    for (probe, outcome) in probes.iter().zip(&outcomes) {
        let own = probe.address.octets()[2].to_string() == probe.source[1..];
        let expected = if own { Outcome::Refused } else { Outcome::Unreachable };
        assert_eq!(*outcome, expected, "{} -> {}", probe.source, probe.address);
    }
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

fn a_missing_namespace_is_an_error_that_names_it() {
    let sandbox = Sandbox::new();
    let kernel = kernel(&sandbox);
    let error = kernel
        .probe(
            &scope(&["gone".to_owned()]),
            &[probe("gone", [10, 9, 0, 2], Protocol::Tcp, 80)],
            Duration::from_millis(100),
        )
        .expect_err("no namespace to probe from");
    assert!(error.to_string().starts_with("open namespace of `gone`"), "{error}");
}

/// `stackctl check --format json`: its exit code and its table.
fn check_json(sandbox: &Sandbox, file: &str) -> (i32, Value) {
    let output =
        sandbox.stackctl().args(["-f", file, "check", "--format", "json"]).output().expect("run stackctl check");
    let table = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!("check prints JSON: {error}\nstderr:\n{}", String::from_utf8_lossy(&output.stderr))
    });
    (output.status.code().unwrap_or(-1), table)
}

/// The wrong cells, between containers and of published ports.
fn wrong_cells(table: &Value) -> Vec<String> {
    let cells = table["cells"].as_array().expect("cells").iter();
    let published = table["published"].as_array().expect("published cells").iter();
    cells.chain(published).filter(|cell| cell["correct"] != true).map(Value::to_string).collect()
}

/// The wrong published cells: (container, host address, mark).
fn wrong_published(table: &Value) -> Vec<(String, String, String)> {
    let cells = table["published"].as_array().expect("published cells");
    cells
        .iter()
        .filter(|cell| cell["correct"] != true)
        .map(|cell| {
            let field = |key: &str| cell[key].as_str().expect("a string").to_owned();
            (field("container"), field("address"), field("mark"))
        })
        .collect()
}

/// The published cell of `container`'s port published on `host_ports` (as `check` shows
/// them), on host address `address`.
fn published_cell<'t>(table: &'t Value, container: &str, host_ports: &str, address: &str) -> &'t Value {
    let cells = table["published"].as_array().expect("published cells");
    cells
        .iter()
        .find(|cell| cell["container"] == container && cell["host_ports"] == host_ports && cell["address"] == address)
        .unwrap_or_else(|| panic!("no published cell {container} {host_ports} on {address}: {table:#}"))
}

/// The outcomes of a published cell's probes.
fn outcomes_of(cell: &Value) -> Vec<&str> {
    cell["probes"].as_array().expect("probes").iter().map(|probe| probe["outcome"].as_str().expect("outcome")).collect()
}

/// A second interface of the sandbox's host, holding an address on a subnet and a single
/// address, 10.20.3.4, which scenario 4 publishes a port on. Its peer stays in the host:
/// what goes out comes back.
const UPLINK: &str = "ip link add up0 type veth peer name up1
ip addr add 192.0.2.1/24 dev up0
ip addr add 10.20.3.4/32 dev up0
ip link set up0 up
ip link set up1 up";

/// Deletes the rule of the host's own translations (`nat_output`) that holds `pattern`.
fn delete_output_rule(sandbox: &Sandbox, stack: &str, pattern: &str) {
    let chain = sandbox.sh(&format!("nft -a list chain inet stackctl-{stack} nat_output"));
    let rule =
        chain.lines().find(|line| line.contains(pattern)).unwrap_or_else(|| panic!("no rule {pattern}:\n{chain}"));
    let handle = rule.rsplit("# handle ").next().expect("a handle").trim();
    sandbox.sh(&format!("nft delete rule inet stackctl-{stack} nat_output handle {handle}"));
}

fn check_refuses_a_stack_that_is_not_applied() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    let output = sandbox.stackctl().args(["-f", &file, "check"]).output().expect("run stackctl check");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("error: stack `shop` is not applied on this host"), "{stderr}");
}

fn check_proves_the_declared_flows_of_scenario_one() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    assert_success(&sandbox.stackctl().args(["-f", &file, "apply", "--yes"]).output().expect("apply"), "apply");
    let (_, table) = check_json(&sandbox, &file);
    assert_eq!(table["format_version"], 1);
    for cell in table["cells"].as_array().expect("cells") {
        if cell["expected"] == "allowed" {
            let probes = cell["probes"].as_array().expect("probes");
            let declared = probes.iter().filter(|probe| probe["expected"] == "allowed");
            assert!(
                declared.clone().count() > 0 && declared.into_iter().all(|probe| probe["reached"] == true),
                "{cell}"
            );
        }
    }
}

/// The final behaviour: with flows enforced by the firewall, every cell of scenario one is
/// right, in text and in JSON.
fn check_passes_on_scenario_one() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    assert_success(&sandbox.stackctl().args(["-f", &file, "apply", "--yes"]).output().expect("apply"), "apply");
    let (code, table) = check_json(&sandbox, &file);
    assert_eq!((code, wrong_cells(&table)), (0, Vec::<String>::new()), "{table:#}");
    assert_eq!(table["correct"], true);

    let output = sandbox.stackctl().args(["-f", &file, "check"]).output().expect("run stackctl check");
    assert_success(&output, "check");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("  1 db       \\ X X\n  2 flaskapp . \\ X\n  3 nginx    X . \\\n"), "{text}");
    // nginx's port 80, published on 127.0.0.1:8080, arrives there and on none of the
    // host's other addresses (its bridges' gateways).
    assert!(text.contains("  nginx 127.0.0.1:8080->80/tcp . X X\n"), "{text}");
    assert!(text.contains("  1 127.0.0.1   2 10.20.0.1   3 10.89.0.1\n"), "{text}");
    assert!(text.ends_with("6 pairs, 1 published port on 3 host addresses, 13 probes, 0 wrong\n"), "{text}");
}

/// A host port that no rule forwards is the host's own: a connection there is answered by
/// the host, refused or accepted by its own program. Neither counts as arriving at nginx.
fn check_tells_a_published_port_from_the_hosts_own() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    assert_success(&sandbox.stackctl().args(["-f", &file, "apply", "--yes"]).output().expect("apply"), "apply");
    // nginx's own program listens on port 80; the host's own on 8080, on every address.
    let _nginx = sandbox.listen("shop:nginx", 80, "nginx");
    let _host = sandbox.listen_on_host(8080, "the host");
    let (code, table) = check_json(&sandbox, &file);
    assert_eq!((code, wrong_cells(&table)), (0, Vec::<String>::new()), "{table:#}");
    assert_eq!(outcomes_of(published_cell(&table, "nginx", "8080", "127.0.0.1")), ["in_container"]);
    assert_eq!(outcomes_of(published_cell(&table, "nginx", "8080", "10.89.0.1")), ["elsewhere"]);

    // Without its rule, the port is the host's own program's on loopback too.
    delete_output_rule(&sandbox, "shop", "dport 8080");
    let (code, table) = check_json(&sandbox, &file);
    let wrong = wrong_published(&table);
    assert_eq!((code, wrong), (1, vec![("nginx".to_owned(), "127.0.0.1".to_owned(), "#".to_owned())]), "{table:#}");
    assert_eq!(outcomes_of(published_cell(&table, "nginx", "8080", "127.0.0.1")), ["elsewhere"]);
    assert_eq!(table["cells"].as_array().expect("cells").iter().filter(|cell| cell["correct"] != true).count(), 0);
}

/// Scenario 4: every form of publication arrives where it was asked to and nowhere else,
/// whether a witness or the container's own program takes it; one broken publication, and
/// one leaked to another address, fail exactly their cells.
fn check_proves_every_form_of_publication() {
    let sandbox = Sandbox::new();
    sandbox.sh(UPLINK);
    let file = example("port-publishing");
    assert_success(&sandbox.stackctl().args(["-f", &file, "apply", "--yes"]).output().expect("apply"), "apply");
    // web's own program holds port 80; every other container port gets a witness.
    let _web = sandbox.listen("ports:web", 80, "web");
    let (code, table) = check_json(&sandbox, &file);
    assert_eq!((code, wrong_cells(&table)), (0, Vec::<String>::new()), "{table:#}");
    assert_eq!(table["host_addresses"], serde_json::json!(["127.0.0.1", "10.20.3.4", "10.89.0.1", "192.0.2.1"]));
    let published = table["published"].as_array().expect("published cells");
    assert_eq!(published.len(), 7 * 4, "every publication on every address");
    for address in ["127.0.0.1", "10.20.3.4", "10.89.0.1", "192.0.2.1"] {
        assert_eq!(outcomes_of(published_cell(&table, "web", "443", address)), ["token"], "{address}");
        assert_eq!(outcomes_of(published_cell(&table, "web", "8080", address)), ["in_container"], "{address}");
        assert_eq!(outcomes_of(published_cell(&table, "web", "5000-5100", address)), ["token", "token"], "{address}");
    }
    // Published on loopback only: arrives there, and on none of the host's other addresses.
    assert_eq!(outcomes_of(published_cell(&table, "db", "5432", "127.0.0.1")), ["token"]);
    for address in ["10.20.3.4", "10.89.0.1", "192.0.2.1"] {
        let cell = published_cell(&table, "db", "5432", address);
        assert_eq!((cell["expected"].as_str(), cell["mark"].as_str()), (Some("blocked"), Some("X")), "{address}");
        assert_eq!(outcomes_of(cell), ["refused"], "{address}");
    }
    assert_eq!(outcomes_of(published_cell(&table, "web", "9053", "127.0.0.1")), ["token"]);
    assert_eq!(outcomes_of(published_cell(&table, "web", "9053", "192.0.2.1")), ["refused"]);
    // The random port, where it was picked.
    let random = published.iter().find(|cell| cell["random"] == true).expect("the random port");
    let picked: u16 = random["host_ports"].as_str().expect("picked").parse().expect("one port");
    assert!((32768..=60999).contains(&picked), "{picked}");
    assert_eq!(random["probes"][0]["port"], picked);
    // The witnesses leave their ports free: no connection of theirs waits in TIME_WAIT.
    assert_eq!(sandbox.sh("ip netns exec ports:db ss -Htan state time-wait"), "");

    // db's port on 10.20.3.4 without its rule; db's loopback port leaked to the uplink by
    // another table's rule.
    delete_output_rule(&sandbox, "ports", "dport 8081");
    let db = stacks::address_of(&sandbox, &file, "db", "front");
    sandbox.sh(&format!(
        "nft add table ip leak
         nft add chain ip leak out '{{ type nat hook output priority -100; }}'
         nft add rule ip leak out ip daddr 192.0.2.1 tcp dport 5432 dnat to {db}:5432"
    ));
    let (code, table) = check_json(&sandbox, &file);
    let wrong = wrong_published(&table);
    let expected = vec![
        ("db".to_owned(), "192.0.2.1".to_owned(), "!".to_owned()),
        ("db".to_owned(), "10.20.3.4".to_owned(), "#".to_owned()),
    ];
    assert_eq!((code, wrong), (1, expected), "{table:#}");
    assert_eq!(outcomes_of(published_cell(&table, "db", "5432", "192.0.2.1")), ["token"]);
    assert_eq!(outcomes_of(published_cell(&table, "db", "8081", "10.20.3.4")), ["refused"]);
    let output = sandbox.stackctl().args(["-f", &file, "check"]).output().expect("run stackctl check");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("host -> 192.0.2.1:5432/tcp (db 127.0.0.1:5432->5432/tcp): must not arrive in db, arrived"),
        "{text}"
    );
}

/// Scenario 4 on a host without 10.20.3.4, which only db's `10.20.3.4:8081:8080` names:
/// `apply --verify` and `check` fail for that publication's cell alone, which says why;
/// the ports published on all interfaces are not expected there. With the address added,
/// every cell is right.
fn check_fails_only_the_publication_on_an_address_the_host_lacks() {
    let sandbox = Sandbox::new();
    let file = example("port-publishing");
    let output = sandbox.stackctl().args(["-f", &file, "apply", "--yes", "--verify"]).output().expect("apply");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let why =
        "  host -> 10.20.3.4 (db 10.20.3.4:8081->8080/tcp): must arrive in db, the host has no address 10.20.3.4\n";
    assert!(text.contains(&format!("\nwrong:\n{why}\n")), "{text}");
    assert!(text.ends_with(", 1 wrong\n"), "{text}");

    let (code, table) = check_json(&sandbox, &file);
    let wrong = wrong_published(&table);
    assert_eq!((code, wrong), (1, vec![("db".to_owned(), "10.20.3.4".to_owned(), "#".to_owned())]), "{table:#}");
    assert_eq!(wrong_cells(&table).len(), 1, "{table:#}");
    assert_eq!(published_cell(&table, "db", "8081", "10.20.3.4")["missing"], "host_address");
    for host_ports in ["443", "8080", "5000-5100", "5432", "9053"] {
        let cell = published_cell(&table, if host_ports == "5432" { "db" } else { "web" }, host_ports, "10.20.3.4");
        assert_eq!((cell["expected"].as_str(), cell["mark"].as_str()), (Some("not_applicable"), Some("-")), "{cell}");
        assert_eq!(outcomes_of(cell), Vec::<&str>::new(), "{cell}");
    }
    // Published on all interfaces: on the host's own addresses, as ever.
    for address in ["127.0.0.1", "10.89.0.1"] {
        assert_eq!(outcomes_of(published_cell(&table, "web", "443", address)), ["token"], "{address}");
    }

    sandbox.sh(UPLINK);
    let (code, table) = check_json(&sandbox, &file);
    assert_eq!((code, wrong_cells(&table)), (0, Vec::<String>::new()), "{table:#}");
}

/// Without the firewall, members of a network reach each other: check says so, and fails.
fn check_reports_leaks_once_the_firewall_is_gone() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    assert_success(&sandbox.stackctl().args(["-f", &file, "apply", "--yes"]).output().expect("apply"), "apply");
    sandbox.sh("nft flush ruleset");
    let output = sandbox.stackctl().args(["-f", &file, "check"]).output().expect("run stackctl check");
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    let leak = text.lines().find(|line| line.starts_with("  flaskapp -> nginx "));
    assert!(leak.is_some_and(|line| line.ends_with(":9/tcp: must be blocked, reached (connection refused)")), "{text}");
    assert!(text.contains("  2 flaskapp ! \\ !\n"), "{text}");
}

/// For every example: check passes; then one rule deleted by hand fails exactly the cells
/// it governs. The rule is the first declared flow's (that pair is then broken, `#`), or,
/// for a stack without flows, the chain that judges traffic inside the first network (its
/// members then reach each other, `!`).
fn a_rule_deleted_by_hand_fails_exactly_its_cells_in_every_example() {
    let examples = ["web-app-db", "web-app-db-v2", "reverse-proxy", "pets-tenants", "port-publishing", "hot-connect"];
    for name in examples {
        let sandbox = Sandbox::new();
        // Scenario 4 publishes a port on this address of the host.
        sandbox.sh(UPLINK);
        let file = example(name);
        let stack = stack_of(&file);
        assert_success(&sandbox.stackctl().args(["-f", &file, "apply", "--yes"]).output().expect("apply"), "apply");
        let (code, table) = check_json(&sandbox, &file);
        assert_eq!((code, wrong_cells(&table)), (0, Vec::<String>::new()), "{name}: {table:#}");

        let members = addresses(&topology(&sandbox, &file));
        let owner = |address: &str| {
            let found = members.iter().find(|(_, _, member)| member.to_string() == address);
            found.unwrap_or_else(|| panic!("{name}: no member has {address}")).0.clone()
        };
        let tables = format!("stackctl-{}", stack.name);
        let flows: Value =
            serde_json::from_str(&sandbox.sh(&format!("nft -j list set inet {tables} flows"))).expect("nft JSON");
        let element = flows["nftables"][1]["set"]["elem"].as_array().and_then(|elements| elements.first()).cloned();
        let expected: Vec<(String, String, String)> = match element {
            Some(element) => {
                let parts = element["elem"]["val"]["concat"].as_array().expect("a concatenation").clone();
                let [from, to, protocol, port] = <[Value; 4]>::try_from(parts).expect("four parts");
                let (from, to) = (from.as_str().expect("address"), to.as_str().expect("address"));
                let port = match port {
                    Value::Object(range) => format!("{}-{}", range["range"][0], range["range"][1]),
                    port => port.to_string(),
                };
                let protocol = protocol.as_str().expect("protocol");
                sandbox
                    .sh(&format!("nft delete element inet {tables} flows '{{ {from} . {to} . {protocol} . {port} }}'"));
                vec![(owner(from), owner(to), "#".to_owned())]
            }
            None => {
                let network = stack.networks.keys().next().expect("a network");
                let bridge = stackctl::state::bridge_ifname(&stack.name, network);
                sandbox.sh(&format!("nft flush chain inet {tables} within_{bridge}"));
                let on: Vec<String> = stack.members(network).map(|member| member.name.clone()).collect();
                let mut pairs = Vec::new();
                for source in &on {
                    for destination in on.iter().filter(|destination| *destination != source) {
                        pairs.push((source.clone(), destination.clone(), "!".to_owned()));
                    }
                }
                pairs
            }
        };
        let (code, table) = check_json(&sandbox, &file);
        let wrong: Vec<(String, String, String)> = table["cells"]
            .as_array()
            .expect("cells")
            .iter()
            .filter(|cell| cell["correct"] != true)
            .map(|cell| {
                let field = |key: &str| cell[key].as_str().expect("a string").to_owned();
                (field("source"), field("destination"), field("mark"))
            })
            .collect();
        assert_eq!((code, wrong), (1, expected), "{name}");
        assert_eq!(wrong_published(&table), [], "{name}: the published ports are not the rule's");
    }
}

/// `apply --verify` ends with check's truth table, and its verdict.
fn apply_verify_runs_check_after_applying() {
    let sandbox = Sandbox::new();
    let file = example("pets-tenants");
    let output = sandbox.stackctl().args(["-f", &file, "apply", "--yes", "--verify"]).output().expect("apply");
    assert_success(&output, "apply --verify");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("Apply complete"), "{text}");
    assert!(text.contains("Verifying with `stackctl check`:"), "{text}");
    assert!(text.ends_with("20 pairs, 3 published ports on 3 host addresses, 35 probes, 0 wrong\n"), "{text}");
}

harness::main! {
    Shared: [
        a_missing_namespace_is_an_error_that_names_it,
        check_refuses_a_stack_that_is_not_applied,
        check_proves_the_declared_flows_of_scenario_one,
        check_passes_on_scenario_one,
        check_tells_a_published_port_from_the_hosts_own,
        check_proves_every_form_of_publication,
        check_fails_only_the_publication_on_an_address_the_host_lacks,
        check_reports_leaks_once_the_firewall_is_gone,
        a_rule_deleted_by_hand_fails_exactly_its_cells_in_every_example,
        apply_verify_runs_check_after_applying,
    ],
    Alone: [
        // Probes with timeouts of 500 ms must end together within 2 s,
        probes_tell_reached_from_blocked,
        // and 140 of them within 5 s.
        probes_run_in_their_own_namespace_past_one_batch,
    ],
}
