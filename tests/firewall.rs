//! The firewall on the live kernel, always in a sandbox (`support::sandbox`): published
//! ports in every form, from outside the host, from the host and from containers; egress
//! through masquerade; least privilege inside a network, with `br_netfilter` on and off;
//! flows added to a running stack; and a host without `nft`.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/stacks.rs"]
mod stacks;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use sandbox::{Sandbox, assert_success};
use serde_json::Value;
use stacks::{address_of, apply, assert_converged, example, run, topology, write_stack};

/// The host's uplink in the sandbox, and the world behind it: a namespace `outside` at
/// 192.0.2.2, reaching the host at 192.0.2.1 and at a second address, 10.20.3.4.
const UPLINK: &str = "
ip netns add outside
ip link add up0 type veth peer name eth0 netns outside
ip addr add 192.0.2.1/24 dev up0
ip addr add 10.20.3.4/32 dev up0
ip link set up0 up
ip -n outside addr add 192.0.2.2/24 dev eth0
ip -n outside link set eth0 up
ip -n outside link set lo up
ip -n outside route add default via 192.0.2.1
";

const HOST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const SECOND: Ipv4Addr = Ipv4Addr::new(10, 20, 3, 4);
const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn with_uplink() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.sh(UPLINK);
    sandbox
}

fn set_br_netfilter(sandbox: &Sandbox, on: bool) {
    sandbox.sh(&format!("echo {} > /proc/sys/net/bridge/bridge-nf-call-iptables", u8::from(on)));
}

