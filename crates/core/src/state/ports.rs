//! Picking random host ports: once, from the host's ephemeral range, among the ports that
//! nothing holds, and then kept (lowering keeps a pick that is still valid).

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::lower::{LocalPorts, LowerError};
use super::{HostPorts, KernelState, Resource};
use crate::model::{PortRange, Protocol, Publication};

/// Gives every forward whose host ports are still to be picked a free range of the same
/// length as its container ports. Free means: in the ephemeral range, held by no socket, not
/// declared by any publication of the stack and not picked for another forward. The search
/// starts at a point derived from the forward, so the same stack on the same host picks the
/// same ports, and two forwards do not crowd the start of the range.
pub fn pick_random_ports(
    stack: &str,
    state: &mut KernelState,
    declared: &[Publication],
    host: &LocalPorts,
) -> Result<(), LowerError> {
    let mut taken: BTreeSet<(Protocol, u16)> = host.busy.clone();
    for publication in declared {
        if let Some(ports) = publication.host_ports {
            taken.extend((ports.first..=ports.last).map(|port| (publication.protocol, port)));
        }
    }
    for resource in state.resources.values() {
        if let Resource::Forward(forward) = resource
            && let HostPorts::Picked(ports) = forward.host_ports
        {
            taken.extend((ports.first..=ports.last).map(|port| (forward.protocol, port)));
        }
    }
    for resource in state.resources.values_mut() {
        let Resource::Forward(forward) = resource else { continue };
        if forward.host_ports != HostPorts::Random {
            continue;
        }
        let length = forward.container_ports.count();
        let seed = format!("{stack}\0{}\0{}\0{}", forward.container, forward.protocol, forward.container_ports);
        let ports = free_range(host.ephemeral, length, &seed, |port| taken.contains(&(forward.protocol, port)))
            .ok_or_else(|| LowerError::NoFreePort {
                container: forward.container.clone(),
                ports: forward.container_ports,
                range: host.ephemeral,
            })?;
        taken.extend((ports.first..=ports.last).map(|port| (forward.protocol, port)));
        forward.host_ports = HostPorts::Picked(ports);
    }
    Ok(())
}

/// The first range of `length` ports inside `range` that holds no taken port, searching
/// from a start derived from `seed` and wrapping around.
fn free_range(range: PortRange, length: u32, seed: &str, taken: impl Fn(u16) -> bool) -> Option<PortRange> {
    let span = range.count().checked_sub(length)? + 1;
    let digest = Sha256::digest(seed.as_bytes());
    let start = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % span;
    (0..span).map(|step| u32::from(range.first) + (start + step) % span).find_map(|first| {
        let ports = PortRange { first: first as u16, last: (first + length - 1) as u16 };
        (ports.first..=ports.last).all(|port| !taken(port)).then_some(ports)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_range_avoids_taken_ports_and_is_stable() {
        let range = PortRange { first: 32768, last: 32777 };
        let first = free_range(range, 3, "seed", |_| false).expect("room");
        assert_eq!(free_range(range, 3, "seed", |_| false), Some(first));
        let around = free_range(range, 3, "seed", |port| port == first.first).expect("room elsewhere");
        assert!(!(around.first..=around.last).contains(&first.first));
        assert!(around.first >= range.first && around.last <= range.last);
    }

    #[test]
    fn no_free_range_when_every_window_holds_a_taken_port() {
        let range = PortRange { first: 40000, last: 40003 };
        assert_eq!(free_range(range, 2, "seed", |port| port == 40001 || port == 40002), None);
        assert_eq!(free_range(range, 5, "seed", |_| false), None);
    }
}
