//! The host's name server on the live kernel, always in a sandbox (`support::sandbox`):
//! who resolves what in every example, asked over real UDP from inside the containers'
//! namespaces and through the C library; forwarding to the host's name servers; no answer
//! to anyone outside the stack; garbage that does not stop it; reloads under load that lose
//! no query; a dead or hung server found and replaced by the next apply; and the server
//! stopped by the last destroy.

#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/stacks.rs"]
mod stacks;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use sandbox::{Sandbox, assert_success};
use serde_json::Value;
use stackctl::model::{Attachment, Stack};
use stacks::{apply, assert_converged, example, namespace, plan, run, stack_of, stdout, topology, write_stack};

/// How long a reply may take before it counts as none.
const WAIT: Duration = Duration::from_secs(1);

/// A query for `name`, with id `id`.
fn query(id: u16, name: &str, record_type: RecordType) -> Message {
    let mut message = Message::query();
    message.metadata.id = id;
    message.metadata.recursion_desired = true;
    let mut name = Name::from_ascii(name).expect("a name");
    name.set_fqdn(true);
    message.add_query(Query::query(name, record_type));
    message
}

/// Sends `packet` over UDP to port 53 of `server` from the thread's namespace, and waits
/// for one reply.
fn exchange(server: Ipv4Addr, packet: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind(("0.0.0.0", 0)).expect("a UDP socket");
    socket.connect((server, 53)).expect("connect the socket");
    socket.set_read_timeout(Some(WAIT)).expect("read timeout");
    socket.send(packet).ok()?;
    let mut buffer = [0; 4096];
    let length = socket.recv(&mut buffer).ok()?;
    Some(buffer[..length].to_vec())
}

/// Asks `name` of `server` over UDP from the thread's namespace.
fn ask(server: Ipv4Addr, name: &str, record_type: RecordType) -> Option<Message> {
    let asked = query(0x5eed, name, record_type);
    let reply = Message::from_vec(&exchange(server, &asked.to_vec().expect("encodes"))?).expect("a reply parses");
    assert_eq!(reply.metadata.id, 0x5eed, "the reply carries the query's id");
    Some(reply)
}

/// Asks over TCP: the reply, or `None` when the server closes the connection without one.
fn ask_tcp(server: Ipv4Addr, name: &str, record_type: RecordType) -> Option<Message> {
    let bytes = query(0x7cb, name, record_type).to_vec().expect("encodes");
    let mut stream = TcpStream::connect_timeout(&SocketAddr::from((server, 53)), WAIT).ok()?;
    stream.set_read_timeout(Some(WAIT * 3)).expect("read timeout");
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed).ok()?;
    let mut length = [0; 2];
    stream.read_exact(&mut length).ok()?;
    let mut reply = vec![0; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut reply).ok()?;
    Some(Message::from_vec(&reply).expect("a reply parses"))
}

/// Waits up to three seconds for `done`.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// The addresses of an answer, sorted.
fn addresses(reply: &Message) -> Vec<Ipv4Addr> {
    let mut found: Vec<Ipv4Addr> = reply
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(A(address)) => Some(*address),
            _ => None,
        })
        .collect();
    found.sort_unstable();
    found
}

/// Each network's gateway, as `show` reports it.
fn gateways(topology: &Value) -> BTreeMap<String, Ipv4Addr> {
    topology["networks"]
        .as_array()
        .expect("networks")
        .iter()
        .map(|network| {
            let gateway = network["gateway"].as_str().expect("a gateway").parse().expect("IPv4");
            (network["name"].as_str().expect("a name").to_owned(), gateway)
        })
        .collect()
}

fn networks_of<'a>(stack: &'a Stack, container: &str) -> BTreeSet<&'a str> {
    stack.containers[container].memberships().iter().map(|membership| membership.network.as_str()).collect()
}

/// What a question should get.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    /// These addresses, no more, no fewer.
    Addresses(Vec<Ipv4Addr>),
    /// Some address: what an alias resolves to is for the alias's design to say.
    Resolves,
    /// This name, for a reverse name.
    Name(String),
    /// NXDOMAIN.
    Absent,
}

fn meets(reply: &Message, expected: &Expected) -> bool {
    let found = reply.metadata.response_code == ResponseCode::NoError;
    match expected {
        Expected::Addresses(expected) => found && &addresses(reply) == expected,
        Expected::Resolves => found && !addresses(reply).is_empty(),
        Expected::Name(name) => {
            found && reply.answers.len() == 1 && reply.answers[0].data.to_string() == format!("{name}.")
        }
        Expected::Absent => reply.metadata.response_code == ResponseCode::NXDomain && reply.answers.is_empty(),
    }
}