/// Connects from a namespace (`None`: the sandbox's host) and reads the first line the
/// peer sends.
fn connect(sandbox: &Sandbox, from: Option<&str>, to: (Ipv4Addr, u16)) -> std::io::Result<String> {
    sandbox.in_netns(from, move || {
        let mut stream = TcpStream::connect_timeout(&SocketAddr::from(to), Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut line = String::new();
        BufReader::new(&mut stream).read_line(&mut line)?;
        Ok(line.trim_end().to_owned())
    })
}

fn assert_reaches(sandbox: &Sandbox, from: Option<&str>, to: (Ipv4Addr, u16), expected: &str) {
    let reply = connect(sandbox, from, to);
    let from = from.unwrap_or("the host");
    assert_eq!(reply.as_deref().ok(), Some(expected), "{from} -> {}:{}: {reply:?}", to.0, to.1);
}

fn assert_blocked(sandbox: &Sandbox, from: Option<&str>, to: (Ipv4Addr, u16)) {
    let reply = connect(sandbox, from, to);
    assert!(reply.is_err(), "{} reaches {}:{}: {reply:?}", from.unwrap_or("the host"), to.0, to.1);
}

/// Answers one UDP datagram on `port` of a namespace with `reply`, on a thread.
fn udp_echo(sandbox: &Sandbox, netns: &str, port: u16, reply: &'static str) -> std::thread::JoinHandle<()> {
    let socket = sandbox.in_netns(Some(netns), move || UdpSocket::bind(("0.0.0.0", port)).expect("bind UDP"));
    socket.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    std::thread::spawn(move || {
        let mut buffer = [0u8; 64];
        if let Ok((_, peer)) = socket.recv_from(&mut buffer) {
            let _ = socket.send_to(reply.as_bytes(), peer);
        }
    })
}

fn udp_exchange(sandbox: &Sandbox, from: Option<&str>, to: (Ipv4Addr, u16)) -> std::io::Result<String> {
    sandbox.in_netns(from, move || {
        let socket = UdpSocket::bind(("0.0.0.0", 0))?;
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        socket.send_to(b"ping", SocketAddr::from(to))?;
        let mut buffer = [0u8; 64];
        let (length, _) = socket.recv_from(&mut buffer)?;
        Ok(String::from_utf8_lossy(&buffer[..length]).into_owned())
    })
}

/// The host port picked at random for a container's port.
fn picked_port(topology: &Value, container: &str, container_port: &str) -> u16 {
    let containers = topology["containers"].as_array().expect("containers");
    let ports = containers.iter().find(|c| c["name"] == container).expect("container")["ports"].clone();
    let port =
        ports.as_array().expect("ports").iter().find(|p| p["random"] == true && p["container_ports"] == container_port);
    port.expect("a picked port")["host_ports"].as_str().expect("ports").parse().expect("one port")
}

fn published_ports_in_every_form() {
    let sandbox = with_uplink();
    let file = example("port-publishing");
    let output = run(&sandbox, &["-f", &file, "plan"]);
    assert_success(&output, "plan");
    let text = String::from_utf8_lossy(&output.stdout);
    let exposed = text.lines().filter(|line| line.contains("EXPOSED ON ALL INTERFACES")).count();
    assert_eq!(exposed, 4, "every publication without a host address is marked:\n{text}");
    apply(&sandbox, &file);
    let web = "ports:web";
    let db = "ports:db";
    let _listeners = [
        sandbox.listen(web, 443, "web:443"),
        sandbox.listen(web, 80, "web:80"),
        sandbox.listen(web, 3000, "web:3000"),
        sandbox.listen(web, 2050, "web:2050"),
        sandbox.listen(db, 5432, "db:5432"),
        sandbox.listen(db, 8080, "db:8080"),
    ];
    let random = picked_port(&topology(&sandbox, &file), "web", "3000");
    assert!((32768..=60999).contains(&random), "picked from the ephemeral range: {random}");
    let plan = String::from_utf8_lossy(&run(&sandbox, &["-f", &file, "show"]).stdout).into_owned();
    assert!(plan.contains(&format!("*:{random}->3000/tcp (random)")), "show tells the picked port:\n{plan}");

    for br_netfilter in [true, false] {
        set_br_netfilter(&sandbox, br_netfilter);
        // From outside the host, on each of its addresses.
        for address in [HOST, SECOND] {
            assert_reaches(&sandbox, Some("outside"), (address, 443), "web:443");
            assert_reaches(&sandbox, Some("outside"), (address, 8080), "web:80");
            assert_reaches(&sandbox, Some("outside"), (address, random), "web:3000");
            assert_reaches(&sandbox, Some("outside"), (address, 5050), "web:2050");
            assert_blocked(&sandbox, Some("outside"), (address, 5432));
        }
        assert_reaches(&sandbox, Some("outside"), (SECOND, 8081), "db:8080");
        assert_blocked(&sandbox, Some("outside"), (HOST, 8081));
        assert_blocked(&sandbox, Some("outside"), (LOOPBACK, 8080));
        // From the host itself, loopback included.
        assert_reaches(&sandbox, None, (LOOPBACK, 8080), "web:80");
        assert_reaches(&sandbox, None, (HOST, 443), "web:443");
        assert_reaches(&sandbox, None, (LOOPBACK, 5432), "db:5432");
        assert_reaches(&sandbox, None, (SECOND, 8081), "db:8080");
        assert_blocked(&sandbox, None, (LOOPBACK, 8081));
        assert_blocked(&sandbox, None, (HOST, 5432));
        // From containers of the stack, through the host's address (hairpin), also to a
        // member of their own network.
        assert_reaches(&sandbox, Some(db), (HOST, 443), "web:443");
        assert_reaches(&sandbox, Some(web), (SECOND, 8081), "db:8080");
        // UDP, on loopback only.
        let echo = udp_echo(&sandbox, web, 53, "web:53/udp");
        assert_eq!(udp_exchange(&sandbox, None, (LOOPBACK, 9053)).ok().as_deref(), Some("web:53/udp"));
        echo.join().expect("UDP echo");
        assert!(udp_exchange(&sandbox, Some("outside"), (HOST, 9053)).is_err(), "UDP 9053 is for loopback only");
    }

    // The random port stays across applies.
    apply(&sandbox, &file);
    assert_converged(&sandbox, &file);
    assert_eq!(picked_port(&topology(&sandbox, &file), "web", "3000"), random);
}

fn egress_leaves_through_masquerade_and_internal_networks_stay_inside() {
    let sandbox = with_uplink();
    let file = example("web-app-db");
    // A host that does not forward gets forwarding turned on, and the plan says so.
    sandbox.sh("echo 0 > /proc/sys/net/ipv4/ip_forward");
    let output = run(&sandbox, &["-f", &file, "apply", "--yes"]);
    assert_success(&output, "apply");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("+ sysctl  net.ipv4.ip_forward"), "{stdout}");
    assert!(stdout.contains("net.ipv4.ip_forward = 1 on the host (it is 0; destroy gives 0 back)"), "{stdout}");
    assert_eq!(sandbox.sh("cat /proc/sys/net/ipv4/ip_forward"), "1\n");
    // The world sees the host's address, not the container's.
    let listener = sandbox.in_netns(Some("outside"), || TcpListener::bind(("0.0.0.0", 9999)).expect("bind"));
    listener.set_nonblocking(false).expect("blocking");
    let seen = std::thread::spawn(move || listener.accept().map(|(_, peer)| peer.ip()));
    sandbox
        .in_netns(Some("shop:flaskapp"), || {
            TcpStream::connect_timeout(&SocketAddr::from((OUTSIDE, 9999)), Duration::from_secs(2))
        })
        .expect("flaskapp reaches the world");
    assert_eq!(seen.join().expect("accept").expect("a peer"), std::net::IpAddr::from(HOST));
    // db is only on the internal network: nothing outside, nor the host.
    assert_blocked(&sandbox, Some("shop:db"), (OUTSIDE, 9999));
    let _host_listener = sandbox.in_netns(None, || TcpListener::bind(("0.0.0.0", 9998)).expect("bind"));
    assert_blocked(&sandbox, Some("shop:db"), (Ipv4Addr::new(10, 20, 0, 1), 9998));
    assert_blocked(&sandbox, Some("shop:db"), (HOST, 9998));
    // Forwarding turned off by hand is drift the next plan repairs.
    sandbox.sh("echo 0 > /proc/sys/net/ipv4/ip_forward");
    let output = run(&sandbox, &["-f", &file, "plan"]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("~ sysctl  net.ipv4.ip_forward"), "{output:?}");
    apply(&sandbox, &file);
    assert_eq!(sandbox.sh("cat /proc/sys/net/ipv4/ip_forward"), "1\n");
    // Destroy gives the host back as it found it.
    let output = run(&sandbox, &["-f", &file, "destroy", "--yes"]);
    assert_success(&output, "destroy");
    assert_eq!(sandbox.sh("cat /proc/sys/net/ipv4/ip_forward"), "0\n");
}

