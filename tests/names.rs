//! The host's name server on the live kernel, always in a sandbox (`support::sandbox`):
//! who resolves what in every example, asked over real UDP from inside the containers'
//! namespaces and through the C library; forwarding to the host's name servers; no answer
//! to anyone outside the stack; garbage that does not stop it; reloads under load that lose
//! no query; a dead or hung server found and replaced by the next apply; the server
//! stopped by the last destroy; a container that holds idle connections or floods forwards
//! starving no one, and connections that are silent, slow or do not read closed; the
//! privileges the server keeps and who may use its control socket; and a server whose run
//! directory was removed found, replaced and stopped.

#[path = "support/harness.rs"]
mod harness;
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
    let sandbox = Sandbox::new();
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

fn names_in_web_app_db() {
    resolution_matrix("web-app-db");
}

fn names_in_web_app_db_v2() {
    resolution_matrix("web-app-db-v2");
}

fn names_in_reverse_proxy() {
    resolution_matrix("reverse-proxy");
}

fn names_in_pets_tenants() {
    resolution_matrix("pets-tenants");
}

fn names_in_port_publishing() {
    resolution_matrix("port-publishing");
}

fn names_in_hot_connect() {
    resolution_matrix("hot-connect");
}

/// A name server on 127.0.0.1:53 of the sandbox's host, over UDP and TCP, that answers
/// every A question with 192.0.2.7, but for names that start with `unanswered`, which it
/// never answers, and counts what it is asked.
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
    if name.to_ascii().starts_with("unanswered") {
        return None;
    }
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

