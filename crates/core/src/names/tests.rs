//! What the name server answers, case by case, on the examples' lowered states; the
//! replies as `dig` shows them; and the request path fuzzed.

use std::fmt::Write;
use std::net::Ipv4Addr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use proptest::prelude::*;

use super::*;
use crate::model::validate_file;
use crate::spec::SourceFile;
use crate::state::{HostFacts, KernelState, Resource, lower};

fn state_of(text: &str) -> KernelState {
    let validated = validate_file(&SourceFile { name: "stack.yaml".to_owned(), text: text.to_owned() });
    let stack = validated.stack.unwrap_or_else(|| panic!("invalid: {:#?}", validated.diagnostics));
    lower(&stack, &KernelState::default(), &HostFacts::default()).expect("lowers").state
}

const SHOP: &str = include_str!("../../../../examples/web-app-db.yaml");
const SINATRA: &str = include_str!("../../../../examples/reverse-proxy.yaml");

/// A stack with a container on no network.
const LONE: &str = "name: lone\nnetworks:\n  n: { subnet: 10.40.0.0/24 }\ncontainers:\n  hermit: { network_mode: none }\n  Lone: { networks: [n] }\n";

/// Scenario one (`shop`), the reverse proxy (`sinatra`) and `lone`, served by one server.
fn stacks() -> Index {
    let shop = zone("shop", &state_of(SHOP));
    let sinatra = zone("sinatra", &state_of(SINATRA));
    let lone = zone("lone", &state_of(LONE));
    Index::build([&shop, &sinatra, &lone])
}

/// The index the fuzzed cases share: building it for each would be most of their time.
static STACKS: std::sync::LazyLock<Index> = std::sync::LazyLock::new(stacks);

/// In scenario one: web_nw is 10.89.0.0/24 (flaskapp .2, nginx .3), db_nw 10.20.0.0/24
/// (db .2, flaskapp .3); each gateway is .1.
const WEB: Ipv4Addr = Ipv4Addr::new(10, 89, 0, 1);
const DB: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 1);
const NGINX: Ipv4Addr = Ipv4Addr::new(10, 89, 0, 3);
const FLASKAPP_WEB: Ipv4Addr = Ipv4Addr::new(10, 89, 0, 2);
const FLASKAPP_DB: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 3);
const DB_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 2);

const ID: u16 = 0x1234;

fn message(name: &str, record_type: RecordType) -> Message {
    let mut message = Message::query();
    message.metadata.id = ID;
    message.metadata.recursion_desired = true;
    let mut name = Name::from_ascii(name).expect("a name");
    name.set_fqdn(true);
    message.add_query(Query::query(name, record_type));
    message
}

fn query(name: &str, record_type: RecordType) -> Vec<u8> {
    message(name, record_type).to_vec().expect("encodes")
}

/// A response in a few words: `drop`, `forward`, or the code, flags and answers.
fn summary(response: &Response) -> String {
    let bytes = match response {
        Response::Drop => return "drop".to_owned(),
        Response::Forward => return "forward".to_owned(),
        Response::Reply(bytes) => bytes,
    };
    let reply = Message::from_vec(bytes).expect("a reply parses");
    let mut text = status(reply.metadata.response_code);
    for (on, flag) in [(reply.metadata.authoritative, "aa"), (reply.metadata.truncation, "tc")] {
        if on {
            text += &format!(" {flag}");
        }
    }
    for record in &reply.answers {
        text += &format!(" {}", record.data);
    }
    text
}

/// A response code as `dig` names it.
fn status(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".to_owned(),
        ResponseCode::FormErr => "FORMERR".to_owned(),
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::NXDomain => "NXDOMAIN".to_owned(),
        ResponseCode::NotImp => "NOTIMP".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        other => other.to_string(),
    }
}

