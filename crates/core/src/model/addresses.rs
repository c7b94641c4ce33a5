//! Checks of subnets, gateways and static addresses.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The narrowest subnet that still holds a gateway and one container.
pub const NARROWEST_PREFIX: u8 = 30;

/// Parses a declared subnet, refusing forms that would be silently reinterpreted.
pub fn parse_subnet(text: &str) -> Result<Ipv4Net, (String, Option<String>)> {
    let net: Ipv4Net = text.parse().map_err(|_| {
        (
            format!("invalid subnet `{text}`: expected IPv4 CIDR such as 10.20.0.0/24"),
            (!text.contains('/')).then(|| format!("did you mean `{text}/24`?")),
        )
    })?;
    if net.network() != net.addr() {
        return Err((format!("subnet `{text}` has host bits set"), Some(format!("did you mean `{}`?", net.trunc()))));
    }
    if net.prefix_len() > NARROWEST_PREFIX {
        return Err((
            format!("subnet `{text}` is too small: it needs room for a gateway and a container"),
            Some(format!("use a prefix of /{NARROWEST_PREFIX} or shorter")),
        ));
    }
    Ok(net)
}

pub fn parse_address(text: &str) -> Result<Ipv4Addr, String> {
    text.parse().map_err(|_| format!("invalid IPv4 address `{text}`"))
}

/// The gateway a network gets when none is declared: its first host address.
pub fn default_gateway(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

/// Why `address` cannot be a host of `subnet` (other than the gateway), if it cannot.
pub fn host_problem(address: Ipv4Addr, subnet: Ipv4Net) -> Option<String> {
    if !subnet.contains(&address) {
        Some(format!("address {address} is outside subnet {subnet}"))
    } else if address == subnet.network() {
        Some(format!("address {address} is the network address of {subnet}"))
    } else if address == subnet.broadcast() {
        Some(format!("address {address} is the broadcast address of {subnet}"))
    } else {
        None
    }
}

/// Whether two subnets share any address.
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}
