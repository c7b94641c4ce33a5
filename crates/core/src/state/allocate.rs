//! Deterministic choices of names, subnets and addresses.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

use crate::model::overlaps;

/// Where automatic subnets come from: after Podman's default 10.88.0.0/16, so the two
/// tools do not pick the same subnets on one host.
pub const AUTO_SUBNET_POOL: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(10, 89, 0, 0), 16) {
    Ok(net) => net,
    Err(_) => panic!("valid pool"),
};

/// The widest prefix an automatic subnet gets; wider when its members need more room.
const AUTO_PREFIX: u8 = 24;

/// An interface name derived from the stack and the object's names: a prefix and ten hex
/// digits of a hash, 13 bytes, within the kernel's 15. Deriving it (rather than numbering)
/// keeps it stable whatever else the stack holds.
fn derived_ifname(prefix: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(5).map(|byte| format!("{byte:02x}")).collect();
    format!("{prefix}{hex}")
}

/// The name of a network's bridge.
pub fn bridge_ifname(stack: &str, network: &str) -> String {
    derived_ifname("stb", &[stack, network])
}

/// The name of the host end of a container's veth pair on a network.
pub fn veth_ifname(stack: &str, container: &str, network: &str) -> String {
    derived_ifname("stv", &[stack, container, network])
}

/// The MAC address of a container's interface, derived from its IPv4 address as Docker
/// does (locally administered, unicast): neighbours that cached an address keep a valid
/// entry when the container is connected again, or replaced by one that takes its
/// address, and the firewall and the bridge know which MAC address each port may send
/// from without reading it back.
pub fn container_mac(address: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = address.octets();
    [0x02, 0x5c, a, b, c, d]
}

/// A MAC address as nft and `ip` write it.
pub fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|byte| format!("{byte:02x}")).join(":")
}

/// The prefix of an automatic subnet that holds `members` containers and the gateway.
pub fn auto_prefix(members: usize) -> u8 {
    let needed = members as u64 + 3; // network, broadcast and gateway addresses
    let bits = 64 - (needed - 1).leading_zeros() as u8;
    (32 - bits).min(AUTO_PREFIX)
}

/// The first subnet of the pool with `prefix` that overlaps none of `taken`.
pub fn free_subnet(prefix: u8, taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    AUTO_SUBNET_POOL.subnets(prefix).ok()?.find(|candidate| !taken.iter().any(|used| overlaps(candidate, used)))
}

/// Hands out the lowest free host addresses of a subnet.
pub struct AddressPool {
    subnet: Ipv4Net,
    taken: BTreeSet<Ipv4Addr>,
    next: u32,
}

impl AddressPool {
    pub fn new(subnet: Ipv4Net, taken: BTreeSet<Ipv4Addr>) -> Self {
        AddressPool { subnet, taken, next: u32::from(subnet.network()) + 1 }
    }

    pub fn take(&mut self, address: Ipv4Addr) -> bool {
        self.taken.insert(address)
    }

    /// The highest free host address, for virtual addresses: they grow down from the top
    /// of the subnet while containers' addresses grow up from the bottom.
    pub fn last_free(&mut self) -> Option<Ipv4Addr> {
        let first = u32::from(self.subnet.network()) + 1;
        let mut candidate = u32::from(self.subnet.broadcast()).checked_sub(1)?;
        while candidate >= first.max(self.next) {
            if self.taken.insert(Ipv4Addr::from(candidate)) {
                return Some(Ipv4Addr::from(candidate));
            }
            candidate -= 1;
        }
        None
    }

    pub fn next_free(&mut self) -> Option<Ipv4Addr> {
        let last = u32::from(self.subnet.broadcast());
        while self.next < last {
            let candidate = Ipv4Addr::from(self.next);
            self.next += 1;
            if self.taken.insert(candidate) {
                return Some(candidate);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifnames_fit_the_kernel_limit_and_are_stable() {
        let name = derived_ifname("stv", &["shop", "flaskapp", "web_nw"]);
        assert_eq!(name.len(), 13);
        assert_eq!(name, derived_ifname("stv", &["shop", "flaskapp", "web_nw"]));
        assert_ne!(name, derived_ifname("stv", &["shop", "flaskap", "pweb_nw"]));
    }

    #[test]
    fn auto_subnets_grow_with_their_members() {
        assert_eq!(auto_prefix(1), 24);
        assert_eq!(auto_prefix(253), 24);
        assert_eq!(auto_prefix(254), 23);
        assert_eq!(auto_prefix(1000), 22);
    }

    #[test]
    fn free_subnets_skip_taken_ones() {
        let taken: Vec<Ipv4Net> = vec!["10.89.0.0/24".parse().unwrap(), "10.89.1.128/25".parse().unwrap()];
        assert_eq!(free_subnet(24, &taken), Some("10.89.2.0/24".parse().unwrap()));
        assert_eq!(free_subnet(23, &taken), Some("10.89.2.0/23".parse().unwrap()));
    }
}