/// Two stacks need forwarding: destroying the one that turned it on leaves it on for the
/// other, and destroying the last one turns it off as the host had it.
fn forwarding_stays_on_while_another_stack_needs_it() {
    let sandbox = with_uplink();
    let dir = tempfile::tempdir().expect("temporary directory");
    let shop = example("web-app-db");
    let other = "name: other\nnetworks:\n  out_nw: {}\ncontainers:\n  app:\n    networks: [out_nw]\n";
    let other = write_stack(dir.path(), "other.yaml", other);
    sandbox.sh("echo 0 > /proc/sys/net/ipv4/ip_forward");
    apply(&sandbox, &shop);
    apply(&sandbox, &other);
    let output = run(&sandbox, &["-f", &shop, "destroy", "--yes"]);
    assert_success(&output, "destroy");
    assert!(String::from_utf8_lossy(&output.stdout).contains("another stack needs it"), "{output:?}");
    assert_eq!(sandbox.sh("cat /proc/sys/net/ipv4/ip_forward"), "1\n", "other still needs it");
    let bridge = stackctl::state::bridge_ifname("other", "out_nw");
    assert_eq!(sandbox.sh(&format!("sysctl -n net.ipv4.conf.{bridge}.forwarding")), "1\n", "other's bridge forwards");
    let output = run(&sandbox, &["-f", &other, "destroy", "--yes"]);
    assert_success(&output, "destroy");
    assert_eq!(sandbox.sh("cat /proc/sys/net/ipv4/ip_forward"), "0\n", "as the host had it");
}