fn names_outside_the_stack_are_forwarded_only_from_networks_that_reach_out() {
    let sandbox = Sandbox::new();
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

fn it_answers_no_one_outside_the_stack() {
    let sandbox = Sandbox::new();
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

fn garbage_does_not_stop_it() {
    let sandbox = Sandbox::new();
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

fn reloads_under_load_lose_no_query() {
    let sandbox = Sandbox::new();
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

fn a_dead_or_hung_server_is_found_and_replaced_by_the_next_apply() {
    let sandbox = Sandbox::new();
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

fn the_last_destroy_stops_the_server() {
    let sandbox = Sandbox::new();
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

fn a_process_that_is_not_the_name_server_is_never_killed() {
    let sandbox = Sandbox::new();
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

/// Joins the calling thread to a namespace of the sandbox, for a thread that lives on.
fn join(sandbox: &Sandbox, netns: &str) -> impl FnOnce() + Send + 'static {
    let file = std::fs::File::open(sandbox.netns_path(netns)).expect("open a namespace");
    move || {
        nix::sched::setns(std::os::fd::AsFd::as_fd(&file), nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("join the namespace")
    }
}

/// A hostile container: from `netns`, it opens `held` TCP connections to port 53 of
/// `server` and sends nothing on them; then, until stopped, it opens one more every 10 ms
/// and lets its oldest go, so that it always holds `held`.
struct Hog {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(usize, Vec<TcpStream>)>>,
}

impl Hog {
    fn start(sandbox: &Sandbox, netns: &str, server: Ipv4Addr, held: usize) -> Hog {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let join = join(sandbox, netns);
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                join();
                let to = SocketAddr::from((server, 53));
                let mut open = std::collections::VecDeque::new();
                let mut opened = 0;
                while open.len() < held {
                    if let Ok(stream) = TcpStream::connect_timeout(&to, WAIT) {
                        open.push_back(stream);
                    }
                    opened += 1;
                }
                ready_tx.send(()).expect("report the connections open");
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(stream) = TcpStream::connect_timeout(&to, WAIT) {
                        open.push_back(stream);
                        opened += 1;
                    }
                    if open.len() > held {
                        open.pop_front();
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                (opened, open.into())
            })
        };
        ready_rx.recv_timeout(Duration::from_secs(30)).expect("the hostile connections were opened");
        Hog { stop, thread: Some(thread) }
    }

    /// Stops opening connections: how many it opened, and those it holds, still open.
    fn stop(mut self) -> (usize, Vec<TcpStream>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().expect("running").join().expect("the hostile thread")
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How a client asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Over {
    Udp,
    Tcp,
}

/// Asks `name` of `server` `count` times, one after another, from the namespace `netns`:
/// how long each reply took, or what went wrong with the first that did not give
/// `expected` within [`WAIT`] (three times that over TCP, as [`ask_tcp`] waits).
fn latencies(
    sandbox: &Sandbox,
    netns: &str,
    server: Ipv4Addr,
    over: Over,
    name: &str,
    expected: Ipv4Addr,
    count: usize,
) -> Result<Vec<Duration>, String> {
    let (name, join) = (name.to_owned(), join(sandbox, netns));
    let netns = netns.to_owned();
    std::thread::spawn(move || {
        join();
        let mut taken = Vec::with_capacity(count);
        for index in 0..count {
            let started = Instant::now();
            let reply = match over {
                Over::Udp => ask(server, &name, RecordType::A),
                Over::Tcp => ask_tcp(server, &name, RecordType::A),
            };
            let elapsed = started.elapsed();
            match reply {
                Some(reply) if addresses(&reply) == [expected] => taken.push(elapsed),
                Some(reply) => return Err(format!("{netns}: {name} over {over:?} (#{index}) gave {reply:?}")),
                None => {
                    return Err(format!("{netns}: no reply to {name} over {over:?} (#{index}) after {elapsed:?}"));
                }
            }
        }
        Ok(taken)
    })
    .join()
    .expect("the asking thread")
}

/// The median and the slowest of some latencies.
fn spread(latencies: &[Duration]) -> (Duration, Duration) {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    (sorted[sorted.len() / 2], sorted[sorted.len() - 1])
}

/// The established TCP connections to port 53 of `server` from `client`, counted on the
/// host's side.
fn connections_from(sandbox: &Sandbox, server: Ipv4Addr, client: Ipv4Addr) -> usize {
    let listed = sandbox.sh(&format!("ss -Htn state established src {server}:53 dst {client}"));
    listed.lines().filter(|line| !line.trim().is_empty()).count()
}

fn a_container_holding_idle_tcp_connections_starves_no_one() {
    let sandbox = Sandbox::new();
    sandbox.sh("rm -f /etc/resolv.conf; echo 'nameserver 127.0.0.1' > /etc/resolv.conf");
    let _upstream = Upstream::start(&sandbox);
    let (shop, sinatra) = (example("web-app-db"), example("reverse-proxy"));
    apply(&sandbox, &shop);
    apply(&sandbox, &sinatra);
    let (web, sinatra_net) = (Ipv4Addr::new(10, 89, 0, 1), Ipv4Addr::new(10, 30, 0, 1));
    let hostile = stacks::address_of(&sandbox, &shop, "nginx", "web_nw");
    let nginx = hostile;
    let edge = stacks::address_of(&sandbox, &sinatra, "edge", "sinatra-net");

    let hog = Hog::start(&sandbox, "shop:nginx", web, 300);
    // Another stack's container, and a neighbour of the hostile one on its own network.
    let mut report = Vec::new();
    for (netns, server, name, expected) in
        [("sinatra:nginx", sinatra_net, "edge", edge), ("shop:flaskapp", web, "nginx", nginx)]
    {
        for over in [Over::Tcp, Over::Udp] {
            let taken = latencies(&sandbox, netns, server, over, name, expected, 20)
                .unwrap_or_else(|error| panic!("while shop:nginx holds 300 idle connections: {error}"));
            let (median, slowest) = spread(&taken);
            report.push(format!("{netns} over {over:?}: median {median:?}, slowest {slowest:?}"));
            assert!(slowest < WAIT, "{netns} over {over:?} waited {slowest:?}");
        }
    }
    // A name of the world, over TCP: the forward holds the connection while it waits.
    let forwarded =
        latencies(&sandbox, "sinatra:nginx", sinatra_net, Over::Tcp, "victim.example.test", UPSTREAM_ANSWER, 5)
            .unwrap_or_else(|error| panic!("a forwarded name while shop:nginx holds connections: {error}"));
    report.push(format!("sinatra:nginx forwarded over Tcp: slowest {:?}", spread(&forwarded).1));
    let (opened, _open) = hog.stop();
    // What the server has not accepted yet is established too.
    std::thread::sleep(Duration::from_millis(200));
    let held = connections_from(&sandbox, web, hostile);
    eprintln!(
        "shop:nginx opened {opened} connections, holding 300, of which the server kept {held} open\n{}",
        report.join("\n")
    );
    assert!(
        held <= stackctl::names::TCP_CONNECTIONS.each,
        "the server kept {held} of the hostile container's connections open"
    );
}

fn a_container_flooding_forwarded_queries_starves_no_one() {
    let sandbox = Sandbox::new();
    sandbox.sh("rm -f /etc/resolv.conf; echo 'nameserver 127.0.0.1' > /etc/resolv.conf");
    let upstream = Upstream::start(&sandbox);
    let (shop, sinatra) = (example("web-app-db"), example("reverse-proxy"));
    apply(&sandbox, &shop);
    apply(&sandbox, &sinatra);
    let (web, sinatra_net) = (Ipv4Addr::new(10, 89, 0, 1), Ipv4Addr::new(10, 30, 0, 1));

    // shop:nginx asks for names the world never answers, as fast as it can: each forward
    // waits for the host's name server until it gives up.
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let (stop, join) = (Arc::clone(&stop), join(&sandbox, "shop:nginx"));
        std::thread::spawn(move || {
            join();
            let socket = UdpSocket::bind(("0.0.0.0", 0)).expect("a socket");
            let mut sent = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("unanswered-{sent}.example.test");
                let bytes = query(sent as u16, &name, RecordType::A).to_vec().expect("encodes");
                if socket.send_to(&bytes, (web, 53)).is_ok() {
                    sent += 1;
                }
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let mut report = Vec::new();
    for over in [Over::Udp, Over::Tcp] {
        let taken = latencies(&sandbox, "sinatra:nginx", sinatra_net, over, "victim.example.test", UPSTREAM_ANSWER, 10)
            .unwrap_or_else(|error| panic!("while shop:nginx floods forwarded queries: {error}"));
        let (median, slowest) = spread(&taken);
        report.push(format!("sinatra:nginx forwarded over {over:?}: median {median:?}, slowest {slowest:?}"));
        assert!(slowest < WAIT, "a forwarded name over {over:?} waited {slowest:?}");
    }
    stop.store(true, Ordering::Relaxed);
    let sent = flood.join().expect("the flooding thread");
    eprintln!("shop:nginx sent {sent} queries; the upstream was asked {}\n{}", upstream.asked(), report.join("\n"));
}

/// A line of `/proc/PID/status`, its value.
fn status_field(status: &str, field: &str) -> String {
    let line = status.lines().find_map(|line| line.strip_prefix(&format!("{field}:")));
    line.unwrap_or_else(|| panic!("no {field} in {status}")).split_whitespace().collect::<Vec<_>>().join(" ")
}

fn the_name_server_keeps_only_the_privilege_to_bind_port_53() {
    let sandbox = Sandbox::new();
    sandbox.sh("rm -f /etc/resolv.conf; echo 'nameserver 127.0.0.1' > /etc/resolv.conf");
    let _upstream = Upstream::start(&sandbox);
    let (shop, sinatra) = (example("web-app-db"), example("reverse-proxy"));
    apply(&sandbox, &shop);
    let pid = sandbox.name_server("host").expect("a name server runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read the server's status");
    // CAP_NET_BIND_SERVICE is capability 10.
    let bind_only = "0000000000000400";
    let found: Vec<(&str, String)> =
        ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Uid", "Gid", "Groups"]
            .into_iter()
            .map(|field| (field, status_field(&status, field)))
            .collect();
    let expected = [
        ("CapInh", "0000000000000000"),
        ("CapPrm", bind_only),
        ("CapEff", bind_only),
        ("CapBnd", bind_only),
        ("CapAmb", "0000000000000000"),
        ("NoNewPrivs", "1"),
        ("Uid", "65534 65534 65534 65534"),
        ("Gid", "65534 65534 65534 65534"),
        ("Groups", ""),
    ];
    let expected: Vec<(&str, String)> = expected.iter().map(|(field, value)| (*field, (*value).to_owned())).collect();
    assert_eq!(found, expected, "the name server's privileges");

    // A later apply brings a new network: the server binds port 53 on its gateway, and
    // answers there, from the stack's names and from the world's.
    apply(&sandbox, &sinatra);
    assert_eq!(sandbox.name_server("host"), Some(pid), "the server was replaced");
    let gateway = Ipv4Addr::new(10, 30, 0, 1);
    let edge = stacks::address_of(&sandbox, &sinatra, "edge", "sinatra-net");
    let replies = sandbox.in_netns(Some("sinatra:nginx"), move || {
        (ask(gateway, "edge", RecordType::A), ask_tcp(gateway, "world.example.test", RecordType::A))
    });
    assert_eq!(addresses(&replies.0.expect("a reply on the new gateway")), [edge]);
    assert_eq!(addresses(&replies.1.expect("a forwarded reply on the new gateway")), [UPSTREAM_ANSWER]);
    let web = Ipv4Addr::new(10, 89, 0, 1);
    let reply = sandbox.in_netns(Some("shop:nginx"), move || ask(web, "app", RecordType::A));
    assert_eq!(addresses(&reply.expect("the first stack still resolves")), [Ipv4Addr::new(10, 89, 0, 254)]);
    assert_converged(&sandbox, &shop);
    assert_converged(&sandbox, &sinatra);
}

fn only_root_can_use_the_name_servers_control_socket() {
    let sandbox = Sandbox::new();
    let shop = example("web-app-db");
    let stackctl = env!("CARGO_BIN_EXE_stackctl");
    sandbox.sh(&format!("umask 000; {stackctl} -f {shop} apply --yes >/dev/null"));
    let pid = sandbox.name_server("host").expect("a name server runs");
    let names = "/run/stackctl/host/names";

    // Asked for its status by nobody, and by root: only root is heard.
    let ask_status = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("refused")
    sys.exit(0)
s.sendall(b'{"request":"status"}\n')
print(s.makefile().readline().strip()[:16])
"#;
    let control = format!("{names}/control.sock");
    let as_nobody = sandbox
        .command("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", ask_status, &control])
        .output()
        .expect("run python as nobody");
    assert_success(&as_nobody, "python as nobody");
    assert_eq!(stdout(&as_nobody), "refused\n", "nobody reached the control socket");
    let as_root = sandbox.command("/usr/bin/python3").args(["-c", ask_status, &control]).output().expect("run python");
    assert_success(&as_root, "python as root");
    assert_eq!(stdout(&as_root), "{\"reply\":\"status\n", "root could not use the control socket");
    assert_eq!(sandbox.name_server("host"), Some(pid));
    let modes = sandbox.sh(&format!("stat -c '%a %u %F' {names} {names}/control.sock"));
    assert_eq!(modes, "700 0 directory\n600 0 socket\n", "the modes of the control socket and its directory");
}

/// The name servers running in a sandbox with a pid namespace of its own, by pid there:
/// their command lines.
fn resolvers(sandbox: &Sandbox) -> BTreeMap<u32, String> {
    let processes = std::fs::read_dir(format!("/proc/{}/root/proc", sandbox.pid())).expect("the sandbox's /proc");
    processes
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let command = std::fs::read(entry.path().join("cmdline")).ok()?;
            let arguments: Vec<String> =
                command.split(|byte| *byte == 0).map(|part| String::from_utf8_lossy(part).into_owned()).collect();
            arguments
                .iter()
                .any(|argument| argument == "resolver")
                .then(|| (pid, arguments.join(" ").trim().to_owned()))
        })
        .collect()
}

/// The one name server that serves the zones in `directory`.
fn resolver_of(sandbox: &Sandbox, directory: &str) -> u32 {
    let found: Vec<u32> = resolvers(sandbox)
        .into_iter()
        .filter(|(_, command)| command.ends_with(&format!("--dir {directory}")))
        .map(|(pid, _)| pid)
        .collect();
    assert_eq!(found.len(), 1, "the name servers of {directory}: {:?}", resolvers(sandbox));
    found[0]
}

fn a_name_server_whose_run_directory_is_gone_is_found_replaced_and_stopped() {
    let sandbox = Sandbox::with_own_pids();
    let dir = tempfile::tempdir().expect("temporary directory");
    let (shop, sinatra) = (example("web-app-db"), example("reverse-proxy"));
    let text = std::fs::read_to_string(&shop).expect("read scenario 1");
    let grown = write_stack(dir.path(), "grown.yaml", &format!("{text}  cache:\n    networks: [web_nw]\n"));
    let (host, scratch) = ("/run/stackctl/host/names", "/run/stackctl/netns-scratch/names");
    apply(&sandbox, &shop);
    // A scratch host has a name server of its own, in its own namespace.
    let output = run(&sandbox, &["--host-netns", "scratch", "-f", &sinatra, "apply", "--yes"]);
    assert_success(&output, "apply on a scratch host");
    let (old, scratch_server) = (resolver_of(&sandbox, host), resolver_of(&sandbox, scratch));

    sandbox.sh("rm -rf /run/stackctl");
    let (code, text) = plan(&sandbox, &grown);
    assert_eq!(code, 2, "{text}");
    let names = text.lines().filter(|line| line.starts_with("  + hosts")).count();
    assert_eq!(names, 4, "the plan makes every container's names:\n{text}");
    apply(&sandbox, &grown);
    assert!(!sandbox.runs(old), "the orphaned name server still runs");
    let new = resolver_of(&sandbox, host);
    assert_ne!(new, old);
    assert_eq!(resolver_of(&sandbox, scratch), scratch_server, "the scratch host's name server was touched");
    // Only the new server answers, from the new zone: it knows `cache`.
    let cache = stacks::address_of(&sandbox, &grown, "cache", "web_nw");
    let web = Ipv4Addr::new(10, 89, 0, 1);
    let replies = sandbox.in_netns(Some("shop:nginx"), move || {
        (0..10).map(|_| ask(web, "cache", RecordType::A).map(|reply| addresses(&reply))).collect::<Vec<_>>()
    });
    assert!(replies.iter().all(|reply| reply.as_deref() == Some(&[cache][..])), "{replies:?}");
    assert_converged(&sandbox, &grown);

    // Destroy stops the server; the scratch host's stays until its own stack goes.
    sandbox.sh("rm -rf /run/stackctl");
    let output = run(&sandbox, &["-f", &grown, "destroy", "--yes"]);
    assert_success(&output, "destroy");
    assert!(eventually(|| !sandbox.runs(new)), "destroy left the name server running");
    assert_eq!(resolver_of(&sandbox, scratch), scratch_server, "the scratch host's name server was touched");
    let output = run(&sandbox, &["--host-netns", "scratch", "-f", &sinatra, "destroy", "--yes"]);
    assert_success(&output, "destroy on the scratch host");
    assert!(eventually(|| resolvers(&sandbox).is_empty()), "name servers still run: {:?}", resolvers(&sandbox));
}

/// How long a client below waits for the server to close its connection.
const PATIENCE: Duration = Duration::from_secs(30);

/// How long the server took to close a connection from `shop:nginx` that `client` works
/// on, counted from when it opened, as the client finds out: `client` returns once the
/// connection fails or the server closes it.
fn closed_after(sandbox: &Sandbox, server: Ipv4Addr, client: fn(TcpStream)) -> std::thread::JoinHandle<Duration> {
    let join = join(sandbox, "shop:nginx");
    std::thread::spawn(move || {
        join();
        let stream = TcpStream::connect_timeout(&SocketAddr::from((server, 53)), WAIT).expect("connect");
        let started = Instant::now();
        client(stream);
        started.elapsed()
    })
}

/// Reads until the server closes the connection.
fn until_closed(mut stream: TcpStream) {
    stream.set_read_timeout(Some(PATIENCE)).expect("read timeout");
    let mut buffer = [0; 4096];
    while matches!(stream.read(&mut buffer), Ok(length) if length > 0) {}
}

/// A query over TCP, framed by its length.
fn framed(id: u16, name: &str) -> Vec<u8> {
    let bytes = query(id, name, RecordType::A).to_vec().expect("encodes");
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    framed
}

fn a_connection_that_is_silent_slow_or_does_not_read_is_closed() {
    let sandbox = Sandbox::new();
    apply(&sandbox, &example("web-app-db"));
    let web = Ipv4Addr::new(10, 89, 0, 1);
    let silent = closed_after(&sandbox, web, until_closed);
    // Its query, a byte every three seconds.
    let slow = closed_after(&sandbox, web, |stream| {
        let mut writer = stream.try_clone().expect("clone a stream");
        std::thread::spawn(move || {
            for byte in framed(1, "flaskapp") {
                if writer.write_all(&[byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_secs(3));
            }
        });
        until_closed(stream);
    });
    // Queries as fast as it can send them, and no reply read.
    let deaf = closed_after(&sandbox, web, |mut stream| {
        let batch = framed(2, "flaskapp").repeat(1000);
        stream.set_write_timeout(Some(Duration::from_millis(200))).expect("write timeout");
        let started = Instant::now();
        while started.elapsed() < PATIENCE {
            match stream.write(&batch) {
                Err(error) if error.kind() != std::io::ErrorKind::WouldBlock => return,
                _ => {}
            }
        }
    });
    let [silent, slow, deaf] = [silent, slow, deaf].map(|client| client.join().expect("a client"));
    eprintln!("closed after: silent {silent:?}, slow {slow:?}, not reading {deaf:?}");
    let (least, most) = (Duration::from_secs(9), Duration::from_secs(12));
    assert!(silent > least && silent < most, "a silent connection was closed after {silent:?}");
    assert!(slow > least && slow < most, "a slow query's connection was closed after {slow:?}");
    assert!(deaf < Duration::from_secs(15), "a connection that reads no reply was closed after {deaf:?}");
}

fn a_name_server_of_another_directory_that_holds_port_53_is_replaced() {
    let sandbox = Sandbox::with_own_pids();
    let shop = example("web-app-db");
    apply(&sandbox, &shop);
    let first = resolver_of(&sandbox, "/run/stackctl/host/names");
    sandbox.sh(&format!("kill -KILL {first}"));
    assert!(eventually(|| !sandbox.runs(first)));
    // Another name server, of another directory, serves the stack's zone on its gateways.
    let _other = sandbox.command(env!("CARGO_BIN_EXE_stackctl")).args(["resolver", "--dir", "/run/elsewhere"]).spawn();
    let reload = r#"
import json, socket, sys, time
zone = open("/run/stackctl/host/names/shop.zone.json").read()
for _ in range(100):
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect("/run/elsewhere/control.sock")
        break
    except OSError:
        time.sleep(0.05)
request = {"request": "reload", "zones": {"shop": zone}, "resolv_conf": ""}
s.sendall((json.dumps(request) + "\n").encode())
print(json.loads(s.makefile().readline())["listening"])
"#;
    let listening = sandbox.command("/usr/bin/python3").args(["-c", reload]).output().expect("run python");
    assert_success(&listening, "reload the other name server");
    assert_eq!(stdout(&listening), "['10.20.0.1', '10.89.0.1']\n");
    let other = resolver_of(&sandbox, "/run/elsewhere");

    apply(&sandbox, &shop);
    assert!(eventually(|| !sandbox.runs(other)), "the name server that held port 53 still runs");
    let web = Ipv4Addr::new(10, 89, 0, 1);
    let reply = sandbox.in_netns(Some("shop:nginx"), move || ask(web, "app", RecordType::A));
    assert_eq!(addresses(&reply.expect("names resolve")), [Ipv4Addr::new(10, 89, 0, 254)]);
    assert_ne!(resolver_of(&sandbox, "/run/stackctl/host/names"), first);
}

harness::main! {
    Shared: [
        names_in_web_app_db,
        names_in_web_app_db_v2,
        names_in_reverse_proxy,
        names_in_pets_tenants,
        names_in_port_publishing,
        names_in_hot_connect,
        names_outside_the_stack_are_forwarded_only_from_networks_that_reach_out,
        it_answers_no_one_outside_the_stack,
        garbage_does_not_stop_it,
        the_last_destroy_stops_the_server,
        a_process_that_is_not_the_name_server_is_never_killed,
        the_name_server_keeps_only_the_privilege_to_bind_port_53,
        only_root_can_use_the_name_servers_control_socket,
        a_name_server_whose_run_directory_is_gone_is_found_replaced_and_stopped,
    ],
    Alone: [
        // Queries without pause through 8 applies, each answered within a second.
        reloads_under_load_lose_no_query,
        // Kill or stop the name server and wait up to 3 s for it to be gone.
        a_dead_or_hung_server_is_found_and_replaced_by_the_next_apply,
        // Hold 300 connections, or flood, and time the others' queries against a second.
        a_container_holding_idle_tcp_connections_starves_no_one,
        a_container_flooding_forwarded_queries_starves_no_one,
        // Times when the server closes connections: after 9 to 12 s.
        a_connection_that_is_silent_slow_or_does_not_read_is_closed,
        // Kills the name server and waits up to 3 s for it to be gone.
        a_name_server_of_another_directory_that_holds_port_53_is_replaced,
    ],
}
