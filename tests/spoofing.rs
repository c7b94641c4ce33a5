//! A hostile container against its neighbours, with raw frames and packets, always in a
//! sandbox (`support::sandbox`): it cannot take another container's MAC address to read
//! its traffic, and it cannot send ICMP errors along connections it is no part of.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/stacks.rs"]
mod stacks;

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Stdio;
use std::time::Duration;

use sandbox::Sandbox;
use stackctl::state::{container_mac, mac_text};
use stacks::{address_of, apply, write_stack};

/// `app` talks to `db` (TCP 5432 and UDP 5433); `mallory` shares their network and has no flow at all, and
/// `outsider` is on another network of the stack.
fn stack(isolation: &str) -> String {
    format!(
        "name: shop
networks:
  back: {{ isolation: {isolation} }}
  front: {{}}
containers:
  app:
    networks: [back]
    talks_to: [db:5432, db:5433/udp]
  db:
    networks: [back]
  mallory:
    networks: [back]
  outsider:
    networks: [front]
"
    )
}

/// Sends, for `seconds`, gratuitous ARP announcements of the sender's own IPv4 address with
/// the victim's MAC address as their source (so a learning bridge moves the victim's MAC to
/// the sender's port), and counts the frames received that hold `secret`.
const POISON: &str = r#"
import socket, struct, sys, time
victim = bytes.fromhex(sys.argv[1].replace(":", ""))
own = socket.inet_aton(sys.argv[2])
seconds = float(sys.argv[3])
arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + victim + own + b"\0" * 6 + own
frame = b"\xff" * 6 + victim + b"\x08\x06" + arp
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
raw.bind(("eth0", 0))
raw.settimeout(0.002)
print("ready", flush=True)
end, seen = time.time() + seconds, 0
while time.time() < end:
    raw.send(frame)
    try:
        while True:
            if b"secret" in raw.recv(65535):
                seen += 1
    except socket.timeout:
        pass
print(seen, flush=True)
"#;

fn mac_of(address: Ipv4Addr) -> String {
    mac_text(container_mac(address))
}

/// A script that counts something in a namespace: it says `ready` once it counts, and the
/// count when it ends.
struct Counting {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Counting {
    fn start(sandbox: &Sandbox, netns: &str, script: &str, arguments: &[String]) -> Counting {
        let mut child = sandbox
            .command("ip")
            .args(["netns", "exec", netns, "python3", "-c", script])
            .args(arguments)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the script");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("the script starts");
        assert_eq!(line.trim(), "ready");
        Counting { child, out }
    }