/// Scenario 1 with db on web_nw by mistake: the network's isolation still keeps nginx
/// from db, on every port, whatever br_netfilter is.
fn least_privilege_holds_on_a_shared_bridge() {
    let sandbox = with_uplink();
    let dir = tempfile::tempdir().expect("temporary directory");
    let text = std::fs::read_to_string(example("web-app-db")).expect("example");
    let shared = text.replace("  db:\n    networks: [db_nw]", "  db:\n    networks: [db_nw, web_nw]");
    assert_ne!(shared, text, "the example's db joins web_nw");
    let file = write_stack(dir.path(), "shared.yaml", &shared);
    apply(&sandbox, &file);
    let _listeners = [
        sandbox.listen("shop:db", 5432, "db"),
        sandbox.listen("shop:db", 22, "db"),
        sandbox.listen("shop:flaskapp", 5000, "flaskapp"),
        sandbox.listen("shop:flaskapp", 22, "flaskapp"),
    ];
    let of = |container: &str, network: &str| address_of(&sandbox, &file, container, network);
    let (db_web, db_db, flaskapp_web) = (of("db", "web_nw"), of("db", "db_nw"), of("flaskapp", "web_nw"));
    for br_netfilter in [true, false] {
        set_br_netfilter(&sandbox, br_netfilter);
        for port in [5432, 22, 80, 5000] {
            assert_blocked(&sandbox, Some("shop:nginx"), (db_web, port));
            assert_blocked(&sandbox, Some("shop:nginx"), (db_db, port));
        }
        assert_reaches(&sandbox, Some("shop:nginx"), (flaskapp_web, 5000), "flaskapp");
        assert_blocked(&sandbox, Some("shop:nginx"), (flaskapp_web, 22));
        assert_blocked(&sandbox, Some("shop:flaskapp"), (of("nginx", "web_nw"), 80));
        assert_reaches(&sandbox, Some("shop:flaskapp"), (db_db, 5432), "db");
        assert_blocked(&sandbox, Some("shop:db"), (flaskapp_web, 5000));
        // A container cannot borrow another's address to use its flows.
        sandbox.sh(&format!("ip netns exec shop:nginx ip addr add {}/32 dev eth0", of("flaskapp", "db_nw")));
        assert_blocked(&sandbox, Some("shop:nginx"), (db_db, 5432));
        sandbox.sh(&format!("ip netns exec shop:nginx ip addr del {}/32 dev eth0", of("flaskapp", "db_nw")));
    }
}

fn a_flow_added_to_a_running_stack_passes_and_no_connection_drops() {
    let sandbox = with_uplink();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = example("web-app-db");
    apply(&sandbox, &file);
    let of = |container: &str, network: &str| address_of(&sandbox, &file, container, network);
    let (flaskapp, db) = (of("flaskapp", "web_nw"), of("db", "db_nw"));
    let _echo = [sandbox.listen_echo("shop:flaskapp", 5000), sandbox.listen_echo("shop:db", 5432)];
    let _metrics = sandbox.listen("shop:flaskapp", 9100, "metrics");
    let web = sandbox.open("shop:nginx", SocketAddr::from((flaskapp, 5000)));
    let data = sandbox.open("shop:flaskapp", SocketAddr::from((db, 5432)));
    assert_blocked(&sandbox, Some("shop:nginx"), (flaskapp, 9100));

    let text = std::fs::read_to_string(&file).expect("example");
    let more = text.replace("talks_to: [\"app:5000/tcp\"]", "talks_to: [\"app:5000/tcp\", \"flaskapp:9100\"]");
    assert_ne!(more, text, "the example's nginx talks to app:5000");
    let more = write_stack(dir.path(), "more.yaml", &more);
    apply(&sandbox, &more);
    assert_reaches(&sandbox, Some("shop:nginx"), (flaskapp, 9100), "metrics");
    web.assert_alive("after a flow was added");
    data.assert_alive("after a flow was added");

    apply(&sandbox, &file);
    assert_blocked(&sandbox, Some("shop:nginx"), (flaskapp, 9100));
    web.assert_alive("after a flow was removed");
    data.assert_alive("after a flow was removed");
}

