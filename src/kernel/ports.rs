//! The host's ports: which the kernel gives out as ephemeral ones, and which sockets hold.
//! Read from `/proc` in the host namespace (the files show the namespace of the reader).

use std::collections::BTreeSet;
use std::io;

use crate::model::{PortRange, Protocol};
use crate::state::LocalPorts;

/// Reads the host's ports; call it from a thread inside the host namespace.
pub fn read() -> io::Result<LocalPorts> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")?;
    let mut bounds = range.split_whitespace().filter_map(|field| field.parse::<u16>().ok());
    let ephemeral = match (bounds.next(), bounds.next()) {
        (Some(first), Some(last)) if first <= last => PortRange { first, last },
        _ => return Err(io::Error::other(format!("unexpected ip_local_port_range `{}`", range.trim()))),
    };
    let mut busy = BTreeSet::new();
    // A socket on `[::]` holds the port for IPv4 as well; a host without IPv6 has no
    // `tcp6` or `udp6`.
    let tables = [(Protocol::Tcp, "tcp"), (Protocol::Udp, "udp"), (Protocol::Tcp, "tcp6"), (Protocol::Udp, "udp6")];
    for (protocol, file) in tables {
        let table = match std::fs::read_to_string(format!("/proc/thread-self/net/{file}")) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            table => table?,
        };
        busy.extend(local_ports(&table).map(|port| (protocol, port)));
    }
    Ok(LocalPorts { ephemeral, busy })
}

/// The local ports of a `/proc/net/tcp` or `udp` table: the second field of each row is
/// `ADDRESS:PORT` in hex.
fn local_ports(table: &str) -> impl Iterator<Item = u16> + '_ {
    table.lines().skip(1).filter_map(|row| {
        let local = row.split_whitespace().nth(1)?;
        u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_ports_come_from_the_second_field() {
        let table = "  sl  local_address rem_address   st\n   0: 0100007F:1F90 00000000:0000 0A\n   1: 00000000:0016 00000000:0000 0A\n";
        assert_eq!(local_ports(table).collect::<Vec<_>>(), [8080, 22]);
    }
}
