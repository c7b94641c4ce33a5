//! Answering one DNS message: from the stack's names, with a refusal, or by handing it to
//! the host's name servers. Decides everything the server does with a packet; the server
//! only moves bytes.

use std::net::Ipv4Addr;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::index::{Index, Lookup};

/// How the message came, which bounds the size of the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What to do with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Ask the host's name servers, and relay their reply (see [`relayed`]).
    Forward,
    /// Send nothing.
    Drop,
}

/// The largest reply over UDP to a client that offers no EDNS (RFC 1035).
const UDP_PLAIN: usize = 512;
/// The largest reply over UDP whatever a client offers: what crosses a network without
/// fragments (DNS flag day 2020).
const UDP_MOST: u16 = 1232;

/// The answer to `query`, which came from `source` to the server's address `local`.
///
/// Only the stack's containers are answered, each on the gateway of a network it is on;
/// everyone else gets nothing. A name the client may resolve is answered with its
/// addresses (time to live 0: an address can change with the next apply), another type
/// of record for it with no data; a name or address of any stack on the host that the
/// client may not see does not exist for it, and is never asked of the world. Anything
/// else is forwarded when the client's networks reach outside, and refused otherwise.
pub fn respond(index: &Index, local: Ipv4Addr, source: Ipv4Addr, transport: Transport, query: &[u8]) -> Response {
    let Some(view) = index.client(local, source) else { return Response::Drop };
    let Ok(request) = Message::from_vec(query) else { return Response::Drop };
    if request.metadata.message_type == MessageType::Response || request.queries.is_empty() {
        return Response::Drop;
    }
    let mut reply = reply_to(&request);
    reply.metadata.recursion_available = view.upstream;
    if request.metadata.op_code != OpCode::Query {
        reply.metadata.response_code = ResponseCode::NotImp;
    } else if request.queries.len() > 1 {
        reply.metadata.response_code = ResponseCode::FormErr;
    } else {
        match answer(index, view, &request.queries[0]) {
            Answer::Records(records) => {
                reply.metadata.authoritative = true;
                reply.add_answers(records);
            }
            Answer::NoData => reply.metadata.authoritative = true,
            Answer::Absent => {
                reply.metadata.authoritative = true;
                reply.metadata.response_code = ResponseCode::NXDomain;
            }
            Answer::Refused => reply.metadata.response_code = ResponseCode::Refused,
            Answer::Forward => return Response::Forward,
        }
    }
    encode(reply, limit(&request, transport)).map_or(Response::Drop, Response::Reply)
}

/// The reply of a host's name server to a forwarded `query`, to relay to the client with
/// the client's id; `None` when it is not a reply to that query.
pub fn relayed(query: &[u8], reply: &[u8]) -> Option<Vec<u8>> {
    let asked = Message::from_vec(query).ok()?;
    let answered = Message::from_vec(reply).ok()?;
    let matches = answered.metadata.message_type == MessageType::Response
        && answered.metadata.id == asked.metadata.id
        && answered.queries == asked.queries;
    matches.then(|| {
        let mut relayed = reply.to_vec();
        relayed[..2].copy_from_slice(&asked.metadata.id.to_be_bytes());
        relayed
    })
}

/// The reply to a forwarded `query` that no name server of the host answered: a server
/// failure, so that the client does not wait for its own time-out.
pub fn unanswered(query: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut reply = reply_to(&request);
    reply.metadata.recursion_available = true;
    reply.metadata.response_code = ResponseCode::ServFail;
    encode(reply, limit(&request, transport))
}

/// What the names say about a question.
enum Answer {
    Records(Vec<Record>),
    NoData,
    Absent,
    Refused,
    Forward,
}