fn without_nft_apply_stops_before_any_change() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    let output =
        sandbox.stackctl().env("PATH", "/usr/bin:/bin").args(["-f", &file, "apply", "--yes"]).output().expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("install the nftables package"), "{stderr}");
    assert_eq!(sandbox.sh("ls /run/netns"), "", "nothing was created");
}

fn rules_removed_by_hand_are_drift_that_apply_repairs() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    apply(&sandbox, &file);
    let flaskapp = address_of(&sandbox, &file, "flaskapp", "web_nw");
    let _listener = sandbox.listen("shop:flaskapp", 5000, "flaskapp");
    assert_reaches(&sandbox, Some("shop:nginx"), (flaskapp, 5000), "flaskapp");
    sandbox.sh("nft flush chain inet stackctl-shop nat_output");
    sandbox.sh(&format!("nft delete element inet stackctl-shop flows '{{ 10.89.0.3 . {flaskapp} . tcp . 5000 }}'"));
    assert_blocked(&sandbox, Some("shop:nginx"), (flaskapp, 5000));
    let output = run(&sandbox, &["-f", &file, "plan", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("Changed outside stackctl since the last apply:"), "{text}");
    assert!(text.contains("forward nginx:80/tcp <- 127.0.0.1:8080: deleted"), "{text}");
    assert!(text.contains("flow    nginx -> flaskapp tcp/5000 on web_nw: deleted"), "{text}");
    // The flushed chain also held the output rule of the alias `app`.
    assert!(text.contains("alias   app@web_nw: deleted"), "{text}");
    assert!(text.contains("Plan: 3 to add, 0 to change, 0 to destroy."), "{text}");
    apply(&sandbox, &file);
    assert_converged(&sandbox, &file);
    assert_reaches(&sandbox, Some("shop:nginx"), (flaskapp, 5000), "flaskapp");
}

/// Docker's `ip filter FORWARD` drops what it does not accept; stackctl never touches it,
/// and says that it drops the stack's routed traffic.
fn a_forward_chain_of_another_table_that_drops_is_named() {
    let sandbox = Sandbox::new();
    sandbox.sh(
        "nft 'add table ip filter; add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }'",
    );
    let file = example("web-app-db");
    let output = run(&sandbox, &["-f", &file, "apply", "--yes"]);
    assert_success(&output, "apply");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("warning: chain `ip filter FORWARD` drops forwarded traffic"), "{stderr}");
    let chain = sandbox.sh("nft list chain ip filter FORWARD");
    assert!(chain.contains("policy drop;") && !chain.contains("stb"), "the chain was changed:\n{chain}");
}

/// What the stack's tables hold that no resource of the stack made goes: a rule added by
/// hand at the next apply, and every rule at destroy even when the apply record is lost.
fn rules_no_resource_made_are_removed() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    apply(&sandbox, &file);
    sandbox.sh("nft add rule inet stackctl-shop forward accept");
    let output = run(&sandbox, &["-f", &file, "plan", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("- stray   rules no resource made"), "{text}");
    assert!(text.contains("Plan: 0 to add, 0 to change, 1 to destroy."), "{text}");
    apply(&sandbox, &file);
    assert_converged(&sandbox, &file);
    assert!(!sandbox.sh("nft list chain inet stackctl-shop forward").contains("\taccept\n"));

    // An empty base chain decides with its policy: it is a stray too, as is any named
    // object no resource makes.
    sandbox.sh("nft add chain inet stackctl-shop by_hand '{ type filter hook forward priority 0; policy drop; }' && \
         nft add counter inet stackctl-shop counted_by_hand");
    let (code, text) = stacks::plan(&sandbox, &file);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("- stray   rules no resource made"), "{text}");
    apply(&sandbox, &file);
    assert_converged(&sandbox, &file);
    let table = sandbox.sh("nft list table inet stackctl-shop");
    assert!(!table.contains("by_hand"), "{table}");

    sandbox.sh("rm /run/stackctl/host/shop.record.json");
    let output = run(&sandbox, &["-f", &file, "destroy", "--yes"]);
    assert_success(&output, "destroy");
    assert_eq!(sandbox.sh("nft list tables"), "", "the tables outlived destroy");
}