/// A reply as `dig` prints it.
fn dig(response: &Response) -> String {
    let Response::Reply(bytes) = response else { return format!(";; {}\n", summary(response)) };
    let reply = Message::from_vec(bytes).expect("a reply parses");
    let metadata = &reply.metadata;
    let mut flags = vec!["qr"];
    for (on, flag) in [
        (metadata.authoritative, "aa"),
        (metadata.truncation, "tc"),
        (metadata.recursion_desired, "rd"),
        (metadata.recursion_available, "ra"),
    ] {
        if on {
            flags.push(flag);
        }
    }
    let mut text = String::new();
    let _ = writeln!(
        text,
        ";; opcode: {}, status: {}, id: {}",
        metadata.op_code,
        status(metadata.response_code),
        metadata.id
    );
    let _ = writeln!(
        text,
        ";; flags: {}; QUERY: {}, ANSWER: {}, AUTHORITY: {}, ADDITIONAL: {}",
        flags.join(" "),
        reply.queries.len(),
        reply.answers.len(),
        reply.authorities.len(),
        reply.additionals.len() + usize::from(reply.edns.is_some())
    );
    if let Some(edns) = &reply.edns {
        let _ = writeln!(text, ";; OPT: version {}, udp {}", edns.version(), edns.max_payload());
    }
    let _ = writeln!(text, ";; QUESTION SECTION:");
    for question in &reply.queries {
        let _ = writeln!(text, ";{}\t{}\t{}", question.name(), question.query_class(), question.query_type());
    }
    if !reply.answers.is_empty() {
        let _ = writeln!(text, ";; ANSWER SECTION:");
        for record in &reply.answers {
            let _ = writeln!(
                text,
                "{}\t{}\t{}\t{}\t{}",
                record.name,
                record.ttl,
                record.dns_class,
                record.record_type(),
                record.data
            );
        }
    }
    text
}

