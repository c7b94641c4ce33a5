//! ctnetlink's bytes, both ways: the two requests stackctl sends (a dump of the IPv4 table,
//! the deletion of one entry) and the kernel's answers, datagram by datagram. Bytes to
//! values and back, nothing else; the socket is `conntrack.rs`'s.
//!
//! The layouts are the kernel's uapi headers: `linux/netlink.h` (message headers and
//! attribute headers, in host byte order; nested attributes flagged `NLA_F_NESTED`),
//! `linux/netfilter/nfnetlink.h` (`struct nfgenmsg` after each header, and the
//! subsystem in the high byte of the message type), `linux/netfilter/nfnetlink_conntrack.h`
//! (message types and attributes, whose values are in network byte order),
//! `nf_conntrack_common.h` (status bits) and `nf_conntrack_tcp.h` (TCP states).

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use rtnetlink::packet_core::{
    NLA_F_NESTED, NLA_TYPE_MASK, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR,
};

use super::{Entry, Protocol, Status, TcpState, Tuple};

/// `struct nlmsghdr`: length, type, flags, sequence number, port id.
const HEADER: usize = 16;
/// `struct nlattr`: length, type.
const ATTRIBUTE_HEADER: usize = 4;
/// Messages and attributes start on 4-byte boundaries.
const ALIGN: usize = 4;
/// `struct nfgenmsg`: family, version, resource id.
const NFGENMSG: usize = 4;
const AF_INET: u8 = 2;
const NFNETLINK_V0: u8 = 0;

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
/// `enum cntl_msg_types`. A dump carries each entry as a `NEW` message.
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;

/// `enum ctattr_type`.
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_STATUS: u16 = 3;
const CTA_PROTOINFO: u16 = 4;
const CTA_ID: u16 = 12;
/// `enum ctattr_tuple`.
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
/// `enum ctattr_ip`.
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
/// `enum ctattr_l4proto`.
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
/// `enum ctattr_protoinfo` and `enum ctattr_protoinfo_tcp`.
const CTA_PROTOINFO_TCP: u16 = 1;
const CTA_PROTOINFO_TCP_STATE: u16 = 1;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// The buffer a datagram of an answer is read into. The kernel fills a dump's datagrams
/// up to 32 KiB at most.
pub const DATAGRAM: usize = 64 * 1024;

/// The request for every IPv4 entry of the table.
pub fn dump_request(sequence: u32) -> Vec<u8> {
    message(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, sequence, |_| {})
}

/// The request to delete `entry`, found by its original tuple and kept when its id is
/// another's (the tuple was reused), acknowledged either way.
pub fn delete_request(entry: &Entry, sequence: u32) -> Vec<u8> {
    message(IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, sequence, |attributes| {
        nested(attributes, CTA_TUPLE_ORIG, |tuple| {
            nested(tuple, CTA_TUPLE_IP, |ip| {
                attribute(ip, CTA_IP_V4_SRC, &entry.original.source.ip().octets());
                attribute(ip, CTA_IP_V4_DST, &entry.original.destination.ip().octets());
            });
            nested(tuple, CTA_TUPLE_PROTO, |proto| {
                attribute(proto, CTA_PROTO_NUM, &[protocol_number(entry.protocol)]);
                attribute(proto, CTA_PROTO_SRC_PORT, &entry.original.source.port().to_be_bytes());
                attribute(proto, CTA_PROTO_DST_PORT, &entry.original.destination.port().to_be_bytes());
            });
        });
        attribute(attributes, CTA_ID, &entry.id.to_be_bytes());
    })
}

/// A ctnetlink message for IPv4: the header, `nfgenmsg`, and the attributes `attributes`
/// writes.
fn message(kind: u16, flags: u16, sequence: u32, attributes: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = vec![0; HEADER];
    bytes.extend([AF_INET, NFNETLINK_V0, 0, 0]);
    attributes(&mut bytes);
    let length = u32::try_from(bytes.len()).expect("a request is small");
    bytes[0..4].copy_from_slice(&length.to_ne_bytes());
    bytes[4..6].copy_from_slice(&(NFNL_SUBSYS_CTNETLINK << 8 | kind).to_ne_bytes());
    bytes[6..8].copy_from_slice(&flags.to_ne_bytes());
    bytes[8..12].copy_from_slice(&sequence.to_ne_bytes());
    // The port id stays 0: the kernel fills in the sender's.
    bytes
}