/// Connects without pause from a namespace to an address until a file appears; prints how
/// many connections were accepted and the errors of those that were not.
const CONNECTOR: &str = r#"
import json, os, socket, sys, time
host, port, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
accepted, errors = 0, []
while not os.path.exists(stop):
    started = time.time()
    try:
        with socket.create_connection((host, port), timeout=10) as connection:
            accepted += 1
    except OSError as error:
        errors.append("%r at %.3f after %.3f s" % (error, started, time.time() - started))
print(json.dumps({"accepted": accepted, "failed": len(errors), "errors": errors[:5]}))
"#;

/// Every apply that changes a rule changes what the stack's tables hold in one
/// transaction; a declared flow's new connections must pass through every one of them,
/// not only its established ones. When each transaction replaced the tables whole, a new
/// connection met rules that looked up a set not filled yet about once in 12 transactions
/// (and was refused: `No route to host`).
fn rule_changes_never_refuse_a_declared_flows_new_connections() {
    const ROUNDS: usize = 40;
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let v1 = example("web-app-db");
    let text = std::fs::read_to_string(&v1).expect("read scenario 1");
    let more =
        write_stack(dir.path(), "more.yaml", &text.replace("talks_to: [db:5432]", "talks_to: [db:5432, db:6432]"));
    apply(&sandbox, &v1);
    let flaskapp = address_of(&sandbox, &v1, "flaskapp", "db_nw");
    let _db = sandbox.listen("shop:db", 5432, "db");
    let stop = dir.path().join("stop");
    let client = sandbox
        .command("ip")
        .args(["netns", "exec", "shop:flaskapp", "python3", "-c", CONNECTOR])
        .arg(address_of(&sandbox, &v1, "db", "db_nw").to_string())
        .arg("5432")
        .arg(&stop)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the connector");
    std::thread::sleep(Duration::from_millis(500));
    for round in 0..ROUNDS {
        let file = if round % 2 == 0 { &more } else { &v1 };
        apply(&sandbox, file);
    }
    std::fs::write(&stop, "").expect("stop the connector");
    let output = client.wait_with_output().expect("the connector ends");
    let result: Value = serde_json::from_slice(&output.stdout).expect("the connector prints JSON");
    eprintln!("flaskapp -> db ({flaskapp}) through {ROUNDS} rule transactions: {result}");
    assert!(result["accepted"].as_u64().unwrap_or(0) > 100, "{result}");
    assert_eq!(result["failed"], 0, "{result}");
}

/// Tables made differently by an earlier stackctl (here: a base chain at another
/// priority) cannot be changed in place: the first apply replaces them whole once, with
/// the rules they hold, and every transaction after that, the phases of a swap included,
/// changes them in place.
fn tables_that_cannot_change_in_place_are_replaced_once() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let both = stacks::both_versions(dir.path());
    apply(&sandbox, &both);
    let _v2 = sandbox.listen("shop:flaskapp-v2", 5000, "v2");
    sandbox.sh("nft flush chain inet stackctl-shop leave && nft delete chain inet stackctl-shop leave && \
         nft add chain inet stackctl-shop leave '{ type filter hook forward priority 5; policy accept; }'");
    let log = dir.path().join("monitor");
    let mut monitor = sandbox
        .command("sh")
        .arg("-c")
        .arg(format!("exec nft monitor tables > {}", log.display()))
        .spawn()
        .expect("monitor the tables");
    std::thread::sleep(Duration::from_millis(300));
    // A swap: its wiring, its repoint and its removal each change the rules.
    let v2 = example("web-app-db-v2");
    let output = apply(&sandbox, &v2);
    assert!(output.contains("drained `flaskapp`"), "{output}");
    std::thread::sleep(Duration::from_millis(300));
    let _ = monitor.kill();
    let _ = monitor.wait();
    let seen = std::fs::read_to_string(&log).expect("read the monitor's log");
    assert_eq!(seen.matches("delete table inet stackctl-shop").count(), 1, "{seen}");
    assert!(sandbox.sh("nft list chain inet stackctl-shop leave").contains("priority filter - 1"));
    assert_converged(&sandbox, &v2);
}

