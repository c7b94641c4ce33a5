//! Conflicts between published ports.

use super::Publication;

/// Whether two publications would claim the same host address, port and protocol. Every
/// interface includes each single address, and ranges overlap port by port. Random host
/// ports never conflict: they are picked to be free.
pub fn conflicts(a: &Publication, b: &Publication) -> bool {
    let addresses_meet = match (a.host_ip, b.host_ip) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    let ports_meet = match (a.host_ports, b.host_ports) {
        (Some(x), Some(y)) => x.overlaps(&y),
        _ => false,
    };
    a.protocol == b.protocol && addresses_meet && ports_meet
}

/// Whether two publications of one container both ask for a random host port for the same
/// container port on the same address: they would be one forward, so the second says
/// nothing the first does not.
pub fn same_random(a: &Publication, b: &Publication) -> bool {
    a.host_ports.is_none()
        && b.host_ports.is_none()
        && a.protocol == b.protocol
        && a.host_ip == b.host_ip
        && a.container_ports.first == b.container_ports.first
}
