//! The two small languages inside stack-file strings: published ports
//! (`[HOST_IP:][HOST_PORT[-END]:]PORT[-END][/tcp|/udp]`) and flows
//! (`TARGET[:PORT[-PORT]][/tcp|/udp]`). Errors are one-line reasons without a position; the
//! caller knows where the string stands.

use std::fmt::Write;
use std::net::Ipv4Addr;

use super::identifiers::name_problem;
use super::{Flow, PortRange, Protocol, Publication, Traffic};

const PUBLICATION_FORM: &str = "[HOST_IP:][HOST_PORT[-END]:]PORT[-END][/tcp|/udp]";
const FLOW_FORM: &str = "TARGET[:PORT[-PORT]][/tcp|/udp]";

/// Parses one entry of `ports:`.
pub fn parse_publication(text: &str) -> Result<Publication, String> {
    let (rest, protocol) = split_protocol(text)?;
    if rest.contains('[') {
        return Err(format!("IPv6 host addresses are not supported yet in `{text}`"));
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, host_ports, container_ports) = match parts.as_slice() {
        [container] => (None, None, *container),
        [host, container] => (None, Some(*host), *container),
        [ip, host, container] => (Some(*ip), Some(*host).filter(|h| !h.is_empty()), *container),
        _ => return Err(format!("malformed published port `{text}`: expected {PUBLICATION_FORM}")),
    };
    let host_ip = host_ip.map(parse_host_ip).transpose()?.flatten();
    let container_ports = parse_ports(container_ports, "container port")?;
    let host_ports = host_ports.map(|ports| parse_ports(ports, "host port")).transpose()?;
    if let Some(host) = host_ports
        && host.count() != container_ports.count()
    {
        return Err(format!(
            "host ports {host} ({}) and container ports {container_ports} ({}) differ in length",
            ports(host.count()),
            ports(container_ports.count())
        ));
    }
    Ok(Publication { host_ip, host_ports, container_ports, protocol })
}

/// Parses one entry of `talks_to:`. Without a port the flow allows all traffic; a port
/// without a protocol is TCP, as in Docker's port syntax.
pub fn parse_flow(text: &str) -> Result<Flow, String> {
    let (rest, protocol) = match text.rsplit_once('/') {
        Some((rest, protocol)) => (rest, Some(parse_protocol(protocol)?)),
        None => (text, None),
    };
    let (target, ports) = match rest.split_once(':') {
        Some((target, ports)) => (target, Some(parse_ports(ports, "port")?)),
        None => (rest, None),
    };
    if target.is_empty() {
        return Err(format!("flow `{text}` names no target: expected {FLOW_FORM}"));
    }
    if let Some(problem) = name_problem(target) {
        return Err(format!("invalid target `{target}`: {problem}"));
    }
    let traffic = match (protocol, ports) {
        (None, None) => Traffic::All,
        (protocol, ports) => {
            Traffic::Ports { protocol: protocol.unwrap_or(Protocol::Tcp), ports: ports.unwrap_or(PortRange::ALL) }
        }
    };
    Ok(Flow { target: target.to_owned(), traffic })
}

/// A flow in the `talks_to` syntax, `TARGET[:PORT[-PORT]][/tcp|/udp]`, written as short as
/// it parses back to the same flow: TCP is the default of a port, so it goes unsaid.
pub fn write_flow(flow: &Flow) -> String {
    match flow.traffic {
        Traffic::All => flow.target.clone(),
        Traffic::Ports { protocol, ports } if ports == PortRange::ALL => format!("{}/{protocol}", flow.target),
        Traffic::Ports { protocol: Protocol::Tcp, ports } => format!("{}:{ports}", flow.target),
        Traffic::Ports { protocol: Protocol::Udp, ports } => format!("{}:{ports}/udp", flow.target),
    }
}

