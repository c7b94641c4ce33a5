//! The host's ports: which the kernel gives out as ephemeral ones, and which sockets hold.
//! Read from `/proc` in the host namespace (the files show the namespace of the reader).

use std::collections::BTreeSet;
use std::io;

use super::sockets;
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
    // A socket on `[::]` holds the port for IPv4 as well.
    let mut busy = BTreeSet::new();
    for (protocol, tables) in [(Protocol::Tcp, ["tcp", "tcp6"]), (Protocol::Udp, ["udp", "udp6"])] {
        busy.extend(sockets::read(&tables)?.into_iter().map(|socket| (protocol, socket.port)));
    }
    Ok(LocalPorts { ephemeral, busy })
}