/// Every container of an example, at the gateway of each of its networks, asks every name
/// of the stack: a container's name resolves to its addresses on the networks they share
/// and an alias to something, when they share a network; otherwise neither exists. An
/// address on one of the asker's networks gives its container's name back; any other
/// address of the stack does not exist. And the C library, through the container's
/// `resolv.conf`, agrees.
fn resolution_matrix(name: &str) {
    let Some(sandbox) = Sandbox::new() else { return };
    // Names outside the stack go to a name server that is not there, inside the sandbox.
    sandbox.sh("rm -f /etc/resolv.conf; echo 'nameserver 127.0.0.1' > /etc/resolv.conf");
    let file = example(name);
    apply(&sandbox, &file);
    let stack = stack_of(&file);
    let topology = topology(&sandbox, &file);
    let gateways = gateways(&topology);
    let members = stacks::addresses(&topology);
    let mut aliases: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for membership in stack.containers.values().flat_map(|container| container.memberships()) {
        for alias in &membership.aliases {
            aliases.entry(alias).or_default().insert(&membership.network);
        }
    }
    let namespaced: Vec<&str> = stack
        .containers
        .values()
        .filter(|container| container.attachment != Attachment::Host)
        .map(|container| container.name.as_str())
        .collect();
    let mut wrong = Vec::new();
    for source in &namespaced {
        let mine = networks_of(&stack, source);
        let mut questions: Vec<(String, RecordType, Expected)> = Vec::new();
        for target in &namespaced {
            let mut shared: Vec<Ipv4Addr> = members
                .iter()
                .filter(|(container, network, _)| container == target && mine.contains(network.as_str()))
                .map(|(_, _, address)| *address)
                .collect();
            shared.sort_unstable();
            let expected = if shared.is_empty() { Expected::Absent } else { Expected::Addresses(shared) };
            questions.push((target.to_string(), RecordType::A, expected));
        }
        for (container, network, address) in &members {
            let [a, b, c, d] = address.octets();
            let expected =
                if mine.contains(network.as_str()) { Expected::Name(container.clone()) } else { Expected::Absent };
            questions.push((format!("{d}.{c}.{b}.{a}.in-addr.arpa"), RecordType::PTR, expected));
        }
        for (alias, networks) in &aliases {
            let expected = if networks.is_disjoint(&mine) { Expected::Absent } else { Expected::Resolves };
            questions.push((alias.to_string(), RecordType::A, expected));
        }
        for network in &mine {
            let gateway = gateways[*network];
            let asked: Vec<(String, RecordType)> =
                questions.iter().map(|(name, record_type, _)| (name.clone(), *record_type)).collect();
            let replies = sandbox.in_netns(Some(&namespace(&stack, source)), move || {
                asked.iter().map(|(name, record_type)| ask(gateway, name, *record_type)).collect::<Vec<_>>()
            });
            for ((name, record_type, expected), reply) in questions.iter().zip(replies) {
                match reply {
                    None => wrong.push(format!("{source} at {gateway}: no reply to {name} {record_type}")),
                    Some(reply) if !meets(&reply, expected) => wrong.push(format!(
                        "{source} at {gateway}: {name} {record_type} gave {} {:?}, expected {expected:?}",
                        reply.metadata.response_code,
                        reply.answers.iter().map(|record| record.data.to_string()).collect::<Vec<_>>()
                    )),
                    Some(_) => {}
                }
            }
        }
        // The C library, through the container's resolv.conf: a container it shares a
        // network with resolves, one it does not share any with fails.
        let other = |seen: bool| {
            namespaced
                .iter()
                .copied()
                .find(|other| other != source && networks_of(&stack, other).is_disjoint(&mine) != seen)
        };
        for (target, resolves) in [(other(true), true), (other(false), false)] {
            let Some(target) = target else { continue };
            let output = run(&sandbox, &["-f", &file, "exec", source, "--", "getent", "ahostsv4", target]);
            if output.status.success() != resolves {
                wrong.push(format!("{source}: getent ahostsv4 {target}: {}\n{}", output.status, stdout(&output)));
            }
        }
    }
    assert!(wrong.is_empty(), "{name}:\n{}", wrong.join("\n"));
}

#[test]
fn names_in_web_app_db() {
    resolution_matrix("web-app-db");
}

