//! The conntrack table of a namespace, through ctnetlink: its IPv4 entries, and deleting
//! one.
//!
//! A swap needs it twice. An alias is a virtual address and a DNAT rule, and the kernel
//! picks a connection's backend once, on its first packet; conntrack then keeps that
//! choice for every packet of the connection, retransmissions of that first packet
//! included. So a SYN sent to the old backend just before the repoint and dropped there
//! (say at a full accept queue) is sent again 1 s, 3 s, ... later to the old backend
//! still, whatever the new rule says. The entry outlives the backend (an unanswered SYN's
//! lasts 120 s, renewed by each retry), so once the swap removes that backend the retries
//! go nowhere until the host's neighbour entry for it fails, and the client fails with
//! `No route to host`. Deleting, at the repoint, the entries through the alias to an old
//! backend that have seen no reply sends each retry through the new rule, as a new
//! connection. And the drain wants to know which connections through the alias still use
//! an old backend, and in which TCP state: conntrack knows them by the address the client
//! asked for and the backend the rule chose, which the sockets of the backend alone do
//! not tell.
//!
//! An entry is listed once the host has passed its first packet on: a SYN that the old
//! backend drops is listed, unreplied, as soon as it left the host; one that the host's own
//! rules drop is never listed.
//!
//! The socket talks to the namespace of the thread that opens it, as rtnetlink's do
//! (`netns.rs`): open a [`Table`] on a thread inside the namespace (`netns::inside`),
//! then use it from any thread. The bytes both ways are `conntrack/codec.rs`'s.

mod codec;

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, connect, recv, send, setsockopt, socket,
    sockopt,
};
use nix::sys::time::{TimeVal, TimeValLike};

/// How many seconds the kernel gets for each datagram of an answer: it answers at once,
/// so a wait this long means a lost answer, which should fail rather than hang a swap.
const ANSWER_WITHIN_SECONDS: i64 = 5;

/// One connection as conntrack tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The kernel's id of the entry: a hash of where the entry lives in the kernel's memory
    /// and of its original tuple. A later connection with the same tuple is another entry,
    /// with another id, unless its entry happens to take the memory of the old one (the
    /// same tuple again means the same client's port, such as a SYN sent again).
    pub id: u32,
    pub protocol: Protocol,
    /// The connection as its first packet had it: from the client to the address and
    /// port it asked for (through an alias: the alias's virtual address).
    pub original: Tuple,
    /// The connection as its replies have it: from where NAT sent the first packet (the
    /// backend a DNAT rule chose) back to the client, or to the address a masquerade
    /// gave the client.
    pub reply: Tuple,
    pub status: Status,
    /// For TCP, the connection's state as conntrack follows it.
    pub tcp_state: Option<TcpState>,
}

impl Entry {
    /// Whether the connection was addressed to `address` (an alias's virtual address, on
    /// any port) and sent on to `backend` by a DNAT rule.
    pub fn is_through(&self, address: Ipv4Addr, backend: Ipv4Addr) -> bool {
        self.status.is_dst_nat() && *self.original.destination.ip() == address && *self.reply.source.ip() == backend
    }

    /// Whether no packet came back yet: for TCP, a SYN that was not answered.
    pub fn is_unreplied(&self) -> bool {
        !self.status.has_seen_reply()
    }

    /// Whether a TCP connection still carries, or may yet carry, data: answered, and not
    /// closed by both ends.
    pub fn is_in_use(&self) -> bool {
        !self.is_unreplied()
            && matches!(
                self.tcp_state,
                Some(
                    TcpState::SynRecv
                        | TcpState::SynSent2
                        | TcpState::Established
                        | TcpState::FinWait
                        | TcpState::CloseWait
                        | TcpState::LastAck
                )
            )
    }
}

/// The two ends of one direction of a connection. Protocols without ports (ICMP, IGMP,
/// ...) have port 0 on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    pub source: SocketAddrV4,
    pub destination: SocketAddrV4,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    /// Another IP protocol, by number.
    Other(u8),
}

/// An entry's status bits (`enum ip_conntrack_status` of the kernel's
/// `nf_conntrack_common.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(u32);

impl Status {
    const SEEN_REPLY: u32 = 1 << 1;
    const ASSURED: u32 = 1 << 2;
    const SRC_NAT: u32 = 1 << 4;
    const DST_NAT: u32 = 1 << 5;

    /// A packet came back from the other end.
    pub fn has_seen_reply(self) -> bool {
        self.0 & Self::SEEN_REPLY != 0
    }

    /// The connection is established for conntrack's purposes: for TCP, the handshake
    /// completed. Such entries are the last conntrack drops when its table is full.
    pub fn is_assured(self) -> bool {
        self.0 & Self::ASSURED != 0
    }