fn attribute(bytes: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let length = u16::try_from(ATTRIBUTE_HEADER + value.len()).expect("an attribute is small");
    bytes.extend(length.to_ne_bytes());
    bytes.extend(kind.to_ne_bytes());
    bytes.extend(value);
    bytes.resize(bytes.len().next_multiple_of(ALIGN), 0);
}

fn nested(bytes: &mut Vec<u8>, kind: u16, attributes: impl FnOnce(&mut Vec<u8>)) {
    let start = bytes.len();
    bytes.extend([0; ATTRIBUTE_HEADER]);
    attributes(bytes);
    let length = u16::try_from(bytes.len() - start).expect("an attribute is small");
    bytes[start..start + 2].copy_from_slice(&length.to_ne_bytes());
    bytes[start + 2..start + 4].copy_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
}

fn protocol_number(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Tcp => IPPROTO_TCP,
        Protocol::Udp => IPPROTO_UDP,
        Protocol::Other(number) => number,
    }
}

/// Reads the answer to the request numbered `sequence` to its end, a datagram at a time:
/// `receive` reads the next datagram into the buffer and says how long it was (longer
/// than the buffer when it did not fit). A dump ends with `NLMSG_DONE`, a request asking
/// for an acknowledgement with an `NLMSG_ERROR` of 0; any other error ends it as that
/// error.
pub fn answer(sequence: u32, mut receive: impl FnMut(&mut [u8]) -> io::Result<usize>) -> io::Result<Vec<Entry>> {
    let mut buffer = vec![0; DATAGRAM];
    let mut entries = Vec::new();
    loop {
        let length = receive(&mut buffer)?;
        let datagram = buffer.get(..length).ok_or_else(|| invalid("a datagram larger than the buffer"))?;
        let part = read(datagram, sequence)?;
        entries.extend(part.entries);
        if part.ended {
            return Ok(entries);
        }
    }
}

/// What one datagram of an answer held.
#[derive(Debug, Default, PartialEq)]
struct Part {
    entries: Vec<Entry>,
    /// Whether the answer ended in it.
    ended: bool,
}

/// Reads the messages of one datagram that answer the request numbered `sequence`;
/// messages answering another (an earlier request that gave up waiting) are skipped, as
/// are entries that are not IPv4.
fn read(datagram: &[u8], sequence: u32) -> io::Result<Part> {
    let mut part = Part::default();
    let mut rest = datagram;
    while !rest.is_empty() {
        let header = rest.get(..HEADER).ok_or_else(|| invalid("a message shorter than its header"))?;
        let length = u32::from_ne_bytes(array(&header[0..4])) as usize;
        if length < HEADER {
            return Err(invalid("a message shorter than its header"));
        }
        let body = rest.get(HEADER..length).ok_or_else(|| invalid("a message longer than its datagram"))?;
        let kind = u16::from_ne_bytes(array(&header[4..6]));
        let answers = u32::from_ne_bytes(array(&header[8..12])) == sequence;
        rest = rest.get(length.next_multiple_of(ALIGN)..).unwrap_or_default();
        if !answers {
            continue;
        }
        match kind {
            NLMSG_ERROR | NLMSG_DONE => {
                // An error message's errno, negated; a dump's end may carry one too.
                let code = body.get(..4).map_or(0, |code| i32::from_ne_bytes(array(code)));
                if code < 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
                part.ended = true;
            }
            kind if kind == NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW => {
                if let Some(entry) = entry(body)? {
                    part.entries.push(entry);
                }
            }
            // NLMSG_NOOP, and whatever else a later kernel may add.
            _ => {}
        }
    }
    Ok(part)
}

/// The entry of a message's body (`nfgenmsg` and attributes), when it is IPv4.
fn entry(body: &[u8]) -> io::Result<Option<Entry>> {
    let nfgenmsg = body.get(..NFGENMSG).ok_or_else(|| invalid("an entry without its nfgenmsg"))?;
    if nfgenmsg[0] != AF_INET {
        return Ok(None);
    }
    let found = attributes(&body[NFGENMSG..])?;
    let (protocol, original) = tuple(required(&found, CTA_TUPLE_ORIG, "original tuple")?)?;
    let (_, reply) = tuple(required(&found, CTA_TUPLE_REPLY, "reply tuple")?)?;
    let status = Status(u32::from_be_bytes(value(required(&found, CTA_STATUS, "status")?, "status")?));
    let id = u32::from_be_bytes(value(required(&found, CTA_ID, "id")?, "id")?);
    let tcp_state = match found.get(&CTA_PROTOINFO) {
        Some(info) if protocol == Protocol::Tcp => {
            let tcp = attributes(required(&attributes(info)?, CTA_PROTOINFO_TCP, "tcp protocol info")?)?;
            let [state] = value(required(&tcp, CTA_PROTOINFO_TCP_STATE, "tcp state")?, "tcp state")?;
            Some(tcp_state(state)?)
        }
        _ => None,
    };
    Ok(Some(Entry { id, protocol, original, reply, status, tcp_state }))
}