    /// The count, once the script ends.
    fn count(mut self) -> String {
        let mut count = String::new();
        self.out.read_to_string(&mut count).expect("the script's count");
        count.trim().to_owned()
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `count` datagrams holding `secret` from `app` to UDP port 5433 of `db`, 20 ms
/// apart, while `db` counts those it receives. Only datagrams, and no reply: `db` sends
/// nothing that would teach a learning bridge where its MAC address is.
fn datagrams_arriving(sandbox: &Sandbox, db: Ipv4Addr, count: usize) -> usize {
    let receiver = sandbox.in_netns(Some("shop:db"), || UdpSocket::bind(("0.0.0.0", 5433)).expect("bind UDP"));
    receiver.set_read_timeout(Some(Duration::from_secs(1))).expect("timeout");
    let counter = std::thread::spawn(move || {
        let mut buffer = [0u8; 64];
        let mut arrived = 0;
        while let Ok(length) = receiver.recv(&mut buffer) {
            arrived += usize::from(buffer[..length].starts_with(b"secret"));
        }
        arrived
    });
    sandbox.in_netns(Some("shop:app"), move || {
        let sender = UdpSocket::bind(("0.0.0.0", 0)).expect("bind UDP");
        for index in 0..count {
            sender.send_to(format!("secret {index}").as_bytes(), (db, 5433)).expect("send");
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    counter.join().expect("counter")
}

/// With the victim's MAC address as the source of its frames, a container without any
/// flow neither receives the traffic meant for the victim nor keeps it from arriving: its
/// port accepts only frames from its own MAC address, and the bridge learns nothing from
/// it (the containers' MAC addresses are static entries on their ports).
fn a_container_cannot_take_a_neighbours_mac_address() {
    for isolation in ["open", "flows"] {
        let sandbox = Sandbox::new();
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = write_stack(dir.path(), "shop.yaml", &stack(isolation));
        apply(&sandbox, &file);
        let of = |container: &str| address_of(&sandbox, &file, container, "back");
        let (db, mallory) = (of("db"), of("mallory"));
        let poison =
            Counting::start(&sandbox, "shop:mallory", POISON, &[mac_of(db), mallory.to_string(), "3".to_owned()]);
        std::thread::sleep(Duration::from_millis(300));
        let arrived = datagrams_arriving(&sandbox, db, 20);
        let seen = poison.count();
        assert_eq!(seen, "0", "isolation {isolation}: mallory received app -> db datagrams");
        assert_eq!(arrived, 20, "isolation {isolation}: app -> db datagrams lost while mallory poisoned");
        let links = sandbox.sh("bridge -d link show");
        let ports = links.lines().filter(|line| line.contains("master st")).count();
        assert_eq!(ports, 4, "{links}");
        assert_eq!(
            links.matches("learning off").count(),
            4,
            "{isolation}: every container port learns nothing:\n{links}"
        );
        let entries = sandbox.sh("bridge fdb show");
        for container in ["app", "db", "mallory"] {
            let mac = mac_of(of(container));
            assert!(
                entries
                    .lines()
                    .any(|line| line.starts_with(&mac) && line.contains("master") && line.contains("static")),
                "{container}'s MAC {mac} is a static entry on its port:\n{entries}"
            );
        }
        // A port unlocked by hand is drift, which the next apply locks again.
        let db_entry = entries.lines().find(|line| line.starts_with(&mac_of(db))).expect("db's entry");
        let port = db_entry.split_whitespace().nth(2).expect("the entry's port");
        sandbox.sh(&format!(
            "ip link set {port} type bridge_slave learning on && bridge fdb del {} dev {port} master",
            mac_of(db)
        ));
        let (code, text) = stacks::plan(&sandbox, &file);
        assert_eq!(code, 2, "an unlocked port is a change:\n{text}");
        assert!(text.contains("~ link") && text.contains("db"), "{text}");
        apply(&sandbox, &file);
        stacks::assert_converged(&sandbox, &file);
        assert!(
            sandbox.sh("bridge fdb show").lines().any(|line| line.starts_with(&mac_of(db)) && line.contains("static"))
        );
    }
}

/// Sends `count` ICMP errors (destination unreachable) to `target`, each quoting a TCP
/// packet from `inner_source:inner_port` to `inner_destination:inner_destination_port`.
const ICMP_ERRORS: &str = r#"
import socket, struct, sys, time
target, inner_source, inner_destination = sys.argv[1:4]
source_port, destination_port, count = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xffff)
    return ~(total + (total >> 16)) & 0xffff
inner = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 7, 0, 64, 6, 0,
                    socket.inet_aton(inner_source), socket.inet_aton(inner_destination))
inner = inner[:10] + struct.pack("!H", checksum(inner)) + inner[12:]
inner += struct.pack("!HHI", source_port, destination_port, 12345)
icmp = struct.pack("!BBHI", 3, 1, 0, 0) + inner
icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
for _ in range(count):
    raw.sendto(icmp, (target, 0))
    time.sleep(0.05)
"#;

/// Counts, for `seconds`, the ICMP destination-unreachable messages that arrive from
/// `source`.
const ICMP_COUNT: &str = r#"
import socket, sys, time
source, seconds = sys.argv[1], float(sys.argv[2])
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
raw.settimeout(0.1)
print("ready", flush=True)
end, seen = time.time() + seconds, 0
while time.time() < end:
    try:
        packet, (sender, _) = raw.recvfrom(65535)
    except socket.timeout:
        continue
    if sender == source and packet[(packet[0] & 0x0f) * 4] == 3:
        seen += 1
print(seen, flush=True)
"#;

/// How many ICMP errors about `connection` (client, server) that `from` sends to `to`
/// arrive there.
fn icmp_errors_arriving(
    sandbox: &Sandbox,
    (from, from_address): (&str, Ipv4Addr),
    (to, to_address): (&str, Ipv4Addr),
    (client, server): (SocketAddr, SocketAddr),
) -> String {
    let counter = Counting::start(sandbox, to, ICMP_COUNT, &[from_address.to_string(), "2".to_owned()]);
    // The packet the error quotes went to its sender from the connection's other end:
    // an error sent to the server quotes a packet from the server to the client.
    let (quoted_source, quoted_destination) = match to_address == server.ip() {
        true => (server, client),
        false => (client, server),
    };
    let sent = sandbox
        .command("ip")
        .args(["netns", "exec", from, "python3", "-c", ICMP_ERRORS, &to_address.to_string()])
        .args([quoted_source.ip().to_string(), quoted_destination.ip().to_string()])
        .args([quoted_source.port().to_string(), quoted_destination.port().to_string(), "10".to_owned()])
        .output()
        .expect("send ICMP errors");
    sandbox::assert_success(&sent, &format!("ICMP errors from {from}"));
    counter.count()
}

/// ICMP errors that quote a connection are accepted as related to it only from one of
/// its ends: a neighbour without a flow, or a container on another network, cannot send
/// them to the server, while the server's own errors still reach the client.
fn icmp_errors_pass_only_from_a_connections_ends() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = write_stack(dir.path(), "shop.yaml", &stack("flows"));
    apply(&sandbox, &file);
    let _db = sandbox.listen_echo("shop:db", 5432);
    let of = |container: &str, network: &str| address_of(&sandbox, &file, container, network);
    let db = of("db", "back");
    let server = SocketAddr::from((db, 5432));
    let connection = sandbox.open("shop:app", server);
    let client = connection.local_addr();
    let app = of("app", "back");
    for (intruder, address) in [("shop:mallory", of("mallory", "back")), ("shop:outsider", of("outsider", "front"))] {
        let arrived = icmp_errors_arriving(&sandbox, (intruder, address), ("shop:db", db), (client, server));
        assert_eq!(arrived, "0", "{intruder}'s ICMP errors about app -> db reached db");
    }
    let arrived = icmp_errors_arriving(&sandbox, ("shop:db", db), ("shop:app", app), (client, server));
    assert_eq!(arrived, "10", "db's own ICMP errors about its connection reach app");
    connection.assert_alive("after the ICMP errors");
}

harness::main! {
    Alone: [
        // Count frames and ICMP errors in scripts that listen for a few seconds.
        a_container_cannot_take_a_neighbours_mac_address,
        icmp_errors_pass_only_from_a_connections_ends,
    ],
}