/// A container reaches of the host only its name server (UDP and TCP 53 on its gateway)
/// and the flows to `host` it declares, on whichever of the host's addresses, and only on
/// their ports; published ports, egress and the host's own connections to containers are
/// unaffected.
fn containers_reach_the_host_only_through_declared_flows() {
    let sandbox = with_uplink();
    let dir = tempfile::tempdir().expect("temporary directory");
    let closed = "name: lab
networks:
  front: { subnet: 10.30.0.0/24 }
containers:
  app: { networks: [front], talks_to: ['peer:80'] }
  peer: { networks: [front], ports: ['8088:80'] }
";
    let file = write_stack(dir.path(), "lab.yaml", closed);
    apply(&sandbox, &file);
    let gateway = Ipv4Addr::new(10, 30, 0, 1);
    let (app, peer) = ("lab:app", "lab:peer");
    let _listeners = [
        sandbox.listen_on_host(2222, "host:2222"),
        sandbox.listen_on_host(2223, "host:2223"),
        sandbox.listen(peer, 80, "peer:80"),
        sandbox.listen("outside", 9999, "outside:9999"),
    ];
    let dns_over_tcp = |from: &'static str| {
        sandbox.in_netns(Some(from), move || {
            TcpStream::connect_timeout(&SocketAddr::from((gateway, 53)), Duration::from_secs(1)).map(drop)
        })
    };
    let unaffected = |when: &str| {
        assert_eq!(sandbox.connect_by_name(&file, "app", "peer", 80).as_deref(), Ok("peer:80"), "{when}: DNS");
        dns_over_tcp(app).unwrap_or_else(|error| panic!("{when}: TCP 53 on the gateway: {error}"));
        assert_reaches(&sandbox, Some(app), (HOST, 8088), "peer:80");
        assert_reaches(&sandbox, Some("outside"), (HOST, 8088), "peer:80");
        assert_reaches(&sandbox, Some(app), (OUTSIDE, 9999), "outside:9999");
        assert_reaches(&sandbox, None, (address_of(&sandbox, &file, "peer", "front"), 80), "peer:80");
    };

    unaffected("with no flow to the host");
    for address in [gateway, HOST, SECOND] {
        for container in [app, peer] {
            assert_blocked(&sandbox, Some(container), (address, 2222));
            assert_blocked(&sandbox, Some(container), (address, 2223));
        }
    }

    let open = write_stack(dir.path(), "lab.yaml", &closed.replace("'peer:80'", "'peer:80', 'host:2222'"));
    let text = apply(&sandbox, &open);
    assert!(text.contains("app -> host"), "the plan shows the flow to the host:\n{text}");
    assert_converged(&sandbox, &open);
    unaffected("with a flow to the host");
    for address in [gateway, HOST, SECOND] {
        assert_reaches(&sandbox, Some(app), (address, 2222), "host:2222");
        assert_blocked(&sandbox, Some(app), (address, 2223));
        assert_blocked(&sandbox, Some(peer), (address, 2222));
    }
}

harness::main! {
    Shared: [
        published_ports_in_every_form,
        egress_leaves_through_masquerade_and_internal_networks_stay_inside,
        least_privilege_holds_on_a_shared_bridge,
        a_flow_added_to_a_running_stack_passes_and_no_connection_drops,
        without_nft_apply_stops_before_any_change,
        rules_removed_by_hand_are_drift_that_apply_repairs,
        a_forward_chain_of_another_table_that_drops_is_named,
        rules_no_resource_made_are_removed,
        containers_reach_the_host_only_through_declared_flows,
        forwarding_stays_on_while_another_stack_needs_it,
    ],
    Alone: [
        // Connects without pause through 40 rule transactions, each connection within its timeout.
        rule_changes_never_refuse_a_declared_flows_new_connections,
        // Watches `nft monitor` from 300 ms before a swap to 300 ms after it.
        tables_that_cannot_change_in_place_are_replaced_once,
    ],
}
