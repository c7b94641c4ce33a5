//! `resolv.conf` files as text: the one stackctl writes for each container, which sends
//! its programs to the name server on its gateways, and the host's, whose name servers
//! answer what the stack's names do not.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

/// The first line, which marks the file as stackctl's.
const HEADER: &str = "# stackctl: this container's name servers, on its networks' gateways; apply rewrites this file";

/// The options of a container's resolver: a name server that does not answer within a
/// second is left for the next (each gateway answers the same), and EDNS lets replies
/// carry more than 512 bytes before they fall back to TCP.
const OPTIONS: &str = "options timeout:1 attempts:2 edns0";

/// A container's `resolv.conf`: one `nameserver` per gateway, in order, and no search
/// domain, so that a short name is asked as it is written.
pub fn render(nameservers: &[Ipv4Addr]) -> String {
    let mut text = format!("{HEADER}\n");
    for nameserver in nameservers {
        text.push_str(&format!("nameserver {nameserver}\n"));
    }
    text.push_str(OPTIONS);
    text.push('\n');
    text
}

/// The name servers of a file stackctl wrote; `None` for any other file.
pub fn parse(text: &str) -> Option<Vec<Ipv4Addr>> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return None;
    }
    Some(
        nameservers(lines)
            .filter_map(|address| match address {
                IpAddr::V4(address) => Some(address),
                IpAddr::V6(_) => None,
            })
            .collect(),
    )
}

/// The host's name servers, to forward to, from the host's `resolv.conf`: in the order
/// written, without the stack's own gateways (which would forward to themselves).
pub fn upstreams(text: &str, gateways: &BTreeSet<Ipv4Addr>) -> Vec<IpAddr> {
    let mut found: Vec<IpAddr> = Vec::new();
    for address in nameservers(text.lines()) {
        let own = matches!(address, IpAddr::V4(address) if gateways.contains(&address));
        if !own && !found.contains(&address) {
            found.push(address);
        }
    }
    found
}

/// The addresses of `nameserver` lines; an IPv6 address may carry a zone (`%eth0`),
/// which a forwarder cannot use, and is left out with it.
fn nameservers<'a>(lines: impl Iterator<Item = &'a str>) -> impl Iterator<Item = IpAddr> {
    lines.filter_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver")).then(|| words.next()?.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_containers_file_reads_back_as_written() {
        let nameservers = vec![Ipv4Addr::new(10, 89, 0, 1), Ipv4Addr::new(10, 20, 0, 1)];
        let text = render(&nameservers);
        assert_eq!(
            text,
            format!("{HEADER}\nnameserver 10.89.0.1\nnameserver 10.20.0.1\noptions timeout:1 attempts:2 edns0\n")
        );
        assert_eq!(parse(&text), Some(nameservers));
        assert_eq!(parse("nameserver 10.0.0.1\n"), None);
    }

    #[test]
    fn the_hosts_name_servers_leave_out_the_gateways_repeats_and_zoned_addresses() {
        let text = "# comment\nsearch example.org\nnameserver 10.255.255.53\nnameserver 10.89.0.1\n\
                    nameserver ::1\nnameserver fe80::1%eth0\nnameserver 10.255.255.53\noptions ndots:2\n";
        let gateways = BTreeSet::from([Ipv4Addr::new(10, 89, 0, 1)]);
        let expected: Vec<IpAddr> = vec!["10.255.255.53".parse().expect("address"), "::1".parse().expect("address")];
        assert_eq!(upstreams(text, &gateways), expected);
    }
}