/// A tuple's protocol and ends. Ports are 0 when the protocol has none.
fn tuple(bytes: &[u8]) -> io::Result<(Protocol, Tuple)> {
    let tuple = attributes(bytes)?;
    let ip = attributes(required(&tuple, CTA_TUPLE_IP, "tuple addresses")?)?;
    let proto = attributes(required(&tuple, CTA_TUPLE_PROTO, "tuple protocol")?)?;
    let address = |kind, what| Ok::<_, io::Error>(Ipv4Addr::from(value::<4>(required(&ip, kind, what)?, what)?));
    let port = |kind, what| match proto.get(&kind) {
        Some(port) => Ok(u16::from_be_bytes(value(port, what)?)),
        None => Ok::<_, io::Error>(0),
    };
    let [number] = value(required(&proto, CTA_PROTO_NUM, "protocol number")?, "protocol number")?;
    let protocol = match number {
        IPPROTO_TCP => Protocol::Tcp,
        IPPROTO_UDP => Protocol::Udp,
        other => Protocol::Other(other),
    };
    let source = SocketAddrV4::new(address(CTA_IP_V4_SRC, "source address")?, port(CTA_PROTO_SRC_PORT, "source port")?);
    let destination = SocketAddrV4::new(
        address(CTA_IP_V4_DST, "destination address")?,
        port(CTA_PROTO_DST_PORT, "destination port")?,
    );
    Ok((protocol, Tuple { source, destination }))
}

fn tcp_state(state: u8) -> io::Result<TcpState> {
    Ok(match state {
        0 => TcpState::None,
        1 => TcpState::SynSent,
        2 => TcpState::SynRecv,
        3 => TcpState::Established,
        4 => TcpState::FinWait,
        5 => TcpState::CloseWait,
        6 => TcpState::LastAck,
        7 => TcpState::TimeWait,
        8 => TcpState::Close,
        9 => TcpState::SynSent2,
        _ => return Err(invalid("an unknown tcp state")),
    })
}

/// The attributes of `bytes` by type, without the flags; trailing bytes too short for an
/// attribute are padding.
fn attributes(mut bytes: &[u8]) -> io::Result<BTreeMap<u16, &[u8]>> {
    let mut found = BTreeMap::new();
    while bytes.len() >= ATTRIBUTE_HEADER {
        let length = u16::from_ne_bytes(array(&bytes[0..2])) as usize;
        let kind = u16::from_ne_bytes(array(&bytes[2..4])) & NLA_TYPE_MASK;
        let value =
            bytes.get(ATTRIBUTE_HEADER..length).ok_or_else(|| invalid("an attribute longer than its message"))?;
        found.insert(kind, value);
        bytes = bytes.get(length.next_multiple_of(ALIGN)..).unwrap_or_default();
    }
    Ok(found)
}

fn required<'a>(attributes: &BTreeMap<u16, &'a [u8]>, kind: u16, what: &str) -> io::Result<&'a [u8]> {
    attributes.get(&kind).copied().ok_or_else(|| invalid(&format!("an entry without its {what}")))
}

/// An attribute's value, which must have exactly `N` bytes.
fn value<const N: usize>(bytes: &[u8], what: &str) -> io::Result<[u8; N]> {
    bytes.try_into().map_err(|_| invalid(&format!("a {what} of {} bytes", bytes.len())))
}