/// A publication in Docker's syntax, `[HOST_IP:][HOST_PORT[-END]:]PORT[-END][/tcp|/udp]`.
pub fn write_publication(publication: &Publication) -> String {
    let mut text = String::new();
    if let Some(ip) = publication.host_ip {
        // With an address, a missing host port still takes its colon: `127.0.0.1::5432`.
        write!(text, "{ip}:").expect("writing to a string");
        if publication.host_ports.is_none() {
            text.push(':');
        }
    }
    if let Some(ports) = publication.host_ports {
        write!(text, "{ports}:").expect("writing to a string");
    }
    write!(text, "{}", publication.container_ports).expect("writing to a string");
    if publication.protocol == Protocol::Udp {
        text.push_str("/udp");
    }
    text
}

/// "1 port", "101 ports".
fn ports(count: u32) -> String {
    if count == 1 { "1 port".to_owned() } else { format!("{count} ports") }
}

fn split_protocol(text: &str) -> Result<(&str, Protocol), String> {
    match text.rsplit_once('/') {
        Some((rest, protocol)) => Ok((rest, parse_protocol(protocol)?)),
        None => Ok((text, Protocol::Tcp)),
    }
}

fn parse_protocol(text: &str) -> Result<Protocol, String> {
    match text.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        _ => Err(format!("unknown protocol `{text}`: use tcp or udp")),
    }
}

/// A host address; `0.0.0.0` is every interface, the same as writing none.
fn parse_host_ip(text: &str) -> Result<Option<Ipv4Addr>, String> {
    let ip: Ipv4Addr = text
        .parse()
        .map_err(|_| format!("invalid host address `{text}`: expected an IPv4 address such as 127.0.0.1"))?;
    Ok(Some(ip).filter(|ip| !ip.is_unspecified()))
}

fn parse_ports(text: &str, what: &str) -> Result<PortRange, String> {
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (parse_port(first, what)?, parse_port(last, what)?),
        None => {
            let port = parse_port(text, what)?;
            (port, port)
        }
    };
    if first > last {
        return Err(format!("{what} range `{text}` ends before it starts"));
    }
    Ok(PortRange { first, last })
}

