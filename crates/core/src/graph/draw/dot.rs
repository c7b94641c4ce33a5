//! The graph as a Graphviz digraph, in the same picture as the Mermaid drawing: networks
//! are blue hexagons, containers boxes, the host a house, host ports grey (red when published on every
//! interface); flows are thick arrows, memberships grey lines, and the reach an `open`
//! network grants beyond the declared flows dashed red lines.

use std::fmt::Write;

use super::scene::{EdgeKind, NodeKind, Scene};

pub fn render(scene: &Scene) -> String {
    let mut out = String::new();
    writeln!(out, "// least-privilege graph of stack {}, drawn by stackctl", scene.stack).expect("writing to a string");
    writeln!(out, "digraph {} {{", quote(&scene.stack)).expect("writing to a string");
    out.push_str("    rankdir=LR;\n");
    out.push_str("    node [shape=box, fontname=\"Helvetica\"];\n");
    out.push_str("    edge [fontname=\"Helvetica\", fontsize=10];\n");
    for node in &scene.nodes {
        let style = match node.kind {
            NodeKind::Network { open: false } => {
                ", shape=hexagon, style=filled, fillcolor=\"#e3f2fd\", color=\"#1565c0\""
            }
            NodeKind::Network { open: true } => {
                ", shape=hexagon, style=filled, fillcolor=\"#fff3e0\", color=\"#e65100\", penwidth=2"
            }
            NodeKind::Container => "",
            NodeKind::Host => ", shape=house",
            NodeKind::Port { all_interfaces: false } => {
                ", shape=cds, style=filled, fillcolor=\"#f5f5f5\", color=\"#757575\""
            }
            NodeKind::Port { all_interfaces: true } => {
                ", shape=cds, style=filled, fillcolor=\"#ffebee\", color=\"#c62828\", penwidth=2"
            }
        };
        writeln!(out, "    {} [label={}{style}];", node.id, quote(&node.lines.join("\n")))
            .expect("writing to a string");
    }
    for edge in &scene.edges {
        let mut attributes: Vec<String> = match edge.kind {
            EdgeKind::Membership => vec!["dir=none".to_owned(), "color=\"#9e9e9e\"".to_owned()],
            EdgeKind::Flow => vec!["penwidth=2".to_owned()],
            EdgeKind::Publish => Vec::new(),
            EdgeKind::OverPrivilege => {
                vec!["dir=none".to_owned(), "style=dashed".to_owned(), "color=\"#c62828\"".to_owned()]
            }
        };
        attributes.extend(edge.label.as_deref().map(|label| format!("label={}", quote(label))));
        let attributes = if attributes.is_empty() { String::new() } else { format!(" [{}]", attributes.join(", ")) };
        writeln!(out, "    {} -> {}{attributes};", edge.from, edge.to).expect("writing to a string");
    }
    out.push_str("}\n");
    out
}

/// A DOT quoted string. Inside one, only `"` and `\` are special; a line break is written
/// `\n`, which Graphviz draws as a centred new line.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c if c.is_control() => quoted.push(' '),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_keep_their_text() {
        let cases = [
            ("shop", r#""shop""#),
            ("a\"b", r#""a\"b""#),
            ("back\\slash", r#""back\\slash""#),
            ("two\nlines", r#""two\nlines""#),
            ("tab\there", r#""tab here""#),
        ];
        for (text, expected) in cases {
            assert_eq!(quote(text), expected, "{text}");
        }
    }
}