/// The bytes of a field whose length the caller checked.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes.try_into().expect("a field of its length")
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the kernel's conntrack answer has {what}"))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The captured answer: one `Vec` of bytes per datagram.
    fn captured() -> Vec<Vec<u8>> {
        let text = include_str!("captured-dump.hex");
        let lines: Vec<&str> = text.lines().filter(|line| !line.starts_with('#')).collect();
        lines
            .split(|line| line.is_empty())
            .filter(|block| !block.is_empty())
            .map(|block| block.iter().flat_map(|message| hex(message)).collect())
            .collect()
    }

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits.chunks(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap()).collect()
    }

    /// The entries of the captured answer, read as a socket would hand it over.
    pub fn captured_entries() -> Vec<Entry> {
        answer(7, receiving(captured())).expect("the captured answer reads")
    }

    /// A `receive` that hands over `datagrams` in turn, then times out as the socket would.
    fn receiving(datagrams: Vec<Vec<u8>>) -> impl FnMut(&mut [u8]) -> io::Result<usize> {
        let mut datagrams = datagrams.into_iter();
        move |buffer| {
            let datagram = datagrams.next().ok_or_else(|| io::Error::from(io::ErrorKind::WouldBlock))?;
            let fits = datagram.len().min(buffer.len());
            buffer[..fits].copy_from_slice(&datagram[..fits]);
            Ok(datagram.len())
        }
    }

    // Builders of answers, written from the uapi layout (host byte order for headers,
    // network order for values).

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend(((4 + value.len()) as u16).to_ne_bytes());
        bytes.extend(kind.to_ne_bytes());
        bytes.extend(value);
        bytes.resize(bytes.len().next_multiple_of(4), 0);
        bytes
    }

    fn nest(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
        let inner = parts.concat();
        let mut bytes = Vec::new();
        bytes.extend(((4 + inner.len()) as u16).to_ne_bytes());
        bytes.extend((kind | 0x8000).to_ne_bytes());
        bytes.extend(inner);
        bytes
    }

    fn msg(kind: u16, sequence: u32, body: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend(((16 + body.len()) as u32).to_ne_bytes());
        bytes.extend(kind.to_ne_bytes());
        bytes.extend(0x0002u16.to_ne_bytes()); // NLM_F_MULTIPART
        bytes.extend(sequence.to_ne_bytes());
        bytes.extend(1234u32.to_ne_bytes());
        bytes.extend(body);
        bytes.resize(bytes.len().next_multiple_of(4), 0);
        bytes
    }

    fn tuple_attr(kind: u16, protocol: u8, source: SocketAddrV4, destination: SocketAddrV4) -> Vec<u8> {
        let mut proto = vec![attr(1, &[protocol])];
        if source.port() != 0 {
            proto.push(attr(2, &source.port().to_be_bytes()));
            proto.push(attr(3, &destination.port().to_be_bytes()));
        }
        nest(kind, &[nest(1, &[attr(1, &source.ip().octets()), attr(2, &destination.ip().octets())]), nest(2, &proto)])
    }

    /// A dump's message for an entry of `family` from 10.89.0.3:`port` to the alias at
    /// 10.89.0.254:5000, sent to 10.89.0.2 and masqueraded to 10.89.0.1.
    fn entry_msg(sequence: u32, family: u8, protocol: u8, port: u16, id: u32, status: u32, tcp: Option<u8>) -> Vec<u8> {
        let client = SocketAddrV4::new(Ipv4Addr::new(10, 89, 0, 3), port);
        let alias = SocketAddrV4::new(Ipv4Addr::new(10, 89, 0, 254), if port == 0 { 0 } else { 5000 });
        let backend = SocketAddrV4::new(Ipv4Addr::new(10, 89, 0, 2), alias.port());
        let masqueraded = SocketAddrV4::new(Ipv4Addr::new(10, 89, 0, 1), port);
        let mut body = vec![family, 0, 0, 0];
        body.extend(tuple_attr(1, protocol, client, alias));
        body.extend(tuple_attr(2, protocol, backend, masqueraded));
        body.extend(attr(3, &status.to_be_bytes()));
        if let Some(state) = tcp {
            body.extend(nest(4, &[nest(1, &[attr(1, &[state]), attr(2, &[7]), attr(3, &[7])])]));
        }
        body.extend(attr(12, &id.to_be_bytes()));
        msg(0x0100, sequence, &body)
    }

    fn tcp(sequence: u32, port: u16, id: u32) -> Vec<u8> {
        // SEEN_REPLY | ASSURED | CONFIRMED | SRC_NAT | DST_NAT | the NAT done bits.
        entry_msg(sequence, 2, 6, port, id, 0x1be, Some(3))
    }

    /// `NLMSG_DONE` or `NLMSG_ERROR` with `code`.
    fn end(kind: u16, sequence: u32, code: i32) -> Vec<u8> {
        msg(kind, sequence, &code.to_ne_bytes())
    }

    #[test]
    fn the_dump_request_asks_ctnetlink_for_every_ipv4_entry() {
        // Little-endian header (x86, arm64): length 20, type 0x0101 (subsystem 1,
        // IPCTNL_MSG_CT_GET), flags NLM_F_REQUEST | NLM_F_DUMP (0x301), sequence 1, port 0;
        // nfgenmsg: AF_INET, NFNETLINK_V0, resource 0.
        assert_eq!(dump_request(1), hex("14000000 0101 0103 01000000 00000000  02 00 0000"));
    }

    #[test]
    fn a_deletion_names_the_original_tuple_and_the_id() {
        let entry = Entry {
            id: 0x0a0b_0c0d,
            protocol: Protocol::Tcp,
            original: Tuple {
                source: "10.89.0.3:43458".parse().unwrap(),
                destination: "10.89.0.254:5000".parse().unwrap(),
            },
            reply: Tuple { source: "10.89.0.2:5000".parse().unwrap(), destination: "10.89.0.1:43458".parse().unwrap() },
            status: Status(0x18a),
            tcp_state: Some(TcpState::SynSent),
        };
        let expected = hex(concat!(
            "50000000 0201 0500 09000000 00000000", // length 80, IPCTNL_MSG_CT_DELETE, REQUEST | ACK, sequence 9
            "02 00 0000",                           // AF_INET, NFNETLINK_V0
            "3400 0180",                            // CTA_TUPLE_ORIG, nested, 52 bytes
            "1400 0180",                            //   CTA_TUPLE_IP, nested
            "0800 0100 0a590003",                   //     CTA_IP_V4_SRC 10.89.0.3
            "0800 0200 0a5900fe",                   //     CTA_IP_V4_DST 10.89.0.254
            "1c00 0280",                            //   CTA_TUPLE_PROTO, nested
            "0500 0100 06 000000",                  //     CTA_PROTO_NUM 6, padded
            "0600 0200 a9c2 0000",                  //     CTA_PROTO_SRC_PORT 43458, padded
            "0600 0300 1388 0000",                  //     CTA_PROTO_DST_PORT 5000, padded
            "0800 0c00 0a0b0c0d",                   // CTA_ID
        ));
        assert_eq!(delete_request(&entry, 9), expected);
    }

    #[test]
    fn a_deletion_names_the_tuple_as_the_kernel_wrote_it() {
        let syn = captured_entries().into_iter().find(|entry| entry.tcp_state == Some(TcpState::SynSent)).unwrap();
        let request = delete_request(&syn, 1);
        let tuple = &request[HEADER + NFGENMSG..request.len() - 8];
        let captured = captured().concat();
        assert!(captured.windows(tuple.len()).any(|window| window == tuple), "the kernel's tuple bytes differ");
    }

    #[test]
    fn the_captured_dump_reads_whole() {
        let entries = captured_entries();
        assert_eq!(entries.len(), 4);
        let syn = Entry {
            id: entries[1].id,
            protocol: Protocol::Tcp,
            original: Tuple {
                source: "10.89.0.3:43458".parse().unwrap(),
                destination: "10.89.0.254:5000".parse().unwrap(),
            },
            reply: Tuple { source: "10.89.0.2:5000".parse().unwrap(), destination: "10.89.0.1:43458".parse().unwrap() },
            status: entries[1].status,
            tcp_state: Some(TcpState::SynSent),
        };
        assert_eq!(entries[1], syn);
        assert!(!syn.status.has_seen_reply() && !syn.status.is_assured());
        assert!(syn.status.is_dst_nat() && syn.status.is_src_nat());

        let established = &entries[3];
        assert_eq!(established.original.source, "10.89.0.3:43456".parse().unwrap());
        assert_eq!(established.tcp_state, Some(TcpState::Established));
        assert!(established.status.has_seen_reply() && established.status.is_assured());
        assert_ne!(established.id, syn.id);

        let igmp = &entries[0];
        assert_eq!(igmp.protocol, Protocol::Other(2));
        assert_eq!(igmp.original.destination, "224.0.0.22:0".parse().unwrap());
        assert_eq!((igmp.tcp_state, igmp.status.is_dst_nat()), (None, false));
    }

    #[test]
    fn an_answer_reads_several_entries_a_datagram_over_several_datagrams() {
        let datagrams = vec![[tcp(5, 40001, 1), tcp(5, 40002, 2)].concat(), tcp(5, 40003, 3), end(NLMSG_DONE, 5, 0)];
        let entries = answer(5, receiving(datagrams)).unwrap();
        let ports: Vec<u16> = entries.iter().map(|entry| entry.original.source.port()).collect();
        assert_eq!(ports, [40001, 40002, 40003]);
        assert_eq!(entries.iter().map(|entry| entry.id).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(entries[0].reply.source, "10.89.0.2:5000".parse().unwrap());
    }

    #[test]
    fn an_answer_ends_at_its_done_also_within_a_datagram() {
        // What follows the end is not read: another datagram would time out.
        let datagrams = vec![[tcp(5, 40001, 1), end(NLMSG_DONE, 5, 0)].concat()];
        assert_eq!(answer(5, receiving(datagrams)).unwrap().len(), 1);
    }

    #[test]
    fn an_acknowledgement_ends_an_answer_with_no_entry() {
        assert_eq!(answer(3, receiving(vec![end(NLMSG_ERROR, 3, 0)])).unwrap(), []);
    }

    #[test]
    fn an_error_ends_an_answer_as_that_errno() {
        for (kind, code) in [(NLMSG_ERROR, 2), (NLMSG_ERROR, 1), (NLMSG_DONE, 4)] {
            let datagrams = vec![[tcp(3, 40001, 1), end(kind, 3, -code)].concat()];
            let error = answer(3, receiving(datagrams)).unwrap_err();
            assert_eq!(error.raw_os_error(), Some(code), "{kind} with -{code}");
        }
    }

    #[test]
    fn messages_of_an_earlier_request_are_skipped() {
        let datagrams = vec![
            [tcp(4, 40001, 1), end(NLMSG_DONE, 4, 0)].concat(),
            [tcp(5, 40002, 2), end(NLMSG_ERROR, 4, -2)].concat(),
            end(NLMSG_DONE, 5, 0),
        ];
        let entries = answer(5, receiving(datagrams)).unwrap();
        assert_eq!(entries.iter().map(|entry| entry.id).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn entries_of_other_families_are_skipped_and_other_protocols_read() {
        let udp = entry_msg(5, 2, 17, 40002, 2, 0x1be, None);
        let icmp = entry_msg(5, 2, 1, 0, 3, 0x188, None);
        let ipv6 = entry_msg(5, 10, 6, 40004, 4, 0x1be, Some(3));
        let entries = answer(5, receiving(vec![[udp, icmp, ipv6, end(NLMSG_DONE, 5, 0)].concat()])).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[0].protocol, entries[0].tcp_state), (Protocol::Udp, None));
        assert_eq!(entries[1].protocol, Protocol::Other(1));
        assert_eq!(entries[1].original.destination, "10.89.0.254:0".parse().unwrap());
        assert!(entries[1].is_unreplied());
    }

    #[test]
    fn a_datagram_larger_than_the_buffer_fails() {
        let mut big = Vec::new();
        for id in 0.. {
            if big.len() > DATAGRAM {
                break;
            }
            big.extend(tcp(5, 40000, id));
        }
        let error = answer(5, receiving(vec![big])).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_message_or_attribute_past_its_end_fails() {
        let whole = tcp(5, 40001, 1);
        for cut in [8, HEADER + 2, whole.len() - 4] {
            let mut message = whole[..cut].to_vec();
            if cut > 4 {
                // The header still claims the whole length, past the datagram's end.
                message[0..4].copy_from_slice(&(whole.len() as u32).to_ne_bytes());
            }
            let error = answer(5, receiving(vec![message])).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "cut at {cut}");
        }
        let mut short_attribute = whole.clone();
        // The first attribute (the original tuple) claims more than the message holds.
        short_attribute[HEADER + NFGENMSG..HEADER + NFGENMSG + 2].copy_from_slice(&500u16.to_ne_bytes());
        let error = answer(5, receiving(vec![short_attribute])).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn an_entry_missing_its_id_fails() {
        let mut body = vec![2, 0, 0, 0];
        let any = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1);
        body.extend(tuple_attr(1, 6, any, any));
        body.extend(tuple_attr(2, 6, any, any));
        body.extend(attr(3, &0u32.to_be_bytes()));
        let error = answer(5, receiving(vec![msg(0x0100, 5, &body)])).unwrap_err();
        assert!(error.to_string().contains("without its id"), "{error}");
    }
}
