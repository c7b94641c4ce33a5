//! The suggested layout written as a stack file. Names are written plain unless YAML would
//! read them as something other than a string; flows, ports and paths are always quoted,
//! because `8080:80` reads as a number in YAML 1.1 tools and a path may hold anything.

use std::fmt::Write;

use super::Placement;
use crate::model::{Flow, PortRange, Protocol, Publication, Traffic};

pub fn render(stack: &str, networks: &[&str], placements: &[Placement]) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "# Derived by `stackctl suggest` from the talks_to flows of stack {stack}: every declared\n\
         # flow has a network its two ends share, and no other pair of containers shares one.\n\
         # Networks get automatic subnets and default settings: add `subnet`, `internal`, static\n\
         # addresses and other settings again where the stack needs them.\n\
         name: {}",
        name(stack)
    )
    .expect("writing to a string");
    if networks.is_empty() {
        out.push_str("networks: {}\n");
    } else {
        out.push_str("networks:\n");
        for network in networks {
            writeln!(out, "  {}: {{}}", name(network)).expect("writing to a string");
        }
    }
    if placements.is_empty() {
        out.push_str("containers: {}\n");
        return out;
    }
    out.push_str("containers:\n");
    for placement in placements {
        let container = placement.container;
        writeln!(out, "  {}:", name(&container.name)).expect("writing to a string");
        if placement.networks.iter().all(|(_, aliases)| aliases.is_empty()) {
            if !placement.networks.is_empty() {
                let networks: Vec<&str> = placement.networks.iter().map(|(network, _)| *network).collect();
                writeln!(out, "    networks: {}", list(networks.into_iter().map(name))).expect("writing to a string");
            }
        } else {
            out.push_str("    networks:\n");
            for (network, aliases) in &placement.networks {
                let settings = if aliases.is_empty() {
                    "{}".to_owned()
                } else {
                    format!("{{ aliases: {} }}", list(aliases.iter().map(|alias| name(alias))))
                };
                writeln!(out, "      {}: {settings}", name(network)).expect("writing to a string");
            }
        }
        if let Some(mode) = placement.network_mode {
            writeln!(out, "    network_mode: {mode}").expect("writing to a string");
        }
        if let Some(netns) = &container.netns {
            writeln!(out, "    netns: {}", quoted(netns)).expect("writing to a string");
        }
        if !container.talks_to.is_empty() {
            let flows = container.talks_to.iter().map(|flow| quoted(&flow_text(flow)));
            writeln!(out, "    talks_to: {}", list(flows)).expect("writing to a string");
        }
        if !container.ports.is_empty() {
            let ports = container.ports.iter().map(|publication| quoted(&publication_text(publication)));
            writeln!(out, "    ports: {}", list(ports)).expect("writing to a string");
        }
    }
    out
}

/// A flow in the `talks_to` syntax, `TARGET[:PORT[-PORT]][/tcp|/udp]`, written as short as
/// it parses back to the same flow: TCP is the default of a port, so it goes unsaid.
fn flow_text(flow: &Flow) -> String {
    match flow.traffic {
        Traffic::All => flow.target.clone(),
        Traffic::Ports { protocol, ports } if ports == PortRange::ALL => format!("{}/{protocol}", flow.target),
        Traffic::Ports { protocol: Protocol::Tcp, ports } => format!("{}:{ports}", flow.target),
        Traffic::Ports { protocol: Protocol::Udp, ports } => format!("{}:{ports}/udp", flow.target),
    }
}

/// A publication in Docker's syntax, `[HOST_IP:][HOST_PORT[-END]:]PORT[-END][/tcp|/udp]`.
fn publication_text(publication: &Publication) -> String {
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

/// A flow sequence, `[a, b]`.
fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

/// Words that YAML 1.1 or 1.2 reads as a boolean, null or special number when plain.
const RESERVED: &[&str] = &["true", "false", "null", "yes", "no", "on", "off", "y", "n", "nan", "inf"];

/// A name (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`), plain when YAML reads it as that string, quoted
/// when it starts with a digit (and so may read as a number) or is a reserved word.
fn name(name: &str) -> String {
    let starts_with_letter = name.starts_with(|c: char| c.is_ascii_alphabetic());
    if starts_with_letter && !RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
        name.to_owned()
    } else {
        quoted(name)
    }
}

/// A YAML double-quoted string. A JSON string is one: YAML's double-quoted style is a
/// superset of JSON's string syntax, so serde_json's escaping is exactly right.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{parse_flow, parse_publication};

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
            assert_eq!(flow_text(&flow), expected, "{text}");
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
            assert_eq!(publication_text(&publication), expected, "{text}");
            assert_eq!(parse_publication(expected), Ok(publication), "{text}");
        }
    }

    #[test]
    fn names_are_quoted_only_when_yaml_would_misread_them() {
        let cases = [
            ("web_nw", "web_nw"),
            ("cat-db", "cat-db"),
            ("v1.2", "v1.2"),
            ("true", "\"true\""),
            ("No", "\"No\""),
            ("null", "\"null\""),
            ("9lives", "\"9lives\""),
            ("1e5", "\"1e5\""),
            ("8080", "\"8080\""),
        ];
        for (text, expected) in cases {
            assert_eq!(name(text), expected, "{text}");
        }
    }

    #[test]
    fn quoted_strings_read_back_as_written() {
        for text in ["/run/netns/a", "a\"b", "back\\slash", "new\nline", "tab\there", "bell\u{7}", "true", "9lives"] {
            let read: String = serde_saphyr::from_str(&quoted(text)).expect("valid YAML");
            assert_eq!(read, text);
        }
    }
}