fn answer(index: &Index, view: &Lookup, query: &Query) -> Answer {
    let asked = query.name();
    let internet = matches!(query.query_class(), DNSClass::IN | DNSClass::ANY);
    let wanted = |record_type: RecordType| {
        internet && (query.query_type() == record_type || query.query_type() == RecordType::ANY)
    };
    if let Some(address) = arpa_address(asked) {
        if let Some(owner) = view.reverse.get(&address) {
            // Raw labels: text labels would be IDNA-mapped, which lower-cases them.
            let Ok(target) = Name::from_labels(owner.split('.').map(str::as_bytes)) else { return Answer::NoData };
            return if wanted(RecordType::PTR) {
                Answer::Records(vec![Record::from_rdata(asked.clone(), 0, RData::PTR(PTR(target)))])
            } else {
                Answer::NoData
            };
        }
        if index.has_address(address) {
            return Answer::Absent;
        }
    } else if let Some(name) = key(asked) {
        if let Some(addresses) = view.records.get(&name) {
            return if wanted(RecordType::A) {
                Answer::Records(
                    addresses
                        .iter()
                        .map(|address| Record::from_rdata(asked.clone(), 0, RData::A(A(*address))))
                        .collect(),
                )
            } else {
                Answer::NoData
            };
        }
        if index.has_name(&name) {
            return Answer::Absent;
        }
    }
    if view.upstream { Answer::Forward } else { Answer::Refused }
}

/// A reply to `request` with its id, its flags that a reply copies (RD, CD), its
/// questions and, when it had EDNS, an OPT record of the server's own.
fn reply_to(request: &Message) -> Message {
    let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
    reply.metadata = Metadata::response_from_request(&request.metadata);
    reply.add_queries(request.queries.iter().cloned());
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(UDP_MOST);
        reply.set_edns(edns);
    }
    reply
}

/// The most bytes a reply to `request` may have.
fn limit(request: &Message, transport: Transport) -> usize {
    match (transport, &request.edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => UDP_PLAIN,
        (Transport::Udp, Some(edns)) => usize::from(edns.max_payload().clamp(UDP_PLAIN as u16, UDP_MOST)),
    }
}

/// The reply's bytes; one too large loses its records and says it was truncated, so
/// that the client asks again over TCP.
fn encode(mut reply: Message, limit: usize) -> Option<Vec<u8>> {
    let bytes = reply.to_vec().ok()?;
    if bytes.len() <= limit {
        return Some(bytes);
    }
    reply.answers.clear();
    reply.metadata.truncation = true;
    reply.to_vec().ok().filter(|bytes| bytes.len() <= limit)
}

/// A name as the index keys it: its labels in lower case, joined by dots. `None` for a
/// name that no stack can have (a label that is not text or holds a dot).
fn key(name: &Name) -> Option<String> {
    let mut key = String::with_capacity(name.len());
    for (position, label) in name.iter().enumerate() {
        let label = std::str::from_utf8(label).ok().filter(|label| !label.contains('.'))?;
        if position > 0 {
            key.push('.');
        }
        key.push_str(&label.to_ascii_lowercase());
    }
    Some(key)
}

/// The address of a reverse name, `4.3.2.1.in-addr.arpa` for 1.2.3.4; `None` for any
/// other name, partial reverse names included.
fn arpa_address(name: &Name) -> Option<Ipv4Addr> {
    let labels: Vec<&[u8]> = name.iter().collect();
    let [d, c, b, a, in_addr, arpa] = labels.as_slice() else { return None };
    if !in_addr.eq_ignore_ascii_case(b"in-addr") || !arpa.eq_ignore_ascii_case(b"arpa") {
        return None;
    }
    let octet = |label: &[u8]| -> Option<u8> {
        let digits = label.iter().all(u8::is_ascii_digit);
        // `010` is not how an octet is written in a reverse name.
        let canonical = label.len() == 1 || label.first() != Some(&b'0');
        if !digits || !canonical {
            return None;
        }
        std::str::from_utf8(label).ok()?.parse().ok()
    };
    Some(Ipv4Addr::new(octet(a)?, octet(b)?, octet(c)?, octet(d)?))
}
