//! The sockets of a namespace, from the tables under `/proc/thread-self/net` (`tcp`, `udp`
//! and their IPv6 twins): the files show the namespace of the thread that reads them, so a
//! thread inside a container's namespace sees that container's sockets; those under
//! `/proc/PID/net` show the namespace of that process.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kernel's TCP states, as the tables number them.
const ESTABLISHED: u8 = 0x01;
const SYN_RECV: u8 = 0x03;
const FIN_WAIT1: u8 = 0x04;
const CLOSE_WAIT: u8 = 0x08;
const LAST_ACK: u8 = 0x09;
const LISTEN: u8 = 0x0A;
const CLOSING: u8 = 0x0B;

/// One row of a table: the socket's local address and port, its peer's port (0 when it
/// has none), its state (TCP's states, numbered as the kernel numbers them; UDP uses
/// some of them loosely), and its inode, which names it in `/proc/PID/fd` (0 for a
/// connection that no process holds any more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Socket {
    pub address: IpAddr,
    pub port: u16,
    pub peer_port: u16,
    state: u8,
    pub inode: u64,
}

impl Socket {
    pub fn is_listening(&self) -> bool {
        self.state == LISTEN
    }

    /// Whether the connection still needs its peer: it is being opened, is open (accepted
    /// or still in a listener's queue), or has sent data or a close that is not yet
    /// acknowledged. Removing its namespace now would lose what is in flight.
    pub fn is_in_use(&self) -> bool {
        [SYN_RECV, ESTABLISHED, FIN_WAIT1, CLOSE_WAIT, LAST_ACK, CLOSING].contains(&self.state)
    }
}

/// Reads the TCP sockets of the namespace of the calling thread.
pub fn read_tcp() -> io::Result<Vec<Socket>> {
    read(&["tcp", "tcp6"])
}

/// Reads the sockets of `tables` (such as `tcp`, `udp6`) of the namespace of the calling
/// thread. A namespace without IPv6 has no `tcp6` or `udp6` table.
pub fn read(tables: &[&str]) -> io::Result<Vec<Socket>> {
    read_under("/proc/thread-self/net", tables)
}

/// Reads the sockets of `tables` of the namespace of process `pid`.
pub fn read_of_process(pid: i32, tables: &[&str]) -> io::Result<Vec<Socket>> {
    read_under(&format!("/proc/{pid}/net"), tables)
}

fn read_under(directory: &str, tables: &[&str]) -> io::Result<Vec<Socket>> {
    let mut sockets = Vec::new();
    for file in tables {
        let table = match std::fs::read_to_string(format!("{directory}/{file}")) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            table => table?,
        };
        sockets.extend(parse(&table));
    }
    Ok(sockets)
}

/// The rows of a table: `sl local_address rem_address st tx_queue:rx_queue tr:tm->when
/// retrnsmt uid timeout inode ...`, addresses as `ADDRESS:PORT` in hex, the address in the
/// kernel's byte order, one 32-bit word at a time.
fn parse(table: &str) -> impl Iterator<Item = Socket> + '_ {
    table.lines().skip(1).filter_map(|row| {
        let mut fields = row.split_whitespace();
        let (address, port) = fields.nth(1)?.split_once(':')?;
        let (_, peer_port) = fields.next()?.split_once(':')?;
        let state = u8::from_str_radix(fields.next()?, 16).ok()?;
        let inode = fields.nth(5)?.parse().ok()?;
        let words: Vec<u32> = (0..address.len() / 8)
            .map(|word| u32::from_str_radix(&address[word * 8..word * 8 + 8], 16).map(u32::swap_bytes))
            .collect::<Result<_, _>>()
            .ok()?;
        let address = match words.as_slice() {
            [word] => IpAddr::V4(Ipv4Addr::from(*word)),
            [a, b, c, d] => {
                let address = Ipv6Addr::from(
                    (u128::from(*a) << 96) | (u128::from(*b) << 64) | (u128::from(*c) << 32) | u128::from(*d),
                );
                // A v4-mapped address is the IPv4 socket it stands for.
                address.to_ipv4_mapped().map_or(IpAddr::V6(address), IpAddr::V4)
            }
            _ => return None,
        };
        Some(Socket {
            address,
            port: u16::from_str_radix(port, 16).ok()?,
            peer_port: u16::from_str_radix(peer_port, 16).ok()?,
            state,
            inode,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_give_address_port_and_state() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 48021 1 0000000000000000 100 0 0 10 0\n   1: 0300590A:1388 0200590A:D431 01 00000000:00000000 00:00000000 00000000     0        0 0 1\n";
        let sockets: Vec<Socket> = parse(table).collect();
        assert_eq!(sockets[0].address, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(sockets[0].port, 8080);
        assert!(sockets[0].is_listening());
        assert_eq!(sockets[1].address, IpAddr::V4(Ipv4Addr::new(10, 89, 0, 3)));
        assert_eq!(sockets[1].port, 5000);
        assert_eq!((sockets[0].peer_port, sockets[1].peer_port), (0, 54321));
        assert_eq!((sockets[0].inode, sockets[1].inode), (48021, 0));
        assert!(sockets[1].is_in_use());
    }

    #[test]
    fn ipv6_rows_read_whole_and_v4_mapped_ones_as_ipv4() {
        let table = "  sl  local_address rem_address st\n   0: 00000000000000000000000000000000:1388 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 7\n   1: 0000000000000000FFFF00000300590A:1388 0000000000000000FFFF00000200590A:D431 01 00000000:00000000 00:00000000 00000000 0 0 8\n";
        let sockets: Vec<Socket> = parse(table).collect();
        assert!(sockets[0].address.is_unspecified() && sockets[0].address.is_ipv6());
        assert_eq!(sockets[1].address, IpAddr::V4(Ipv4Addr::new(10, 89, 0, 3)));
    }
}