#[test]
fn names_in_web_app_db_v2() {
    resolution_matrix("web-app-db-v2");
}

#[test]
fn names_in_reverse_proxy() {
    resolution_matrix("reverse-proxy");
}

#[test]
fn names_in_pets_tenants() {
    resolution_matrix("pets-tenants");
}

#[test]
fn names_in_port_publishing() {
    resolution_matrix("port-publishing");
}

#[test]
fn names_in_hot_connect() {
    resolution_matrix("hot-connect");
}

/// A name server on 127.0.0.1:53 of the sandbox's host, over UDP and TCP, that answers
/// every A question with 192.0.2.7 and counts what it is asked.
struct Upstream {
    asked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

fn answer_of(packet: &[u8]) -> Option<Vec<u8>> {
    let asked = Message::from_vec(packet).ok()?;
    let mut reply = Message::response(asked.metadata.id, asked.metadata.op_code);
    reply.metadata.recursion_desired = asked.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_queries(asked.queries.clone());
    let name = asked.queries.first()?.name().clone();
    reply.add_answer(Record::from_rdata(name, 60, RData::A(A(UPSTREAM_ANSWER))));
    reply.to_vec().ok()
}

impl Upstream {
    fn start(sandbox: &Sandbox) -> Upstream {
        let asked = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (udp, tcp) = sandbox.in_netns(None, || {
            let udp = UdpSocket::bind(("127.0.0.1", 53)).expect("bind the fake upstream");
            let tcp = std::net::TcpListener::bind(("127.0.0.1", 53)).expect("bind the fake upstream");
            (udp, tcp)
        });
        udp.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        tcp.set_nonblocking(true).expect("non-blocking");
        let udp_thread = {
            let (asked, stop) = (Arc::clone(&asked), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut buffer = [0; 4096];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((length, peer)) = udp.recv_from(&mut buffer) {
                        asked.fetch_add(1, Ordering::SeqCst);
                        if let Some(reply) = answer_of(&buffer[..length]) {
                            let _ = udp.send_to(&reply, peer);
                        }
                    }
                }
            })
        };
        let tcp_thread = {
            let (asked, stop) = (Arc::clone(&asked), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut stream, _)) = tcp.accept() else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    let _ = stream.set_nonblocking(false);
                    let mut length = [0; 2];
                    if stream.read_exact(&mut length).is_err() {
                        continue;
                    }
                    let mut packet = vec![0; usize::from(u16::from_be_bytes(length))];
                    if stream.read_exact(&mut packet).is_err() {
                        continue;
                    }
                    asked.fetch_add(1, Ordering::SeqCst);
                    if let Some(reply) = answer_of(&packet) {
                        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&reply);
                        let _ = stream.write_all(&framed);
                    }
                }
            })
        };
        Upstream { asked, stop, threads: vec![udp_thread, tcp_thread] }
    }

    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[test]
fn names_outside_the_stack_are_forwarded_only_from_networks_that_reach_out() {
    let Some(sandbox) = Sandbox::new() else { return };
    // The server reads the host's resolv.conf, here the sandbox's own copy.
    sandbox.sh("rm -f /etc/resolv.conf; echo 'nameserver 127.0.0.1' > /etc/resolv.conf");
    let upstream = Upstream::start(&sandbox);
    let file = example("web-app-db");
    apply(&sandbox, &file);
    let (web, db) = (Ipv4Addr::new(10, 89, 0, 1), Ipv4Addr::new(10, 20, 0, 1));

    let reply = sandbox.in_netns(Some("shop:nginx"), move || ask(web, "example.test", RecordType::A));
    let reply = reply.expect("nginx gets a reply");
    assert_eq!(addresses(&reply), [UPSTREAM_ANSWER], "{reply:?}");
    assert_eq!(upstream.asked(), 1);
    let reply = sandbox.in_netns(Some("shop:nginx"), move || ask_tcp(web, "tcp.example.test", RecordType::A));
    assert_eq!(addresses(&reply.expect("a reply over TCP")), [UPSTREAM_ANSWER]);
    assert_eq!(upstream.asked(), 2, "the TCP query was forwarded");

    // A name of the stack that nginx may not see is no one else's business either.
    let reply = sandbox.in_netns(Some("shop:nginx"), move || ask(web, "db", RecordType::A)).expect("a reply");
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    // db is only on an internal network: nothing outside the stack answers it.
    let reply = sandbox.in_netns(Some("shop:db"), move || ask(db, "example.test", RecordType::A)).expect("a reply");
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    assert_eq!(upstream.asked(), 2, "the upstream was asked what it should not have been");
    // The C library in nginx, through its resolv.conf, reaches the world's names too.
    let output = run(&sandbox, &["-f", &file, "exec", "nginx", "--", "getent", "ahostsv4", "world.example.test"]);
    assert_success(&output, "getent through the forwarder");
    assert!(stdout(&output).starts_with("192.0.2.7"), "{}", stdout(&output));

    // With the upstream gone, the client hears of the failure instead of waiting.
    drop(upstream);
    let reply = sandbox.in_netns(Some("shop:nginx"), move || {
        let bytes = query(9, "gone.example.test", RecordType::A).to_vec().expect("encodes");
        let socket = UdpSocket::bind(("0.0.0.0", 0)).expect("a socket");
        socket.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        socket.send_to(&bytes, (web, 53)).expect("send");
        let mut buffer = [0; 4096];
        let length = socket.recv(&mut buffer).expect("a reply within 5 s");
        Message::from_vec(&buffer[..length]).expect("parses")
    });
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
}

