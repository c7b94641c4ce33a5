//! The suggested layout written as a stack file. Names are written plain unless YAML would
//! read them as something other than a string; flows, ports and paths are always quoted,
//! because `8080:80` reads as a number in YAML 1.1 tools and a path may hold anything.

use std::fmt::Write;

use super::Placement;
use crate::model::{write_flow, write_publication};

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
            let flows = container.talks_to.iter().map(|flow| quoted(&write_flow(flow)));
            writeln!(out, "    talks_to: {}", list(flows)).expect("writing to a string");
        }
        if !container.ports.is_empty() {
            let ports = container.ports.iter().map(|publication| quoted(&write_publication(publication)));
            writeln!(out, "    ports: {}", list(ports)).expect("writing to a string");
        }
    }
    out
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