fn parse_port(text: &str, what: &str) -> Result<u16, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid {what} `{text}`: expected a number from 1 to 65535"));
    }
    match text.parse::<u32>() {
        Ok(0) => Err(format!("{what} 0 is not a port: use 1 to 65535")),
        Ok(port) if port <= u32::from(u16::MAX) => Ok(port as u16),
        _ => Err(format!("{what} {text} is above 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first: u16, last: u16) -> PortRange {
        PortRange { first, last }
    }

    #[test]
    fn publications_in_every_form() {
        let localhost = Some(Ipv4Addr::LOCALHOST);
        let cases = [
            ("443", None, None, range(443, 443), Protocol::Tcp),
            ("8080:80", None, Some(range(8080, 8080)), range(80, 80), Protocol::Tcp),
            ("127.0.0.1:9000:9000/udp", localhost, Some(range(9000, 9000)), range(9000, 9000), Protocol::Udp),
            ("5000-5100:2000-2100", None, Some(range(5000, 5100)), range(2000, 2100), Protocol::Tcp),
            ("127.0.0.1::5432", localhost, None, range(5432, 5432), Protocol::Tcp),
            ("0.0.0.0:80:80/TCP", None, Some(range(80, 80)), range(80, 80), Protocol::Tcp),
        ];
        for (text, host_ip, host_ports, container_ports, protocol) in cases {
            let expected = Publication { host_ip, host_ports, container_ports, protocol };
            assert_eq!(parse_publication(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn malformed_publications_are_explained() {
        let cases = [
            ("", "invalid container port ``: expected a number from 1 to 65535"),
            ("80/sctp", "unknown protocol `sctp`: use tcp or udp"),
            (
                "1:2:3:4",
                "malformed published port `1:2:3:4`: expected [HOST_IP:][HOST_PORT[-END]:]PORT[-END][/tcp|/udp]",
            ),
            ("0:80", "host port 0 is not a port: use 1 to 65535"),
            ("8080:70000", "container port 70000 is above 65535"),
            ("http:80", "invalid host port `http`: expected a number from 1 to 65535"),
            (
                "5000-5100:2000-2050",
                "host ports 5000-5100 (101 ports) and container ports 2000-2050 (51 ports) differ in length",
            ),
            ("90-80", "container port range `90-80` ends before it starts"),
            ("10.0.0:80:80", "invalid host address `10.0.0`: expected an IPv4 address such as 127.0.0.1"),
            ("[::1]:80:80", "IPv6 host addresses are not supported yet in `[::1]:80:80`"),
        ];
        for (text, message) in cases {
            assert_eq!(parse_publication(text), Err(message.to_owned()), "{text}");
        }
    }

    #[test]
    fn flows_in_every_form() {
        let tcp = |ports| Traffic::Ports { protocol: Protocol::Tcp, ports };
        let cases = [
            ("db", Traffic::All),
            ("db:5432", tcp(range(5432, 5432))),
            ("app:5000/tcp", tcp(range(5000, 5000))),
            ("dns:53/udp", Traffic::Ports { protocol: Protocol::Udp, ports: range(53, 53) }),
            ("cache/udp", Traffic::Ports { protocol: Protocol::Udp, ports: PortRange::ALL }),
            ("web:8000-8100", tcp(range(8000, 8100))),
        ];
        for (text, traffic) in cases {
            let target = text.split([':', '/']).next().unwrap().to_owned();
            assert_eq!(parse_flow(text), Ok(Flow { target, traffic }), "{text}");
        }
    }

    #[test]
    fn malformed_flows_are_explained() {
        let cases = [
            (":5432", "flow `:5432` names no target: expected TARGET[:PORT[-PORT]][/tcp|/udp]"),
            ("db:0", "port 0 is not a port: use 1 to 65535"),
            ("db:99999", "port 99999 is above 65535"),
            ("db:5432/icmp", "unknown protocol `icmp`: use tcp or udp"),
            ("d b:1", "invalid target `d b`: ` ` is not allowed in a name: use letters, digits, `_`, `.` and `-`"),
        ];
        for (text, message) in cases {
            assert_eq!(parse_flow(text), Err(message.to_owned()), "{text}");
        }
    }

    #[test]
    fn flows_are_written_in_a_form_that_parses_back() {
        let cases = [
            ("db", "db"),
            ("db:5432", "db:5432"),
            ("app:5000/tcp", "app:5000"),
            ("dns:53/udp", "dns:53/udp"),
            ("cache/udp", "cache/udp"),
            ("cache/tcp", "cache/tcp"),
            ("web:8000-8100", "web:8000-8100"),
            ("all:1-65535", "all/tcp"),
        ];
        for (text, expected) in cases {
            let flow = parse_flow(text).expect("valid flow");
            assert_eq!(write_flow(&flow), expected, "{text}");
            assert_eq!(parse_flow(expected), Ok(flow), "{text}");
        }
    }

    #[test]
    fn publications_are_written_in_a_form_that_parses_back() {
        let cases = [
            ("443", "443"),
            ("8080:80", "8080:80"),
            ("127.0.0.1:9053:53/udp", "127.0.0.1:9053:53/udp"),
            ("5000-5100:2000-2100", "5000-5100:2000-2100"),
            ("127.0.0.1::5432", "127.0.0.1::5432"),
            ("0.0.0.0:80:80/TCP", "80:80"),
            ("3000/udp", "3000/udp"),
        ];
        for (text, expected) in cases {
            let publication = parse_publication(text).expect("valid publication");
            assert_eq!(write_publication(&publication), expected, "{text}");
            assert_eq!(parse_publication(expected), Ok(publication), "{text}");
        }
    }
}