#[test]
fn it_answers_no_one_outside_the_stack() {
    let Some(sandbox) = Sandbox::new() else { return };
    let file = example("web-app-db");
    apply(&sandbox, &file);
    let (web, db) = (Ipv4Addr::new(10, 89, 0, 1), Ipv4Addr::new(10, 20, 0, 1));
    // A namespace that is not the stack's, routed to the host.
    sandbox.sh("ip netns add stranger
         ip link add st0 type veth peer name st1 netns stranger
         ip addr add 192.0.2.1/24 dev st0 && ip link set st0 up
         ip -n stranger addr add 192.0.2.2/24 dev st1 && ip -n stranger link set st1 up
         ip -n stranger route add default via 192.0.2.1");
    let asked = query(1, "flaskapp", RecordType::A).to_vec().expect("encodes");
    let from_host = {
        let asked = asked.clone();
        sandbox.in_netns(None, move || exchange(web, &asked))
    };
    assert_eq!(from_host, None, "the host itself got a reply");
    let from_stranger = {
        let asked = asked.clone();
        sandbox.in_netns(Some("stranger"), move || (exchange(web, &asked), ask_tcp(web, "flaskapp", RecordType::A)))
    };
    assert_eq!(from_stranger, (None, None), "a namespace outside the stack got a reply");
    // A container of the stack at the gateway of a network it is not on.
    let elsewhere = sandbox.in_netns(Some("shop:nginx"), move || exchange(db, &asked));
    assert_eq!(elsewhere, None, "nginx got a reply on db_nw's gateway");
    let reply = sandbox.in_netns(Some("shop:nginx"), move || ask(web, "flaskapp", RecordType::A));
    assert_eq!(addresses(&reply.expect("the stack's own still get replies")), [Ipv4Addr::new(10, 89, 0, 2)]);
}

#[test]
fn garbage_does_not_stop_it() {
    let Some(sandbox) = Sandbox::new() else { return };
    apply(&sandbox, &example("web-app-db"));
    let pid = sandbox.name_server("host").expect("a name server runs");
    let web = Ipv4Addr::new(10, 89, 0, 1);
    let replies = sandbox.in_netns(Some("shop:nginx"), move || {
        let socket = UdpSocket::bind(("0.0.0.0", 0)).expect("a socket");
        // A fixed sequence of pseudo-random bytes: the same garbage on every run.
        let mut state: u32 = 0x2545_f491;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for _ in 0..500 {
            let length = next() as usize % 600;
            let packet: Vec<u8> = (0..length).map(|_| next() as u8).collect();
            let _ = socket.send_to(&packet, (web, 53));
        }
        let valid = query(2, "flaskapp", RecordType::A).to_vec().expect("encodes");
        for cut in 0..valid.len() {
            let _ = socket.send_to(&valid[..cut], (web, 53));
        }
        let mut reply = query(3, "flaskapp", RecordType::A);
        reply.metadata.message_type = MessageType::Response;
        let _ = socket.send_to(&reply.to_vec().expect("encodes"), (web, 53));
        let mut edns = query(4, "flaskapp", RecordType::A);
        edns.set_edns(Edns::new());
        let _ = socket.send_to(&edns.to_vec().expect("encodes"), (web, 53));
        // Over TCP: a length with nothing after it, and a length with too little.
        for garbage in [&[0xff, 0xff][..], &[0x00, 0x40, 1, 2, 3][..], &[0x00][..]] {
            if let Ok(mut stream) = TcpStream::connect_timeout(&SocketAddr::from((web, 53)), WAIT) {
                let _ = stream.write_all(garbage);
            }
        }
        // Under load the garbage can fill the server's receive buffer, and the kernel drops
        // what does not fit, this query among it: asked again, as a resolver would.
        let udp = (0..5).find_map(|_| ask(web, "flaskapp", RecordType::A));
        (udp, ask_tcp(web, "flaskapp", RecordType::A))
    });
    let (udp, tcp) = replies;
    assert_eq!(addresses(&udp.expect("a reply over UDP after the garbage")), [Ipv4Addr::new(10, 89, 0, 2)]);
    assert_eq!(addresses(&tcp.expect("a reply over TCP after the garbage")), [Ipv4Addr::new(10, 89, 0, 2)]);
    assert_eq!(sandbox.name_server("host"), Some(pid), "the server was replaced");
}

/// A stack with a client and a server that stay, and `extra` containers that come and go;
/// the odd ones bring a network of their own into use, whose gateway the name server then
/// listens on, and stops listening on when they go.
fn busy_stack(extra: &[usize]) -> String {
    let mut text = String::from("name: busy\nnetworks:\n  n: {}\n  other: { internal: true }\n  third: {}\n");
    text.push_str("containers:\n  client: { networks: [n] }\n  steady: { networks: [n, other] }\n");
    for index in extra {
        let networks = if index % 2 == 0 { "[n]" } else { "[n, third]" };
        text.push_str(&format!("  extra{index}: {{ networks: {networks} }}\n"));
    }
    text
}

#[test]
fn reloads_under_load_lose_no_query() {
    let Some(sandbox) = Sandbox::new() else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let variants: Vec<String> = [&[][..], &[1, 2, 3], &[2, 4], &[1, 3, 5, 6, 7], &[]]
        .iter()
        .enumerate()
        .map(|(index, extra)| write_stack(dir.path(), &format!("busy{index}.yaml"), &busy_stack(extra)))
        .collect();
    apply(&sandbox, &variants[0]);
    let gateway = gateways(&topology(&sandbox, &variants[0]))["n"];
    let steady = stacks::address_of(&sandbox, &variants[0], "steady", "n");
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = Arc::clone(&stop);
        let namespace = sandbox.netns_path("busy:client");
        std::thread::spawn(move || {
            let file = std::fs::File::open(namespace).expect("open the client's namespace");
            nix::sched::setns(std::os::fd::AsFd::as_fd(&file), nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("join the client's namespace");
            let socket = UdpSocket::bind(("0.0.0.0", 0)).expect("a socket");
            socket.connect((gateway, 53)).expect("connect");
            socket.set_read_timeout(Some(WAIT)).expect("timeout");
            let (mut answered, mut lost, mut wrong) = (0usize, Vec::new(), 0usize);
            let mut latencies = Vec::new();
            let mut buffer = [0; 4096];
            let mut id: u16 = 0;
            while !stop.load(Ordering::Relaxed) {
                id = id.wrapping_add(1);
                let bytes = query(id, "steady", RecordType::A).to_vec().expect("encodes");
                let sent = Instant::now();
                socket.send(&bytes).expect("send");
                // A late reply to an earlier query is not this one's.
                let reply = loop {
                    match socket.recv(&mut buffer) {
                        Ok(length) => {
                            let reply = Message::from_vec(&buffer[..length]).expect("parses");
                            if reply.metadata.id == id {
                                break Some(reply);
                            }
                        }
                        Err(_) => break None,
                    }
                };
                match reply {
                    Some(reply) if addresses(&reply) == [steady] => {
                        answered += 1;
                        latencies.push(sent.elapsed());
                    }
                    Some(_) => wrong += 1,
                    None => lost.push(id),
                }
            }
            (answered, lost, wrong, latencies)
        })
    };
    for variant in variants.iter().skip(1).chain(variants.iter().rev().skip(1)) {
        apply(&sandbox, variant);
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (answered, lost, wrong, mut latencies) = client.join().expect("the client thread");
    latencies.sort_unstable();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!("{answered} queries answered during 8 applies; median {:?}, p99 {p99:?}", latencies[latencies.len() / 2]);
    assert!(lost.is_empty() && wrong == 0, "lost {lost:?}, {wrong} wrong of {answered}");
    assert!(answered > 100, "only {answered} queries were made");
    assert_converged(&sandbox, &variants[0]);
}

#[test]
fn a_dead_or_hung_server_is_found_and_replaced_by_the_next_apply() {
    let Some(sandbox) = Sandbox::new() else { return };
    let file = example("web-app-db");
    apply(&sandbox, &file);
    let web = Ipv4Addr::new(10, 89, 0, 1);
    let resolves = || {
        let reply = sandbox.in_netns(Some("shop:nginx"), move || ask(web, "app", RecordType::A));
        // `app` is an alias: it resolves to its virtual address.
        reply.is_some_and(|reply| addresses(&reply) == [Ipv4Addr::new(10, 89, 0, 254)])
    };
    assert!(resolves());
    // The plan makes the three containers' names again, and nothing else.
    let only_names = |text: &str| {
        text.lines().filter(|line| line.starts_with("  + hosts")).count() == 3
            && text.contains("Plan: 3 to add, 0 to change, 0 to destroy.")
    };

    for (how, signal) in [("killed", "KILL"), ("hung", "STOP")] {
        let pid = sandbox.name_server("host").expect("a name server runs");
        sandbox.sh(&format!("kill -{signal} {pid}"));
        let (code, text) = plan(&sandbox, &file);
        assert_eq!(code, 2, "a {how} server went unnoticed:\n{text}");
        assert!(only_names(&text), "a {how} server: the plan makes more than the names:\n{text}");
        assert!(!resolves(), "a {how} server answers");
        apply(&sandbox, &file);
        let new = sandbox.name_server("host").expect("a new name server runs");
        assert_ne!(new, pid, "the {how} server was kept");
        assert!(eventually(|| !sandbox.processes().contains(&pid)), "the {how} server still runs");
        assert!(resolves(), "names do not resolve after the {how} server was replaced");
        assert_converged(&sandbox, &file);
    }
}

#[test]
fn the_last_destroy_stops_the_server() {
    let Some(sandbox) = Sandbox::new() else { return };
    let (shop, sinatra) = (example("web-app-db"), example("reverse-proxy"));
    apply(&sandbox, &shop);
    apply(&sandbox, &sinatra);
    let pid = sandbox.name_server("host").expect("a name server runs");
    let zones = || sandbox.sh("ls /run/stackctl/host/names | grep zone.json || true");
    assert_eq!(zones(), "shop.zone.json\nsinatra.zone.json\n");

    let output = run(&sandbox, &["-f", &shop, "destroy", "--yes"]);
    assert_success(&output, "destroy shop");
    assert_eq!(sandbox.name_server("host"), Some(pid), "one stack left, the same server serves it");
    assert_eq!(zones(), "sinatra.zone.json\n");
    let gateway = Ipv4Addr::new(10, 30, 0, 1);
    let edge = stacks::address_of(&sandbox, &sinatra, "edge", "sinatra-net");
    let reply = sandbox.in_netns(Some("sinatra:nginx"), move || ask(gateway, "edge", RecordType::A));
    assert_eq!(addresses(&reply.expect("sinatra still resolves")), [edge]);

    let output = run(&sandbox, &["-f", &sinatra, "destroy", "--yes"]);
    assert_success(&output, "destroy sinatra");
    assert_eq!(sandbox.name_server("host"), None, "no stack left, the server still runs");
    assert!(eventually(|| !sandbox.processes().contains(&pid)), "the server still runs");
    assert_eq!(zones(), "");
}

#[test]
fn a_process_that_is_not_the_name_server_is_never_killed() {
    let Some(sandbox) = Sandbox::new() else { return };
    // Another program holds the name server's pid file locked, and its pid is in it.
    let pid_file = "/run/stackctl/host/names/resolver.pid";
    sandbox.sh("mkdir -p /run/stackctl/host/names");
    let mut holder = sandbox.command("flock").args([pid_file, "sleep", "30"]).spawn().expect("hold the pid file");
    assert!(
        eventually(|| sandbox.sh(&format!("flock --nonblock {pid_file} true || echo held")).contains("held")),
        "flock did not take the pid file"
    );
    sandbox.sh(&format!("echo {} > {pid_file}", holder.id()));
    let output = run(&sandbox, &["-f", &example("web-app-db"), "apply", "--yes"]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let alive = holder.try_wait().expect("the holder's status").is_none();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("which is not stackctl's name server: it is left alone"), "{stderr}");
    assert!(alive, "the process that held the pid file was killed");
}