/// Who asks (a label, the gateway and the source address), what, and the expected summary.
type Case = (&'static str, Ipv4Addr, Ipv4Addr, &'static str, RecordType, &'static str);

const CASES: &[Case] = &[
    ("nginx", WEB, NGINX, "flaskapp", RecordType::A, "NOERROR aa 10.89.0.2"),
    ("nginx", WEB, NGINX, "FlaskApp.", RecordType::A, "NOERROR aa 10.89.0.2"),
    ("nginx", WEB, NGINX, "app", RecordType::A, "NOERROR aa 10.89.0.254"),
    ("nginx", WEB, NGINX, "nginx", RecordType::A, "NOERROR aa 10.89.0.3"),
    ("nginx", WEB, NGINX, "flaskapp", RecordType::AAAA, "NOERROR aa"),
    ("nginx", WEB, NGINX, "app", RecordType::MX, "NOERROR aa"),
    ("nginx", WEB, NGINX, "flaskapp", RecordType::ANY, "NOERROR aa 10.89.0.2"),
    ("nginx", WEB, NGINX, "db", RecordType::A, "NXDOMAIN aa"),
    ("nginx", WEB, NGINX, "db", RecordType::AAAA, "NXDOMAIN aa"),
    ("nginx", WEB, NGINX, "sinatra-web", RecordType::A, "NXDOMAIN aa"),
    ("nginx", WEB, NGINX, "example.org", RecordType::A, "forward"),
    ("nginx", WEB, NGINX, "hermit", RecordType::A, "NXDOMAIN aa"),
    ("Lone", Ipv4Addr::new(10, 40, 0, 1), Ipv4Addr::new(10, 40, 0, 2), "hermit", RecordType::A, "NXDOMAIN aa"),
    ("Lone", Ipv4Addr::new(10, 40, 0, 1), Ipv4Addr::new(10, 40, 0, 2), "lone", RecordType::A, "NOERROR aa 10.40.0.2"),
    (
        "Lone",
        Ipv4Addr::new(10, 40, 0, 1),
        Ipv4Addr::new(10, 40, 0, 2),
        "2.0.40.10.in-addr.arpa",
        RecordType::PTR,
        "NOERROR aa Lone.",
    ),
    ("nginx", WEB, NGINX, "2.0.89.10.in-addr.arpa", RecordType::PTR, "NOERROR aa flaskapp."),
    ("nginx", WEB, NGINX, "3.0.89.10.in-addr.arpa", RecordType::PTR, "NOERROR aa nginx."),
    ("nginx", WEB, NGINX, "2.0.89.10.in-addr.arpa", RecordType::A, "NOERROR aa"),
    ("nginx", WEB, NGINX, "2.0.20.10.in-addr.arpa", RecordType::PTR, "NXDOMAIN aa"),
    ("nginx", WEB, NGINX, "6.0.30.10.in-addr.arpa", RecordType::PTR, "NXDOMAIN aa"),
    ("nginx", WEB, NGINX, "8.8.8.8.in-addr.arpa", RecordType::PTR, "forward"),
    ("nginx", WEB, NGINX, "89.10.in-addr.arpa", RecordType::PTR, "forward"),
    ("flaskapp on web_nw", WEB, FLASKAPP_WEB, "flaskapp", RecordType::A, "NOERROR aa 10.20.0.3 10.89.0.2"),
    ("flaskapp on db_nw", DB, FLASKAPP_DB, "db", RecordType::A, "NOERROR aa 10.20.0.2"),
    ("db", DB, DB_ADDRESS, "flaskapp", RecordType::A, "NOERROR aa 10.20.0.3"),
    ("db", DB, DB_ADDRESS, "nginx", RecordType::A, "NXDOMAIN aa"),
    ("db", DB, DB_ADDRESS, "app", RecordType::A, "NXDOMAIN aa"),
    ("db", DB, DB_ADDRESS, "example.org", RecordType::A, "REFUSED"),
    ("db", DB, DB_ADDRESS, "1.1.168.192.in-addr.arpa", RecordType::PTR, "REFUSED"),
    ("db", DB, DB_ADDRESS, "3.0.20.10.in-addr.arpa", RecordType::PTR, "NOERROR aa flaskapp."),
    ("nginx at the gateway of a network it is not on", DB, NGINX, "flaskapp", RecordType::A, "drop"),
    ("an address no container has", WEB, Ipv4Addr::new(10, 89, 0, 99), "flaskapp", RecordType::A, "drop"),
    ("the host, from the gateway itself", WEB, WEB, "flaskapp", RecordType::A, "drop"),
    (
        "sinatra's nginx",
        Ipv4Addr::new(10, 30, 0, 1),
        Ipv4Addr::new(10, 30, 0, 3),
        "nginx",
        RecordType::A,
        "NOERROR aa 10.30.0.3",
    ),
    (
        "sinatra's nginx",
        Ipv4Addr::new(10, 30, 0, 1),
        Ipv4Addr::new(10, 30, 0, 3),
        "flaskapp",
        RecordType::A,
        "NXDOMAIN aa",
    ),
    (
        "sinatra's nginx",
        Ipv4Addr::new(10, 30, 0, 1),
        Ipv4Addr::new(10, 30, 0, 3),
        "sinatra-pool",
        RecordType::A,
        "NOERROR aa 10.30.0.254",
    ),
];

#[test]
fn each_client_resolves_what_it_shares_a_network_with_and_nothing_else() {
    let index = stacks();
    let mut transcript = String::new();
    let mut wrong = Vec::new();
    for (who, local, source, name, record_type, expected) in CASES {
        let response = respond(&index, *local, *source, Transport::Udp, &query(name, *record_type));
        if summary(&response) != *expected {
            wrong.push(format!("{who} asks {name} {record_type}: {} instead of {expected}", summary(&response)));
        }
        let _ = writeln!(transcript, "## {who} ({source} at {local}) asks {name} {record_type}\n{}", dig(&response));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    insta::assert_snapshot!(transcript);
}

#[test]
fn only_containers_at_the_gateways_of_their_networks_are_known() {
    let index = &*STACKS;
    assert!(index.knows(WEB, NGINX) && index.knows(WEB, FLASKAPP_WEB) && index.knows(DB, FLASKAPP_DB));
    assert!(!index.knows(DB, NGINX), "nginx is not on db_nw");
    assert!(!index.knows(WEB, WEB), "the host");
    assert!(!index.knows(WEB, Ipv4Addr::new(192, 0, 2, 2)), "a stranger");
}

#[test]
fn malformed_and_unserved_messages() {
    let index = stacks();
    let ask = |bytes: &[u8]| summary(&respond(&index, WEB, NGINX, Transport::Udp, bytes));
    let valid = query("flaskapp", RecordType::A);
    assert_eq!(ask(&[]), "drop");
    assert_eq!(ask(b"\x12\x34 hello, is anyone there?"), "drop");
    assert_eq!(ask(&valid[..valid.len() - 3]), "drop", "a truncated query");

    let mut reply = message("flaskapp", RecordType::A);
    reply.metadata.message_type = MessageType::Response;
    assert_eq!(ask(&reply.to_vec().expect("encodes")), "drop", "a response");

    let mut nothing = message("flaskapp", RecordType::A);
    nothing.queries.clear();
    assert_eq!(ask(&nothing.to_vec().expect("encodes")), "drop", "no question");

    let mut status = message("flaskapp", RecordType::A);
    status.metadata.op_code = OpCode::Status;
    assert_eq!(ask(&status.to_vec().expect("encodes")), "NOTIMP");

    let mut two = message("flaskapp", RecordType::A);
    two.add_query(Query::query(Name::from_ascii("app").expect("a name"), RecordType::A));
    assert_eq!(ask(&two.to_vec().expect("encodes")), "FORMERR");
}

#[test]
fn a_reply_echoes_the_id_the_recursion_flag_the_question_and_edns() {
    let index = stacks();
    let mut asked = message("App", RecordType::A);
    asked.metadata.id = 0xbeef;
    asked.metadata.recursion_desired = false;
    let Response::Reply(bytes) = respond(&index, WEB, NGINX, Transport::Udp, &asked.to_vec().expect("encodes")) else {
        panic!("no reply")
    };
    let reply = Message::from_vec(&bytes).expect("parses");
    assert_eq!(reply.metadata.id, 0xbeef);
    assert!(!reply.metadata.recursion_desired);
    assert_eq!(reply.queries, asked.queries);
    assert_eq!(reply.answers[0].name.to_ascii(), "App.", "the name as asked");
    assert_eq!(reply.answers[0].ttl, 0);
    assert!(reply.edns.is_none(), "no EDNS without EDNS");

    asked.set_edns(Edns::new());
    let Response::Reply(bytes) = respond(&index, WEB, NGINX, Transport::Udp, &asked.to_vec().expect("encodes")) else {
        panic!("no reply")
    };
    insta::assert_snapshot!(dig(&Response::Reply(bytes)));
}

/// A stack where `asker` and `pool` share `count` networks, so that `pool` resolves to
/// `count` addresses. (An alias resolves to its one virtual address, however many
/// containers share it.)
fn pool(count: usize) -> Index {
    let networks: Vec<String> = (0..count).map(|index| format!("n{index}")).collect();
    let mut text = format!("name: big\nnetworks: {{ {} }}\ncontainers:\n", networks.join(": {}, ") + ": {}");
    for container in ["asker", "pool"] {
        text += &format!("  {container}: {{ networks: [{}] }}\n", networks.join(", "));
    }
    Index::build([&zone("big", &state_of(&text))])
}

#[test]
fn a_reply_too_large_for_udp_is_truncated_and_whole_over_tcp() {
    let index = pool(60);
    let (gateway, client) = (Ipv4Addr::new(10, 89, 0, 1), Ipv4Addr::new(10, 89, 0, 2));
    let plain = query("pool", RecordType::A);
    assert_eq!(summary(&respond(&index, gateway, client, Transport::Udp, &plain)), "NOERROR aa tc");
    let whole = summary(&respond(&index, gateway, client, Transport::Tcp, &plain));
    assert_eq!(whole.split(' ').count(), 2 + 60, "{whole}");
    let mut edns = message("pool", RecordType::A);
    edns.set_edns(Edns::new().set_max_payload(4096).clone());
    let Response::Reply(bytes) = respond(&index, gateway, client, Transport::Udp, &edns.to_vec().expect("encodes"))
    else {
        panic!("no reply")
    };
    assert!(bytes.len() > 512 && bytes.len() <= 1232, "{}", bytes.len());
    assert_eq!(Message::from_vec(&bytes).expect("parses").answers.len(), 60);
}

#[test]
fn an_upstream_reply_is_relayed_only_when_it_answers_the_question() {
    let asked = query("example.org", RecordType::A);
    let mut answer = message("example.org", RecordType::A);
    answer.metadata.message_type = MessageType::Response;
    let answer = answer.to_vec().expect("encodes");
    assert_eq!(relayed(&asked, &answer), Some(answer.clone()));
    let mut other = message("example.com", RecordType::A);
    other.metadata.message_type = MessageType::Response;
    assert_eq!(relayed(&asked, &other.to_vec().expect("encodes")), None, "another question");
    assert_eq!(relayed(&asked, &asked), None, "a query is no reply");
    assert_eq!(relayed(&asked, &answer[..7]), None, "a truncated reply");

    let failed = unanswered(&asked, Transport::Udp).expect("a reply");
    assert_eq!(summary(&Response::Reply(failed)), "SERVFAIL");
}

#[test]
fn the_zone_serves_each_container_its_hosts_and_shares_equal_views() {
    for (stack, text) in [
        ("shop", SHOP),
        ("sinatra", SINATRA),
        ("pets", include_str!("../../../../examples/pets-tenants.yaml")),
        ("ports", include_str!("../../../../examples/port-publishing.yaml")),
        ("micro", include_str!("../../../../examples/hot-connect.yaml")),
        ("shop", include_str!("../../../../examples/web-app-db-v2.yaml")),
    ] {
        let state = state_of(text);
        let zone = zone(stack, &state);
        let served = zone.served();
        let mut hosts = 0;
        for resource in state.resources.values() {
            if let Resource::Hosts(expected) = resource {
                hosts += 1;
                let got = &served[&expected.container];
                assert_eq!((&got.records, got.upstream), (&expected.records, expected.upstream), "{stack}");
            }
        }
        assert_eq!(served.len(), hosts, "{stack}");
        let views: std::collections::BTreeSet<_> = zone.clients.iter().map(|client| client.view).collect();
        assert_eq!(views.len(), zone.views.len(), "{stack}: every view is used");
        let read: Zone = serde_json::from_slice(&zone.to_json()).expect("the zone file reads back");
        assert_eq!(read, zone);
    }
    // security-processor and security-processor-2 are on the same networks.
    let zone = zone("micro", &state_of(include_str!("../../../../examples/hot-connect.yaml")));
    let containers: std::collections::BTreeSet<&str> =
        zone.clients.iter().map(|client| client.container.as_str()).collect();
    assert!(zone.views.len() < containers.len(), "{} views for {} containers", zone.views.len(), containers.len());
}

#[test]
fn a_zone_file_is_versioned_json() {
    let zone = zone("shop", &state_of(SHOP));
    insta::assert_snapshot!(serde_json::to_string_pretty(&zone).expect("serializes"));
}

/// A valid query and a way to break it.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bits: u8 },
    Cut { at: usize },
    Insert { at: usize, byte: u8 },
}

fn mutated(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        match *mutation {
            Mutation::Flip { at, bits } if !bytes.is_empty() => {
                let at = at % bytes.len();
                bytes[at] ^= bits;
            }
            Mutation::Cut { at } => bytes.truncate(at % (bytes.len() + 1)),
            Mutation::Insert { at, byte } => bytes.insert(at % (bytes.len() + 1), byte),
            Mutation::Flip { .. } => {}
        }
    }
    bytes
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        any::<usize>().prop_map(|at| Mutation::Cut { at }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
    ]
}