    /// A rule changed the source (a masquerade).
    pub fn is_src_nat(self) -> bool {
        self.0 & Self::SRC_NAT != 0
    }

    /// A rule changed the destination (a DNAT: an alias or a published port).
    pub fn is_dst_nat(self) -> bool {
        self.0 & Self::DST_NAT != 0
    }
}

/// TCP's states as conntrack follows a connection (`enum tcp_conntrack` of the kernel's
/// `nf_conntrack_tcp.h`), which are its own: it sees both directions from the middle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TcpState {
    None,
    SynSent,
    SynRecv,
    Established,
    FinWait,
    CloseWait,
    LastAck,
    TimeWait,
    Close,
    /// A SYN answered by a SYN (a simultaneous open).
    SynSent2,
}

/// How many TCP entries of `entries` are in each state.
pub fn tcp_states<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> BTreeMap<TcpState, usize> {
    let mut counts = BTreeMap::new();
    for state in entries.into_iter().filter_map(|entry| entry.tcp_state) {
        *counts.entry(state).or_default() += 1;
    }
    counts
}

/// What a deletion found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    Deleted,
    /// No entry had the tuple and id: it had ended, or its tuple now belongs to another
    /// connection.
    AlreadyGone,
}

/// The conntrack table of the namespace in which it was opened.
pub struct Table {
    socket: OwnedFd,
    /// The sequence number of the last request: an answer carries its request's, so one
    /// left over from an earlier request (which timed out) is told apart.
    sequence: u32,
}

impl Table {
    /// Opens the conntrack table of the calling thread's namespace.
    pub fn open() -> io::Result<Table> {
        let socket =
            socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkNetFilter)?;
        // Port 0 is the kernel; connecting also binds this socket to a port of its own.
        connect(socket.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        setsockopt(&socket, sockopt::ReceiveTimeout, &TimeVal::seconds(ANSWER_WITHIN_SECONDS))?;
        Ok(Table { socket, sequence: 0 })
    }

    /// The table's IPv4 entries.
    pub fn list(&mut self) -> io::Result<Vec<Entry>> {
        self.exchange(codec::dump_request)
    }

    /// Deletes `entry`: the entry with its original tuple, if it still has its id. Only
    /// entries of protocols with ports (TCP, UDP) are named by their tuple alone.
    pub fn delete(&mut self, entry: &Entry) -> io::Result<Deletion> {
        match self.exchange(|sequence| codec::delete_request(entry, sequence)) {
            Ok(_) => Ok(Deletion::Deleted),
            Err(error) if error.raw_os_error() == Some(Errno::ENOENT as i32) => Ok(Deletion::AlreadyGone),
            Err(error) => Err(error),
        }
    }

    /// Sends the request that `request` makes with a new sequence number, and reads its
    /// answer to the end.
    fn exchange(&mut self, request: impl FnOnce(u32) -> Vec<u8>) -> io::Result<Vec<Entry>> {
        self.sequence = self.sequence.wrapping_add(1);
        send(self.socket.as_raw_fd(), &request(self.sequence), MsgFlags::empty())?;
        // With MSG_TRUNC, a datagram larger than the buffer tells its whole length.
        codec::answer(self.sequence, |buffer| Ok(recv(self.socket.as_raw_fd(), buffer, MsgFlags::MSG_TRUNC)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALIAS: Ipv4Addr = Ipv4Addr::new(10, 89, 0, 254);
    const FLASKAPP: Ipv4Addr = Ipv4Addr::new(10, 89, 0, 2);

    #[test]
    fn entries_through_an_alias_to_a_backend_are_told_by_address_and_backend() {
        let entries = codec::tests::captured_entries();
        let through: Vec<&Entry> = entries.iter().filter(|entry| entry.is_through(ALIAS, FLASKAPP)).collect();
        assert_eq!(through.len(), 2);
        assert!(entries.iter().all(|entry| !entry.is_through(ALIAS, Ipv4Addr::new(10, 89, 0, 4))));
        assert!(entries.iter().all(|entry| !entry.is_through(FLASKAPP, FLASKAPP)));
        let unreplied: Vec<u16> =
            through.iter().filter(|entry| entry.is_unreplied()).map(|entry| entry.original.source.port()).collect();
        assert_eq!(unreplied, [43458]);
    }

    #[test]
    fn tcp_states_counts_tcp_entries_by_state() {
        let entries = codec::tests::captured_entries();
        let counts = tcp_states(&entries);
        assert_eq!(counts, BTreeMap::from([(TcpState::SynSent, 1), (TcpState::Established, 1)]));
    }
}