/// Who sends a packet: nginx, flaskapp, db, or a stranger on one of their networks.
fn sender() -> impl Strategy<Value = (Ipv4Addr, Ipv4Addr, bool)> {
    prop_oneof![
        Just((WEB, NGINX, true)),
        Just((DB, FLASKAPP_DB, true)),
        Just((DB, DB_ADDRESS, true)),
        any::<u8>().prop_filter_map("a stranger", |last| {
            (![1, 2, 3].contains(&last)).then_some((WEB, Ipv4Addr::new(10, 89, 0, last), false))
        }),
        Just((WEB, DB_ADDRESS, false)),
    ]
}

/// The properties of any response: no reply to a stranger; a reply is a response that
/// carries the query's id.
fn check(response: &Response, packet: &[u8], known: bool) -> Result<(), TestCaseError> {
    if !known {
        prop_assert_eq!(response, &Response::Drop);
    }
    if let Response::Reply(bytes) = response {
        let reply = Message::from_vec(bytes).map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert_eq!(reply.metadata.message_type, MessageType::Response);
        prop_assert_eq!(&reply.metadata.id.to_be_bytes()[..], &packet[..2]);
        prop_assert!(bytes.len() <= 512 || reply.edns.is_some());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_are_never_answered_to_strangers(
        packet in proptest::collection::vec(any::<u8>(), 0..600),
        (local, source, known) in sender(),
        tcp in any::<bool>(),
    ) {
        let index = &*STACKS;
        let transport = if tcp { Transport::Tcp } else { Transport::Udp };
        check(&respond(index, local, source, transport, &packet), &packet, known)?;
    }

    #[test]
    fn mutated_queries_are_never_answered_to_strangers(
        name in prop_oneof![Just("flaskapp"), Just("db"), Just("example.org"), Just("2.0.89.10.in-addr.arpa")],
        record_type in prop_oneof![Just(RecordType::A), Just(RecordType::PTR), Just(RecordType::AAAA)],
        edns in any::<bool>(),
        mutations in proptest::collection::vec(mutation(), 0..6),
        (local, source, known) in sender(),
    ) {
        let index = &*STACKS;
        let mut message = message(name, record_type);
        if edns {
            message.set_edns(Edns::new());
        }
        let packet = mutated(message.to_vec().expect("encodes"), &mutations);
        check(&respond(index, local, source, Transport::Udp, &packet), &packet, known)?;
    }
}
